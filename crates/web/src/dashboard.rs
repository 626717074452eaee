//! The programme dashboard: the seven KPIs against their thresholds with the grade, uptake with
//! its interval, waits with a distribution chart, and uptake by sex, age band, ethnic group and
//! deprivation quintile. Charts are server-side SVG with titles and text alternatives.

use crate::access::Staff;
use crate::html::{esc, page, pct};
use crate::{html_page, App, Code, WebError};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Col, Date, Kind, KpiEpisode, Period, PriorityGroup, Programme, Record, FIELDS};
use crest_stats::kpis::{compute, Thresholds};
use crest_stats::outcomes::{paired_change, share_at_least, HADS_CASE};
use crest_stats::summary::Summary;
use crest_store::EpisodeQuery;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/p/{code}/dashboard", get(dashboard))
}

#[derive(serde::Deserialize, Default)]
struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn num(x: Option<f64>) -> String {
    x.map_or("–".into(), crest_core::record::format_num)
}

/// Uptake by group among the programme's own records (started = has a core start date).
fn group_by<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    key: impl Fn(&Record) -> String,
) -> Vec<crest_stats::inequality::GroupUptake> {
    crest_stats::inequality::uptake_by(
        records,
        |r| key(r),
        |r| r.date(Col::CoreStartDate).is_some(),
    )
}

fn age_band(r: &Record) -> String {
    let age = match r.get(Col::AgeAtEvent) {
        crest_core::Value::Int(a) => Some(*a),
        _ => None,
    };
    crest_core::age_band(age).to_string()
}

/// A bar chart of waits (referral → start) in weekly bins, as SVG with a text alternative.
fn wait_chart(waits: &[f64]) -> String {
    const BINS: usize = 13;
    let mut counts = [0u64; BINS];
    for w in waits {
        let b = ((*w / 7.0).floor().max(0.0) as usize).min(BINS - 1);
        counts[b] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, bar) = (560.0, 200.0, 40.0);
    let mut s = format!(
        "<figure><svg role=\"img\" aria-labelledby=\"wt wd\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\">\
         <title id=\"wt\">Waits from referral to start of core CR, by week</title><desc id=\"wd\">",
        h + 40.0,
        h + 40.0
    );
    let desc: Vec<String> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == BINS - 1 {
                format!("{} or more weeks: {c}", BINS - 1)
            } else {
                format!("week {i}: {c}")
            }
        })
        .collect();
    s.push_str(&esc(&desc.join("; ")));
    s.push_str("</desc>");
    for (i, c) in counts.iter().enumerate() {
        let bh = h * *c as f64 / max as f64;
        let x = 10.0 + i as f64 * bar;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{bh}\" fill=\"#005eb8\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            h - bh,
            bar - 4.0,
            x + bar / 2.0 - 2.0,
            h + 14.0,
            if i == BINS - 1 { format!("{i}+") } else { i.to_string() }
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">weeks from referral to start</text></svg>\
         <figcaption>Waits from referral to the start of core CR ({} patients who started).</figcaption></figure>",
        w / 2.0,
        h + 34.0,
        waits.len()
    );
    s
}

async fn dashboard(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, WebError> {
    let period = crate::requested_period(&app, &q.from, &q.to)?;
    // The page is rebuilt only when the programme's data or profile changed since it was
    // last rendered for this period (the store's data version says which).
    let key = (p.code.clone(), period.from, period.to);
    let prog = p.clone();
    let found = app
        .db(move |s, app| {
            let version = s.data_version(&prog.code)?;
            if let Some(body) = app.dashboards.get(&key, version, &prog) {
                return Ok((version, Ok(body)));
            }
            let q = EpisodeQuery {
                from: Some(period.from),
                to: Some(period.to),
                limit: usize::MAX,
                ..Default::default()
            };
            Ok((version, Err(s.find_episodes(&prog.code, &q)?)))
        })
        .await?;
    let body = match found {
        (_, Ok(body)) => body,
        (version, Err(records)) => {
            let body: Arc<str> = render(&p, &records, period).into();
            let key = (p.code.clone(), period.from, period.to);
            app.dashboards.put(key, version, p.clone(), body.clone());
            body
        }
    };
    Ok(html_page(page(
        &format!("Dashboard – {}", p.name),
        &c.nav(Some(&p.code)),
        &body,
    )))
}

type CacheKey = (String, Date, Date);

/// Rendered dashboards by programme and period, each with the data version and programme
/// profile it was computed from. Bounded: when full it starts again.
#[derive(Default)]
pub(crate) struct Cache(Mutex<HashMap<CacheKey, Cached>>);

/// A rendered dashboard: the data version and profile it came from, and the HTML.
type Cached = (u64, Programme, Arc<str>);

const CACHE_ENTRIES: usize = 512;

impl Cache {
    fn get(&self, key: &CacheKey, version: u64, p: &Programme) -> Option<Arc<str>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key)
            .filter(|(v, q, _)| *v == version && q == p)
            .map(|(_, _, body)| body.clone())
    }

    fn put(&self, key: CacheKey, version: u64, p: Programme, body: Arc<str>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= CACHE_ENTRIES && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, (version, p, body));
    }
}

/// Median and IQR of `values` as "median (IQR q1–q3)".
fn median_iqr(mut values: Vec<f64>) -> String {
    if values.is_empty() {
        return "–".into();
    }
    let w = Summary::of(&mut values);
    format!("{} (IQR {}–{})", num(w.median), num(w.q1), num(w.q3))
}

/// The dashboard's content for a programme's episodes referred in `period`.
fn render(p: &Programme, records: &[Record], period: Period) -> String {
    let facts: Vec<KpiEpisode> = records
        .iter()
        .filter_map(|r| KpiEpisode::of_record(r, 0))
        .collect();
    let report = compute(
        std::slice::from_ref(p),
        &facts,
        period,
        &Thresholds::default(),
    );
    let mut body = format!(
        "<form method=\"get\" class=\"noprint\"><label for=\"from\">From</label><input id=\"from\" name=\"from\" value=\"{}\">\
         <label for=\"to\">To</label><input id=\"to\" name=\"to\" value=\"{}\"> <button>Show</button></form>",
        period.from, period.to
    );
    let mut wait_thresholds = (None, None);
    if let Some(k) = report.programmes.first() {
        let r = &k.results;
        let _ = write!(
            body,
            "<h2>Referrals and uptake</h2><p>{} referred, {} started core CR: uptake {} (95% interval {}).</p>\
             <h2>Key performance indicators</h2><p>Grade: <strong class=\"grade-{}\">{}</strong>{}.</p>\
             <table><caption>The seven NCP_CR KPIs for {} to {}</caption><thead><tr><th scope=\"col\">KPI</th><th scope=\"col\">Value</th>\
             <th scope=\"col\">Threshold</th><th scope=\"col\">Met</th></tr></thead><tbody>",
            r.referred,
            r.started,
            pct(r.uptake.value()),
            r.uptake.ci().map_or("–".into(), |(lo, hi)| format!("{}–{}", pct(Some(lo)), pct(Some(hi)))),
            k.grade_shown().replace(' ', "-"),
            k.grade_shown(),
            if r.referred == 0 {
                ": nobody was referred in this period".to_string()
            } else {
                format!(" ({} of 7 met)", k.kpis_met)
            },
            period.from,
            period.to
        );
        for kpi in &r.kpis {
            let value = match kpi.key {
                "assessment1" | "assessment2" => pct(kpi.value()),
                _ => num(kpi.value()),
            };
            let threshold = match kpi.key {
                "assessment1" | "assessment2" => pct(kpi.threshold),
                _ => num(kpi.threshold),
            };
            match kpi.key {
                "wait_cabg" => wait_thresholds.0 = kpi.threshold,
                "wait_mi_pci" => wait_thresholds.1 = kpi.threshold,
                _ => {}
            }
            let _ = write!(
                body,
                "<tr><th scope=\"row\">{}</th><td>{value}</td><td>{threshold}</td><td>{}</td></tr>",
                esc(&kpi.key.replace('_', " ")),
                if kpi.met { "yes" } else { "no" }
            );
        }
        body.push_str("</tbody></table>");
    }
    // Waits (overall and by the two KPI groups), duration, completion, assessment recording.
    let wait = |f: &KpiEpisode| Some(f.core_start?.days_since(f.referral_date) as f64);
    let mut waits: Vec<f64> = facts.iter().filter_map(wait).collect();
    let group_waits = |groups: &[PriorityGroup]| -> Vec<f64> {
        facts
            .iter()
            .filter(|f| groups.contains(&f.group))
            .filter_map(wait)
            .collect()
    };
    let cabg = group_waits(&[PriorityGroup::Cabg]);
    let mi_pci = group_waits(&[PriorityGroup::Mi, PriorityGroup::MiPci, PriorityGroup::Pci]);
    let durations: Vec<f64> = facts
        .iter()
        .filter_map(|f| Some(f.core_end?.days_since(f.core_start?) as f64))
        .collect();
    let started = facts.iter().filter(|f| f.core_start.is_some()).count();
    let completed = facts.iter().filter(|f| f.completed).count();
    let a1 = facts.iter().filter(|f| f.assessment1.is_some()).count();
    let a2 = facts.iter().filter(|f| f.assessment2.is_some()).count();
    let _ = write!(
        body,
        "<h2>Waits and delivery</h2><table><caption>Wait from referral to the start of core CR, days</caption><thead><tr>\
         <th scope=\"col\">Patients</th><th scope=\"col\">Started</th><th scope=\"col\">Median (IQR)</th><th scope=\"col\">Threshold</th></tr></thead><tbody>\
         <tr><th scope=\"row\">All</th><td>{}</td><td>{}</td><td></td></tr>\
         <tr><th scope=\"row\">CABG</th><td>{}</td><td>{}</td><td>{}</td></tr>\
         <tr><th scope=\"row\">MI/PCI</th><td>{}</td><td>{}</td><td>{}</td></tr></tbody></table>\
         <p>Duration of core CR: median {} days.</p>\
         <p>Completed: {completed} of {started} started. Assessment 1 recorded for {a1}, assessment 2 for {a2} of {} referred.</p>",
        waits.len(), median_iqr(waits.clone()),
        cabg.len(), median_iqr(cabg), num(wait_thresholds.0),
        mi_pci.len(), median_iqr(mi_pci), num(wait_thresholds.1),
        median_iqr(durations), records.len()
    );
    waits.sort_by(f64::total_cmp);
    body.push_str(&wait_chart(&waits));
    let modes = group_by(
        records
            .iter()
            .filter(|r| r.date(Col::CoreStartDate).is_some()),
        |r| {
            r.text(Col::DeliveryMode)
                .unwrap_or("not recorded")
                .to_string()
        },
    );
    body.push_str("<table><caption>Delivery modes of those who started</caption><thead><tr><th scope=\"col\">Mode</th><th scope=\"col\">Patients</th></tr></thead><tbody>");
    for (m, n, _) in modes {
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{n}</td></tr>",
            esc(&m.replace('_', " "))
        );
    }
    body.push_str("</tbody></table>");
    body.push_str(&outcomes(records));
    body.push_str("<h2>Who takes up cardiac rehabilitation</h2>");
    body.push_str(&crate::html::uptake_table(
        "sex",
        &group_by(records, |r| r.get(Col::Sex).to_text()),
    ));
    body.push_str(&crate::html::uptake_table(
        "age band",
        &group_by(records, age_band),
    ));
    body.push_str(&crate::html::uptake_table(
        "ethnic group",
        &group_by(records, |r| {
            // The broad groups of core, as on the national pages.
            crest_core::ethnic_group(r.text(Col::Ethnicity)).to_string()
        }),
    ));
    body.push_str(&crate::html::uptake_table(
        "deprivation quintile (1 = most deprived)",
        &group_by(records, |r| {
            let q = r.get(Col::ImdQuintile).to_text();
            if q.is_empty() {
                "not known".into()
            } else {
                q
            }
        }),
    ));
    body.push_str(&crate::html::uptake_table(
        "priority group",
        &group_by(records, |r| {
            KpiEpisode::of_record(r, 0)
                .map_or("not known", |f| f.group.code())
                .replace('_', " ")
        }),
    ));
    body
}

/// Paired A1 → A2 change for every numeric measure, and the HADS ≥ 8 shares (kpis.md).
fn outcomes(records: &[Record]) -> String {
    let a1 = FIELDS.iter().filter(|f| f.assessment() == Some(1));
    let a2 = FIELDS.iter().filter(|f| f.assessment() == Some(2));
    let mut s = String::from(
        "<h2>Outcomes</h2><table><caption>Change from assessment 1 to assessment 2, among patients with both values</caption>\
         <thead><tr><th scope=\"col\">Measure</th><th scope=\"col\">Patients</th><th scope=\"col\">Mean at 1</th>\
         <th scope=\"col\">Mean at 2</th><th scope=\"col\">Mean change</th><th scope=\"col\">95% interval</th></tr></thead><tbody>",
    );
    let mut hads = String::new();
    for (f1, f2) in a1.zip(a2) {
        if !matches!(f1.kind, Kind::Int { .. } | Kind::Decimal { .. }) {
            continue;
        }
        let pairs: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| Some((r.num(f1.col)?, r.num(f2.col)?)))
            .collect();
        let c = paired_change(&pairs);
        let _ = write!(
            s,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(f1.help.split(';').next().unwrap_or(f1.name)),
            c.n,
            one_dp(c.mean_a1),
            one_dp(c.mean_a2),
            one_dp(c.mean_change),
            c.ci.map_or("–".into(), |(lo, hi)| format!("{} to {}", one_dp(Some(lo)), one_dp(Some(hi))))
        );
        if f1.name.starts_with("a1_hads") {
            let _ = write!(
                hads,
                "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(f1.help),
                c.n,
                pct(share_at_least(pairs.iter().map(|p| p.0), HADS_CASE)),
                pct(share_at_least(pairs.iter().map(|p| p.1), HADS_CASE)),
            );
        }
    }
    let _ = write!(
        s,
        "</tbody></table><table><caption>Patients with HADS ≥ 8 (symptoms present), among those scored at both assessments</caption>\
         <thead><tr><th scope=\"col\">Scale</th><th scope=\"col\">Patients</th><th scope=\"col\">At 1</th><th scope=\"col\">At 2</th></tr></thead>\
         <tbody>{hads}</tbody></table>"
    );
    s
}

fn one_dp(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.1}"))
}
