//! `crest backup` and `crest restore` end to end, on SQLite and PostgreSQL: backups taken while
//! an import runs restore to a store holding that import wholly or not at all, with an intact
//! access log whose entries agree with the episodes.
#![allow(clippy::unwrap_used)]

use common::crest;
use crest_store::testing::{databases, postgres_db, scratch_dir, sqlite_db, TestDb};
use std::process::Command;

mod common;

/// An empty store of the same back end.
fn another(db: &TestDb) -> TestDb {
    if db.backend == "postgres" {
        postgres_db().unwrap()
    } else {
        sqlite_db()
    }
}

fn counts(db: &TestDb) -> (i64, i64) {
    (
        db.query_i64("SELECT count(*) FROM episodes"),
        db.query_i64("SELECT count(*) FROM access_log WHERE action = 'import'"),
    )
}

#[test]
fn backups_taken_during_an_import_restore_whole_and_verified() {
    for db in databases() {
        let dir = scratch_dir("backup");
        let d = dir.to_str().unwrap();
        let (code, out) = Command::new(env!("CARGO_BIN_EXE_crest"))
            .args([
                "synth",
                "--programmes",
                "3",
                "--episodes",
                "30000",
                "--seed",
                "5",
            ])
            .args(["--out", d])
            .output()
            .map(|o| {
                (
                    o.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&o.stderr).to_string(),
                )
            })
            .unwrap();
        assert_eq!(code, 0, "{out}");
        // The first 2,000 episodes, then the rest as a second import.
        let all = std::fs::read_to_string(dir.join("episodes.csv")).unwrap();
        let mut lines = all.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines.collect();
        let first = dir.join("first.csv");
        let rest = dir.join("rest.csv");
        std::fs::write(&first, format!("{header}\n{}\n", rows[..2000].join("\n"))).unwrap();
        std::fs::write(&rest, format!("{header}\n{}\n", rows[2000..].join("\n"))).unwrap();
        assert_eq!(crest(&db.url, &["init"]).0, 0);
        let programmes = dir.join("programmes.csv");
        assert_eq!(
            crest(
                &db.url,
                &["programmes", "import", programmes.to_str().unwrap()]
            )
            .0,
            0
        );
        let (code, out) = crest(&db.url, &["import", first.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}");
        let before = counts(&db);
        assert_eq!(before, (2000, 1));

        // Backups while the second import runs.
        let mut import = Command::new(env!("CARGO_BIN_EXE_crest"))
            .args(["--db", &db.url, "import", rest.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut backups = Vec::new();
        for i in 0..4 {
            let out = dir.join(format!("backup-{i}"));
            let (code, said) = crest(&db.url, &["backup", "--out", out.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {said}", db.backend);
            assert!(said.contains("backed up the"), "{said}");
            backups.push(out);
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        assert!(import.wait().unwrap().success());
        let after = counts(&db);
        assert_eq!(after, (30000, 2), "{}", db.backend);
        let last = dir.join("backup-after");
        assert_eq!(
            crest(&db.url, &["backup", "--out", last.to_str().unwrap()]).0,
            0
        );
        backups.push(last);

        let mut seen = Vec::new();
        for b in &backups {
            let target = another(&db);
            let (code, said) = crest(&target.url, &["restore", b.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {said}", db.backend);
            assert!(said.contains("access log is intact"), "{said}");
            let (code, said) = crest(&target.url, &["audit", "verify"]);
            assert_eq!(code, 0, "{said}");
            // Wholly before the second import or wholly after it, and the log agrees.
            let got = counts(&target);
            assert!(
                got == before || got == after,
                "{}: restored {got:?}",
                db.backend
            );
            seen.push(got);
            // A restored store is a working store: re-importing the first file changes nothing.
            let (code, said) = crest(&target.url, &["import", first.to_str().unwrap()]);
            assert_eq!(code, 0, "{said}");
            assert!(
                said.contains("0 imported, 0 updated, 2000 unchanged"),
                "{said}"
            );
        }
        assert_eq!(seen.last(), Some(&after));

        // Refusals, in words, changing nothing.
        let (code, said) = crest(&db.url, &["backup", "--out", backups[0].to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(said.contains("already exists"), "{said}");
        let (code, said) = crest(&db.url, &["restore", backups[0].to_str().unwrap()]);
        assert_ne!(code, 0);
        assert!(said.contains("already"), "{said}");
        assert_eq!(counts(&db), after);
        let target = another(&db);
        let (code, said) = crest(
            &target.url,
            &["restore", dir.join("missing").to_str().unwrap()],
        );
        assert_ne!(code, 0);
        assert!(said.contains("there is no backup"), "{said}");
        if db.backend == "sqlite" {
            // A damaged backup is refused and leaves no store behind.
            let damaged = dir.join("damaged");
            let mut bytes = std::fs::read(&backups[0]).unwrap();
            let half = bytes.len() / 2;
            bytes.truncate(half);
            std::fs::write(&damaged, bytes).unwrap();
            let (code, said) = crest(&target.url, &["restore", damaged.to_str().unwrap()]);
            assert_ne!(code, 0, "{said}");
            let path = target.url.trim_start_matches("sqlite:");
            assert!(!std::path::Path::new(path).exists(), "{said}");
        }
    }
}
