//! crest storage: one [`Store`] trait with SQLite (embedded default) and PostgreSQL
//! implementations, each with its own migrations.
//!
//! The episodes table has one column per field of the dataset dictionary, so adding a field in
//! `crest-core` adds it here. Dates are ISO text, identifiers text: the same rows on both
//! back ends, and the KPI engine reads plain values with no SQL dialect tricks.

mod pg;
mod schema;
mod sqlite;
pub mod testing;

use crest_core::{Date, KpiEpisode, Programme, Record};

pub use pg::PgStore;
pub use sqlite::SqliteStore;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// The `--db` value is not understood.
    #[error("cannot use database '{0}': give a file path, sqlite:PATH or postgres://…")]
    Url(String),
    /// The store has not been initialised.
    #[error("the store is not initialised: run `crest init` first")]
    NotInitialised,
    /// A stored value could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

/// Result type of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Counts from registering programmes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProgrammeCounts {
    /// New programmes.
    pub added: usize,
    /// Existing programmes updated (or unchanged).
    pub updated: usize,
}

/// What an import needs to know about a programme's stored episodes.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Local episode id.
    pub episode_id: String,
    /// NHS number.
    pub nhs_number: String,
    /// Date of the initiating event.
    pub event_date: Date,
}

/// A crest store (local, identifiable). Implementations: [`SqliteStore`], [`PgStore`].
pub trait Store: Send {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Creates or migrates the schema; returns the number of migrations applied.
    fn migrate(&mut self) -> Result<usize>;
    /// Registers or updates programmes, all or nothing.
    fn upsert_programmes(&mut self, programmes: &[Programme]) -> Result<ProgrammeCounts>;
    /// Every registered programme, in code order.
    fn programmes(&mut self) -> Result<Vec<Programme>>;
    /// Starts a transaction for an import; dropping it without commit rolls everything back.
    fn begin(&mut self) -> Result<Box<dyn ImportTx + '_>>;
    /// The KPI facts of every episode referred in `from..=to`, for the given programmes
    /// (`KpiEpisode::programme` indexes `programmes`).
    fn kpi_episodes(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
    ) -> Result<Vec<KpiEpisode>>;
    /// One stored episode.
    fn episode(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>>;
    /// Number of stored episodes.
    fn count_episodes(&mut self) -> Result<u64>;
}

/// One import's transaction.
pub trait ImportTx {
    /// Keys of the episodes already stored for a programme.
    fn keys(&mut self, programme: &str) -> Result<Vec<StoredKey>>;
    /// A stored episode.
    fn get(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>>;
    /// Stores a new episode.
    fn insert(&mut self, rec: &Record) -> Result<()>;
    /// Replaces a stored episode (same programme and episode id).
    fn update(&mut self, rec: &Record) -> Result<()>;
    /// Commits; only then is anything acknowledged.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Opens a store from `--db`: `sqlite:PATH`, a plain path, or `postgres://…`.
pub fn open(url: &str) -> Result<Box<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PgStore::connect(url)?))
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.is_empty() {
            return Err(StoreError::Url(url.to_string()));
        }
        Ok(Box::new(SqliteStore::open(path)?))
    }
}

/// Builds the KPI facts from the stored text of one row, shared by both back ends.
#[allow(clippy::too_many_arguments)]
pub(crate) fn kpi_row(
    programme: usize,
    referral: &str,
    start: Option<&str>,
    end: Option<&str>,
    a1: Option<&str>,
    a2: Option<&str>,
    status: &str,
    event: &str,
    treatment: &str,
) -> Result<KpiEpisode> {
    let date = |s: &str| Date::parse_iso(s).map_err(|e| StoreError::Corrupt(e.0));
    let opt = |s: Option<&str>| s.map(date).transpose();
    Ok(KpiEpisode {
        programme,
        referral_date: date(referral)?,
        core_start: opt(start)?,
        core_end: opt(end)?,
        assessment1: opt(a1)?,
        assessment2: opt(a2)?,
        completed: status == "completed",
        group: crest_core::PriorityGroup::of(event, treatment),
    })
}
