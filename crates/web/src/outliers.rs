//! Outlier management for national analysts: the programmes outside the funnel limits of a
//! proportion KPI for a period (`alert` beyond 95%, `alarm` beyond 99.8%, low or high), and a
//! case for each that moves open → contacted → response received → closed, with dated notes
//! and its whole history kept.

use crate::access::Analyst;
use crate::html::{csrf_field, page, pct, url_encode};
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
use maud::html;
use std::collections::HashMap;
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
    let method = f.method()?;
    let (found, cases) = app
        .national(move |n| Ok((find_outliers(n, period, method)?, n.cases()?)))
        .await?;
    let case_href = |id: &str| format!("/national/outliers/case?id={}", url_encode(id));
    let body = html! {
        (crate::html::period_form(period.from, period.to, crate::national_dashboard::method_choice(method)))
        p class="hint" { "Limits: " (method.label()) ". When most programmes fall outside plain limits, the programmes vary more than chance allows (overdispersion): an adjusted method shows which stand out beyond that." }
        h2 { "Outside the funnel limits, " (period.from) " to " (period.to) }
        @if found.is_empty() {
            p { "No programme is outside the 95% limits of any proportion KPI." }
        } @else {
            table tabindex="0" {
                caption { "Programmes outside the limits" }
                thead { tr {
                    th scope="col" { "Programme" } th scope="col" { "KPI" } th scope="col" { "Level" }
                    th scope="col" { "Finding" } th scope="col" { "Case" }
                } }
                tbody {
                    @for f in &found {
                        @let id = format!("{}|{}|{}|{}", f.programme, f.kpi, period.from, period.to);
                        tr {
                            th scope="row" { (f.programme) }
                            td { (f.label) }
                            td { (f.level) " " (f.direction) }
                            td { (f.finding) }
                            td {
                                @match cases.iter().find(|c| c.id == id) {
                                    Some(case) => a href=(case_href(&id)) { (stage(&case.status)) },
                                    None => form method="post" action="/national/outliers" {
                                        (csrf_field(&c.session.csrf))
                                        input type="hidden" name="programme" value=(f.programme);
                                        input type="hidden" name="kpi" value=(f.kpi);
                                        input type="hidden" name="from" value=(period.from);
                                        input type="hidden" name="to" value=(period.to);
                                        input type="hidden" name="method" value=(method.code());
                                        button { "Open a case" }
                                    },
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Cases" }
        table tabindex="0" {
            caption { (cases.len()) " case(s), newest first" }
            thead { tr {
                th scope="col" { "Programme" } th scope="col" { "KPI" } th scope="col" { "Period" }
                th scope="col" { "Level" } th scope="col" { "Stage" } th scope="col" { "Opened" }
            } }
            tbody {
                @for case in &cases {
                    tr {
                        th scope="row" { a href=(case_href(&case.id)) { (case.programme) } }
                        td { (case.kpi) }
                        td { (case.from) " to " (case.to) }
                        td { (case.level) " " (case.direction) }
                        td { (stage(&case.status)) }
                        td { (case.opened_at) }
                    }
                }
            }
        }
    };
    Ok(html_page(page(
        "National audit: outliers",
        c.nav(None),
        body,
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
        method: field("method"),
        ..Default::default()
    };
    let period = chosen_period(&app, &filters)?;
    let method = filters.method()?;
    if !FUNNELS.iter().any(|(k, _)| *k == kpi) {
        return Err(WebError::BadRequest(format!("'{kpi}' has no funnel plot")));
    }
    let username = c.user.username.clone();
    let id = app
        .national(move |n| {
            // The finding is computed again here: a case is opened only for a real outlier.
            let found = find_outliers(n, period, method)?
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
    method: crest_stats::funnel::Method,
) -> Result<Vec<Found>, WebError> {
    let programmes = n.programmes()?;
    let episodes = n.kpi_episodes(period.from, period.to, &programmes)?;
    let report = compute(&programmes, &episodes, period, &Thresholds::default());
    // The same positions the annual report publishes (one definition: exact counts, pooled
    // over every programme).
    let keys: Vec<&'static str> = FUNNELS.iter().map(|(k, _)| *k).collect();
    let found = crest_stats::published::outliers(&report, &keys, method)
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
) -> maud::Markup {
    // A closed case takes no more notes; an open one moves only forward.
    let from = CASE_STAGES
        .iter()
        .position(|s| *s == case.status)
        .unwrap_or(0);
    html! {
        @if let Some(e) = error {
            div class="summary" role="alert" tabindex="-1" autofocus {
                h2 { "There is a problem" }
                p { (e) }
            }
        }
        p {
            (case.programme) " is an " strong { (case.level) " " (case.direction) }
            " outlier for " (case.kpi) " from " (case.from) " to " (case.to) ": " (case.finding) "."
        }
        p { "Stage: " strong { (stage(&case.status)) } "." }
        table tabindex="0" {
            caption { "History" }
            thead { tr {
                th scope="col" { "When" } th scope="col" { "Who" }
                th scope="col" { "Stage" } th scope="col" { "Note" }
            } }
            tbody {
                @for h in history {
                    tr { td { (h.at) } td { (h.username) } td { (stage(&h.status)) } td { (h.note) } }
                }
            }
        }
        @if case.status != "closed" {
            form method="post" {
                (csrf_field(&c.session.csrf))
                input type="hidden" name="id" value=(case.id);
                label for="status" { "Stage" }
                select id="status" name="status" {
                    @for s in &CASE_STAGES[from..] {
                        option value=(s) selected[*s == case.status] { (stage(s)) }
                    }
                }
                label for="note" { "Note (dated and kept)" }
                textarea id="note" name="note" rows="3" cols="60" {}
                p { button { "Record" } }
            }
        }
        p { a href="/national/outliers" { "All outliers and cases" } }
    }
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
        c.nav(None),
        case_page(&c, &case, &history, None),
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
                c.nav(None),
                case_page(&c, &case, &history, Some(&e.to_string())),
            ));
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}
