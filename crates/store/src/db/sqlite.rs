//! SQLite for both stores: one file, WAL with `synchronous=FULL`, writers waiting for each
//! other rather than failing with "database is locked".

use super::{Db, Lock, Param, RowRef};
use crate::{Result, StoreError};
use rusqlite::types::{ToSqlOutput, ValueRef};

/// How long a connection waits for another's write lock before giving up.
pub(crate) const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A SQLite database file, open.
pub struct Sqlite {
    pub(crate) conn: rusqlite::Connection,
    /// The page cache between scans, in KiB.
    cache_kib: u32,
}

/// Creates a new database file readable and writable by its owner only (0600), before SQLite
/// opens it: the local store holds identifiable data, and SQLite gives its `-wal` and `-shm`
/// files the database file's permissions. An existing file is left as it is.
fn private_file(path: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.is_empty() || path == ":memory:" || std::path::Path::new(path).exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Made meanwhile by another process: it is theirs to have created.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Refused(format!("cannot create {path}: {e}"))),
    }
}

impl Sqlite {
    /// Opens (creating if needed) the file at `path`, with a page cache of `cache_kib` KiB.
    pub(crate) fn open(path: &str, cache_kib: u32) -> Result<Sqlite> {
        private_file(path)?;
        let conn = rusqlite::Connection::open(path)?;
        // First, so that even switching to WAL waits for another writer instead of failing
        // with "database is locked" when many connections open at once.
        conn.busy_timeout(BUSY_WAIT)?;
        wal(&conn)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-{cache_kib};"
        ))?;
        // Lets index builds after a bulk load sort on a second core.
        conn.pragma_update(None, "threads", 2)?;
        Ok(Sqlite { conn, cache_kib })
    }
}

/// Puts the file in WAL mode (a no-op when it is already). While a first import is being
/// written with a rollback journal (`LocalDb::bulk_start`), SQLite refuses the switch at once
/// instead of waiting as other statements do, so it is asked again until the import is done,
/// for as long as a writer would wait.
fn wal(conn: &rusqlite::Connection) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                if started.elapsed() >= BUSY_WAIT {
                    return Err(StoreError::Refused(
                        "the store is busy with another import; try again when it has finished"
                            .into(),
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A dataset value as a SQLite value (dates as ISO text, yes/no as 1/0).
pub(crate) fn value_sql(v: &crest_core::Value) -> ToSqlOutput<'_> {
    use crest_core::Value;
    match v {
        Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
        Value::Num(x) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*x)),
        Value::Date(d) => ToSqlOutput::Owned(rusqlite::types::Value::Text(d.to_string())),
        Value::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
    }
}

/// Parameters as SQLite values.
pub(crate) fn params<'a>(p: &'a [Param<'a>]) -> Vec<ToSqlOutput<'a>> {
    p.iter()
        .map(|p| match p {
            Param::Text(t) => ToSqlOutput::from(*t),
            Param::Int(n) => ToSqlOutput::from(*n),
            Param::Bool(b) => ToSqlOutput::from(*b),
            Param::Blob(b) => ToSqlOutput::from(*b),
        })
        .collect()
}

impl RowRef for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
            other => Err(StoreError::Corrupt(format!(
                "column {i} holds {:?}, not text",
                other.data_type()
            ))),
        }
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        Ok(match self.get_ref(i)? {
            ValueRef::Null => None,
            ValueRef::Integer(n) => Some(n),
            ValueRef::Real(x) => Some(x as i64),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "column {i} holds {:?}, not a number",
                    other.data_type()
                )))
            }
        })
    }

    fn real(&self, i: usize) -> Result<Option<f64>> {
        Ok(match self.get_ref(i)? {
            ValueRef::Null => None,
            ValueRef::Integer(n) => Some(n as f64),
            ValueRef::Real(x) => Some(x),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "column {i} holds {:?}, not a number",
                    other.data_type()
                )))
            }
        })
    }

    fn flag(&self, i: usize) -> Result<Option<bool>> {
        Ok(self.int(i)?.map(|n| n != 0))
    }

    fn blob(&self, i: usize) -> Result<Option<&[u8]>> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Ok(Some(b)),
            other => Err(StoreError::Corrupt(format!(
                "column {i} holds {:?}, not bytes",
                other.data_type()
            ))),
        }
    }
}

impl Db for Sqlite {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn scanning(&mut self, on: bool) -> Result<()> {
        // The store's own cache for repeated reads; 4 MB while a scan streams past.
        let kib = if on { 4096 } else { self.cache_kib };
        self.conn
            .execute_batch(&format!("PRAGMA cache_size=-{kib};"))?;
        Ok(())
    }

    fn has_table(&mut self, name: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get(0),
        )?)
    }

    fn columns(&mut self) -> Result<Vec<String>> {
        let tables: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for t in tables {
            let cols: Vec<String> = self
                .conn
                .prepare("SELECT name FROM pragma_table_info(?1)")?
                .query_map([&t], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            out.extend(cols.into_iter().map(|col| format!("{t}.{col}")));
        }
        Ok(out)
    }

    fn each(
        &mut self,
        sql: &str,
        p: &[Param],
        row: &mut dyn FnMut(&dyn RowRef) -> Result<()>,
    ) -> Result<()> {
        let mut st = self.conn.prepare_cached(sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(params(p).iter()))?;
        while let Some(r) = rows.next()? {
            row(r)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, p: &[Param]) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params(p).iter()))?)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin(&mut self, _lock: Lock) -> Result<()> {
        // SQLite has one writer: taking the write lock at once means a transaction never
        // fails half-way for want of it.
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn commit(&mut self) -> Result<()> {
        Ok(self.conn.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}
