//! Case ascertainment through the API, scoped as the pages are: analysts get every area's
//! exact figures (the national dashboard's), commissioners their region's as published (the
//! region page's "eligible, referred and started"), a programme's staff its own (its
//! dashboard's).

use super::figures::{PeriodParams, Table};
use crate::app::access::{Planner, Staff};
use crate::app::ApiErrorBody;
use crate::app::{App, WebError};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use crest_store::Role;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/ascertainment", get(ascertainment))
        .route(
            "/api/v1/programmes/{code}/ascertainment",
            get(programme_ascertainment),
        )
}

/// A programme's referrals and starts against its expected patients in the local store (as
/// its dashboard shows them), exact, in all and by condition: the columns of
/// `crest ascertainment`. Programme staff and leads.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/ascertainment", tag = "kpis",
    params(("code" = String, Path), PeriodParams),
    responses((status = 200, body = Table), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn programme_ascertainment(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    Query(q): Query<PeriodParams>,
) -> Result<Json<Table>, WebError> {
    let period = super::figures::period_of(&app, &q)?;
    let rows = app
        .db(move |s, _| {
            let expected = s.expected_of(&crest_core::expected::Area::Programme(p.code.clone()))?;
            let one = std::slice::from_ref(&p);
            let episodes = s.kpi_episodes(period.from, period.to, one)?;
            let a = crest_stats::ascertainment::ascertainment(
                &expected,
                one,
                &episodes,
                period.from,
                period.to,
            );
            Ok(crest_stats::ascertainment::rows(&a)
                .into_iter()
                .filter(|r| r[0] == "programme")
                .collect())
        })
        .await?;
    Ok(exact(period, rows))
}

/// Exact rows in the columns of `crest ascertainment`.
fn exact(period: crest_core::Period, rows: Vec<Vec<String>>) -> Json<Table> {
    Json(Table::new(
        period.from.to_string(),
        period.to.to_string(),
        false,
        crest_stats::ascertainment::COLUMNS
            .map(String::from)
            .to_vec(),
        rows,
    ))
}

/// Referred ÷ expected (case ascertainment) and started ÷ expected, with 95% intervals. For
/// national analysts, exact: the nation, each region and each programme, in all and by
/// condition, with the columns of `crest ascertainment` (areas under 80% flagged). For
/// commissioners, their region's total and programmes as published (counts rounded, 1–7 as
/// `"*"`, percentages from the rounded counts, `"incomplete"` where the expected counts do not
/// cover the period). Researchers get 404, as they have no such page.
#[utoipa::path(get, path = "/api/v1/ascertainment", tag = "kpis", params(PeriodParams),
    responses((status = 200, body = Table), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn ascertainment(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<PeriodParams>,
) -> Result<Json<Table>, WebError> {
    match c.user.role {
        Role::NationalAnalyst => {
            let period = super::figures::period_of(&app, &q)?;
            let a = app.clone();
            let rows = app
                .national(move |n| {
                    let nr = a.national_report(n, period)?;
                    Ok(crest_stats::ascertainment::rows(&nr.ascertainment))
                })
                .await?;
            Ok(exact(period, rows))
        }
        Role::Commissioner => {
            let (from, to) = q.texts();
            let (table, period) =
                crate::region::page::published_ascertainment(&app, &c, from, to).await?;
            let (columns, rows) = table.file();
            Ok(Json(Table::new(
                period.from.to_string(),
                period.to.to_string(),
                true,
                columns,
                rows,
            )))
        }
        // As the pages: researchers have no ascertainment page.
        _ => Err(WebError::NotFound),
    }
}
