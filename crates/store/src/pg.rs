//! The PostgreSQL store, for production and multi-user set-ups (durable defaults).

use crate::accounts::{self, sql};
use crate::audit;
use crate::schema::{self, Dialect};
use crate::{
    AccessEntry, ChainEntry, EpisodeQuery, PendingUpload, Session, SignInLimit, User, UserToken,
};
use crate::{ImportTx, ProgrammeCounts, Result, Store, StoreError, StoredKey};
use crest_core::{Col, Date, Kind, KpiEpisode, Programme, Record, Value, FIELDS};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row};
use std::collections::HashSet;

/// A crest store in a PostgreSQL database.
pub struct PgStore {
    client: Client,
}

fn user_token_row(r: &postgres::Row) -> UserToken {
    UserToken {
        id: r.get(0),
        username: r.get(1),
        label: r.get(2),
        created_at: r.get(3),
        expires_at: r.get(4),
        revoked_at: r.get(5),
    }
}

impl PgStore {
    /// Connects to a `postgres://` URL.
    pub fn connect(url: &str) -> Result<PgStore> {
        Ok(PgStore {
            client: Client::connect(url, NoTls)?,
        })
    }

    fn ready(&mut self) -> Result<()> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('crest_migrations') IS NOT NULL", &[])?
            .get(0);
        let version: i64 = if exists {
            self.client
                .query_one(
                    "SELECT coalesce(max(version), 0)::BIGINT FROM crest_migrations",
                    &[],
                )?
                .get(0)
        } else {
            0
        };
        if version < crate::migrations::LOCAL_POSTGRES.len() as i64 {
            return Err(StoreError::NotInitialised);
        }
        Ok(())
    }
}

/// Typed parameters for one record, so that NULLs carry their column's type.
fn params(rec: &Record) -> Vec<Box<dyn ToSql + Sync>> {
    FIELDS
        .iter()
        .zip(rec.values())
        .map(|(f, v)| param(f, v))
        .collect()
}

/// One value as a typed parameter for its field's column.
pub(crate) fn param(f: &crest_core::Field, v: &Value) -> Box<dyn ToSql + Sync> {
    match (f.kind, v) {
        (Kind::Int { .. }, Value::Int(i)) => Box::new(Some(*i)),
        (Kind::Int { .. }, _) => Box::new(None::<i64>),
        (Kind::Decimal { .. }, Value::Num(x)) => Box::new(Some(*x)),
        (Kind::Decimal { .. }, _) => Box::new(None::<f64>),
        (Kind::Bool, Value::Bool(b)) => Box::new(Some(*b)),
        (Kind::Bool, _) => Box::new(None::<bool>),
        (_, Value::Null) => Box::new(None::<String>),
        (_, v) => Box::new(Some(v.to_text())),
    }
}

fn read_record(row: &Row) -> Result<Record> {
    let mut values = Vec::with_capacity(FIELDS.len());
    for (i, f) in FIELDS.iter().enumerate() {
        let v = match f.kind {
            Kind::Int { .. } => row.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Int),
            Kind::Decimal { .. } => row.get::<_, Option<f64>>(i).map_or(Value::Null, Value::Num),
            Kind::Bool => row
                .get::<_, Option<bool>>(i)
                .map_or(Value::Null, Value::Bool),
            Kind::Date => match row.get::<_, Option<&str>>(i) {
                Some(s) => Value::Date(
                    Date::parse_iso(s)
                        .map_err(|e| StoreError::Corrupt(format!("{}: {}", f.name, e.0)))?,
                ),
                None => Value::Null,
            },
            _ => row
                .get::<_, Option<String>>(i)
                .map_or(Value::Null, Value::Text),
        };
        values.push(v);
    }
    Record::from_values(values).ok_or_else(|| StoreError::Corrupt("wrong column count".into()))
}

fn get_record(
    c: &mut impl postgres::GenericClient,
    programme: &str,
    episode_id: &str,
) -> Result<Option<Record>> {
    let sql = &schema::sql(Dialect::Postgres).select;
    match c.query_opt(sql.as_str(), &[&programme, &episode_id])? {
        Some(row) => Ok(Some(read_record(&row)?)),
        None => Ok(None),
    }
}

impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn migrate(&mut self) -> Result<usize> {
        let national: bool = self
            .client
            .query_one(
                "SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = current_schema() \
                 AND table_name = 'crest_national_migrations'",
                &[],
            )?
            .get(0);
        if national {
            return Err(StoreError::Corrupt(crate::NOT_LOCAL.into()));
        }
        let mut tx = self.client.transaction()?;
        // Serialise concurrent `crest init`s.
        tx.execute("SELECT pg_advisory_xact_lock(421337)", &[])?;
        tx.execute(
            "CREATE TABLE IF NOT EXISTS crest_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            &[],
        )?;
        let current: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::BIGINT FROM crest_migrations",
                &[],
            )?
            .get(0);
        let mut applied = 0;
        for m in crate::migrations::LOCAL_POSTGRES
            .iter()
            .skip(current as usize)
        {
            tx.batch_execute(m.sql)?;
            tx.execute(
                "INSERT INTO crest_migrations (version) VALUES ($1)",
                &[&(m.version as i64)],
            )?;
            applied += 1;
            if m.version == crate::migrations::CHAIN_LEGACY_LOG_AFTER {
                chain_legacy(&mut tx)?;
            }
        }
        tx.commit()?;
        Ok(applied)
    }

    fn upsert_programmes(&mut self, programmes: &[Programme]) -> Result<ProgrammeCounts> {
        self.ready()?;
        let mut tx = self.client.transaction()?;
        let mut counts = ProgrammeCounts::default();
        for p in programmes {
            let exists: bool = tx
                .query_one(
                    "SELECT count(*) > 0 FROM programmes WHERE programme_code = $1",
                    &[&p.code],
                )?
                .get(0);
            tx.execute(
                "INSERT INTO programmes (programme_code, name, nation, region, professions, offers) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (programme_code) DO UPDATE SET name = excluded.name, nation = excluded.nation,
                 region = excluded.region, professions = excluded.professions, offers = excluded.offers",
                &[&p.code, &p.name, &p.nation.code(), &p.region, &p.professions_text(), &p.offers_text()],
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
        let rows = self.client.query(
            "SELECT programme_code, name, nation, region, professions, offers FROM programmes ORDER BY programme_code",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                let cells: [&str; 6] = [r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)];
                Programme::parse(cells).map_err(|e| StoreError::Corrupt(e.0))
            })
            .collect()
    }

    fn begin(&mut self) -> Result<Box<dyn ImportTx + '_>> {
        self.ready()?;
        let mut tx = self.client.transaction()?;
        // Imports and saves take turns (as SQLite's single writer does): two overlapping
        // files would otherwise both find an episode new and one fail on its key.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])?;
        Ok(Box::new(PgTx {
            tx,
            insert: None,
            update: None,
            touched: HashSet::new(),
        }))
    }

    fn kpi_episodes(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
    ) -> Result<Vec<KpiEpisode>> {
        self.ready()?;
        let rows = self
            .client
            .query("SELECT programme_code, facts FROM kpi_facts", &[])?;
        let mut facts = crate::Unpacker::new(programmes, from, to);
        for r in &rows {
            facts.add(r.get(0), r.get(1))?;
        }
        Ok(facts.out)
    }

    fn episode(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>> {
        self.ready()?;
        get_record(&mut self.client, programme, episode_id)
    }

    fn data_version(&mut self, programme: &str) -> Result<u64> {
        self.ready()?;
        let row = self.client.query_opt(
            "SELECT version FROM kpi_facts WHERE programme_code = $1",
            &[&programme],
        )?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }

    fn count_episodes(&mut self) -> Result<u64> {
        self.ready()?;
        Ok(self
            .client
            .query_one("SELECT count(*) FROM episodes", &[])?
            .get::<_, i64>(0) as u64)
    }

    fn for_each_episode(
        &mut self,
        programme: &str,
        f: &mut dyn FnMut(&Record) -> Result<()>,
    ) -> Result<()> {
        self.ready()?;
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let sql = format!(
            "SELECT {} FROM episodes WHERE programme_code = $1 ORDER BY episode_id",
            names.join(", ")
        );
        for row in self.client.query(sql.as_str(), &[&programme])? {
            f(&read_record(&row)?)?;
        }
        Ok(())
    }

    fn find_episodes(&mut self, programme: &str, query: &EpisodeQuery) -> Result<Vec<Record>> {
        self.ready()?;
        let (filter, params) = accounts::episode_filter(query);
        let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        let sql = sql::pg(&format!(
            "SELECT {} FROM episodes WHERE {filter} ORDER BY {} LIMIT {} OFFSET {}",
            names.join(", "),
            query.sort.order_by(),
            query.limit.min(i64::MAX as usize),
            query.offset.min(i64::MAX as usize)
        ));
        let programme = programme.to_string();
        let mut refs: Vec<&(dyn ToSql + Sync)> = vec![&programme];
        refs.extend(params.iter().map(|p| p as &(dyn ToSql + Sync)));
        self.client
            .query(sql.as_str(), &refs)?
            .iter()
            .map(read_record)
            .collect()
    }

    fn count_matching(&mut self, programme: &str, query: &EpisodeQuery) -> Result<u64> {
        self.ready()?;
        let (filter, params) = accounts::episode_filter(query);
        let sql = sql::pg(&format!("SELECT count(*) FROM episodes WHERE {filter}"));
        let programme = programme.to_string();
        let mut refs: Vec<&(dyn ToSql + Sync)> = vec![&programme];
        refs.extend(params.iter().map(|p| p as &(dyn ToSql + Sync)));
        let n: i64 = self.client.query_one(sql.as_str(), &refs)?.get(0);
        Ok(n.max(0) as u64)
    }

    fn put_user(&mut self, u: &User) -> Result<()> {
        self.ready()?;
        self.client.execute(
            sql::pg(sql::PUT_USER).as_str(),
            &[
                &u.username,
                &u.password_hash,
                &u.role.code(),
                &u.programmes.join(";"),
                &u.disabled,
                &u.totp_secret,
                &u.regions.join(";"),
            ],
        )?;
        Ok(())
    }

    fn put_user_token(&mut self, token_hash: &str, t: &UserToken) -> Result<()> {
        self.ready()?;
        self.client.execute(
            sql::pg(sql::PUT_USER_TOKEN).as_str(),
            &[
                &token_hash,
                &t.id,
                &t.username,
                &t.label,
                &t.created_at,
                &t.expires_at,
            ],
        )?;
        Ok(())
    }

    fn user_token(&mut self, token_hash: &str) -> Result<Option<UserToken>> {
        self.ready()?;
        Ok(self
            .client
            .query_opt(sql::pg(sql::USER_TOKEN).as_str(), &[&token_hash])?
            .map(|r| user_token_row(&r)))
    }

    fn user_tokens(&mut self, username: &str) -> Result<Vec<UserToken>> {
        self.ready()?;
        Ok(self
            .client
            .query(sql::pg(sql::USER_TOKENS).as_str(), &[&username])?
            .iter()
            .map(user_token_row)
            .collect())
    }

    fn revoke_user_token(&mut self, username: &str, id: &str, at: &str) -> Result<bool> {
        self.ready()?;
        Ok(self.client.execute(
            sql::pg(sql::REVOKE_USER_TOKEN).as_str(),
            &[&username, &id, &at],
        )? > 0)
    }

    fn setting(&mut self, name: &str) -> Result<Option<String>> {
        self.ready()?;
        Ok(self
            .client
            .query_opt(sql::pg(sql::SETTING).as_str(), &[&name])?
            .map(|r| r.get(0)))
    }

    fn put_setting(&mut self, name: &str, value: &str) -> Result<()> {
        self.ready()?;
        self.client
            .execute(sql::pg(sql::PUT_SETTING).as_str(), &[&name, &value])?;
        Ok(())
    }

    fn user(&mut self, username: &str) -> Result<Option<User>> {
        self.ready()?;
        self.client
            .query_opt(sql::pg(sql::USER).as_str(), &[&username])?
            .map(|r| {
                accounts::user_of(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .transpose()
    }

    fn users(&mut self) -> Result<Vec<User>> {
        self.ready()?;
        self.client
            .query(sql::USERS, &[])?
            .iter()
            .map(|r| {
                accounts::user_of(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect()
    }

    fn put_session(&mut self, x: &Session) -> Result<()> {
        self.client.execute(
            sql::pg(sql::PUT_SESSION).as_str(),
            &[&x.token_hash, &x.username, &x.csrf, &x.created, &x.seen],
        )?;
        Ok(())
    }

    fn session(&mut self, token_hash: &str) -> Result<Option<Session>> {
        Ok(self
            .client
            .query_opt(sql::pg(sql::SESSION).as_str(), &[&token_hash])?
            .map(|r| Session {
                token_hash: r.get(0),
                username: r.get(1),
                csrf: r.get(2),
                created: r.get(3),
                seen: r.get(4),
            }))
    }

    fn touch_session(&mut self, token_hash: &str, seen: i64) -> Result<()> {
        self.client
            .execute(sql::pg(sql::TOUCH_SESSION).as_str(), &[&token_hash, &seen])?;
        Ok(())
    }

    fn drop_session(&mut self, token_hash: &str) -> Result<()> {
        self.client
            .execute(sql::pg(sql::DROP_SESSION).as_str(), &[&token_hash])?;
        Ok(())
    }

    fn drop_user_sessions(&mut self, username: &str) -> Result<()> {
        self.client
            .execute(sql::pg(sql::DROP_USER_SESSIONS).as_str(), &[&username])?;
        Ok(())
    }

    fn log(&mut self, e: &AccessEntry) -> Result<()> {
        append_log(&mut self.client, e)
    }

    fn put_upload(&mut self, u: &PendingUpload) -> Result<()> {
        self.client.execute(
            "INSERT INTO pending_uploads (token, programme_code, name, created, file, errors) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&u.token, &u.programme, &u.name, &u.created, &u.file, &u.errors],
        )?;
        self.client.execute(
            sql::pg(sql::KEEP_NEWEST_UPLOADS).as_str(),
            &[&u.programme, &(crate::MAX_PENDING_UPLOADS as i64)],
        )?;
        Ok(())
    }

    fn upload(&mut self, programme: &str, token: &str) -> Result<Option<PendingUpload>> {
        Ok(self
            .client
            .query_opt(
                "SELECT token, programme_code, name, created, file, errors FROM pending_uploads \
                 WHERE programme_code = $1 AND token = $2",
                &[&programme, &token],
            )?
            .map(|r| PendingUpload {
                token: r.get(0),
                programme: r.get(1),
                name: r.get(2),
                created: r.get(3),
                file: r.get(4),
                errors: r.get(5),
            }))
    }

    fn drop_upload(&mut self, programme: &str, token: &str) -> Result<()> {
        self.client.execute(
            "DELETE FROM pending_uploads WHERE programme_code = $1 AND token = $2",
            &[&programme, &token],
        )?;
        Ok(())
    }

    fn sweep(&mut self, before: i64, idle_before_ms: i64) -> Result<usize> {
        let n = self
            .client
            .execute("DELETE FROM pending_uploads WHERE created < $1", &[&before])?;
        self.client.execute(
            "DELETE FROM sign_in_limits WHERE last_ms < $1 AND started_ms < $1",
            &[&idle_before_ms],
        )?;
        Ok(n as usize)
    }

    fn sign_in_limits(
        &mut self,
        keys: &[&str],
        decide: &mut dyn FnMut(&mut [SignInLimit]) -> bool,
    ) -> Result<bool> {
        let mut tx = self.client.transaction()?;
        // Servers sharing the database take turns on throttling records.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LIMITS_LOCK])?;
        let mut limits = Vec::with_capacity(keys.len());
        for k in keys {
            let found = tx.query_opt(
                "SELECT failures, in_flight, last_ms, started_ms FROM sign_in_limits WHERE key = $1",
                &[k],
            )?;
            limits.push(match found {
                Some(r) => SignInLimit {
                    key: k.to_string(),
                    failures: r.get(0),
                    in_flight: r.get(1),
                    last_ms: r.get(2),
                    started_ms: r.get(3),
                },
                None => SignInLimit {
                    key: k.to_string(),
                    ..Default::default()
                },
            });
        }
        let verdict = decide(&mut limits);
        for l in &limits {
            tx.execute(
                "INSERT INTO sign_in_limits (key, failures, in_flight, last_ms, started_ms) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, in_flight = excluded.in_flight, \
                 last_ms = excluded.last_ms, started_ms = excluded.started_ms",
                &[&l.key, &l.failures, &l.in_flight, &l.last_ms, &l.started_ms],
            )?;
        }
        tx.commit()?;
        Ok(verdict)
    }

    fn put_agreement(&mut self, a: &crest_core::governance::Agreement) -> Result<()> {
        self.ready()?;
        let row = accounts::agreement_row(a);
        let p: Vec<&(dyn ToSql + Sync)> = row.iter().map(|s| s as &(dyn ToSql + Sync)).collect();
        self.client
            .execute(sql::pg(sql::PUT_AGREEMENT).as_str(), &p)?;
        Ok(())
    }

    fn agreements(&mut self) -> Result<Vec<crest_core::governance::Agreement>> {
        self.ready()?;
        self.client
            .query(sql::pg(sql::AGREEMENTS).as_str(), &[])?
            .iter()
            .map(|r| {
                accounts::agreement_of([
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                ])
            })
            .collect()
    }

    fn sent_episodes(&mut self, programme: &str) -> Result<Vec<String>> {
        self.ready()?;
        Ok(self
            .client
            .query(sql::pg(sql::SENT).as_str(), &[&programme])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn record_sent(
        &mut self,
        programme: &str,
        sent: &[String],
        withdrawn: &[String],
    ) -> Result<()> {
        let mut tx = self.client.transaction()?;
        for id in sent {
            tx.execute(sql::pg(sql::ADD_SENT).as_str(), &[&programme, id])?;
        }
        for id in withdrawn {
            tx.execute(sql::pg(sql::DROP_SENT).as_str(), &[&programme, id])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn access_log_chain(&mut self, after: i64, limit: usize) -> Result<Vec<ChainEntry>> {
        self.ready()?;
        read_chain(&mut self.client, after, limit)
    }

    fn access_log(&mut self, limit: usize) -> Result<Vec<AccessEntry>> {
        let limit = limit.min(i64::MAX as usize) as i64;
        Ok(self
            .client
            .query(sql::pg(sql::ACCESS_LOG).as_str(), &[&limit])?
            .iter()
            .map(entry_of)
            .collect())
    }
}

/// Advisory lock key held while appending to the access log.
const LOG_LOCK: i64 = 0x6372_6573_745f_6c6f; // "crest_lo"

/// Appends an entry to the access log of a PostgreSQL store (local or national), chained to
/// the last; an advisory lock keeps one appender at a time, so the chain never forks.
/// The advisory lock that makes sign-in throttling updates take turns.
const LIMITS_LOCK: i64 = 421_340;

/// The advisory lock that makes writers of episodes take turns.
const WRITE_LOCK: i64 = 421_339;

pub(crate) fn append_log(client: &mut Client, e: &AccessEntry) -> Result<()> {
    let mut tx = client.transaction()?;
    write_log(&mut tx, e)?;
    tx.commit()?;
    Ok(())
}

/// Appends an entry inside the caller's transaction, so it commits with the change it records
/// or not at all.
pub(crate) fn write_log(tx: &mut impl postgres::GenericClient, e: &AccessEntry) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])?;
    let head = tx.query_opt(sql::LOG_HEAD, &[])?;
    let (seq, prev) = head.map_or((1, audit::GENESIS.to_string()), |r| {
        (r.get::<_, i64>(0) + 1, r.get::<_, String>(1))
    });
    let hash = audit::entry_hash(&prev, seq, e);
    tx.execute(
        sql::pg(sql::LOG).as_str(),
        &[
            &e.at,
            &e.username,
            &e.role,
            &e.programme,
            &e.action,
            &e.target,
            &e.outcome,
            &e.detail,
            &seq,
            &prev,
            &hash,
        ],
    )?;
    Ok(())
}

/// Access-log entries with their chain fields, from sequence `after + 1`.
pub(crate) fn read_chain(client: &mut Client, after: i64, limit: usize) -> Result<Vec<ChainEntry>> {
    let limit = limit.min(i64::MAX as usize) as i64;
    Ok(client
        .query(sql::pg(sql::LOG_CHAIN).as_str(), &[&after, &limit])?
        .iter()
        .map(|r| ChainEntry {
            entry: entry_of(r),
            seq: r.get(8),
            prev_hash: r.get(9),
            hash: r.get(10),
        })
        .collect())
}

/// An access-log entry from its first eight columns.
pub(crate) fn entry_of(r: &Row) -> AccessEntry {
    AccessEntry {
        at: r.get(0),
        username: r.get(1),
        role: r.get(2),
        programme: r.get(3),
        action: r.get(4),
        target: r.get(5),
        outcome: r.get(6),
        detail: r.get(7),
    }
}

/// Chains access-log entries written before migration 4, in the order they were written.
fn chain_legacy(tx: &mut postgres::Transaction) -> Result<()> {
    let mut prev = audit::GENESIS.to_string();
    let rows = tx.query(sql::LOG_LEGACY, &[])?;
    for (seq, r) in (1_i64..).zip(rows.iter()) {
        let (id, e): (i64, AccessEntry) = (r.get(8), entry_of(r));
        let hash = audit::entry_hash(&prev, seq, &e);
        tx.execute(
            sql::pg(sql::LOG_SET_CHAIN).as_str(),
            &[&id, &seq, &prev, &hash],
        )?;
        prev = hash;
    }
    tx.execute(audit::SEQ_INDEX, &[])?;
    Ok(())
}

struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    insert: Option<postgres::Statement>,
    update: Option<postgres::Statement>,
    /// Programmes whose KPI facts must be packed again at commit.
    touched: HashSet<String>,
}

impl PgTx<'_> {
    fn touch(&mut self, rec: &Record) {
        let code = rec.text(Col::ProgrammeCode).unwrap_or_default();
        if !self.touched.contains(code) {
            self.touched.insert(code.to_string());
        }
    }
}

impl ImportTx for PgTx<'_> {
    fn log(&mut self, entry: &AccessEntry) -> Result<()> {
        write_log(&mut self.tx, entry)
    }

    fn keys(&mut self, programme: &str) -> Result<Vec<StoredKey>> {
        let rows = self.tx.query(
            "SELECT episode_id, nhs_number, event_date FROM episodes WHERE programme_code = $1",
            &[&programme],
        )?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    episode_id: r.get(0),
                    nhs_number: r.get(1),
                    event_date: Date::parse_iso(r.get(2)).map_err(|e| StoreError::Corrupt(e.0))?,
                })
            })
            .collect()
    }

    fn get(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>> {
        get_record(&mut self.tx, programme, episode_id)
    }

    fn insert(&mut self, rec: &Record) -> Result<()> {
        if self.insert.is_none() {
            self.insert = Some(self.tx.prepare(&schema::sql(Dialect::Postgres).insert)?);
        }
        let p = params(rec);
        let refs: Vec<&(dyn ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
        if let Some(st) = &self.insert {
            self.tx.execute(st, &refs)?;
        }
        self.touch(rec);
        Ok(())
    }

    fn update(&mut self, rec: &Record) -> Result<()> {
        if self.update.is_none() {
            self.update = Some(self.tx.prepare(&schema::sql(Dialect::Postgres).update)?);
        }
        let mut p = params(rec);
        p.push(Box::new(
            rec.text(Col::ProgrammeCode).unwrap_or("").to_string(),
        ));
        p.push(Box::new(rec.text(Col::EpisodeId).unwrap_or("").to_string()));
        let refs: Vec<&(dyn ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
        if let Some(st) = &self.update {
            self.tx.execute(st, &refs)?;
        }
        self.touch(rec);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let sql = schema::sql(Dialect::Postgres);
        for programme in std::mem::take(&mut self.touched) {
            let mut facts = Vec::new();
            for r in self.tx.query(sql.kpi.as_str(), &[&programme])? {
                let mut cells = [None; 8];
                for (i, cell) in cells.iter_mut().enumerate() {
                    *cell = r.get::<_, Option<&str>>(i);
                }
                crate::pack_row(cells, &mut facts)?;
            }
            self.tx.execute(
                "INSERT INTO kpi_facts (programme_code, facts) VALUES ($1, $2) \
                 ON CONFLICT (programme_code) DO UPDATE SET facts = excluded.facts, \
                 version = kpi_facts.version + 1",
                &[&programme, &facts],
            )?;
        }
        self.tx.commit()?;
        Ok(())
    }
}

/// Rows in PostgreSQL's binary COPY format, encoded straight into one buffer. The generic
/// `ToSql` route boxes every value of every row, which on a large receipt cost more than the
/// server's own work. Column types follow `schema::column_type`: BIGINT, DOUBLE PRECISION,
/// BOOLEAN, and TEXT for everything else (dates as ISO text).
pub(crate) struct BinaryRows {
    buf: Vec<u8>,
}

impl BinaryRows {
    /// A buffer holding the format's header.
    pub(crate) fn new() -> BinaryRows {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        BinaryRows { buf }
    }

    /// Starts a row of `columns` values.
    pub(crate) fn row(&mut self, columns: usize) {
        // A table has at most 1,600 columns, so this never truncates.
        self.buf.extend_from_slice(&(columns as i16).to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        // Values here are short texts and numbers, far below 2 GiB.
        self.buf.extend_from_slice(&(b.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(b);
    }

    /// A text value.
    pub(crate) fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A dictionary field's value, typed as its column (a value of the wrong kind is NULL,
    /// as with [`param`]).
    pub(crate) fn value(&mut self, f: &crest_core::Field, v: &Value) {
        match (f.kind, v) {
            (Kind::Int { .. }, Value::Int(i)) => self.bytes(&i.to_be_bytes()),
            (Kind::Decimal { .. }, Value::Num(x)) => self.bytes(&x.to_bits().to_be_bytes()),
            (Kind::Bool, Value::Bool(b)) => self.bytes(&[u8::from(*b)]),
            (Kind::Int { .. } | Kind::Decimal { .. } | Kind::Bool, _) | (_, Value::Null) => {
                self.buf.extend_from_slice(&(-1i32).to_be_bytes())
            }
            (_, Value::Text(s)) => self.text(s),
            (_, v) => self.text(&v.to_text()),
        }
    }

    /// Bytes held so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Hands over the bytes held so far (to write to the server) and starts empty.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Ends the data with the format's trailer.
    pub(crate) fn end(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
}
