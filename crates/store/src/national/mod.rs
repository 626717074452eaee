//! The national store (privacy.md, "Two stores, one door"): pseudonymised, minimised episodes
//! from every programme, filled only by receiving submissions. Its schema (frozen migrations)
//! holds the dictionary's tier N and D fields only, so it has no column for a name, NHS number,
//! date of birth, postcode, local patient id or local episode id; episodes are keyed by
//! programme and the national re-keyed `episode_key`, and linked across programmes by
//! `patient_key`.
//!
//! Every query is written once over [`crate::db::Db`], which SQLite and PostgreSQL
//! implement; only migrating and receiving differ by back end.

mod backend;
mod model;
mod pg;
mod receipt;
mod research;
mod sqlite;

pub use model::*;
pub use research::{FactRow, Project};

use crate::db::{self, all, first, Lock, Param, RowRef};
use crate::kpi_facts::Packed;
use crate::{Result, StoreError};
use backend::NationalDb;
use crest_core::{Date, Field, Kind, Programme, Record, Value, FIELDS};

/// A national store on SQLite or PostgreSQL.
pub struct NationalStore {
    db: Box<dyn NationalDb>,
    /// Set once this connection has found a national store here (see `ready`).
    national: bool,
}

fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A programme as stored: code, name, nation, region, professions, offers.
fn programme_row(r: &dyn RowRef) -> Result<Programme> {
    let cells: Vec<String> = (0..6).map(|i| r.string(i)).collect::<Result<_>>()?;
    Programme::parse([
        &cells[0], &cells[1], &cells[2], &cells[3], &cells[4], &cells[5],
    ])
    .map_err(|e| StoreError::Corrupt(e.0))
}

/// SQLite's page cache for the national store, in KiB (its analyses read the same pages
/// again and again).
const PAGE_CACHE_KIB: u32 = 131_072;

impl NationalStore {
    /// Opens a national store by `--db` URL (a file path, `sqlite:PATH` or `postgres://…`).
    pub fn open(url: &str) -> Result<NationalStore> {
        let db: Box<dyn NationalDb> =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                Box::new(db::Postgres::connect(url)?)
            } else {
                Box::new(db::Sqlite::open(
                    url.strip_prefix("sqlite:").unwrap_or(url),
                    PAGE_CACHE_KIB,
                )?)
            };
        Ok(NationalStore {
            db,
            national: false,
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.db.backend()
    }

    /// Creates the national schema (`crest init --national`); returns migrations applied.
    /// Refuses a local store: the two are separate databases.
    pub fn migrate(&mut self) -> Result<usize> {
        if self.db.has_table("crest_migrations")? {
            return Err(StoreError::Corrupt(
                "this database is a local (identifiable) store; a national store must be a separate database".into(),
            ));
        }
        let set = crate::migrations::national(self.db.backend());
        crate::migrations::run(&mut *self.db, &set)
    }

    /// Checks the applied migrations against their files without changing anything (as a
    /// server starts): the same refusals as [`NationalStore::migrate`].
    pub fn check_migrations(&mut self) -> Result<()> {
        let set = crate::migrations::national(self.db.backend());
        crate::migrations::verify(&mut *self.db, &set)
    }

    fn ready(&mut self) -> Result<()> {
        if self.national {
            return Ok(());
        }
        if self.db.has_table("crest_national_migrations")? {
            // A national store stays one: asked once per connection, not per query.
            self.national = true;
            Ok(())
        } else if self.db.has_table("crest_migrations")? {
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
        self.db.columns()
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
        db::in_transaction(&mut *self.db, Lock::Rows, |db| {
            for r in &rows {
                let p: Vec<Param> = r.iter().map(|s| Param::Text(s)).collect();
                db.execute(SQL, &p)?;
            }
            Ok(())
        })
    }

    /// Appends to the national store's access log, chained to the entry before it.
    pub fn log(&mut self, e: &crate::AccessEntry) -> Result<()> {
        self.ready()?;
        db::append_log(&mut *self.db, e)
    }

    /// The newest `limit` entries of the national access log, newest first.
    pub fn access_log(&mut self, limit: usize) -> Result<Vec<crate::AccessEntry>> {
        self.ready()?;
        let limit = limit.min(i64::MAX as usize) as i64;
        all(
            self.db.as_mut(),
            db::log_sql::LATEST,
            &[Param::Int(limit)],
            db::entry_of,
        )
    }

    /// Checks the national access log's hash chain.
    pub fn verify_access_log(&mut self) -> Result<crate::LogCheck> {
        self.ready()?;
        let db = &mut self.db;
        crate::audit::verify(|after, limit| db::read_chain(&mut **db, after, limit))
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
        ]
        .map(|s| Param::Text(s));
        db::in_transaction(&mut *self.db, Lock::Rows, |db| {
            if db.execute(CASE, &p)? > 0 {
                db.execute(
                    NOTE,
                    &[id.as_str(), c.opened_at.as_str(), username, note.as_str()].map(Param::Text),
                )?;
            }
            Ok(())
        })?;
        Ok(id)
    }

    /// Every outlier case, newest first.
    pub fn cases(&mut self) -> Result<Vec<OutlierCase>> {
        self.ready()?;
        const SQL: &str = "SELECT id, programme_code, kpi, period_from, period_to, level, direction, finding, status, \
            opened_at FROM outlier_cases ORDER BY opened_at DESC, id";
        all(self.db.as_mut(), SQL, &[], |r| {
            Ok(OutlierCase {
                id: r.string(0)?,
                programme: r.string(1)?,
                kpi: r.string(2)?,
                from: r.string(3)?,
                to: r.string(4)?,
                level: r.string(5)?,
                direction: r.string(6)?,
                finding: r.string(7)?,
                status: r.string(8)?,
                opened_at: r.string(9)?,
            })
        })
    }

    /// A case's history, oldest first.
    pub fn case_history(&mut self, id: &str) -> Result<Vec<CaseNote>> {
        self.ready()?;
        const SQL: &str =
            "SELECT at, username, status, note FROM outlier_history WHERE case_id = ?1 ORDER BY id";
        all(self.db.as_mut(), SQL, &[Param::Text(id)], |r| {
            Ok(CaseNote {
                at: r.string(0)?,
                username: r.string(1)?,
                status: r.string(2)?,
                note: r.string(3)?,
            })
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
        db::in_transaction(&mut *self.db, Lock::Rows, |db| {
            db.execute(STATUS, &[id, status].map(Param::Text))?;
            db.execute(NOTE, &[id, at, username, status, note].map(Param::Text))?;
            Ok(())
        })
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
        self.db.execute(
            SQL,
            &[hash.as_str(), programme, at, expires_at].map(Param::Text),
        )?;
        Ok(())
    }

    /// Every API token on record (never the token itself), newest first.
    pub fn api_tokens(&mut self) -> Result<Vec<ApiToken>> {
        self.ready()?;
        const SQL: &str =
            "SELECT token_hash, programme_code, created_at, coalesce(expires_at, ''), revoked_at \
            FROM api_tokens ORDER BY created_at DESC, token_hash";
        all(self.db.as_mut(), SQL, &[], |r| {
            let hash = r.string(0)?;
            Ok(ApiToken {
                id: hash[..TOKEN_ID_LEN.min(hash.len())].to_string(),
                programme: r.string(1)?,
                created_at: r.string(2)?,
                expires_at: r.string(3)?,
                revoked_at: r.text(4)?.map(str::to_string),
            })
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
        Ok(self.db.execute(SQL, &[at, id.as_str()].map(Param::Text))? > 0)
    }

    /// What an API token may do at `now` (UTC, ISO 8601).
    pub fn api_token_access(&mut self, token: &str, now: &str) -> Result<TokenAccess> {
        self.ready()?;
        const SQL: &str =
            "SELECT programme_code, coalesce(expires_at, ''), revoked_at IS NOT NULL \
            FROM api_tokens WHERE token_hash = ?1";
        let hash = token_hash(token);
        let row = first(self.db.as_mut(), SQL, &[Param::Text(&hash)], |r| {
            Ok((r.string(0)?, r.string(1)?, r.flag(2)?.unwrap_or(false)))
        })?;
        Ok(match row {
            None => TokenAccess::Unknown,
            Some((programme, _, true)) => TokenAccess::Revoked(programme),
            // Every token has an expiry (national migration 9 gave the older ones one); one
            // without is refused rather than trusted for ever.
            Some((programme, expires, false)) if expires.is_empty() || expires.as_str() <= now => {
                TokenAccess::Expired(programme)
            }
            Some((programme, _, false)) => TokenAccess::Valid(programme),
        })
    }

    /// Registers a programme's public signing key (its id and text as the privacy crate
    /// makes them). Refused for an unregistered programme or a key already registered.
    pub fn add_signing_key(&mut self, k: &ProgrammeSigningKey) -> Result<()> {
        self.ready()?;
        if !self.has_programme(&k.programme)? {
            return Err(StoreError::Refused(format!(
                "programme {} is not registered in the national store; register it with `crest programmes import --national`",
                k.programme
            )));
        }
        const SEEN: &str = "SELECT programme_code FROM programme_signing_keys WHERE key_id = ?1 OR public_key = ?2";
        if let Some(p) = first(
            self.db.as_mut(),
            SEEN,
            &[&k.key_id, &k.public_key].map(|s| Param::Text(s)),
            |r| r.string(0),
        )? {
            return Err(StoreError::Refused(format!(
                "signing key {} is already registered (for programme {p})",
                k.key_id
            )));
        }
        const SQL: &str = "INSERT INTO programme_signing_keys (key_id, programme_code, public_key, valid_from, valid_to, added_at) \
            VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
        // An open-ended key has an empty `valid_to`.
        let (from, to) = (
            k.valid_from.to_string(),
            k.valid_to.map(|d| d.to_string()).unwrap_or_default(),
        );
        let p = [
            &k.key_id,
            &k.programme,
            &k.public_key,
            &from,
            &to,
            &k.added_at,
        ]
        .map(|s| Param::Text(s));
        self.db.execute(SQL, &p)?;
        Ok(())
    }

    /// Revokes a signing key by its id; false if there is none or it was already revoked.
    pub fn revoke_signing_key(&mut self, key_id: &str, at: &str) -> Result<bool> {
        self.ready()?;
        const SQL: &str = "UPDATE programme_signing_keys SET revoked_at = ?1 WHERE key_id = ?2 AND revoked_at IS NULL";
        Ok(self
            .db
            .execute(SQL, &[at, key_id.trim()].map(Param::Text))?
            > 0)
    }

    /// The signing keys on record, of one programme or all, by programme and date added.
    pub fn signing_keys(&mut self, programme: Option<&str>) -> Result<Vec<ProgrammeSigningKey>> {
        self.ready()?;
        const SQL: &str = "SELECT key_id, programme_code, public_key, valid_from, valid_to, added_at, revoked_at \
            FROM programme_signing_keys WHERE (?1 = '' OR programme_code = ?1) ORDER BY programme_code, added_at, key_id";
        all(
            self.db.as_mut(),
            SQL,
            &[Param::Text(programme.unwrap_or(""))],
            |r| {
                let day = |s: &str| Date::parse_iso(s).map_err(|e| StoreError::Corrupt(e.0));
                Ok(ProgrammeSigningKey {
                    key_id: r.string(0)?,
                    programme: r.string(1)?,
                    public_key: r.string(2)?,
                    valid_from: day(&r.string(3)?)?,
                    valid_to: r.text(4)?.filter(|s| !s.is_empty()).map(day).transpose()?,
                    added_at: r.string(5)?,
                    revoked_at: r.text(6)?.map(str::to_string),
                })
            },
        )
    }

    /// Every programme registered nationally, in code order.
    pub fn programmes(&mut self) -> Result<Vec<Programme>> {
        self.ready()?;
        const SQL: &str = "SELECT programme_code, name, nation, region, professions, offers FROM programmes ORDER BY programme_code";
        all(self.db.as_mut(), SQL, &[], programme_row)
    }

    /// The KPI facts of every national episode referred in `from..=to` of the given programmes
    /// (`KpiEpisode::programme` indexes `programmes`), from each programme's packed facts
    /// (packed again first where its episodes changed).
    pub fn kpi_episodes(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
    ) -> Result<Vec<crest_core::KpiEpisode>> {
        self.pack_kpi_facts()?;
        crate::kpi_facts::read(self.db.as_mut(), &Packed::national(), programmes, from, to)
    }

    /// The same episodes as [`NationalStore::kpi_episodes`], handed to `each` a programme at
    /// a time rather than held all at once.
    pub fn each_kpi_episode(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
        each: &mut dyn FnMut(&[crest_core::KpiEpisode]),
    ) -> Result<()> {
        self.pack_kpi_facts()?;
        crate::kpi_facts::each(
            self.db.as_mut(),
            &Packed::national(),
            programmes,
            from,
            to,
            each,
        )
    }

    /// Packs again the KPI facts of every programme whose episodes changed since they were
    /// last packed (the store's triggers count each change); how many programmes it packed.
    /// Receiving a submission does this, so the next analysis finds them ready.
    pub fn pack_kpi_facts(&mut self) -> Result<usize> {
        self.ready()?;
        let stale = all(
            self.db.as_mut(),
            "SELECT programme_code, changes FROM national_kpi_facts WHERE changes <> packed_changes",
            &[],
            |r| Ok((r.string(0)?, r.int(1)?.unwrap_or(0))),
        )?;
        const ROWS: &str =
            "SELECT referral_date, core_start_date, core_end_date, assessment1_date, \
            assessment2_date, status, initiating_event, treatment FROM national_episodes \
            WHERE programme_code = ?1 AND referral_date IS NOT NULL";
        for (code, changes) in &stale {
            let mut packed = Vec::new();
            self.db.each(ROWS, &[Param::Text(code)], &mut |r| {
                let mut cells = [None; 8];
                for (i, cell) in cells.iter_mut().enumerate() {
                    *cell = r.text(i)?;
                }
                crate::kpi_facts::pack_row(cells, &mut packed)
            })?;
            // Changes made meanwhile leave `changes` ahead of what is recorded here, so they
            // are packed next time.
            self.db.execute(
                "UPDATE national_kpi_facts SET facts = ?2, packed_changes = ?3 WHERE programme_code = ?1",
                &[Param::Text(code), Param::Blob(&packed), Param::Int(*changes)],
            )?;
        }
        Ok(stale.len())
    }

    /// The inequality facts of every national episode referred in `from..=to`.
    pub fn equity_facts(&mut self, from: Date, to: Date) -> Result<Vec<EquityFact>> {
        self.equity_facts_of(None, from, to)
    }

    /// The inequality facts of one programme's national episodes referred in `from..=to`
    /// (every programme's with `None`).
    pub fn equity_facts_of(
        &mut self,
        programme: Option<&str>,
        from: Date,
        to: Date,
    ) -> Result<Vec<EquityFact>> {
        let mut out = Vec::new();
        self.each_equity_fact(programme, from, to, &mut |f| {
            out.push(f);
            Ok(())
        })?;
        Ok(out)
    }

    /// Hands each inequality fact of one programme's national episodes referred in
    /// `from..=to` (every programme's with `None`) to `each` as it is read, so a count over a
    /// million episodes holds none of them.
    pub fn each_equity_fact(
        &mut self,
        programme: Option<&str>,
        from: Date,
        to: Date,
        each: &mut dyn FnMut(EquityFact) -> Result<()>,
    ) -> Result<()> {
        self.ready()?;
        const SQL: &str =
            "SELECT programme_code, sex, age_at_event, ethnicity, imd_quintile, initiating_event, \
            treatment, core_start_date IS NOT NULL, referral_date FROM national_episodes \
            WHERE referral_date >= ?1 AND referral_date <= ?2";
        let one = format!("{SQL} AND programme_code = ?3");
        let (from, to) = (from.to_string(), to.to_string());
        let mut params = vec![Param::Text(&from), Param::Text(&to)];
        params.extend(programme.map(Param::Text));
        self.db.each(
            if programme.is_some() { &one } else { SQL },
            &params,
            &mut |r| {
                let referred = Date::parse_iso(r.text(8)?.unwrap_or_default()).map_err(|_| {
                    StoreError::Corrupt("a national episode's referral date".into())
                })?;
                each(EquityFact {
                    programme: r.string(0)?,
                    referred,
                    sex: r.text(1)?.map(str::to_string),
                    age: r.int(2)?,
                    ethnicity: r.text(3)?.map(str::to_string),
                    imd_quintile: r.int(4)?,
                    group: crest_core::PriorityGroup::of(
                        r.text(5)?.unwrap_or_default(),
                        r.text(6)?.unwrap_or_default(),
                    ),
                    started: r.flag(7)?.unwrap_or(false),
                })
            },
        )
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
        all(
            self.db.as_mut(),
            &sql,
            &[Param::Text(&from), Param::Text(&to)],
            |r| {
                let v = (0..width)
                    .map(|i| Ok(r.int(i + 2)?.unwrap_or(0)))
                    .collect::<Result<Vec<i64>>>()?;
                Ok((r.string(0)?, r.int(1)?.unwrap_or(0), v))
            },
        )
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
        // SQLite has no DOUBLE PRECISION type, but CAST to it gives REAL all the same.
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
        // A measure is only ever held with its assessment's date (dataset.md), so episodes
        // without both dates hold no pair and are not read.
        let sql = format!(
            "SELECT {} FROM national_episodes WHERE referral_date >= ?1 AND referral_date <= ?2 \
             AND assessment1_date IS NOT NULL AND assessment2_date IS NOT NULL",
            cols.join(", ")
        );
        let (from, to) = (from.to_string(), to.to_string());
        let mut pairs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); a1.len()];
        self.db
            .each(&sql, &[Param::Text(&from), Param::Text(&to)], &mut |r| {
                for (i, slot) in pairs.iter_mut().enumerate() {
                    if let (Some(x), Some(y)) = (r.real(2 * i)?, r.real(2 * i + 1)?) {
                        slot.push((x, y));
                    }
                }
                Ok(())
            })?;
        Ok(a1.into_iter().zip(pairs).collect())
    }

    /// Adds or replaces expected-patients rows (by area, quarter and condition).
    pub fn load_expected(
        &mut self,
        rows: &[crest_core::expected::Expected],
    ) -> Result<crate::ExpectedLoad> {
        self.ready()?;
        crate::expected::load(self.db.as_mut(), rows, &crate::utc_now())
    }

    /// Every expected-patients row.
    pub fn expected(&mut self) -> Result<Vec<crest_core::expected::Expected>> {
        self.ready()?;
        crate::expected::read(self.db.as_mut())
    }

    /// A value that changes whenever anything is received or expected patients are loaded
    /// (for caches of national pages).
    pub fn data_version(&mut self) -> Result<String> {
        self.ready()?;
        // Expected patients change the ascertainment every national page shows.
        const SQL: &str = "SELECT count(*), coalesce(max(received_at), ''), \
            (SELECT count(*) FROM expected_patients), \
            (SELECT coalesce(max(loaded_at), '') FROM expected_patients) FROM national_submissions";
        let v = first(self.db.as_mut(), SQL, &[], |r| {
            Ok(format!(
                "{}|{}|{}|{}",
                r.int(0)?.unwrap_or(0),
                r.string(1)?,
                r.int(2)?.unwrap_or(0),
                r.string(3)?
            ))
        })?;
        Ok(v.unwrap_or_default())
    }

    /// Whether a programme is registered nationally.
    pub fn has_programme(&mut self, code: &str) -> Result<bool> {
        self.ready()?;
        const SQL: &str = "SELECT count(*) FROM programmes WHERE programme_code = ?1";
        let n = first(self.db.as_mut(), SQL, &[Param::Text(code)], |r| {
            Ok(r.int(0)?.unwrap_or(0))
        })?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// Stores a submission in one transaction: idempotent by its identity; a newer submission
    /// for the same programme and period replaces the older; tombstones delete episodes of the
    /// same programme only. `items` reads the payload from its start, one item at a time (so a
    /// large submission is never held whole); it may be called twice. An item that is an
    /// error, or counts that differ from the manifest's, roll the whole receipt back. Refuses
    /// one older than the submission it would replace.
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
        self.ready()?;
        let received = self.db.receive(r, items, received_at, log)?;
        if matches!(received, Received::Stored { .. }) {
            // The receipt is committed whatever happens here: a programme left unpacked keeps
            // its change count ahead and is packed at the next read, so no error is reported
            // for a submission that was stored.
            let _ = self.pack_kpi_facts();
        }
        Ok(received)
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
        all(self.db.as_mut(), &sql, &[Param::Text(&filter)], |row| {
            let mut rec = Record::new();
            for (i, f) in national_fields().enumerate() {
                let i = i + 2;
                let v = match f.kind {
                    Kind::Int { .. } => row.int(i)?.map_or(Value::Null, Value::Int),
                    Kind::Decimal { .. } => row.real(i)?.map_or(Value::Null, Value::Num),
                    Kind::Bool => row.flag(i)?.map_or(Value::Null, Value::Bool),
                    _ => match row.text(i)? {
                        Some(t) => text_value(f, t)?,
                        None => Value::Null,
                    },
                };
                rec.set(f.col, v);
            }
            Ok(NationalEpisode {
                episode_key: row.string(0)?,
                patient_key: row.string(1)?,
                record: rec,
            })
        })
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
        let (sql, params) = match programme {
            Some(p) => (ONE, vec![Param::Text(p)]),
            None => (ALL, vec![]),
        };
        let rows = all(self.db.as_mut(), sql, &params, |r| {
            Ok((r.string(0)?, r.string(1)?, r.string(2)?))
        })?;
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
        all(self.db.as_mut(), SQL, &[], |r| {
            Ok(HeldSubmission {
                sha256: r.string(0)?,
                programme: r.string(1)?,
                from: r.string(2)?,
                to: r.string(3)?,
                key_id: r.string(4)?,
                episodes: r.int(5)?.unwrap_or(0),
                current: r.flag(6)?.unwrap_or(false),
            })
        })
    }
}
