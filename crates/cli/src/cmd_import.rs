//! `crest import`: files in, counts and every rejected row out.

use crate::args::*;
use crate::common::*;
use crate::progress::Progress;
use crate::today;
use anyhow::{Context, Result};
use crest_ingest::{import_files, ImportOptions, ImportSummary};
use std::path::Path;

pub(crate) fn import(db: &str, args: &ImportArgs) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    let mut opts = ImportOptions::new(today());
    opts.dry_run = args.dry_run;
    opts.skip_invalid = args.skip_invalid;
    opts.allow_duplicates = args.allow_duplicates;
    opts.sheet = args.sheet.clone();
    opts.warnings_file = args.warnings.clone();
    opts.programme = args.programme.clone();
    let mut errors = match &args.errors {
        Some(p) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            Some(csv::Writer::from_writer(
                Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write>,
            ))
        }
        None => None,
    };
    let mut code = 0;
    // FHIR files are read together: a bulk export puts each resource type in its own file, and
    // an episode needs all of them.
    let (fhir, sheets): (Vec<_>, Vec<_>) = args
        .files
        .iter()
        .cloned()
        .partition(|f| f.is_dir() || crest_ingest::fhir::is_fhir(f));
    let mut imports: Vec<Vec<std::path::PathBuf>> = sheets.into_iter().map(|f| vec![f]).collect();
    if !fhir.is_empty() {
        imports.push(fhir);
    }
    for files in &imports {
        let shown = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(" + ");
        let file = Path::new(&shown);
        let mut bar = Progress::new(&shown);
        let mut entry = command_line_entry(
            "",
            "import",
            &files
                .iter()
                .map(|f| {
                    f.file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
                })
                .collect::<Vec<_>>()
                .join(" + "),
        );
        // A stored import is logged in its own transaction.
        opts.log = Some(entry.clone());
        let result = import_files(store.as_mut(), files, &opts, errors.as_mut(), &mut |f| {
            bar.set(f)
        });
        bar.finish();
        match &result {
            Ok(s) => {
                entry.detail = s.counts();
                if !s.committed {
                    entry.outcome = "refused".into();
                }
            }
            Err(_) => entry.outcome = "refused".into(),
        }
        let committed = result.as_ref().is_ok_and(|s| s.committed);
        if !opts.dry_run && !committed {
            // Nothing was stored; the refusal is recorded if the log can be written.
            let _ = store.log(&entry);
        }
        match result {
            Ok(s) => {
                print_summary(file, &s, &opts, args.errors.as_deref());
                if s.rejected > 0 {
                    code = 1;
                }
            }
            Err(e) => {
                println!("{}: refused, nothing was stored: {e}", file.display());
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(crate) fn print_summary(
    file: &Path,
    s: &ImportSummary,
    opts: &ImportOptions,
    errors_file: Option<&Path>,
) {
    let verb = if s.committed { "" } else { "would be " };
    // A FHIR import's "rows" are the episodes it assembled, numbered in order.
    let unit = if s.fhir { "episode" } else { "row" };
    println!(
        "{}: {} {unit}(s): {} {verb}imported, {} {verb}updated, {} unchanged, {} rejected",
        file.display(),
        s.rows,
        s.imported,
        s.updated,
        s.unchanged,
        s.rejected
    );
    for w in &s.header_warnings {
        println!("  warning: {w}");
    }
    for e in &s.errors {
        println!("  rejected: {unit} {}, {}", e.row, e.issue);
    }
    if s.error_count > s.errors.len() {
        println!(
            "  … and {} more problem(s){}",
            s.error_count - s.errors.len(),
            match errors_file {
                Some(p) => format!("; all are in {}", p.display()),
                None => "; write them all with --errors FILE".to_string(),
            }
        );
    }
    // Warnings a few at a time; many are summarised by column, one example each.
    if s.warning_count <= 20 {
        for w in &s.warnings {
            println!("  warning: {unit} {}, {}", w.row, w.issue);
        }
    } else {
        println!(
            "  {} warning(s) in {} column(s){}:",
            s.warning_count,
            s.warnings_by_column.len(),
            match &opts.warnings_file {
                Some(p) => format!("; all are in {}", p.display()),
                None => "; write them all with --warnings FILE".to_string(),
            }
        );
        for (column, (n, first)) in &s.warnings_by_column {
            // A FHIR warning's example names the resource and element it came from.
            let from = first
                .issue
                .column
                .strip_suffix(&format!(" ({column})"))
                .map(|origin| format!(", {origin}"))
                .unwrap_or_default();
            println!(
                "    {column}: {n} (e.g. {unit} {}{from}, value '{}': {})",
                first.row, first.issue.value, first.issue.message
            );
        }
    }
    if s.blank > 0 {
        println!("  {} blank or notes row(s) ignored", s.blank);
    }
    if opts.dry_run {
        println!("  dry run: nothing was stored");
    } else if !s.committed {
        println!(
            "  nothing was stored: {} row(s) were rejected. Fix them, or use --skip-invalid to store the valid rows.",
            s.rejected
        );
    } else if s.rejected > 0 {
        println!(
            "  the valid rows were stored; {} rejected row(s) were not",
            s.rejected
        );
    }
}
