//! The national store (privacy.md, "Two stores, one door"): pseudonymised, minimised episodes
//! from every programme, filled only by receiving submissions. Its schema is derived from the
//! dictionary's tier N and D fields, so it has no column for a name, NHS number, date of birth,
//! postcode, local patient id or local episode id; episodes are keyed by the national
//! re-keyed `episode_key` and linked across programmes by `patient_key`.

use crate::{Result, StoreError};
use crest_core::{Date, Field, Kind, Programme, Record, Tier, Value, FIELDS};
use postgres::types::ToSql;

/// The dictionary fields the national store holds: tier N and the derived (D) ones.
pub fn national_fields() -> impl Iterator<Item = &'static Field> + Clone {
    FIELDS.iter().filter(|f| f.tier != Tier::Local)
}

/// One received episode: its national keys and its minimised record (local fields empty).
#[derive(Clone, Debug, PartialEq)]
pub struct NationalEpisode {
    /// HMAC(national key, submitted episode key).
    pub episode_key: String,
    /// HMAC(national key, submitted patient key): the same patient in any programme.
    pub patient_key: String,
    /// The tier N and D values; tier L fields are always empty.
    pub record: Record,
}

/// A submission as the national store keeps it (its payload already re-keyed).
#[derive(Clone, Debug)]
pub struct Receipt {
    /// SHA-256 of the manifest line (which holds the payload's checked SHA-256, the programme,
    /// period and build time): the submission's identity, so a fresh build is a new submission
    /// even when its payload is byte for byte an older one's.
    pub id: String,
    /// Programme it came from.
    pub programme: String,
    /// Referral period it covers.
    pub from: Date,
    /// End of the period.
    pub to: Date,
    /// Submission key id.
    pub key_id: String,
    /// Dataset version.
    pub dataset_version: String,
    /// When the programme built it (UTC, ISO 8601).
    pub created_at: String,
    /// Episodes it carries (the manifest's count; the stream must match it).
    pub episodes: usize,
    /// Tombstones it carries.
    pub tombstones: usize,
}

/// One item of a submission's payload, already re-keyed.
#[derive(Clone, Debug)]
pub enum ReceiptItem {
    /// An episode to store.
    Episode(NationalEpisode),
    /// An episode key to delete.
    Tombstone(String),
}

/// What receiving did.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// Stored; `replaced` episodes of an older submission for the same programme and period
    /// were removed first, and `deleted` episodes by tombstone.
    Stored {
        /// Episodes stored.
        episodes: usize,
        /// Episodes of the older submission for the same programme and period, replaced.
        replaced: usize,
        /// Episodes removed by tombstones.
        deleted: usize,
    },
    /// This exact submission was received before; nothing changed.
    AlreadyReceived,
}

/// The same patient (patient key) with the same initiating event date in more than one
/// programme: reported, and counted once nationally.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossProgrammeDuplicate {
    /// National patient key.
    pub patient_key: String,
    /// The initiating event date.
    pub event_date: String,
    /// The programmes, in code order.
    pub programmes: Vec<String>,
}

/// What the inequality analyses need of one national episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EquityFact {
    /// Programme code.
    pub programme: String,
    /// `male`, `female`, … or `None`.
    pub sex: Option<String>,
    /// Age at the event.
    pub age: Option<i64>,
    /// NHS ethnic category letter.
    pub ethnicity: Option<String>,
    /// IMD quintile (1 = most deprived).
    pub imd_quintile: Option<i64>,
    /// Priority group.
    pub group: crest_core::PriorityGroup,
    /// Started core CR.
    pub started: bool,
}

/// For each numeric measure (its assessment 1 field), the (A1, A2) value pairs.
pub type OutcomePairs = Vec<(&'static Field, Vec<(f64, f64)>)>;

/// A submission the national store holds.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldSubmission {
    /// Its identity: the SHA-256 of its manifest line (of the payload alone for submissions
    /// received before national migration 6).
    pub sha256: String,
    /// Programme.
    pub programme: String,
    /// Period start (ISO).
    pub from: String,
    /// Period end (ISO).
    pub to: String,
    /// Submission key id.
    pub key_id: String,
    /// Episodes it carried.
    pub episodes: i64,
    /// Whether it is the current one for its programme and period.
    pub current: bool,
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Pg(postgres::Client),
}

/// A national store on SQLite or PostgreSQL.
pub struct NationalStore {
    conn: Conn,
}

/// The national store's schema version: the number of national migrations.
pub const NATIONAL_SCHEMA_VERSION: usize = crate::migrations::NATIONAL_SQLITE.len();

/// The stages of an outlier case, in order.
pub const CASE_STAGES: [&str; 4] = ["open", "contacted", "response_received", "closed"];

/// An outlier case: a programme outside a funnel's limits for a KPI and period.
#[derive(Clone, Debug, PartialEq)]
pub struct OutlierCase {
    /// `programme|kpi|from|to`.
    pub id: String,
    /// Programme.
    pub programme: String,
    /// KPI key (`uptake`, `assessment1`, …).
    pub kpi: String,
    /// Period start (ISO).
    pub from: String,
    /// Period end (ISO).
    pub to: String,
    /// `alert` or `alarm`.
    pub level: String,
    /// `low` or `high`.
    pub direction: String,
    /// What was found, e.g. `12/40 = 30.0% (pooled 55.0%)`.
    pub finding: String,
    /// The current stage (see [`CASE_STAGES`]).
    pub status: String,
    /// When it was opened.
    pub opened_at: String,
}

/// One dated entry of a case's history.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseNote {
    /// When.
    pub at: String,
    /// Who.
    pub username: String,
    /// The stage after this entry.
    pub status: String,
    /// What was done or said.
    pub note: String,
}

/// Hex digits of a token's hash that name it in `crest tokens list` and `revoke`.
const TOKEN_ID_LEN: usize = 12;

/// An API token as `crest tokens list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiToken {
    /// The first 12 hex digits of the token's SHA-256: names it without revealing it.
    pub id: String,
    /// The programme it sends for.
    pub programme: String,
    /// When it was made.
    pub created_at: String,
    /// When it stops working (empty: made before expiries, lasts until revoked).
    pub expires_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// What an API token presented to the API may do.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenAccess {
    /// Send the named programme's submissions.
    Valid(String),
    /// Nothing: it expired (the programme it was for).
    Expired(String),
    /// Nothing: it was revoked (the programme it was for).
    Revoked(String),
    /// Nothing: no such token.
    Unknown,
}

fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    crest_core::hex(&Sha256::digest(token.trim().as_bytes()))
}

fn pg(sql: &str) -> String {
    crate::accounts::sql::pg(sql)
}

impl NationalStore {
    /// Opens a national store by `--db` URL (a file path, `sqlite:PATH` or `postgres://…`).
    pub fn open(url: &str) -> Result<NationalStore> {
        let conn = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Conn::Pg(postgres::Client::connect(url, postgres::NoTls)?)
        } else {
            let path = url.strip_prefix("sqlite:").unwrap_or(url);
            let c = rusqlite::Connection::open(path)?;
            // Writers wait for each other rather than fail with "database is locked".
            c.busy_timeout(std::time::Duration::from_secs(30))?;
            c.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; \
                 PRAGMA cache_size=-131072;",
            )?;
            Conn::Sqlite(c)
        };
        Ok(NationalStore { conn })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.conn {
            Conn::Sqlite(_) => "sqlite",
            Conn::Pg(_) => "postgres",
        }
    }

    /// Creates the national schema (`crest init --national`); returns migrations applied.
    /// Refuses a local store: the two are separate databases.
    pub fn migrate(&mut self) -> Result<usize> {
        const MIGRATIONS_TABLE: &str =
            "CREATE TABLE IF NOT EXISTS crest_national_migrations (version BIGINT PRIMARY KEY)";
        let is_local = self.has_table("crest_migrations")?;
        if is_local {
            return Err(StoreError::Corrupt(
                "this database is a local (identifiable) store; a national store must be a separate database".into(),
            ));
        }
        let mut applied = 0;
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let tx = c.transaction()?;
                tx.execute(MIGRATIONS_TABLE, [])?;
                let v: i64 = tx.query_row(
                    "SELECT coalesce(max(version), 0) FROM crest_national_migrations",
                    [],
                    |r| r.get(0),
                )?;
                for m in crate::migrations::NATIONAL_SQLITE.iter().skip(v as usize) {
                    tx.execute_batch(m.sql)?;
                    tx.execute(
                        "INSERT INTO crest_national_migrations (version) VALUES (?1)",
                        [m.version as i64],
                    )?;
                    applied += 1;
                }
                tx.commit()?;
            }
            Conn::Pg(c) => {
                let mut tx = c.transaction()?;
                tx.execute("SELECT pg_advisory_xact_lock(421338)", &[])?;
                tx.execute(MIGRATIONS_TABLE, &[])?;
                let v: i64 = tx
                    .query_one(
                        "SELECT coalesce(max(version), 0)::BIGINT FROM crest_national_migrations",
                        &[],
                    )?
                    .get(0);
                for m in crate::migrations::NATIONAL_POSTGRES.iter().skip(v as usize) {
                    tx.batch_execute(m.sql)?;
                    tx.execute(
                        "INSERT INTO crest_national_migrations (version) VALUES ($1)",
                        &[&(m.version as i64)],
                    )?;
                    applied += 1;
                }
                tx.commit()?;
            }
        }
        Ok(applied)
    }

    fn has_table(&mut self, name: &str) -> Result<bool> {
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [name],
                |r| r.get(0),
            )?,
            Conn::Pg(c) => c
                .query_one(
                    "SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
                    &[&name],
                )?
                .get(0),
        })
    }

    fn ready(&mut self) -> Result<()> {
        if self.has_table("crest_national_migrations")? {
            Ok(())
        } else if self.has_table("crest_migrations")? {
            Err(StoreError::Refused(
                "this database is a local (identifiable) store, and this needs the national store: make one with \
                 `crest --db NATIONAL init --national`, register programmes with `crest --db NATIONAL programmes import \
                 --national FILE`, receive submissions into it, then give its --db"
                    .into(),
            ))
        } else {
            Err(StoreError::NotInitialised)
        }
    }

    /// Every column of every table, as `table.column` (for the test that proves no
    /// identifier column exists).
    pub fn columns(&mut self) -> Result<Vec<String>> {
        self.ready()?;
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => {
                let tables: Vec<String> = c
                    .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut out = Vec::new();
                for t in tables {
                    let cols: Vec<String> = c
                        .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))?
                        .query_map([], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?;
                    out.extend(cols.into_iter().map(|col| format!("{t}.{col}")));
                }
                out
            }
            Conn::Pg(c) => c
                .query(
                    "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = current_schema()",
                    &[],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        })
    }

    /// Registers or updates programmes (the same file as the local `programmes import`).
    pub fn upsert_programmes(&mut self, programmes: &[Programme]) -> Result<()> {
        self.ready()?;
        const SQL: &str = "INSERT INTO programmes (programme_code, name, nation, region, professions, offers) \
            VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (programme_code) DO UPDATE SET name = excluded.name, \
            nation = excluded.nation, region = excluded.region, professions = excluded.professions, offers = excluded.offers";
        let rows: Vec<[String; 6]> = programmes
            .iter()
            .map(|p| {
                [
                    p.code.clone(),
                    p.name.clone(),
                    p.nation.code().to_string(),
                    p.region.clone(),
                    p.professions.clone().unwrap_or_default().join(";"),
                    p.offers
                        .clone()
                        .unwrap_or_default()
                        .iter()
                        .map(|g| g.code())
                        .collect::<Vec<_>>()
                        .join(";"),
                ]
            })
            .collect();
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let tx = c.transaction()?;
                for r in &rows {
                    tx.execute(SQL, rusqlite::params_from_iter(r.iter()))?;
                }
                tx.commit()?;
            }
            Conn::Pg(c) => {
                let mut tx = c.transaction()?;
                for r in &rows {
                    let p: Vec<&(dyn ToSql + Sync)> =
                        r.iter().map(|s| s as &(dyn ToSql + Sync)).collect();
                    tx.execute(pg(SQL).as_str(), &p)?;
                }
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// Appends to the national store's access log, chained to the entry before it.
    pub fn log(&mut self, e: &crate::AccessEntry) -> Result<()> {
        self.ready()?;
        match &mut self.conn {
            Conn::Sqlite(c) => crate::sqlite::append_log(c, e),
            Conn::Pg(c) => crate::pg::append_log(c, e),
        }
    }

    /// The newest `limit` entries of the national access log, newest first.
    pub fn access_log(&mut self, limit: usize) -> Result<Vec<crate::AccessEntry>> {
        self.ready()?;
        let sql = crate::accounts::sql::ACCESS_LOG;
        let limit = limit.min(i64::MAX as usize) as i64;
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(sql)?
                .query_map([limit], crate::sqlite::entry_of)?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(pg(sql).as_str(), &[&limit])?
                .iter()
                .map(crate::pg::entry_of)
                .collect(),
        })
    }

    /// Checks the national access log's hash chain.
    pub fn verify_access_log(&mut self) -> Result<crate::LogCheck> {
        self.ready()?;
        let conn = &mut self.conn;
        crate::audit::verify(|after, limit| match conn {
            Conn::Sqlite(c) => crate::sqlite::read_chain(c, after, limit),
            Conn::Pg(c) => crate::pg::read_chain(c, after, limit),
        })
    }

    /// Opens an outlier case (once per programme, KPI and period; opening it again changes
    /// nothing); returns its id.
    pub fn open_case(&mut self, c: &OutlierCase, username: &str) -> Result<String> {
        self.ready()?;
        let id = format!("{}|{}|{}|{}", c.programme, c.kpi, c.from, c.to);
        const CASE: &str = "INSERT INTO outlier_cases (id, programme_code, kpi, period_from, period_to, level, direction, \
            finding, status, opened_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open', ?9) ON CONFLICT (id) DO NOTHING";
        const NOTE: &str = "INSERT INTO outlier_history (case_id, at, username, status, note) VALUES (?1, ?2, ?3, 'open', ?4)";
        let note = format!("opened: {} {} {}", c.level, c.direction, c.finding);
        let p = [
            &id,
            &c.programme,
            &c.kpi,
            &c.from,
            &c.to,
            &c.level,
            &c.direction,
            &c.finding,
            &c.opened_at,
        ];
        match &mut self.conn {
            Conn::Sqlite(conn) => {
                let tx = conn.transaction()?;
                if tx.execute(CASE, rusqlite::params_from_iter(p.iter()))? > 0 {
                    tx.execute(NOTE, [&id, &c.opened_at, username, &note])?;
                }
                tx.commit()?;
            }
            Conn::Pg(conn) => {
                let mut tx = conn.transaction()?;
                let refs: Vec<&(dyn ToSql + Sync)> =
                    p.iter().map(|s| *s as &(dyn ToSql + Sync)).collect();
                if tx.execute(pg(CASE).as_str(), &refs)? > 0 {
                    tx.execute(pg(NOTE).as_str(), &[&id, &c.opened_at, &username, &note])?;
                }
                tx.commit()?;
            }
        }
        Ok(id)
    }

    /// Every outlier case, newest first.
    pub fn cases(&mut self) -> Result<Vec<OutlierCase>> {
        self.ready()?;
        const SQL: &str = "SELECT id, programme_code, kpi, period_from, period_to, level, direction, finding, status, \
            opened_at FROM outlier_cases ORDER BY opened_at DESC, id";
        let rows: Vec<[String; 10]> = match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(SQL)?
                .query_map([], |r| {
                    let mut a: [String; 10] = Default::default();
                    for (i, x) in a.iter_mut().enumerate() {
                        *x = r.get(i)?;
                    }
                    Ok(a)
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(SQL, &[])?
                .iter()
                .map(|r| {
                    let mut a: [String; 10] = Default::default();
                    for (i, x) in a.iter_mut().enumerate() {
                        *x = r.get(i);
                    }
                    a
                })
                .collect(),
        };
        Ok(rows
            .into_iter()
            .map(
                |[id, programme, kpi, from, to, level, direction, finding, status, opened_at]| {
                    OutlierCase {
                        id,
                        programme,
                        kpi,
                        from,
                        to,
                        level,
                        direction,
                        finding,
                        status,
                        opened_at,
                    }
                },
            )
            .collect())
    }

    /// A case's history, oldest first.
    pub fn case_history(&mut self, id: &str) -> Result<Vec<CaseNote>> {
        self.ready()?;
        let sql =
            "SELECT at, username, status, note FROM outlier_history WHERE case_id = ?1 ORDER BY id";
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(sql)?
                .query_map([id], |r| {
                    Ok(CaseNote {
                        at: r.get(0)?,
                        username: r.get(1)?,
                        status: r.get(2)?,
                        note: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(pg(sql).as_str(), &[&id])?
                .iter()
                .map(|r| CaseNote {
                    at: r.get(0),
                    username: r.get(1),
                    status: r.get(2),
                    note: r.get(3),
                })
                .collect(),
        })
    }

    /// Moves a case on (never back) and/or adds a dated note; refuses an unknown case, an
    /// unknown stage or a step backwards.
    pub fn update_case(
        &mut self,
        id: &str,
        status: &str,
        note: &str,
        username: &str,
        at: &str,
    ) -> Result<()> {
        self.ready()?;
        let current = self
            .cases()?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| StoreError::Refused(format!("there is no outlier case {id}")))?;
        let rank = |s: &str| CASE_STAGES.iter().position(|x| *x == s);
        let (Some(from), Some(to)) = (rank(&current.status), rank(status)) else {
            return Err(StoreError::Refused(format!(
                "'{status}' is not a stage; use {}",
                CASE_STAGES.join(", ")
            )));
        };
        if to < from {
            return Err(StoreError::Refused(format!(
                "the case is already '{}'; it cannot go back to '{status}'",
                current.status
            )));
        }
        if to == from && note.trim().is_empty() {
            return Err(StoreError::Refused(
                "nothing to record: change the stage or write a note".into(),
            ));
        }
        const STATUS: &str = "UPDATE outlier_cases SET status = ?2 WHERE id = ?1";
        const NOTE: &str = "INSERT INTO outlier_history (case_id, at, username, status, note) VALUES (?1, ?2, ?3, ?4, ?5)";
        let note = note.trim();
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let tx = c.transaction()?;
                tx.execute(STATUS, [id, status])?;
                tx.execute(NOTE, [id, at, username, status, note])?;
                tx.commit()?;
            }
            Conn::Pg(c) => {
                let mut tx = c.transaction()?;
                tx.execute(pg(STATUS).as_str(), &[&id, &status])?;
                tx.execute(pg(NOTE).as_str(), &[&id, &at, &username, &status, &note])?;
                tx.commit()?;
            }
        }
        Ok(())
    }

    /// Registers an API token for a programme's system (only its SHA-256 is kept), valid
    /// until `expires_at` (UTC, ISO 8601).
    pub fn add_api_token(
        &mut self,
        token: &str,
        programme: &str,
        at: &str,
        expires_at: &str,
    ) -> Result<()> {
        self.ready()?;
        if !self.has_programme(programme)? {
            return Err(StoreError::Refused(format!(
                "programme {programme} is not registered in the national store"
            )));
        }
        const SQL: &str =
            "INSERT INTO api_tokens (token_hash, programme_code, created_at, expires_at) \
            VALUES (?1, ?2, ?3, ?4)";
        let hash = token_hash(token);
        match &mut self.conn {
            Conn::Sqlite(c) => {
                c.execute(SQL, [&hash, programme, at, expires_at])?;
            }
            Conn::Pg(c) => {
                c.execute(pg(SQL).as_str(), &[&hash, &programme, &at, &expires_at])?;
            }
        }
        Ok(())
    }

    /// Every API token on record (never the token itself), newest first.
    pub fn api_tokens(&mut self) -> Result<Vec<ApiToken>> {
        self.ready()?;
        const SQL: &str =
            "SELECT token_hash, programme_code, created_at, coalesce(expires_at, ''), revoked_at \
            FROM api_tokens ORDER BY created_at DESC, token_hash";
        let token = |hash: String, programme, created_at, expires_at, revoked_at| ApiToken {
            id: hash[..TOKEN_ID_LEN.min(hash.len())].to_string(),
            programme,
            created_at,
            expires_at,
            revoked_at,
        };
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(SQL)?
                .query_map([], |r| {
                    Ok(token(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(SQL, &[])?
                .iter()
                .map(|r| token(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect(),
        })
    }

    /// Revokes the API token whose id (see [`ApiToken::id`]) is `id`; false if there is none
    /// or it was already revoked.
    pub fn revoke_api_token(&mut self, id: &str, at: &str) -> Result<bool> {
        self.ready()?;
        let id = id.trim().to_ascii_lowercase();
        if id.len() != TOKEN_ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        const SQL: &str = "UPDATE api_tokens SET revoked_at = ?1 \
            WHERE substr(token_hash, 1, 12) = ?2 AND revoked_at IS NULL";
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c.execute(SQL, [at, &id])? > 0,
            Conn::Pg(c) => c.execute(pg(SQL).as_str(), &[&at, &id])? > 0,
        })
    }

    /// What an API token may do at `now` (UTC, ISO 8601).
    pub fn api_token_access(&mut self, token: &str, now: &str) -> Result<TokenAccess> {
        self.ready()?;
        const SQL: &str =
            "SELECT programme_code, coalesce(expires_at, ''), revoked_at IS NOT NULL \
            FROM api_tokens WHERE token_hash = ?1";
        let hash = token_hash(token);
        let row: Option<(String, String, bool)> = match &mut self.conn {
            Conn::Sqlite(c) => {
                use rusqlite::OptionalExtension;
                c.query_row(SQL, [&hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?
            }
            Conn::Pg(c) => c
                .query_opt(pg(SQL).as_str(), &[&hash])?
                .map(|r| (r.get(0), r.get(1), r.get(2))),
        };
        Ok(match row {
            None => TokenAccess::Unknown,
            Some((programme, _, true)) => TokenAccess::Revoked(programme),
            // Tokens made before expiries existed have none; they last until revoked.
            Some((programme, expires, false)) if !expires.is_empty() && expires.as_str() <= now => {
                TokenAccess::Expired(programme)
            }
            Some((programme, _, false)) => TokenAccess::Valid(programme),
        })
    }

    /// Every programme registered nationally, in code order.
    pub fn programmes(&mut self) -> Result<Vec<Programme>> {
        self.ready()?;
        const SQL: &str = "SELECT programme_code, name, nation, region, professions, offers FROM programmes ORDER BY programme_code";
        let rows: Vec<[String; 6]> = match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(SQL)?
                .query_map([], |r| {
                    Ok([
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ])
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(SQL, &[])?
                .iter()
                .map(|r| [r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)])
                .collect(),
        };
        rows.iter()
            .map(|r| {
                Programme::parse([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]])
                    .map_err(StoreError::Corrupt)
            })
            .collect()
    }

    /// The KPI facts of every national episode referred in `from..=to` of the given programmes
    /// (`KpiEpisode::programme` indexes `programmes`).
    pub fn kpi_episodes(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
    ) -> Result<Vec<crest_core::KpiEpisode>> {
        self.ready()?;
        const SQL: &str = "SELECT programme_code, referral_date, core_start_date, core_end_date, assessment1_date, \
            assessment2_date, status, initiating_event, treatment FROM national_episodes \
            WHERE referral_date >= ?1 AND referral_date <= ?2";
        let index: std::collections::HashMap<&str, usize> = programmes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.code.as_str(), i))
            .collect();
        let (from, to) = (from.to_string(), to.to_string());
        let mut out = Vec::new();
        let mut add = |cells: [Option<&str>; 9]| -> Result<()> {
            let Some(&programme) = cells[0].and_then(|c| index.get(c)) else {
                return Ok(());
            };
            let date = |s: Option<&str>| -> Result<Option<Date>> {
                s.map(|s| Date::parse_iso(s).map_err(|e| StoreError::Corrupt(e.0)))
                    .transpose()
            };
            let Some(referral_date) = date(cells[1])? else {
                return Ok(());
            };
            out.push(crest_core::KpiEpisode {
                programme,
                referral_date,
                core_start: date(cells[2])?,
                core_end: date(cells[3])?,
                assessment1: date(cells[4])?,
                assessment2: date(cells[5])?,
                completed: cells[6] == Some("completed"),
                group: crest_core::PriorityGroup::of(
                    cells[7].unwrap_or_default(),
                    cells[8].unwrap_or_default(),
                ),
            });
            Ok(())
        };
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare(SQL)?;
                let mut rows = st.query([&from, &to])?;
                while let Some(r) = rows.next()? {
                    let mut cells: [Option<&str>; 9] = [None; 9];
                    for (i, cell) in cells.iter_mut().enumerate() {
                        *cell = r
                            .get_ref(i)?
                            .as_str_or_null()
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    }
                    add(cells)?;
                }
            }
            Conn::Pg(c) => {
                for r in c.query(pg(SQL).as_str(), &[&from, &to])? {
                    let mut cells: [Option<&str>; 9] = [None; 9];
                    for (i, cell) in cells.iter_mut().enumerate() {
                        *cell = r.get(i);
                    }
                    add(cells)?;
                }
            }
        }
        Ok(out)
    }

    /// The inequality facts of every national episode referred in `from..=to`.
    pub fn equity_facts(&mut self, from: Date, to: Date) -> Result<Vec<EquityFact>> {
        self.ready()?;
        const SQL: &str = "SELECT programme_code, sex, age_at_event, ethnicity, imd_quintile, initiating_event, \
            treatment, core_start_date IS NOT NULL FROM national_episodes WHERE referral_date >= ?1 AND referral_date <= ?2";
        let (from, to) = (from.to_string(), to.to_string());
        let group = |e: Option<String>, t: Option<String>| {
            crest_core::PriorityGroup::of(e.as_deref().unwrap_or(""), t.as_deref().unwrap_or(""))
        };
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(SQL)?
                .query_map([&from, &to], |r| {
                    Ok(EquityFact {
                        programme: r.get(0)?,
                        sex: r.get(1)?,
                        age: r.get(2)?,
                        ethnicity: r.get(3)?,
                        imd_quintile: r.get(4)?,
                        group: group(r.get(5)?, r.get(6)?),
                        started: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(pg(SQL).as_str(), &[&from, &to])?
                .iter()
                .map(|r| EquityFact {
                    programme: r.get(0),
                    sex: r.get(1),
                    age: r.get(2),
                    ethnicity: r.get(3),
                    imd_quintile: r.get(4),
                    group: group(r.get(5), r.get(6)),
                    started: r.get(7),
                })
                .collect(),
        })
    }

    /// For each programme with episodes referred in `from..=to`: its episode count and, per
    /// national field (in [`national_fields`] order), how many have a value.
    pub fn completeness(&mut self, from: Date, to: Date) -> Result<Vec<(String, i64, Vec<i64>)>> {
        self.ready()?;
        let counts: Vec<String> = national_fields()
            .map(|f| format!("count({})", f.name))
            .collect();
        let sql = format!(
            "SELECT programme_code, count(*), {} FROM national_episodes WHERE referral_date >= ?1 AND referral_date <= ?2 \
             GROUP BY programme_code ORDER BY programme_code",
            counts.join(", ")
        );
        let (from, to) = (from.to_string(), to.to_string());
        let width = counts.len();
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(&sql)?
                .query_map([&from, &to], |r| {
                    let mut v = Vec::with_capacity(width);
                    for i in 0..width {
                        v.push(r.get(i + 2)?);
                    }
                    Ok((r.get(0)?, r.get(1)?, v))
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(pg(&sql).as_str(), &[&from, &to])?
                .iter()
                .map(|r| {
                    let v = (0..width).map(|i| r.get::<_, i64>(i + 2)).collect();
                    (r.get(0), r.get(1), v)
                })
                .collect(),
        })
    }

    /// For every numeric measure, the (assessment 1, assessment 2) pairs of the episodes referred
    /// in `from..=to` that have both, keyed by the assessment 1 field.
    pub fn outcome_pairs(&mut self, from: Date, to: Date) -> Result<OutcomePairs> {
        self.ready()?;
        let a1: Vec<&'static Field> = FIELDS
            .iter()
            .filter(|f| {
                f.assessment() == Some(1)
                    && matches!(f.kind, Kind::Int { .. } | Kind::Decimal { .. })
            })
            .collect();
        let a2: Vec<&'static Field> = a1
            .iter()
            .filter_map(|f| {
                FIELDS
                    .iter()
                    .find(|g| g.name == format!("a2_{}", &f.name[3..]))
            })
            .collect();
        if a1.len() != a2.len() {
            return Err(StoreError::Corrupt(
                "assessment 1 and 2 measures do not pair up".into(),
            ));
        }
        let cols: Vec<String> = a1
            .iter()
            .zip(&a2)
            .flat_map(|(x, y)| {
                [
                    format!("CAST({} AS DOUBLE PRECISION)", x.name),
                    format!("CAST({} AS DOUBLE PRECISION)", y.name),
                ]
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM national_episodes WHERE referral_date >= ?1 AND referral_date <= ?2",
            cols.join(", ")
        );
        let (from, to) = (from.to_string(), to.to_string());
        let mut pairs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); a1.len()];
        match &mut self.conn {
            Conn::Sqlite(c) => {
                // SQLite has no DOUBLE PRECISION type, but CAST to it gives REAL all the same.
                let mut st = c.prepare(&sql)?;
                let mut rows = st.query([&from, &to])?;
                while let Some(r) = rows.next()? {
                    for (i, slot) in pairs.iter_mut().enumerate() {
                        if let (Some(x), Some(y)) = (
                            r.get::<_, Option<f64>>(2 * i)?,
                            r.get::<_, Option<f64>>(2 * i + 1)?,
                        ) {
                            slot.push((x, y));
                        }
                    }
                }
            }
            Conn::Pg(c) => {
                for r in c.query(pg(&sql).as_str(), &[&from, &to])? {
                    for (i, slot) in pairs.iter_mut().enumerate() {
                        if let (Some(x), Some(y)) = (
                            r.get::<_, Option<f64>>(2 * i),
                            r.get::<_, Option<f64>>(2 * i + 1),
                        ) {
                            slot.push((x, y));
                        }
                    }
                }
            }
        }
        Ok(a1.into_iter().zip(pairs).collect())
    }

    /// A value that changes whenever anything is received (for caches of national pages).
    pub fn data_version(&mut self) -> Result<String> {
        self.ready()?;
        const SQL: &str =
            "SELECT count(*), coalesce(max(received_at), '') FROM national_submissions";
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => {
                let (n, at): (i64, String) =
                    c.query_row(SQL, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
                format!("{n}|{at}")
            }
            Conn::Pg(c) => {
                let r = c.query_one(SQL, &[])?;
                format!("{}|{}", r.get::<_, i64>(0), r.get::<_, String>(1))
            }
        })
    }

    /// Whether a programme is registered nationally.
    pub fn has_programme(&mut self, code: &str) -> Result<bool> {
        self.ready()?;
        const SQL: &str = "SELECT count(*) FROM programmes WHERE programme_code = ?1";
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c.query_row(SQL, [code], |r| r.get::<_, i64>(0))? > 0,
            Conn::Pg(c) => c.query_one(pg(SQL).as_str(), &[&code])?.get::<_, i64>(0) > 0,
        })
    }

    /// Stores a submission in one transaction: idempotent by its checksum; a newer submission
    /// for the same programme and period replaces the older; tombstones delete episodes.
    /// `items` reads the payload from its start, one item at a time (so a large submission is
    /// never held whole); it may be called twice. An item that is an error, or counts that
    /// differ from the manifest's, roll the whole receipt back. Refuses one older than the
    /// submission it would replace.
    ///
    /// `log`, when given, is the access-log entry of a stored receipt (its detail becomes the
    /// counts): written in the receipt's own transaction, so episodes are never stored without
    /// it.
    pub fn receive(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&crate::AccessEntry>,
    ) -> Result<Received> {
        let entry = |stored: usize, replaced: usize, deleted: usize| {
            log.map(|e| crate::AccessEntry {
                at: received_at.to_string(),
                outcome: "ok".into(),
                detail: format!(
                    "{stored} stored, {replaced} replaced, {deleted} deleted by tombstones"
                ),
                ..e.clone()
            })
        };
        self.ready()?;
        let slot = format!("{}|{}|{}", r.programme, r.from, r.to);
        let insert = format!(
            "INSERT INTO national_episodes (episode_key, patient_key, submission, {}) VALUES (?1, ?2, ?3, {})",
            national_fields().map(|f| f.name).collect::<Vec<_>>().join(", "),
            (0..national_fields().count()).map(|i| format!("?{}", i + 4)).collect::<Vec<_>>().join(", "),
        );
        // The `sha256` column holds the receipt's identity (`Receipt::id`).
        const SEEN: &str = "SELECT count(*) FROM national_submissions WHERE sha256 = ?1";
        const CURRENT: &str =
            "SELECT sha256, created_at FROM national_submissions WHERE current_for = ?1";
        const DROP_OLD: &str =
            "DELETE FROM national_episodes WHERE programme_code = ?1 AND submission = ?2";
        const RETIRE: &str = "UPDATE national_submissions SET current_for = NULL WHERE sha256 = ?1";
        // Keys are matched only within the submission's own programme.
        const TOMBSTONE: &str =
            "DELETE FROM national_episodes WHERE programme_code = ?1 AND episode_key = ?2";
        const SUBMISSION: &str = "INSERT INTO national_submissions (sha256, programme_code, period_from, period_to, key_id, \
            dataset_version, created_at, received_at, episodes, tombstones, current_for) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
        let (from, to) = (r.from.to_string(), r.to.to_string());
        let (n_eps, n_tomb) = (r.episodes as i64, r.tombstones as i64);
        let mismatch = |e: usize, t: usize| {
            StoreError::Refused(format!(
                "the manifest says {} episode(s) and {} tombstone(s) but the payload has {e} and {t}",
                r.episodes, r.tombstones
            ))
        };
        let older = |created: &str| {
            StoreError::Corrupt(format!(
                "a newer submission for {} {}..{} (built {created}) is already held; this one was built {} and would replace it",
                r.programme, r.from, r.to, r.created_at
            ))
        };
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                if tx.query_row(SEEN, [&r.id], |x| x.get::<_, i64>(0))? > 0 {
                    return Ok(Received::AlreadyReceived);
                }
                let current: Option<(String, String)> = {
                    use rusqlite::OptionalExtension;
                    tx.query_row(CURRENT, [&slot], |x| Ok((x.get(0)?, x.get(1)?)))
                        .optional()?
                };
                let mut replaced = 0;
                if let Some((old, created)) = current {
                    if created > r.created_at {
                        return Err(older(&created));
                    }
                    replaced = tx.execute(DROP_OLD, [&r.programme, &old])?;
                    tx.execute(RETIRE, [&old])?;
                }
                tx.execute(
                    SUBMISSION,
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
                    let mut drop_one = tx.prepare(TOMBSTONE)?;
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
                                    national_fields()
                                        .map(|f| crate::sqlite::to_sql(e.record.get(f.col))),
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
                    return Err(mismatch(stored, tombstones));
                }
                if let Some(e) = entry(stored, replaced, deleted) {
                    crate::sqlite::write_log(&tx, &e)?;
                }
                tx.commit()?;
                Ok(Received::Stored {
                    episodes: stored,
                    replaced,
                    deleted,
                })
            }
            Conn::Pg(c) => {
                let mut tx = c.transaction()?;
                // One receipt per programme and period at a time.
                tx.execute(
                    "SELECT pg_advisory_xact_lock(hashtext($1)::BIGINT)",
                    &[&slot],
                )?;
                if tx.query_one(pg(SEEN).as_str(), &[&r.id])?.get::<_, i64>(0) > 0 {
                    return Ok(Received::AlreadyReceived);
                }
                let current = tx.query_opt(pg(CURRENT).as_str(), &[&slot])?;
                let mut replaced = 0;
                if let Some(row) = current {
                    let (old, created): (String, String) = (row.get(0), row.get(1));
                    if created > r.created_at {
                        return Err(older(&created));
                    }
                    replaced = tx.execute(pg(DROP_OLD).as_str(), &[&r.programme, &old])? as usize;
                    tx.execute(pg(RETIRE).as_str(), &[&old])?;
                }
                tx.execute(
                    pg(SUBMISSION).as_str(),
                    &[
                        &r.id,
                        &r.programme,
                        &from,
                        &to,
                        &r.key_id,
                        &r.dataset_version,
                        &r.created_at,
                        &received_at,
                        &n_eps,
                        &n_tomb,
                        &slot,
                    ],
                )?;
                // Episodes go in by binary COPY (one round trip, not one per row), straight
                // into the table. An episode already held under another submission (one that
                // moved period) makes that fail on the key; then the payload is read again
                // into a staging table and merged in one statement.
                let direct = {
                    let mut attempt = tx.savepoint("direct")?;
                    match copy_items(&mut attempt, "national_episodes", &mut *items(), &r.id) {
                        Ok(copied) => {
                            attempt.commit()?;
                            Some(copied)
                        }
                        Err(StoreError::Postgres(e))
                            if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
                        {
                            None
                        }
                        Err(e) => return Err(e),
                    }
                };
                let (stored, dropped) = match direct {
                    Some(copied) => copied,
                    None => {
                        tx.batch_execute(
                            "CREATE TEMP TABLE national_staging (LIKE national_episodes) ON COMMIT DROP",
                        )?;
                        let copied = copy_items(&mut tx, "national_staging", &mut *items(), &r.id)?;
                        let names: Vec<&str> = national_fields().map(|f| f.name).collect();
                        tx.batch_execute(&format!(
                            "INSERT INTO national_episodes SELECT * FROM national_staging ON CONFLICT (programme_code, episode_key) DO UPDATE SET \
                             patient_key = excluded.patient_key, submission = excluded.submission, {}",
                            names
                                .iter()
                                .map(|n| format!("{n} = excluded.{n}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))?;
                        copied
                    }
                };
                let (tombstones, mut deleted) = (dropped.len(), 0);
                let drop_one = tx.prepare(&pg(TOMBSTONE))?;
                for t in &dropped {
                    deleted += tx.execute(&drop_one, &[&r.programme, t])? as usize;
                }
                if (stored, tombstones) != (r.episodes, r.tombstones) {
                    return Err(mismatch(stored, tombstones));
                }
                if let Some(e) = entry(stored, replaced, deleted) {
                    crate::pg::write_log(&mut tx, &e)?;
                }
                tx.commit()?;
                Ok(Received::Stored {
                    episodes: stored,
                    replaced,
                    deleted,
                })
            }
        }
    }

    /// Every national episode of a programme (all when `programme` is `None`), by key.
    pub fn episodes(&mut self, programme: Option<&str>) -> Result<Vec<NationalEpisode>> {
        self.ready()?;
        let names: Vec<&str> = national_fields().map(|f| f.name).collect();
        let sql = format!(
            "SELECT episode_key, patient_key, {} FROM national_episodes WHERE (?1 = '' OR programme_code = ?1) ORDER BY episode_key",
            names.join(", ")
        );
        let filter = programme.unwrap_or("").to_string();
        let mut out = Vec::new();
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare(&sql)?;
                let mut rows = st.query([&filter])?;
                while let Some(row) = rows.next()? {
                    let mut rec = Record::new();
                    for (i, f) in national_fields().enumerate() {
                        let v = match row.get_ref(i + 2)? {
                            rusqlite::types::ValueRef::Null => Value::Null,
                            rusqlite::types::ValueRef::Integer(n) => match f.kind {
                                Kind::Bool => Value::Bool(n != 0),
                                Kind::Decimal { .. } => Value::Num(n as f64),
                                _ => Value::Int(n),
                            },
                            rusqlite::types::ValueRef::Real(x) => Value::Num(x),
                            rusqlite::types::ValueRef::Text(t) => {
                                text_value(f, &String::from_utf8_lossy(t))?
                            }
                            rusqlite::types::ValueRef::Blob(_) => {
                                return Err(StoreError::Corrupt(format!("{}: a blob", f.name)))
                            }
                        };
                        rec.set(f.col, v);
                    }
                    out.push(NationalEpisode {
                        episode_key: row.get(0)?,
                        patient_key: row.get(1)?,
                        record: rec,
                    });
                }
            }
            Conn::Pg(c) => {
                for row in c.query(pg(&sql).as_str(), &[&filter])? {
                    let mut rec = Record::new();
                    for (i, f) in national_fields().enumerate() {
                        let i = i + 2;
                        let v = match f.kind {
                            Kind::Int { .. } => {
                                row.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Int)
                            }
                            Kind::Decimal { .. } => {
                                row.get::<_, Option<f64>>(i).map_or(Value::Null, Value::Num)
                            }
                            Kind::Bool => row
                                .get::<_, Option<bool>>(i)
                                .map_or(Value::Null, Value::Bool),
                            _ => match row.get::<_, Option<String>>(i) {
                                Some(t) => text_value(f, &t)?,
                                None => Value::Null,
                            },
                        };
                        rec.set(f.col, v);
                    }
                    out.push(NationalEpisode {
                        episode_key: row.get(0),
                        patient_key: row.get(1),
                        record: rec,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Initiating events (patient key and event date) held in more than one programme. With
    /// `programme`, only those involving that programme (what a receipt reports): found
    /// through its own episodes, so the cost follows the programme's size, not the store's.
    pub fn cross_programme_duplicates(
        &mut self,
        programme: Option<&str>,
    ) -> Result<Vec<CrossProgrammeDuplicate>> {
        self.ready()?;
        const ALL: &str = "SELECT patient_key, event_date, programme_code FROM national_episodes WHERE (patient_key, event_date) IN \
            (SELECT patient_key, event_date FROM national_episodes GROUP BY patient_key, event_date \
             HAVING count(DISTINCT programme_code) > 1) ORDER BY patient_key, event_date, programme_code";
        const ONE: &str = "SELECT DISTINCT b.patient_key, b.event_date, b.programme_code FROM national_episodes a \
            JOIN national_episodes b ON b.patient_key = a.patient_key AND b.event_date = a.event_date \
            WHERE a.programme_code = ?1 AND EXISTS (SELECT 1 FROM national_episodes c \
              WHERE c.patient_key = a.patient_key AND c.event_date = a.event_date AND c.programme_code <> ?1) \
            ORDER BY b.patient_key, b.event_date, b.programme_code";
        // The programme, when given, is the query's one parameter.
        let sql = if programme.is_some() { ONE } else { ALL };
        let rows: Vec<(String, String, String)> = match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(sql)?
                .query_map(rusqlite::params_from_iter(programme), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => {
                let params: Vec<&(dyn ToSql + Sync)> =
                    programme.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                c.query(pg(sql).as_str(), &params)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect()
            }
        };
        let mut out: Vec<CrossProgrammeDuplicate> = Vec::new();
        for (patient_key, event_date, programme) in rows {
            match out.last_mut() {
                Some(d) if d.patient_key == patient_key && d.event_date == event_date => {
                    if !d.programmes.contains(&programme) {
                        d.programmes.push(programme);
                    }
                }
                _ => out.push(CrossProgrammeDuplicate {
                    patient_key,
                    event_date,
                    programmes: vec![programme],
                }),
            }
        }
        Ok(out)
    }

    /// Submissions held, newest first.
    pub fn submissions(&mut self) -> Result<Vec<HeldSubmission>> {
        self.ready()?;
        const SQL: &str = "SELECT sha256, programme_code, period_from, period_to, key_id, episodes, current_for IS NOT NULL \
            FROM national_submissions ORDER BY received_at DESC, sha256";
        Ok(match &mut self.conn {
            Conn::Sqlite(c) => c
                .prepare(SQL)?
                .query_map([], |r| {
                    Ok(HeldSubmission {
                        sha256: r.get(0)?,
                        programme: r.get(1)?,
                        from: r.get(2)?,
                        to: r.get(3)?,
                        key_id: r.get(4)?,
                        episodes: r.get(5)?,
                        current: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?,
            Conn::Pg(c) => c
                .query(SQL, &[])?
                .iter()
                .map(|r| HeldSubmission {
                    sha256: r.get(0),
                    programme: r.get(1),
                    from: r.get(2),
                    to: r.get(3),
                    key_id: r.get(4),
                    episodes: r.get(5),
                    current: r.get(6),
                })
                .collect(),
        })
    }
}

/// A receipt's payload: episodes and tombstones in file order, or the first error.
pub type ReceiptItems = dyn Iterator<Item = std::result::Result<ReceiptItem, String>>;

/// Binary COPY of a payload's episodes into `table`; returns the episodes counted and the
/// tombstones' keys (applied after the episodes).
fn copy_items(
    tx: &mut postgres::Transaction,
    table: &str,
    items: &mut ReceiptItems,
    submission: &str,
) -> Result<(usize, Vec<String>)> {
    use std::io::Write;
    let names: Vec<&str> = national_fields().map(|f| f.name).collect();
    let (mut stored, mut dropped) = (0, Vec::new());
    let mut sink = tx.copy_in(&format!(
        "COPY {table} (episode_key, patient_key, submission, {}) FROM STDIN BINARY",
        names.join(", ")
    ))?;
    let mut rows = crate::pg::BinaryRows::new();
    let io =
        |e: std::io::Error| StoreError::Corrupt(format!("sending episodes to PostgreSQL: {e}"));
    for item in items {
        match item.map_err(StoreError::Refused)? {
            ReceiptItem::Tombstone(t) => dropped.push(t),
            ReceiptItem::Episode(e) => {
                stored += 1;
                rows.row(3 + names.len());
                rows.text(&e.episode_key);
                rows.text(&e.patient_key);
                rows.text(submission);
                for f in national_fields() {
                    rows.value(f, e.record.get(f.col));
                }
                if rows.len() >= 1 << 20 {
                    sink.write_all(&rows.take()).map_err(io)?;
                }
            }
        }
    }
    rows.end();
    sink.write_all(&rows.take()).map_err(io)?;
    sink.finish()?;
    Ok((stored, dropped))
}

fn text_value(f: &Field, t: &str) -> Result<Value> {
    Ok(match f.kind {
        Kind::Date => Value::Date(
            Date::parse_iso(t).map_err(|e| StoreError::Corrupt(format!("{}: {}", f.name, e.0)))?,
        ),
        _ => Value::Text(t.to_string()),
    })
}
