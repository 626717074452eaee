//! The local (identifiable) store, written once over [`Db`]: every query and every row
//! mapping is here, with `?N` placeholders. What differs by back end is the small
//! [`LocalDb`] trait: how an episode's every column is bound to a prepared statement, and
//! which indexes a bulk load into an empty table drops and builds again (`local::sqlite`,
//! `local::pg`).

mod pg;
mod sqlite;

use crate::accounts::{self, sql};
use crate::db::{self, all, first, locks, Db, Lock, Param, Postgres, RowRef, Sqlite};
use crate::kpi_facts::Packed;
use crate::schema;
use crate::{
    AccessEntry, ChainEntry, EpisodeQuery, ImportTx, PendingUpload, ProgrammeCounts, Result,
    Session, SignInLimit, Store, StoreError, StoredKey, User, UserToken,
};
use crest_core::{Col, Date, Kind, KpiEpisode, Programme, Record, Value, FIELDS};
use std::collections::{HashMap, HashSet};

/// What the local store needs of a back end beyond [`Db`].
pub(crate) trait LocalDb: Db + 'static {
    /// Runs `sql` (an insert or update of every column of the dataset, in dictionary order,
    /// from `?1`; an update's key follows as the next two parameters) for one episode, from a
    /// statement prepared once per connection.
    fn write_episode(&mut self, sql: &str, rec: &Record, key: Option<[&str; 2]>) -> Result<()>;
    /// Indexes a bulk load into an empty table drops first and builds again at the end, by
    /// sorting, as (name, definition).
    fn bulk_indexes(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Before the transaction of what looks like a bulk load into an empty table: a back end
    /// may switch to a cheaper way of making it durable. Whether it did (then
    /// [`LocalDb::bulk_end`] must follow the transaction).
    fn bulk_start(&mut self) -> bool {
        false
    }
    /// After the transaction [`LocalDb::bulk_start`] prepared, committed or rolled back.
    fn bulk_end(&mut self) {}
}

/// A local store on a back end: [`SqliteStore`] or [`PgStore`].
pub struct LocalStore<D> {
    db: D,
    /// Set once this connection has found the migrations current: they only ever go forward,
    /// so it never asks again (on PostgreSQL the question was most of a dashboard's queries).
    migrated: bool,
}

/// A local store in a SQLite file (the embedded default).
pub type SqliteStore = LocalStore<Sqlite>;
/// A local store in a PostgreSQL database, for production and multi-user set-ups.
pub type PgStore = LocalStore<Postgres>;

/// SQLite's page cache for the local store, in KiB.
const PAGE_CACHE_KIB: u32 = 65_536;

impl SqliteStore {
    /// Opens (creating if needed) the file at `path`.
    pub fn open(path: &str) -> Result<SqliteStore> {
        Ok(LocalStore {
            db: Sqlite::open(path, PAGE_CACHE_KIB)?,
            migrated: false,
        })
    }
}

impl PgStore {
    /// Connects to a `postgres://` URL.
    pub fn connect(url: &str) -> Result<PgStore> {
        Ok(LocalStore {
            db: Postgres::connect(url)?,
            migrated: false,
        })
    }
}

/// The episode columns, in dictionary order, for a `SELECT`.
fn episode_columns() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

/// A stored episode from its columns (in dictionary order).
fn read_record(row: &dyn RowRef) -> Result<Record> {
    let mut values = Vec::with_capacity(FIELDS.len());
    for (i, f) in FIELDS.iter().enumerate() {
        let v = match f.kind {
            Kind::Int { .. } => row.int(i)?.map_or(Value::Null, Value::Int),
            Kind::Decimal { .. } => row.real(i)?.map_or(Value::Null, Value::Num),
            Kind::Bool => row.flag(i)?.map_or(Value::Null, Value::Bool),
            Kind::Date => match row.text(i)? {
                Some(s) => Value::Date(
                    Date::parse_iso(s)
                        .map_err(|e| StoreError::Corrupt(format!("{}: {}", f.name, e.0)))?,
                ),
                None => Value::Null,
            },
            _ => row
                .text(i)?
                .map_or(Value::Null, |s| Value::Text(s.to_string())),
        };
        values.push(v);
    }
    Record::from_values(values).ok_or_else(|| StoreError::Corrupt("wrong column count".into()))
}

fn get_record(db: &mut dyn Db, programme: &str, episode_id: &str) -> Result<Option<Record>> {
    first(
        db,
        &schema::sql().select,
        &[Param::Text(programme), Param::Text(episode_id)],
        read_record,
    )
}

fn user_token_row(r: &dyn RowRef) -> Result<UserToken> {
    Ok(UserToken {
        id: r.string(0)?,
        username: r.string(1)?,
        label: r.string(2)?,
        created_at: r.string(3)?,
        expires_at: r.string(4)?,
        revoked_at: r.text(5)?.map(str::to_string),
    })
}

fn user_row(r: &dyn RowRef) -> Result<User> {
    accounts::user_of(
        r.string(0)?,
        r.string(1)?,
        r.text(2)?.unwrap_or_default(),
        r.text(3)?.unwrap_or_default(),
        r.flag(4)?.unwrap_or(false),
        r.string(5)?,
        r.text(6)?.unwrap_or_default(),
    )
}

// The back-end traits are the crate's own: callers name a store by its alias
// (`SqliteStore`, `PgStore`) and never the trait that makes it work.
#[allow(private_bounds)]
impl<D: LocalDb> LocalStore<D> {
    fn ready(&mut self) -> Result<()> {
        if self.migrated {
            return Ok(());
        }
        let set = crate::migrations::local(self.db.backend());
        if crate::migrations::version(&mut self.db, set.table)? < set.list.len() as i64 {
            return Err(StoreError::NotInitialised);
        }
        self.migrated = true;
        Ok(())
    }
}

#[allow(private_bounds)]
impl<D: LocalDb> Store for LocalStore<D> {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }

    fn migrate(&mut self) -> Result<usize> {
        if self.db.has_table("crest_national_migrations")? {
            return Err(StoreError::Corrupt(crate::NOT_LOCAL.into()));
        }
        let set = crate::migrations::local(self.db.backend());
        crate::migrations::run(&mut self.db, &set)
    }

    fn check_migrations(&mut self) -> Result<()> {
        let set = crate::migrations::local(self.db.backend());
        crate::migrations::verify(&mut self.db, &set)
    }

    fn migrations_pending(&mut self) -> Result<usize> {
        let set = crate::migrations::local(self.db.backend());
        crate::migrations::pending(&mut self.db, &set)
    }

    fn upsert_programmes(&mut self, programmes: &[Programme]) -> Result<ProgrammeCounts> {
        self.ready()?;
        db::in_transaction(&mut self.db, Lock::Rows, |db| {
            let mut counts = ProgrammeCounts::default();
            for p in programmes {
                let exists = first(
                    db,
                    "SELECT 1 FROM programmes WHERE programme_code = ?1",
                    &[Param::Text(&p.code)],
                    |_| Ok(()),
                )?
                .is_some();
                db.execute(
                    "INSERT INTO programmes (programme_code, name, nation, region, professions, offers) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (programme_code) DO UPDATE SET \
                     name = excluded.name, nation = excluded.nation, region = excluded.region, \
                     professions = excluded.professions, offers = excluded.offers",
                    &[
                        Param::Text(&p.code),
                        Param::Text(&p.name),
                        Param::Text(p.nation.code()),
                        Param::Text(&p.region),
                        Param::Text(&p.professions_text()),
                        Param::Text(&p.offers_text()),
                    ],
                )?;
                if exists {
                    counts.updated += 1
                } else {
                    counts.added += 1
                }
            }
            Ok(counts)
        })
    }

    fn programmes(&mut self) -> Result<Vec<Programme>> {
        self.ready()?;
        all(
            &mut self.db,
            "SELECT programme_code, name, nation, region, professions, offers FROM programmes \
             ORDER BY programme_code",
            &[],
            |r| {
                let cells = [
                    r.text(0)?.unwrap_or_default(),
                    r.text(1)?.unwrap_or_default(),
                    r.text(2)?.unwrap_or_default(),
                    r.text(3)?.unwrap_or_default(),
                    r.text(4)?.unwrap_or_default(),
                    r.text(5)?.unwrap_or_default(),
                ];
                Programme::parse(cells).map_err(|e| StoreError::Corrupt(e.0))
            },
        )
    }

    fn begin(&mut self) -> Result<Box<dyn ImportTx + '_>> {
        self.ready()?;
        let is_empty = |db: &mut D| {
            first(db, "SELECT 1 FROM episodes LIMIT 1", &[], |_| Ok(())).map(|f| f.is_none())
        };
        // Asked before the transaction only as a hint (a back end can change how it makes a
        // transaction durable only outside one); asked again inside it, where it is the answer.
        let switched = is_empty(&mut self.db)? && self.db.bulk_start();
        if let Err(e) = self.db.begin(Lock::Key(locks::EPISODES)) {
            if switched {
                self.db.bulk_end();
            }
            return Err(e);
        }
        let empty = match is_empty(&mut self.db) {
            Ok(empty) => empty,
            Err(e) => {
                self.db.rollback();
                if switched {
                    self.db.bulk_end();
                }
                return Err(e);
            }
        };
        let tx = LocalTx {
            db: &mut self.db,
            bulk: empty,
            switched,
            touched: HashSet::new(),
            packed: HashMap::new(),
            committed: false,
        };
        if empty {
            // Rolled back with the transaction if the import is.
            for (name, _) in tx.db.bulk_indexes() {
                tx.db.batch(&format!("DROP INDEX IF EXISTS {name}"))?;
            }
        }
        Ok(Box::new(tx))
    }

    fn kpi_episodes(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
    ) -> Result<Vec<KpiEpisode>> {
        self.ready()?;
        crate::kpi_facts::read(&mut self.db, &Packed::local(from, to), programmes, from, to)
    }

    fn each_kpi_episode(
        &mut self,
        from: Date,
        to: Date,
        programmes: &[Programme],
        each: &mut dyn FnMut(&[KpiEpisode]),
    ) -> Result<()> {
        self.ready()?;
        crate::kpi_facts::each(
            &mut self.db,
            &Packed::local(from, to),
            programmes,
            from,
            to,
            each,
        )
    }

    fn episode(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>> {
        self.ready()?;
        get_record(&mut self.db, programme, episode_id)
    }

    fn data_version(&mut self, programme: &str) -> Result<u64> {
        self.ready()?;
        let v = first(
            &mut self.db,
            "SELECT version FROM kpi_facts WHERE programme_code = ?1",
            &[Param::Text(programme)],
            |r| r.number(0),
        )?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    fn count_episodes(&mut self) -> Result<u64> {
        self.ready()?;
        let n = first(&mut self.db, "SELECT count(*) FROM episodes", &[], |r| {
            r.number(0)
        })?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    fn for_each_episode(
        &mut self,
        programme: &str,
        f: &mut dyn FnMut(&Record) -> Result<()>,
    ) -> Result<()> {
        self.ready()?;
        let sql = format!(
            "SELECT {} FROM episodes WHERE programme_code = ?1 ORDER BY episode_id",
            episode_columns()
        );
        self.db.each(&sql, &[Param::Text(programme)], &mut |r| {
            f(&read_record(r)?)
        })
    }

    fn find_episodes(&mut self, programme: &str, query: &EpisodeQuery) -> Result<Vec<Record>> {
        self.ready()?;
        let (filter, values) = accounts::episode_filter(query);
        let sql = format!(
            "SELECT {} FROM episodes WHERE {filter} ORDER BY {} LIMIT {} OFFSET {}",
            episode_columns(),
            query.sort.order_by(),
            query.limit.min(i64::MAX as usize),
            query.offset.min(i64::MAX as usize)
        );
        let params: Vec<Param> = std::iter::once(Param::Text(programme))
            .chain(values.iter().map(|v| Param::Text(v)))
            .collect();
        all(&mut self.db, &sql, &params, read_record)
    }

    fn count_matching(&mut self, programme: &str, query: &EpisodeQuery) -> Result<u64> {
        self.ready()?;
        let (filter, values) = accounts::episode_filter(query);
        let params: Vec<Param> = std::iter::once(Param::Text(programme))
            .chain(values.iter().map(|v| Param::Text(v)))
            .collect();
        let n = first(
            &mut self.db,
            &format!("SELECT count(*) FROM episodes WHERE {filter}"),
            &params,
            |r| r.number(0),
        )?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    fn put_user(&mut self, u: &User) -> Result<()> {
        self.ready()?;
        self.db.execute(
            sql::PUT_USER,
            &[
                Param::Text(&u.username),
                Param::Text(&u.password_hash),
                Param::Text(u.role.code()),
                Param::Text(&u.programmes.join(";")),
                Param::Bool(u.disabled),
                Param::Text(&u.totp_secret),
                Param::Text(&u.regions.join(";")),
            ],
        )?;
        Ok(())
    }

    fn put_user_token(&mut self, token_hash: &str, t: &UserToken) -> Result<()> {
        self.ready()?;
        self.db.execute(
            sql::PUT_USER_TOKEN,
            &[
                Param::Text(token_hash),
                Param::Text(&t.id),
                Param::Text(&t.username),
                Param::Text(&t.label),
                Param::Text(&t.created_at),
                Param::Text(&t.expires_at),
            ],
        )?;
        Ok(())
    }

    fn user_token(&mut self, token_hash: &str) -> Result<Option<UserToken>> {
        self.ready()?;
        first(
            &mut self.db,
            sql::USER_TOKEN,
            &[Param::Text(token_hash)],
            user_token_row,
        )
    }

    fn user_tokens(&mut self, username: &str) -> Result<Vec<UserToken>> {
        self.ready()?;
        all(
            &mut self.db,
            sql::USER_TOKENS,
            &[Param::Text(username)],
            user_token_row,
        )
    }

    fn revoke_user_token(&mut self, username: &str, id: &str, at: &str) -> Result<bool> {
        self.ready()?;
        Ok(self.db.execute(
            sql::REVOKE_USER_TOKEN,
            &[Param::Text(username), Param::Text(id), Param::Text(at)],
        )? > 0)
    }

    fn setting(&mut self, name: &str) -> Result<Option<String>> {
        self.ready()?;
        first(&mut self.db, sql::SETTING, &[Param::Text(name)], |r| {
            r.string(0)
        })
    }

    fn put_setting(&mut self, name: &str, value: &str) -> Result<()> {
        self.ready()?;
        self.db
            .execute(sql::PUT_SETTING, &[Param::Text(name), Param::Text(value)])?;
        Ok(())
    }

    fn user(&mut self, username: &str) -> Result<Option<User>> {
        self.ready()?;
        first(&mut self.db, sql::USER, &[Param::Text(username)], user_row)
    }

    fn users(&mut self) -> Result<Vec<User>> {
        self.ready()?;
        all(&mut self.db, sql::USERS, &[], user_row)
    }

    fn put_session(&mut self, x: &Session) -> Result<()> {
        self.db.execute(
            sql::PUT_SESSION,
            &[
                Param::Text(&x.token_hash),
                Param::Text(&x.username),
                Param::Text(&x.csrf),
                Param::Int(x.created),
                Param::Int(x.seen),
            ],
        )?;
        Ok(())
    }

    fn session(&mut self, token_hash: &str) -> Result<Option<Session>> {
        first(
            &mut self.db,
            sql::SESSION,
            &[Param::Text(token_hash)],
            |r| {
                Ok(Session {
                    token_hash: r.string(0)?,
                    username: r.string(1)?,
                    csrf: r.string(2)?,
                    created: r.number(3)?,
                    seen: r.number(4)?,
                })
            },
        )
    }

    fn touch_session(&mut self, token_hash: &str, seen: i64) -> Result<()> {
        self.db.execute(
            sql::TOUCH_SESSION,
            &[Param::Text(token_hash), Param::Int(seen)],
        )?;
        Ok(())
    }

    fn drop_session(&mut self, token_hash: &str) -> Result<()> {
        self.db
            .execute(sql::DROP_SESSION, &[Param::Text(token_hash)])?;
        Ok(())
    }

    fn drop_user_sessions(&mut self, username: &str) -> Result<()> {
        self.db
            .execute(sql::DROP_USER_SESSIONS, &[Param::Text(username)])?;
        Ok(())
    }

    fn log(&mut self, e: &AccessEntry) -> Result<()> {
        db::append_log(&mut self.db, e)
    }

    fn put_upload(&mut self, u: &PendingUpload) -> Result<()> {
        db::in_transaction(&mut self.db, Lock::Rows, |db| {
            db.execute(
                "INSERT INTO pending_uploads (token, programme_code, name, created, file, errors) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &[
                    Param::Text(&u.token),
                    Param::Text(&u.programme),
                    Param::Text(&u.name),
                    Param::Int(u.created),
                    Param::Blob(&u.file),
                    Param::Blob(&u.errors),
                ],
            )?;
            db.execute(
                sql::KEEP_NEWEST_UPLOADS,
                &[
                    Param::Text(&u.programme),
                    Param::Int(crate::MAX_PENDING_UPLOADS as i64),
                ],
            )?;
            Ok(())
        })
    }

    fn upload(&mut self, programme: &str, token: &str) -> Result<Option<PendingUpload>> {
        first(
            &mut self.db,
            "SELECT token, programme_code, name, created, file, errors FROM pending_uploads \
             WHERE programme_code = ?1 AND token = ?2",
            &[Param::Text(programme), Param::Text(token)],
            |r| {
                Ok(PendingUpload {
                    token: r.string(0)?,
                    programme: r.string(1)?,
                    name: r.string(2)?,
                    created: r.number(3)?,
                    file: r.blob(4)?.unwrap_or_default().to_vec(),
                    errors: r.blob(5)?.unwrap_or_default().to_vec(),
                })
            },
        )
    }

    fn drop_upload(&mut self, programme: &str, token: &str) -> Result<()> {
        self.db.execute(
            "DELETE FROM pending_uploads WHERE programme_code = ?1 AND token = ?2",
            &[Param::Text(programme), Param::Text(token)],
        )?;
        Ok(())
    }

    fn sweep(&mut self, before: i64, idle_before_ms: i64) -> Result<usize> {
        let n = self.db.execute(
            "DELETE FROM pending_uploads WHERE created < ?1",
            &[Param::Int(before)],
        )?;
        self.db.execute(
            "DELETE FROM sign_in_limits WHERE last_ms < ?1 AND started_ms < ?1",
            &[Param::Int(idle_before_ms)],
        )?;
        Ok(n)
    }

    fn sign_in_limits(
        &mut self,
        keys: &[&str],
        decide: &mut dyn FnMut(&mut [SignInLimit]) -> bool,
    ) -> Result<bool> {
        // Servers sharing the database take turns on throttling records.
        db::in_transaction(&mut self.db, Lock::Key(locks::SIGN_IN_LIMITS), |db| {
            let mut limits = Vec::with_capacity(keys.len());
            for k in keys {
                let found = first(
                    db,
                    "SELECT failures, in_flight, last_ms, started_ms FROM sign_in_limits WHERE key = ?1",
                    &[Param::Text(k)],
                    |r| {
                        Ok(SignInLimit {
                            key: k.to_string(),
                            failures: r.number(0)?,
                            in_flight: r.number(1)?,
                            last_ms: r.number(2)?,
                            started_ms: r.number(3)?,
                        })
                    },
                )?;
                limits.push(found.unwrap_or(SignInLimit {
                    key: k.to_string(),
                    ..Default::default()
                }));
            }
            let verdict = decide(&mut limits);
            for l in &limits {
                db.execute(
                    "INSERT INTO sign_in_limits (key, failures, in_flight, last_ms, started_ms) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (key) DO UPDATE SET \
                     failures = excluded.failures, in_flight = excluded.in_flight, \
                     last_ms = excluded.last_ms, started_ms = excluded.started_ms",
                    &[
                        Param::Text(&l.key),
                        Param::Int(l.failures),
                        Param::Int(l.in_flight),
                        Param::Int(l.last_ms),
                        Param::Int(l.started_ms),
                    ],
                )?;
            }
            Ok(verdict)
        })
    }

    fn put_agreement(&mut self, a: &crest_core::governance::Agreement) -> Result<()> {
        self.ready()?;
        let row = accounts::agreement_row(a);
        let params: Vec<Param> = row.iter().map(|s| Param::Text(s)).collect();
        self.db.execute(sql::PUT_AGREEMENT, &params)?;
        Ok(())
    }

    fn agreements(&mut self) -> Result<Vec<crest_core::governance::Agreement>> {
        self.ready()?;
        let rows = all(&mut self.db, sql::AGREEMENTS, &[], |r| {
            Ok([
                r.string(0)?,
                r.string(1)?,
                r.string(2)?,
                r.string(3)?,
                r.string(4)?,
                r.string(5)?,
                r.string(6)?,
            ])
        })?;
        rows.into_iter().map(accounts::agreement_of).collect()
    }

    fn add_service_change(&mut self, c: &crest_core::changes::ServiceChange) -> Result<i64> {
        self.ready()?;
        let date = c.date.to_string();
        let id = first(
            &mut self.db,
            sql::ADD_SERVICE_CHANGE,
            &[
                Param::Text(c.scope.kind()),
                Param::Text(c.scope.code()),
                Param::Text(&date),
                Param::Text(&c.text),
                Param::Text(&c.recorded_by),
                Param::Text(&c.recorded_at),
            ],
            |r| r.number(0),
        )?;
        Ok(id.unwrap_or(0))
    }

    fn load_expected(
        &mut self,
        rows: &[crest_core::expected::Expected],
    ) -> Result<crate::ExpectedLoad> {
        self.ready()?;
        let load = crate::expected::load(&mut self.db, rows, &crate::utc_now())?;
        if load.added + load.changed > 0 {
            // A programme's expected patients are part of its dashboard: its data version
            // moves, as when its episodes change, so a page cached before is not shown again.
            let codes: std::collections::BTreeSet<&str> = rows
                .iter()
                .filter_map(|e| match &e.area {
                    crest_core::expected::Area::Programme(c) => Some(c.as_str()),
                    crest_core::expected::Area::Region(_) => None,
                })
                .collect();
            db::in_transaction(&mut self.db, Lock::Rows, |db| {
                for code in codes {
                    db.execute(
                        "INSERT INTO kpi_facts (programme_code, facts, version) VALUES (?1, ?2, 2) \
                         ON CONFLICT (programme_code) DO UPDATE SET version = kpi_facts.version + 1",
                        &[Param::Text(code), Param::Blob(&[])],
                    )?;
                }
                Ok(())
            })?;
        }
        Ok(load)
    }

    fn expected(&mut self) -> Result<Vec<crest_core::expected::Expected>> {
        self.ready()?;
        crate::expected::read(&mut self.db)
    }

    fn expected_of(
        &mut self,
        area: &crest_core::expected::Area,
    ) -> Result<Vec<crest_core::expected::Expected>> {
        self.ready()?;
        crate::expected::read_of(&mut self.db, area)
    }

    fn service_changes(&mut self) -> Result<Vec<crest_core::changes::ServiceChange>> {
        self.ready()?;
        let rows = all(&mut self.db, sql::SERVICE_CHANGES, &[], |r| {
            Ok((
                r.number(0)?,
                r.string(1)?,
                r.string(2)?,
                r.string(3)?,
                r.string(4)?,
                r.string(5)?,
                r.string(6)?,
            ))
        })?;
        rows.into_iter()
            .map(|(id, kind, code, date, text, by, at)| {
                Ok(crest_core::changes::ServiceChange {
                    id,
                    scope: crest_core::changes::ChangeScope::from_stored(&kind, &code).ok_or_else(
                        || {
                            StoreError::Refused(format!(
                                "a service change of an unknown kind '{kind}'"
                            ))
                        },
                    )?,
                    date: Date::parse_iso(&date).map_err(|e| {
                        StoreError::Refused(format!("a service change's date: {e}"))
                    })?,
                    text,
                    recorded_by: by,
                    recorded_at: at,
                })
            })
            .collect()
    }

    fn sent_episodes(&mut self, programme: &str) -> Result<Vec<String>> {
        self.ready()?;
        all(&mut self.db, sql::SENT, &[Param::Text(programme)], |r| {
            r.string(0)
        })
    }

    fn record_sent(
        &mut self,
        programme: &str,
        sent: &[String],
        withdrawn: &[String],
    ) -> Result<()> {
        db::in_transaction(&mut self.db, Lock::Rows, |db| {
            for id in sent {
                db.execute(sql::ADD_SENT, &[Param::Text(programme), Param::Text(id)])?;
            }
            for id in withdrawn {
                db.execute(sql::DROP_SENT, &[Param::Text(programme), Param::Text(id)])?;
            }
            Ok(())
        })
    }

    fn access_log_chain(&mut self, after: i64, limit: usize) -> Result<Vec<ChainEntry>> {
        self.ready()?;
        db::read_chain(&mut self.db, after, limit)
    }

    fn access_log(&mut self, limit: usize) -> Result<Vec<AccessEntry>> {
        all(
            &mut self.db,
            db::log_sql::LATEST,
            &[Param::Int(limit.min(i64::MAX as usize) as i64)],
            db::entry_of,
        )
    }
}

/// An import's transaction. Into an empty table it is a bulk load: the back end's bulk
/// indexes are dropped and built again at commit, there are no stored keys to read, and each
/// programme's KPI facts are packed as its rows go in. Dropped without
/// [`ImportTx::commit`], it rolls back.
struct LocalTx<'a, D: LocalDb> {
    db: &'a mut D,
    /// The table was empty at the start.
    bulk: bool,
    /// The back end was switched for a bulk load ([`LocalDb::bulk_start`]), and is switched
    /// back after the transaction.
    switched: bool,
    /// Programmes whose KPI facts must be packed again from the table at commit.
    touched: HashSet<String>,
    /// In a bulk load, each programme's facts packed as its rows are inserted, which saves
    /// reading everything back at commit.
    packed: HashMap<String, Vec<u8>>,
    committed: bool,
}

impl<D: LocalDb> Drop for LocalTx<'_, D> {
    fn drop(&mut self) {
        if !self.committed {
            self.db.rollback();
        }
        if self.switched {
            self.db.bulk_end();
        }
    }
}

impl<D: LocalDb> LocalTx<'_, D> {
    fn touch(&mut self, rec: &Record, inserted: bool) {
        let code = rec.text(Col::ProgrammeCode).unwrap_or_default();
        let facts = KpiEpisode::of_record(rec, 0);
        match (self.bulk && inserted, facts) {
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

impl<D: LocalDb> ImportTx for LocalTx<'_, D> {
    fn log(&mut self, entry: &AccessEntry) -> Result<()> {
        db::write_log(self.db, entry)
    }

    fn keys(&mut self, programme: &str) -> Result<Vec<StoredKey>> {
        if self.bulk {
            // Nothing was stored before this transaction (and without the index the query
            // would scan everything inserted so far).
            return Ok(Vec::new());
        }
        all(
            self.db,
            "SELECT episode_id, nhs_number, event_date FROM episodes WHERE programme_code = ?1",
            &[Param::Text(programme)],
            |r| {
                Ok(StoredKey {
                    episode_id: r.string(0)?,
                    nhs_number: r.string(1)?,
                    event_date: Date::parse_iso(r.text(2)?.unwrap_or_default())
                        .map_err(|e| StoreError::Corrupt(e.0))?,
                })
            },
        )
    }

    fn get(&mut self, programme: &str, episode_id: &str) -> Result<Option<Record>> {
        get_record(self.db, programme, episode_id)
    }

    fn insert(&mut self, rec: &Record) -> Result<()> {
        self.db.write_episode(&schema::sql().insert, rec, None)?;
        self.touch(rec, true);
        Ok(())
    }

    fn update(&mut self, rec: &Record) -> Result<()> {
        let key = [
            rec.text(Col::ProgrammeCode).unwrap_or_default(),
            rec.text(Col::EpisodeId).unwrap_or_default(),
        ];
        self.db
            .write_episode(&schema::sql().update, rec, Some(key))?;
        self.touch(rec, false);
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if self.bulk {
            for (_, sql) in self.db.bulk_indexes() {
                self.db.batch(sql)?;
            }
        }
        for programme in std::mem::take(&mut self.touched) {
            crate::kpi_facts::pack_local(self.db, &programme)?;
        }
        for (programme, facts) in std::mem::take(&mut self.packed) {
            crate::kpi_facts::store_local(self.db, &programme, &facts)?;
        }
        self.db.commit()?;
        self.committed = true;
        Ok(())
    }
}
