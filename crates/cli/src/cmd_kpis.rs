//! `crest kpis`: the seven KPIs, locally or nationally, and re-based thresholds.

use crate::args::*;
use crate::common::*;
use anyhow::{anyhow, Context, Result};
use crest_stats::{KpiTally, Thresholds};

pub(crate) fn kpis(db: &str, args: &KpiArgs) -> Result<i32> {
    let period = period(args.from.as_deref(), args.to.as_deref())?;
    let thresholds = match &args.thresholds {
        Some(p) => Thresholds::from_json(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .map_err(|e| anyhow!(e))?,
        None => Thresholds::default(),
    };
    let scope = Scope::open(db, args.national, args.programme.as_deref())?;
    let programmes = scope.programmes.clone();
    if !args.rebase {
        // Counted as they are read: ten years of a national audit need not be held at once.
        let mut tally = KpiTally::new(&programmes, period);
        scope.each_episode(period.from, period.to, &mut |some| tally.add(some))?;
        let report = tally.report(&thresholds);
        match args.format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&report.to_json())?),
            Format::Csv => print!("{}", report.to_csv()),
            Format::Table => print!("{}", report.to_table()),
        }
        return Ok(0);
    }
    // Re-basing reads the national averages of every episode, so they are held.
    let episodes = scope.episodes(period.from, period.to)?;
    let rebased = thresholds.rebased(&programmes, &episodes, period);
    println!(
        "KPIs 4–7 re-based on national averages for {} to {}:\n{:<18} {:>22} {:>22} {:>22} {:>22}",
        period.from,
        period.to,
        "nation",
        "assessment 1",
        "wait CABG (days)",
        "wait MI/PCI (days)",
        "assessment 2"
    );
    for nation in crest_core::Nation::ALL {
        let (Some(a), Some(b)) = (
            thresholds.nations.get(&nation),
            rebased.nations.get(&nation),
        ) else {
            continue;
        };
        let pair = |x: f64, y: f64| format!("{x} → {y}");
        println!(
            "{:<18} {:>22} {:>22} {:>22} {:>22}",
            nation.code(),
            pair(a.assessment1, b.assessment1),
            pair(a.wait_cabg, b.wait_cabg),
            pair(a.wait_mi_pci, b.wait_mi_pci),
            pair(a.assessment2, b.assessment2)
        );
    }
    if let Some(out) = &args.save {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .with_context(|| {
                format!(
                    "cannot create {} (an existing file is never overwritten)",
                    out.display()
                )
            })?;
        f.write_all(rebased.to_json().as_bytes())?;
        println!(
            "saved to {}: use it next year with --thresholds {}",
            out.display(),
            out.display()
        );
    }
    Ok(0)
}
