//! `crest.toml` and `crest config check`: the file fills in what the environment does not set,
//! every setting is shown with where it came from (secrets masked), every problem is listed in
//! one round, and checking never makes a store.
#![allow(clippy::unwrap_used)]

use crest_store::testing::scratch_dir;
use std::process::Command;

fn run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_crest"));
    c.current_dir(dir).args(args);
    // Only this test's settings: none inherited from the machine running it.
    for (k, _) in std::env::vars() {
        if k.starts_with("CREST_") {
            c.env_remove(k);
        }
    }
    let o = c.envs(env.iter().copied()).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn crest_toml_is_read_checked_and_beneath_the_environment() {
    let dir = scratch_dir("config");
    // Without a file or a store: the defaults, and the missing store said (not made).
    let (code, out) = run(&dir, &[], &["config", "check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("configuration file: none"), "{out}");
    assert!(
        out.contains("there is no store at crest.sqlite: run `crest init`"),
        "{out}"
    );
    assert!(!dir.join("crest.sqlite").exists(), "checking made a store");

    assert_eq!(run(&dir, &[], &["--db", "s.sqlite", "init"]).0, 0);
    let (code, out) = run(&dir, &[], &["keys", "new", "--out", "server.key"]);
    assert_eq!(code, 0, "{out}");
    std::fs::write(
        dir.join("crest.toml"),
        "db = \"s.sqlite\"\n[serve]\naddr = \"0.0.0.0:8080\"\nbehind_proxy = true\nserver_key = \"server.key\"\nmetrics_token = \"monitor-secret-123\"\nmetrics_allow = [\"10.0.0.5\"]\nsend_to = \"https://audit.example.org\"\nsend_token = \"send-secret-456\"\n",
    )
    .unwrap();
    let (code, out) = run(&dir, &[], &["config", "check"]);
    assert_eq!(code, 0, "{out}");
    for line in [
        "configuration file: crest.toml",
        "db                     s.sqlite  (from the file)",
        "serve.addr             0.0.0.0:8080  (from the file)",
        "serve.uploads          crest-uploads  (default; CREST_UPLOADS sets it)",
        "serve.metrics_token    (set)  (from the file)",
        "store: answers, migrations current",
        "configuration ok",
    ] {
        assert!(out.contains(line), "{line} not in\n{out}");
    }
    assert!(
        !out.contains("monitor-secret-123") && !out.contains("send-secret-456"),
        "{out}"
    );
    // The environment wins over the file, and the command line over both.
    let (_, out) = run(
        &dir,
        &[("CREST_ADDR", "127.0.0.1:9999")],
        &["config", "check"],
    );
    assert!(
        out.contains("serve.addr             127.0.0.1:9999  (from CREST_ADDR)"),
        "{out}"
    );
    let (code, out) = run(&dir, &[], &["--db", "other.sqlite", "config", "check"]);
    assert_eq!(code, 1);
    assert!(out.contains("there is no store at other.sqlite"), "{out}");
    // The file's store is the one other commands use.
    let (code, out) = run(&dir, &[], &["audit", "verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(!dir.join("crest.sqlite").exists());

    // Every problem at once.
    std::fs::write(
        dir.join("crest.toml"),
        "db = \"s.sqlite\"\n[serve]\naddr = \"everywhere\"\nserver_key = \"missing.key\"\nmetrics_allow = [\"10.0.0.5\", \"not-an-ip\"]\nsend_to = \"http://audit.example.org\"\n",
    )
    .unwrap();
    let (code, out) = run(&dir, &[], &["config", "check"]);
    assert_eq!(code, 1, "{out}");
    for problem in [
        "5 problem(s):",
        "serve.addr 'everywhere' is not an address and port",
        "serve.server_key 'missing.key' cannot be used",
        "serve.metrics_allow 'not-an-ip' is not an IP address",
        "serve.send_to 'http://audit.example.org' must be https://",
        "serve.send_to needs serve.send_token",
    ] {
        assert!(out.contains(problem), "{problem} not in\n{out}");
    }
    // A setting crest does not have, or a broken file, stops every command, naming it.
    std::fs::write(
        dir.join("crest.toml"),
        "colour = \"blue\"\n[serve]\nport = 8080\n",
    )
    .unwrap();
    let (code, out) = run(&dir, &[], &["audit", "verify"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("'colour', 'serve.port' are not crest settings"),
        "{out}"
    );
    std::fs::write(dir.join("crest.toml"), "db = \n").unwrap();
    let (code, out) = run(&dir, &[], &["config", "check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("crest.toml"), "{out}");
    // CREST_CONFIG names another file.
    std::fs::write(dir.join("other.toml"), "db = \"s.sqlite\"\n").unwrap();
    let (code, out) = run(
        &dir,
        &[("CREST_CONFIG", "other.toml")],
        &["config", "check"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration file: other.toml"), "{out}");
}
