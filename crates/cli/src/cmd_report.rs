//! Published outputs: `crest report annual|site` and `crest figures load`.

use crate::common::*;
use crate::today;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// `crest figures load`: the national audit's latest published tables, for leads' dashboards.
pub(crate) fn figures_load(
    db: &str,
    period: &str,
    programmes: &Path,
    funnels: &Path,
) -> Result<i32> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let (p, f) = (read(programmes)?, read(funnels)?);
    let mut store = crest_store::open(db)?;
    let figures =
        crest_report::figures::save(store.as_mut(), period, &p, &f).map_err(|e| anyhow!(e))?;
    let mut entry = command_line_entry("", "load national figures", &figures.period);
    entry.detail = format!(
        "{} programmes, {} funnel points",
        figures.programmes.len(),
        figures.funnels.len()
    );
    store.log(&entry)?;
    println!(
        "national figures for {} loaded: {} programmes, {} funnel points",
        figures.period,
        figures.programmes.len(),
        figures.funnels.len()
    );
    Ok(0)
}

/// `crest report site`: the public results site.
pub(crate) fn site(
    db: &str,
    from: &Option<String>,
    to: &Option<String>,
    out: &Path,
    funnel_method: &str,
) -> Result<i32> {
    let report = annual_report(db, from, to, funnel_method)?;
    let files = crest_report::site::write_site(&report, out).map_err(|e| anyhow!(e))?;
    println!(
        "public results site: {files} files in {} (open {}); every value as the annual report publishes it",
        out.display(),
        out.join("index.html").display()
    );
    Ok(0)
}

/// `crest report annual`: the annual report as HTML or PDF, and its published tables.
pub(crate) fn annual(
    db: &str,
    from: &Option<String>,
    to: &Option<String>,
    out: &Path,
    tables: &Option<std::path::PathBuf>,
    funnel_method: &str,
) -> Result<i32> {
    let t = std::time::Instant::now();
    let report = annual_report(db, from, to, funnel_method)?;
    let period = report.period;
    println!("{}", report.audit.sentence());
    if let Some(dir) = &tables {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot make the folder {}", dir.display()))?;
        for table in &report.tables {
            let file = dir.join(format!("{}.csv", table.name));
            std::fs::write(&file, table.csv().map_err(|e| anyhow!(e))?)
                .with_context(|| format!("cannot write {}", file.display()))?;
        }
        println!(
            "{} published tables written to {}",
            report.tables.len(),
            dir.display()
        );
    }
    match out.extension().and_then(|e| e.to_str()) {
        Some("html") => std::fs::write(out, report.html())
            .with_context(|| format!("cannot write {}", out.display()))?,
        Some("pdf") => {
            // Chromium prints twice and says nothing meanwhile: each step is announced.
            let started = std::time::Instant::now();
            let pages = report
                .pdf_with_steps(out, &mut |step, of, what| {
                    eprintln!(
                        "PDF step {step} of {of}: {what} with Chromium ({:.0} s so far) …",
                        started.elapsed().as_secs_f64()
                    )
                })
                .map_err(|e| anyhow!(e))?;
            eprintln!("PDF printed: {pages} pages");
        }
        _ => bail!("--out must end in .pdf or .html, not '{}'", out.display()),
    }
    println!(
        "annual report for {} to {} written to {} in {:.1} s",
        period.from,
        period.to,
        out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// The annual report of the national store at `db` for `crest report annual` and
/// `crest report site`: the period from `--from`/`--to`, funnel limits by `--funnel-method`.
fn annual_report(
    db: &str,
    from: &Option<String>,
    to: &Option<String>,
    funnel_method: &str,
) -> Result<crest_report::annual::AnnualReport> {
    let period = period(from.as_deref(), to.as_deref())?;
    let method = crest_stats::funnel::Method::parse(funnel_method).ok_or_else(|| {
        anyhow!("--funnel-method {funnel_method}: use auto, plain, multiplicative or additive")
    })?;
    let mut national = crest_store::NationalStore::open(db)?;
    crest_report::annual::annual(&mut national, period, today(), method).map_err(|e| anyhow!(e))
}
