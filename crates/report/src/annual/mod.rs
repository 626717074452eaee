//! The annual report (`crest report annual`): the national summary, every programme's KPIs
//! and grade, the funnel plots, waits, inequalities, outcomes, data quality and a methods
//! appendix, from the national store. Every figure passes through disclosure control
//! (`crest_stats::disclosure`) before it is written. The report is one self-contained HTML file
//! (fonts embedded, print styles with page numbers and repeating table headers); the PDF is that
//! file printed by headless Chromium, so both look the same on any machine.

use crate::charts::{column_chart, share_bars, ShareAxis, ShareBar};
mod glance;
mod methods;
mod pdf;
mod sections;

use crate::ReportError;
use base64::Engine;
use crest_core::{Date, Period};
use crest_stats::disclosure;
use crest_stats::funnel::{Method, Z998};
use crest_stats::kpis::{compute, Measure, ProgrammeKpis, Thresholds};
use crest_stats::published;
use crest_stats::summary::Summary;
use crest_stats::Z95;
use crest_store::NationalStore;
use glance::Glance;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::HashMap;
use std::path::Path;

const FONT_REGULAR: &[u8] = include_bytes!("../../../../assets/fonts/LiberationSans-Regular.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../../../../assets/fonts/LiberationSans-Bold.ttf");

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
        "ci_low" => "95% interval from",
        "ci_high" => "95% interval to",
        "expected" => "Eligible (expected)",
        "uptake_of_eligible" => "Started of eligible",
        "at_least_80" => "80% or more referred",
        other => return crate::words::capitalised(&other.replace('_', " ")),
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
        return crate::words::group_words(cell).into_owned();
    }
    match cell.parse::<u64>() {
        Ok(n) if !column.contains("year") => crate::words::thousands(n),
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
        let e = |source: csv::Error| ReportError::Csv {
            table: self.name.clone(),
            source,
        };
        w.write_record(&self.head).map_err(e)?;
        for r in &self.rows {
            w.write_record(
                r.iter()
                    .map(|c| crest_core::spreadsheet::safe_cell(c).into_owned()),
            )
            .map_err(e)?;
        }
        w.into_inner()
            .map_err(|x| e(csv::Error::from(x.into_error())))
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
pub(super) struct GroupUptake {
    /// Referred and started, by group, for each grouping.
    pub groups: [std::collections::BTreeMap<String, (u64, u64)>; 5],
    /// Started and referred by deprivation quintile, most deprived first.
    pub quintiles: [(u64, u64); 5],
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
    let (s, audit) = Sources::read(national, period, method)?;
    let mut tables = Vec::new();
    let mut sections = Vec::new();
    sections::summary(&s, &mut sections, &mut tables);
    let rolled = sections::places(&s, &mut sections, &mut tables);
    sections::programmes(&s, &mut sections, &mut tables);
    sections::ascertainment(&s, &mut sections, &mut tables);
    let funnels = sections::funnels(&s, &mut sections, &mut tables);
    sections::waits(&s, &mut sections, &mut tables);
    sections::inequalities(&s, &mut sections, &mut tables);
    sections::outcomes(&s, &mut sections, &mut tables);
    sections::quality(&s, &mut sections, &mut tables);
    sections::methods(&s, &mut sections, &mut tables);
    // The executive summary leads: the few numbers and charts a reader needs first.
    let [alerted, alarmed] = &funnels.flagged;
    let glance = Glance {
        national: &s.report.national,
        programmes: s.programmes.len(),
        published: &s.published,
        nations: rolled.iter().filter(|r| r.region.is_empty()).collect(),
        quintiles: s.by_group.quintiles,
        outliers: (alarmed.len(), alerted.difference(alarmed).count()),
        method,
        funnel: funnels.glance,
        withheld: &s.withheld,
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
        programme_list: s.programmes,
        sections,
        tables,
        audit,
    })
}

/// Everything the sections are drawn from: read from the national store and audited for
/// disclosure once, before anything is written.
pub(super) struct Sources {
    pub period: Period,
    pub method: Method,
    pub thresholds: Thresholds,
    pub programmes: Vec<crest_core::Programme>,
    pub report: crest_stats::kpis::KpiReport,
    /// Programme names by code.
    pub names: HashMap<String, String>,
    pub by_group: GroupUptake,
    pub outcomes: crest_store::national::OutcomePairs,
    pub held: Vec<crest_store::national::HeldSubmission>,
    pub published: Vec<published::PublishedProgramme>,
    /// Referrals and starts against the expected patients of the year's quarters.
    pub ascertainment: crest_stats::ascertainment::Ascertainment,
    /// Pooled lines withheld to protect others (the disclosure audit).
    pub withheld: std::collections::BTreeSet<crate::publication_audit::Place>,
    /// The period's first and last days, as ISO dates.
    pub from: String,
    pub to: String,
}

impl Sources {
    /// Reads the period's KPIs, uptake by group, outcomes and submissions, and runs the
    /// disclosure audit: nothing is written that it cannot pass, and it says which pooled
    /// counts must be withheld to protect others.
    fn read(
        national: &mut NationalStore,
        period: Period,
        method: Method,
    ) -> Result<(Sources, crate::publication_audit::AuditSummary), ReportError> {
        let e = ReportError::Store;
        let programmes = national.programmes().map_err(e)?;
        let episodes = national
            .kpi_episodes(period.from, period.to, &programmes)
            .map_err(e)?;
        let thresholds = Thresholds::default();
        let report = compute(&programmes, &episodes, period, &thresholds);
        let ascertainment = crest_stats::ascertainment::ascertainment(
            &national.expected().map_err(e)?,
            &programmes,
            &episodes,
            period.from,
            period.to,
        );
        let names: HashMap<String, String> = programmes
            .iter()
            .map(|p| (p.code.clone(), p.name.clone()))
            .collect();
        // Uptake by each grouping, counted as the facts stream past (a million of them are
        // never held at once).
        let mut by_group = GroupUptake::default();
        national
            .each_equity_fact(None, period.from, period.to, &mut |f| {
                by_group.add(&f);
                Ok(())
            })
            .map_err(e)?;
        let outcomes = national.outcome_pairs(period.from, period.to).map_err(e)?;
        let held = national.submissions().map_err(e)?;
        let published: Vec<_> = report.programmes.iter().map(published::programme).collect();
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
        let sources = Sources {
            period,
            method,
            thresholds,
            programmes,
            report,
            names,
            by_group,
            outcomes,
            held,
            published,
            ascertainment,
            withheld,
            from: period.from.to_string(),
            to: period.to.to_string(),
        };
        Ok((sources, audit))
    }

    /// A pooled count as published: `*` where the audit withholds its line.
    fn pooled(&self, place: (&str, &str), exact: u64) -> disclosure::Cell {
        crate::publication_audit::pooled_cell(
            &(place.0.to_string(), place.1.to_string()),
            &self.withheld,
            exact,
        )
    }

    /// The slope index of inequality across deprivation quintiles, in percentage points.
    fn sii(&self) -> disclosure::Statistic {
        let quintiles = self.by_group.quintiles;
        let referred_known: u64 = quintiles.iter().map(|q| q.1).sum();
        let sii = crest_stats::funnel::slope_index(&quintiles).map(|s| s * 100.0);
        disclosure::statistic(sii.map(|s| (s * 10.0).round() / 10.0), referred_known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::pdf_destinations;

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

    /// A PDF laid out as Chromium's writes one: a page tree of two levels, and the catalog's
    /// named destinations pointing at pages.
    #[test]
    fn the_destinations_give_each_section_its_page() {
        use lopdf::{dictionary, Document, Object};
        let mut doc = Document::with_version("1.4");
        let root = doc.new_object_id();
        let (left, right) = (doc.new_object_id(), doc.new_object_id());
        let page = |doc: &mut Document, parent| {
            doc.add_object(dictionary! { "Type" => "Page", "Parent" => parent })
        };
        let p: Vec<_> = [left, left, right, right]
            .into_iter()
            .map(|parent| page(&mut doc, parent))
            .collect();
        let node = |kids: &[lopdf::ObjectId], parent: Option<lopdf::ObjectId>| {
            let mut d = dictionary! {
                "Type" => "Pages",
                "Count" => kids.len() as i64,
                "Kids" => kids.iter().map(|k| Object::Reference(*k)).collect::<Vec<_>>(),
            };
            if let Some(parent) = parent {
                d.set("Parent", parent);
            }
            Object::Dictionary(d)
        };
        doc.objects.insert(left, node(&p[..2], Some(root)));
        doc.objects.insert(right, node(&p[2..], Some(root)));
        let mut top = node(&[left, right], None);
        if let Object::Dictionary(d) = &mut top {
            d.set("Count", 4);
        }
        doc.objects.insert(root, top);
        let at = |page| Object::Array(vec![Object::Reference(page), "XYZ".into()]);
        let dests = doc.add_object(dictionary! {
            "glance" => at(p[1]),
            "summary" => at(p[2]),
            "methods" => at(p[3]),
        });
        let catalog = doc.add_object(dictionary! {
            "Type" => "Catalog",
            "Pages" => root,
            "Dests" => dests,
        });
        doc.trailer.set("Root", catalog);
        let mut pdf = Vec::new();
        doc.save_to(&mut pdf).unwrap();
        let found = pdf_destinations(&pdf);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            (found["glance"], found["summary"], found["methods"]),
            (2, 3, 4)
        );
        assert_eq!(crate::print::pdf_pages(&pdf), 4);
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
        assert_eq!(heading("ci_low"), "95% interval from");
        assert_eq!(heading("at_least_80"), "80% or more referred");
        assert_eq!(cell_words("referred", "92340"), "92,340");
        assert_eq!(cell_words("referred", "1000000"), "1,000,000");
        assert_eq!(cell_words("referred", "995"), "995");
        assert_eq!(cell_words("kpi", "assessment1"), "Assessment 1 recorded");
        assert_eq!(cell_words("level", "alarm_low"), "alarm low");
        assert_eq!(cell_words("programme_code", "P001"), "P001");
        assert_eq!(cell_words("uptake", "*"), "*");
    }
}
