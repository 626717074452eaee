//! `crest spc`: a measure month by month as an SPC chart, from a local or the national store;
//! `crest changes`: the service changes its charts draw.

use crate::args::*;
use crate::common::*;
use crate::today;
use anyhow::{anyhow, bail, Result};
use crest_core::changes::{ChangeScope, ServiceChange};
use crest_core::Date;
use crest_stats::over_time::{spc_chart, Measure, Month, SpcMonth, COLUMNS};

/// A month from `--from` or `--to`: `YYYY-MM`, or any date in it.
fn month(s: &str, what: &str) -> Result<Month> {
    match Month::parse(s) {
        Some(m) => Ok(m),
        None => Ok(Month::of(parse_date(s, what)?)),
    }
}

pub(crate) fn spc(db: &str, args: &SpcArgs) -> Result<i32> {
    let measure = Measure::parse(&args.measure).ok_or_else(|| {
        anyhow!(
            "--measure: '{}' is not a measure crest charts; choose one of {}",
            args.measure,
            Measure::ALL.map(Measure::code).join(", ")
        )
    })?;
    let to = match &args.to {
        Some(s) => month(s, "to")?,
        None => Month::of(today()).back(1),
    };
    let from = match &args.from {
        Some(s) => month(s, "from")?,
        None => to.back(23),
    };
    if to < from {
        bail!("--to ({to}) is before --from ({from})");
    }
    let mut changes: Vec<Date> = args
        .changes
        .iter()
        .map(|c| parse_date(c, "change"))
        .collect::<Result<_>>()?;
    let scope = Scope::chosen(db, &args.scope)?;
    // The service changes recorded for these programmes (a local store keeps them).
    if !args.scope.national {
        let chart = match (&args.scope.region, scope.programmes.as_slice()) {
            (Some(r), _) => ChangeScope::Region(r.clone()),
            (None, [one]) => ChangeScope::Programme(one.code.clone()),
            _ => ChangeScope::National,
        };
        let region = scope.programmes.first().map(|p| p.region.clone());
        changes.extend(
            crest_store::open(db)?
                .service_changes()?
                .iter()
                .filter(|c| c.drawn_on(&chart, region.as_deref()))
                .map(|c| c.date),
        );
    }
    // A wait counts in its month of start: patients referred up to a year before the first
    // month can start within it.
    let (load_from, load_to) = (from.back(12).first_day(), to.last_day());
    let codes: Vec<String> = scope.programmes.iter().map(|p| p.code.clone()).collect();
    let episodes = scope.episodes(load_from, load_to)?;
    let (months, chart) = spc_chart(measure, &episodes, (from, to), &changes, args.target);
    match args.format {
        SpcFormat::Csv => print!("{}", csv(&months)),
        SpcFormat::Json => {
            let json = serde_json::json!({
                "measure": measure.code(),
                "label": measure.label(),
                "by": measure.by(),
                "improvement": measure.improvement().words(),
                "from": from.to_string(),
                "to": to.to_string(),
                "programmes": codes,
                "assurance": chart.assurance.map(|a| a.code()),
                "months": months.iter().map(SpcMonth::json).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    Ok(0)
}

fn csv(months: &[SpcMonth]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for m in months {
        out.push_str(&m.cells().join(","));
        out.push('\n');
    }
    out
}

/// `crest changes add|list`.
pub(crate) fn changes(db: &str, action: ChangesAction) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    match action {
        ChangesAction::Add {
            programme,
            region,
            national,
            date,
            text,
        } => {
            let scope = match (programme, region, national) {
                (Some(p), _, _) => {
                    if !store.programmes()?.iter().any(|x| x.code == p) {
                        bail!("programme {p} is not registered in this store");
                    }
                    ChangeScope::Programme(p)
                }
                (None, Some(r), _) => ChangeScope::Region(r),
                (None, None, true) => ChangeScope::National,
                (None, None, false) => {
                    bail!("say whose services changed: --programme P, --region R or --national")
                }
            };
            let change = ServiceChange::new(
                scope,
                parse_date(&date, "date")?,
                &text,
                &whoami(),
                &crest_store::utc_now(),
            )
            .map_err(|e| anyhow!("--text: {e}"))?;
            let id = store.add_service_change(&change)?;
            println!(
                "recorded change {id}: {} from {}: {}",
                scope_words(&change.scope),
                change.date,
                change.text
            );
        }
        ChangesAction::List => {
            let columns: Vec<String> = [
                "id",
                "scope",
                "code",
                "date",
                "text",
                "recorded_by",
                "recorded_at",
            ]
            .map(String::from)
            .to_vec();
            let rows: Vec<Vec<String>> = store
                .service_changes()?
                .into_iter()
                .map(|c| {
                    vec![
                        c.id.to_string(),
                        c.scope.kind().to_string(),
                        c.scope.code().to_string(),
                        c.date.to_string(),
                        c.text,
                        c.recorded_by,
                        c.recorded_at,
                    ]
                })
                .collect();
            // Spreadsheet-safe cells: a description is whatever someone typed.
            let csv = crest_ingest::export::table_csv(&columns, &rows)?;
            print!("{}", String::from_utf8_lossy(&csv));
        }
    }
    Ok(0)
}

/// Whose services, in words.
fn scope_words(s: &ChangeScope) -> String {
    match s {
        ChangeScope::Programme(p) => format!("programme {p}"),
        ChangeScope::Region(r) => format!("region {r}"),
        ChangeScope::National => "every programme".into(),
    }
}

/// Who is recording, as the system names them (the command line has no crest user).
fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "command line".into())
}
