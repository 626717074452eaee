//! The store contract, run against SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used)]

use crest_core::{Col, Date, Programme, Record, Value, FIELDS};
use crest_store::testing::databases;

fn programme(code: &str) -> Programme {
    Programme::parse([
        code,
        "Test programme",
        "wales",
        "North",
        "nurse;doctor",
        "mi;cabg",
    ])
    .unwrap()
}

fn episode(id: &str, referral: &str) -> Record {
    let mut r = Record::new();
    let t = |s: &str| Value::Text(s.to_string());
    let d = |s: &str| Value::Date(Date::parse_iso(s).unwrap());
    r.set(Col::ProgrammeCode, t("P1"));
    r.set(Col::EpisodeId, t(id));
    r.set(Col::NhsNumber, t("9434765919"));
    r.set(Col::DateOfBirth, d("1950-01-01"));
    r.set(Col::Sex, t("male"));
    r.set(Col::ImdQuintile, Value::Int(3));
    r.set(Col::InitiatingEvent, t("mi_stemi"));
    r.set(Col::Treatment, t("cabg"));
    r.set(Col::EventDate, d("2024-05-01"));
    r.set(Col::ReferralDate, d(referral));
    r.set(Col::Status, t("completed"));
    r.set(Col::CoreStartDate, d("2024-06-01"));
    r.set(Col::CoreEndDate, d("2024-08-01"));
    r.set(Col::NationalOptOut, Value::Bool(true));
    r.set(Col::A1Bmi, Value::Num(27.5));
    r
}

#[test]
fn migrations_are_idempotent_and_commands_need_them() {
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        assert!(
            matches!(s.programmes(), Err(crest_store::StoreError::NotInitialised)),
            "{}",
            db.backend
        );
        assert_eq!(
            s.migrate().unwrap(),
            crest_store::SCHEMA_VERSION,
            "{}",
            db.backend
        );
        assert_eq!(s.migrate().unwrap(), 0, "{}", db.backend);
        assert_eq!(s.count_episodes().unwrap(), 0);
    }
}

#[test]
fn a_store_whose_applied_migration_was_edited_is_refused_and_an_older_record_is_checksummed() {
    for db in databases() {
        // Local store: checksums recorded as each migration is applied.
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        assert_eq!(
            db.query_i64("SELECT count(*) FROM crest_migrations WHERE checksum IS NULL"),
            0,
            "{}",
            db.backend
        );
        // A store recorded before checksums existed gets them from the files, and works.
        db.execute_raw("UPDATE crest_migrations SET checksum = NULL");
        assert_eq!(s.migrate().unwrap(), 0, "{}", db.backend);
        assert_eq!(
            db.query_i64("SELECT count(*) FROM crest_migrations WHERE checksum IS NULL"),
            0
        );
        // The file of an applied migration differs from what the store ran: refused, naming it.
        db.execute_raw("UPDATE crest_migrations SET checksum = 'edited' WHERE version = 3");
        let e = s.migrate().unwrap_err();
        assert!(
            matches!(
                e,
                crest_store::StoreError::EditedMigration {
                    store: "local",
                    version: 3,
                    ..
                }
            ),
            "{}: {e}",
            db.backend
        );
        assert!(e.to_string().contains("V3__data_versions.sql"), "{e}");
        // A server starting on it refuses too, changing nothing.
        assert!(matches!(
            crest_store::open(&db.url).unwrap().check_migrations(),
            Err(crest_store::StoreError::EditedMigration { version: 3, .. })
        ));
        // A migration this crest does not know: a newer crest made the store.
        db.execute_raw(
            "UPDATE crest_migrations SET checksum = NULL WHERE version = 3; \
             INSERT INTO crest_migrations (version, checksum) VALUES (99, 'x')",
        );
        assert!(
            matches!(
                s.migrate(),
                Err(crest_store::StoreError::NewerStore { version: 99, .. })
            ),
            "{}",
            db.backend
        );
    }
    for db in databases() {
        // National store: the same runner.
        let url = db.url.clone();
        let mut n = crest_store::NationalStore::open(&url).unwrap();
        n.migrate().unwrap();
        db.execute_raw(
            "UPDATE crest_national_migrations SET checksum = 'edited' WHERE version = 1",
        );
        assert!(
            matches!(
                crest_store::NationalStore::open(&url).and_then(|mut n| n.migrate()),
                Err(crest_store::StoreError::EditedMigration {
                    store: "national",
                    version: 1,
                    ..
                })
            ),
            "{}",
            db.backend
        );
    }
}
#[test]
fn programmes_round_trip_and_update_in_place() {
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        let c = s
            .upsert_programmes(&[programme("P2"), programme("P1")])
            .unwrap();
        assert_eq!((c.added, c.updated), (2, 0));
        let mut changed = programme("P1");
        changed.professions = None;
        let c = s.upsert_programmes(&[changed.clone()]).unwrap();
        assert_eq!((c.added, c.updated), (0, 1));
        let all = s.programmes().unwrap();
        assert_eq!(all, vec![changed, programme("P2")], "{}", db.backend);
    }
}

#[test]
fn episodes_round_trip_every_type_and_roll_back_unless_committed() {
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        s.upsert_programmes(&[programme("P1")]).unwrap();
        let e = episode("E1", "2024-05-03");
        {
            let mut tx = s.begin().unwrap();
            tx.insert(&e).unwrap();
            assert_eq!(tx.get("P1", "E1").unwrap().as_ref(), Some(&e));
            // dropped without commit
        }
        assert_eq!(
            s.count_episodes().unwrap(),
            0,
            "{}: uncommitted import must leave nothing",
            db.backend
        );
        let mut tx = s.begin().unwrap();
        tx.insert(&e).unwrap();
        let mut e2 = e.clone();
        e2.set(Col::A1Bmi, Value::Null);
        e2.set(Col::Status, Value::Text("dropped_out".into()));
        tx.update(&e2).unwrap();
        tx.commit().unwrap();
        assert_eq!(s.episode("P1", "E1").unwrap(), Some(e2), "{}", db.backend);
        assert_eq!(s.episode("P1", "nope").unwrap(), None);
        let mut tx = s.begin().unwrap();
        let keys = tx.keys("P1").unwrap();
        assert_eq!(keys.len(), 1, "{}", db.backend);
        assert_eq!(keys[0].nhs_number, "9434765919");
        assert!(tx.keys("P2").unwrap().is_empty());
    }
}

#[test]
fn kpi_facts_follow_the_referral_period() {
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        s.upsert_programmes(&[programme("P0"), programme("P1")])
            .unwrap();
        let mut tx = s.begin().unwrap();
        for (id, referral) in [
            ("A", "2024-05-03"),
            ("B", "2025-03-31"),
            ("C", "2025-04-01"),
        ] {
            tx.insert(&episode(id, referral)).unwrap();
        }
        tx.commit().unwrap();
        let progs = s.programmes().unwrap();
        let (v0, v1) = (s.data_version("P0").unwrap(), s.data_version("P1").unwrap());
        assert_eq!(v0, 0, "no episodes, version 0");
        assert!(v1 > 0, "{}", db.backend);
        let from = Date::from_ymd(2024, 4, 1).unwrap();
        let to = Date::from_ymd(2025, 3, 31).unwrap();
        let eps = s.kpi_episodes(from, to, &progs).unwrap();
        assert_eq!(eps.len(), 2, "{}", db.backend);
        assert!(eps.iter().all(|e| e.programme == 1
            && e.completed
            && e.group == crest_core::PriorityGroup::Cabg));
        assert_eq!(eps.iter().filter(|e| e.core_end.is_some()).count(), 2);

        // A later change (the store is no longer empty) packs the facts again.
        let mut tx = s.begin().unwrap();
        let mut b = episode("B", "2025-03-31");
        b.set(Col::Status, Value::Text("dropped_out".into()));
        tx.update(&b).unwrap();
        tx.insert(&episode("D", "2024-12-01")).unwrap();
        tx.commit().unwrap();
        assert!(
            s.data_version("P1").unwrap() > v1,
            "a change raises the version"
        );
        assert_eq!(
            s.data_version("P0").unwrap(),
            0,
            "other programmes keep theirs"
        );
        let before = s.data_version("P1").unwrap();
        drop(s.begin().unwrap());
        assert_eq!(
            s.data_version("P1").unwrap(),
            before,
            "no change, same version"
        );
        let eps = s.kpi_episodes(from, to, &progs).unwrap();
        assert_eq!(eps.len(), 3, "{}", db.backend);
        // Streamed, the same episodes.
        let mut streamed = Vec::new();
        s.each_kpi_episode(from, to, &progs, &mut |some| {
            streamed.extend_from_slice(some)
        })
        .unwrap();
        assert_eq!(streamed, eps, "{}", db.backend);
        assert_eq!(
            eps.iter().filter(|e| e.completed).count(),
            2,
            "{}",
            db.backend
        );

        // A rolled-back change leaves the facts as they were.
        {
            let mut tx = s.begin().unwrap();
            tx.insert(&episode("E", "2024-12-02")).unwrap();
        }
        assert_eq!(s.kpi_episodes(from, to, &progs).unwrap().len(), 3);
    }
}

/// A first import into an empty SQLite store is written with a rollback journal (its pages
/// once, not through the write-ahead log and again into the file), and the store is back in
/// WAL mode after it; with another connection open, it goes through the log as usual.
#[test]
fn a_first_sqlite_import_writes_through_a_rollback_journal_unless_another_connection_is_open() {
    let db = crest_store::testing::sqlite_db();
    let path = db.url.trim_start_matches("sqlite:").to_string();
    let mode = || -> String {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap()
    };
    let mut s = crest_store::open(&db.url).unwrap();
    s.migrate().unwrap();
    s.upsert_programmes(&[programme("P1")]).unwrap();
    assert_eq!(mode(), "wal");
    let mut tx = s.begin().unwrap();
    tx.insert(&episode("A", "2024-05-03")).unwrap();
    assert_eq!(mode(), "delete", "a bulk load into an empty table");
    tx.commit().unwrap();
    assert_eq!(mode(), "wal", "back after the commit");
    assert_eq!(s.count_episodes().unwrap(), 1);

    // A store opened meanwhile waits for the import, then finds it whole.
    db.execute_raw("DELETE FROM episodes");
    let mut tx = s.begin().unwrap();
    tx.insert(&episode("A", "2024-05-03")).unwrap();
    assert_eq!(mode(), "delete");
    let url = db.url.clone();
    let opener = std::thread::spawn(move || {
        let mut other = crest_store::open(&url).unwrap();
        other.count_episodes().unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    tx.commit().unwrap();
    assert_eq!(opener.join().unwrap(), 1);
    assert_eq!(mode(), "wal");

    // Rolled back, it is back in WAL mode too.
    db.execute_raw("DELETE FROM episodes");
    {
        let mut tx = s.begin().unwrap();
        tx.insert(&episode("B", "2024-05-03")).unwrap();
        assert_eq!(mode(), "delete");
    }
    assert_eq!(mode(), "wal", "back after the rollback");
    assert_eq!(s.count_episodes().unwrap(), 0);

    // Another connection open (a server, say): the journal is left alone.
    let other = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = other
        .query_row("SELECT count(*) FROM programmes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    let mut tx = s.begin().unwrap();
    tx.insert(&episode("C", "2024-05-03")).unwrap();
    assert_eq!(
        mode(),
        "wal",
        "not switched while another connection is open"
    );
    tx.commit().unwrap();
    drop(other);
    assert_eq!(s.count_episodes().unwrap(), 1);
}

#[test]
fn the_episodes_table_has_exactly_the_dictionary_columns() {
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        drop(s);
        let cols: Vec<String> = if db.backend == "sqlite" {
            let c = rusqlite::Connection::open(db.url.trim_start_matches("sqlite:")).unwrap();
            let mut st = c
                .prepare("SELECT name FROM pragma_table_info('episodes') ORDER BY cid")
                .unwrap();
            st.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        } else {
            let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
            c.query("SELECT column_name::text FROM information_schema.columns WHERE table_name = 'episodes' ORDER BY ordinal_position", &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        };
        let want: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(cols, want, "{}", db.backend);
    }
}

#[test]
fn the_access_log_is_hash_chained_and_verify_finds_tampering() {
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        let entry = |i: usize| crest_store::AccessEntry {
            at: format!("2025-01-01T00:00:0{i}Z"),
            username: "nurse".into(),
            role: "programme_staff".into(),
            programme: "P1".into(),
            action: "view".into(),
            target: format!("E{i}"),
            outcome: "ok".into(),
            detail: String::new(),
        };
        assert_eq!(s.verify_access_log().unwrap().entries, 0);
        for i in 1..=5 {
            s.log(&entry(i)).unwrap();
        }
        // Entries written before migration 4 are chained, in order, when it runs.
        db.execute_raw(
            "DROP INDEX access_log_seq; ALTER TABLE access_log DROP COLUMN seq; \
             ALTER TABLE access_log DROP COLUMN prev_hash; ALTER TABLE access_log DROP COLUMN hash; \
             DROP TABLE sent_episodes; DROP TABLE agreements; \
             DROP TABLE pending_uploads; DROP TABLE sign_in_limits; \
             ALTER TABLE users DROP COLUMN totp_secret; DROP TABLE settings; \
             ALTER TABLE users DROP COLUMN regions; DROP TABLE user_tokens; \
             DROP TABLE service_changes; DROP TABLE expected_patients; \
             DROP INDEX episodes_programme_referral; DROP TABLE kpi_month_facts; \
             CREATE INDEX episodes_kpi ON episodes (referral_date); \
             DELETE FROM crest_migrations WHERE version >= 4",
        );
        drop(s);
        let mut s = crest_store::open(&db.url).unwrap();
        assert_eq!(s.migrate().unwrap(), crest_store::SCHEMA_VERSION - 3);
        let intact = s.verify_access_log().unwrap();
        assert_eq!(
            (intact.entries, intact.broken.clone()),
            (5, None),
            "{}",
            db.backend
        );
        s.log(&entry(6)).unwrap();
        assert_eq!(s.verify_access_log().unwrap().entries, 6);
        db.execute_raw("DELETE FROM access_log WHERE seq = 6");
        let chain = s.access_log_chain(0, 100).unwrap();
        assert_eq!(
            chain.iter().map(|c| c.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(chain[0].prev_hash, crest_store::audit::GENESIS);
        assert_eq!(chain[3].hash, chain[4].prev_hash);
        assert_eq!(intact.head, chain[4].hash);

        // An edited entry.
        db.execute_raw("UPDATE access_log SET target = 'E9' WHERE seq = 3");
        let check = s.verify_access_log().unwrap();
        assert_eq!(check.entries, 2, "{}", db.backend);
        let why = check.broken.unwrap();
        assert!(why.contains("entry 3") && why.contains("edited"), "{why}");
        db.execute_raw("UPDATE access_log SET target = 'E3' WHERE seq = 3");
        assert_eq!(s.verify_access_log().unwrap().broken, None);

        // An edit that recomputes the entry's own hash still breaks the next link.
        let mut forged = entry(3);
        forged.outcome = "denied".into();
        let forged_hash = crest_store::audit::entry_hash(&chain[2].prev_hash, 3, &forged);
        db.execute_raw(&format!(
            "UPDATE access_log SET outcome = 'denied', hash = '{forged_hash}' WHERE seq = 3"
        ));
        let why = s.verify_access_log().unwrap().broken.unwrap();
        assert!(
            why.contains("entry 4") && why.contains("does not follow"),
            "{why}"
        );
        db.execute_raw(&format!(
            "UPDATE access_log SET outcome = 'ok', hash = '{}' WHERE seq = 3",
            chain[2].hash
        ));

        // A deleted entry.
        db.execute_raw("DELETE FROM access_log WHERE seq = 2");
        let why = s.verify_access_log().unwrap().broken.unwrap();
        assert!(why.contains("entry 2 is missing"), "{}: {why}", db.backend);
    }
}

/// Loads a store made by an earlier release into `db`: a SQLite file copied in place, or a
/// PostgreSQL dump (`pg_dump --inserts`) run against the empty database.
fn load_fixture(db: &crest_store::testing::TestDb, name: &str) {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/release-2026-11");
    if db.backend == "postgres" {
        db.execute_raw(&std::fs::read_to_string(dir.join(format!("{name}.postgres.sql"))).unwrap());
    } else {
        let path = db.url.trim_start_matches("sqlite:");
        std::fs::copy(dir.join(format!("{name}.sqlite")), path).unwrap();
    }
}

/// A local and a national store made by the previous release (crest 6d90bf8, November 2026;
/// four synthetic episodes in two programmes, a user, an agreement, their submissions received
/// and an API token) migrate to the current layout without losing a row, and their access logs'
/// chains still hold.
#[test]
fn stores_made_by_the_previous_release_migrate_without_losing_a_row() {
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        load_fixture(&ldb, "local");
        let mut s = crest_store::open(&ldb.url).unwrap();
        assert_eq!(
            s.migrate().unwrap(),
            7,
            "{}: local migrations 6 to 12",
            ldb.backend
        );
        assert_eq!(s.migrate().unwrap(), 0);
        // Migration 12 packed the KPI facts again, by month: the KPIs still see every episode.
        let programmes = s.programmes().unwrap();
        let ever = (
            Date::from_ymd(2000, 1, 1).unwrap(),
            Date::from_ymd(2099, 12, 31).unwrap(),
        );
        assert_eq!(
            s.kpi_episodes(ever.0, ever.1, &programmes).unwrap().len(),
            4,
            "{}",
            ldb.backend
        );
        let all = crest_store::EpisodeQuery {
            limit: usize::MAX,
            ..Default::default()
        };
        assert_eq!(
            s.find_episodes("P001", &all).unwrap().len(),
            3,
            "{}",
            ldb.backend
        );
        assert_eq!(s.find_episodes("P002", &all).unwrap().len(), 1);
        let f1 = s.episode("P001", "F1").unwrap().unwrap();
        assert_eq!(f1.text(Col::FamilyName), Some("Fixtureson"));
        assert_eq!(f1.num(Col::A1Bmi), Some(26.1));
        assert_eq!(s.users().unwrap().len(), 1);
        assert_eq!(s.agreements().unwrap().len(), 1);
        assert_eq!(s.sent_episodes("P001").unwrap(), ["F1", "F2", "F3"]);
        let log = s.verify_access_log().unwrap();
        assert_eq!((log.entries, log.broken), (4, None), "{}", ldb.backend);

        load_fixture(&ndb, "national");
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        assert_eq!(
            n.migrate().unwrap(),
            5,
            "national migrations 6 to 10 ({})",
            ndb.backend
        );
        assert_eq!(n.migrate().unwrap(), 0);
        assert_eq!(
            n.episodes(Some("P001")).unwrap().len(),
            3,
            "{}",
            ndb.backend
        );
        assert_eq!(n.episodes(Some("P002")).unwrap().len(), 1);
        // The KPI facts the release held as rows are packed on first use.
        let programmes = n.programmes().unwrap();
        let ever = (
            crest_core::Date::from_ymd(2000, 1, 1).unwrap(),
            crest_core::Date::from_ymd(2099, 12, 31).unwrap(),
        );
        let facts = n.kpi_episodes(ever.0, ever.1, &programmes).unwrap();
        assert_eq!(facts.len(), 4, "{}", ndb.backend);
        let mut streamed = Vec::new();
        n.each_kpi_episode(ever.0, ever.1, &programmes, &mut |some| {
            streamed.extend_from_slice(some)
        })
        .unwrap();
        assert_eq!(streamed, facts, "{}", ndb.backend);
        assert_eq!(n.pack_kpi_facts().unwrap(), 0, "packed once");
        let held = n.submissions().unwrap();
        assert_eq!(held.iter().filter(|h| h.current).count(), 2);
        let tokens = n.api_tokens().unwrap();
        assert_eq!(tokens.len(), 1);
        // A token made before expiries existed gets one at migration 9: a year after it was
        // made, as `crest tokens new` gives by default.
        assert_eq!(
            (tokens[0].expires_at.as_str(), tokens[0].revoked_at.clone()),
            ("2027-12-01T14:48:45Z", None),
            "{}",
            ndb.backend
        );
        assert!(n.signing_keys(None).unwrap().is_empty());
        let log = n.verify_access_log().unwrap();
        assert_eq!((log.entries, log.broken), (2, None), "{}", ndb.backend);
        let cols = n.columns().unwrap();
        assert!(cols.contains(&"api_tokens.expires_at".to_string()));
    }
}

/// The frozen migrations and the dataset dictionary agree: a freshly migrated store has a
/// column for every dictionary field and no other (so a dataset change without its migration
/// fails here), locally and nationally.
/// Adding a dataset field is one change: declare it in the dictionary (`crest_core::dataset`),
/// and this test names the frozen migrations it needs, writing them when
/// `CREST_WRITE_MIGRATIONS=1` (then list them in `crates/store/src/migrations.rs` and raise
/// `SCHEMA_VERSION`). The national field list, `docs/dataset.md` (a test in `crest`) and the
/// OpenAPI snapshot (a test in `crest-web`) follow from the dictionary or fail naming the step.
#[test]
fn every_dataset_field_has_its_column_in_a_frozen_migration() {
    let mut needed = Vec::new();
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        let has = |table: &str, column: &str| {
            let sql = if db.backend == "postgres" {
                format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' AND column_name = '{column}'")
            } else {
                format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = '{column}'")
            };
            db.query_i64(&sql) == 1
        };
        let local: Vec<&crest_core::Field> =
            FIELDS.iter().filter(|f| !has("episodes", f.name)).collect();
        // The national store is a database of its own on the same back end.
        let national_db = if db.backend == "postgres" {
            crest_store::testing::postgres_db().expect("PostgreSQL, as for the local half")
        } else {
            crest_store::testing::sqlite_db()
        };
        let mut n = crest_store::NationalStore::open(&national_db.url).unwrap();
        n.migrate().unwrap();
        let held = n.columns().unwrap();
        let national: Vec<&crest_core::Field> = crest_store::national::national_fields()
            .filter(|f| !held.contains(&format!("national_episodes.{}", f.name)))
            .collect();
        for (store, missing) in [("local", local), ("national", national)] {
            if missing.is_empty() {
                continue;
            }
            let names: Vec<&str> = missing.iter().map(|f| f.name).collect();
            let file = format!(
                "{}/migrations/{store}/{}/V{}__add_{}.sql",
                env!("CARGO_MANIFEST_DIR"),
                db.backend,
                crest_store::migrations::count(store, db.backend) + 1,
                names.join("_and_")
            );
            let sql = crest_store::migrations::add_fields_sql(store, db.backend, &missing);
            if std::env::var_os("CREST_WRITE_MIGRATIONS").is_some() {
                std::fs::write(&file, &sql).unwrap();
            }
            needed.push(format!("{file}:\n{sql}"));
        }
    }
    assert!(
        needed.is_empty(),
        "dataset fields without a column; these frozen migrations add them (run this test with \
         CREST_WRITE_MIGRATIONS=1 to write them, then list them in crates/store/src/migrations.rs \
         and raise SCHEMA_VERSION):\n{}",
        needed.join("\n")
    );
}

#[test]
fn the_migrated_schema_has_exactly_the_dictionarys_columns() {
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        let mut s = crest_store::open(&ldb.url).unwrap();
        s.migrate().unwrap();
        let sql = if ldb.backend == "postgres" {
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'episodes'"
        } else {
            "SELECT count(*) FROM pragma_table_info('episodes')"
        };
        assert_eq!(ldb.query_i64(sql) as usize, FIELDS.len(), "{}", ldb.backend);
        for f in FIELDS.iter() {
            let one = if ldb.backend == "postgres" {
                format!("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'episodes' AND column_name = '{}'", f.name)
            } else {
                format!(
                    "SELECT count(*) FROM pragma_table_info('episodes') WHERE name = '{}'",
                    f.name
                )
            };
            assert_eq!(
                ldb.query_i64(&one),
                1,
                "{} has no column ({})",
                f.name,
                ldb.backend
            );
        }
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        n.migrate().unwrap();
        let mut held: Vec<String> = n
            .columns()
            .unwrap()
            .into_iter()
            .filter_map(|c| c.strip_prefix("national_episodes.").map(str::to_string))
            .collect();
        held.sort();
        let mut want: Vec<String> = ["episode_key", "patient_key", "submission"]
            .into_iter()
            .map(String::from)
            .chain(crest_store::national::national_fields().map(|f| f.name.to_string()))
            .collect();
        want.sort();
        assert_eq!(held, want, "{}", ndb.backend);
    }
}

/// privacy.md, "Files holding identifiable data": a new SQLite store (local or national) and its
/// write-ahead log are readable by their owner only.
#[test]
fn new_sqlite_stores_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = crest_store::testing::scratch_dir("private-store");
    let local = dir.join("local.sqlite");
    let mut s = crest_store::open(&format!("sqlite:{}", local.display())).unwrap();
    s.migrate().unwrap();
    let national = dir.join("national.sqlite");
    let mut n =
        crest_store::NationalStore::open(&format!("sqlite:{}", national.display())).unwrap();
    n.migrate().unwrap();
    for f in [&local, &national] {
        for suffix in ["", "-wal"] {
            let path = format!("{}{suffix}", f.display());
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{path} is {mode:o}");
        }
    }
}

#[test]
fn service_changes_are_kept_in_date_order_with_who_recorded_them() {
    use crest_core::changes::{ChangeScope, ServiceChange};
    for db in databases() {
        let mut s = crest_store::open(&db.url).unwrap();
        s.migrate().unwrap();
        let d = |m: u32| crest_core::Date::from_ymd(2024, m, 1).unwrap();
        let later = ServiceChange::new(
            ChangeScope::Programme("P001".into()),
            d(10),
            "Second exercise class added",
            "lead",
            "2024-10-02T09:00:00Z",
        )
        .unwrap();
        let earlier = ServiceChange::new(
            ChangeScope::Region("North & <West>".into()),
            d(4),
            "Community programme for the most deprived quintile",
            "comm",
            "2024-10-03T09:00:00Z",
        )
        .unwrap();
        let a = s.add_service_change(&later).unwrap();
        let b = s.add_service_change(&earlier).unwrap();
        assert!(a > 0 && b > a, "{}: {a} {b}", db.backend);
        let held = s.service_changes().unwrap();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].scope, ChangeScope::Region("North & <West>".into()));
        assert_eq!((held[0].id, held[0].date), (b, d(4)));
        assert_eq!(held[1].text, "Second exercise class added");
        assert_eq!(held[1].recorded_by, "lead");
    }
}
