//! The national dashboard for national analysts: every programme's seven KPIs, grade and
//! numbers for a period, filterable by nation and region and sortable, with funnel plots of
//! the proportion KPIs (uptake, assessment 1, assessment 2) as server-side SVG with text
//! alternatives. Computed from the national store by the same KPI engine as everywhere else.

use crate::html::{esc, page, pct};
use crate::{ctx, html_page, App, WebError};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Period, Programme};
use crest_stats::funnel::{self, Direction, Position, Z998};
use crest_stats::kpis::{compute, Measure, ProgrammeKpis, Thresholds};
use crest_stats::Z95;
use crest_store::Role;
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

/// Each programme's median wait for a KPI as a dot, with its nation's threshold as a tick,
/// sorted by the median; the text alternative names those above their threshold.
pub(crate) fn wait_plot(id: &str, key: &str, title: &str, rows: &[&ProgrammeKpis]) -> String {
    let mut points: Vec<(String, f64, Option<f64>)> = rows
        .iter()
        .filter_map(|k| {
            let kpi = k.results.kpis.iter().find(|x| x.key == key)?;
            Some((k.programme_code.clone(), kpi.value()?, kpi.threshold))
        })
        .collect();
    if points.is_empty() {
        return format!("<p>{}: no patients started.</p>", esc(title));
    }
    points.sort_by(|a, b| a.1.total_cmp(&b.1));
    let max = points
        .iter()
        .map(|p| p.1.max(p.2.unwrap_or(0.0)))
        .fold(10.0_f64, f64::max);
    let (w, row, left) = (640.0, 14.0, 70.0);
    let h = row * points.len() as f64 + 40.0;
    let x = |d: f64| left + (w - left - 20.0) * d / max;
    let mut s = format!(
        "<figure><svg role=\"img\" aria-labelledby=\"{id}-t {id}-d\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">Dots are programmes' median waits in days, sorted; the grey tick on each \
         row is the programme's nation's threshold.</desc>",
        esc(title)
    );
    let mut over = Vec::new();
    for (i, (code, median, threshold)) in points.iter().enumerate() {
        let y = 10.0 + row * i as f64 + row / 2.0;
        let late = threshold.is_some_and(|t| *median > t);
        if late {
            over.push(format!(
                "{} ({} days)",
                esc(code),
                crest_core::record::format_num(*median)
            ));
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + 3.0,
            esc(code)
        );
        if let Some(t) = threshold {
            let _ = write!(
                s,
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#768692\" stroke-width=\"2\"/>",
                x(*t),
                y - 5.0,
                y + 5.0
            );
        }
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{}\"><title>{}: median {} days</title></circle>",
            x(*median),
            if late { "#d5281b" } else { "#005eb8" },
            esc(code),
            crest_core::record::format_num(*median)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">days</text></svg><figcaption>{}: {} programme(s); {}</figcaption></figure>",
        (w + left) / 2.0,
        h - 8.0,
        esc(title),
        points.len(),
        if over.is_empty() {
            "none above its threshold.".to_string()
        } else {
            format!("above their threshold: {}.", over.join(", "))
        }
    );
    s
}

/// One programme on a funnel plot.
pub(crate) struct Dot {
    /// Programme code.
    pub code: String,
    /// Where it is drawn (numerator, denominator), if it can be.
    pub at: Option<(u64, u64)>,
    /// Its position against the limits.
    pub position: Position,
    /// How its figures are written in the caption, e.g. `12/40 = 30.0%`.
    pub shown: String,
}

/// A funnel plot of one proportion across programmes (limits from their exact counts),
/// with its text alternative.
pub(crate) fn funnel_plot(id: &str, title: &str, points: &[(String, u64, u64)]) -> String {
    let Some(p0) = funnel::pooled(&points.iter().map(|p| (p.1, p.2)).collect::<Vec<_>>()) else {
        return format!("<p>{}: no data.</p>", esc(title));
    };
    let dots: Vec<Dot> = points
        .iter()
        .filter(|p| p.2 > 0)
        .map(|(code, k, n)| Dot {
            code: code.clone(),
            at: Some((*k, *n)),
            position: funnel::position(*k, *n, p0).unwrap_or(Position::Within),
            shown: format!("{k}/{n} = {}", pct(Some(*k as f64 / *n as f64))),
        })
        .collect();
    draw_funnel(id, title, p0, points.len(), &dots, "")
}

/// Draws a funnel plot around `p0` pooled over `programmes`; `note` is added to the caption
/// before the list of programmes outside the limits (which names every one, drawn or not).
pub(crate) fn draw_funnel(
    id: &str,
    title: &str,
    p0: f64,
    programmes: usize,
    dots: &[Dot],
    note: &str,
) -> String {
    let max_n = dots
        .iter()
        .filter_map(|d| d.at.map(|a| a.1))
        .max()
        .unwrap_or(1)
        .max(10) as f64;
    let (w, h, left, bottom) = (640.0, 320.0, 50.0, 40.0);
    let x = |n: f64| left + (w - left - 10.0) * n / max_n;
    let y = |p: f64| 10.0 + (h - bottom - 10.0) * (1.0 - p.clamp(0.0, 1.0));
    let mut s = format!(
        "<figure><svg role=\"img\" aria-labelledby=\"{id}-t {id}-d\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\
         <title id=\"{id}-t\">Funnel plot: {}</title><desc id=\"{id}-d\">Each dot is a programme: its proportion against its number of patients. \
         The pooled proportion is {}; the inner lines are the 95% limits, the outer the 99.8% limits.</desc>",
        esc(title),
        pct(Some(p0))
    );
    for (z, dash) in [(Z95, "4 3"), (Z998, "")] {
        for side in [0, 1] {
            let pts: Vec<String> = (1..=60)
                .map(|i| {
                    let n = (max_n * i as f64 / 60.0).max(1.0);
                    let (lo, hi) = funnel::limits(p0, n as u64, z).unwrap_or((0.0, 1.0));
                    format!("{:.1},{:.1}", x(n), y(if side == 0 { lo } else { hi }))
                })
                .collect();
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"#425563\" stroke-dasharray=\"{dash}\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
    }
    let _ = write!(
        s,
        "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#005eb8\"/>",
        w - 10.0,
        y(p0),
        y(p0)
    );
    let mut outliers = Vec::new();
    for d in dots {
        if d.position != Position::Within {
            outliers.push(d);
        }
        let Some((k, n)) = d.at.filter(|a| a.1 > 0) else {
            continue;
        };
        let p = k as f64 / n as f64;
        let colour = match d.position {
            Position::Within => "#005eb8",
            Position::Alert(_) => "#ed8b00",
            Position::Alarm(_) => "#d5281b",
        };
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\"><title>{}: {}</title></circle>",
            x(n as f64),
            y(p),
            esc(&d.code),
            esc(&d.shown)
        );
        if d.position != Position::Within {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                x(n as f64) + 5.0,
                y(p) - 5.0,
                esc(&d.code)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">patients (denominator)</text></svg>\
         <figcaption>{}: pooled {} over {programmes} programmes. {}",
        w / 2.0,
        h - 8.0,
        esc(title),
        pct(Some(p0)),
        esc(note)
    );
    if !note.is_empty() {
        s.push(' ');
    }
    if outliers.is_empty() {
        s.push_str("No programme is outside the 95% limits.");
    } else {
        s.push_str("Outside the limits: ");
        let list: Vec<String> = outliers
            .iter()
            .map(|d| {
                let (level, dir) = match d.position {
                    Position::Alarm(d) => ("alarm", d),
                    Position::Alert(d) => ("alert", d),
                    Position::Within => ("", Direction::Low),
                };
                format!(
                    "{} {level} {} ({})",
                    esc(&d.code),
                    if dir == Direction::Low { "low" } else { "high" },
                    esc(&d.shown)
                )
            })
            .collect();
        s.push_str(&list.join("; "));
        s.push('.');
    }
    s.push_str("</figcaption></figure>");
    s
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
    headers: HeaderMap,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let c = ctx(&app, &headers).await?;
    if c.user.role != Role::NationalAnalyst {
        return Err(WebError::NotFound);
    }
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
pub(crate) const FUNNELS: [(&str, &str); 4] = [
    ("uptake", "Uptake (started / referred)"),
    ("completion", "Completion (completed / started)"),
    ("assessment1", "Assessment 1 recorded (KPI 4)"),
    ("assessment2", "Assessment 2 within 140 days (KPI 7)"),
];

#[derive(serde::Deserialize)]
struct PngQuery {
    kpi: String,
    #[serde(flatten)]
    filters: Filters,
}

/// A funnel plot of the dashboard as a PNG (drawn from the same SVG by headless Chromium).
async fn funnel_png(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PngQuery>,
) -> Result<Response, WebError> {
    let c = ctx(&app, &headers).await?;
    if c.user.role != Role::NationalAnalyst {
        return Err(WebError::NotFound);
    }
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
            crate::report::svg_png(&funnel_plot("png", title, &points), 640, 320)
                .map_err(WebError::BadRequest)
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
