//! Backing a store up and restoring it.
//!
//! SQLite is copied through its online backup API in one step, under one read transaction: the
//! copy is the store as it was at one moment, whole, while the server goes on writing (an
//! import committed during the copy is wholly in it or wholly not). PostgreSQL is dumped and
//! restored with `pg_dump` / `pg_restore` where they are installed. Either way a backup is
//! written beside its destination and renamed only once complete, so a failed run never leaves
//! something that looks like a backup; a restore goes only into an empty store, and is checked
//! (migrations and the access log's hash chain) before it is reported.

use crate::{sqlite_path, Result, StoreError};
use std::path::{Path, PathBuf};

/// What a backup or restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The backup file's size.
    pub bytes: u64,
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The file a backup is written to before it is complete.
fn partial(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn refuse(why: String) -> StoreError {
    StoreError::Refused(why)
}

/// Backs up the store at `url` to the new file `out`.
pub fn backup(url: &str, out: &Path) -> Result<Copied> {
    if out.exists() {
        return Err(refuse(format!(
            "{} already exists; a backup never replaces a file: choose a new name",
            out.display()
        )));
    }
    let tmp = partial(out);
    let _ = std::fs::remove_file(&tmp);
    let done = if is_postgres(url) {
        pg_dump(url, &tmp)
    } else {
        sqlite_backup(sqlite_path(url)?, &tmp)
    };
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(|e| refuse(format!("{}: {e}", out.display())))?;
    Ok(Copied {
        backend: if is_postgres(url) {
            "postgres"
        } else {
            "sqlite"
        },
        bytes: std::fs::metadata(out).map(|m| m.len()).unwrap_or(0),
    })
}

/// Copies `from` into `to` with SQLite's backup API, in one step (one read transaction on
/// `from`, so the copy is consistent), waiting while a writer holds the lock.
fn sqlite_copy(from: &rusqlite::Connection, to: &mut rusqlite::Connection) -> Result<()> {
    let copy = rusqlite::backup::Backup::new(from, to)?;
    let started = std::time::Instant::now();
    loop {
        match copy.step(-1)? {
            rusqlite::backup::StepResult::Done => return Ok(()),
            rusqlite::backup::StepResult::More => {}
            _ if started.elapsed() > std::time::Duration::from_secs(600) => {
                return Err(refuse(
                    "the store stayed locked for ten minutes; the backup was not made".into(),
                ))
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

fn sqlite_backup(path: &str, tmp: &Path) -> Result<()> {
    if !Path::new(path).exists() {
        return Err(refuse(format!("there is no store at {path}")));
    }
    let from = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(std::time::Duration::from_secs(30))?;
    let mut to = rusqlite::Connection::open(tmp)?;
    sqlite_copy(&from, &mut to)?;
    // One self-contained file (the store's write-ahead log mode would otherwise travel with
    // the copy, and opening it would leave -wal and -shm files beside it).
    let _: String = to.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    // The copy is checked before it is called a backup.
    let check: String = to.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(refuse(format!("the copy failed its check: {check}")));
    }
    to.close().map_err(|(_, e)| e)?;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| refuse(format!("{}: {e}", tmp.display())))?;
    Ok(())
}

fn run(program: &str, args: &[&str], what: &str) -> Result<()> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| {
            refuse(format!(
                "{program} could not be run ({e}); install the PostgreSQL client tools, or {what} as the README's \"Backups\" section shows"
            ))
        })?;
    if !out.status.success() {
        // pg_dump's own words; they name the database but never a patient.
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(refuse(format!(
            "{program} failed: {}",
            said.lines().take(5).collect::<Vec<_>>().join("; ")
        )));
    }
    Ok(())
}

fn pg_dump(url: &str, tmp: &Path) -> Result<()> {
    let file = tmp.to_string_lossy();
    run(
        "pg_dump",
        &[
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            "--file",
            &file,
            "--dbname",
            url,
        ],
        "back the database up with pg_dump",
    )
}

/// Restores the backup `file` into the empty store at `url`, then checks it: its migrations
/// are ones this crest knows, and its access log's hash chain is intact. A store that already
/// holds anything is refused (restore into a new database, then point crest at it).
pub fn restore(file: &Path, url: &str) -> Result<Copied> {
    if !file.exists() {
        return Err(refuse(format!("there is no backup at {}", file.display())));
    }
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    if is_postgres(url) {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )?
            .get(0);
        if tables > 0 {
            return Err(refuse(
                "that database already holds tables; restore into a new, empty database".into(),
            ));
        }
        drop(client);
        let file = file.to_string_lossy();
        run(
            "pg_restore",
            &[
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                "--dbname",
                url,
                &file,
            ],
            "restore the dump with pg_restore",
        )?;
    } else {
        let path = sqlite_path(url)?;
        if Path::new(path).exists() {
            return Err(refuse(format!(
                "{path} already exists; restore into a new file (move the old store aside first)"
            )));
        }
        let from = rusqlite::Connection::open_with_flags(
            file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let check: String = from
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|_| refuse(format!("{} is not a crest SQLite backup", file.display())))?;
        if check != "ok" {
            return Err(refuse(format!(
                "{} is damaged ({check}); nothing was restored",
                file.display()
            )));
        }
        let tmp = partial(Path::new(path));
        let _ = std::fs::remove_file(&tmp);
        let copied = rusqlite::Connection::open(&tmp)
            .map_err(StoreError::from)
            .and_then(|mut to| sqlite_copy(&from, &mut to).map(|()| to))
            .and_then(|to| to.close().map_err(|(_, e)| StoreError::from(e)));
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, path).map_err(|e| refuse(format!("{path}: {e}")))?;
    }
    // A national store is checked as one; anything else as a programme's store.
    let national = crate::NationalStore::open(url).and_then(|mut n| {
        let log = n.verify_access_log()?;
        n.check_migrations()?;
        Ok((n.backend(), log))
    });
    let (backend, log) = match national {
        Ok(checked) => checked,
        Err(_) => {
            let mut store = crate::open(url)?;
            store.check_migrations()?;
            (store.backend(), store.verify_access_log()?)
        }
    };
    if let Some(why) = log.broken {
        return Err(refuse(format!(
            "the restored store's access log is broken after {} entries ({why}); do not use it",
            log.entries
        )));
    }
    Ok(Copied { backend, bytes })
}
