//! crest's views, shared by the web app and the command line: the page layout and its
//! components ([`html`]), charts as SVG with text alternatives and as PNG ([`charts`]), and the
//! annual report with its published tables ([`annual`]). Everything here turns figures into
//! documents; it computes no statistics of its own (those are `crest_stats`).

pub mod aggregates;
pub mod annual;
pub mod charts;
pub mod figures;
pub mod print;
pub mod publication_audit;
pub mod site;
pub mod spc_chart;
pub mod svg;
pub mod words;

/// Why a report, table or chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The national store could not be read.
    #[error(transparent)]
    Store(#[from] crest_store::StoreError),
    /// Figures given to crest are not the tables it publishes (the message says how).
    #[error("{0}")]
    NotFigures(String),
    /// A table could not be written as CSV.
    #[error("writing {table}.csv: {source}")]
    Csv {
        /// The table.
        table: String,
        /// Why.
        #[source]
        source: csv::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Headless Chromium could not print the PDF (the message says what to install).
    #[error(transparent)]
    Print(#[from] print::PrintError),
    /// The disclosure audit found a published figure that reveals a hidden one; nothing is
    /// written.
    #[error("the report was not made: its published figures would reveal hidden ones ({0})")]
    Disclosure(String),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] svg::ChartError),
}
