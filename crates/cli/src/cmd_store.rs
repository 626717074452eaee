//! Making and looking after stores: `crest init`, `crest programmes import|list`, `crest audit
//! verify`, `crest backup`, `crest restore`.

use anyhow::Result;

/// `crest init [--national]`: creates or migrates the store.
pub(crate) fn init(db: &str, national: bool) -> Result<i32> {
    if national {
        let mut store = crest_store::NationalStore::open(db)?;
        let n = store.migrate()?;
        println!(
            "national {} store ready ({n} migration(s) applied)",
            store.backend()
        );
        Ok(0)
    } else {
        let mut store = crest_store::open(db)?;
        let n = store.migrate()?;
        println!("{} store ready ({n} migration(s) applied)", store.backend());
        Ok(0)
    }
}

/// `crest programmes import FILE [--national]`: registers or updates programmes.
pub(crate) fn programmes_import(db: &str, file: &std::path::Path, national: bool) -> Result<i32> {
    if national {
        let programmes = crest_ingest::programmes::read_programmes(file)?;
        crest_store::NationalStore::open(db)?.upsert_programmes(&programmes)?;
        println!(
            "{}: {} programme(s) registered nationally",
            file.display(),
            programmes.len()
        );
        Ok(0)
    } else {
        let programmes = crest_ingest::programmes::read_programmes(file)?;
        let mut store = crest_store::open(db)?;
        let c = store.upsert_programmes(&programmes)?;
        println!(
            "{}: {} programme(s) added, {} updated",
            file.display(),
            c.added,
            c.updated
        );
        Ok(0)
    }
}

/// `crest programmes list`.
pub(crate) fn programmes_list(db: &str) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    for p in store.programmes()? {
        println!(
            "{:<8} {:<18} {:<24} professions: {:<3} offers: {}",
            p.code,
            p.nation.code(),
            p.region,
            p.professions
                .as_ref()
                .map_or("–".to_string(), |v| v.len().to_string()),
            p.offers_text()
        );
    }
    Ok(0)
}

/// `crest audit verify [--national]`: checks the access log's hash chain.
pub(crate) fn audit_verify(db: &str, national: bool) -> Result<i32> {
    // A national store's log is checked as such whether or not --national is given.
    let as_national = crest_store::NationalStore::open(db).and_then(|mut n| n.verify_access_log());
    let check = match as_national {
        Ok(check) => check,
        Err(e) if national => return Err(e.into()),
        Err(_) => crest_store::open(db)?.verify_access_log()?,
    };
    match check.broken {
        None => {
            println!(
                "access log intact: {} entries; head {}",
                check.entries, check.head
            );
            Ok(0)
        }
        Some(why) => {
            println!(
                "access log BROKEN after {} intact entries: {why}",
                check.entries
            );
            Ok(1)
        }
    }
}

/// `crest backup --out FILE`: a consistent copy of the store, written whole or not at all.
pub(crate) fn backup(db: &str, out: &std::path::Path) -> Result<i32> {
    let started = std::time::Instant::now();
    let copied = crest_store::backup::backup(db, out)?;
    println!(
        "backed up the {} store to {} ({:.1} MB in {:.1} s); restore it with `crest restore {} --db NEW`",
        copied.backend,
        out.display(),
        copied.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(0)
}

/// `crest restore FILE --db NEW`: the backup into a new, empty store, checked.
pub(crate) fn restore(file: &std::path::Path, db: &str) -> Result<i32> {
    let copied = crest_store::backup::restore(file, db)?;
    println!(
        "restored {} into the {} store; its migrations are known and its access log is intact (`crest init` applies any newer migrations)",
        file.display(),
        copied.backend
    );
    Ok(0)
}
