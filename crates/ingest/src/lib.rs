//! crest ingest: reading CSV and XLSX files, the atomic import of episodes and programmes, the
//! import templates and the synthetic data generator. Everything that turns files into store
//! rows or store-ready files lives here, used alike by the command line and the web.

pub mod expected;
pub mod export;
pub mod fhir;
pub mod fix;
pub mod hash;
pub mod import;
pub mod programmes;
pub mod read;
pub mod synth;
pub mod template;

pub use import::{import_file, import_files, ImportOptions, ImportSummary, RowIssue};

/// Why a file was refused as a whole (nothing was stored).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be used for what it holds (wrong format, empty, too large, …; the
    /// message says what to do).
    #[error("{0}")]
    File(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file (or what it is, such as "the errors file").
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// CSV could not be read or written.
    #[error("{what}: {source}")]
    Csv {
        /// What was being read or written.
        what: String,
        /// Why.
        #[source]
        source: csv::Error,
    },
    /// A workbook could not be written.
    #[error("{what}: {source}")]
    Xlsx {
        /// What was being written.
        what: String,
        /// Why.
        #[source]
        source: rust_xlsxwriter::XlsxError,
    },
    /// The header row names columns wrongly.
    #[error(transparent)]
    Header(#[from] crest_core::HeaderError),
    /// The store failed; the transaction was rolled back.
    #[error(transparent)]
    Store(#[from] crest_store::StoreError),
}

impl ImportError {
    fn errors_file(source: csv::Error) -> ImportError {
        ImportError::Csv {
            what: "cannot write the errors file".into(),
            source,
        }
    }

    /// A read error naming `path`.
    pub(crate) fn read(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
        move |source| ImportError::Read {
            path: path.display().to_string(),
            source,
        }
    }

    /// A write error naming `path`.
    pub(crate) fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
        move |source| ImportError::Write {
            path: path.display().to_string(),
            source,
        }
    }

    /// A CSV error while doing `what`.
    pub(crate) fn csv(what: &str) -> impl Fn(csv::Error) -> ImportError + Copy + '_ {
        move |source| ImportError::Csv {
            what: what.to_string(),
            source,
        }
    }

    /// A workbook error while doing `what`.
    pub(crate) fn xlsx(
        what: &str,
    ) -> impl Fn(rust_xlsxwriter::XlsxError) -> ImportError + Copy + '_ {
        move |source| ImportError::Xlsx {
            what: what.to_string(),
            source,
        }
    }
}
