//! The annual report (`crest report annual`): the national summary, every programme's KPIs
//! and grade, the funnel plots, waits, inequalities, outcomes, data quality and a methods
//! appendix, from the national store. Every figure passes through disclosure control
//! (`crest_stats::disclosure`) before it is written. The report is one self-contained HTML file
//! (fonts embedded, print styles with page numbers and repeating table headers); the PDF is that
//! file printed by headless Chromium, so both look the same on any machine.

use crate::charts::{
    column_chart, draw_funnel, share_bars, wait_plot, Dot, FunnelChart, ShareAxis, ShareBar,
    FUNNELS,
};
use crate::ReportError;
use base64::Engine;
use crest_core::{Date, Period};
use crest_stats::disclosure;
use crest_stats::funnel::{Method, Position, Z998};
use crest_stats::kpis::{compute, Measure, ProgrammeKpis, Thresholds};
use crest_stats::outcomes::{paired_change, HADS_CASE};
use crest_stats::published;
use crest_stats::summary::Summary;
use crest_stats::Z95;
use crest_store::NationalStore;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::HashMap;
use std::path::Path;

const FONT_REGULAR: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Regular.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Bold.ttf");

fn count(n: u64) -> String {
    disclosure::count(n).to_string()
}

fn percentage(k: u64, n: u64) -> String {
    disclosure::percentage(k, n).to_string()
}

fn style() -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    format!(
        "@font-face{{font-family:'Report';src:url(data:font/ttf;base64,{}) format('truetype');font-weight:400}}\
         @font-face{{font-family:'Report';src:url(data:font/ttf;base64,{}) format('truetype');font-weight:700}}\
         @page{{size:A4;margin:18mm 15mm 20mm 15mm;@bottom-center{{content:'Page ' counter(page) ' of ' counter(pages);font-family:'Report';font-size:9pt;color:#425563}}}}\
         @page:first{{@bottom-center{{content:none}}}}\
         body{{font-family:'Report',sans-serif;font-size:10pt;color:#1b1b1b;line-height:1.35}}\
         h1{{font-size:24pt;margin-top:60mm}}h2{{font-size:15pt;break-before:page;color:#003087}}h3{{font-size:12pt}}\
         .title{{break-after:page}}table{{border-collapse:collapse;margin:4pt 0;width:100%}}\
         thead{{display:table-header-group}}tr{{break-inside:avoid}}\
         th,td{{border:0.5pt solid #aeb7bd;padding:2pt 4pt;text-align:left;font-size:8.5pt}}th{{background:#f0f4f5}}\
         figure{{break-inside:avoid;margin:6pt 0}}figcaption{{font-size:8.5pt}}svg{{max-width:100%;height:auto}}\
         table.wide th,table.wide td{{font-size:6.5pt;padding:1pt 2pt}}caption{{text-align:left;font-weight:700;padding:2pt 0}}.toc a{{color:#1b1b1b;text-decoration:none}}.toc li{{margin:3pt 0}}.toc .pg{{float:right}}.note{{color:#425563;font-size:9pt}}",
        b64(FONT_REGULAR),
        b64(FONT_BOLD)
    )
}

/// A copy of the rows whose medians based on 1–7 people are removed (not drawn).
fn disclosed_waits(rows: &[ProgrammeKpis]) -> Vec<ProgrammeKpis> {
    rows.iter()
        .cloned()
        .map(|mut p| {
            for k in &mut p.results.kpis {
                if let Measure::Median(s) = &k.measure {
                    if (1..=7).contains(&s.n) {
                        k.measure = Measure::Median(Summary::default());
                    }
                }
            }
            p
        })
        .collect()
}

/// A KPI key's words, if it is one.
fn kpi_words(key: &str) -> Option<&'static str> {
    Some(crest_stats::kpis::kpi_label(key)).filter(|l| *l != "Other measure")
}

/// A published table's column name as a heading people read.
fn heading(name: &str) -> String {
    if let Some(label) = kpi_words(name) {
        return label.to_string();
    }
    if let Some(label) = name.strip_suffix("_met").and_then(kpi_words) {
        return format!("{label}: met");
    }
    let words = match name {
        "programme_code" => "Programme",
        "kpi" => "KPI",
        "kpis_met" => "KPIs met",
        "kpis_assessable" => "KPIs assessable",
        "method" => "Funnel limits",
        other => return crate::html::capitalised(&other.replace('_', " ")),
    };
    words.to_string()
}

/// A published cell as shown in the report's HTML: KPI keys as their names, levels and codes
/// without underscores, whole numbers of 1,000 or more with thousands separators.
fn cell_words(column: &str, cell: &str) -> String {
    if column == "kpi" {
        if let Some(label) = kpi_words(cell) {
            return label.to_string();
        }
    }
    if matches!(column, "level" | "method") {
        return cell.replace('_', " ");
    }
    if column == "measure" {
        return heading(cell);
    }
    if column == "group" {
        return crate::html::group_words(cell).into_owned();
    }
    match cell.parse::<u64>() {
        Ok(n) if !column.contains("year") => crate::html::thousands(n),
        _ => cell.to_string(),
    }
}

/// One published table: shown in the report and written, cell for cell, as
/// `DIR/<name>.csv` by `crest report annual --tables DIR`.
#[derive(Clone, Debug)]
pub struct PublishedTable {
    /// File name without `.csv`.
    pub name: String,
    /// What the table shows.
    pub caption: String,
    /// Column headings (in the CSV, the column names).
    pub head: Vec<String>,
    /// The published cells.
    pub rows: Vec<Vec<String>>,
}

impl PublishedTable {
    fn new(name: &str, caption: &str, head: &[&str]) -> PublishedTable {
        PublishedTable {
            name: name.into(),
            caption: caption.into(),
            head: head.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as HTML for people (every cell escaped), the first column as row headers:
    /// column names and KPI keys in words, levels without underscores, and whole numbers with
    /// thousands separators. The CSV keeps the names and values as they are.
    /// The table in the report: headings and cells in words, each programme by its name
    /// with its code (`names`: code to name).
    fn html(&self, class: &str, names: &HashMap<String, String>) -> Markup {
        html! {
            table class=(class) id={ "t-" (self.name) } {
                caption { (self.caption) }
                thead {
                    tr {
                        @for h in &self.head {
                            th scope="col" { (heading(h)) }
                        }
                    }
                }
                tbody {
                    @for r in &self.rows {
                        tr {
                            @for (i, c) in r.iter().enumerate() {
                                @let column = self.head.get(i).map_or("", String::as_str);
                                @let shown = match names.get(c.as_str()) {
                                    Some(name) if column == "programme_code" => format!("{name} ({c})"),
                                    _ => cell_words(column, c),
                                };
                                @if i == 0 {
                                    th scope="row" { (shown) }
                                } @else {
                                    td { (shown) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The table as CSV: a header of column names, then the published cells.
    pub fn csv(&self) -> Result<Vec<u8>, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let e = |e: csv::Error| ReportError::File(format!("writing {}.csv: {e}", self.name));
        w.write_record(&self.head).map_err(e)?;
        for r in &self.rows {
            w.write_record(
                r.iter()
                    .map(|c| crest_core::spreadsheet::safe_cell(c).into_owned()),
            )
            .map_err(e)?;
        }
        w.into_inner()
            .map_err(|e| ReportError::File(format!("writing {}.csv: {e}", self.name)))
    }
}

/// One section of the annual report: it starts on a new page and is listed in the contents.
#[derive(Clone, Debug)]
pub struct ReportSection {
    /// Its anchor, e.g. `summary`.
    pub id: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// What it shows under the heading.
    pub body: Markup,
    /// Its parts after the body, each under a heading one level below the section's.
    pub parts: Vec<Part>,
}

/// A titled part of a report section (the methods' cohort, statistics, …).
#[derive(Clone, Debug)]
pub struct Part {
    /// Its heading.
    pub title: &'static str,
    /// What it shows.
    pub body: Markup,
}

impl ReportSection {
    /// What the section shows under its heading, its parts' headings at `level` (3 in the
    /// report, under the section's h2; 2 on a site page whose h1 is the section's title).
    pub fn content(&self, level: u8) -> Markup {
        html! {
            (self.body)
            @for part in &self.parts {
                @match level {
                    2 => h2 { (part.title) },
                    3 => h3 { (part.title) },
                    _ => h4 { (part.title) },
                }
                (part.body)
            }
        }
    }
}

/// The annual report: its sections and every table it publishes.
#[derive(Clone, Debug)]
pub struct AnnualReport {
    /// The referral period it reports on.
    pub period: Period,
    /// The day it was made.
    pub generated_on: Date,
    /// The programmes the national store holds (code, name, nation, region), by code.
    pub programme_list: Vec<crest_core::Programme>,
    /// The sections after the title page and the contents, in order.
    pub sections: Vec<ReportSection>,
    /// Every published table, in the order the report shows them.
    pub tables: Vec<PublishedTable>,
    /// What the disclosure audit checked before the report was made.
    pub audit: crate::publication_audit::AuditSummary,
}

impl AnnualReport {
    /// The whole report as one self-contained HTML document.
    pub fn html(&self) -> String {
        let all: Vec<&ReportSection> = self.sections.iter().collect();
        self.document(&all, true, &HashMap::new())
    }

    /// A document of `sections`, with the title page and the contents (numbered from `pages`)
    /// when `front` is set.
    fn document(
        &self,
        sections: &[&ReportSection],
        front: bool,
        pages: &HashMap<&str, usize>,
    ) -> String {
        let (from, to) = (self.period.from, self.period.to);
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "National audit of cardiac rehabilitation: annual report " (from.long()) " to " (to.long()) }
                    style { (PreEscaped(style())) }
                }
                body {
                    main {
                        @if front {
                            section class="title" {
                                h1 { "National audit of cardiac rehabilitation" }
                                p style="font-size:14pt" {
                                    "Annual report: patients referred from " (from.long()) " to " (to.long())
                                }
                                p { (self.programme_list.len()) " programmes. Made by crest on " (self.generated_on.long()) "." }
                                p class="note" {
                                    "Every figure in this report has passed disclosure control: counts of 1 to 7 are \
                                     shown as *, other counts are rounded to the nearest 5, percentages are computed \
                                     from the rounded counts, and statistics based on 1 to 7 people are shown as *. A \
                                     total that would let a * be worked out is shown as * too. A \
                                     standard based on 1 to 7 patients is too few to assess."
                                }
                            }
                            nav class="toc" aria-label="Contents" {
                                h2 style="break-before:auto" { "Contents" }
                                ol {
                                    @for s in &self.sections {
                                        li {
                                            a href={ "#" (s.id) } { (s.title) }
                                            span class="pg" data-for=(s.id) {
                                                @if let Some(p) = pages.get(s.id) { (p) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @for s in sections {
                            section aria-labelledby=(s.id) {
                                h2 id=(s.id) { (s.title) }
                                (s.content(3))
                            }
                        }
                    }
                }
            }
        }
        .into_string()
    }
}

/// Referred and started by each grouping of the report (sex, age band, ethnic group,
/// deprivation quintile, priority group), groups in the order `uptake_by` gives them, and by
/// known deprivation quintile (most deprived first) for the slope index.
#[derive(Default)]
struct GroupUptake {
    groups: [std::collections::BTreeMap<String, (u64, u64)>; 5],
    quintiles: [(u64, u64); 5],
}

impl GroupUptake {
    fn add(&mut self, f: &crest_store::national::EquityFact) {
        const QUINTILES: [&str; 5] = ["1", "2", "3", "4", "5"];
        let imd = f.imd_quintile.and_then(|q| {
            let i = usize::try_from(q).ok()?.checked_sub(1)?;
            Some((i, *QUINTILES.get(i)?))
        });
        let other = f.imd_quintile.map(|q| q.to_string());
        let keys: [&str; 5] = [
            f.sex.as_deref().unwrap_or("not known"),
            crest_core::age_band(f.age),
            crest_core::ethnic_group(f.ethnicity.as_deref()),
            imd.map(|(_, q)| q)
                .or(other.as_deref())
                .unwrap_or("not known"),
            f.group.label(),
        ];
        let started = u64::from(f.started);
        for (counts, key) in self.groups.iter_mut().zip(keys) {
            // Looked up by reference: a key is allocated once per group, not once per fact.
            match counts.get_mut(key) {
                Some(c) => *c = (c.0 + 1, c.1 + started),
                None => {
                    counts.insert(key.to_string(), (1, started));
                }
            }
        }
        if let Some((i, _)) = imd {
            self.quintiles[i].1 += 1;
            self.quintiles[i].0 += started;
        }
    }
}

/// The deprivation grouping's place among the groupings of uptake (the audit's numbering).
const DEPRIVATION: usize = 3;

/// A group's uptake as a published table; a group not `shown` (withheld to protect another by
/// the disclosure audit) is `*`.
fn uptake_table(
    name: &str,
    title: &str,
    rows: &[(String, u64, u64)],
    shown: impl Fn(&str) -> bool,
) -> PublishedTable {
    let mut t = PublishedTable::new(
        name,
        &format!("Uptake by {title}"),
        &["group", "referred", "started", "uptake"],
    );
    for (g, n, k) in rows {
        if shown(g) {
            t.push(vec![g.clone(), count(*n), count(*k), percentage(*k, *n)]);
        } else {
            t.push(vec![g.clone(), "*".into(), "*".into(), "*".into()]);
        }
    }
    t
}

/// The annual report for `period` as one self-contained HTML document.
pub fn annual_html(
    national: &mut NationalStore,
    period: Period,
    generated_on: Date,
    method: Method,
) -> Result<String, ReportError> {
    annual(national, period, generated_on, method).map(|r| r.html())
}

/// The annual report for `period`: the HTML document and its published tables, its funnel
/// limits (and so its outliers) by `method`.
pub fn annual(
    national: &mut NationalStore,
    period: Period,
    generated_on: Date,
    method: Method,
) -> Result<AnnualReport, ReportError> {
    let e = ReportError::Store;
    let programmes = national.programmes().map_err(e)?;
    let episodes = national
        .kpi_episodes(period.from, period.to, &programmes)
        .map_err(e)?;
    let thresholds = Thresholds::default();
    let report = compute(&programmes, &episodes, period, &thresholds);
    let names: HashMap<String, String> = programmes
        .iter()
        .map(|p| (p.code.clone(), p.name.clone()))
        .collect();
    // Uptake by each grouping, counted as the facts stream past (a million of them are never
    // held at once).
    let mut by_group = GroupUptake::default();
    national
        .each_equity_fact(None, period.from, period.to, &mut |f| {
            by_group.add(&f);
            Ok(())
        })
        .map_err(e)?;
    let outcomes = national.outcome_pairs(period.from, period.to).map_err(e)?;
    let held = national.submissions().map_err(e)?;
    let (from, to) = (period.from.to_string(), period.to.to_string());
    let published: Vec<_> = report.programmes.iter().map(published::programme).collect();
    // Nothing is written that the audit cannot pass: it runs first, and says which pooled
    // counts must be withheld to protect others.
    let started = std::time::Instant::now();
    let publication = crate::publication_audit::Publication {
        report: &report,
        regions: programmes
            .iter()
            .map(|p| (p.code.as_str(), p.region.as_str()))
            .collect(),
        groups: by_group
            .groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|(name, (n, k))| (name.clone(), *n, *k))
                    .collect()
            })
            .collect(),
        method,
    };
    let (withheld, mut audit) = crate::publication_audit::protect(&publication);
    audit.seconds = started.elapsed().as_secs_f64();
    if !audit.failures.is_empty() {
        return Err(ReportError::Disclosure(audit.failures.join("; ")));
    }
    let pooled = |place: (&str, &str), exact: u64| {
        crate::publication_audit::pooled_cell(
            &(place.0.to_string(), place.1.to_string()),
            &withheld,
            exact,
        )
    };
    let mut tables = Vec::new();

    let mut sections = Vec::new();

    // National summary.
    let n = &report.national;
    let grades = |g: &str| published.iter().filter(|p| p.grade == g).count();
    let quintiles = by_group.quintiles;
    let referred_known: u64 = quintiles.iter().map(|q| q.1).sum();
    let sii = crest_stats::funnel::slope_index(&quintiles).map(|s| s * 100.0);
    let sii = disclosure::statistic(sii.map(|s| (s * 10.0).round() / 10.0), referred_known);
    let mut summary = PublishedTable::new(
        "summary",
        "The national picture (all programmes pooled)",
        &["measure", "value"],
    );
    let national = (pooled(("", ""), n.referred), pooled(("", ""), n.started));
    summary.push(vec!["referred".into(), national.0.to_string()]);
    summary.push(vec!["started".into(), national.1.to_string()]);
    summary.push(vec![
        "uptake".into(),
        disclosure::percentage_of(national.1, national.0).to_string(),
    ]);
    for k in &n.kpis {
        summary.push(vec![k.label().to_string(), published::kpi(k).value]);
    }
    for g in ["green", "amber", "red", "withheld", "no data"] {
        summary.push(vec![
            format!("programmes graded {g}"),
            grades(g).to_string(),
        ]);
    }
    summary.push(vec![
        "slope index of inequality (percentage points)".into(),
        sii.to_string(),
    ]);
    sections.push(ReportSection {
        id: "summary",
        title: "National summary",
        parts: Vec::new(),
        body: html! {
            p {
                (cell_words("", &national.0.to_string())) " patients were referred to cardiac rehabilitation and "
                (cell_words("", &national.1.to_string())) " started a core programme: an uptake of "
                (disclosure::percentage_of(national.1, national.0)) "."
            }
            p {
                "Of " (programmes.len()) " programmes, " (grades("green"))
                " met all seven standards (green), " (grades("amber"))
                " met four to six (amber) and " (grades("red"))
                " met three or fewer (red). For " (grades("withheld"))
                " the grade is withheld: it depends on a standard based on too few patients to \
                 publish. " (grades("no data")) " had no referrals in the period."
            }
            (summary.html("", &names))
        },
    });
    tables.push(summary);

    // By nation, then by region within it: patients pooled (each count rounded from its exact
    // sum), and programmes by their *published* grade, so a region of one programme never shows
    // the grade that programme's own row withholds.
    let region_of = |code: &str| {
        programmes
            .iter()
            .find(|p| p.code == code)
            .map_or(String::new(), |p| p.region.clone())
    };
    let rows: Vec<&ProgrammeKpis> = report.programmes.iter().collect();
    let mut places = PublishedTable::new(
        "nations_regions",
        "Each nation, then its regions: patients pooled, programmes by published grade",
        &[
            "nation",
            "region",
            "programmes",
            "referred",
            "started",
            "uptake",
            "assessment1",
            "assessment2",
            "green",
            "amber",
            "red",
            "withheld",
            "no_data",
        ],
    );
    let rolled = crest_stats::kpis::rollup(&rows, region_of);
    for r in &rolled {
        let within = |code: &str| {
            let p = programmes.iter().find(|p| p.code == code);
            p.is_some_and(|p| {
                p.nation.code() == r.nation && (r.region.is_empty() || p.region == r.region)
            })
        };
        let graded = |g: &str| {
            published
                .iter()
                .filter(|p| within(&p.programme_code) && p.grade == g)
                .count()
                .to_string()
        };
        // Counts withheld to protect another cell show as * (the audit above).
        let cell = |exact: u64| pooled((&r.nation, &r.region), exact);
        let nation = crest_core::Nation::parse(&r.nation)
            .map_or(r.nation.clone(), |n| n.label().to_string());
        places.push(vec![
            nation,
            if r.region.is_empty() {
                "all regions".into()
            } else {
                r.region.clone()
            },
            r.programmes.to_string(),
            cell(r.uptake.1).to_string(),
            cell(r.uptake.0).to_string(),
            disclosure::percentage_of(cell(r.uptake.0), cell(r.uptake.1)).to_string(),
            disclosure::percentage_of(cell(r.assessment1.0), cell(r.assessment1.1)).to_string(),
            disclosure::percentage_of(cell(r.assessment2.0), cell(r.assessment2.1)).to_string(),
            graded("green"),
            graded("amber"),
            graded("red"),
            graded("withheld"),
            graded("no data"),
        ]);
    }
    sections.push(ReportSection {
        id: "places",
        title: "By nation and region",
        parts: Vec::new(),
        body: html! {
            p {
                "Patients pooled over each nation's programmes, then over each region's. Counts are \
                 rounded from their exact sums; grades are the programmes' published grades. A \
                 line's counts may be * although they are larger than 7: with the other lines \
                 they would let a programme's hidden count or result be worked out."
            }
            (places.html("", &names))
        },
    });
    tables.push(places);

    // Every programme: exactly the columns of programmes.csv (privacy.md).
    let keys: Vec<&str> = report
        .programmes
        .first()
        .map(|p| p.results.kpis.iter().map(|k| k.key).collect())
        .unwrap_or_default();
    let mut head = vec!["programme_code".to_string()];
    for k in &keys {
        head.push(k.to_string());
        head.push(format!("{k}_met"));
    }
    head.extend(["kpis_met", "kpis_assessable", "grade"].map(String::from));
    let mut kpi_table = PublishedTable {
        name: "programmes".into(),
        caption: "Each programme's KPIs: the published value and whether the standard is met (* = too few to assess)".into(),
        head,
        rows: Vec::new(),
    };
    for p in &published {
        let mut row = vec![p.programme_code.clone()];
        for k in &p.kpis {
            row.push(k.value.clone());
            row.push(k.met.code().to_string());
        }
        row.extend([
            p.kpis_met.to_string(),
            p.kpis_assessable.to_string(),
            p.grade.to_string(),
        ]);
        kpi_table.push(row);
    }
    let mut uptake = PublishedTable::new(
        "uptake",
        "Referrals and uptake by programme",
        &["programme_code", "nation", "referred", "started", "uptake"],
    );
    for p in &report.programmes {
        uptake.push(vec![
            p.programme_code.clone(),
            p.nation.label().to_string(),
            count(p.results.referred),
            count(p.results.started),
            percentage(p.results.started, p.results.referred),
        ]);
    }
    sections.push(ReportSection {
        id: "programmes",
        title: "Programmes: KPIs and grades",
        parts: Vec::new(),
        body: html! {
            p class="note" {
                "A standard based on 1 to 7 patients is too few to assess: its value and met flag \
                 are *. KPIs met counts the assessable standards met; a grade is withheld where it \
                 would depend on a standard too few to assess."
            }
            (kpi_table.html("wide", &names))
            (uptake.html("", &names))
        },
    });
    tables.push(kpi_table);
    tables.push(uptake);

    // Funnel plots: levels from the exact counts pooled over every programme; points drawn
    // at their published counts, where those are not suppressed.
    let mut funnel_rows = PublishedTable::new(
        "funnels",
        "Funnel plot positions",
        &[
            "kpi",
            "programme_code",
            "numerator",
            "denominator",
            "level",
            "method",
        ],
    );
    let mut outside = PublishedTable::new(
        "outliers",
        "Programmes outside the funnel limits (alert: outside 95%, alarm: outside 99.8%)",
        &["programme_code", "kpi", "numerator", "denominator", "level"],
    );
    let mut plots = Vec::new();
    let mut glance_funnel = None;
    let mut flagged: [std::collections::BTreeSet<String>; 2] = Default::default();
    for (i, (key, title)) in FUNNELS.iter().enumerate() {
        let f = published::funnel(&report, key, method);
        for r in &f.rows {
            // Suppressed counts are published `too_few`, not named as outliers: a level beside
            // hidden counts would pin them.
            let level = r.published_level();
            funnel_rows.push(vec![
                key.to_string(),
                r.programme_code.clone(),
                r.numerator.to_string(),
                r.denominator.to_string(),
                level.into(),
                f.fit.map_or(method, |fit| fit.method).code().into(),
            ]);
            if level == published::TOO_FEW {
                continue;
            }
            match r.position {
                Position::Within => {}
                Position::Alert(_) => {
                    flagged[0].insert(r.programme_code.clone());
                }
                Position::Alarm(_) => {
                    flagged[1].insert(r.programme_code.clone());
                }
            }
            if r.position != Position::Within {
                outside.push(vec![
                    r.programme_code.clone(),
                    key.to_string(),
                    r.numerator.to_string(),
                    r.denominator.to_string(),
                    level.into(),
                ]);
            }
        }
        let Some(fit) = f.fit else {
            plots.push(html! { p { (title) ": no data." } });
            continue;
        };
        let hidden = f.rows.iter().filter(|r| r.drawn().is_none()).count();
        let dots: Vec<Dot> = f
            .rows
            .iter()
            .map(|r| Dot {
                code: r.programme_code.clone(),
                at: r.drawn(),
                position: r.published_position(),
                shown: format!("{}/{}", r.numerator, r.denominator),
            })
            .collect();
        let note = if hidden == 0 {
            "Every programme with patients is drawn.".to_string()
        } else {
            format!(
                "{hidden} programme(s) not drawn: a count of 1 to 7 (shown as *), or a level that would narrow a result too few to assess."
            )
        };
        let draw = |id: &str| {
            draw_funnel(&FunnelChart {
                id,
                title,
                fit: &fit,
                programmes: f.rows.len(),
                dots: &dots,
                note: &note,
                selected: None,
                outliers_href: Some("#t-outliers"),
            })
        };
        plots.push(draw(&format!("r-f{i}")));
        if *key == "uptake" {
            glance_funnel = Some(draw("r-glance-funnel"));
        }
    }
    sections.push(ReportSection {
        id: "funnels",
        title: "Funnel plots",
        parts: Vec::new(),
        body: html! {
            p {
                "Each dot is a programme, drawn at its published (rounded) counts. Whether a \
                 programme is inside or outside the limits is decided on its exact counts, against \
                 the proportion pooled over every programme, so it is the same as in the audit's \
                 own analysis. A programme whose numerator or denominator is 1 to 7 cannot be \
                 drawn, and its level is published as too few: a level beside hidden counts would \
                 narrow them."
            }
            @for plot in &plots { (plot) }
            (outside.html("", &names))
        },
    });
    tables.push(funnel_rows);
    tables.push(outside);

    // Waits.
    let waits = disclosed_waits(&report.programmes);
    let refs: Vec<&ProgrammeKpis> = waits.iter().collect();
    let mut wait_table = PublishedTable::new(
        "waits",
        "Median wait from referral to start, by programme (days)",
        &[
            "programme_code",
            "nation",
            "wait_cabg",
            "wait_cabg_threshold",
            "wait_mi_pci",
            "wait_mi_pci_threshold",
        ],
    );
    for p in &report.programmes {
        let cell = |key: &str| {
            p.results.kpis.iter().find(|k| k.key == key).map_or(
                ("–".to_string(), "–".to_string()),
                |k| {
                    (
                        published::kpi(k).value,
                        k.threshold
                            .map_or("–".into(), crest_core::record::format_num),
                    )
                },
            )
        };
        let (c, ct) = cell("wait_cabg");
        let (m, mt) = cell("wait_mi_pci");
        wait_table.push(vec![
            p.programme_code.clone(),
            p.nation.label().to_string(),
            c,
            ct,
            m,
            mt,
        ]);
    }
    sections.push(ReportSection {
        id: "waits",
        title: "Waits",
        parts: Vec::new(),
        body: html! {
            p {
                "Median days from referral to the start of core rehabilitation, by programme, \
                 against each nation's threshold."
            }
            // One row per programme: beyond 60 the plots would not fit a page.
            @if refs.len() <= 60 {
                (wait_plot("r-wcabg", "wait_cabg", "Median wait: CABG", &refs))
                (wait_plot("r-wmipci", "wait_mi_pci", "Median wait: MI/PCI", &refs))
            }
            (wait_table.html("", &names))
        },
    });
    tables.push(wait_table);

    // Inequalities.
    let groups = [
        ("uptake_by_sex", "sex"),
        ("uptake_by_age_band", "age band"),
        ("uptake_by_ethnic_group", "ethnic group"),
        (
            "uptake_by_deprivation",
            "deprivation quintile (1 = most deprived)",
        ),
        ("uptake_by_priority_group", "priority group"),
    ]
    .iter()
    .zip(&by_group.groups)
    .enumerate()
    .map(|(i, ((name, title), counts))| {
        let rows: Vec<(String, u64, u64)> = counts
            .iter()
            .map(|(g, (n, k))| (g.clone(), *n, *k))
            .collect();
        uptake_table(name, title, &rows, |g| {
            crate::publication_audit::group_shown(i, g, &withheld)
        })
    })
    .collect::<Vec<_>>();
    sections.push(ReportSection {
        id: "inequalities",
        title: "Who takes up cardiac rehabilitation",
        parts: Vec::new(),
        body: html! {
            @for t in &groups { (t.html("", &names)) }
            p {
                "Slope index of inequality across deprivation quintiles: " (sii)
                " percentage points (a positive value means uptake rises as deprivation falls)."
            }
        },
    });
    tables.extend(groups);

    // Outcomes.
    let mut changes = PublishedTable::new(
        "outcomes",
        "Change from assessment 1 to assessment 2, among patients with both",
        &[
            "measure",
            "patients",
            "mean_at_1",
            "mean_at_2",
            "mean_change",
            "interval_95",
        ],
    );
    let mut hads = PublishedTable::new(
        "hads",
        "Patients with HADS of 8 or more (symptoms present), among those scored at both assessments",
        &["scale", "patients", "at_1", "at_2"],
    );
    for (field, pairs) in &outcomes {
        let c = paired_change(pairs);
        let people = c.n as u64;
        let stat = |v: Option<f64>| {
            disclosure::statistic(v.map(|x| (x * 10.0).round() / 10.0), people).to_string()
        };
        changes.push(vec![
            field.label.to_string(),
            count(people),
            stat(c.mean_a1),
            stat(c.mean_a2),
            stat(c.mean_change),
            match (c.ci, (1..=7).contains(&people)) {
                (Some((lo, hi)), false) => format!("{:.1} to {:.1}", lo, hi),
                (_, true) => "*".into(),
                _ => "–".into(),
            },
        ]);
        if field.name.starts_with("a1_hads") {
            let at = |first: bool| {
                let cases = pairs
                    .iter()
                    .filter(|p| (if first { p.0 } else { p.1 }) >= HADS_CASE)
                    .count() as u64;
                percentage(cases, people)
            };
            hads.push(vec![
                field.label.to_string(),
                count(people),
                at(true),
                at(false),
            ]);
        }
    }
    sections.push(ReportSection {
        id: "outcomes",
        title: "Outcomes",
        parts: Vec::new(),
        body: html! { (changes.html("", &names)) (hads.html("", &names)) },
    });
    tables.push(changes);
    tables.push(hads);

    // Data quality.
    let current = |code: &str| {
        held.iter()
            .any(|s| s.programme == code && s.from == from && s.to == to && s.current)
    };
    let received = programmes.iter().filter(|p| current(&p.code)).count();
    let mut quality = PublishedTable::new(
        "quality",
        "Submissions and recording by programme",
        &[
            "programme_code",
            "submission",
            "assessment1_recorded",
            "assessment2_within_140_days",
        ],
    );
    for p in &report.programmes {
        let (a1k, a1n) = p.proportion("assessment1");
        let (a2k, a2n) = p.proportion("assessment2");
        quality.push(vec![
            p.programme_code.clone(),
            if current(&p.programme_code) {
                "received"
            } else {
                "missing"
            }
            .into(),
            percentage(a1k, a1n),
            percentage(a2k, a2n),
        ]);
    }
    sections.push(ReportSection {
        id: "quality",
        title: "Data quality",
        parts: Vec::new(),
        body: html! {
            p { (received) " of " (programmes.len()) " programmes submitted data for this period." }
            (quality.html("", &names))
        },
    });
    tables.push(quality);

    sections.push(ReportSection {
        id: "methods",
        title: "Methods",
        body: html! {},
        parts: methods(&period.from.long(), &period.to.long(), &thresholds, method),
    });

    // The executive summary leads: the few numbers and charts a reader needs first.
    let alarms = flagged[1].len();
    let alerts = flagged[0].difference(&flagged[1]).count();
    let glance = Glance {
        national: n,
        programmes: programmes.len(),
        published: &published,
        nations: rolled.iter().filter(|r| r.region.is_empty()).collect(),
        quintiles,
        outliers: (alarms, alerts),
        method,
        funnel: glance_funnel,
        withheld: &withheld,
    };
    sections.insert(
        0,
        ReportSection {
            id: "glance",
            title: "At a glance",
            parts: Vec::new(),
            body: glance.html(),
        },
    );
    Ok(AnnualReport {
        period,
        generated_on,
        programme_list: programmes,
        sections,
        tables,
        audit,
    })
}

/// What the executive summary is drawn from, all of it already computed for later sections.
struct Glance<'a> {
    national: &'a crest_stats::kpis::Results,
    programmes: usize,
    published: &'a [published::PublishedProgramme],
    /// Each nation's pooled line (region empty).
    nations: Vec<&'a crest_stats::kpis::RollupRow>,
    /// (started, referred) by deprivation quintile, most deprived first, exact.
    quintiles: [(u64, u64); 5],
    /// Programmes at alarm on any funnel KPI; programmes at alert (and at no alarm) on any.
    outliers: (usize, usize),
    method: Method,
    funnel: Option<Markup>,
    /// Pooled counts and groups the disclosure audit withheld.
    withheld: &'a std::collections::BTreeSet<crate::publication_audit::Place>,
}

/// A share as published: both counts rounded, or `None` where either is suppressed.
fn published_share(label: String, (k, n): (u64, u64), shown: bool) -> ShareBar {
    let counts = match (disclosure::count(k), disclosure::count(n)) {
        (disclosure::Cell::Count(k), disclosure::Cell::Count(n)) if shown => Some((k, n)),
        _ => None,
    };
    ShareBar { label, counts }
}

impl Glance<'_> {
    fn html(&self) -> Markup {
        let n = self.national;
        let graded = |g: &str| self.published.iter().filter(|p| p.grade == g).count();
        let national = (String::new(), String::new());
        let national_uptake = match disclosure::percentage(n.started, n.referred) {
            _ if self.withheld.contains(&national) => None,
            disclosure::Percentage::Value(v) => Some((v / 100.0, "the national uptake")),
            _ => None,
        };
        let grades: Vec<(String, f64)> = ["green", "amber", "red", "withheld", "no data"]
            .iter()
            .map(|g| (crate::html::capitalised(g), graded(g) as f64))
            .collect();
        // Programmes meeting each standard, of those it could be assessed for.
        let keys: Vec<&str> = self
            .published
            .first()
            .map(|p| p.kpis.iter().map(|k| k.key).collect())
            .unwrap_or_default();
        let standards: Vec<ShareBar> = keys
            .iter()
            .map(|key| {
                let met = |m: published::Met| {
                    self.published
                        .iter()
                        .filter(|p| p.kpi(key).is_some_and(|k| k.met == m))
                        .count() as u64
                };
                let yes = met(published::Met::Yes);
                ShareBar {
                    label: crest_stats::kpis::kpi_label(key).to_string(),
                    counts: Some((yes, yes + met(published::Met::No))),
                }
            })
            .collect();
        let nations: Vec<ShareBar> = self
            .nations
            .iter()
            .map(|r| {
                let name = crest_core::Nation::parse(&r.nation)
                    .map_or(r.nation.clone(), |n| n.label().to_string());
                let place = (r.nation.clone(), String::new());
                published_share(name, r.uptake, !self.withheld.contains(&place))
            })
            .collect();
        let quintiles: Vec<ShareBar> = self
            .quintiles
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let label = match i {
                    0 => "1 (most deprived)".to_string(),
                    4 => "5 (least deprived)".to_string(),
                    _ => (i + 1).to_string(),
                };
                let shown = crate::publication_audit::group_shown(
                    DEPRIVATION,
                    &(i + 1).to_string(),
                    self.withheld,
                );
                published_share(label, *q, shown)
            })
            .collect();
        let shown = |b: &ShareBar| {
            b.counts
                .filter(|c| c.1 > 0)
                .map(|(k, n)| (b.label.clone(), k as f64 / n as f64))
        };
        let lowest = quintiles
            .iter()
            .filter_map(shown)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        let highest = quintiles
            .iter()
            .filter_map(shown)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let patients = ShareAxis {
            label: "share who started core rehabilitation",
            of: "referred",
            none: "nobody referred",
            intervals: true,
        };
        html! {
            p {
                (cell_words("", &count(n.referred))) " patients were referred to cardiac \
                 rehabilitation and " (cell_words("", &count(n.started)))
                " started a core programme: an uptake of "
                (percentage(n.started, n.referred)) "."
            }
            ul {
                li {
                    (graded("green")) " of " (self.programmes) " programmes met all seven standards (green); "
                    (graded("amber")) " met four to six (amber) and " (graded("red")) " three or fewer (red)."
                }
                @if let (Some(lo), Some(hi)) = (&lowest, &highest) {
                    li {
                        "Uptake was lowest in deprivation quintile " (lo.0) ", " (crate::html::pct(Some(lo.1)))
                        ", and highest in quintile " (hi.0) ", " (crate::html::pct(Some(hi.1))) "."
                    }
                }
                li {
                    (self.outliers.0) " programmes were outside the 99.8% funnel limits (alarm) on at \
                     least one of the four funnel plots, and " (self.outliers.1)
                    " more were outside the 95% limits only (alert). Funnel limits: "
                    (self.method.label()) "."
                }
            }
            (column_chart("r-glance-grades", "Programmes by grade", "Grade", "Programmes", &grades))
            (share_bars(
                "r-glance-standards",
                "Programmes meeting each standard, of those it could be assessed for",
                &standards,
                &ShareAxis {
                    label: "share of programmes meeting the standard",
                    of: "programmes assessed",
                    none: "no programme could be assessed",
                    intervals: false,
                },
                None,
            ))
            (share_bars("r-glance-nations", "Uptake by nation", &nations, &patients, national_uptake))
            (share_bars(
                "r-glance-deprivation",
                "Uptake by deprivation quintile (1 = most deprived)",
                &quintiles,
                &patients,
                national_uptake,
            ))
            @if let Some(f) = &self.funnel { (f) }
            p class="note" {
                "Patients' counts are rounded to the nearest 5 and shares computed from the rounded \
                 counts; a group of 1 to 7 is not drawn. Programme counts are exact."
            }
        }
    }
}

/// The methods appendix: the cohort, the KPIs with the thresholds used, the statistics and
/// disclosure control.
fn methods(from: &str, to: &str, thresholds: &Thresholds, method: Method) -> Vec<Part> {
    use crest_core::Nation::{England, NorthernIreland, Wales};
    let by_nation = |pick: &dyn Fn(&crest_stats::kpis::NationThresholds) -> f64| {
        format!(
            "England {}, Wales {}, Northern Ireland {}",
            t(thresholds, England, pick),
            t(thresholds, Wales, pick),
            t(thresholds, NorthernIreland, pick)
        )
    };
    vec![
        Part {
            title: "Cohort",
            body: html! {
                p {
                    "Episodes whose referral date falls from " (from) " to " (to) ", as submitted to the \
                     national audit. Patients who asked to be left out, and those covered by the National \
                     Data Opt-out, are never submitted. Started = has a start date of core rehabilitation. \
                     Uptake = started / referred. Completion = started episodes with status completed / \
                     started."
                }
            },
        },
        Part {
            title: "Priority groups",
            body: html! {
                p {
                    "MI = initiating event STEMI, NSTEMI or unspecified MI. In order: CABG (treatment \
                     CABG); MI/PCI (MI and PCI); PCI (not MI, PCI); MI (MI treated with medicines only); heart failure; other."
                }
            },
        },
        Part {
            title: "The seven KPIs (NCP_CR) and thresholds used",
            body: html! {
                ol {
                    li { "Multidisciplinary team: at least " (thresholds.mdt) " distinct professions in the staffing return." }
                    li { "Priority groups: all " (thresholds.priority_groups) " of MI, MI/PCI, PCI, CABG and heart failure offered." }
                    li { "Duration: median days from start to end of core rehabilitation at least " (thresholds.duration) "." }
                    li { "Assessment 1: share of those started with an assessment 1 date at least " (by_nation(&|n| n.assessment1)) "." }
                    li { "Wait for CABG: median days from referral to start at most " (by_nation(&|n| n.wait_cabg)) "." }
                    li { "Wait for MI/PCI (MI, MI/PCI and PCI): median at most " (by_nation(&|n| n.wait_mi_pci)) "." }
                    li {
                        "Assessment 2: among those started with assessment 1 and completed, share with \
                         assessment 2 within 140 days of assessment 1 at least "
                        (t(thresholds, England, |n| n.assessment2)) "."
                    }
                }
                p {
                    "Grade: 7 met green, 4 to 6 amber, 3 or fewer red. A standard based on 1 to 7 patients \
                     (its number of patients, numerator or denominator) is too few to assess; KPIs met \
                     counts the assessable standards met, and a grade is published only where it is the \
                     same whatever the standards too few to assess would show (otherwise withheld). A \
                     programme with no referrals in the period has no grade."
                }
            },
        },
        Part {
            title: "Statistics",
            body: html! {
                p {
                    "Medians are the middle value (the mean of the two middle values for an even count); \
                     quartiles interpolate linearly. Intervals for proportions are Wilson score intervals \
                     (z = " (Z95) "). Funnel plot limits are the Wilson interval of the proportion pooled \
                     over every programme at each denominator, at 95% (z = " (Z95) ", alert) and 99.8% \
                     (z = " (Z998) ", alarm); positions are decided on exact counts. The slope index of \
                     inequality is the weighted least-squares slope of quintile uptake on the mid-point of \
                     each quintile's cumulative share of referrals (0 = most deprived), weighted by \
                     referrals. Outcomes are mean paired changes from assessment 1 to 2 with 95% \
                     t-intervals; HADS of 8 or more counts as symptoms present."
                }
            },
        },
        Part {
            title: "Overdispersion",
            body: html! {
                p {
                    "When programmes vary more than chance alone allows, most fall outside plain limits. \
                     Following Spiegelhalter (2005), each programme's z-score is (p − p₀) / √(p₀(1 − p₀)/n); \
                     the 10% most extreme at each end are pulled in to the 10th and 90th percentiles \
                     (winsorised), and φ is the mean of their squares. Iφ, over I programmes, is tested \
                     against χ² on I − 1 degrees of freedom; by default the limits are adjusted only \
                     where that test finds more variation than chance at the 5% level, and then by the \
                     multiplicative method. The multiplicative method uses Wilson limits at the \
                     effective sample size n/φ; the additive method adds a between-programme variance \
                     τ² = (Iφ − (I − 1)) / (Σw − Σw²/Σw), w = n / (p₀(1 − p₀)), and uses Wilson limits \
                     at the n whose binomial variance p₀(1 − p₀)/n equals p₀(1 − p₀)/n + τ². Either way \
                     an adjusted limit is never inside the plain one. Where φ ≤ 1 (or τ² = 0) the plain \
                     limits stand. "
                    strong { "This report uses: " (method.label().to_lowercase()) "." }
                    " Each funnel plot's caption gives its test, and its φ or τ where the limits were adjusted."
                }
            },
        },
        Part {
            title: "Disclosure control",
            body: html! {
                p {
                    "A count of 0 stays 0; 1 to 7 is shown as *; other counts are rounded to the nearest \
                     5. Totals are rounded from exact sums. Percentages use the rounded counts and are * \
                     when either count is. Means, medians and intervals based on 1 to 7 people are *. \
                     Every table is also published as CSV with the same values."
                }
                p {
                    "A standard's result (met or not) is shown only where the published counts decide \
                     it. A rounded count stands for any count within 2 of it (10 for 8 to 12), and * for \
                     1 to 7; where every proportion those counts allow is on the same side of the \
                     standard, the result is shown (3 of 15 cannot reach 60%, so that is shown as not \
                     met, though the count is *); where they allow both, the result is * (too close to \
                     tell once rounded), so a result never contradicts the percentage beside it. A grade \
                     is shown only where it is the same whatever the hidden results are, otherwise it \
                     is withheld. A programme whose funnel counts are * is not drawn, and its level is \
                     published as too few: a level beside hidden counts would narrow them. The same \
                     holds for a programme with a result too few to assess, wherever its level says more \
                     than its rounded counts do (a level allows only some of the exact counts a rounded \
                     count stands for, and those could decide the hidden result)."
                }
                p {
                    "Before this report was made, every count it publishes about patients was checked \
                     together with what relates them, by integer programming: each programme's patients \
                     referred, started, completed and assessed (none can exceed the count it is part \
                     of); the regions', nations' and national totals (each the sum of its programmes); \
                     uptake by each group (the groups add up to the national total); and each funnel \
                     level (which allows only some exact counts behind the rounded ones). No hidden \
                     count can be narrowed to one value, and no hidden result or withheld grade can be \
                     worked out. Where a total would give a hidden count away, that total is withheld \
                     and shown as * as well (first the programme's region, then another region of the \
                     nation, so that the withheld region cannot be found by subtraction either), and \
                     the check is run again; a report that does not pass is not made. Commissioners' \
                     and researchers' own figures come only by financial year and quarter, so that no \
                     two of them can be subtracted."
                }
            },
        },
    ]
}

fn t(
    thresholds: &Thresholds,
    nation: crest_core::Nation,
    pick: impl Fn(&crest_stats::kpis::NationThresholds) -> f64,
) -> String {
    thresholds
        .nations
        .get(&nation)
        .map_or("–".into(), |n| crest_core::record::format_num(pick(n)))
}

/// Runs headless Chromium (`CHROMIUM`, else `chromium` on the path) on a local HTML file with
/// extra arguments.
fn chromium(html_file: &Path, args: &[String]) -> Result<std::process::Output, String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let html =
        std::fs::canonicalize(html_file).map_err(|e| format!("{}: {e}", html_file.display()))?;
    // A profile of its own, so several can print at once; no network of its own either.
    let profile = html_file.with_extension("profile");
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", html.display()))
        .output()
        .map_err(|e| {
            format!("this needs Chromium ({chromium}: {e}); install it (apt-get install chromium)")
        });
    let _ = std::fs::remove_dir_all(&profile);
    out
}

/// The number of pages of a PDF as Chromium writes it (one `/Type /Page` object per page).
fn pdf_pages(pdf: &[u8]) -> usize {
    let needle = b"/Type /Page";
    pdf.windows(needle.len() + 1)
        .filter(|w| w.starts_with(needle) && !w[needle.len()].is_ascii_alphanumeric())
        .count()
}

impl AnnualReport {
    /// Prints the report to PDF with its contents page numbered, and says how many pages it
    /// has. A draft is printed first, whose link destinations tell the page each section
    /// starts on; those pages go into the contents, and the report is printed again (tagged,
    /// for screen readers). Each section starts on a new page and the contents fill one page,
    /// so the numbers do not move the sections. Where the draft cannot be read, each section is
    /// printed alone to count its pages instead.
    pub fn pdf(&self, pdf: &Path) -> Result<usize, ReportError> {
        self.pdf_with_steps(pdf, &mut |_, _, _| {})
    }

    /// As [`AnnualReport::pdf`], telling `step` (step, of steps, what) as each print starts:
    /// Chromium says nothing while it prints, so the steps are the progress there is.
    pub fn pdf_with_steps(
        &self,
        pdf: &Path,
        step: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<usize, ReportError> {
        self.pdf_text(pdf, step).map_err(ReportError::Print)
    }

    fn pdf_text(
        &self,
        pdf: &Path,
        step: &mut dyn FnMut(usize, usize, &str),
    ) -> Result<usize, String> {
        let dir = pdf.with_extension("parts");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        step(1, 2, "printing a draft to number the contents");
        let printed = self
            .pages_from_destinations(&dir)
            .or_else(|_| {
                step(1, 2, "printing each section alone to count its pages");
                self.pages_section_by_section(&dir)
            })
            .and_then(|pages| {
                step(2, 2, "printing the report");
                let all: Vec<&ReportSection> = self.sections.iter().collect();
                let whole = dir.join("report.html");
                std::fs::write(&whole, self.document(&all, true, &pages))
                    .map_err(|e| e.to_string())?;
                print_pdf_text(&whole, pdf, &[])
            });
        let _ = std::fs::remove_dir_all(&dir);
        printed?;
        Ok(pdf_pages(&std::fs::read(pdf).map_err(|e| e.to_string())?))
    }

    /// Each section's first page, from one untagged (so quicker) print of the whole report:
    /// the contents link to every section, so the PDF names each section's page among its
    /// destinations.
    fn pages_from_destinations(&self, dir: &Path) -> Result<HashMap<&'static str, usize>, String> {
        let all: Vec<&ReportSection> = self.sections.iter().collect();
        let (file, out) = (dir.join("draft.html"), dir.join("draft.pdf"));
        std::fs::write(&file, self.document(&all, true, &HashMap::new()))
            .map_err(|e| e.to_string())?;
        print_pdf_text(&file, &out, &["--disable-pdf-tagging".into()])?;
        let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
        let found = pdf_destinations(&bytes);
        self.sections
            .iter()
            .map(|s| {
                found
                    .get(s.id)
                    .map(|page| (s.id, *page))
                    .ok_or_else(|| format!("the draft PDF has no destination {:?}", s.id))
            })
            .collect()
    }

    /// Each section's first page, by printing each section alone (side by side, one per core:
    /// Chromium's start-up dominates each print) and counting its pages.
    fn pages_section_by_section(&self, dir: &Path) -> Result<HashMap<&'static str, usize>, String> {
        let counts: Vec<std::sync::Mutex<Option<Result<usize, String>>>> = self
            .sections
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(section) = self.sections.get(i) else {
                        return;
                    };
                    let alone = self.document(&[section], false, &HashMap::new());
                    let (file, out) = (
                        dir.join(format!("{i}-{}.html", section.id)),
                        dir.join(format!("{i}-{}.pdf", section.id)),
                    );
                    let pages = std::fs::write(&file, alone)
                        .map_err(|e| e.to_string())
                        .and_then(|()| print_pdf_text(&file, &out, &[]))
                        .and_then(|()| std::fs::read(&out).map_err(|e| e.to_string()))
                        .map(|b| pdf_pages(&b));
                    *counts[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(pages);
                });
            }
        });
        let mut pages = HashMap::new();
        let mut page = 3; // the title page, then the contents
        for (section, count) in self.sections.iter().zip(counts) {
            let taken = count
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| Err("a section was not printed".into()))?;
            pages.insert(section.id, page);
            page += taken.max(1);
        }
        Ok(pages)
    }
}

/// The objects of a PDF as Chromium (Skia) writes them: object number → its dictionary (the
/// bytes after `N 0 obj` up to `stream` or `endobj`). Skia writes dictionaries uncompressed
/// and without object streams.
fn pdf_objects(pdf: &[u8]) -> HashMap<u32, &[u8]> {
    let mut out = HashMap::new();
    let needle = b" 0 obj";
    let mut i = 0;
    while let Some(at) = pdf[i..].windows(needle.len()).position(|w| w == needle) {
        let start = i + at;
        i = start + needle.len();
        let digits = pdf[..start]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let before = start - digits;
        if digits == 0 || (before > 0 && !pdf[before - 1].is_ascii_whitespace()) {
            continue;
        }
        let Some(number) = std::str::from_utf8(&pdf[before..start])
            .ok()
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        // Up to `endobj`, then the dictionary alone (before any stream): each byte is read a
        // bounded number of times however many objects there are.
        let rest = &pdf[i..];
        let end = rest
            .windows(6)
            .position(|x| x == b"endobj")
            .unwrap_or(rest.len());
        let body = &rest[..end];
        let dict = body
            .windows(6)
            .position(|x| x == b"stream")
            .unwrap_or(body.len());
        out.insert(number, &body[..dict]);
        i += end;
    }
    out
}

/// The object number after `key` in a dictionary (`/Pages 21 0 R` → 21).
fn pdf_ref(dict: &[u8], key: &[u8]) -> Option<u32> {
    let at = dict.windows(key.len()).position(|w| w == key)? + key.len();
    let text = std::str::from_utf8(&dict[at..]).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// The object numbers in a dictionary's array after `key` (`/Kids [2 0 R 6 0 R]` → 2, 6).
fn pdf_refs(dict: &[u8], key: &[u8]) -> Vec<u32> {
    let Some(at) = dict.windows(key.len()).position(|w| w == key) else {
        return Vec::new();
    };
    let rest = &dict[at + key.len()..];
    let (Some(open), Some(close)) = (
        rest.iter().position(|b| *b == b'['),
        rest.iter().position(|b| *b == b']'),
    ) else {
        return Vec::new();
    };
    let words: Vec<&str> = std::str::from_utf8(rest.get(open + 1..close).unwrap_or_default())
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    words
        .chunks(3)
        .filter(|w| w.len() == 3 && w[2] == "R")
        .filter_map(|w| w[0].parse().ok())
        .collect()
}

/// The pages (from 1) of a PDF's named destinations, by name: Chromium lists every link
/// target of the document (`/Dests` of the catalog: `/summary [25 0 R /XYZ …]`).
fn pdf_destinations(pdf: &[u8]) -> HashMap<String, usize> {
    let objects = pdf_objects(pdf);
    let Some(catalog) = objects
        .values()
        .find(|d| d.windows(14).any(|w| w == b"/Type /Catalog"))
    else {
        return HashMap::new();
    };
    // The page tree, walked in order: the object numbers of its pages.
    let mut pages = Vec::new();
    let mut stack: Vec<u32> = pdf_ref(catalog, b"/Pages ").into_iter().collect();
    while let Some(node) = stack.pop() {
        let Some(dict) = objects.get(&node) else {
            continue;
        };
        let kids = pdf_refs(dict, b"/Kids");
        if kids.is_empty() {
            pages.push(node);
        } else {
            stack.extend(kids.into_iter().rev());
        }
    }
    let Some(dests) = pdf_ref(catalog, b"/Dests ").and_then(|n| objects.get(&n)) else {
        return HashMap::new();
    };
    let text = String::from_utf8_lossy(dests);
    let mut found = HashMap::new();
    // `/name [N 0 R /XYZ x y z]`, one after another.
    for entry in text.split('/').filter(|e| !e.is_empty()) {
        let mut words = entry.split_whitespace();
        let (Some(name), Some(first)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(page) = first.strip_prefix('[').and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(index) = pages.iter().position(|p| *p == page) {
            found.insert(name.trim_start_matches("<<").to_string(), index + 1);
        }
    }
    found
}

/// Prints an HTML report to PDF with headless Chromium. Fonts are embedded in the HTML, so the
/// PDF is the same wherever it is made.
pub fn print_pdf(html_file: &Path, pdf: &Path) -> Result<(), ReportError> {
    print_pdf_text(html_file, pdf, &[]).map_err(ReportError::Print)
}

fn print_pdf_text(html_file: &Path, pdf: &Path, extra: &[String]) -> Result<(), String> {
    let mut args = vec![
        "--no-pdf-header-footer".to_string(),
        format!("--print-to-pdf={}", pdf.display()),
    ];
    args.extend_from_slice(extra);
    let out = chromium(html_file, &args).map_err(|e| format!("{e}, or write --out FILE.html"))?;
    if !out.status.success() || !pdf.exists() {
        return Err(format!(
            "Chromium could not print the PDF: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report shows a section under an h2 and its parts under h3; the site shows it as a
    /// page whose h1 is its title, so its parts are h2 (headings never skip a level).
    #[test]
    fn a_sections_parts_take_the_heading_level_they_are_shown_at() {
        let s = ReportSection {
            id: "methods",
            title: "Methods",
            body: html! { p { "Intro" } },
            parts: vec![Part {
                title: "Cohort <all>",
                body: html! { p { "Episodes" } },
            }],
        };
        assert_eq!(
            s.content(3).into_string(),
            "<p>Intro</p><h3>Cohort &lt;all&gt;</h3><p>Episodes</p>"
        );
        assert_eq!(
            s.content(2).into_string(),
            "<p>Intro</p><h2>Cohort &lt;all&gt;</h2><p>Episodes</p>"
        );
    }

    /// A PDF laid out as Chromium's Skia writes one: a page tree of two levels, a stream
    /// that happens to hold "0 obj", and the catalog's named destinations.
    #[test]
    fn the_destinations_give_each_section_its_page() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<</Title (report.html)>>\nendobj\n\
            2 0 obj\n<</Type /Page\n/Parent 20 0 R>>\nendobj\n\
            3 0 obj\n<</Length 4>> stream\nx 0 obj\nendstream\nendobj\n\
            6 0 obj\n<</Type /Page\n/Parent 20 0 R>>\nendobj\n\
            9 0 obj\n<</Type /Page\n/Parent 21 0 R>>\nendobj\n\
            11 0 obj\n<</Type /Page\n/Parent 21 0 R>>\nendobj\n\
            20 0 obj\n<</Type /Pages\n/Count 2\n/Kids [2 0 R 6 0 R]>>\nendobj\n\
            21 0 obj\n<</Type /Pages\n/Count 2\n/Kids [9 0 R 11 0 R]>>\nendobj\n\
            22 0 obj\n<</Type /Pages\n/Count 4\n/Kids [20 0 R 21 0 R]>>\nendobj\n\
            58 0 obj\n<</Type /Annot\n/Subtype /Link\n/Dest /glance>>\nendobj\n\
            92 0 obj\n<</glance [6 0 R /XYZ 6 829.9 0]\n/summary [9 0 R /XYZ 6 829.9 0]\n\
            /methods [11 0 R /XYZ 6 829.9 0]>>\nendobj\n\
            93 0 obj\n<</Type /Catalog\n/Pages 22 0 R\n/Dests 92 0 R>>\nendobj\ntrailer\n";
        let found = pdf_destinations(pdf);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            (found["glance"], found["summary"], found["methods"]),
            (2, 3, 4)
        );
        assert!(pdf_destinations(b"not a pdf").is_empty());
    }

    #[test]
    fn tables_for_people_say_names_not_keys_and_group_thousands() {
        assert_eq!(
            heading("wait_mi_pci"),
            "Wait from referral to start, MI/PCI"
        );
        assert_eq!(
            heading("wait_mi_pci_met"),
            "Wait from referral to start, MI/PCI: met"
        );
        assert_eq!(heading("programme_code"), "Programme");
        assert_eq!(heading("ci_low"), "Ci low");
        assert_eq!(cell_words("referred", "92340"), "92,340");
        assert_eq!(cell_words("referred", "1000000"), "1,000,000");
        assert_eq!(cell_words("referred", "995"), "995");
        assert_eq!(cell_words("kpi", "assessment1"), "Assessment 1 recorded");
        assert_eq!(cell_words("level", "alarm_low"), "alarm low");
        assert_eq!(cell_words("programme_code", "P001"), "P001");
        assert_eq!(cell_words("uptake", "*"), "*");
    }
}
