//! The programme dashboard: the seven KPIs against their thresholds with the grade, uptake with
//! its interval, waits with a distribution chart, and uptake by sex, age band, ethnic group and
//! deprivation quintile. Charts are server-side SVG with titles and text alternatives.

use crate::access::Staff;
use crate::html::{page, pct};
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
use maud::{html, Markup};
use std::collections::HashMap;
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
fn wait_chart(waits: &[f64]) -> Markup {
    const BINS: usize = 13;
    let mut counts = [0u64; BINS];
    for w in waits {
        let b = ((*w / 7.0).floor().max(0.0) as usize).min(BINS - 1);
        counts[b] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let (w, h, bar) = (560.0, 200.0, 40.0);
    let label = |i: usize| {
        if i == BINS - 1 {
            format!("{i}+")
        } else {
            i.to_string()
        }
    };
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
    html! {
        figure {
            svg role="img" aria-labelledby="wt wd" width=(w) height=(h + 40.0) viewBox={ "0 0 " (w) " " (h + 40.0) } {
                title id="wt" { "Waits from referral to start of core CR, by week" }
                desc id="wd" { (desc.join("; ")) }
                @for (i, c) in counts.iter().enumerate() {
                    @let bh = h * *c as f64 / max as f64;
                    @let x = 10.0 + i as f64 * bar;
                    rect x=(x) y=(h - bh) width=(bar - 4.0) height=(bh) fill="#005eb8" {}
                    text x=(x + bar / 2.0 - 2.0) y=(h + 14.0) font-size="11" text-anchor="middle" { (label(i)) }
                }
                text x=(w / 2.0) y=(h + 34.0) font-size="12" text-anchor="middle" { "weeks from referral to start" }
            }
            figcaption {
                "Waits from referral to the start of core CR (" (waits.len()) " patients who started)."
            }
        }
    }
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
            let body = Arc::new(render(&p, &records, period));
            let key = (p.code.clone(), period.from, period.to);
            app.dashboards.put(key, version, p.clone(), body.clone());
            body
        }
    };
    Ok(html_page(page(
        &format!("Dashboard – {}", p.name),
        c.nav(Some(&p.code)),
        body,
    )))
}

type CacheKey = (String, Date, Date);

/// Rendered dashboards by programme and period, each with the data version and programme
/// profile it was computed from. Bounded: when full it starts again.
#[derive(Default)]
pub(crate) struct Cache(Mutex<HashMap<CacheKey, Cached>>);

/// A rendered dashboard: the data version and profile it came from, and the HTML.
type Cached = (u64, Programme, Arc<Markup>);

const CACHE_ENTRIES: usize = 512;

impl Cache {
    fn get(&self, key: &CacheKey, version: u64, p: &Programme) -> Option<Arc<Markup>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(key)
            .filter(|(v, q, _)| *v == version && q == p)
            .map(|(_, _, body)| body.clone())
    }

    fn put(&self, key: CacheKey, version: u64, p: Programme, body: Arc<Markup>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= CACHE_ENTRIES && !m.contains_key(&key) {
            m.clear();
        }
        m.insert(key, (version, p, body));
    }
}

/// Median and IQR of `values` as "median (IQR q1–q3)".
fn median_iqr(values: &[f64]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    // Summary sorts what it is given; the caller's list stays in its order.
    let w = Summary::of(&mut values.to_vec());
    format!("{} (IQR {}–{})", num(w.median), num(w.q1), num(w.q3))
}

/// The dashboard's content for a programme's episodes referred in `period`.
fn render(p: &Programme, records: &[Record], period: Period) -> maud::Markup {
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
    let k = report.programmes.first();
    let mut wait_thresholds = (None, None);
    for kpi in k.iter().flat_map(|k| &k.results.kpis) {
        match kpi.key {
            "wait_cabg" => wait_thresholds.0 = kpi.threshold,
            "wait_mi_pci" => wait_thresholds.1 = kpi.threshold,
            _ => {}
        }
    }
    let is_share = |key: &str| matches!(key, "assessment1" | "assessment2");
    // Waits (overall and by the two KPI groups), duration, completion, assessment recording.
    let wait = |f: &KpiEpisode| Some(f.core_start?.days_since(f.referral_date) as f64);
    let mut waits: Vec<f64> = facts.iter().filter_map(wait).collect();
    waits.sort_by(f64::total_cmp);
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
    let uptake = [
        ("sex", group_by(records, |r| r.get(Col::Sex).to_text())),
        ("age band", group_by(records, age_band)),
        (
            "ethnic group",
            // The broad groups of core, as on the national pages.
            group_by(records, |r| {
                crest_core::ethnic_group(r.text(Col::Ethnicity)).to_string()
            }),
        ),
        (
            "deprivation quintile (1 = most deprived)",
            group_by(records, |r| {
                let q = r.get(Col::ImdQuintile).to_text();
                if q.is_empty() {
                    "not known".into()
                } else {
                    q
                }
            }),
        ),
        (
            "priority group",
            group_by(records, |r| {
                KpiEpisode::of_record(r, 0)
                    .map_or("not known", |f| f.group.code())
                    .replace('_', " ")
            }),
        ),
    ];
    html! {
        (crate::html::period_form(period.from, period.to, maud::html! {}))
        @if let Some(k) = k {
            @let r = &k.results;
            h2 { "Referrals and uptake" }
            p {
                (r.referred) " referred, " (r.started) " started core CR: uptake " (pct(r.uptake.value()))
                " (95% interval "
                (r.uptake.ci().map_or("–".into(), |(lo, hi)| format!("{}–{}", pct(Some(lo)), pct(Some(hi)))))
                ")."
            }
            h2 { "Key performance indicators" }
            p {
                "Grade: " strong class={ "grade-" (k.grade_shown().replace(' ', "-")) } { (k.grade_shown()) }
                @if r.referred == 0 { ": nobody was referred in this period" }
                @else { " (" (k.kpis_met) " of 7 met)" }
                "."
            }
            table tabindex="0" {
                caption { "The seven NCP_CR KPIs for " (period.from) " to " (period.to) }
                thead { tr {
                    th scope="col" { "KPI" } th scope="col" { "Value" }
                    th scope="col" { "Threshold" } th scope="col" { "Met" }
                } }
                tbody {
                    @for kpi in &r.kpis {
                        tr {
                            th scope="row" { (kpi.key.replace('_', " ")) }
                            @if is_share(kpi.key) {
                                td { (pct(kpi.value())) } td { (pct(kpi.threshold)) }
                            } @else {
                                td { (num(kpi.value())) } td { (num(kpi.threshold)) }
                            }
                            td { @if kpi.met { "yes" } @else { "no" } }
                        }
                    }
                }
            }
        }
        h2 { "Waits and delivery" }
        table tabindex="0" {
            caption { "Wait from referral to the start of core CR, days" }
            thead { tr {
                th scope="col" { "Patients" } th scope="col" { "Started" }
                th scope="col" { "Median (IQR)" } th scope="col" { "Threshold" }
            } }
            tbody {
                tr { th scope="row" { "All" } td { (waits.len()) } td { (median_iqr(&waits)) } td {} }
                tr { th scope="row" { "CABG" } td { (cabg.len()) } td { (median_iqr(&cabg)) } td { (num(wait_thresholds.0)) } }
                tr { th scope="row" { "MI/PCI" } td { (mi_pci.len()) } td { (median_iqr(&mi_pci)) } td { (num(wait_thresholds.1)) } }
            }
        }
        p { "Duration of core CR: median " (median_iqr(&durations)) " days." }
        p {
            "Completed: " (completed) " of " (started) " started. Assessment 1 recorded for " (a1)
            ", assessment 2 for " (a2) " of " (records.len()) " referred."
        }
        (wait_chart(&waits))
        table tabindex="0" {
            caption { "Delivery modes of those who started" }
            thead { tr { th scope="col" { "Mode" } th scope="col" { "Patients" } } }
            tbody {
                @for (m, n, _) in &modes {
                    tr { th scope="row" { (m.replace('_', " ")) } td { (n) } }
                }
            }
        }
        (outcomes(records))
        h2 { "Who takes up cardiac rehabilitation" }
        @for (title, rows) in &uptake {
            (crate::html::uptake_table(title, rows))
        }
    }
}

/// Paired A1 → A2 change for every numeric measure, and the HADS ≥ 8 shares (kpis.md).
fn outcomes(records: &[Record]) -> Markup {
    let a1 = FIELDS.iter().filter(|f| f.assessment() == Some(1));
    let a2 = FIELDS.iter().filter(|f| f.assessment() == Some(2));
    let mut changes = Vec::new();
    let mut hads = Vec::new();
    for (f1, f2) in a1.zip(a2) {
        if !matches!(f1.kind, Kind::Int { .. } | Kind::Decimal { .. }) {
            continue;
        }
        let pairs: Vec<(f64, f64)> = records
            .iter()
            .filter_map(|r| Some((r.num(f1.col)?, r.num(f2.col)?)))
            .collect();
        let c = paired_change(&pairs);
        if f1.name.starts_with("a1_hads") {
            hads.push((
                f1.label,
                c.n,
                share_at_least(pairs.iter().map(|p| p.0), HADS_CASE),
                share_at_least(pairs.iter().map(|p| p.1), HADS_CASE),
            ));
        }
        changes.push((f1.label, c));
    }
    html! {
        h2 { "Outcomes" }
        table tabindex="0" {
            caption { "Change from assessment 1 to assessment 2, among patients with both values" }
            thead { tr {
                th scope="col" { "Measure" } th scope="col" { "Patients" } th scope="col" { "Mean at 1" }
                th scope="col" { "Mean at 2" } th scope="col" { "Mean change" } th scope="col" { "95% interval" }
            } }
            tbody {
                @for (measure, c) in &changes {
                    tr {
                        th scope="row" { (measure) }
                        td { (c.n) } td { (one_dp(c.mean_a1)) } td { (one_dp(c.mean_a2)) }
                        td { (one_dp(c.mean_change)) }
                        td { (c.ci.map_or("–".into(), |(lo, hi)| format!("{} to {}", one_dp(Some(lo)), one_dp(Some(hi))))) }
                    }
                }
            }
        }
        table tabindex="0" {
            caption { "Patients with HADS ≥ 8 (symptoms present), among those scored at both assessments" }
            thead { tr {
                th scope="col" { "Scale" } th scope="col" { "Patients" } th scope="col" { "At 1" } th scope="col" { "At 2" }
            } }
            tbody {
                @for (scale, n, at1, at2) in &hads {
                    tr { th scope="row" { (scale) } td { (n) } td { (pct(*at1)) } td { (pct(*at2)) } }
                }
            }
        }
    }
}

fn one_dp(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.1}"))
}
