//! Measures over time through the API: a programme's SPC series (its staff and leads), the
//! nation's, a region's or any programme's from the national store (national analysts; their
//! region's as published for commissioners), and
//! the service changes each draws; the same charts the pages draw.

use crate::app::access::{Analyst, Planner, Staff};
use crate::app::ApiErrorBody;
use crate::app::{App, WebError};
use crate::national::over_time::Pool;
use crate::over_time::Charts;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use crest_core::changes::ServiceChange;
use crest_stats::over_time::{Measure, SpcMonth};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/programmes/{code}/spc", get(programme_spc))
        .route("/api/v1/spc", get(national_spc))
        .route("/api/v1/changes", get(changes))
}

/// A service change.
#[derive(Serialize, ToSchema)]
pub(crate) struct Change {
    id: i64,
    /// `programme`, `region` or `national`.
    scope: String,
    /// The programme's code or the region's name (empty for every programme).
    code: String,
    /// The day it took effect (YYYY-MM-DD).
    date: String,
    text: String,
    recorded_by: String,
    recorded_at: String,
}

impl From<&ServiceChange> for Change {
    fn from(c: &ServiceChange) -> Change {
        Change {
            id: c.id,
            scope: c.scope.kind().into(),
            code: c.scope.code().into(),
            date: c.date.to_string(),
            text: c.text.clone(),
            recorded_by: c.recorded_by.clone(),
            recorded_at: c.recorded_at.clone(),
        }
    }
}

/// A measure month by month as an SPC chart: each month's figures, centre line, process
/// limits, signal and variation (the columns of `crest spc`), the assurance against a target
/// where there is one, and the service changes that split the limits.
#[derive(Serialize, ToSchema)]
pub(crate) struct SpcSeries {
    measure: String,
    label: String,
    /// `by month of referral` or `by month of start`.
    by: String,
    /// `higher is better` or `lower is better`.
    improvement: String,
    /// `consistent_pass`, `consistent_fail`, `inconsistent`, or null without a target.
    assurance: Option<String>,
    changes: Vec<Change>,
    /// One object per month with `month`, `numerator`, `denominator`, `value`, `centre`,
    /// `lower`, `upper`, `signal` and `variation`.
    #[schema(value_type = Vec<Object>)]
    months: Vec<serde_json::Value>,
}

fn series(charts: &Charts<'_>, measure: Measure) -> SpcSeries {
    let (months, chart) = charts.chart(measure);
    SpcSeries {
        measure: measure.code().into(),
        label: measure.label().into(),
        by: measure.by().into(),
        improvement: measure.improvement().words().into(),
        assurance: chart.assurance.map(|a| a.code().into()),
        changes: charts.changes.iter().map(Change::from).collect(),
        months: months.iter().map(SpcMonth::json).collect(),
    }
}

/// The measure and period a request asks for; a clear 400 for either wrong.
fn asked(
    app: &App,
    measure: &str,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<(Measure, crest_core::Period), WebError> {
    Ok((
        crate::over_time::measure(measure)?,
        crate::app::requested_period(
            app,
            from.as_deref().unwrap_or(""),
            to.as_deref().unwrap_or(""),
        )?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SpcParams {
    /// `uptake`, `wait`, `assessment1`, `assessment2`, `completion` or `referrals`.
    measure: String,
    /// The period whose last month ends the 24 months charted (YYYY-MM-DD or DD/MM/YYYY);
    /// the last complete financial year unless given.
    from: Option<String>,
    /// Its last day.
    to: Option<String>,
}

/// A programme's measure over the 24 months to the period's end, with its changes. Programme
/// staff and leads.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/spc", tag = "over time",
    params(("code" = String, Path), SpcParams),
    responses((status = 200, body = SpcSeries), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn programme_spc(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    Query(q): Query<SpcParams>,
) -> Result<Json<SpcSeries>, WebError> {
    let (measure, period) = asked(&app, &q.measure, &q.from, &q.to)?;
    let (facts, changes) = crate::programme::over_time::chart_data(&app, &p, period).await?;
    let charts = crate::programme::over_time::charts(&p, &facts, period, &changes);
    let answer = Json(series(&charts, measure));
    Ok(answer)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NationalSpcParams {
    /// `uptake`, `wait`, `assessment1`, `assessment2`, `completion` or `referrals`.
    measure: String,
    /// The period whose last month ends the 24 months charted; the last complete financial
    /// year unless given.
    from: Option<String>,
    /// Its last day.
    to: Option<String>,
    /// One programme's code; else the programmes of `nation` and `region` pooled.
    code: Option<String>,
    /// `england`, `wales` or `northern_ireland`.
    nation: Option<String>,
    /// A region's name.
    region: Option<String>,
}

/// A measure over time from the national store: for national analysts exact, of the nation,
/// a nation's or region's programmes pooled, or one programme; for commissioners as their
/// region page charts it (their region, the default, or one of its programmes by `code`):
/// published values only, no month's counts, months of a quarter with 1 to 7 patients not
/// drawn, and no referrals per month. Researchers get 404.
#[utoipa::path(get, path = "/api/v1/spc", tag = "over time",
    params(NationalSpcParams),
    responses((status = 200, body = SpcSeries), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn national_spc(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<NationalSpcParams>,
) -> Result<Json<SpcSeries>, WebError> {
    match c.user.role {
        crest_store::Role::NationalAnalyst => {}
        crest_store::Role::Commissioner => return region_spc(&app, &c, q).await,
        _ => return Err(WebError::NotFound),
    }
    let (measure, period) = asked(&app, &q.measure, &q.from, &q.to)?;
    let pool = Pool {
        code: q.code.unwrap_or_default(),
        nation: q.nation.unwrap_or_default(),
        region: q.region.unwrap_or_default(),
    };
    let (facts, changes) = crate::national::over_time::chart_data(&app, &pool, period).await?;
    let charts = crate::national::over_time::charts(&facts, period, &changes, &pool);
    let answer = Json(series(&charts, measure));
    Ok(answer)
}

/// A commissioner's published series, as their region page draws it.
async fn region_spc(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    q: NationalSpcParams,
) -> Result<Json<SpcSeries>, WebError> {
    let (measure, period) = asked(app, &q.measure, &q.from, &q.to)?;
    let period = crate::research::aggregates::period_for(c, period);
    let chart = q.code.or(q.region).unwrap_or_default();
    let (_, facts, changes, _) = crate::region::over_time::load(app, c, &chart, period).await?;
    let published = crate::region::over_time::series(&facts, period);
    crate::region::over_time::published_measure(&published, measure)?;
    let charts = crate::region::over_time::charts(&published, period, &changes, &chart);
    let answer = Json(series(&charts, measure));
    Ok(answer)
}

/// Every service change recorded, oldest first. National analysts.
#[utoipa::path(get, path = "/api/v1/changes", tag = "over time",
    responses((status = 200, body = Vec<Change>), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn changes(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
) -> Result<Json<Vec<Change>>, WebError> {
    let all = app.db(|s, _| Ok(s.service_changes()?)).await?;
    Ok(Json(all.iter().map(Change::from).collect()))
}
