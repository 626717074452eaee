//! A programme seen from the national audit: its KPIs and grade over the last three years, its
//! position on each funnel plot for the chosen period, and its uptake by group.

use crate::access::Analyst;
use crate::html::{esc, page, pct, uptake_table};
use crate::inequalities::uptake_by;
use crate::national_dashboard::{chosen_period, proportion, Filters};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_stats::funnel::{self, Direction, Position};
use crest_stats::kpis::{compute, Measure, Thresholds};
use std::fmt::Write;
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
            let mut body = format!(
                "<p>{} · {} · {}</p><h2>KPIs over three years</h2><table><caption>KPIs and grade by year</caption><thead><tr>\
                 <th scope=\"col\">Period</th><th scope=\"col\">Referred</th><th scope=\"col\">Uptake</th>",
                esc(&code),
                esc(&programmes[me].nation.code().replace('_', " ")),
                esc(&programmes[me].region)
            );
            let mut header_done = false;
            let mut rows = String::new();
            let mut current = None;
            for years in [2, 1, 0] {
                let p = period.earlier(years);
                let episodes = n.kpi_episodes(p.from, p.to, &programmes)?;
                let report = compute(&programmes, &episodes, p, &Thresholds::default());
                let Some(k) = report.programmes.iter().find(|k| k.programme_code == code) else {
                    continue;
                };
                if !header_done {
                    for kpi in &k.results.kpis {
                        let _ = write!(body, "<th scope=\"col\">{}</th>", esc(&kpi.key.replace('_', " ")));
                    }
                    body.push_str("<th scope=\"col\">Grade</th></tr></thead><tbody>");
                    header_done = true;
                }
                let _ = write!(
                    rows,
                    "<tr><th scope=\"row\">{} to {}</th><td>{}</td><td>{}</td>",
                    p.from,
                    p.to,
                    k.results.referred,
                    pct(k.results.uptake.value())
                );
                for kpi in &k.results.kpis {
                    let v = match kpi.measure {
                        Measure::Proportion(_) => pct(kpi.value()),
                        _ => kpi.value().map_or("–".into(), crest_core::record::format_num),
                    };
                    let _ = write!(rows, "<td>{v}{}</td>", if kpi.met { "" } else { " ✗" });
                }
                if k.results.referred == 0 {
                    rows.push_str("<td>no data</td></tr>");
                } else {
                    let _ = write!(rows, "<td class=\"grade-{0}\">{0} ({1} of 7)</td></tr>", k.grade, k.kpis_met);
                }
                if years == 0 {
                    current = Some(report);
                }
            }
            body.push_str(&rows);
            body.push_str("</tbody></table><p>✗ = standard not met.</p>");
            // Where it sits on each funnel plot this period.
            if let Some(report) = current {
                let _ = write!(body, "<h2>On the funnel plots, {} to {}</h2><ul>", period.from, period.to);
                for (key, label) in [("uptake", "Uptake"), ("assessment1", "Assessment 1"), ("assessment2", "Assessment 2")] {
                    let points: Vec<(u64, u64)> = report.programmes.iter().map(|p| proportion(p, key)).collect();
                    let i = report.programmes.iter().position(|p| p.programme_code == code);
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
                    let _ = write!(
                        body,
                        "<li>{label}: {k}/{m} = {} against {} nationally: <strong>{place}</strong></li>",
                        pct((m > 0).then(|| k as f64 / m as f64)),
                        pct(Some(p0))
                    );
                }
                body.push_str("</ul>");
            }
            // Who takes up CR here.
            let facts = n.equity_facts(period.from, period.to)?;
            let mine: Vec<&crest_store::national::EquityFact> = facts.iter().filter(|f| f.programme == code).collect();
            body.push_str("<h2>Who takes up cardiac rehabilitation here</h2>");
            body.push_str(&uptake_table("sex", &uptake_by(&mine, |x| x.sex.clone().unwrap_or_else(|| "not known".into()))));
            body.push_str(&uptake_table("age band", &uptake_by(&mine, |x| crest_core::age_band(x.age).to_string())));
            body.push_str(&uptake_table(
                "ethnic group",
                &uptake_by(&mine, |x| crest_core::ethnic_group(x.ethnicity.as_deref()).to_string()),
            ));
            body.push_str(&uptake_table(
                "deprivation quintile (1 = most deprived)",
                &uptake_by(&mine, |x| x.imd_quintile.map_or("not known".into(), |q| q.to_string())),
            ));
            Ok((name, body))
        })
        .await?;
    Ok(html_page(page(
        &format!("National audit: {name}"),
        &c.nav(None),
        &body,
    )))
}
