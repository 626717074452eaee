//! Crash safety: `crest import` killed with SIGKILL at random moments, fifty times on each back
//! end. After every kill the store opens, its access log's hash chain is intact, and the batch
//! is wholly there or wholly absent, its access-log entry with it.
#![allow(clippy::unwrap_used)]

use common::crest;
use crest_store::testing::{databases, scratch_dir, TestDb};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

/// Kills per back end.
const KILLS: usize = 50;
/// Episodes per batch.
const BATCH: usize = 1000;

fn counts(db: &TestDb) -> (i64, i64) {
    (
        db.query_i64("SELECT count(*) FROM episodes"),
        db.query_i64("SELECT count(*) FROM access_log WHERE action = 'import'"),
    )
}

/// A small deterministic generator (xorshift), so a failure can be run again as it was.
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        below.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

#[test]
fn an_import_killed_at_any_moment_is_wholly_there_or_wholly_absent() {
    for db in databases() {
        let dir = scratch_dir("crash");
        let d = dir.to_str().unwrap();
        let episodes = (KILLS + 1) * BATCH;
        let o = Command::new(env!("CARGO_BIN_EXE_crest"))
            .args([
                "synth",
                "--programmes",
                "3",
                "--episodes",
                &episodes.to_string(),
            ])
            .args(["--seed", "17", "--out", d])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let all = std::fs::read_to_string(dir.join("episodes.csv")).unwrap();
        let mut lines = all.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines.collect();
        let batch = |i: usize| {
            let path = dir.join(format!("batch-{i}.csv"));
            let part = &rows[i * BATCH..((i + 1) * BATCH).min(rows.len())];
            std::fs::write(&path, format!("{header}\n{}\n", part.join("\n"))).unwrap();
            path
        };
        assert_eq!(crest(&db.url, &["init"]).0, 0);
        let programmes = dir.join("programmes.csv");
        let (code, out) = crest(
            &db.url,
            &["programmes", "import", programmes.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{out}");
        // How long a whole import takes here, so kills land before, during and after commit.
        let first = batch(KILLS);
        let started = Instant::now();
        let (code, out) = crest(&db.url, &["import", first.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}");
        let whole = started.elapsed();
        let mut expected = counts(&db);
        assert_eq!(expected, (BATCH as i64, 1));
        let mut moments = Moments(0x9E37_79B9_7F4A_7C15);
        let (mut absent, mut present) = (0, 0);
        for i in 0..KILLS {
            let file = batch(i);
            let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
                .args(["--db", &db.url, "import", file.to_str().unwrap()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(moments.next(whole.mul_f64(1.3)));
            let _ = child.kill(); // SIGKILL: no chance to clean up.
            let _ = child.wait();
            let (code, out) = crest(&db.url, &["audit", "verify"]);
            assert_eq!(code, 0, "{} kill {i}: {out}", db.backend);
            let now = counts(&db);
            let whole_batch = (expected.0 + BATCH as i64, expected.1 + 1);
            assert!(
                now == expected || now == whole_batch,
                "{} kill {i}: {now:?}, expected {expected:?} or {whole_batch:?}",
                db.backend
            );
            if now == expected {
                absent += 1;
            } else {
                present += 1;
            }
            expected = now;
        }
        // The kills landed on both sides of the commit.
        assert!(
            absent > 0 && present > 0,
            "{}: {absent} absent, {present} present",
            db.backend
        );
        // Importing every batch again completes the store: nothing was half-stored.
        for i in 0..KILLS {
            let (code, out) = crest(&db.url, &["import", batch(i).to_str().unwrap()]);
            assert_eq!(code, 0, "{out}");
        }
        assert_eq!(counts(&db).0, ((KILLS + 1) * BATCH) as i64);
        assert_eq!(crest(&db.url, &["audit", "verify"]).0, 0);
    }
}
