//! crest ingest: reading CSV and XLSX files, the atomic import of episodes and programmes, the
//! import templates and the synthetic data generator. Everything that turns files into store
//! rows or store-ready files lives here, used alike by the command line and the web.

pub mod export;
pub mod fix;
pub mod import;
pub mod programmes;
pub mod read;
pub mod synth;
pub mod template;

pub use import::{import_file, ImportOptions, ImportSummary, RowIssue};

/// Why a file was refused as a whole (nothing was stored).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file cannot be used (unreadable, wrong format, bad header, …).
    #[error("{0}")]
    File(String),
    /// The store failed; the transaction was rolled back.
    #[error(transparent)]
    Store(#[from] crest_store::StoreError),
}

impl ImportError {
    fn errors_file(e: csv::Error) -> ImportError {
        ImportError::File(format!("cannot write the errors file: {e}"))
    }
}
