//! crest storage: one [`Store`] trait for the local (identifiable) store and a
//! [`NationalStore`], each written once over one database trait ([`db`]) with a SQLite
//! (embedded default) and a PostgreSQL back end, each with its own frozen migrations.
//!
//! The episodes table has one column per field of the dataset dictionary, so adding a field in
//! `crest-core` adds it here. Dates are ISO text, identifiers text: the same rows on both
//! back ends, and the KPI engine reads plain values with no SQL dialect tricks.

mod accounts;
pub mod audit;
pub mod backup;
pub mod db;
mod expected;
mod kpi_facts;
mod local;
pub mod migrations;
pub mod national;
mod schema;
#[cfg(feature = "testing")]
pub mod testing;
pub mod totp;
pub mod users;

use crest_core::{Date, KpiEpisode, Programme, Record};

pub use accounts::{
    utc_now, AccessEntry, EpisodeQuery, EpisodeSort, Role, Session, User, UserToken,
};
pub use audit::{ChainEntry, LogCheck};
pub use expected::ExpectedLoad;
pub use national::{
    NationalEpisode, NationalStore, ProgrammeSigningKey, Receipt, ReceiptItem, ReceiptItems,
    Received,
};
/// Uploads a programme keeps waiting for confirmation at once.
pub const MAX_PENDING_UPLOADS: usize = 10;

pub use local::{LocalStore, PgStore, SqliteStore};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("PostgreSQL: {}", postgres_words(.0))]
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
    /// The request was refused (the message says why); nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// Data offered to the store was refused for what it holds (the message says what).
    #[error(transparent)]
    Invalid(#[from] crest_core::Invalid),
    /// A migration applied to this store was edited afterwards: the store never ran the edit.
    #[error("the {store} store's migration {version} ({file}) was changed after this store applied it; restore the file as it was and put the change in a new migration")]
    EditedMigration {
        /// `local` or `national`.
        store: &'static str,
        /// The migration's version.
        version: usize,
        /// Its file under `crates/store/migrations/`.
        file: &'static str,
    },
    /// The store has a migration this crest does not know: a newer crest made it.
    #[error("this {store} store has migration {version}, which this crest does not know: use the newer crest that migrated it")]
    NewerStore {
        /// `local` or `national`.
        store: &'static str,
        /// The unknown version.
        version: i64,
    },
}

/// A PostgreSQL error in words: the server's message (never its detail, which can quote
/// values), and what to do for the ones people meet.
fn postgres_words(e: &postgres::Error) -> String {
    use postgres::error::SqlState;
    match e.as_db_error() {
        Some(d) if d.code() == &SqlState::UNIQUE_VIOLATION => {
            "another import or change stored the same record at the same moment; nothing of this one was stored, so run it again".into()
        }
        Some(d) if d.code() == &SqlState::T_R_SERIALIZATION_FAILURE || d.code() == &SqlState::T_R_DEADLOCK_DETECTED => {
            "another change was being stored at the same moment; nothing of this one was stored, so run it again".into()
        }
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    }
}

/// Why a local store cannot be made in a national store's database.
pub(crate) const NOT_LOCAL: &str =
    "this database is a national store; a local (identifiable) store must be a separate database";

/// Result type of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The schema version a fully migrated store is at (both back ends have the same migrations).
pub const SCHEMA_VERSION: usize = 12;

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
    /// Creates or migrates the schema; returns the number of migrations applied. Refuses a
    /// store whose applied migration was edited since, or that a newer crest migrated.
    fn migrate(&mut self) -> Result<usize>;
    /// Checks the applied migrations against their files without changing anything (as a
    /// server starts): the same refusals as [`Store::migrate`].
    fn check_migrations(&mut self) -> Result<()>;
    /// How many migrations this crest has that the store has not applied (0 when it is
    /// current), with the same refusals as [`Store::check_migrations`]; for a server's
    /// readiness check.
    fn migrations_pending(&mut self) -> Result<usize>;
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
    /// The same episodes as [`Store::kpi_episodes`], handed to `each` a few at a time rather
    /// than held all at once (ten years of a national audit are ten million episodes).
    fn each_kpi_episode(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
        each: &mut dyn FnMut(&[KpiEpisode]),
    ) -> Result<()>;
    /// One stored episode.
    fn episode(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>>;
    /// A number that changes whenever the programme's episodes change (0 before any are
    /// stored); equal versions mean the same data.
    fn data_version(&mut self, programme: &str) -> Result<u64>;
    /// Number of stored episodes.
    fn count_episodes(&mut self) -> Result<u64>;
    /// Every episode of a programme, in episode id order, one at a time (for exports of any
    /// size without holding them all).
    fn for_each_episode(
        &mut self,
        programme: &str,
        f: &mut dyn FnMut(&Record) -> Result<()>,
    ) -> Result<()>;
    /// One programme's episodes matching a query, in its order, one page of them.
    fn find_episodes(&mut self, programme: &str, query: &EpisodeQuery) -> Result<Vec<Record>>;
    /// How many of a programme's episodes match `query` (its limit, offset and order aside).
    fn count_matching(&mut self, programme: &str, query: &EpisodeQuery) -> Result<u64>;

    /// Adds or replaces a user.
    fn put_user(&mut self, user: &User) -> Result<()>;
    /// Stores a new personal API token under the SHA-256 of its secret.
    fn put_user_token(&mut self, token_hash: &str, token: &UserToken) -> Result<()>;
    /// The personal API token with this SHA-256, if any (live or not).
    fn user_token(&mut self, token_hash: &str) -> Result<Option<UserToken>>;
    /// A user's personal API tokens, newest first.
    fn user_tokens(&mut self, username: &str) -> Result<Vec<UserToken>>;
    /// Revokes one of a user's tokens; whether a working one was revoked.
    fn revoke_user_token(&mut self, username: &str, id: &str, at: &str) -> Result<bool>;
    /// Revokes every working token of a user (after a new password or security code: a
    /// token made under the old ones must not outlive them); how many.
    fn revoke_user_tokens(&mut self, username: &str, at: &str) -> Result<usize> {
        let mut n = 0;
        for t in self.user_tokens(username)? {
            if t.live(at) && self.revoke_user_token(username, &t.id, at)? {
                n += 1;
            }
        }
        Ok(n)
    }
    /// A setting an administrator chose, if any.
    fn setting(&mut self, name: &str) -> Result<Option<String>>;
    /// Records a setting.
    fn put_setting(&mut self, name: &str, value: &str) -> Result<()>;
    /// One user.
    fn user(&mut self, username: &str) -> Result<Option<User>>;
    /// Every user, by name.
    fn users(&mut self) -> Result<Vec<User>>;
    /// Stores a new session.
    fn put_session(&mut self, session: &Session) -> Result<()>;
    /// A session by token hash.
    fn session(&mut self, token_hash: &str) -> Result<Option<Session>>;
    /// Records activity on a session.
    fn touch_session(&mut self, token_hash: &str, seen: i64) -> Result<()>;
    /// Ends a session.
    fn drop_session(&mut self, token_hash: &str) -> Result<()>;
    /// Ends every session of a user.
    fn drop_user_sessions(&mut self, username: &str) -> Result<()>;
    /// Appends to the access log, chained to the entry before it.
    fn log(&mut self, entry: &AccessEntry) -> Result<()>;
    /// The latest access-log entries, newest first.
    fn access_log(&mut self, limit: usize) -> Result<Vec<AccessEntry>>;
    /// Up to `limit` access-log entries with their chain fields, from sequence `after + 1`.
    fn access_log_chain(&mut self, after: i64, limit: usize) -> Result<Vec<ChainEntry>>;
    /// Adds or replaces a data sharing agreement.
    fn put_agreement(&mut self, a: &crest_core::governance::Agreement) -> Result<()>;
    /// Every data sharing agreement.
    fn agreements(&mut self) -> Result<Vec<crest_core::governance::Agreement>>;
    /// Records a service change; returns its number.
    fn add_service_change(&mut self, c: &crest_core::changes::ServiceChange) -> Result<i64>;
    /// Every service change recorded, oldest first.
    fn service_changes(&mut self) -> Result<Vec<crest_core::changes::ServiceChange>>;
    /// Adds or replaces expected-patients rows (by area, quarter and condition).
    fn load_expected(&mut self, rows: &[crest_core::expected::Expected]) -> Result<ExpectedLoad>;
    /// Every expected-patients row.
    fn expected(&mut self) -> Result<Vec<crest_core::expected::Expected>>;
    /// The expected-patients rows of one programme or region.
    fn expected_of(
        &mut self,
        area: &crest_core::expected::Area,
    ) -> Result<Vec<crest_core::expected::Expected>>;
    /// Episode ids of a programme that have been sent nationally and not withdrawn.
    fn sent_episodes(&mut self, programme: &str) -> Result<Vec<String>>;
    /// Records a built submission: `sent` ids are now national, `withdrawn` ones no longer.
    fn record_sent(&mut self, programme: &str, sent: &[String], withdrawn: &[String])
        -> Result<()>;
    /// Keeps an upload waiting for confirmation (any server of a deployment can confirm it).
    /// Keeps an upload waiting for confirmation; a programme keeps its newest
    /// [`MAX_PENDING_UPLOADS`] (an older one is dropped), so previews cannot fill the store.
    fn put_upload(&mut self, upload: &PendingUpload) -> Result<()>;
    /// An upload waiting for confirmation, by programme and token.
    fn upload(&mut self, programme: &str, token: &str) -> Result<Option<PendingUpload>>;
    /// Removes an upload (stored or cancelled).
    fn drop_upload(&mut self, programme: &str, token: &str) -> Result<()>;
    /// Removes uploads made before `before` (seconds since 1970) and sign-in throttling
    /// records idle since `idle_before_ms`; how many uploads went.
    fn sweep(&mut self, before: i64, idle_before_ms: i64) -> Result<usize>;
    /// Reads the sign-in throttling records of `keys` (a missing one as fresh), lets `decide`
    /// change them, and writes them back, all in one transaction so that servers sharing the
    /// database never race; returns what `decide` returned.
    fn sign_in_limits(
        &mut self,
        keys: &[&str],
        decide: &mut dyn FnMut(&mut [SignInLimit]) -> bool,
    ) -> Result<bool>;
    /// Checks the access log's hash chain (`crest audit verify`).
    fn verify_access_log(&mut self) -> Result<LogCheck> {
        audit::verify(|after, limit| self.access_log_chain(after, limit))
    }
}

/// An upload waiting for its user to store or cancel it.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingUpload {
    /// Random token naming it.
    pub token: String,
    /// The programme whose page received it.
    pub programme: String,
    /// The file's name as uploaded.
    pub name: String,
    /// When it arrived (seconds since 1970).
    pub created: i64,
    /// The file.
    pub file: Vec<u8>,
    /// Its rejected rows as CSV.
    pub errors: Vec<u8>,
}

/// Sign-in throttling for one user name or address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignInLimit {
    /// `name:…` or `addr:…`.
    pub key: String,
    /// Failures since the record was last cleared.
    pub failures: i64,
    /// Attempts under way.
    pub in_flight: i64,
    /// When the last failure was (milliseconds since 1970).
    pub last_ms: i64,
    /// When the last attempt started (milliseconds since 1970).
    pub started_ms: i64,
}

/// One import's transaction.
pub trait ImportTx {
    /// Keys of a programme's stored episodes. Asked once per programme before this
    /// transaction writes any of its episodes (a back end may answer from the state at the
    /// start of the transaction).
    fn keys(&mut self, programme: &str) -> Result<Vec<StoredKey>>;
    /// A stored episode.
    fn get(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>>;
    /// Stores a new episode.
    fn insert(&mut self, rec: &Record) -> Result<()>;
    /// Replaces a stored episode (same programme and episode id).
    fn update(&mut self, rec: &Record) -> Result<()>;
    /// Appends an access-log entry that commits with this transaction or not at all
    /// (privacy.md, "Durability").
    fn log(&mut self, entry: &AccessEntry) -> Result<()>;
    /// Commits; only then is anything acknowledged.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// Opens a store from `--db`: `sqlite:PATH`, a plain path, or `postgres://…`.
pub fn open(url: &str) -> Result<Box<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Box::new(PgStore::connect(url)?))
    } else {
        Ok(Box::new(SqliteStore::open(sqlite_path(url)?)?))
    }
}

/// The file a SQLite `--db` names (`sqlite:PATH`, `sqlite://PATH` or a plain path).
pub fn sqlite_path(url: &str) -> Result<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    if path.is_empty() {
        return Err(StoreError::Url(url.to_string()));
    }
    Ok(path)
}
