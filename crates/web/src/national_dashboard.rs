//! The national dashboard for national analysts: every programme's seven KPIs, grade and
//! numbers for a period, filterable by nation and region and sortable, with funnel plots of
//! the proportion KPIs (uptake, assessment 1, assessment 2) as server-side SVG with text
//! alternatives. Computed from the national store by the same KPI engine as everywhere else.

use crate::access::Analyst;
use crate::html::{esc, page, pct};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Period, Programme};
use crest_report::charts::{funnel_plot, wait_plot, FUNNELS};
use crest_stats::kpis::{compute, Measure, ProgrammeKpis, Thresholds};
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/dashboard", get(dashboard))
        .route("/national/funnel.png", get(funnel_png))
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
}

/// One proportion KPI of a programme as (numerator, denominator).
pub(crate) fn proportion(p: &ProgrammeKpis, key: &str) -> (u64, u64) {
    p.proportion(key)
}

/// Nation → region roll-up of the rows shown: pooled uptake, assessment 1 and 2, and grades.
fn rollup(
    rows: &[&ProgrammeKpis],
    by_code: &std::collections::HashMap<&str, &Programme>,
) -> String {
    let sums = crest_stats::kpis::rollup(rows, |code| {
        by_code
            .get(code)
            .map_or(String::new(), |p| p.region.clone())
    });
    let share = |(n, d): (u64, u64)| pct((d > 0).then(|| n as f64 / d as f64));
    let mut out = String::from(
        "<h2>By nation and region</h2><table><caption>Pooled figures by nation, then region</caption><thead><tr>\
         <th scope=\"col\">Nation / region</th><th scope=\"col\">Programmes</th><th scope=\"col\">Referred</th>\
         <th scope=\"col\">Uptake</th><th scope=\"col\">Assessment 1</th><th scope=\"col\">Assessment 2</th>\
         <th scope=\"col\">Green / amber / red</th></tr></thead><tbody>",
    );
    for s in &sums {
        let name = if s.region.is_empty() {
            format!("<strong>{}</strong>", esc(&s.nation.replace('_', " ")))
        } else {
            format!("&nbsp;&nbsp;{}", esc(&s.region))
        };
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {} / {}</td></tr>",
            s.programmes,
            s.uptake.1,
            share(s.uptake),
            share(s.assessment1),
            share(s.assessment2),
            s.grades[0],
            s.grades[1],
            s.grades[2]
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn render(
    programmes: &[Programme],
    report: &crest_stats::KpiReport,
    f: &Filters,
    period: Period,
) -> String {
    let mut body = format!(
        "<form method=\"get\" class=\"noprint\"><label for=\"from\">From</label><input id=\"from\" name=\"from\" value=\"{}\">\
         <label for=\"to\">To</label><input id=\"to\" name=\"to\" value=\"{}\">\
         <label for=\"nation\">Nation</label><select id=\"nation\" name=\"nation\"><option value=\"\">all</option>",
        period.from, period.to
    );
    for n in ["england", "wales", "northern_ireland"] {
        let sel = if f.nation == n { " selected" } else { "" };
        let _ = write!(
            body,
            "<option value=\"{n}\"{sel}>{}</option>",
            n.replace('_', " ")
        );
    }
    body.push_str("</select><label for=\"region\">Region</label><select id=\"region\" name=\"region\"><option value=\"\">all</option>");
    let mut regions: Vec<&str> = programmes.iter().map(|p| p.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    for r in regions {
        let sel = if f.region == r { " selected" } else { "" };
        let _ = write!(body, "<option{sel}>{}</option>", esc(r));
    }
    body.push_str("</select><label for=\"sort\">Sort by</label><select id=\"sort\" name=\"sort\">");
    for (v, label) in [
        ("code", "programme"),
        ("grade", "grade"),
        ("uptake", "uptake"),
        ("referred", "referrals"),
    ] {
        let sel = if f.sort == v { " selected" } else { "" };
        let _ = write!(body, "<option value=\"{v}\"{sel}>{label}</option>");
    }
    body.push_str("</select> <button>Show</button></form>");

    let by_code: std::collections::HashMap<&str, &Programme> =
        programmes.iter().map(|p| (p.code.as_str(), p)).collect();
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
    let (referred, started): (u64, u64) = rows.iter().fold((0, 0), |(r, s), k| {
        (r + k.results.referred, s + k.results.started)
    });
    let grades = |g: &str| rows.iter().filter(|k| k.grade_shown() == g).count();
    let _ = write!(
        body,
        "<p>{} programme(s): {referred} referred, {started} started core CR (uptake {}). Grades: {} green, {} amber, {} red; {} with no referrals.</p>",
        rows.len(),
        pct((referred > 0).then(|| started as f64 / referred as f64)),
        grades("green"),
        grades("amber"),
        grades("red"),
        grades("no data")
    );
    body.push_str(
        "<table><caption>The seven NCP_CR KPIs by programme</caption><thead><tr><th scope=\"col\">Programme</th>\
         <th scope=\"col\">Nation</th><th scope=\"col\">Region</th><th scope=\"col\">Referred</th><th scope=\"col\">Uptake</th>",
    );
    if let Some(first) = report.programmes.first() {
        for k in &first.results.kpis {
            let _ = write!(
                body,
                "<th scope=\"col\">{}</th>",
                esc(&k.key.replace('_', " "))
            );
        }
    }
    body.push_str("<th scope=\"col\">Met</th><th scope=\"col\">Grade</th></tr></thead><tbody>");
    let (from, to) = (period.from, period.to);
    for k in &rows {
        let p = by_code.get(k.programme_code.as_str());
        let _ = write!(
            body,
            "<tr><th scope=\"row\"><a href=\"/national/programme?code={0}&amp;from={from}&amp;to={to}\">{0}</a></th><td>{1}</td><td>{2}</td><td>{3}</td><td>{4}</td>",
            esc(&k.programme_code),
            esc(&k.nation.code().replace('_', " ")),
            esc(p.map_or("", |p| p.region.as_str())),
            k.results.referred,
            pct(k.results.uptake.value())
        );
        for kpi in &k.results.kpis {
            let v = match kpi.measure {
                Measure::Proportion(_) => pct(kpi.value()),
                _ => kpi
                    .value()
                    .map_or("–".into(), crest_core::record::format_num),
            };
            let _ = write!(
                body,
                "<td class=\"{}\">{v}</td>",
                if kpi.met { "met" } else { "not-met" }
            );
        }
        let _ = write!(
            body,
            "<td>{}</td><td class=\"grade-{}\">{}</td></tr>",
            k.kpis_met,
            k.grade_shown().replace(' ', "-"),
            k.grade_shown()
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&rollup(&rows, &by_code));
    body.push_str("<h2>Funnel plots</h2>");
    for (key, title) in FUNNELS {
        let id = format!("f-{key}");
        let points: Vec<(String, u64, u64)> = rows
            .iter()
            .map(|k| {
                let (num, den) = proportion(k, key);
                (k.programme_code.clone(), num, den)
            })
            .collect();
        body.push_str(&funnel_plot(&id, title, &points));
        let _ = write!(
            body,
            "<p class=\"noprint\"><a href=\"/national/funnel.png?kpi={key}&amp;from={}&amp;to={}&amp;nation={}&amp;region={}\">Download as PNG</a></p>",
            period.from,
            period.to,
            esc(&f.nation),
            esc(&f.region)
        );
    }
    for (id, key, title) in [
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
    ] {
        body.push_str(&wait_plot(id, key, title, &rows));
    }
    body
}

async fn dashboard(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &f)?;
    let key = format!(
        "{}|{}|{}|{}|{}",
        period.from, period.to, f.nation, f.region, f.sort
    );
    let a = app.clone();
    let body = app
        .national(move |n| {
            let version = n.data_version()?;
            if let Some(body) = a.national_pages.get(&key, &version) {
                return Ok(body);
            }
            let programmes = n.programmes()?;
            let episodes = n.kpi_episodes(period.from, period.to, &programmes)?;
            let report = compute(&programmes, &episodes, period, &Thresholds::default());
            let mut body = render(&programmes, &report, &f, period);
            // Year on year: the same filters over this period and the two before it.
            body.push_str(
                "<h2>Year on year</h2><table><caption>The programmes shown, pooled, by year</caption><thead><tr>\
                 <th scope=\"col\">Period</th><th scope=\"col\">Referred</th><th scope=\"col\">Uptake</th>\
                 <th scope=\"col\">Assessment 1</th><th scope=\"col\">Assessment 2</th><th scope=\"col\">Green / amber / red</th>\
                 </tr></thead><tbody>",
            );
            for years in [2, 1, 0] {
                let p = period.earlier(years);
                let r = if years == 0 {
                    report.clone()
                } else {
                    let eps = n.kpi_episodes(p.from, p.to, &programmes)?;
                    compute(&programmes, &eps, p, &Thresholds::default())
                };
                let rows = chosen_rows(&r, &programmes, &f);
                let sum = |key: &str| {
                    rows.iter().fold((0u64, 0u64), |(a, b), k| {
                        let (x, y) = proportion(k, key);
                        (a + x, b + y)
                    })
                };
                let share = |(x, y): (u64, u64)| pct((y > 0).then(|| x as f64 / y as f64));
                let grade = |g: &str| rows.iter().filter(|k| k.grade == g).count();
                let _ = write!(
                    body,
                    "<tr><th scope=\"row\">{} to {}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {} / {}</td></tr>",
                    p.from,
                    p.to,
                    sum("uptake").1,
                    share(sum("uptake")),
                    share(sum("assessment1")),
                    share(sum("assessment2")),
                    grade("green"),
                    grade("amber"),
                    grade("red")
                );
            }
            body.push_str("</tbody></table>");
            let body: Arc<str> = body.into();
            a.national_pages.put(key, version, body.clone());
            Ok(body)
        })
        .await?;
    Ok(html_page(page(
        "National audit: programmes",
        &c.nav(None),
        &body,
    )))
}

/// The programme rows that pass the nation and region filters.
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

/// A funnel plot of the dashboard as a PNG (drawn from the same SVG by headless Chromium).
async fn funnel_png(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Query(q): Query<PngQuery>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &q.filters)?;
    let (key, title) = FUNNELS
        .iter()
        .find(|(k, _)| *k == q.kpi)
        .copied()
        .ok_or_else(|| WebError::BadRequest(format!("'{}' has no funnel plot", q.kpi)))?;
    let f = q.filters.clone();
    let png = app
        .national(move |n| {
            let programmes = n.programmes()?;
            let episodes = n.kpi_episodes(period.from, period.to, &programmes)?;
            let report = compute(&programmes, &episodes, period, &Thresholds::default());
            let points: Vec<(String, u64, u64)> = chosen_rows(&report, &programmes, &f)
                .iter()
                .map(|k| {
                    let (num, den) = proportion(k, key);
                    (k.programme_code.clone(), num, den)
                })
                .collect();
            crest_report::charts::svg_png(&funnel_plot("png", title, &points))
                .map_err(|e| WebError::BadRequest(e.to_string()))
        })
        .await?;
    Ok(crate::download(
        png,
        "image/png",
        &format!("funnel-{key}-{}-{}.png", period.from, period.to),
    ))
}

/// The period chosen on a national page (default: the last complete financial year).
pub(crate) fn chosen_period(app: &App, f: &Filters) -> Result<Period, WebError> {
    crate::requested_period(app, &f.from, &f.to)
}

/// Rendered national pages by their filters, each with the national data version it came from.
#[derive(Default)]
pub(crate) struct PageCache(
    std::sync::Mutex<std::collections::HashMap<String, (String, Arc<str>)>>,
);

impl PageCache {
    pub(crate) fn get(&self, key: &str, version: &str) -> Option<Arc<str>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key)
            .filter(|(v, _)| v == version)
            .map(|(_, b)| b.clone())
    }

    pub(crate) fn put(&self, key: String, version: String, body: Arc<str>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= 256 && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, (version, body));
    }
}
