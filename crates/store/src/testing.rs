//! Test support (the `testing` feature): scratch folders, a fresh store on every back end
//! available, and skips that are said out loud.
//!
//! SQLite always runs. PostgreSQL runs when reachable at `CREST_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test gets its own database, dropped
//! afterwards. Whatever a test cannot run for want of a part (PostgreSQL, Chromium, poppler,
//! axe-core) goes through [`skip`]: where everything must run (`CI`, or the part's
//! `CREST_REQUIRE_…` variable) it fails the test; elsewhere it is listed after the run by
//! `tests/run.sh`, so a run never passes silently without it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch folder unique to this call, under the system's temporary folder. It is kept
/// after the test (for screenshots and files to look at when a test fails).
pub fn scratch_dir(tag: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("crest-{tag}-"))
        .tempdir()
        .expect("create scratch dir")
        .keep()
}

/// Whether a run must have everything (`CI`, or `require` set to anything but 0 or false).
pub fn required(require: &str) -> bool {
    ["CI", require]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|x| !x.is_empty() && x != "0" && x != "false"))
}

/// The running test cannot do part of its work for want of `what`. Where everything must run
/// (see [`required`]) this fails the test; otherwise the skip is printed and, when
/// `CREST_SKIPPED_FILE` names a file (as `tests/run.sh` sets it), recorded there with the
/// test's name, to be listed after the run.
pub fn skip(what: &str, require: &str) {
    if required(require) {
        panic!("{what}; where everything must run (CI or {require} set) this fails instead of skipping");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    eprintln!("SKIPPED {test}: {what}");
    if let Some(path) = std::env::var_os("CREST_SKIPPED_FILE") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {what}");
        }
    }
}

/// A database for one test; a PostgreSQL database is dropped when this is dropped.
pub struct TestDb {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The `--db` URL.
    pub url: String,
    admin: Option<(String, String)>,
}

impl TestDb {
    /// Runs raw SQL on the database, behind crest's back (for tampering tests).
    pub fn execute_raw(&self, sql: &str) {
        if self.backend == "postgres" {
            let mut c = postgres::Client::connect(&self.url, postgres::NoTls).expect("connect");
            c.batch_execute(sql).expect("raw SQL");
        } else {
            let path = self.url.trim_start_matches("sqlite:");
            let c = rusqlite::Connection::open(path).expect("open");
            c.execute_batch(sql).expect("raw SQL");
        }
    }

    /// The first column of the first row of a raw query, as a whole number (for checks the
    /// store's API does not offer, such as integrity across tables).
    pub fn query_i64(&self, sql: &str) -> i64 {
        if self.backend == "postgres" {
            let mut c = postgres::Client::connect(&self.url, postgres::NoTls).expect("connect");
            c.query_one(sql, &[]).expect("raw query").get(0)
        } else {
            let path = self.url.trim_start_matches("sqlite:");
            let c = rusqlite::Connection::open(path).expect("open");
            c.query_row(sql, [], |r| r.get(0)).expect("raw query")
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.admin {
            if let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

fn admin_url() -> String {
    std::env::var("CREST_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database, or `None` (with a notice) when no server is reachable outside CI.
pub fn postgres_db() -> Option<TestDb> {
    let admin = admin_url();
    let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
        Ok(c) => c,
        Err(e) => {
            skip(
                &format!("the PostgreSQL half: PostgreSQL is unreachable at {admin} ({e})"),
                "CREST_REQUIRE_POSTGRES",
            );
            return None;
        }
    };
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("crest_t_{}_{n}_{nanos}", std::process::id());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    let url = match admin.rfind('/') {
        Some(i) => format!("{}/{name}", &admin[..i]),
        None => panic!("CREST_TEST_POSTGRES must end in /DATABASE"),
    };
    Some(TestDb {
        backend: "postgres",
        url,
        admin: Some((admin, name)),
    })
}

/// A fresh SQLite file.
pub fn sqlite_db() -> TestDb {
    let path = scratch_dir("db").join("crest.sqlite");
    TestDb {
        backend: "sqlite",
        url: format!("sqlite:{}", path.display()),
        admin: None,
    }
}

/// A fresh, empty database on every available back end.
pub fn databases() -> Vec<TestDb> {
    let mut v = vec![sqlite_db()];
    v.extend(postgres_db());
    v
}
