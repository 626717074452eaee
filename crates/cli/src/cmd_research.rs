//! `crest projects`, `crest extract` and `crest aggregate`: research projects, their
//! k-anonymous extracts, and aggregates, all from the national store.

use crate::args::ProjectsAction;
use crate::common::parse_date;
use crate::progress::Progress;
use crate::today;
use anyhow::{anyhow, bail, Context, Result};
use crest_privacy::research::{self, Format, Requester};
use crest_stats::aggregate::{Dimension, Measure};
use crest_stats::Period;
use crest_store::NationalStore;
use std::path::Path;

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn projects(db: &str, action: ProjectsAction) -> Result<i32> {
    let mut n = NationalStore::open(db)?;
    match action {
        ProjectsAction::Add {
            id,
            title,
            approval,
            fields,
            researchers,
            from,
            to,
            k,
        } => {
            let mut problems = Vec::new();
            let id = id.trim().to_string();
            if id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                problems.push("--id: letters, digits, - and _ only, at most 64".to_string());
            }
            if title.trim().is_empty() {
                problems.push("--title: give the project's title".into());
            }
            if approval.trim().is_empty() {
                problems.push("--approval: give the approval reference".into());
            }
            let fields = research::parse_fields(&fields).unwrap_or_else(|e| {
                problems.push(format!("--fields: {e}"));
                Vec::new()
            });
            let researchers = list(&researchers);
            if researchers.is_empty() {
                problems.push("--researchers: name at least one researcher".into());
            }
            let (valid_from, valid_to) = (parse_date(&from, "from"), parse_date(&to, "to"));
            if let (Ok(f), Ok(t)) = (&valid_from, &valid_to) {
                if t < f {
                    problems.push("--to is before --from".into());
                }
            }
            for e in [&valid_from, &valid_to]
                .into_iter()
                .filter_map(|r| r.as_ref().err())
            {
                problems.push(e.to_string());
            }
            if k < 2 {
                problems.push("--k: at least 2".into());
            }
            if !problems.is_empty() {
                bail!("the project was not recorded:\n  {}", problems.join("\n  "));
            }
            let p = crest_store::national::Project {
                id: id.clone(),
                title: title.trim().to_string(),
                approval: approval.trim().to_string(),
                fields,
                researchers,
                valid_from: valid_from?,
                valid_to: valid_to?,
                k,
                secret: research::new_secret(),
                created_at: crest_store::utc_now(),
            };
            n.put_project(&p)?;
            // What the approved fields would release, before anyone takes an extract.
            let preview = research::preview(&mut n, &p)?;
            let mut entry = crate::common::command_line_entry("", "record research project", &id);
            entry.detail = format!(
                "fields {}; researchers {}",
                p.fields.join(","),
                p.researchers.join(",")
            );
            n.log(&entry)?;
            println!(
                "project {id} recorded: {} fields, researchers {}, valid {} to {}, k = {k}",
                p.fields.len(),
                p.researchers.join(", "),
                p.valid_from,
                p.valid_to
            );
            println!("{}", preview.sentence());
        }
        ProjectsAction::List => {
            let all = n.projects()?;
            if all.is_empty() {
                println!("no research projects; record one with `crest projects add`");
            }
            for p in all {
                let state = if p.valid_on(today()) {
                    "valid"
                } else {
                    "not valid today"
                };
                println!(
                    "{}\t{}\t{}\t{} to {} ({state})\tk = {}\tresearchers {}\tfields {}",
                    p.id,
                    p.title,
                    p.approval,
                    p.valid_from,
                    p.valid_to,
                    p.k,
                    p.researchers.join(","),
                    p.fields.join(",")
                );
            }
        }
    }
    Ok(0)
}

pub(crate) fn extract(
    db: &str,
    project: &str,
    format: &str,
    out: &Path,
    for_user: Option<&str>,
) -> Result<i32> {
    let format =
        Format::parse(format).ok_or_else(|| anyhow!("--format {format}: use csv or parquet"))?;
    let mut n = NationalStore::open(db)?;
    let me = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let who = Requester {
        username: &me,
        role: if for_user.is_some() {
            "national_team"
        } else {
            "researcher"
        },
        for_researcher: for_user,
        today: today(),
    };
    let p = match research::allowed_project(&mut n, project, &who) {
        Ok(p) => p,
        Err(e) => {
            let mut entry = crate::common::command_line_entry("", "research extract", project);
            entry.outcome = "refused".into();
            entry.detail = e.to_string();
            n.log(&entry)?;
            bail!("{e}");
        }
    };
    // Written beside the target and renamed at the end, so a failed run leaves no half file.
    let partial = out.with_extension(format!("{}.partial", format.extension()));
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut bar = Progress::new(&format!("extracting {project}"));
    let summary = research::write_extract(&mut n, &p, format, &mut w, &who, &mut |f| bar.set(f));
    bar.finish();
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            bail!("{e}");
        }
    };
    use std::io::Write;
    w.flush()?;
    drop(w);
    std::fs::rename(&partial, out)?;
    let dictionary = out.with_extension("dictionary.csv");
    std::fs::write(&dictionary, research::extract_dictionary_csv(&p, &summary)?)?;
    let kept = summary.rows as f64 / (summary.rows + summary.suppressed).max(1) as f64;
    println!(
        "{}: {} rows ({:.1}% of the records), {} columns; {} records suppressed for k-anonymity (k = {}); quasi-identifiers generalised first: {}; data dictionary {}",
        out.display(),
        summary.rows,
        100.0 * kept,
        summary.columns.len(),
        summary.suppressed,
        summary.k,
        summary.generalisation_text(),
        dictionary.display()
    );
    Ok(0)
}

pub(crate) fn aggregate(
    db: &str,
    by: &str,
    measure: &str,
    period: Period,
    regions: Option<&str>,
    published: bool,
    format: &str,
) -> Result<i32> {
    let mut problems = Vec::new();
    let dims = Dimension::parse_list(by).unwrap_or_else(|e| {
        problems.push(format!("--by: {e}"));
        Vec::new()
    });
    let measure = Measure::parse(measure).unwrap_or_else(|e| {
        problems.push(format!("--measure: {e}"));
        Measure::Uptake
    });
    if !matches!(format, "csv" | "json") {
        problems.push(format!("--format {format}: use csv or json"));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    let mut n = NationalStore::open(db)?;
    let q = crest_report::aggregates::Query {
        by: dims,
        measure,
        period: if published {
            crest_report::aggregates::published_grid(period)
        } else {
            period
        },
        regions: regions.map(list),
    };
    let answer = crest_report::aggregates::answer(&mut n, &q, published)?
        .map_err(|refused| anyhow!("{refused}"))?;
    let mut entry = crate::common::command_line_entry("", "aggregate", by);
    entry.detail = format!(
        "measure {}, {} to {}, {}",
        measure.code(),
        q.period.from,
        q.period.to,
        if published { "published" } else { "exact" }
    );
    n.log(&entry)?;
    if format == "json" {
        println!("{}", serde_json::to_string_pretty(&answer.to_json())?);
    } else {
        use std::io::Write;
        std::io::stdout().write_all(&answer.to_csv()?)?;
    }
    Ok(0)
}
