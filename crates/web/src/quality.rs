//! Data quality for national analysts: which programmes have submitted for a period (missing
//! first), and how complete each programme's data are, field by field, with assessment 1 and 2
//! recording, the worst first.

use crate::access::Analyst;
use crate::html::{esc, page, pct};
use crate::national_dashboard::{chosen_period, proportion, Filters};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_stats::kpis::{compute, Thresholds};
use crest_store::national::national_fields;
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/national/quality", get(quality))
}

#[derive(serde::Deserialize, Default)]
struct QualityQuery {
    #[serde(flatten)]
    filters: Filters,
    #[serde(default)]
    programme: String,
}

async fn quality(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<QualityQuery>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &q.filters)?;
    let chosen = q.programme.clone();
    let body = app
        .national(move |n| {
            let programmes = n.programmes()?;
            let held = n.submissions()?;
            let counts = n.completeness(period.from, period.to)?;
            let episodes = n.kpi_episodes(period.from, period.to, &programmes)?;
            let report = compute(&programmes, &episodes, period, &Thresholds::default());
            let (from, to) = (period.from.to_string(), period.to.to_string());
            let mut body = format!(
                "<form method=\"get\" class=\"noprint\"><label for=\"from\">From</label><input id=\"from\" name=\"from\" value=\"{from}\">\
                 <label for=\"to\">To</label><input id=\"to\" name=\"to\" value=\"{to}\"> <button>Show</button></form>"
            );
            // Submissions received against expected: every registered programme, once.
            let mut rows: Vec<(bool, String)> = programmes
                .iter()
                .map(|p| {
                    let got = held
                        .iter()
                        .find(|s| s.programme == p.code && s.from == from && s.to == to && s.current);
                    match got {
                        Some(s) => (true, format!(
                            "<tr><th scope=\"row\">{}</th><td>received</td><td>{}</td><td>{}</td></tr>",
                            esc(&p.code), s.episodes, esc(&s.key_id)
                        )),
                        None => (false, format!(
                            "<tr><th scope=\"row\">{}</th><td><strong>missing</strong></td><td>–</td><td>–</td></tr>",
                            esc(&p.code)
                        )),
                    }
                })
                .collect();
            rows.sort_by_key(|r| r.0);
            let received = rows.iter().filter(|r| r.0).count();
            let _ = write!(
                body,
                "<h2>Submissions for {from} to {to}</h2><p>{received} of {} programmes have submitted.</p>\
                 <table><caption>Submissions received against expected (missing first)</caption><thead><tr>\
                 <th scope=\"col\">Programme</th><th scope=\"col\">Status</th><th scope=\"col\">Episodes</th><th scope=\"col\">Key id</th></tr></thead><tbody>{}</tbody></table>",
                programmes.len(),
                rows.into_iter().map(|r| r.1).collect::<String>()
            );
            // Completeness of the optional national fields (required ones are always there).
            let fields: Vec<(usize, &crest_core::Field)> = national_fields()
                .enumerate()
                .filter(|(_, f)| !f.required)
                .collect();
            let mut table: Vec<(f64, String)> = Vec::new();
            for (code, total, filled) in &counts {
                let shares: Vec<(f64, &str)> = fields
                    .iter()
                    .map(|(i, f)| (filled[*i] as f64 / (*total).max(1) as f64, f.name))
                    .collect();
                let overall = shares.iter().map(|s| s.0).sum::<f64>() / shares.len().max(1) as f64;
                let mut worst = shares.clone();
                worst.sort_by(|a, b| a.0.total_cmp(&b.0));
                let worst: Vec<String> = worst
                    .iter()
                    .take(3)
                    .map(|(s, name)| format!("{} {}", esc(name), pct(Some(*s))))
                    .collect();
                let kpis = report.programmes.iter().find(|p| &p.programme_code == code);
                let share = |key: &str| {
                    kpis.map(|k| proportion(k, key))
                        .and_then(|(k, n)| (n > 0).then(|| k as f64 / n as f64))
                };
                table.push((
                    overall,
                    format!(
                        "<tr><th scope=\"row\"><a href=\"/national/quality?from={from}&amp;to={to}&amp;programme={code}\">{code}</a></th>\
                         <td>{total}</td><td>{overall}</td><td>{worst}</td><td>{a1}</td><td>{a2}</td></tr>",
                        code = esc(code),
                        overall = pct(Some(overall)),
                        worst = worst.join(", "),
                        a1 = pct(share("assessment1")),
                        a2 = pct(share("assessment2")),
                    ),
                ));
            }
            table.sort_by(|a, b| a.0.total_cmp(&b.0));
            let _ = write!(
                body,
                "<h2>Completeness</h2><table><caption>Completeness of the optional national fields by programme (worst first)</caption>\
                 <thead><tr><th scope=\"col\">Programme</th><th scope=\"col\">Episodes</th><th scope=\"col\">Fields complete</th>\
                 <th scope=\"col\">Least complete</th><th scope=\"col\">Assessment 1 recorded</th><th scope=\"col\">Assessment 2 within 140 days</th>\
                 </tr></thead><tbody>{}</tbody></table>",
                table.into_iter().map(|r| r.1).collect::<String>()
            );
            if let Some((code, total, filled)) = counts.iter().find(|c| c.0 == chosen) {
                let mut rows: Vec<(f64, &str)> = fields
                    .iter()
                    .map(|(i, f)| (filled[*i] as f64 / (*total).max(1) as f64, f.name))
                    .collect();
                rows.sort_by(|a, b| a.0.total_cmp(&b.0));
                let _ = write!(
                    body,
                    "<h2>Every field of {}</h2><table><caption>Completeness of each optional national field, {} episodes</caption>\
                     <thead><tr><th scope=\"col\">Field</th><th scope=\"col\">Complete</th></tr></thead><tbody>{}</tbody></table>",
                    esc(code),
                    total,
                    rows.iter()
                        .map(|(s, name)| format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(name), pct(Some(*s))))
                        .collect::<String>()
                );
            }
            Ok(body)
        })
        .await?;
    Ok(html_page(page(
        "National audit: data quality",
        &c.nav(None),
        &body,
    )))
}
