//! The embedded SQLite store: a single file, WAL with `synchronous=FULL`.

use crate::accounts::{self, sql};
use crate::audit;
use crate::schema::{self, Dialect};
use crate::{
    AccessEntry, ChainEntry, EpisodeQuery, PendingUpload, Session, SignInLimit, User, UserToken,
};
use crate::{ImportTx, ProgrammeCounts, Result, Store, StoreError, StoredKey};
use crest_core::{Date, Kind, KpiEpisode, Programme, Record, Value, FIELDS, FIELD_COUNT};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};

/// A crest store in a SQLite file.
pub struct SqliteStore {
    conn: Connection,
}

/// Creates a new database file readable and writable by its owner only (0600), before SQLite
/// opens it: the local store holds identifiable data, and SQLite gives its `-wal` and `-shm`
/// files the database file's permissions. An existing file is left as it is.
pub(crate) fn private_file(path: &str) -> Result<()> {
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
        Err(e) => Err(crate::StoreError::Refused(format!(
            "cannot create {path}: {e}"
        ))),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the file at `path`.
    pub fn open(path: &str) -> Result<SqliteStore> {
        private_file(path)?;
        let conn = Connection::open(path)?;
        // First, so that even switching to WAL waits for another writer instead of failing
        // with "database is locked" when many connections open at once.
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -65536)?;
        // Lets index builds after a bulk load sort on a second core.
        conn.pragma_update(None, "threads", 2)?;
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
        if self.version()? < crate::migrations::LOCAL_SQLITE.len() as i64 {
            return Err(StoreError::NotInitialised);
        }
        Ok(())
    }
}

pub(crate) fn to_sql(v: &Value) -> ToSqlOutput<'_> {
    match v {
        Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
        Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
        Value::Num(x) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*x)),
        Value::Date(d) => ToSqlOutput::Owned(rusqlite::types::Value::Text(d.to_string())),
        Value::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
    }
}

type UserRow = (String, String, String, String, bool, String, String);

fn user_token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserToken> {
    Ok(UserToken {
        id: r.get(0)?,
        username: r.get(1)?,
        label: r.get(2)?,
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        revoked_at: r.get(5)?,
    })
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

/// Binds a record's values to parameters 1..=FIELD_COUNT of `st`, one by one: collecting
/// them first was a measurable share of a bulk load. Dates are rendered on the stack.
fn bind(st: &mut rusqlite::Statement<'_>, rec: &Record) -> rusqlite::Result<()> {
    for (i, v) in rec.values().iter().enumerate() {
        match v {
            Value::Date(d) => {
                st.raw_bind_parameter(i + 1, ToSqlOutput::Borrowed(ValueRef::Text(&d.iso_bytes())))?
            }
            Value::Null => st.raw_bind_parameter(i + 1, rusqlite::types::Null)?,
            Value::Text(t) => st.raw_bind_parameter(i + 1, t.as_str())?,
            Value::Int(x) => st.raw_bind_parameter(i + 1, x)?,
            Value::Num(x) => st.raw_bind_parameter(i + 1, x)?,
            Value::Bool(b) => st.raw_bind_parameter(i + 1, b)?,
        }
    }
    Ok(())
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
        let national: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'crest_national_migrations'",
            [],
            |r| r.get(0),
        )?;
        if national {
            return Err(StoreError::Corrupt(crate::NOT_LOCAL.into()));
        }
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
        for m in crate::migrations::LOCAL_SQLITE
            .iter()
            .skip(current as usize)
        {
            tx.execute_batch(m.sql)?;
            tx.execute(
                "INSERT INTO crest_migrations (version) VALUES (?1)",
                [m.version as i64],
            )?;
            applied += 1;
            if m.version == crate::migrations::CHAIN_LEGACY_LOG_AFTER {
                chain_legacy(&tx)?;
            }
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
                    .map_err(|e| StoreError::Corrupt(e.0))?,
            );
        }
        Ok(out)
    }

    fn begin(&mut self) -> Result<Box<dyn ImportTx + '_>> {
        self.ready()?;
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let empty: bool =
            self.conn
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM episodes)", [], |r| {
                    r.get(0)
                })?;
        if empty {
            // Rolled back with the transaction if the import is.
            for (name, _) in schema::BULK_INDEXES {
                self.conn
                    .execute_batch(&format!("DROP INDEX IF EXISTS {name}"))?;
            }
        }
        Ok(Box::new(SqliteTx {
            conn: &self.conn,
            insert: None,
            update: None,
            rebuild_index: empty,
            touched: HashSet::new(),
            packed: HashMap::new(),
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
        let mut st = self
            .conn
            .prepare("SELECT programme_code, facts FROM kpi_facts")?;
        let mut rows = st.query([])?;
        let mut facts = crate::Unpacker::new(programmes, from, to);
        while let Some(r) = rows.next()? {
            let code = text_opt(r.get_ref(0)?).unwrap_or_default();
            let packed = r.get_ref(1)?.as_blob().map_err(|e| {
                StoreError::Corrupt(format!("the KPI facts of programme {code}: {e}"))
            })?;
            facts.add(code, packed)?;
        }
        Ok(facts.out)
    }

    fn episode(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>> {
        self.ready()?;
        get_record(&self.conn, programme, episode_id)
    }

    fn data_version(&mut self, programme: &str) -> Result<u64> {
        self.ready()?;
        let v: Option<i64> = self
            .conn
            .query_row(
                "SELECT version FROM kpi_facts WHERE programme_code = ?1",
                [programme],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.unwrap_or(0) as u64)
    }

    fn count_episodes(&mut self) -> Result<u64> {
        self.ready()?;
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM episodes", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    fn for_each_episode(
        &mut self,
        programme: &str,
        f: &mut dyn FnMut(&Record) -> Result<()>,
    ) -> Result<()> {
        self.ready()?;
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM episodes WHERE programme_code = ?1 ORDER BY episode_id",
            names.join(", ")
        ))?;
        let mut rows = st.query([programme])?;
        while let Some(row) = rows.next()? {
            f(&read_record(row)?.map_err(StoreError::Corrupt)?)?;
        }
        Ok(())
    }

    fn find_episodes(&mut self, programme: &str, query: &EpisodeQuery) -> Result<Vec<Record>> {
        self.ready()?;
        let (filter, params) = accounts::episode_filter(query);
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM episodes WHERE {filter} ORDER BY {} LIMIT {} OFFSET {}",
            names.join(", "),
            query.sort.order_by(),
            query.limit.min(i64::MAX as usize),
            query.offset.min(i64::MAX as usize)
        ))?;
        let values = std::iter::once(programme.to_string()).chain(params);
        let rows = st.query_map(rusqlite::params_from_iter(values), read_record)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?.map_err(StoreError::Corrupt)?);
        }
        Ok(out)
    }

    fn count_matching(&mut self, programme: &str, query: &EpisodeQuery) -> Result<u64> {
        self.ready()?;
        let (filter, params) = accounts::episode_filter(query);
        let values = std::iter::once(programme.to_string()).chain(params);
        let n: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM episodes WHERE {filter}"),
            rusqlite::params_from_iter(values),
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    fn put_user(&mut self, u: &User) -> Result<()> {
        self.ready()?;
        self.conn.execute(
            sql::PUT_USER,
            params![
                u.username,
                u.password_hash,
                u.role.code(),
                u.programmes.join(";"),
                u.disabled,
                u.totp_secret,
                u.regions.join(";")
            ],
        )?;
        Ok(())
    }

    fn put_user_token(&mut self, token_hash: &str, t: &UserToken) -> Result<()> {
        self.ready()?;
        self.conn.execute(
            sql::PUT_USER_TOKEN,
            params![
                token_hash,
                t.id,
                t.username,
                t.label,
                t.created_at,
                t.expires_at
            ],
        )?;
        Ok(())
    }

    fn user_token(&mut self, token_hash: &str) -> Result<Option<UserToken>> {
        self.ready()?;
        Ok(self
            .conn
            .query_row(sql::USER_TOKEN, [token_hash], user_token_row)
            .optional()?)
    }

    fn user_tokens(&mut self, username: &str) -> Result<Vec<UserToken>> {
        self.ready()?;
        let mut st = self.conn.prepare(sql::USER_TOKENS)?;
        let rows = st.query_map([username], user_token_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn revoke_user_token(&mut self, username: &str, id: &str, at: &str) -> Result<bool> {
        self.ready()?;
        Ok(self
            .conn
            .execute(sql::REVOKE_USER_TOKEN, params![username, id, at])?
            > 0)
    }

    fn setting(&mut self, name: &str) -> Result<Option<String>> {
        self.ready()?;
        Ok(self
            .conn
            .query_row(sql::SETTING, [name], |r| r.get(0))
            .optional()?)
    }

    fn put_setting(&mut self, name: &str, value: &str) -> Result<()> {
        self.ready()?;
        self.conn.execute(sql::PUT_SETTING, [name, value])?;
        Ok(())
    }

    fn user(&mut self, username: &str) -> Result<Option<User>> {
        self.ready()?;
        let row = self
            .conn
            .query_row(sql::USER, [username], user_row)
            .optional()?;
        row.map(|(n, h, r, p, d, t, g)| accounts::user_of(n, h, &r, &p, d, t, &g))
            .transpose()
    }

    fn users(&mut self) -> Result<Vec<User>> {
        self.ready()?;
        let mut st = self.conn.prepare(sql::USERS)?;
        let rows = st.query_map([], user_row)?;
        let mut out = Vec::new();
        for r in rows {
            let (n, h, role, p, d, t, g) = r?;
            out.push(accounts::user_of(n, h, &role, &p, d, t, &g)?);
        }
        Ok(out)
    }

    fn put_session(&mut self, x: &Session) -> Result<()> {
        self.conn.execute(
            sql::PUT_SESSION,
            params![x.token_hash, x.username, x.csrf, x.created, x.seen],
        )?;
        Ok(())
    }

    fn session(&mut self, token_hash: &str) -> Result<Option<Session>> {
        Ok(self
            .conn
            .query_row(sql::SESSION, [token_hash], |r| {
                Ok(Session {
                    token_hash: r.get(0)?,
                    username: r.get(1)?,
                    csrf: r.get(2)?,
                    created: r.get(3)?,
                    seen: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn touch_session(&mut self, token_hash: &str, seen: i64) -> Result<()> {
        self.conn
            .execute(sql::TOUCH_SESSION, params![token_hash, seen])?;
        Ok(())
    }

    fn drop_session(&mut self, token_hash: &str) -> Result<()> {
        self.conn.execute(sql::DROP_SESSION, [token_hash])?;
        Ok(())
    }

    fn drop_user_sessions(&mut self, username: &str) -> Result<()> {
        self.conn.execute(sql::DROP_USER_SESSIONS, [username])?;
        Ok(())
    }

    fn log(&mut self, e: &AccessEntry) -> Result<()> {
        append_log(&mut self.conn, e)
    }

    fn put_upload(&mut self, u: &PendingUpload) -> Result<()> {
        self.conn.execute(
            "INSERT INTO pending_uploads (token, programme_code, name, created, file, errors) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![u.token, u.programme, u.name, u.created, u.file, u.errors],
        )?;
        self.conn.execute(
            sql::KEEP_NEWEST_UPLOADS,
            params![u.programme, crate::MAX_PENDING_UPLOADS as i64],
        )?;
        Ok(())
    }

    fn upload(&mut self, programme: &str, token: &str) -> Result<Option<PendingUpload>> {
        Ok(self
            .conn
            .query_row(
                "SELECT token, programme_code, name, created, file, errors FROM pending_uploads \
                 WHERE programme_code = ?1 AND token = ?2",
                [programme, token],
                |r| {
                    Ok(PendingUpload {
                        token: r.get(0)?,
                        programme: r.get(1)?,
                        name: r.get(2)?,
                        created: r.get(3)?,
                        file: r.get(4)?,
                        errors: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    fn drop_upload(&mut self, programme: &str, token: &str) -> Result<()> {
        self.conn.execute(
            "DELETE FROM pending_uploads WHERE programme_code = ?1 AND token = ?2",
            [programme, token],
        )?;
        Ok(())
    }

    fn sweep(&mut self, before: i64, idle_before_ms: i64) -> Result<usize> {
        let n = self
            .conn
            .execute("DELETE FROM pending_uploads WHERE created < ?1", [before])?;
        self.conn.execute(
            "DELETE FROM sign_in_limits WHERE last_ms < ?1 AND started_ms < ?1",
            [idle_before_ms],
        )?;
        Ok(n)
    }

    fn sign_in_limits(
        &mut self,
        keys: &[&str],
        decide: &mut dyn FnMut(&mut [SignInLimit]) -> bool,
    ) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut limits = Vec::with_capacity(keys.len());
        for k in keys {
            let found = tx
                .query_row(
                    "SELECT failures, in_flight, last_ms, started_ms FROM sign_in_limits WHERE key = ?1",
                    [k],
                    |r| {
                        Ok(SignInLimit {
                            key: k.to_string(),
                            failures: r.get(0)?,
                            in_flight: r.get(1)?,
                            last_ms: r.get(2)?,
                            started_ms: r.get(3)?,
                        })
                    },
                )
                .optional()?;
            limits.push(found.unwrap_or(SignInLimit {
                key: k.to_string(),
                ..Default::default()
            }));
        }
        let verdict = decide(&mut limits);
        for l in &limits {
            tx.execute(
                "INSERT INTO sign_in_limits (key, failures, in_flight, last_ms, started_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, in_flight = excluded.in_flight, \
                 last_ms = excluded.last_ms, started_ms = excluded.started_ms",
                params![l.key, l.failures, l.in_flight, l.last_ms, l.started_ms],
            )?;
        }
        tx.commit()?;
        Ok(verdict)
    }

    fn put_agreement(&mut self, a: &crest_core::governance::Agreement) -> Result<()> {
        self.ready()?;
        self.conn.execute(
            sql::PUT_AGREEMENT,
            rusqlite::params_from_iter(accounts::agreement_row(a).iter()),
        )?;
        Ok(())
    }

    fn agreements(&mut self) -> Result<Vec<crest_core::governance::Agreement>> {
        self.ready()?;
        let mut st = self.conn.prepare(sql::AGREEMENTS)?;
        let rows: Vec<[String; 7]> = st
            .query_map([], |r| {
                Ok([
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ])
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(accounts::agreement_of).collect()
    }

    fn sent_episodes(&mut self, programme: &str) -> Result<Vec<String>> {
        self.ready()?;
        let mut st = self.conn.prepare(sql::SENT)?;
        let rows = st.query_map([programme], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn record_sent(
        &mut self,
        programme: &str,
        sent: &[String],
        withdrawn: &[String],
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        for id in sent {
            tx.execute(sql::ADD_SENT, params![programme, id])?;
        }
        for id in withdrawn {
            tx.execute(sql::DROP_SENT, params![programme, id])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn access_log_chain(&mut self, after: i64, limit: usize) -> Result<Vec<ChainEntry>> {
        self.ready()?;
        read_chain(&self.conn, after, limit)
    }

    fn access_log(&mut self, limit: usize) -> Result<Vec<AccessEntry>> {
        let mut st = self.conn.prepare(sql::ACCESS_LOG)?;
        let rows = st.query_map([limit.min(i64::MAX as usize) as i64], entry_of)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// An import transaction; the statements are prepared once and held for the whole file.
/// Dropped without [`ImportTx::commit`], it rolls back.
struct SqliteTx<'a> {
    conn: &'a Connection,
    insert: Option<rusqlite::Statement<'a>>,
    update: Option<rusqlite::Statement<'a>>,
    /// The table was empty at the start: the indexes were dropped for a bulk load and are
    /// built again at commit, and there are no stored keys to read.
    rebuild_index: bool,
    /// Programmes whose KPI facts must be packed again from the table at commit.
    touched: HashSet<String>,
    /// In a bulk load, each programme's facts packed as its rows are inserted, which saves
    /// reading everything back at commit.
    packed: HashMap<String, Vec<u8>>,
    committed: bool,
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteTx<'_> {
    fn touch(&mut self, rec: &Record, inserted: bool) {
        let code = rec.text(crest_core::Col::ProgrammeCode).unwrap_or_default();
        let facts = KpiEpisode::of_record(rec, 0);
        match (self.rebuild_index && inserted, facts) {
            (true, Some(facts)) if !self.touched.contains(code) => {
                if let Some(packed) = self.packed.get_mut(code) {
                    facts.encode(packed);
                } else {
                    let mut packed = Vec::new();
                    facts.encode(&mut packed);
                    self.packed.insert(code.to_string(), packed);
                }
            }
            _ => {
                self.packed.remove(code);
                if !self.touched.contains(code) {
                    self.touched.insert(code.to_string());
                }
            }
        }
    }
}

/// Appends an entry to the access log of a SQLite store (local or national), chained to the
/// last. IMMEDIATE takes the write lock before reading the head, so appends never fork.
pub(crate) fn append_log(conn: &mut Connection, e: &AccessEntry) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    write_log(&tx, e)?;
    tx.commit()?;
    Ok(())
}

/// Appends an entry inside the caller's (write) transaction, so it commits with the change it
/// records or not at all.
pub(crate) fn write_log(tx: &Connection, e: &AccessEntry) -> Result<()> {
    let head: Option<(i64, String)> = tx
        .query_row(sql::LOG_HEAD, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = head.map_or((1, audit::GENESIS.to_string()), |(s, h)| (s + 1, h));
    let hash = audit::entry_hash(&prev, seq, e);
    tx.execute(
        sql::LOG,
        params![
            e.at,
            e.username,
            e.role,
            e.programme,
            e.action,
            e.target,
            e.outcome,
            e.detail,
            seq,
            prev,
            hash
        ],
    )?;
    Ok(())
}

/// Access-log entries with their chain fields, from sequence `after + 1`.
pub(crate) fn read_chain(conn: &Connection, after: i64, limit: usize) -> Result<Vec<ChainEntry>> {
    let mut st = conn.prepare(sql::LOG_CHAIN)?;
    let rows = st.query_map(params![after, limit.min(i64::MAX as usize) as i64], |r| {
        Ok(ChainEntry {
            entry: entry_of(r)?,
            seq: r.get(8)?,
            prev_hash: r.get(9)?,
            hash: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An access-log entry from its first eight columns.
pub(crate) fn entry_of(r: &rusqlite::Row) -> rusqlite::Result<AccessEntry> {
    Ok(AccessEntry {
        at: r.get(0)?,
        username: r.get(1)?,
        role: r.get(2)?,
        programme: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        outcome: r.get(6)?,
        detail: r.get(7)?,
    })
}

/// Chains access-log entries written before migration 4, in the order they were written.
fn chain_legacy(tx: &Connection) -> Result<()> {
    let legacy: Vec<(i64, AccessEntry)> = {
        let mut st = tx.prepare(sql::LOG_LEGACY)?;
        let rows = st.query_map([], |r| Ok((r.get(8)?, entry_of(r)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut prev = audit::GENESIS.to_string();
    for (seq, (id, e)) in (1_i64..).zip(legacy) {
        let hash = audit::entry_hash(&prev, seq, &e);
        tx.execute(sql::LOG_SET_CHAIN, params![id, seq, prev, hash])?;
        prev = hash;
    }
    tx.execute(audit::SEQ_INDEX, [])?;
    Ok(())
}

/// Packs one programme's KPI facts again from its stored episodes.
fn pack_facts(conn: &Connection, programme: &str) -> Result<()> {
    let mut st = conn.prepare_cached(&schema::sql(Dialect::Sqlite).kpi)?;
    let mut rows = st.query([programme])?;
    let mut facts = Vec::new();
    while let Some(r) = rows.next()? {
        let mut cells = [None; 8];
        for (i, cell) in cells.iter_mut().enumerate() {
            *cell = text_opt(r.get_ref(i)?);
        }
        crate::pack_row(cells, &mut facts)?;
    }
    store_facts(conn, programme, &facts)
}

fn store_facts(conn: &Connection, programme: &str, facts: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO kpi_facts (programme_code, facts) VALUES (?1, ?2) \
         ON CONFLICT (programme_code) DO UPDATE SET facts = excluded.facts, \
                 version = kpi_facts.version + 1",
    )?
    .execute(params![programme, facts])?;
    Ok(())
}

impl ImportTx for SqliteTx<'_> {
    fn log(&mut self, entry: &AccessEntry) -> Result<()> {
        write_log(self.conn, entry)
    }

    fn keys(&mut self, programme: &str) -> Result<Vec<StoredKey>> {
        if self.rebuild_index {
            // Nothing was stored before this transaction (and without the index the query
            // would scan everything inserted so far).
            return Ok(Vec::new());
        }
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
        bind(st, rec)?;
        st.raw_execute()?;
        self.touch(rec, true);
        Ok(())
    }

    fn update(&mut self, rec: &Record) -> Result<()> {
        let st = match &mut self.update {
            Some(st) => st,
            None => self
                .update
                .insert(self.conn.prepare(&schema::sql(Dialect::Sqlite).update)?),
        };
        bind(st, rec)?;
        for (i, c) in [crest_core::Col::ProgrammeCode, crest_core::Col::EpisodeId]
            .into_iter()
            .enumerate()
        {
            st.raw_bind_parameter(FIELD_COUNT + 1 + i, to_sql(rec.get(c)))?;
        }
        st.raw_execute()?;
        self.touch(rec, true);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        // Statements must be finalised before COMMIT releases the transaction.
        self.insert = None;
        self.update = None;
        if self.rebuild_index {
            for (_, sql) in schema::BULK_INDEXES {
                self.conn.execute_batch(sql)?;
            }
        }
        for programme in &self.touched {
            pack_facts(self.conn, programme)?;
        }
        for (programme, facts) in &self.packed {
            store_facts(self.conn, programme, facts)?;
        }
        self.conn.execute_batch("COMMIT")?;
        self.committed = true;
        Ok(())
    }
}
