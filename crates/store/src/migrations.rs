//! Frozen migrations: one `.sql` file per version, store kind and back end, under
//! `crates/store/migrations/`. They are never derived from the live dataset dictionary: the day
//! the dataset gains a field, the change comes as a new file, so every deployed store gets the
//! column too. A test checks that a freshly migrated store has exactly the dictionary's columns.

use crate::db::{self, Db, Lock, Param};
use crate::{Result, StoreError};

/// One migration: its version (1, 2, …), its file and its SQL (several statements).
pub(crate) struct Migration {
    /// Version, counted from 1.
    pub version: usize,
    /// The file under `crates/store/migrations/`.
    pub file: &'static str,
    /// The statements, as one batch.
    pub sql: &'static str,
}

impl Migration {
    /// The SHA-256 of the file, recorded when it is applied: a migration edited after it was
    /// applied somewhere is refused, since that store never ran the edit.
    pub(crate) fn checksum(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

macro_rules! migrations {
    ($($version:literal => $file:literal),* $(,)?) => {
        &[$(Migration { version: $version, file: $file, sql: include_str!(concat!("../migrations/", $file)) }),*]
    };
}

/// A step done in code after a migration (filling in data the SQL cannot).
pub(crate) type DataStep = fn(&mut dyn Db) -> Result<()>;

/// The migrations of one kind of store on one back end, and how they are recorded.
pub(crate) struct Set {
    /// `local` or `national`, for messages.
    pub store: &'static str,
    /// The table recording which have been applied.
    pub table: &'static str,
    /// The statement creating that table.
    pub create: &'static str,
    /// The migrations, in order.
    pub list: &'static [Migration],
    /// The advisory lock that makes concurrent `crest init`s take turns.
    pub lock: i64,
    /// Data steps, each run in code right after its version is applied.
    pub after: &'static [(usize, DataStep)],
}

/// Applies the migrations of `set` not yet applied, in one transaction; how many. First it
/// checks every applied one against its file's checksum and refuses a store whose applied
/// migration was edited since, or that a newer crest migrated (checksums recorded before
/// this check existed are filled in from the files as they are).
pub(crate) fn run(db: &mut dyn Db, set: &Set) -> Result<usize> {
    db::in_transaction(db, Lock::Key(set.lock), |db| {
        db.batch(set.create)?;
        if !db
            .columns()?
            .iter()
            .any(|c| *c == format!("{}.checksum", set.table))
        {
            db.batch(&format!(
                "ALTER TABLE {} ADD COLUMN checksum TEXT",
                set.table
            ))?;
        }
        let applied = check(db, set, true)?;
        let current = applied.iter().map(|(v, _)| *v).max().unwrap_or(0);
        let mut count = 0;
        for m in set.list.iter().filter(|m| m.version as i64 > current) {
            db.batch(m.sql)?;
            db.execute(
                &format!(
                    "INSERT INTO {} (version, checksum) VALUES (?1, ?2)",
                    set.table
                ),
                &[Param::Int(m.version as i64), Param::Text(&m.checksum())],
            )?;
            count += 1;
            for (_, step) in set.after.iter().filter(|(v, _)| *v == m.version) {
                step(db)?;
            }
        }
        Ok(count)
    })
}

/// Checks every applied migration of `set` against its file: refuses an edited one or one
/// this crest does not know. With `fill`, records the checksum of those applied before
/// checksums were kept; without it, they are taken as they are. The applied versions.
fn check(db: &mut dyn Db, set: &Set, fill: bool) -> Result<Vec<(i64, Option<String>)>> {
    let applied = db::all(
        db,
        &format!(
            "SELECT version, checksum FROM {} ORDER BY version",
            set.table
        ),
        &[],
        |r| Ok((r.number(0)?, r.text(1)?.map(str::to_string))),
    )?;
    for (version, recorded) in &applied {
        let Some(m) = set.list.iter().find(|m| m.version as i64 == *version) else {
            return Err(StoreError::NewerStore {
                store: set.store,
                version: *version,
            });
        };
        match recorded {
            Some(sum) if *sum != m.checksum() => {
                return Err(StoreError::EditedMigration {
                    store: set.store,
                    version: m.version,
                    file: m.file,
                })
            }
            Some(_) => {}
            None if fill => {
                db.execute(
                    &format!("UPDATE {} SET checksum = ?1 WHERE version = ?2", set.table),
                    &[Param::Text(&m.checksum()), Param::Int(*version)],
                )?;
            }
            None => {}
        }
    }
    Ok(applied)
}

/// Checks a store's applied migrations against their files without changing anything (a
/// server does this as it starts; see [`check`]).
pub(crate) fn verify(db: &mut dyn Db, set: &Set) -> Result<()> {
    if !db.has_table(set.table)?
        || !db
            .columns()?
            .iter()
            .any(|c| *c == format!("{}.checksum", set.table))
    {
        return Ok(());
    }
    check(db, set, false).map(|_| ())
}

/// How many of a set's migrations a store has not applied (all, before `crest init`), after
/// the same checks as [`verify`]; nothing is changed.
pub(crate) fn pending(db: &mut dyn Db, set: &Set) -> Result<usize> {
    if !db.has_table(set.table)? {
        return Ok(set.list.len());
    }
    let has_checksums = db
        .columns()?
        .iter()
        .any(|c| *c == format!("{}.checksum", set.table));
    let applied = if has_checksums {
        check(db, set, false)?.len()
    } else {
        version(db, set.table)?.max(0) as usize
    };
    Ok(set.list.len().saturating_sub(applied))
}

/// The version a store's migrations table records (0 before any).
pub(crate) fn version(db: &mut dyn Db, table: &str) -> Result<i64> {
    if !db.has_table(table)? {
        return Ok(0);
    }
    Ok(db::first(
        db,
        &format!("SELECT coalesce(max(version), 0) FROM {table}"),
        &[],
        |r| r.number(0),
    )?
    .unwrap_or(0))
}

/// The local (identifiable) store on SQLite.
pub(crate) const LOCAL_SQLITE: &[Migration] = migrations![
    1 => "local/sqlite/V1__programmes_and_episodes.sql",
    2 => "local/sqlite/V2__users_sessions_and_access_log.sql",
    3 => "local/sqlite/V3__data_versions.sql",
    4 => "local/sqlite/V4__hash_chained_access_log.sql",
    5 => "local/sqlite/V5__agreements_and_sent_episodes.sql",
    6 => "local/sqlite/V6__stateless_servers.sql",
    7 => "local/sqlite/V7__security_codes.sql",
    8 => "local/sqlite/V8__regions_and_personal_api_tokens.sql",
    9 => "local/sqlite/V9__service_changes.sql",
    10 => "local/sqlite/V10__expected_patients.sql",
    11 => "local/sqlite/V11__episode_list_index.sql",
    12 => "local/sqlite/V12__kpi_facts_by_month.sql",
];

/// The local (identifiable) store on PostgreSQL.
pub(crate) const LOCAL_POSTGRES: &[Migration] = migrations![
    1 => "local/postgres/V1__programmes_and_episodes.sql",
    2 => "local/postgres/V2__users_sessions_and_access_log.sql",
    3 => "local/postgres/V3__data_versions.sql",
    4 => "local/postgres/V4__hash_chained_access_log.sql",
    5 => "local/postgres/V5__agreements_and_sent_episodes.sql",
    6 => "local/postgres/V6__stateless_servers.sql",
    7 => "local/postgres/V7__security_codes.sql",
    8 => "local/postgres/V8__regions_and_personal_api_tokens.sql",
    9 => "local/postgres/V9__service_changes.sql",
    10 => "local/postgres/V10__expected_patients.sql",
    11 => "local/postgres/V11__episode_list_index.sql",
    12 => "local/postgres/V12__kpi_facts_by_month.sql",
];

/// The national store on SQLite.
pub(crate) const NATIONAL_SQLITE: &[Migration] = migrations![
    1 => "national/sqlite/V1__programmes_submissions_and_episodes.sql",
    2 => "national/sqlite/V2__access_log.sql",
    3 => "national/sqlite/V3__api_tokens.sql",
    4 => "national/sqlite/V4__outlier_cases.sql",
    5 => "national/sqlite/V5__lean_episodes.sql",
    6 => "national/sqlite/V6__programme_scoped_episodes_and_token_expiry.sql",
    7 => "national/sqlite/V7__research_projects.sql",
    8 => "national/sqlite/V8__packed_kpi_facts.sql",
    9 => "national/sqlite/V9__programme_signing_keys.sql",
    10 => "national/sqlite/V10__expected_patients.sql",
];

/// The national store on PostgreSQL.
pub(crate) const NATIONAL_POSTGRES: &[Migration] = migrations![
    1 => "national/postgres/V1__programmes_submissions_and_episodes.sql",
    2 => "national/postgres/V2__access_log.sql",
    3 => "national/postgres/V3__api_tokens.sql",
    4 => "national/postgres/V4__outlier_cases.sql",
    5 => "national/postgres/V5__lean_episodes.sql",
    6 => "national/postgres/V6__programme_scoped_episodes_and_token_expiry.sql",
    7 => "national/postgres/V7__research_projects.sql",
    8 => "national/postgres/V8__packed_kpi_facts.sql",
    9 => "national/postgres/V9__programme_signing_keys.sql",
    10 => "national/postgres/V10__expected_patients.sql",
];

/// The local store's migrations on a back end (`sqlite` or `postgres`).
pub(crate) fn local(backend: &str) -> Set {
    let sqlite = backend == "sqlite";
    Set {
        store: "local",
        table: "crest_migrations",
        create: if sqlite {
            "CREATE TABLE IF NOT EXISTS crest_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        } else {
            "CREATE TABLE IF NOT EXISTS crest_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        },
        list: if sqlite { LOCAL_SQLITE } else { LOCAL_POSTGRES },
        lock: db::locks::LOCAL_MIGRATIONS,
        after: &[
            // Migration 4 added the access log's hash chain; entries written before it are
            // chained in code.
            (4, |db| db::chain_legacy_log(db)),
            // Migration 12 packs the KPI facts by month; what was packed before is packed
            // again.
            (12, crate::kpi_facts::pack_all_local),
        ],
    }
}

/// The national store's migrations on a back end (`sqlite` or `postgres`).
pub(crate) fn national(backend: &str) -> Set {
    Set {
        store: "national",
        table: "crest_national_migrations",
        create: "CREATE TABLE IF NOT EXISTS crest_national_migrations (version BIGINT PRIMARY KEY)",
        list: if backend == "sqlite" {
            NATIONAL_SQLITE
        } else {
            NATIONAL_POSTGRES
        },
        lock: db::locks::NATIONAL_MIGRATIONS,
        after: &[],
    }
}

/// How many migrations a store kind (`local` or `national`) has on a back end: a new one is
/// this plus one.
pub fn count(store: &str, backend: &str) -> usize {
    if store == "national" {
        national(backend).list.len()
    } else {
        local(backend).list.len()
    }
}

/// The column type of a dataset field on a back end (`sqlite` or `postgres`), as the frozen
/// migrations declare it: dates and codes as text, whole numbers, decimals, yes/no.
pub fn column_type(kind: crest_core::Kind, backend: &str) -> &'static str {
    use crest_core::Kind;
    let sqlite = backend == "sqlite";
    match kind {
        Kind::Int { .. } if sqlite => "INTEGER",
        Kind::Int { .. } => "BIGINT",
        Kind::Decimal { .. } if sqlite => "REAL",
        Kind::Decimal { .. } => "DOUBLE PRECISION",
        Kind::Bool if sqlite => "INTEGER",
        Kind::Bool => "BOOLEAN",
        _ => "TEXT",
    }
}

/// The frozen migration that adds `fields` (new in the dataset dictionary) to a store's
/// episodes table: `store` is `local` or `national`, `backend` `sqlite` or `postgres`. The
/// columns may be empty, since stored episodes have no value for a new field.
pub fn add_fields_sql(store: &str, backend: &str, fields: &[&crest_core::Field]) -> String {
    let table = if store == "national" {
        "national_episodes"
    } else {
        "episodes"
    };
    let mut sql = String::from(
        "-- Frozen: a released migration is never edited. A schema change (a dataset change included)\n\
         -- is a new file with the next version.\n",
    );
    for f in fields {
        sql.push_str(&format!(
            "ALTER TABLE {table} ADD COLUMN {} {};\n",
            f.name,
            column_type(f.kind, backend)
        ));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_fields_migration_declares_each_column_as_the_first_migrations_do() {
        let bmi = crest_core::field_by_name("a1_bmi").expect("a1_bmi");
        let opt_out = crest_core::field_by_name("national_opt_out").expect("national_opt_out");
        let sqlite = add_fields_sql("local", "sqlite", &[bmi, opt_out]);
        assert!(sqlite.starts_with("-- Frozen"));
        assert!(sqlite.ends_with(
            "ALTER TABLE episodes ADD COLUMN a1_bmi REAL;\nALTER TABLE episodes ADD COLUMN national_opt_out INTEGER;\n"
        ));
        let pg = add_fields_sql("national", "postgres", &[bmi]);
        assert!(pg.ends_with("ALTER TABLE national_episodes ADD COLUMN a1_bmi DOUBLE PRECISION;\n"));
        // The same types as the released first migrations.
        for (backend, list) in [("sqlite", LOCAL_SQLITE), ("postgres", LOCAL_POSTGRES)] {
            for f in [bmi, opt_out] {
                let declared = format!("{} {}", f.name, column_type(f.kind, backend));
                assert!(list[0].sql.contains(&declared), "{backend}: {declared}");
            }
        }
    }

    #[test]
    fn versions_count_up_from_one_and_match_the_schema_versions() {
        for (list, want) in [
            (LOCAL_SQLITE, crate::SCHEMA_VERSION),
            (LOCAL_POSTGRES, crate::SCHEMA_VERSION),
            (NATIONAL_SQLITE, NATIONAL_POSTGRES.len()),
            (NATIONAL_POSTGRES, NATIONAL_SQLITE.len()),
        ] {
            assert_eq!(list.len(), want);
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i + 1);
                assert!(m.sql.starts_with("-- Frozen"));
            }
        }
    }
}
