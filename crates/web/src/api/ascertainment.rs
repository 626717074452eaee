//! Case ascertainment through the API, scoped as the pages are: analysts get every area's
//! exact figures (the national dashboard's), commissioners their region's as published (the
//! region page's "eligible, referred and started").

use super::figures::{PeriodParams, Table};
use crate::app::access::Planner;
use crate::app::ApiErrorBody;
use crate::app::{App, WebError};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use crest_store::Role;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/v1/ascertainment", get(ascertainment))
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
            Ok(Json(Table::new(
                period.from.to_string(),
                period.to.to_string(),
                false,
                crest_stats::ascertainment::COLUMNS
                    .map(String::from)
                    .to_vec(),
                rows,
            )))
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
