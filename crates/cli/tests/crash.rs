//! Crash safety: `crest import` and `crest submission receive` killed with SIGKILL at random
//! moments, fifty times each on each back end. After every kill the store opens, its access
//! log's hash chain is intact, and the batch is wholly there or wholly absent, its access-log
//! entry with it.
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

/// Episodes stored, and imports logged as stored. An import refused before the kill came
/// (its store busy on a loaded machine, say) logs its refusal with nothing stored: that batch
/// is wholly absent too, and [`said_refused`] shows why.
fn counts(db: &TestDb) -> (i64, i64) {
    (
        db.query_i64("SELECT count(*) FROM episodes"),
        db.query_i64("SELECT count(*) FROM access_log WHERE action = 'import' AND outcome = 'ok'"),
    )
}

/// A killed import's output, written to `out`. An import refused before the kill came must
/// have said why and that nothing was stored; it is shown on the test's output either way.
fn said_refused(out: &std::path::Path, what: &str) {
    let said = std::fs::read_to_string(out).unwrap_or_default();
    if said.contains("refused") {
        eprintln!("{what}: refused before the kill: {said}");
        assert!(
            said.contains("refused, nothing was stored: "),
            "{what}: a refusal that does not say why: {said}"
        );
    }
}

/// A file for a child's output (stdout and stderr together).
fn output_file(path: &std::path::Path) -> (std::process::Stdio, std::process::Stdio) {
    let f = std::fs::File::create(path).unwrap();
    (f.try_clone().unwrap().into(), f.into())
}

/// A new store with the programmes `crest synth` wrote into `dir`.
fn init_with_programmes(db: &TestDb, dir: &std::path::Path) {
    assert_eq!(crest(&db.url, &["init"]).0, 0);
    let programmes = dir.join("programmes.csv");
    let (code, out) = crest(
        &db.url,
        &["programmes", "import", programmes.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
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

/// How long after starting a run the kill may come: at first 1.3 times one whole run as timed,
/// widened by half whenever five kills in a row landed before the commit (a busier machine
/// than when the run was timed: in one CI run all fifty did, and the test could not tell
/// anything about what follows the commit).
struct Window {
    now: Duration,
    before_commit: u32,
}

impl Window {
    fn new(whole: Duration) -> Window {
        Window {
            now: whole.mul_f64(1.3),
            before_commit: 0,
        }
    }

    fn landed(&mut self, before_commit: bool) {
        self.before_commit = if before_commit {
            self.before_commit + 1
        } else {
            0
        };
        if self.before_commit == 5 {
            self.now = self.now.mul_f64(1.5);
            self.before_commit = 0;
        }
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
        init_with_programmes(&db, &dir);
        // How long a whole import takes here, so kills land before, during and after commit.
        let first = batch(KILLS);
        let started = Instant::now();
        let (code, out) = crest(&db.url, &["import", first.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}");
        let whole = started.elapsed();
        let mut expected = counts(&db);
        assert_eq!(expected, (BATCH as i64, 1));
        let mut moments = Moments(0x9E37_79B9_7F4A_7C15);
        let mut window = Window::new(whole);
        let (mut absent, mut present) = (0, 0);
        for i in 0..KILLS {
            let file = batch(i);
            let out = dir.join(format!("out-{i}.txt"));
            let (stdout, stderr) = output_file(&out);
            let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
                .args(["--db", &db.url, "import", file.to_str().unwrap()])
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap();
            std::thread::sleep(moments.next(window.now));
            let _ = child.kill(); // SIGKILL: no chance to clean up.
            let _ = child.wait();
            said_refused(&out, &format!("{} kill {i}", db.backend));
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
            window.landed(now == expected);
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

/// The first import into an empty store is a bulk load, written another way (on SQLite with a
/// rollback journal rather than the write-ahead log, its indexes built at the end): killed at
/// random moments, it too leaves the store whole, with the batch wholly there or absent, and
/// the store back in its usual journal mode.
#[test]
fn a_first_import_into_an_empty_store_killed_at_any_moment_is_wholly_there_or_wholly_absent() {
    const FIRST_KILLS: usize = 20;
    const FIRST_BATCH: usize = 3000;
    for db in databases() {
        let dir = scratch_dir("crash-first");
        let d = dir.to_str().unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_crest"))
            .args(["synth", "--programmes", "3", "--episodes"])
            .arg(FIRST_BATCH.to_string())
            .args(["--seed", "23", "--out", d])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let file = dir.join("episodes.csv");
        let file = file.to_str().unwrap();
        init_with_programmes(&db, &dir);
        let started = Instant::now();
        let (code, out) = crest(&db.url, &["import", file]);
        assert_eq!(code, 0, "{out}");
        let whole = started.elapsed();
        let mut imports = 1;
        assert_eq!(counts(&db), (FIRST_BATCH as i64, imports));
        let mut moments = Moments(0x2545_F491_4F6C_DD1D);
        let mut window = Window::new(whole);
        let (mut absent, mut present) = (0, 0);
        for i in 0..FIRST_KILLS {
            // Emptied behind crest's back, so that every import is a first one.
            db.execute_raw("DELETE FROM episodes");
            let out = dir.join(format!("out-{i}.txt"));
            let (stdout, stderr) = output_file(&out);
            let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
                .args(["--db", &db.url, "import", file])
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .unwrap();
            std::thread::sleep(moments.next(window.now));
            let _ = child.kill();
            let _ = child.wait();
            said_refused(&out, &format!("{} first import, kill {i}", db.backend));
            let (code, out) = crest(&db.url, &["audit", "verify"]);
            assert_eq!(code, 0, "{} kill {i}: {out}", db.backend);
            let now = counts(&db);
            let landed_before = now == (0, imports);
            assert!(
                landed_before || now == (FIRST_BATCH as i64, imports + 1),
                "{} kill {i}: {now:?} with {imports} import(s) before",
                db.backend
            );
            if landed_before {
                absent += 1;
            } else {
                present += 1;
                imports += 1;
            }
            window.landed(landed_before);
            if db.backend == "sqlite" {
                assert_eq!(
                    journal_mode(&db.url),
                    "wal",
                    "kill {i}: the store was left out of WAL mode"
                );
            }
        }
        assert!(
            absent > 0 && present > 0,
            "{}: {absent} absent, {present} present",
            db.backend
        );
        // Still a working store: an import after all that adds to it.
        db.execute_raw("DELETE FROM episodes");
        let (code, out) = crest(&db.url, &["import", file]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(counts(&db).0, FIRST_BATCH as i64);
    }
}

/// A SQLite store's journal mode as a new connection finds it (after crest has opened it).
fn journal_mode(url: &str) -> String {
    let c = rusqlite::Connection::open(url.trim_start_matches("sqlite:")).unwrap();
    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

/// `crest submission receive` killed at random moments, fifty times on each back end: each
/// submission (a newer one for the same programme and period replaces the last) is wholly
/// received or not at all, with its receipt in the access log.
#[test]
fn a_receipt_killed_at_any_moment_is_wholly_there_or_wholly_absent() {
    for (local, national) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("crash-receive");
        let d = dir.to_str().unwrap();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
        let (base, step) = (500, 20);
        let o = Command::new(env!("CARGO_BIN_EXE_crest"))
            .args([
                "synth",
                "--programmes",
                "1",
                "--episodes",
                &(base + (KILLS + 1) * step).to_string(),
            ])
            .args([
                "--seed",
                "23",
                "--from",
                "2024-04-01",
                "--to",
                "2025-03-31",
                "--out",
                d,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // A Welsh programme (no National Data Opt-out check to attach).
        let programmes = std::fs::read_to_string(dir.join("programmes.csv")).unwrap();
        let mut lines = programmes.lines();
        let header = lines.next().unwrap();
        let nation = header.split(',').position(|c| c == "nation").unwrap();
        let mut welsh = vec![header.to_string()];
        let mut code = String::new();
        for l in lines {
            let mut cells: Vec<String> = l.split(',').map(str::to_string).collect();
            cells[nation] = "wales".into();
            code = cells[0].clone();
            welsh.push(cells.join(","));
        }
        std::fs::write(dir.join("wales.csv"), welsh.join("\n") + "\n").unwrap();
        let all = std::fs::read_to_string(dir.join("episodes.csv")).unwrap();
        let mut lines = all.lines();
        let header = lines.next().unwrap();
        let rows: Vec<&str> = lines.collect();
        let ok = |db: &TestDb, args: &[&str]| {
            let (c, out) = crest(&db.url, args);
            assert_eq!(c, 0, "{args:?}: {out}");
            out
        };
        ok(&local, &["init"]);
        ok(&local, &["programmes", "import", &path("wales.csv")]);
        ok(
            &local,
            &[
                "agreements",
                "add",
                "--id",
                "ncpcr",
                "--recipient",
                "National audit",
                "--legal-basis",
                "CAG 99/CAG/0001",
                "--from",
                "2020-01-01",
                "--to",
                "2099-12-31",
            ],
        );
        ok(&local, &["keys", "new", "--out", &path("submission.key")]);
        ok(&local, &["keys", "new", "--out", &path("national.key")]);
        let said = ok(
            &local,
            &[
                "keys",
                "new",
                "--signing",
                "--programme",
                &code,
                "--out",
                &path("signing.key"),
            ],
        );
        let public = said
            .lines()
            .find_map(|l| l.strip_prefix("public key: "))
            .unwrap()
            .to_string();
        ok(&national, &["init", "--national"]);
        ok(
            &national,
            &["programmes", "import", "--national", &path("wales.csv")],
        );
        ok(
            &national,
            &[
                "programmes",
                "keys",
                "add",
                "--programme",
                &code,
                "--public-key",
                &public,
            ],
        );
        // Submissions of the same programme and period, each holding `step` episodes more.
        let build = |i: usize| {
            // The next episodes (the store keeps the earlier ones).
            let csv = dir.join(format!("more-{i}.csv"));
            let range = if i == 0 {
                0..base
            } else {
                base + (i - 1) * step..base + i * step
            };
            std::fs::write(&csv, format!("{header}\n{}\n", rows[range].join("\n"))).unwrap();
            ok(&local, &["import", csv.to_str().unwrap()]);
            let out = path(&format!("submission-{i}.jsonl"));
            let said = ok(
                &local,
                &[
                    "submission",
                    "build",
                    "--programme",
                    &code,
                    "--from",
                    "2024-04-01",
                    "--to",
                    "2025-03-31",
                    "--key",
                    &path("submission.key"),
                    "--signing-key",
                    &path("signing.key"),
                    "--out",
                    &out,
                ],
            );
            // "… N episode(s) …": what the national store should then hold.
            let episodes: i64 = said
                .split(" episode(s)")
                .next()
                .and_then(|s| s.split_whitespace().last())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{said}"));
            (out, episodes)
        };
        let receive = |file: &str| {
            Command::new(env!("CARGO_BIN_EXE_crest"))
                .args(["--db", &national.url, "submission", "receive", file])
                .args([
                    "--submission-key",
                    &path("submission.key"),
                    "--national-key",
                    &path("national.key"),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let counts = || {
            (
                national.query_i64("SELECT count(*) FROM national_episodes"),
                national.query_i64("SELECT count(*) FROM access_log WHERE action = 'receipt'"),
            )
        };
        let (first, _) = build(0);
        assert!(receive(&first).wait().unwrap().success());
        // How long receiving a newer submission (replacing the last) takes here, so kills land
        // before, during and after its commit.
        let (second, episodes) = build(1);
        let started = Instant::now();
        assert!(receive(&second).wait().unwrap().success());
        let whole = started.elapsed();
        let mut expected = counts();
        assert_eq!(expected, (episodes, 2));
        let mut moments = Moments(0xD1B5_4A32_D192_ED03);
        let mut window = Window::new(whole);
        let (mut absent, mut present) = (0, 0);
        for i in 2..KILLS + 2 {
            let (file, episodes) = build(i);
            let mut child = receive(&file);
            std::thread::sleep(moments.next(window.now));
            let _ = child.kill();
            let _ = child.wait();
            let (c, out) = crest(&national.url, &["audit", "verify", "--national"]);
            assert_eq!(c, 0, "{} kill {i}: {out}", national.backend);
            let now = counts();
            window.landed(now == expected);
            if now == expected {
                absent += 1;
            } else {
                // The newer submission replaced the last, whole, with one receipt more.
                assert_eq!(
                    now,
                    (episodes, expected.1 + 1),
                    "{} kill {i}: after {expected:?}",
                    national.backend
                );
                present += 1;
            }
            expected = now;
        }
        assert!(
            absent > 0 && present > 0,
            "{}: {absent} absent, {present} present",
            national.backend
        );
    }
}
