//! Frozen migrations: one `.sql` file per version, store kind and back end, under
//! `crates/store/migrations/`. They are never derived from the live dataset dictionary: the day
//! the dataset gains a field, the change comes as a new file, so every deployed store gets the
//! column too. A test checks that a freshly migrated store has exactly the dictionary's columns.

/// One migration: its version (1, 2, …) and its SQL (several statements).
pub(crate) struct Migration {
    /// Version, counted from 1.
    pub version: usize,
    /// The statements, as one batch.
    pub sql: &'static str,
}

macro_rules! migrations {
    ($($version:literal => $file:literal),* $(,)?) => {
        &[$(Migration { version: $version, sql: include_str!(concat!("../migrations/", $file)) }),*]
    };
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
];

/// Records which national migrations a store has had.
pub(crate) const NATIONAL_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS crest_national_migrations (version BIGINT PRIMARY KEY)";

/// The local store's version after migration 4 fills in the access log's hash chain (a data
/// step, done in code by each back end).
pub(crate) const CHAIN_LEGACY_LOG_AFTER: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

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
