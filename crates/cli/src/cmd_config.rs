//! crest's configuration in one file: `crest.toml` in the working folder (or the file
//! `CREST_CONFIG` names), beneath the environment and the command line. Each setting has one
//! environment variable; a value in the file is used only where that variable is not set, and
//! an option given on the command line wins over both. `crest config check` shows every
//! setting, where it came from, and whether it works.
//!
//! ```toml
//! db = "postgres://crest_app@db/crest"
//! [serve]
//! addr = "0.0.0.0:8080"
//! behind_proxy = true
//! server_key = "/etc/crest/server.key"
//! metrics_allow = ["10.0.0.5"]
//! ```

use anyhow::{anyhow, Context, Result};
use std::path::PathBuf;

/// Every setting: its name in the file, its environment variable, its default, and whether it
/// is a secret (never printed).
const SETTINGS: &[(&str, &str, &str, bool)] = &[
    ("db", "CREST_DB", "crest.sqlite", false),
    ("serve.addr", "CREST_ADDR", "127.0.0.1:8080", false),
    ("serve.uploads", "CREST_UPLOADS", "crest-uploads", false),
    ("serve.behind_proxy", "CREST_BEHIND_PROXY", "false", false),
    ("serve.server_key", "CREST_SERVER_KEY_FILE", "", false),
    (
        "serve.submission_key",
        "CREST_SUBMISSION_KEY_FILE",
        "",
        false,
    ),
    ("serve.signing_key", "CREST_SIGNING_KEY", "", false),
    ("serve.national_db", "CREST_NATIONAL_DB", "", false),
    ("serve.national_key", "CREST_NATIONAL_KEY_FILE", "", false),
    ("serve.send_to", "CREST_SEND_TO", "", false),
    ("serve.send_token", "CREST_SEND_TOKEN", "", true),
    ("serve.metrics_token", "CREST_METRICS_TOKEN", "", true),
    ("serve.metrics_allow", "CREST_METRICS_ALLOW", "", false),
];

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Environment,
    File,
    Default,
}

/// The configuration file's path, and the settings it gave (setting, value).
#[derive(Debug, Default)]
pub(crate) struct FileSettings {
    path: Option<PathBuf>,
    given: Vec<(&'static str, String)>,
    /// Environment variables set before the file was read.
    preset: Vec<&'static str>,
}

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("CREST_CONFIG") {
        Some(p) => Some(PathBuf::from(p)),
        None => Some(PathBuf::from("crest.toml")).filter(|p| p.exists()),
    }
}

/// Reads the configuration file (if there is one) and sets the environment variable of each
/// setting it gives that the environment does not already set. Called once, first thing, while
/// the process has one thread. Every problem with the file is said at once.
pub(crate) fn load() -> Result<FileSettings> {
    let preset = SETTINGS
        .iter()
        .filter(|(_, env, _, _)| std::env::var_os(env).is_some())
        .map(|(_, env, _, _)| *env)
        .collect();
    let Some(path) = config_path() else {
        return Ok(FileSettings {
            preset,
            ..Default::default()
        });
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut given = Vec::new();
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    let mut visit = |prefix: &str, table: &toml::Table, problems: &mut Vec<String>| {
        for (key, value) in table {
            let name = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if name == "serve" && value.is_table() {
                continue;
            }
            let Some((setting, ..)) = SETTINGS.iter().find(|(s, ..)| *s == name) else {
                unknown.push(format!("'{name}'"));
                continue;
            };
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
                other => {
                    problems.push(format!("'{name}' cannot be {other}"));
                    continue;
                }
            };
            given.push((*setting, text));
        }
    };
    visit("", &table, &mut problems);
    if let Some(serve) = table.get("serve").and_then(|v| v.as_table()) {
        visit("serve", serve, &mut problems);
    }
    if !unknown.is_empty() {
        problems.push(format!(
            "{} {} not crest settings (the settings are {})",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" },
            SETTINGS.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(anyhow!("{}: {}", path.display(), problems.join("; ")));
    }
    for (setting, value) in &given {
        if let Some((_, env, _, _)) = SETTINGS.iter().find(|(s, ..)| s == setting) {
            if std::env::var_os(env).is_none() {
                std::env::set_var(env, value);
            }
        }
    }
    Ok(FileSettings {
        path: Some(path),
        given,
        preset,
    })
}

/// `crest config check`.
pub(crate) fn check(db: &str, file: &FileSettings) -> Result<i32> {
    match &file.path {
        Some(p) => println!("configuration file: {}", p.display()),
        None => println!("configuration file: none (crest.toml, or the file CREST_CONFIG names)"),
    }
    let value = |env: &str| std::env::var(env).ok().filter(|v| !v.is_empty());
    for (setting, env, default, secret) in SETTINGS {
        let source = if file.preset.contains(env) {
            Source::Environment
        } else if file.given.iter().any(|(s, _)| s == setting) {
            Source::File
        } else {
            Source::Default
        };
        let shown = match (value(env), secret) {
            (Some(_), true) => "(set)".to_string(),
            (Some(v), false) if *setting == "db" || *setting == "serve.national_db" => {
                hide_password(&v)
            }
            (Some(v), false) => v,
            (None, _) if default.is_empty() => "(not set)".to_string(),
            (None, _) => default.to_string(),
        };
        let from = match source {
            Source::Environment => format!("from {env}"),
            Source::File => "from the file".to_string(),
            Source::Default => format!("default; {env} sets it"),
        };
        println!("  {setting:<22} {shown}  ({from})");
    }
    let mut problems = Vec::new();
    let is_postgres = db.starts_with("postgres://") || db.starts_with("postgresql://");
    // Checking never makes a store: a SQLite file that is not there is said to be missing.
    let missing = !is_postgres
        && crest_store::sqlite_path(db).is_ok_and(|p| !std::path::Path::new(p).exists());
    if missing {
        problems.push(format!("there is no store at {db}: run `crest init`"));
    } else {
        check_store(db, &mut problems);
    }
    if let Some(url) = value("CREST_NATIONAL_DB") {
        match crest_store::NationalStore::open(&url).and_then(|mut n| n.check_migrations()) {
            Ok(()) => println!("national store: answers"),
            Err(e) => problems.push(format!("the national store cannot be used: {e}")),
        }
    }
    check_serving(&value, &mut problems);
    if problems.is_empty() {
        println!("configuration ok");
        Ok(0)
    } else {
        println!("{} problem(s):", problems.len());
        for p in &problems {
            println!("  - {p}");
        }
        Ok(1)
    }
}

fn check_store(db: &str, problems: &mut Vec<String>) {
    match crest_store::open(db).and_then(|mut s| s.migrations_pending()) {
        Ok(0) => println!("store: answers, migrations current"),
        Ok(n) => problems.push(format!(
            "the store needs {n} migration(s): run `crest init`"
        )),
        Err(e) => problems.push(format!("the store cannot be used: {e}")),
    }
}

/// The serving settings: addresses, key files, the uploads folder, the national address.
fn check_serving(value: &dyn Fn(&str) -> Option<String>, problems: &mut Vec<String>) {
    let addr = value("CREST_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
    if addr.parse::<std::net::SocketAddr>().is_err() {
        problems.push(format!(
            "serve.addr '{addr}' is not an address and port (like 0.0.0.0:8080)"
        ));
    }
    for (setting, env) in [
        ("serve.server_key", "CREST_SERVER_KEY_FILE"),
        ("serve.submission_key", "CREST_SUBMISSION_KEY_FILE"),
        ("serve.national_key", "CREST_NATIONAL_KEY_FILE"),
    ] {
        if let Some(path) = value(env) {
            let read = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| crest_privacy::Key::parse(&t).map_err(|e| e.to_string()));
            if let Err(e) = read {
                problems.push(format!("{setting} '{path}' cannot be used: {e}"));
            }
        }
    }
    if let Some(path) = value("CREST_SIGNING_KEY") {
        if let Err(e) = crest_privacy::SigningKeys::load(std::path::Path::new(&path)) {
            problems.push(format!("serve.signing_key '{path}' cannot be used: {e}"));
        }
    }
    let uploads = PathBuf::from(value("CREST_UPLOADS").unwrap_or_else(|| "crest-uploads".into()));
    if let Err(e) = writable(&uploads) {
        problems.push(format!(
            "serve.uploads '{}' is not a folder crest can write: {e}",
            uploads.display()
        ));
    }
    if let Some(v) = value("CREST_BEHIND_PROXY") {
        if !["true", "false", "1", "0", "yes", "no", "on", "off"]
            .contains(&v.to_lowercase().as_str())
        {
            problems.push(format!("serve.behind_proxy '{v}' is not true or false"));
        }
    }
    for ip in value("CREST_METRICS_ALLOW").unwrap_or_default().split(',') {
        let ip = ip.trim();
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            problems.push(format!("serve.metrics_allow '{ip}' is not an IP address"));
        }
    }
    match (value("CREST_SEND_TO"), value("CREST_SEND_TOKEN")) {
        (Some(url), token) => {
            let local = url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost");
            if !url.starts_with("https://") && !local {
                problems.push(format!(
                    "serve.send_to '{url}' must be https:// (or http:// on this machine)"
                ));
            }
            if token.is_none() {
                problems.push("serve.send_to needs serve.send_token (CREST_SEND_TOKEN)".into());
            }
        }
        (None, Some(_)) => problems.push("serve.send_token is set without serve.send_to".into()),
        (None, None) => {}
    }
}

/// A database URL with its password hidden.
fn hide_password(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_part = &url[scheme + 3..at];
            match user_part.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Whether crest can create files in `dir`, or create `dir` (checked without making it).
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    let place = if dir.exists() {
        dir.to_path_buf()
    } else {
        match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(p) => p.to_path_buf(),
            None => PathBuf::from("."),
        }
    };
    let probe = place.join(".crest-config-check");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

static LOADED: std::sync::OnceLock<FileSettings> = std::sync::OnceLock::new();

/// Reads the configuration file as the process starts (see [`load`]); says what is wrong with
/// it and exits if anything is.
pub(crate) fn load_at_start() {
    match load() {
        Ok(settings) => {
            let _ = LOADED.set(settings);
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// What [`load_at_start`] read.
pub(crate) fn loaded() -> &'static FileSettings {
    LOADED.get_or_init(FileSettings::default)
}
