//! `crest expected import`: the expected patients a count of hospital episodes gives;
//! `crest ascertainment`: referrals and starts set against them.

use crate::args::*;
use crate::common::*;
use anyhow::{bail, Result};
use crest_core::expected::{Area, Expected};
use crest_stats::ascertainment::{ascertainment as compute, rows, COLUMNS};

/// `crest expected import FILE [--national]`.
pub(crate) fn expected(db: &str, action: ExpectedAction) -> Result<i32> {
    let ExpectedAction::Import { file, national } = action;
    let rows = crest_ingest::expected::read_expected(&file)?;
    let at = file
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let entry = command_line_entry("", "expected_import", &at);
    let load = if national {
        let mut n = crest_store::NationalStore::open(db)?;
        check_areas(&rows, &n.programmes()?)?;
        let load = n.load_expected(&rows)?;
        n.log(&entry)?;
        load
    } else {
        let mut store = crest_store::open(db)?;
        check_areas(&rows, &store.programmes()?)?;
        let load = store.load_expected(&rows)?;
        store.log(&entry)?;
        load
    };
    println!(
        "{}: {} row(s) added, {} changed, {} unchanged",
        file.display(),
        load.added,
        load.changed,
        load.unchanged
    );
    Ok(0)
}

/// Refuses a file naming programmes or regions the store does not know, naming every one.
fn check_areas(rows: &[Expected], programmes: &[crest_core::Programme]) -> Result<()> {
    let mut unknown = std::collections::BTreeSet::new();
    for e in rows {
        let known = match &e.area {
            Area::Programme(c) => programmes.iter().any(|p| p.code == *c),
            Area::Region(r) => programmes.iter().any(|p| p.region == *r),
        };
        if !known {
            unknown.insert(format!("{} {}", e.area.kind(), e.area.name()));
        }
    }
    if !unknown.is_empty() {
        bail!(
            "the expected-patients file was refused; nothing was changed: this store has no {} \
             (register programmes first with `crest programmes import`)",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(())
}

/// `crest ascertainment`.
pub(crate) fn ascertainment(db: &str, args: &AscertainmentArgs) -> Result<i32> {
    let period = period(args.from.as_deref(), args.to.as_deref())?;
    let mut scope = Scope::chosen(db, &args.scope)?;
    let expected = scope.expected()?;
    if expected.is_empty() {
        bail!("this store has no expected patients: load them with `crest expected import FILE`");
    }
    let programmes = scope.programmes.clone();
    let episodes = scope.episodes(period.from, period.to)?;
    let a = compute(&expected, &programmes, &episodes, period.from, period.to);
    if !a.any() {
        eprintln!(
            "no expected patients for these programmes in a quarter wholly from {} to {}",
            period.from, period.to
        );
    }
    let level = |row: &[String]| row[0].clone();
    let shown: Vec<Vec<String>> = rows(&a)
        .into_iter()
        .filter(|r| match (&args.scope.programme, &args.scope.region) {
            (Some(_), _) => level(r) == "programme",
            (None, Some(_)) => level(r) != "nation",
            _ => true,
        })
        .collect();
    match args.format {
        RowsFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(COLUMNS)?;
            for r in &shown {
                w.write_record(r)?;
            }
            w.flush()?;
        }
        RowsFormat::Json => {
            let objects: Vec<serde_json::Value> = shown
                .iter()
                .map(|r| {
                    COLUMNS
                        .iter()
                        .zip(r)
                        .enumerate()
                        .map(|(i, (c, v))| {
                            // Counts and ratios as numbers (null where there is none).
                            let value = if (5..=11).contains(&i) {
                                v.parse::<f64>()
                                    .ok()
                                    .map_or(serde_json::Value::Null, |x| serde_json::json!(x))
                            } else {
                                serde_json::Value::String(v.clone())
                            };
                            (c.to_string(), value)
                        })
                        .collect::<serde_json::Map<_, _>>()
                        .into()
                })
                .collect();
            let json = serde_json::json!({
                "from": period.from.to_string(),
                "to": period.to.to_string(),
                "quarters": a.quarters.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "rows": objects,
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    Ok(0)
}
