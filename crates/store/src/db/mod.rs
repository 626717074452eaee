//! The one trait both stores (local and national) need of a database, with a SQLite
//! ([`Sqlite`]) and a PostgreSQL ([`Postgres`]) implementation. Queries are written once, with
//! `?N` placeholders (PostgreSQL's `$N` is made from them), and rows are read through
//! [`RowRef`], which borrows each cell without copying it. What truly differs by back end is
//! here and in each store's small extension trait: opening, placeholders, locking, and bulk
//! writing (prepared SQLite statements, PostgreSQL's binary COPY).

mod pg;
mod sqlite;

pub(crate) use pg::placeholders as pg_placeholders;
pub use pg::Postgres;
pub use sqlite::Sqlite;
pub(crate) use sqlite::{value_sql, BUSY_WAIT};

use crate::{audit, AccessEntry, ChainEntry, Result};

/// A query parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    /// Text.
    Text(&'a str),
    /// A whole number.
    Int(i64),
    /// Yes or no (an integer 0/1 on SQLite, a boolean on PostgreSQL).
    Bool(bool),
    /// Bytes.
    Blob(&'a [u8]),
}

/// One row of a result, read cell by cell (column numbers from 0).
pub(crate) trait RowRef {
    /// A text cell (`None` for NULL).
    fn text(&self, i: usize) -> Result<Option<&str>>;
    /// A whole-number cell.
    fn int(&self, i: usize) -> Result<Option<i64>>;
    /// A decimal cell.
    fn real(&self, i: usize) -> Result<Option<f64>>;
    /// A yes/no cell (a boolean, or a number where 0 is no).
    fn flag(&self, i: usize) -> Result<Option<bool>>;
    /// A bytes cell (`None` for NULL).
    fn blob(&self, i: usize) -> Result<Option<&[u8]>>;

    /// A text cell that must be there.
    fn string(&self, i: usize) -> Result<String> {
        Ok(self.text(i)?.unwrap_or_default().to_string())
    }
    /// A whole-number cell that must be there.
    fn number(&self, i: usize) -> Result<i64> {
        Ok(self.int(i)?.unwrap_or_default())
    }
}

/// How a transaction keeps other writers out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Writers take turns on this key: SQLite's single writer (`BEGIN IMMEDIATE`), a
    /// PostgreSQL advisory lock held to the end of the transaction.
    Key(i64),
    /// No lock beyond the rows written (SQLite still takes its write lock at once).
    Rows,
}

/// Advisory lock keys (PostgreSQL; on SQLite every write transaction takes the one lock).
pub(crate) mod locks {
    /// Migrations of a local store.
    pub const LOCAL_MIGRATIONS: i64 = 421_337;
    /// Migrations of a national store.
    pub const NATIONAL_MIGRATIONS: i64 = 421_338;
    /// Writers of episodes (imports and saves) take turns: two overlapping files would
    /// otherwise both find an episode new and one fail on its key.
    pub const EPISODES: i64 = 421_339;
    /// Sign-in throttling records.
    pub const SIGN_IN_LIMITS: i64 = 421_340;
    /// Appending to the access log, so its chain never forks.
    pub const ACCESS_LOG: i64 = 0x6372_6573_745f_6c6f; // "crest_lo"
}

/// What both stores need of a database.
pub(crate) trait Db: Send {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Whether the table exists.
    fn has_table(&mut self, name: &str) -> Result<bool>;
    /// Every column of every table as `table.column`.
    fn columns(&mut self) -> Result<Vec<String>>;
    /// Runs a query and hands each row to `row` (streamed: rows are not collected first).
    fn each(
        &mut self,
        sql: &str,
        params: &[Param],
        row: &mut dyn FnMut(&dyn RowRef) -> Result<()>,
    ) -> Result<()>;
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<usize>;
    /// Runs several statements without parameters (a migration).
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// Starts a write transaction.
    fn begin(&mut self, lock: Lock) -> Result<()>;
    /// Commits the transaction.
    fn commit(&mut self) -> Result<()>;
    /// Rolls the transaction back (errors are ignored: there is nothing left to undo).
    fn rollback(&mut self);
    /// Before (`true`) and after (`false`) a scan that reads every row once: a database that
    /// caches pages may hold less meanwhile, since the scan will not read them again.
    fn scanning(&mut self, _on: bool) -> Result<()> {
        Ok(())
    }
}

/// Runs `work` in one transaction: committed if it succeeds, rolled back if not.
pub(crate) fn in_transaction<D: Db + ?Sized, T>(
    db: &mut D,
    lock: Lock,
    work: impl FnOnce(&mut D) -> Result<T>,
) -> Result<T> {
    db.begin(lock)?;
    match work(db) {
        Ok(out) => {
            db.commit()?;
            Ok(out)
        }
        Err(e) => {
            db.rollback();
            Err(e)
        }
    }
}

/// The first row's cells read by `read`, if there is a row.
pub(crate) fn first<D: Db + ?Sized, T>(
    db: &mut D,
    sql: &str,
    params: &[Param],
    mut read: impl FnMut(&dyn RowRef) -> Result<T>,
) -> Result<Option<T>> {
    let mut out = None;
    db.each(sql, params, &mut |r| {
        if out.is_none() {
            out = Some(read(r)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Every row read by `read`.
pub(crate) fn all<D: Db + ?Sized, T>(
    db: &mut D,
    sql: &str,
    params: &[Param],
    mut read: impl FnMut(&dyn RowRef) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    db.each(sql, params, &mut |r| {
        out.push(read(r)?);
        Ok(())
    })?;
    Ok(out)
}

/// The access log's statements, the same for both stores and both back ends.
pub(crate) mod log_sql {
    pub const LOG: &str =
        "INSERT INTO access_log (at, username, role, programme, action, target, outcome, detail, seq, prev_hash, hash) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    pub const HEAD: &str = "SELECT seq, hash FROM access_log ORDER BY seq DESC LIMIT 1";
    pub const CHAIN: &str =
        "SELECT at, username, role, programme, action, target, outcome, detail, seq, prev_hash, hash \
        FROM access_log WHERE seq > ?1 ORDER BY seq LIMIT ?2";
    pub const LEGACY: &str =
        "SELECT at, username, role, programme, action, target, outcome, detail, id \
        FROM access_log WHERE seq = 0 ORDER BY id";
    pub const SET_CHAIN: &str =
        "UPDATE access_log SET seq = ?2, prev_hash = ?3, hash = ?4 WHERE id = ?1";
    pub const LATEST: &str =
        "SELECT at, username, role, programme, action, target, outcome, detail \
        FROM access_log ORDER BY seq DESC LIMIT ?1";
}

/// An access-log entry from its first eight columns.
pub(crate) fn entry_of(r: &dyn RowRef) -> Result<AccessEntry> {
    Ok(AccessEntry {
        at: r.string(0)?,
        username: r.string(1)?,
        role: r.string(2)?,
        programme: r.string(3)?,
        action: r.string(4)?,
        target: r.string(5)?,
        outcome: r.string(6)?,
        detail: r.string(7)?,
    })
}

/// Appends an entry inside the caller's write transaction, chained to the last, so it commits
/// with the change it records or not at all. The transaction's lock (SQLite's writer lock, the
/// access log's advisory lock) keeps one appender at a time, so the chain never forks.
pub(crate) fn write_log<D: Db + ?Sized>(db: &mut D, e: &AccessEntry) -> Result<()> {
    if db.backend() == "postgres" {
        db.execute(
            "SELECT pg_advisory_xact_lock(?1)",
            &[Param::Int(locks::ACCESS_LOG)],
        )?;
    }
    let head = first(db, log_sql::HEAD, &[], |r| Ok((r.number(0)?, r.string(1)?)))?;
    let (seq, prev) = head.map_or((1, audit::GENESIS.to_string()), |(s, h)| (s + 1, h));
    let hash = audit::entry_hash(&prev, seq, e);
    db.execute(
        log_sql::LOG,
        &[
            Param::Text(&e.at),
            Param::Text(&e.username),
            Param::Text(&e.role),
            Param::Text(&e.programme),
            Param::Text(&e.action),
            Param::Text(&e.target),
            Param::Text(&e.outcome),
            Param::Text(&e.detail),
            Param::Int(seq),
            Param::Text(&prev),
            Param::Text(&hash),
        ],
    )?;
    Ok(())
}

/// Appends an entry to the access log in a transaction of its own.
pub(crate) fn append_log<D: Db + ?Sized>(db: &mut D, e: &AccessEntry) -> Result<()> {
    in_transaction(db, Lock::Rows, |db| write_log(db, e))
}

/// Access-log entries with their chain fields, from sequence `after + 1`.
pub(crate) fn read_chain<D: Db + ?Sized>(
    db: &mut D,
    after: i64,
    limit: usize,
) -> Result<Vec<ChainEntry>> {
    let limit = limit.min(i64::MAX as usize) as i64;
    all(
        db,
        log_sql::CHAIN,
        &[Param::Int(after), Param::Int(limit)],
        |r| {
            Ok(ChainEntry {
                entry: entry_of(r)?,
                seq: r.number(8)?,
                prev_hash: r.string(9)?,
                hash: r.string(10)?,
            })
        },
    )
}

/// Chains access-log entries written before the log was chained, in the order they were
/// written (a data step of the local store's migration 4).
pub(crate) fn chain_legacy_log<D: Db + ?Sized>(db: &mut D) -> Result<()> {
    let legacy = all(db, log_sql::LEGACY, &[], |r| {
        Ok((r.number(8)?, entry_of(r)?))
    })?;
    let mut prev = audit::GENESIS.to_string();
    for (seq, (id, e)) in (1_i64..).zip(legacy) {
        let hash = audit::entry_hash(&prev, seq, &e);
        db.execute(
            log_sql::SET_CHAIN,
            &[
                Param::Int(id),
                Param::Int(seq),
                Param::Text(&prev),
                Param::Text(&hash),
            ],
        )?;
        prev = hash;
    }
    db.batch(audit::SEQ_INDEX)
}
