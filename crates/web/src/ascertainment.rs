//! Case ascertainment on pages: the eligible patients a count of hospital episodes expects,
//! how many were referred and how many started, by programme. Analysts and a lead (for their
//! own programme) see exact counts; commissioners see them as published (rounded, 1–7 hidden,
//! the percentages and intervals from the rounded counts). One table model per view serves the
//! page and its CSV and XLSX.

use crate::app::table::{Cell, Column, Table};
use crate::html::{pct, thousands};
use crest_stats::ascertainment::{AreaFigures, Ascertainment, Counts, FLAG_BELOW};
use crest_stats::published::Met;
use maud::{html, Markup};

/// The quarters counted, in words: "April 2024 to March 2025 (4 quarters)".
pub(crate) fn quarters_words(a: &Ascertainment) -> String {
    use crest_stats::over_time::Month;
    match (a.quarters.first(), a.quarters.last()) {
        (Some(f), Some(l)) if f == l => format!(
            "{} to {}",
            Month::of(f.first_day()).long(),
            Month::of(f.last_day()).long()
        ),
        (Some(f), Some(l)) => format!(
            "{} to {} ({} quarters)",
            Month::of(f.first_day()).long(),
            Month::of(l.last_day()).long(),
            a.quarters.len()
        ),
        _ => "no quarter".into(),
    }
}

/// An interval in words: "80.1% to 95.3%".
fn interval(low: f64, high: f64) -> String {
    format!("{} to {}", pct(Some(low)), pct(Some(high)))
}

/// One sentence on an area's exact figures: expected, referred and started, with the interval.
pub(crate) fn sentence(who: &str, c: &Counts) -> String {
    match c.ascertainment() {
        None => format!("{who}: no eligible patients are expected in these quarters."),
        Some(r) => format!(
            "{who}: {} eligible patients expected, {} referred ({} of them; 95% interval {}) and {} started ({}).{}",
            thousands(c.expected),
            thousands(c.referred),
            pct(Some(r.value)),
            interval(r.low, r.high),
            thousands(c.started),
            pct(c.uptake_of_eligible().map(|u| u.value)),
            if c.flagged() {
                format!(" Under {}: fewer referred than expected.", pct(Some(FLAG_BELOW)))
            } else {
                String::new()
            }
        ),
    }
}

/// What the page says where no expected count applies.
pub(crate) fn none_loaded(how: &str) -> Markup {
    html! {
        p class="hint" {
            "No expected patients are loaded for any quarter wholly inside this period, so ascertainment cannot be shown. "
            (how)
        }
    }
}

/// The exact table of `programmes` (analysts, a lead's own): eligible, referred, started,
/// ascertainment with its interval, and the flag under 80%.
pub(crate) fn exact_table(
    a: &Ascertainment,
    programmes: &[&AreaFigures],
    link: Option<&dyn Fn(&str) -> String>,
    downloads: Option<[String; 2]>,
) -> Table {
    let columns = vec![
        Column::words("Programme", "programme_code"),
        Column::file_only("name"),
        Column::words("Region", "region"),
        Column::numbers("Eligible (expected)", "expected"),
        Column::numbers("Referred", "referred"),
        Column::numbers("Ascertainment", "ascertainment"),
        Column::words("95% interval", "interval").page_only(),
        Column::file_only("ascertainment_low"),
        Column::file_only("ascertainment_high"),
        Column::numbers("Started", "started"),
        Column::numbers("Started of eligible", "uptake_of_eligible"),
        Column::numbers("Eligible not referred", "not_referred"),
        Column::words("Under 80%", "under_80"),
    ];
    let rows = programmes
        .iter()
        .map(|p| {
            let (c, r) = (p.all, p.all.ascertainment());
            let code = Cell::text(&p.area);
            vec![
                match link {
                    Some(l) => code.link(l(&p.area)),
                    None => code,
                },
                Cell::text(&p.name),
                Cell::text(&p.region),
                Cell::count(c.expected),
                Cell::count(c.referred),
                Cell::proportion(r.map(|r| r.value)),
                Cell::text(r.map_or("–".into(), |r| interval(r.low, r.high))),
                Cell::proportion(r.map(|r| r.low)),
                Cell::proportion(r.map(|r| r.high)),
                Cell::count(c.started),
                Cell::proportion(c.uptake_of_eligible().map(|u| u.value)),
                Cell::count(c.not_referred()),
                Cell::text(if c.flagged() { "yes" } else { "no" }).strong(c.flagged()),
            ]
        })
        .collect();
    Table {
        caption: format!(
            "Eligible patients expected, referred and started, {}",
            quarters_words(a)
        ),
        rows_are: "programmes".into(),
        columns,
        rows,
        downloads,
        empty: "No programme shown has expected patients in these quarters.".into(),
    }
}

/// The exact table of regions (analysts): as [`exact_table`], a row per region.
pub(crate) fn regions_table(a: &Ascertainment, regions: &[&AreaFigures]) -> Table {
    let mut t = exact_table(a, regions, None, None);
    // A region's row names it once: no programme name or region column.
    t.columns.drain(1..3);
    t.columns[0] = Column::words("Region", "region");
    for row in &mut t.rows {
        row.drain(1..3);
    }
    t.caption = t.caption.replace(
        "Eligible patients expected",
        "By region: eligible patients expected",
    );
    t.rows_are = "regions".into();
    t.empty = "No region shown has expected patients in these quarters.".into();
    t
}

/// One area's exact figures by condition (a lead's own programme).
pub(crate) fn by_condition(f: &AreaFigures) -> Table {
    let rows = crest_core::expected::Condition::ALL
        .into_iter()
        .map(|c| (c, f.by_condition[c as usize]))
        .filter(|(_, n)| n.expected > 0)
        .map(|(c, n)| {
            let r = n.ascertainment();
            vec![
                Cell::coded(c.label(), c.code()),
                Cell::count(n.expected),
                Cell::count(n.referred),
                Cell::proportion(r.map(|r| r.value)),
                Cell::text(r.map_or("–".into(), |r| interval(r.low, r.high))),
                Cell::count(n.started),
                Cell::proportion(n.uptake_of_eligible().map(|u| u.value)),
            ]
        })
        .collect();
    Table {
        caption: "By condition".into(),
        rows_are: "conditions".into(),
        columns: vec![
            Column::words("Condition", "condition"),
            Column::numbers("Eligible (expected)", "expected"),
            Column::numbers("Referred", "referred"),
            Column::numbers("Ascertainment", "ascertainment"),
            Column::words("95% interval", "interval"),
            Column::numbers("Started", "started"),
            Column::numbers("Started of eligible", "uptake_of_eligible"),
        ],
        rows,
        downloads: None,
        empty: "No condition has expected patients in these quarters.".into(),
    }
}

/// A published percentage's cell: its words, a number to sort by, four places in a file.
fn published_pct(p: crest_stats::disclosure::Percentage) -> Cell {
    match p {
        crest_stats::disclosure::Percentage::Value(v) => {
            Cell::number(Some(v), format!("{v:.1}%"), format!("{:.4}", v / 100.0))
        }
        other => Cell::text(other.to_string()),
    }
}

/// What a published row says where the expected counts do not cover the period.
pub(crate) const INCOMPLETE: &str = "incomplete";

/// The note under a published table.
pub(crate) fn published_note() -> Markup {
    html! {
        p class="hint" {
            "Counts of 1 to 7 show as *, other counts are rounded to the nearest 5, and the percentages and intervals come from the rounded counts. "
            "\"" (INCOMPLETE) "\": the expected counts loaded do not cover every quarter and condition of the period, so that area's figures are not published. "
            "Ascertainment above 100% means more patients were referred than the hospital count expected (some come from outside the area)."
        }
    }
}

/// The published table of `areas` (commissioners): "eligible, referred, started" by programme,
/// with the region's total; an area whose expected counts do not cover the period says so.
pub(crate) fn published_table(areas: &[&AreaFigures], downloads: Option<[String; 2]>) -> Table {
    let columns = vec![
        Column::words("Programme", "area"),
        Column::file_only("name"),
        Column::numbers("Eligible (expected)", "expected"),
        Column::numbers("Referred", "referred"),
        Column::numbers("Started", "started"),
        Column::numbers("Ascertainment", "ascertainment"),
        Column::words("95% interval", "interval"),
        Column::numbers("Started of eligible", "uptake_of_eligible"),
        Column::words("80% or more referred", "at_least_80"),
    ];
    let rows = areas
        .iter()
        .map(|f| {
            let name = if f.area == f.region {
                format!("{}: all programmes", f.name)
            } else if f.area == f.name {
                f.name.clone()
            } else {
                format!("{} ({})", f.name, f.area)
            };
            let mut row = vec![Cell::coded(name, &f.area), Cell::text(&f.name)];
            match f.published() {
                None => {
                    row.push(Cell::text(INCOMPLETE));
                    row.extend((0..6).map(|_| Cell::text("–")));
                }
                Some(p) => {
                    let count = |c: crest_stats::disclosure::Cell| match c {
                        crest_stats::disclosure::Cell::Count(n) => Cell::count(n),
                        s => Cell::text(s.to_string()),
                    };
                    row.extend([
                        count(p.expected),
                        count(p.referred),
                        count(p.started),
                        published_pct(p.ascertainment),
                        Cell::text(
                            p.interval
                                .map_or("–".into(), |(l, h)| format!("{l:.1}% to {h:.1}%")),
                        ),
                        published_pct(p.uptake_of_eligible),
                        Cell::text(match p.at_least_80 {
                            Met::Yes => "yes",
                            Met::No => "no",
                            Met::TooFew => "*",
                        })
                        .strong(p.at_least_80 == Met::No),
                    ]);
                }
            }
            row
        })
        .collect();
    Table {
        // Short: a caption scrolls with a wide table on a phone (the quarters are said above it).
        caption: "Eligible, referred and started".into(),
        rows_are: "programmes".into(),
        columns,
        rows,
        downloads,
        empty: "No programme of your region has expected patients in these quarters.".into(),
    }
}
