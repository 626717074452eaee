//! Test support: a fresh store on every back end available.
//!
//! SQLite always runs. PostgreSQL runs when reachable at `CREST_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each test gets its own database, dropped
//! afterwards. Without a server the PostgreSQL half is skipped with a printed notice, except when
//! `CI` or `CREST_REQUIRE_POSTGRES` is set: then an unreachable server fails the test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory unique to this process and call.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("crest-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
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

fn postgres_required() -> bool {
    ["CI", "CREST_REQUIRE_POSTGRES"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|x| !x.is_empty() && x != "0" && x != "false"))
}

/// A fresh PostgreSQL database, or `None` (with a notice) when no server is reachable outside CI.
pub fn postgres_db() -> Option<TestDb> {
    let admin = admin_url();
    let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
        Ok(c) => c,
        Err(e) if postgres_required() => {
            panic!("PostgreSQL is required here (CI) but unreachable at {admin}: {e}")
        }
        Err(e) => {
            eprintln!("NOTICE: PostgreSQL unreachable at {admin} ({e}); skipping the PostgreSQL half of this test");
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
