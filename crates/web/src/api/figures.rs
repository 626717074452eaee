//! Figures through the API: a programme's KPIs, the national KPIs and funnels, submissions
//! held, and the published aggregates and inequalities, each as a typed table.

use crate::app::access::{Analyst, Planner, Staff};
use crate::app::ApiErrorBody;
use crate::app::{App, WebError};
use crate::research::aggregates::{aggregate_for, Asked};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use crest_store::Role;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/programmes/{code}/kpis", get(programme_kpis))
        .route("/api/v1/submissions", get(submissions))
        .route("/api/v1/kpis", get(kpis))
        .route("/api/v1/funnels", get(funnels))
        .route("/api/v1/inequalities", get(inequalities))
        .route("/api/v1/aggregates", get(aggregates))
}

/// A cell of a table as JSON: a number where the column holds numbers (counts, proportions,
/// days), text for codes, names and suppressed cells (`*`), null when empty.
pub(crate) fn cell_json(column: &str, cell: &str) -> serde_json::Value {
    let coded = column.ends_with("_code")
        || matches!(
            column,
            "kpi"
                | "level"
                | "method"
                | "grade"
                | "programme"
                | "region"
                | "key_id"
                | "area"
                | "name"
                | "condition"
        );
    match cell.parse::<f64>() {
        _ if cell.is_empty() => serde_json::Value::Null,
        Ok(x) if !coded && x.is_finite() => {
            serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, |n| {
                // Whole numbers stay whole (12, not 12.0).
                match cell.parse::<i64>() {
                    Ok(i) => serde_json::Value::from(i),
                    Err(_) => serde_json::Value::Number(n),
                }
            })
        }
        _ => serde_json::Value::String(cell.to_string()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PeriodParams {
    /// First referral date (YYYY-MM-DD or DD/MM/YYYY); the last complete financial year unless given.
    from: Option<String>,
    /// Last referral date.
    to: Option<String>,
}

/// A table: column names and rows of cells, as in the CSV downloads: numbers as JSON numbers,
/// codes as text, `"*"` where a cell is suppressed, null where empty.
#[derive(Serialize, ToSchema)]
pub(crate) struct Table {
    from: String,
    to: String,
    /// Whether disclosure control was applied.
    published: bool,
    columns: Vec<String>,
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    rows: Vec<Vec<serde_json::Value>>,
}

impl Table {
    /// A table of text cells, each typed by its column (see `cell_json`).
    pub(crate) fn new(
        from: String,
        to: String,
        published: bool,
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
    ) -> Table {
        let rows = rows
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(i, c)| cell_json(columns.get(i).map_or("", String::as_str), c))
                    .collect()
            })
            .collect();
        Table {
            from,
            to,
            published,
            columns,
            rows,
        }
    }
}

impl PeriodParams {
    /// The dates as given (empty where not).
    pub(crate) fn texts(&self) -> (&str, &str) {
        (
            self.from.as_deref().unwrap_or(""),
            self.to.as_deref().unwrap_or(""),
        )
    }
}

pub(crate) fn period_of(app: &App, q: &PeriodParams) -> Result<crest_core::Period, WebError> {
    crate::app::requested_period(
        app,
        q.from.as_deref().unwrap_or(""),
        q.to.as_deref().unwrap_or(""),
    )
}

/// The KPI table of `programmes` (exact, or as published).
pub(crate) fn kpi_table(
    report: &crest_stats::KpiReport,
    keep: impl Fn(&str) -> bool,
    published: bool,
) -> (Vec<String>, Vec<Vec<String>>) {
    let rows: Vec<&crest_stats::kpis::ProgrammeKpis> = report
        .programmes
        .iter()
        .filter(|p| keep(&p.programme_code))
        .collect();
    let mut columns = vec!["programme_code".to_string()];
    let mut out = Vec::new();
    for p in rows {
        let pb = crest_stats::published::programme(p);
        if columns.len() == 1 {
            columns.extend(pb.kpis.iter().map(|k| k.key.to_string()));
            columns.extend(["kpis_met", "grade"].map(String::from));
        }
        let mut row = vec![p.programme_code.clone()];
        if published {
            row.extend(pb.kpis.iter().map(|k| k.value.clone()));
            row.extend([pb.kpis_met.to_string(), pb.grade.to_string()]);
        } else {
            row.extend(p.results.kpis.iter().map(|k| {
                k.value()
                    .map_or(String::new(), crest_core::value::format_num)
            }));
            row.extend([p.kpis_met.to_string(), p.grade_shown().to_string()]);
        }
        out.push(row);
    }
    (columns, out)
}

/// The programme's seven KPIs and grade for a period (exact). Programme staff and leads.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/kpis", tag = "kpis",
    params(("code" = String, Path), PeriodParams),
    responses((status = 200, body = Table), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn programme_kpis(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    Query(q): Query<PeriodParams>,
) -> Result<Json<Table>, WebError> {
    let period = period_of(&app, &q)?;
    let code = p.code.clone();
    let (columns, rows) = app
        .db(move |s, _| {
            let programmes = vec![p];
            let eps = s.kpi_episodes(period.from, period.to, &programmes)?;
            let r = crest_stats::compute(
                &programmes,
                &eps,
                period,
                &crest_stats::Thresholds::default(),
            );
            Ok(kpi_table(&r, |c| c == code, false))
        })
        .await?;
    Ok(Json(Table::new(
        period.from.to_string(),
        period.to.to_string(),
        false,
        columns,
        rows,
    )))
}

/// A submission the national store holds.
#[derive(Serialize, ToSchema)]
pub(crate) struct SubmissionHeld {
    sha256: String,
    programme: String,
    from: String,
    to: String,
    episodes: i64,
    /// The newest for its programme and period.
    current: bool,
}

/// The submissions the national store holds. National analysts.
#[utoipa::path(get, path = "/api/v1/submissions", tag = "national",
    responses((status = 200, body = Vec<SubmissionHeld>), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn submissions(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
) -> Result<Json<Vec<SubmissionHeld>>, WebError> {
    let held = app.national(|n| Ok(n.submissions()?)).await?;
    Ok(Json(
        held.into_iter()
            .map(|h| SubmissionHeld {
                sha256: h.sha256,
                programme: h.programme,
                from: h.from,
                to: h.to,
                episodes: h.episodes,
                current: h.current,
            })
            .collect(),
    ))
}

/// The national KPI report for a period and who may see which programmes: analysts all,
/// exact; commissioners their regions', published; researchers all, published.
pub(crate) async fn national_kpis(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    period: crest_core::Period,
) -> Result<(Arc<crate::app::cache::NationalReport>, Vec<String>, bool), WebError> {
    let role = c.user.role;
    let regions = c.user.regions.clone();
    let published = role.restricted();
    let a = app.clone();
    app.national(move |n| {
        let nr = a.national_report(n, period)?;
        let visible = nr
            .programmes
            .iter()
            .filter(|p| role != Role::Commissioner || regions.contains(&p.region))
            .map(|p| p.code.clone())
            .collect();
        Ok((nr, visible, published))
    })
    .await
}

/// Every programme's KPIs and grade: exact for analysts; as published for commissioners (their regions) and researchers.
#[utoipa::path(get, path = "/api/v1/kpis", tag = "kpis", params(PeriodParams),
    responses((status = 200, body = Table), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn kpis(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<PeriodParams>,
) -> Result<Json<Table>, WebError> {
    let period = crate::research::aggregates::period_for(&c, period_of(&app, &q)?);
    let (nr, visible, published) = national_kpis(&app, &c, period).await?;
    let (columns, rows) = kpi_table(
        &nr.report,
        |code| visible.iter().any(|v| v == code),
        published,
    );
    Ok(Json(Table::new(
        period.from.to_string(),
        period.to.to_string(),
        published,
        columns,
        rows,
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FunnelParams {
    /// `uptake`, `completion`, `assessment1` or `assessment2`.
    kpi: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Funnel limits: `auto` (default: multiplicative when the overdispersion test is
    /// significant, plain otherwise), `plain`, `multiplicative` or `additive`.
    method: Option<String>,
}

/// A funnel KPI's numerator, denominator and outlier level per programme: exact for analysts, published for others.
#[utoipa::path(get, path = "/api/v1/funnels", tag = "kpis", params(FunnelParams),
    responses((status = 200, body = Table), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn funnels(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<FunnelParams>,
) -> Result<Json<Table>, WebError> {
    let key = q.kpi.clone().unwrap_or_else(|| "uptake".into());
    if !crest_report::charts::FUNNELS.iter().any(|(k, _)| *k == key) {
        return Err(WebError::BadRequest(
            "kpi: use uptake, completion, assessment1 or assessment2".into(),
        ));
    }
    let method = crate::national::dashboard::Filters {
        method: q.method.clone().unwrap_or_default(),
        ..Default::default()
    }
    .method()?;
    let period = period_of(
        &app,
        &PeriodParams {
            from: q.from,
            to: q.to,
        },
    )?;
    let period = crate::research::aggregates::period_for(&c, period);
    let (nr, visible, published) = national_kpis(&app, &c, period).await?;
    let r = &nr.report;
    let f = crest_stats::published::funnel(r, &key, method);
    // The method in force for this funnel (the default resolves to plain or multiplicative).
    let method = f.fit.map_or(method, |fit| fit.method);
    let rows = f
        .rows
        .iter()
        .filter(|row| visible.contains(&row.programme_code))
        .map(|row| {
            let (k, n) = if published {
                (row.numerator.to_string(), row.denominator.to_string())
            } else {
                let exact = r
                    .programmes
                    .iter()
                    .find(|p| p.programme_code == row.programme_code)
                    .map_or((0, 0), |p| p.proportion(&key));
                (exact.0.to_string(), exact.1.to_string())
            };
            vec![
                key.clone(),
                row.programme_code.clone(),
                k,
                n,
                if published {
                    row.published_level()
                } else {
                    crest_stats::published::level(row.position)
                }
                .to_string(),
                method.code().to_string(),
            ]
        })
        .collect();
    Ok(Json(Table::new(
        period.from.to_string(),
        period.to.to_string(),
        published,
        [
            "kpi",
            "programme_code",
            "numerator",
            "denominator",
            "level",
            "method",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AggregateParams {
    /// Up to three breakdowns, comma-separated: year, quarter, month, nation, region, programme,
    /// sex, age_band, ethnic_group, imd_quintile, priority_group, delivery_mode, pathway.
    by: Option<String>,
    /// uptake (default), referred, started, completed, completion, wait_days, started_in_time, or a numeric field such as a1_bmi.
    measure: Option<String>,
    /// First referral date. Commissioners and researchers get the published grid: the quarter
    /// of a financial year the period lies in, otherwise the financial year it ends in; they may
    /// not break down by month or calendar year (differencing overlapping answers would reveal
    /// small counts).
    from: Option<String>,
    to: Option<String>,
    /// Analysts: `1` for the published values (commissioners and researchers always get them).
    published: Option<String>,
}

pub(crate) fn asked(q: AggregateParams) -> Asked {
    Asked {
        by: q.by.unwrap_or_default(),
        measure: q.measure.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        published: matches!(q.published.as_deref(), Some("1" | "yes" | "true")),
        ..Asked::default()
    }
}

pub(crate) fn table(a: crest_report::aggregates::Answer) -> Table {
    Table::new(a.from, a.to, a.published, a.columns, a.rows)
}

/// Counts, proportions with Wilson intervals, means and medians by up to three breakdowns. Analysts (exact), commissioners (their regions) and researchers (published).
#[utoipa::path(get, path = "/api/v1/aggregates", tag = "aggregates", params(AggregateParams),
    responses((status = 200, body = Table), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn aggregates(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<AggregateParams>,
) -> Result<Json<Table>, WebError> {
    Ok(Json(table(aggregate_for(&app, &c, &asked(q)).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InequalityParams {
    /// sex, age_band, ethnic_group, imd_quintile or priority_group.
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Uptake by sex, age band, ethnic group, deprivation quintile or priority group with 95% Wilson intervals. Analysts (exact), commissioners and researchers (published).
#[utoipa::path(get, path = "/api/v1/inequalities", tag = "aggregates", params(InequalityParams),
    responses((status = 200, body = Table), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn inequalities(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<InequalityParams>,
) -> Result<Json<Table>, WebError> {
    let by = q.by.unwrap_or_else(|| "sex".into());
    let allowed = [
        "sex",
        "age_band",
        "ethnic_group",
        "imd_quintile",
        "priority_group",
    ];
    if !allowed.contains(&by.as_str()) {
        return Err(WebError::BadRequest(format!(
            "by: use one of {}",
            allowed.join(", ")
        )));
    }
    let a = Asked {
        by,
        measure: "uptake".into(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        ..Asked::default()
    };
    Ok(Json(table(aggregate_for(&app, &c, &a).await?)))
}
