//! The national store on SQLite.

use super::backend::{NationalDb, Param, RowRef};
use super::model::{national_fields, Receipt, ReceiptItem, ReceiptItems, Received};
use super::receipt;
use crate::{AccessEntry, ChainEntry, Result, StoreError};
use rusqlite::types::ValueRef;

/// A national store in a SQLite file.
pub(crate) struct SqliteNational {
    conn: rusqlite::Connection,
}

/// SQLite's page cache for the national store, in KiB.
const PAGE_CACHE_KIB: u32 = 131_072;

impl SqliteNational {
    /// Opens (creating if needed) the file at `path`.
    pub(crate) fn open(path: &str) -> Result<SqliteNational> {
        crate::sqlite::private_file(path)?;
        let conn = rusqlite::Connection::open(path)?;
        // Writers wait for each other rather than fail with "database is locked".
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; \
             PRAGMA cache_size=-{PAGE_CACHE_KIB};"
        ))?;
        Ok(SqliteNational { conn })
    }
}

fn params<'a>(p: &'a [Param<'a>]) -> Vec<rusqlite::types::ToSqlOutput<'a>> {
    p.iter()
        .map(|p| match p {
            Param::Text(t) => rusqlite::types::ToSqlOutput::from(*t),
            Param::Int(n) => rusqlite::types::ToSqlOutput::from(*n),
            Param::Blob(b) => rusqlite::types::ToSqlOutput::from(*b),
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

impl NationalDb for SqliteNational {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn scanning(&mut self, on: bool) -> Result<()> {
        // 128 MB for the analyses' repeated reads; 4 MB while a scan streams past.
        let kib = if on { 4096 } else { PAGE_CACHE_KIB };
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
            .execute(sql, rusqlite::params_from_iter(params(p).iter()))?)
    }

    fn transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn NationalDb) -> Result<()>,
    ) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match work(self) {
            Ok(()) => Ok(self.conn.execute_batch("COMMIT")?),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn append_log(&mut self, e: &AccessEntry) -> Result<()> {
        crate::sqlite::append_log(&mut self.conn, e)
    }

    fn read_chain(&mut self, after: i64, limit: usize) -> Result<Vec<ChainEntry>> {
        crate::sqlite::read_chain(&self.conn, after, limit)
    }

    fn migrate(&mut self) -> Result<usize> {
        let tx = self.conn.transaction()?;
        tx.execute(crate::migrations::NATIONAL_TABLE, [])?;
        let v: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) FROM crest_national_migrations",
            [],
            |r| r.get(0),
        )?;
        let mut applied = 0;
        for m in crate::migrations::NATIONAL_SQLITE.iter().skip(v as usize) {
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO crest_national_migrations (version) VALUES (?1)",
                [m.version as i64],
            )?;
            applied += 1;
        }
        tx.commit()?;
        Ok(applied)
    }

    fn receive(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received> {
        let slot = receipt::slot(r);
        let insert = receipt::insert_episode();
        let (from, to) = (r.from.to_string(), r.to.to_string());
        let (n_eps, n_tomb) = (r.episodes as i64, r.tombstones as i64);
        let c = &mut self.conn;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if tx.query_row(receipt::SEEN, [&r.id], |x| x.get::<_, i64>(0))? > 0 {
            return Ok(Received::AlreadyReceived);
        }
        let current: Option<(String, String)> = {
            use rusqlite::OptionalExtension;
            tx.query_row(receipt::CURRENT, [&slot], |x| Ok((x.get(0)?, x.get(1)?)))
                .optional()?
        };
        // The programme's packed facts are stale from here on, so they are emptied first: the
        // row triggers count every changed episode on that row, and SQLite rewrites a row
        // whole, so counting beside a large packed blob made replacing quadratic (60,000
        // episodes: 98 s). They are packed again when next read.
        tx.execute(
            "UPDATE national_kpi_facts SET facts = x'', packed_changes = -1 WHERE programme_code = ?1",
            [&r.programme],
        )?;
        let mut replaced = 0;
        if let Some((old, created)) = current {
            if created > r.created_at {
                return Err(receipt::older(r, &created));
            }
            replaced = tx.execute(receipt::DROP_OLD, [&r.programme, &old])?;
            tx.execute(receipt::RETIRE, [&old])?;
        }
        tx.execute(
            receipt::SUBMISSION,
            rusqlite::params![
                r.id,
                r.programme,
                from,
                to,
                r.key_id,
                r.dataset_version,
                r.created_at,
                received_at,
                n_eps,
                n_tomb,
                slot
            ],
        )?;
        let (mut stored, mut tombstones, mut deleted) = (0, 0, 0);
        {
            let mut st = tx.prepare(&insert)?;
            let mut drop_one = tx.prepare(receipt::TOMBSTONE)?;
            for item in items() {
                match item.map_err(StoreError::Refused)? {
                    ReceiptItem::Tombstone(t) => {
                        tombstones += 1;
                        deleted += drop_one.execute([&r.programme, &t])?;
                    }
                    ReceiptItem::Episode(e) => {
                        stored += 1;
                        let mut p: Vec<rusqlite::types::ToSqlOutput> = vec![
                            rusqlite::types::ToSqlOutput::from(e.episode_key.as_str()),
                            rusqlite::types::ToSqlOutput::from(e.patient_key.as_str()),
                            rusqlite::types::ToSqlOutput::from(r.id.as_str()),
                        ];
                        p.extend(
                            national_fields().map(|f| crate::sqlite::to_sql(e.record.get(f.col))),
                        );
                        // Delete then plain insert, not an upsert: an upsert makes
                        // SQLite journal every page each row touches (a statement
                        // journal), which doubled the cost of a large receipt.
                        drop_one.execute([&r.programme, &e.episode_key])?;
                        st.execute(rusqlite::params_from_iter(p.iter()))?;
                    }
                }
            }
        }
        if (stored, tombstones) != (r.episodes, r.tombstones) {
            return Err(receipt::mismatch(r, stored, tombstones));
        }
        if let Some(e) = receipt::entry(log, received_at, (stored, replaced, deleted)) {
            crate::sqlite::write_log(&tx, &e)?;
        }
        tx.commit()?;
        Ok(Received::Stored {
            episodes: stored,
            replaced,
            deleted,
        })
    }
}
