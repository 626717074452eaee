//! The embedded SQLite store: a single file, WAL with `synchronous=FULL`.

use crate::schema::{self, Dialect};
use crate::{ImportTx, ProgrammeCounts, Result, Store, StoreError, StoredKey};
use crest_core::{Date, Kind, KpiEpisode, Programme, Record, Value, FIELDS};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;

const MIGRATIONS: &[fn() -> Vec<String>] = &[|| schema::v1(Dialect::Sqlite)];

/// A crest store in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the file at `path`.
    pub fn open(path: &str) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(SqliteStore { conn })
    }

    fn version(&self) -> Result<i64> {
        let exists: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'crest_migrations'",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(0);
        }
        Ok(self.conn.query_row(
            "SELECT coalesce(max(version), 0) FROM crest_migrations",
            [],
            |r| r.get(0),
        )?)
    }

    fn ready(&self) -> Result<()> {
        if self.version()? < MIGRATIONS.len() as i64 {
            return Err(StoreError::NotInitialised);
        }
        Ok(())
    }
}

fn to_sql(v: &Value) -> ToSqlOutput<'_> {
    match v {
        Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
        Value::Num(x) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*x)),
        Value::Date(d) => ToSqlOutput::Owned(rusqlite::types::Value::Text(d.to_string())),
        Value::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
    }
}

fn read_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<std::result::Result<Record, String>> {
    let mut values = Vec::with_capacity(FIELDS.len());
    for (i, f) in FIELDS.iter().enumerate() {
        let v = match (row.get_ref(i)?, f.kind) {
            (ValueRef::Null, _) => Value::Null,
            (ValueRef::Text(t), Kind::Date) => {
                let s = String::from_utf8_lossy(t);
                match Date::parse_iso(&s) {
                    Ok(d) => Value::Date(d),
                    Err(e) => return Ok(Err(format!("{}: {}", f.name, e.0))),
                }
            }
            (ValueRef::Text(t), _) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            (ValueRef::Integer(x), Kind::Bool) => Value::Bool(x != 0),
            (ValueRef::Integer(x), Kind::Decimal { .. }) => Value::Num(x as f64),
            (ValueRef::Integer(x), _) => Value::Int(x),
            (ValueRef::Real(x), _) => Value::Num(x),
            (ValueRef::Blob(_), _) => return Ok(Err(format!("{}: unexpected blob", f.name))),
        };
        values.push(v);
    }
    Ok(Record::from_values(values).ok_or_else(|| "wrong column count".to_string()))
}

fn get_record(conn: &Connection, programme: &str, episode_id: &str) -> Result<Option<Record>> {
    let mut st = conn.prepare_cached(&schema::sql(Dialect::Sqlite).select)?;
    match st
        .query_row(params![programme, episode_id], read_record)
        .optional()?
    {
        Some(Ok(r)) => Ok(Some(r)),
        Some(Err(e)) => Err(StoreError::Corrupt(e)),
        None => Ok(None),
    }
}

fn text_opt(v: ValueRef<'_>) -> Option<&str> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn migrate(&mut self) -> Result<usize> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS crest_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
            [],
        )?;
        let current: i64 = tx.query_row(
            "SELECT coalesce(max(version), 0) FROM crest_migrations",
            [],
            |r| r.get(0),
        )?;
        let mut applied = 0;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            for sql in m() {
                tx.execute(&sql, [])?;
            }
            tx.execute(
                "INSERT INTO crest_migrations (version) VALUES (?1)",
                [i as i64 + 1],
            )?;
            applied += 1;
        }
        tx.commit()?;
        Ok(applied)
    }

    fn upsert_programmes(&mut self, programmes: &[Programme]) -> Result<ProgrammeCounts> {
        self.ready()?;
        let tx = self.conn.transaction()?;
        let mut counts = ProgrammeCounts::default();
        for p in programmes {
            let exists: bool = tx.query_row(
                "SELECT count(*) > 0 FROM programmes WHERE programme_code = ?1",
                [&p.code],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO programmes (programme_code, name, nation, region, professions, offers) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (programme_code) DO UPDATE SET name = excluded.name, nation = excluded.nation,
                 region = excluded.region, professions = excluded.professions, offers = excluded.offers",
                params![p.code, p.name, p.nation.code(), p.region, p.professions_text(), p.offers_text()],
            )?;
            if exists {
                counts.updated += 1
            } else {
                counts.added += 1
            }
        }
        tx.commit()?;
        Ok(counts)
    }

    fn programmes(&mut self) -> Result<Vec<Programme>> {
        self.ready()?;
        let mut st = self.conn.prepare(
            "SELECT programme_code, name, nation, region, professions, offers FROM programmes ORDER BY programme_code",
        )?;
        let rows = st.query_map([], |r| {
            Ok([
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ])
        })?;
        let mut out = Vec::new();
        for row in rows {
            let row = row?;
            out.push(
                Programme::parse(row.each_ref().map(String::as_str))
                    .map_err(StoreError::Corrupt)?,
            );
        }
        Ok(out)
    }

    fn begin(&mut self) -> Result<Box<dyn ImportTx + '_>> {
        self.ready()?;
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Box::new(SqliteTx {
            conn: &self.conn,
            insert: None,
            update: None,
            committed: false,
        }))
    }

    fn kpi_episodes(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
    ) -> Result<Vec<KpiEpisode>> {
        self.ready()?;
        let index: HashMap<&str, usize> = programmes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.code.as_str(), i))
            .collect();
        let mut st = self.conn.prepare(&schema::sql(Dialect::Sqlite).kpi)?;
        let mut rows = st.query(params![from.to_string(), to.to_string()])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let Some(&p) = text_opt(r.get_ref(0)?).and_then(|c| index.get(c)) else {
                continue;
            };
            let t = |i| r.get_ref(i).map(text_opt);
            out.push(crate::kpi_row(
                p,
                t(1)?.unwrap_or(""),
                t(2)?,
                t(3)?,
                t(4)?,
                t(5)?,
                t(6)?.unwrap_or(""),
                t(7)?.unwrap_or(""),
                t(8)?.unwrap_or(""),
            )?);
        }
        Ok(out)
    }

    fn episode(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>> {
        self.ready()?;
        get_record(&self.conn, programme, episode_id)
    }

    fn count_episodes(&mut self) -> Result<u64> {
        self.ready()?;
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM episodes", [], |r| r.get::<_, i64>(0))?
            as u64)
    }
}

/// An import transaction; the statements are prepared once and held for the whole file.
/// Dropped without [`ImportTx::commit`], it rolls back.
struct SqliteTx<'a> {
    conn: &'a Connection,
    insert: Option<rusqlite::Statement<'a>>,
    update: Option<rusqlite::Statement<'a>>,
    committed: bool,
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl ImportTx for SqliteTx<'_> {
    fn keys(&mut self, programme: &str) -> Result<Vec<StoredKey>> {
        let mut st = self.conn.prepare_cached(
            "SELECT episode_id, nhs_number, event_date FROM episodes WHERE programme_code = ?1",
        )?;
        let rows = st.query_map([programme], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (episode_id, nhs_number, event) = row?;
            let event_date = Date::parse_iso(&event).map_err(|e| StoreError::Corrupt(e.0))?;
            out.push(StoredKey {
                episode_id,
                nhs_number,
                event_date,
            });
        }
        Ok(out)
    }

    fn get(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>> {
        get_record(self.conn, programme, episode_id)
    }

    fn insert(&mut self, rec: &Record) -> Result<()> {
        let st = match &mut self.insert {
            Some(st) => st,
            None => self
                .insert
                .insert(self.conn.prepare(&schema::sql(Dialect::Sqlite).insert)?),
        };
        st.execute(rusqlite::params_from_iter(rec.values().iter().map(to_sql)))?;
        Ok(())
    }

    fn update(&mut self, rec: &Record) -> Result<()> {
        let st = match &mut self.update {
            Some(st) => st,
            None => self
                .update
                .insert(self.conn.prepare(&schema::sql(Dialect::Sqlite).update)?),
        };
        let key = [crest_core::Col::ProgrammeCode, crest_core::Col::EpisodeId]
            .map(|c| to_sql(rec.get(c)));
        st.execute(rusqlite::params_from_iter(
            rec.values().iter().map(to_sql).chain(key),
        ))?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        // Statements must be finalised before COMMIT releases the transaction.
        self.insert = None;
        self.update = None;
        self.conn.execute_batch("COMMIT")?;
        self.committed = true;
        Ok(())
    }
}
