//! A programme seen from the national audit: its KPIs and grade over the last three years, its
//! position on each funnel plot for the chosen period, and its uptake by group.

use crate::access::Analyst;
use crate::html::{page, pct, uptake_table};
use crate::inequalities::uptake_by;
use crate::national_dashboard::{chosen_period, proportion, Filters};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_stats::funnel::{self, Direction, Position};
use crest_stats::kpis::{compute, Measure, ProgrammeKpis, Thresholds};
use maud::html;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/national/programme", get(programme))
}

#[derive(serde::Deserialize)]
struct ProgrammeQuery {
    code: String,
    #[serde(flatten)]
    filters: Filters,
}

async fn programme(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<ProgrammeQuery>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &q.filters)?;
    let code = q.code.clone();
    let (name, body) = app
        .national(move |n| {
            let programmes = n.programmes()?;
            let me = programmes
                .iter()
                .position(|p| p.code == code)
                .ok_or(WebError::NotFound)?;
            let name = programmes[me].name.clone();
            // The programme's row for each of the last three years, oldest first.
            let mut years: Vec<(crest_core::Period, ProgrammeKpis)> = Vec::new();
            let mut current = None;
            for back in [2, 1, 0] {
                let p = period.earlier(back);
                let episodes = n.kpi_episodes(p.from, p.to, &programmes)?;
                let report = compute(&programmes, &episodes, p, &Thresholds::default());
                if let Some(k) = report.programmes.iter().find(|k| k.programme_code == code) {
                    years.push((p, k.clone()));
                }
                if back == 0 {
                    current = Some(report);
                }
            }
            // Where it sits on each funnel plot this period.
            let mut funnels = Vec::new();
            if let Some(report) = &current {
                let i = report.programmes.iter().position(|p| p.programme_code == code);
                for (key, label) in [("uptake", "Uptake"), ("assessment1", "Assessment 1"), ("assessment2", "Assessment 2")] {
                    let points: Vec<(u64, u64)> = report.programmes.iter().map(|p| proportion(p, key)).collect();
                    let (Some(p0), Some(i)) = (funnel::pooled(&points), i) else {
                        continue;
                    };
                    let (k, m) = points[i];
                    let place = match funnel::position(k, m, p0) {
                        None => "no patients".to_string(),
                        Some(Position::Within) => "within the limits".to_string(),
                        Some(Position::Alert(d)) => format!("alert, {}", if d == Direction::Low { "low" } else { "high" }),
                        Some(Position::Alarm(d)) => format!("alarm, {}", if d == Direction::Low { "low" } else { "high" }),
                    };
                    funnels.push((label, k, m, p0, place));
                }
            }
            // Who takes up CR here.
            let facts = n.equity_facts(period.from, period.to)?;
            let mine: Vec<&crest_store::national::EquityFact> = facts.iter().filter(|f| f.programme == code).collect();
            let uptake: [(&str, crate::inequalities::Uptake); 4] = [
                ("sex", uptake_by(&mine, |x| x.sex.clone().unwrap_or_else(|| "not known".into()))),
                ("age band", uptake_by(&mine, |x| crest_core::age_band(x.age).to_string())),
                (
                    "ethnic group",
                    uptake_by(&mine, |x| crest_core::ethnic_group(x.ethnicity.as_deref()).to_string()),
                ),
                (
                    "deprivation quintile (1 = most deprived)",
                    uptake_by(&mine, |x| x.imd_quintile.map_or("not known".into(), |q| q.to_string())),
                ),
            ];
            let me = &programmes[me];
            let body = html! {
                p { (code) " · " (me.nation.label()) " · " (me.region) }
                h2 { "KPIs over three years" }
                table tabindex="0" {
                    caption { "KPIs and grade by year" }
                    thead { tr {
                        th scope="col" { "Period" } th scope="col" { "Referred" } th scope="col" { "Uptake" }
                        @if let Some((_, k)) = years.first() {
                            @for kpi in &k.results.kpis {
                                th scope="col" { (kpi.label()) }
                            }
                        }
                        th scope="col" { "Grade" }
                    } }
                    tbody {
                        @for (p, k) in &years {
                            tr {
                                th scope="row" { (p.from) " to " (p.to) }
                                td { (k.results.referred) }
                                td { (pct(k.results.uptake.value())) }
                                @for kpi in &k.results.kpis {
                                    td {
                                        @match kpi.measure {
                                            Measure::Proportion(_) => (pct(kpi.value())),
                                            _ => (kpi.value().map_or("–".into(), crest_core::record::format_num)),
                                        }
                                        @if !kpi.met { " ✗" }
                                    }
                                }
                                @if k.results.referred == 0 {
                                    td { "no data" }
                                } @else {
                                    td class={ "grade-" (k.grade) } { (k.grade) " (" (k.kpis_met) " of 7)" }
                                }
                            }
                        }
                    }
                }
                p { "✗ = standard not met." }
                @if current.is_some() {
                    h2 { "On the funnel plots, " (period.from) " to " (period.to) }
                    ul {
                        @for (label, k, m, p0, place) in &funnels {
                            li {
                                (label) ": " (k) "/" (m) " = " (pct((*m > 0).then(|| *k as f64 / *m as f64)))
                                " against " (pct(Some(*p0))) " nationally: " strong { (place) }
                            }
                        }
                    }
                }
                h2 { "Who takes up cardiac rehabilitation here" }
                @for (title, rows) in &uptake {
                    (uptake_table(title, rows))
                }
            };
            Ok((name, body))
        })
        .await?;
    Ok(html_page(page(
        &format!("National audit: {name}"),
        c.nav(None),
        body,
    )))
}
