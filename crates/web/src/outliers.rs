//! Outlier management for national analysts: the programmes outside the funnel limits of a
//! proportion KPI for a period (`alert` beyond 95%, `alarm` beyond 99.8%, low or high), and a
//! case for each that moves open → contacted → response received → closed, with dated notes
//! and its whole history kept.

use crate::access::Analyst;
use crate::html::{csrf_field, esc, page, pct, url_encode};
use crate::national_dashboard::{chosen_period, Filters};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use crest_report::charts::FUNNELS;
use crest_stats::funnel::{Direction, Position};
use crest_stats::kpis::{compute, Thresholds};
use crest_store::national::{OutlierCase, CASE_STAGES};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/outliers", get(list).post(open_case))
        .route("/national/outliers/case", get(show).post(update))
}

fn stage(s: &str) -> String {
    s.replace('_', " ")
}

async fn list(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &f)?;
    let (found, cases) = app
        .national(move |n| Ok((find_outliers(n, period)?, n.cases()?)))
        .await?;
    let mut body = format!(
        "<form method=\"get\" class=\"noprint\"><label for=\"from\">From</label><input id=\"from\" name=\"from\" value=\"{}\">\
         <label for=\"to\">To</label><input id=\"to\" name=\"to\" value=\"{}\"> <button>Show</button></form>\
         <h2>Outside the funnel limits, {} to {}</h2>",
        period.from, period.to, period.from, period.to
    );
    if found.is_empty() {
        body.push_str("<p>No programme is outside the 95% limits of any proportion KPI.</p>");
    } else {
        body.push_str("<table><caption>Programmes outside the limits</caption><thead><tr><th scope=\"col\">Programme</th><th scope=\"col\">KPI</th>\
            <th scope=\"col\">Level</th><th scope=\"col\">Finding</th><th scope=\"col\">Case</th></tr></thead><tbody>");
        for Found {
            programme: code,
            kpi: key,
            label,
            level,
            direction: dir,
            finding,
        } in &found
        {
            let id = format!("{code}|{key}|{}|{}", period.from, period.to);
            let case = match cases.iter().find(|c| c.id == id) {
                Some(c) => format!(
                    "<a href=\"/national/outliers/case?id={}\">{}</a>",
                    esc(&id),
                    esc(&stage(&c.status))
                ),
                None => format!(
                    "<form method=\"post\" action=\"/national/outliers\">{}\
                     <input type=\"hidden\" name=\"programme\" value=\"{}\"><input type=\"hidden\" name=\"kpi\" value=\"{key}\">\
                     <input type=\"hidden\" name=\"from\" value=\"{}\"><input type=\"hidden\" name=\"to\" value=\"{}\">\
                     <button>Open a case</button></form>",
                    csrf_field(&c.session.csrf),
                    esc(code),
                    period.from,
                    period.to
                ),
            };
            let _ = write!(
                body,
                "<tr><th scope=\"row\">{}</th><td>{label}</td><td>{level} {dir}</td><td>{}</td><td>{case}</td></tr>",
                esc(code),
                esc(finding)
            );
        }
        body.push_str("</tbody></table>");
    }
    let _ = write!(
        body,
        "<h2>Cases</h2><table><caption>{} case(s), newest first</caption><thead><tr><th scope=\"col\">Programme</th>\
         <th scope=\"col\">KPI</th><th scope=\"col\">Period</th><th scope=\"col\">Level</th><th scope=\"col\">Stage</th>\
         <th scope=\"col\">Opened</th></tr></thead><tbody>",
        cases.len()
    );
    for case in &cases {
        let _ = write!(
            body,
            "<tr><th scope=\"row\"><a href=\"/national/outliers/case?id={}\">{}</a></th><td>{}</td><td>{} to {}</td>\
             <td>{} {}</td><td>{}</td><td>{}</td></tr>",
            esc(&case.id),
            esc(&case.programme),
            esc(&case.kpi),
            esc(&case.from),
            esc(&case.to),
            esc(&case.level),
            esc(&case.direction),
            esc(&stage(&case.status)),
            esc(&case.opened_at)
        );
    }
    body.push_str("</tbody></table>");
    Ok(html_page(page(
        "National audit: outliers",
        &c.nav(None),
        &body,
    )))
}

async fn open_case(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    c.check_csrf(form.get("csrf").map(String::as_str))?;
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (programme, kpi) = (field("programme"), field("kpi"));
    let filters = Filters {
        from: field("from"),
        to: field("to"),
        ..Default::default()
    };
    let period = chosen_period(&app, &filters)?;
    if !FUNNELS.iter().any(|(k, _)| *k == kpi) {
        return Err(WebError::BadRequest(format!("'{kpi}' has no funnel plot")));
    }
    let username = c.user.username.clone();
    let id = app
        .national(move |n| {
            // The finding is computed again here: a case is opened only for a real outlier.
            let found = find_outliers(n, period)?
                .into_iter()
                .find(|o| o.programme == programme && o.kpi == kpi)
                .ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "{programme} is within the limits for {kpi} in this period"
                    ))
                })?;
            let case = OutlierCase {
                id: String::new(),
                programme,
                kpi,
                from: period.from.to_string(),
                to: period.to.to_string(),
                level: found.level.into(),
                direction: found.direction.into(),
                finding: found.finding,
                status: "open".into(),
                opened_at: crest_store::utc_now(),
            };
            Ok(n.open_case(&case, &username)?)
        })
        .await?;
    Ok(Redirect::to(&format!("/national/outliers/case?id={}", url_encode(&id))).into_response())
}

/// A programme outside a funnel's limits.
struct Found {
    programme: String,
    kpi: &'static str,
    label: &'static str,
    level: &'static str,
    direction: &'static str,
    finding: String,
}

/// Every programme outside the 95% limits of a proportion KPI's funnel in `period`.
fn find_outliers(
    n: &mut crest_store::NationalStore,
    period: crest_core::Period,
) -> Result<Vec<Found>, WebError> {
    let programmes = n.programmes()?;
    let episodes = n.kpi_episodes(period.from, period.to, &programmes)?;
    let report = compute(&programmes, &episodes, period, &Thresholds::default());
    // The same positions the annual report publishes (one definition: exact counts, pooled
    // over every programme).
    let keys: Vec<&'static str> = FUNNELS.iter().map(|(k, _)| *k).collect();
    let found = crest_stats::published::outliers(&report, &keys)
        .into_iter()
        .filter_map(|o| {
            let (level, dir) = match o.position {
                Position::Alert(d) => ("alert", d),
                Position::Alarm(d) => ("alarm", d),
                Position::Within => return None,
            };
            let label = FUNNELS
                .iter()
                .find(|(k, _)| *k == o.kpi)
                .map_or("", |f| f.1);
            Some(Found {
                programme: o.programme_code,
                kpi: o.kpi,
                label,
                level,
                direction: if dir == Direction::Low { "low" } else { "high" },
                finding: format!(
                    "{}/{} = {} (pooled {})",
                    o.numerator,
                    o.denominator,
                    pct(Some(o.numerator as f64 / o.denominator as f64)),
                    pct(Some(o.pooled))
                ),
            })
        })
        .collect();
    Ok(found)
}

#[derive(serde::Deserialize)]
struct CaseQuery {
    id: String,
}

fn case_page(
    c: &crate::Ctx,
    case: &OutlierCase,
    history: &[crest_store::national::CaseNote],
    error: Option<&str>,
) -> String {
    let mut body = String::new();
    if let Some(e) = error {
        let _ = write!(
            body,
            "<div class=\"summary\" role=\"alert\" tabindex=\"-1\" autofocus><h2>There is a problem</h2><p>{}</p></div>",
            esc(e)
        );
    }
    let _ = write!(
        body,
        "<p>{} is an <strong>{} {}</strong> outlier for {} from {} to {}: {}.</p><p>Stage: <strong>{}</strong>.</p>\
         <table><caption>History</caption><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th>\
         <th scope=\"col\">Stage</th><th scope=\"col\">Note</th></tr></thead><tbody>",
        esc(&case.programme),
        esc(&case.level),
        esc(&case.direction),
        esc(&case.kpi),
        esc(&case.from),
        esc(&case.to),
        esc(&case.finding),
        esc(&stage(&case.status))
    );
    for h in history {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&h.at),
            esc(&h.username),
            esc(&stage(&h.status)),
            esc(&h.note)
        );
    }
    body.push_str("</tbody></table>");
    if case.status != "closed" {
        let _ = write!(
            body,
            "<form method=\"post\">{}<input type=\"hidden\" name=\"id\" value=\"{}\">\
             <label for=\"status\">Stage</label><select id=\"status\" name=\"status\">",
            csrf_field(&c.session.csrf),
            esc(&case.id)
        );
        let from = CASE_STAGES
            .iter()
            .position(|s| *s == case.status)
            .unwrap_or(0);
        for s in &CASE_STAGES[from..] {
            let sel = if *s == case.status { " selected" } else { "" };
            let _ = write!(body, "<option value=\"{s}\"{sel}>{}</option>", stage(s));
        }
        body.push_str(
            "</select><label for=\"note\">Note (dated and kept)</label><textarea id=\"note\" name=\"note\" rows=\"3\" cols=\"60\"></textarea>\
             <p><button>Record</button></p></form>",
        );
    }
    body.push_str("<p><a href=\"/national/outliers\">All outliers and cases</a></p>");
    body
}

async fn show(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<CaseQuery>,
) -> Result<Response, WebError> {
    let id = q.id.clone();
    let (case, history) = app
        .national(move |n| {
            let case = n
                .cases()?
                .into_iter()
                .find(|x| x.id == id)
                .ok_or(WebError::NotFound)?;
            let history = n.case_history(&case.id)?;
            Ok((case, history))
        })
        .await?;
    Ok(html_page(page(
        &format!("Outlier case: {} {}", case.programme, case.kpi),
        &c.nav(None),
        &case_page(&c, &case, &history, None),
    )))
}

async fn update(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    c.check_csrf(form.get("csrf").map(String::as_str))?;
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (id, status, note) = (field("id"), field("status"), field("note"));
    let username = c.user.username.clone();
    let outcome = app
        .national(move |n| {
            let result = n.update_case(&id, &status, &note, &username, &crest_store::utc_now());
            let case = n
                .cases()?
                .into_iter()
                .find(|x| x.id == id)
                .ok_or(WebError::NotFound)?;
            let history = n.case_history(&id)?;
            Ok((result, case, history))
        })
        .await?;
    match outcome {
        (Ok(()), case, _) => Ok(Redirect::to(&format!(
            "/national/outliers/case?id={}",
            url_encode(&case.id)
        ))
        .into_response()),
        (Err(e), case, history) => {
            let mut r = html_page(page(
                &format!("Outlier case: {} {}", case.programme, case.kpi),
                &c.nav(None),
                &case_page(&c, &case, &history, Some(&e.to_string())),
            ));
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}
