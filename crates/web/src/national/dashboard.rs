//! The national dashboard for national analysts: every programme's seven KPIs, grade and
//! numbers for a period, filterable by nation and region and sortable, with funnel plots of
//! the proportion KPIs (uptake, assessment 1, assessment 2) as server-side SVG with text
//! alternatives. Computed from the national store by the same KPI engine as everywhere else.

use crate::app::access::Analyst;
use crate::app::cache::{cache_key, NationalReport};
use crate::app::table::{Cell, Column, Table, View};
use crate::app::{html_page, App, WebError};
use crate::html::{page, pct, url_encode};
use crate::national::over_time;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Period, Programme};
use crest_report::charts::{funnel_plot_for, wait_plot, FUNNELS};
use crest_stats::funnel::Position;
use crest_stats::kpis::{compute, Measure, ProgrammeKpis, Thresholds};
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/dashboard", get(dashboard))
        .route("/national/funnel.{format}", get(funnel_download))
        .route("/national/programmes.{format}", get(programmes_download))
        .route("/national/dashboard.{format}", get(tables_download))
        .route("/national/waits.{format}", get(waits_download))
}

/// The filters of the national pages.
#[derive(serde::Deserialize, Default, Clone)]
pub(crate) struct Filters {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub nation: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub sort: String,
    /// The funnel limits' overdispersion method (`plain` unless chosen).
    #[serde(default)]
    pub method: String,
    /// The KPI whose funnel the dashboard leads with (`uptake` unless chosen).
    #[serde(default)]
    pub kpi: String,
    /// Only programmes of this grade in the table.
    #[serde(default)]
    pub grade: String,
    /// Only programmes at this level of the chosen funnel in the table: `outside`, `alert`,
    /// `alarm` or `within`.
    #[serde(default)]
    pub level: String,
    /// Outliers: only `low` or `high`.
    #[serde(default)]
    pub direction: String,
    /// Outliers: only findings whose case is at this stage (`none`: no case yet).
    #[serde(default)]
    pub stage: String,
}

impl Filters {
    /// The page's address with these filters.
    fn href(&self, from: crest_core::Date, to: crest_core::Date) -> String {
        format!("/national/dashboard?{}", self.query(from, to))
    }

    /// These filters as an address's query (for the page's downloads).
    fn query(&self, from: crest_core::Date, to: crest_core::Date) -> String {
        let mut q = format!("from={from}&to={to}");
        for (k, v) in [
            ("nation", &self.nation),
            ("region", &self.region),
            ("sort", &self.sort),
            ("method", &self.method),
            ("kpi", &self.kpi),
            ("grade", &self.grade),
            ("level", &self.level),
        ] {
            if !v.is_empty() {
                q.push_str(&format!("&{k}={}", url_encode(v)));
            }
        }
        q
    }

    /// The chosen funnel method; a clear 400 for one crest does not have.
    pub fn method(&self) -> Result<crest_stats::funnel::Method, WebError> {
        if self.method.trim().is_empty() {
            return Ok(crest_stats::funnel::Method::Auto);
        }
        crest_stats::funnel::Method::parse(&self.method).ok_or_else(|| {
            WebError::BadRequest(
                "That funnel method is not one crest has: choose auto, plain, multiplicative or additive."
                    .into(),
            )
        })
    }
}

/// The choice of funnel limits, for the period forms of the pages that draw or list outliers.
pub(crate) fn method_choice(chosen: crest_stats::funnel::Method) -> maud::Markup {
    maud::html! {
        div {
            label for="method" { "Funnel limits" }
            select id="method" name="method" {
                @for m in crest_stats::funnel::Method::ALL {
                    option value=(m.code()) selected[m == chosen] { (m.label()) }
                }
            }
        }
    }
}

/// One proportion KPI of a programme as (numerator, denominator).
pub(crate) fn proportion(p: &ProgrammeKpis, key: &str) -> (u64, u64) {
    p.proportion(key)
}

/// Nation → region roll-up of the rows shown: pooled uptake, assessment 1 and 2, and grades.
fn rollup_rows(
    rows: &[&ProgrammeKpis],
    programmes: &[Programme],
) -> Vec<crest_stats::kpis::RollupRow> {
    let by_code: std::collections::HashMap<&str, &Programme> =
        programmes.iter().map(|p| (p.code.as_str(), p)).collect();
    crest_stats::kpis::rollup(rows, |code| {
        by_code
            .get(code)
            .map_or(String::new(), |p| p.region.clone())
    })
}

/// A proportion with four decimals for a download (empty without a denominator).
pub(crate) fn exact((n, d): (u64, u64)) -> String {
    if d == 0 {
        String::new()
    } else {
        format!("{:.4}", n as f64 / d as f64)
    }
}

/// The columns of a pooled table after its own leading ones: referred, started, uptake,
/// assessment 1 and 2, and the grades (together on the page, one column each in a file).
fn pooled_columns(mut leading: Vec<Column>) -> Vec<Column> {
    leading.extend([
        Column::numbers("Referred", "referred"),
        Column::file_only("started"),
        Column::numbers("Uptake", "uptake"),
        Column::numbers("Assessment 1", "assessment1"),
        Column::numbers("Assessment 2", "assessment2"),
        Column::words("Green / amber / red", "grades").page_only(),
        Column::file_only("green"),
        Column::file_only("amber"),
        Column::file_only("red"),
    ]);
    leading
}

/// Pooled figures as cells, in the order of `pooled_columns`.
fn pooled_cells(
    [uptake, a1, a2]: [(u64, u64); 3],
    [g, a, r]: [usize; 3],
) -> impl Iterator<Item = Cell> {
    let share = |(n, d): (u64, u64)| Cell::proportion((d > 0).then(|| n as f64 / d as f64));
    [
        Cell::count(uptake.1),
        Cell::count(uptake.0),
        share(uptake),
        share(a1),
        share(a2),
        Cell::text(format!("{g} / {a} / {r}")),
        Cell::count(g as u64),
        Cell::count(a as u64),
        Cell::count(r as u64),
    ]
    .into_iter()
}

/// The roll-up by nation, then region (regions under their nation): one model for the page and
/// its downloads.
fn places_table(sums: &[crest_stats::kpis::RollupRow], query: &str) -> Table {
    Table {
        caption: "Pooled figures by nation, then region".into(),
        rows_are: "nations and regions".into(),
        columns: pooled_columns(vec![
            Column::words("Nation / region", "nation"),
            Column::file_only("region"),
            Column::numbers("Programmes", "programmes"),
        ]),
        rows: sums
            .iter()
            .map(|s| {
                let place = if s.region.is_empty() {
                    let nation = crest_core::Nation::parse(&s.nation)
                        .map_or(s.nation.replace('_', " "), |n| n.label().to_string());
                    Cell::coded(nation, s.nation.clone()).strong(true)
                } else {
                    // Regions are indented under their nation.
                    Cell::coded(format!("\u{a0}\u{a0}{}", s.region), s.nation.clone())
                };
                [
                    place,
                    Cell::text(s.region.clone()),
                    Cell::count(s.programmes as u64),
                ]
                .into_iter()
                .chain(pooled_cells(
                    [s.uptake, s.assessment1, s.assessment2],
                    s.grades,
                ))
                .collect()
            })
            .collect(),
        downloads: Some(
            ["csv", "xlsx"].map(|f| format!("/national/dashboard.{f}?table=places&{query}")),
        ),
        empty: "No programme matches these filters.".into(),
    }
}

/// The programmes the filters choose, pooled by year: one model for the page and its downloads.
fn years_table(years: &[YearRow], query: &str) -> Table {
    Table {
        caption: "The programmes shown, pooled, by year".into(),
        rows_are: "years".into(),
        columns: pooled_columns(vec![
            Column::words("Period", "period_from"),
            Column::file_only("period_to"),
        ]),
        rows: years
            .iter()
            .map(|(p, shares, grades)| {
                [
                    Cell::coded(
                        format!("{} to {}", p.from.long(), p.to.long()),
                        p.from.to_string(),
                    ),
                    Cell::text(p.to.to_string()),
                ]
                .into_iter()
                .chain(pooled_cells(*shares, *grades))
                .collect()
            })
            .collect(),
        downloads: Some(
            ["csv", "xlsx"].map(|f| format!("/national/dashboard.{f}?table=years&{query}")),
        ),
        empty: "No programme matches these filters.".into(),
    }
}

/// The wait plots: (element id, KPI, title).
const WAITS: [(&str, &str, &str); 2] = [
    (
        "w-cabg",
        "wait_cabg",
        "Median wait, referral to start: CABG",
    ),
    (
        "w-mipci",
        "wait_mi_pci",
        "Median wait, referral to start: MI/PCI",
    ),
];

/// A wait plot of the dashboard as SVG or PNG, with the page's filters.
async fn waits_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(q): Query<PngQuery>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &q.filters)?;
    let (id, key, title) = WAITS
        .into_iter()
        .find(|w| w.1 == q.kpi)
        .ok_or_else(|| WebError::BadRequest("Choose a wait: wait_cabg or wait_mi_pci.".into()))?;
    let a = app.clone();
    let chart = app
        .national(move |n| {
            let nr = a.national_report(n, period)?;
            let rows = sorted_rows(&nr.report, &nr.programmes, &q.filters);
            Ok(wait_plot(id, key, title, &rows))
        })
        .await?;
    crate::app::chart_download(
        &chart,
        &format,
        &format!("{key}-{}-{}", period.from, period.to),
        "No programme has a median wait to draw for this period and these filters.",
    )
}

/// One year of the "Year on year" table: the period, (numerator, denominator) of uptake,
/// assessment 1 and assessment 2, and the programmes graded green, amber and red.
type YearRow = (Period, [(u64, u64); 3], [usize; 3]);

/// The programmes the filters choose, pooled, for each period of `reports`.
fn year_on_year(periods: &[Period], reports: &[Arc<NationalReport>], f: &Filters) -> Vec<YearRow> {
    periods
        .iter()
        .zip(reports)
        .map(|(p, r)| {
            let rows = chosen_rows(&r.report, &r.programmes, f);
            let sum = |key: &str| {
                rows.iter().fold((0u64, 0u64), |(a, b), k| {
                    let (x, y) = proportion(k, key);
                    (a + x, b + y)
                })
            };
            // A programme nobody was referred to has no grade ("no data"), not red.
            let grade = |g: &str| rows.iter().filter(|k| k.grade_shown() == g).count();
            (
                *p,
                [sum("uptake"), sum("assessment1"), sum("assessment2")],
                [grade("green"), grade("amber"), grade("red")],
            )
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct TableQuery {
    /// `places` (by nation and region) or `years` (year on year).
    #[serde(default)]
    table: String,
    #[serde(flatten)]
    filters: Filters,
}

/// The dashboard's roll-up by nation and region, or its year-on-year table, as CSV or XLSX
/// with the page's filters (exact values).
async fn tables_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(q): Query<TableQuery>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &q.filters)?;
    let a = app.clone();
    let name = format!("{}-{}-{}", q.table, period.from, period.to);
    app.national(move |n| {
        let f = &q.filters;
        let query = f.query(period.from, period.to);
        match q.table.as_str() {
            "places" => {
                let nr = a.national_report(n, period)?;
                let rows = sorted_rows(&nr.report, &nr.programmes, f);
                Ok(places_table(&rollup_rows(&rows, &nr.programmes), &query))
            }
            "years" => {
                let three = [period.earlier(2), period.earlier(1), period];
                let reports = a.national_reports(n, &three)?;
                Ok(years_table(&year_on_year(&three, &reports, f), &query))
            }
            _ => Err(WebError::BadRequest(
                "Choose a table to download: places or years.".into(),
            )),
        }
    })
    .await?
    .download(&name, &format)
}

/// The funnel plot of `key` over the programmes shown, exactly as the page draws it and its
/// downloads hold it (`id` names the chart's elements, `outliers` links to the outliers list),
/// with the method in force (the default resolved).
fn funnel(
    rows: &[&ProgrammeKpis],
    (key, title): (&str, &str),
    method: crest_stats::funnel::Method,
    id: &str,
    outliers: Option<&str>,
) -> (maud::Markup, crest_stats::funnel::Method) {
    let points: Vec<(String, u64, u64)> = rows
        .iter()
        .map(|k| {
            let (num, den) = proportion(k, key);
            (k.programme_code.clone(), num, den)
        })
        .collect();
    let exact: Vec<(u64, u64)> = points.iter().map(|p| (p.1, p.2)).collect();
    let used = crest_stats::funnel::Fit::new(&exact, method).map_or(method, |f| f.method);
    (
        funnel_plot_for(id, title, &points, None, method, outliers),
        used,
    )
}

/// The programme table: each programme the filters keep, with its seven KPIs, grade and level
/// on the lead funnel. One model for the page (codes linking to the programme's page) and its
/// downloads (exact values, the name and the funnel method in force).
fn programmes_table(
    nr: &NationalReport,
    rows: &[&ProgrammeKpis],
    f: &Filters,
    method: crest_stats::funnel::Method,
    period: Period,
) -> Table {
    let (programmes, report) = (&nr.programmes, &nr.report);
    let by_code: std::collections::HashMap<&str, &Programme> =
        programmes.iter().map(|p| (p.code.as_str(), p)).collect();
    let (lead_key, lead_title) = lead(f);
    // The method in force for the lead KPI's funnel (the default resolved), as drawn.
    let (_, used) = funnel(rows, (lead_key, lead_title), method, "", None);
    let mut columns = vec![
        Column::words("Programme", "programme_code"),
        Column::file_only("name"),
        Column::words("Nation", "nation"),
        Column::words("Region", "region"),
        Column::numbers("Referred", "referred"),
        Column::file_only("started"),
        Column::numbers("Uptake", "uptake"),
    ];
    if let Some(first) = report.programmes.first() {
        columns.extend(
            first
                .results
                .kpis
                .iter()
                .map(|k| Column::numbers(k.label(), k.key)),
        );
    }
    columns.extend([
        Column::numbers("Met", "kpis_met"),
        Column::words("Grade", "grade"),
        Column::words(
            &format!("{lead_title}: level"),
            &format!("{lead_key}_level"),
        ),
        Column::file_only("method"),
    ]);
    let (from, to) = (period.from, period.to);
    let query = f.query(from, to);
    Table {
        caption: "The seven NCP_CR KPIs by programme".into(),
        rows_are: "programmes".into(),
        columns,
        rows: table_rows(rows, f, method)
            .into_iter()
            .map(|(k, level)| {
                let p = by_code.get(k.programme_code.as_str());
                let grade = k.grade_shown();
                let mut row = vec![
                    Cell::text(k.programme_code.clone()).link(format!(
                        "/national/programme?code={}&from={from}&to={to}",
                        url_encode(&k.programme_code)
                    )),
                    Cell::text(p.map_or(String::new(), |p| p.name.clone())),
                    Cell::coded(k.nation.label(), k.nation.code()),
                    Cell::text(p.map_or(String::new(), |p| p.region.clone())),
                    Cell::count(k.results.referred),
                    Cell::count(k.results.started),
                    Cell::proportion(k.results.uptake.value()),
                ];
                row.extend(k.results.kpis.iter().map(|kpi| {
                    let value = kpi.value();
                    let exact = value.map_or(String::new(), crest_core::value::format_num);
                    let shown = match kpi.measure {
                        Measure::Proportion(_) => pct(value),
                        _ => value.map_or("–".into(), crest_core::value::format_num),
                    };
                    Cell::number(value, shown, exact).class(if kpi.met { "met" } else { "not-met" })
                }));
                let level = crest_stats::published::level(level);
                row.extend([
                    Cell::count(k.kpis_met as u64),
                    Cell::text(grade).class(format!("grade-{}", grade.replace(' ', "-"))),
                    Cell::coded(level.replace('_', " "), level),
                    Cell::text(used.code()),
                ]);
                row
            })
            .collect(),
        downloads: Some(["csv", "xlsx"].map(|x| format!("/national/programmes.{x}?{query}"))),
        empty: "No programme matches these filters.".into(),
    }
}

/// The dashboard's body: the filters, a summary, the lead funnel plot, the programme table, the
/// roll-up by place, the wait plots and the year on year.
fn render(
    reports: &[Arc<NationalReport>],
    three: &[Period; 3],
    f: &Filters,
    query: &HashMap<String, String>,
) -> Result<maud::Markup, WebError> {
    let nr = reports.last().ok_or(WebError::NotFound)?;
    let (programmes, report) = (&nr.programmes, &nr.report);
    let period = three[2];
    let mut regions: Vec<&str> = programmes.iter().map(|p| p.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    let rows = sorted_rows(report, programmes, f);
    let (referred, started): (u64, u64) = rows.iter().fold((0, 0), |(r, s), k| {
        (r + k.results.referred, s + k.results.started)
    });
    let grades = |g: &str| rows.iter().filter(|k| k.grade_shown() == g).count();
    let (from, to) = (period.from, period.to);
    let method = f.method().unwrap_or_default();
    let png_href = |key: &str| {
        format!(
            "/national/funnel.png?kpi={key}&from={from}&to={to}&nation={}&region={}&method={}",
            url_encode(&f.nation),
            url_encode(&f.region),
            method.code()
        )
    };
    let (lead_key, lead_title) = lead(f);
    let outliers = format!(
        "/national/outliers?from={from}&to={to}&method={}&kpi={lead_key}",
        method.code()
    );
    let (lead_funnel, _) = funnel(
        &rows,
        (lead_key, lead_title),
        method,
        &format!("f-{lead_key}"),
        Some(&outliers),
    );
    let table = programmes_table(nr, &rows, f, method, period);
    let dl = f.query(from, to);
    let view = |id: &str| View::of(id, "/national/dashboard", query);
    Ok(html! {
        (crate::html::period_form(from, to, html! {
            label for="nation" { "Nation" }
            select id="nation" name="nation" {
                option value="" { "all" }
                @for n in [crest_core::Nation::England, crest_core::Nation::Wales, crest_core::Nation::NorthernIreland] {
                    option value=(n.code()) selected[f.nation == n.code()] { (n.label()) }
                }
            }
            label for="region" { "Region" }
            select id="region" name="region" {
                option value="" { "all" }
                @for r in &regions {
                    option selected[f.region == *r] { (r) }
                }
            }
            label for="kpi" { "Funnel plot" }
            select id="kpi" name="kpi" {
                @for (k, t) in FUNNELS {
                    option value=(k) selected[*k == *lead_key] { (t) }
                }
            }
            (method_choice(method))
            label for="grade" { "Grade" }
            select id="grade" name="grade" {
                option value="" { "all" }
                @for g in ["green", "amber", "red", "no data"] {
                    option value=(g) selected[f.grade == g] { (g) }
                }
            }
            label for="level" { "Outlier level (chosen funnel)" }
            select id="level" name="level" {
                @for (v, words) in [("", "all"), ("outside", "outside the limits"), ("alarm", "alarm"), ("alert", "alert"), ("within", "within")] {
                    option value=(v) selected[f.level == v] { (words) }
                }
            }
            label for="sort" { "Sort by" }
            select id="sort" name="sort" {
                @for (v, label) in [("code", "programme"), ("grade", "grade"), ("uptake", "uptake"), ("referred", "referrals")] {
                    option value=(v) selected[f.sort == v] { (label) }
                }
            }
        }))
        h2 { "Summary" }
        p {
            (rows.len()) " programme(s): " (crate::html::thousands(referred)) " referred, " (crate::html::thousands(started)) " started core CR (uptake "
            (pct((referred > 0).then(|| started as f64 / referred as f64))) "). Grades: "
            (grades("green")) " green, " (grades("amber")) " amber, " (grades("red")) " red; "
            (grades("no data")) " with no referrals."
        }
        h2 { "Funnel plot: " (lead_title) }
        (lead_funnel)
        p class="noprint" {
            a href=(png_href(lead_key)) { "Download as PNG" } " · "
            a href=(png_href(lead_key).replacen("/national/funnel.png", "/national/funnel.svg", 1)) { "as SVG" }
            " · Other funnels: "
            @for (i, (k, t)) in FUNNELS.iter().filter(|(k, _)| *k != lead_key).enumerate() {
                @if i > 0 { ", " }
                a href=(Filters { kpi: k.to_string(), ..f.clone() }.href(from, to)) { (t) }
            }
        }
        h2 { "Programmes" }
        @if table.rows.len() != rows.len() {
            p role="status" {
                (table.rows.len()) " of the " (rows.len()) " programme(s) in the nation and region chosen match the grade and level chosen."
            }
        }
        (table.render(&view("programmes")))
        h2 { "By nation and region" }
        (places_table(&rollup_rows(&rows, programmes), &dl).render(&view("places")))
        @for (id, key, title) in WAITS {
            (wait_plot(id, key, title, &rows))
            p class="noprint" {
                "Download this chart: "
                a href={ "/national/waits.svg?kpi=" (key) "&" (dl) } { "SVG" } " · "
                a href={ "/national/waits.png?kpi=" (key) "&" (dl) } { "PNG" }
            }
        }
        @let codes: Vec<&str> = rows.iter().map(|k| k.programme_code.as_str()).collect();
        (super::ascertainment::section(&nr.ascertainment, &codes, &dl, (&view("eligible"), &view("eligible-regions"))))
        h2 { "Year on year" }
        (years_table(&year_on_year(three, reports, f), &dl).render(&view("years")))
    })
}

async fn dashboard(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(f): Query<Filters>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &f)?;
    f.method()?;
    // The service changes the charts over time draw are kept in the local store.
    let all_changes = app.db(|s, _| Ok(s.service_changes()?)).await?;
    let ids: Vec<i64> = all_changes.iter().map(|c| c.id).collect();
    // Everything the page shows follows from the period, the address and the changes.
    let key = cache_key(
        "dashboard",
        "national",
        Some(period),
        &format!(
            "{} {ids:?}",
            View::of("", "/national/dashboard", &query).key()
        ),
    );
    let a = app.clone();
    let (body, regions) = app
        .national(move |n| {
            // The change form's regions, from the period's report (kept per data version).
            let regions = over_time::regions(&a.national_report(n, period)?.programmes);
            let body = a.national_page(n, key, |n| {
                // Year on year: the same filters over this period and the two before it.
                let three = [period.earlier(2), period.earlier(1), period];
                let reports = a.national_reports(n, &three)?;
                let pool = over_time::Pool {
                    code: String::new(),
                    nation: f.nation.clone(),
                    region: f.region.clone(),
                };
                let programmes = over_time::chosen(&n.programmes()?, &pool);
                let facts = over_time::facts(n, &programmes, period)?;
                let changes = over_time::changes_for(all_changes, &programmes, &pool);
                let here = (
                    "/national/dashboard",
                    &[("nation", f.nation.as_str()), ("region", f.region.as_str())][..],
                );
                let compared = over_time::compared(n, &programmes, &changes, period, here)?;
                Ok(html! {
                    (render(&reports, &three, &f, &query)?)
                    (over_time::charts(&facts, period, &changes, &pool).render())
                    (compared)
                })
            })?;
            Ok((body, regions))
        })
        .await?;
    Ok(html_page(page(
        "National audit: programmes",
        c.nav(None),
        html! {
            (body)
            (over_time::change_form(&regions).render(&c.session.csrf, &Default::default(), None))
        },
    )))
}

/// The programme rows that pass the nation and region filters.
/// The chosen nation's and region's programmes in the chosen order.
fn sorted_rows<'a>(
    report: &'a crest_stats::KpiReport,
    programmes: &[Programme],
    f: &Filters,
) -> Vec<&'a ProgrammeKpis> {
    let mut rows = chosen_rows(report, programmes, f);
    match f.sort.as_str() {
        "grade" => rows.sort_by(|a, b| {
            b.kpis_met
                .cmp(&a.kpis_met)
                .then(a.programme_code.cmp(&b.programme_code))
        }),
        "uptake" => rows.sort_by(|a, b| {
            b.results
                .uptake
                .value()
                .unwrap_or(-1.0)
                .total_cmp(&a.results.uptake.value().unwrap_or(-1.0))
        }),
        "referred" => rows.sort_by_key(|k| std::cmp::Reverse(k.results.referred)),
        _ => {}
    }
    rows
}

/// The funnel KPI the page leads with: (key, title).
fn lead(f: &Filters) -> (&'static str, &'static str) {
    FUNNELS
        .iter()
        .find(|(k, _)| *k == f.kpi)
        .copied()
        .unwrap_or(FUNNELS[0])
}

/// The programme table: `rows` kept by the grade and outlier-level filters, each with its level
/// on the lead funnel (fitted over every row shown on the funnel, by `method`).
fn table_rows<'a>(
    rows: &[&'a ProgrammeKpis],
    f: &Filters,
    method: crest_stats::funnel::Method,
) -> Vec<(&'a ProgrammeKpis, Position)> {
    let (key, _) = lead(f);
    let points: Vec<(u64, u64)> = rows.iter().map(|k| proportion(k, key)).collect();
    let fit = crest_stats::funnel::Fit::new(&points, method);
    let level_of = |k: &ProgrammeKpis| {
        let (a, b) = proportion(k, key);
        fit.and_then(|f| f.position(a, b))
            .unwrap_or(Position::Within)
    };
    rows.iter()
        .filter(|k| f.grade.is_empty() || k.grade_shown() == f.grade)
        .map(|k| (*k, level_of(k)))
        .filter(|(_, level)| match f.level.as_str() {
            "outside" => *level != Position::Within,
            "alert" => matches!(level, Position::Alert(_)),
            "alarm" => matches!(level, Position::Alarm(_)),
            "within" => *level == Position::Within,
            _ => true,
        })
        .collect()
}

/// The programme table as CSV or XLSX, with the page's filters: exact values (analysts' own).
async fn programmes_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &f)?;
    let method = f.method()?;
    let a = app.clone();
    app.national(move |n| {
        let nr = a.national_report(n, period)?;
        let rows = sorted_rows(&nr.report, &nr.programmes, &f);
        Ok(programmes_table(&nr, &rows, &f, method, period))
    })
    .await?
    .download(
        &format!("programmes-{}-{}", period.from, period.to),
        &format,
    )
}

fn chosen_rows<'a>(
    report: &'a crest_stats::KpiReport,
    programmes: &[Programme],
    f: &Filters,
) -> Vec<&'a ProgrammeKpis> {
    report
        .programmes
        .iter()
        .filter(|k| {
            let p = programmes.iter().find(|p| p.code == k.programme_code);
            (f.nation.is_empty() || k.nation.code() == f.nation)
                && (f.region.is_empty() || p.is_some_and(|p| p.region == f.region))
        })
        .collect()
}

/// The funnel plots' KPIs: (key, title).

#[derive(serde::Deserialize)]
struct PngQuery {
    kpi: String,
    #[serde(flatten)]
    filters: Filters,
}

/// A funnel plot of the dashboard as drawn on the page (title, axes, limits, legend), with the
/// page's filters and method.
async fn funnel_chart(
    app: &Arc<App>,
    q: &PngQuery,
) -> Result<(maud::Markup, String, Period), WebError> {
    let period = chosen_period(app, &q.filters)?;
    let method = q.filters.method()?;
    let (key, title) = FUNNELS
        .iter()
        .find(|(k, _)| *k == q.kpi)
        .copied()
        .ok_or_else(|| WebError::BadRequest(format!("'{}' has no funnel plot", q.kpi)))?;
    let f = q.filters.clone();
    let a = app.clone();
    let chart = app
        .national(move |n| {
            let nr = a.national_report(n, period)?;
            let rows = chosen_rows(&nr.report, &nr.programmes, &f);
            let (chart, used) = funnel(&rows, (key, title), method, "png", None);
            Ok((chart, format!("{key}-{}", used.code())))
        })
        .await?;
    Ok((chart.0, chart.1, period))
}

/// A funnel plot of the dashboard as SVG or PNG, with the page's filters and method.
async fn funnel_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(q): Query<PngQuery>,
) -> Result<Response, WebError> {
    let (chart, key, period) = funnel_chart(&app, &q).await?;
    crate::app::chart_download(
        &chart,
        &format,
        &format!("funnel-{key}-{}-{}", period.from, period.to),
        "No programme has patients to draw for this period and these filters.",
    )
}

/// The period chosen on a national page (default: the last complete financial year).
pub(crate) fn chosen_period(app: &App, f: &Filters) -> Result<Period, WebError> {
    crate::app::requested_period(app, &f.from, &f.to)
}

impl App {
    /// The national KPI report for `period`, computed once per version of the national data.
    pub(crate) fn national_report(
        &self,
        n: &mut crest_store::NationalStore,
        period: Period,
    ) -> Result<Arc<NationalReport>, WebError> {
        let mut one = self.national_reports(n, &[period])?;
        one.pop().ok_or(WebError::NotFound)
    }

    /// The national KPI reports of `periods`, in order: those not computed for this version of
    /// the national data are computed from one read of the packed facts (so a page showing
    /// three years reads the store once).
    pub(crate) fn national_reports(
        &self,
        n: &mut crest_store::NationalStore,
        periods: &[Period],
    ) -> Result<Vec<Arc<NationalReport>>, WebError> {
        let version = n.data_version()?;
        let key = |p: &Period| cache_key("kpis", "national", Some(*p), "");
        let mut found: Vec<Option<Arc<NationalReport>>> = periods
            .iter()
            .map(|p| self.national_reports.get(&key(p), &version))
            .collect();
        let missing: Vec<Period> = periods
            .iter()
            .zip(&found)
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| *p)
            .collect();
        if let (Some(from), Some(to)) = (
            missing.iter().map(|p| p.from).min(),
            missing.iter().map(|p| p.to).max(),
        ) {
            let programmes = n.programmes()?;
            let all = n.kpi_episodes(from, to, &programmes)?;
            let expected = n.expected()?;
            for (p, slot) in periods.iter().zip(found.iter_mut()) {
                if slot.is_some() {
                    continue;
                }
                let episodes: Vec<crest_core::KpiEpisode> = all
                    .iter()
                    .filter(|e| p.from <= e.referral_date && e.referral_date <= p.to)
                    .cloned()
                    .collect();
                let report = compute(&programmes, &episodes, *p, &Thresholds::default());
                let ascertainment = crest_stats::ascertainment::ascertainment(
                    &expected,
                    &programmes,
                    &episodes,
                    p.from,
                    p.to,
                );
                let r = Arc::new(NationalReport {
                    programmes: programmes.clone(),
                    report,
                    ascertainment,
                });
                self.national_reports
                    .put(key(p), version.clone(), r.clone());
                *slot = Some(r);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Computes the reports the national dashboard opens with (the last complete financial
    /// year and the two before it), so an analyst's first visit finds them ready.
    pub fn warm_national_reports(&self) {
        let Some(url) = self.national_db.get() else {
            return;
        };
        let Ok(mut n) = crest_store::NationalStore::open(url) else {
            return;
        };
        let period = Period::last_financial_year((self.today)());
        let three = [period.earlier(2), period.earlier(1), period];
        if let Err(e) = self.national_reports(&mut n, &three) {
            tracing::error!(detail = %e.message(), "warming the national reports");
        }
        if let Err(e) = self.aggregate_facts(&mut n) {
            tracing::error!(detail = %e.message(), "loading the aggregates' facts");
        }
    }

    /// Every national episode's facts for aggregates, held in memory while the national data
    /// are at the same version (loaded on first use, or as the server starts).
    pub(crate) fn aggregate_facts(
        &self,
        n: &mut crest_store::NationalStore,
    ) -> Result<Arc<crest_report::aggregates::Facts>, WebError> {
        let version = n.data_version()?;
        if let Some(held) = self.facts.get("", &version) {
            return Ok(held);
        }
        let held = Arc::new(crest_report::aggregates::Facts::load(n).map_err(WebError::internal)?);
        self.facts.put(String::new(), version, held.clone());
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::{render, Filters};
    use crate::app::cache::NationalReport;
    use crest_core::{Date, Period, Programme};
    use crest_stats::kpis::{compute, Thresholds};
    use std::sync::Arc;

    /// A region's name comes from the programmes file: shown as text, kept selected, and
    /// URL-encoded in the links that carry the filters.
    #[test]
    fn region_names_are_text_and_links_encode_them() {
        let region = "North & <West>";
        let programmes =
            [Programme::parse(["P001", "One <b>", "england", region, "", ""]).unwrap()];
        let period = Period {
            from: Date::from_ymd(2024, 4, 1).unwrap(),
            to: Date::from_ymd(2025, 3, 31).unwrap(),
        };
        let three = [period.earlier(2), period.earlier(1), period];
        let reports: Vec<Arc<NationalReport>> = three
            .iter()
            .map(|p| {
                Arc::new(NationalReport {
                    programmes: programmes.to_vec(),
                    report: compute(&programmes, &[], *p, &Thresholds::default()),
                    ascertainment: crest_stats::ascertainment::ascertainment(
                        &[],
                        &programmes,
                        &[],
                        p.from,
                        p.to,
                    ),
                })
            })
            .collect();
        let filters = Filters {
            region: region.into(),
            ..Default::default()
        };
        let html = render(&reports, &three, &filters, &Default::default())
            .unwrap()
            .into_string();
        assert!(
            html.contains("<option selected>North &amp; &lt;West&gt;</option>"),
            "{html}"
        );
        assert!(
            html.contains(
                "&amp;nation=&amp;region=North%20%26%20%3CWest%3E&amp;method=auto\">Download as PNG</a>"
            ),
            "{html}"
        );
        assert!(html.contains("<a href=\"/national/programme?code=P001&amp;from=2024-04-01&amp;to=2025-03-31\">P001</a>"), "{html}");
        assert!(html.contains("1 programme(s): 0 referred"), "{html}");
        assert!(!html.contains("<West>") && !html.contains("<b>"), "{html}");
    }
}
