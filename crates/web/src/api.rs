//! The JSON API under `/api/v1`: what the pages do, for other systems. A request signs in with
//! the session cookie or a personal API token (`Authorization: Bearer crest_pat_…`, made on
//! the "API tokens" page, stored hashed, revocable, expiring) and is scoped exactly as the
//! pages are: the same extractors, the same store calls, the same disclosure control. Errors
//! are `{"code": …, "message": …}` with a stable code. The OpenAPI 3.1 document at
//! `/api/openapi.json` is generated from the annotations here, and `/api` lists it for people.

use crate::access::{Analyst, Planner, Researcher, SignedIn, Staff};
use crate::planning::{aggregate_for, Asked};
use crate::{html_page, App, WebError};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crest_core::{Col, Record, FIELDS};
use crest_store::{EpisodeQuery, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api", get(api_page))
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/v1/me", get(me))
        .route(
            "/api/v1/programmes/{code}/episodes",
            get(list_episodes).post(create_episode),
        )
        .route(
            "/api/v1/programmes/{code}/episodes/{id}",
            get(get_episode).put(update_episode),
        )
        .route(
            "/api/v1/programmes/{code}/imports",
            axum::routing::post(import).layer(DefaultBodyLimit::max(crate::UPLOAD_LIMIT)),
        )
        .route("/api/v1/programmes/{code}/kpis", get(programme_kpis))
        .route("/api/v1/submissions", get(submissions))
        .route("/api/v1/kpis", get(kpis))
        .route("/api/v1/funnels", get(funnels))
        .route("/api/v1/inequalities", get(inequalities))
        .route("/api/v1/aggregates", get(aggregates))
        .route("/api/v1/projects", get(projects))
        .route("/api/v1/projects/{id}/extract", get(extract))
        .route("/api/v1/projects/{id}/dictionary", get(dictionary))
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "crest API",
        version = "1",
        description = "The cardiac rehabilitation audit's JSON API. Sign in with a personal API token \
            (Authorization: Bearer crest_pat_…, made on the API tokens page) or a session. Every answer \
            is scoped to the caller's role and programmes or regions; commissioners and researchers get \
            disclosure-controlled figures only. Errors are {\"code\", \"message\"} with a stable code."
    ),
    paths(
        me, list_episodes, create_episode, get_episode, update_episode, import, programme_kpis,
        submissions, crate::national::receive_api, kpis, funnels, inequalities, aggregates,
        projects, extract, dictionary
    ),
    components(schemas(
        ApiErrorBody, Me, EpisodePage, Saved, Invalid, FieldProblem, ImportSummary,
        SubmissionHeld, Table, ProjectInfo
    )),
    modifiers(&Security),
    security(("token" = []), ("session" = []))
)]
pub(crate) struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::SecurityScheme;
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal API token, crest_pat_…"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("crest_session"))),
        );
    }
}

/// A refusal.
#[derive(Serialize, ToSchema)]
pub(crate) struct ApiErrorBody {
    /// Stable: what a program checks (`not_found`, `sign_in_required`, `bad_request`, …).
    code: String,
    /// For people; the wording may change.
    message: String,
}

/// The caller.
#[derive(Serialize, ToSchema)]
struct Me {
    username: String,
    /// `programme_staff`, `programme_lead`, `admin`, `national_analyst`, `commissioner` or `researcher`.
    role: String,
    /// Programmes whose patients they see.
    programmes: Vec<String>,
    /// A commissioner's regions.
    regions: Vec<String>,
}

/// Who the caller is: user name, role, and their programmes or regions. Anyone signed in.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = ApiErrorBody)))]
async fn me(SignedIn(c): SignedIn) -> Json<Me> {
    Json(Me {
        username: c.user.username.clone(),
        role: c.user.role.code().into(),
        programmes: c.user.programmes.clone(),
        regions: c.user.regions.clone(),
    })
}

/// An episode as the API gives and takes it: dataset field name to value, with the
/// dictionary's names and codes (`crest dataset` lists them), as in the CSV files. Numbers are
/// JSON numbers, yes/no fields JSON booleans, dates ISO text (`2025-04-01`), codes text.
type Episode = BTreeMap<String, serde_json::Value>;

fn episode_json(r: &Record) -> Episode {
    use crest_core::Value as V;
    FIELDS
        .iter()
        .filter_map(|f| {
            let value = match r.get(f.col) {
                V::Null => return None,
                V::Int(i) => serde_json::Value::from(*i),
                V::Num(x) => serde_json::Number::from_f64(*x)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                V::Bool(b) => serde_json::Value::Bool(*b),
                other => serde_json::Value::String(other.to_text()),
            };
            Some((f.name.to_string(), value))
        })
        .collect()
}

/// A value sent for a field, as the import would read it from a file: text as it is, numbers
/// and booleans written out, null as empty.
fn sent_text(v: serde_json::Value) -> Result<String, String> {
    match v {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        _ => Err("a list or object".into()),
    }
}

/// A cell of a table as JSON: a number where the column holds numbers (counts, proportions,
/// days), text for codes, names and suppressed cells (`*`), null when empty.
fn cell_json(column: &str, cell: &str) -> serde_json::Value {
    let coded = column.ends_with("_code")
        || matches!(
            column,
            "kpi" | "level" | "method" | "grade" | "programme" | "region" | "key_id"
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

/// One page of a programme's episodes.
#[derive(Serialize, ToSchema)]
struct EpisodePage {
    page: usize,
    per_page: usize,
    /// Whether a further page has episodes.
    more: bool,
    /// Field name → value.
    #[schema(value_type = Vec<Object>)]
    episodes: Vec<Episode>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Paging {
    /// From 1.
    page: Option<usize>,
    /// 1 to 500; 100 unless given.
    per_page: Option<usize>,
    /// Find by episode id, NHS number or name.
    q: Option<String>,
}

/// A page of the programme's episodes (search with `q`). Programme staff and leads of that programme.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/episodes", tag = "episodes",
    params(("code" = String, Path, description = "Programme code"), Paging),
    responses((status = 200, body = EpisodePage), (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn list_episodes(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Query(q): Query<Paging>,
) -> Result<Json<EpisodePage>, WebError> {
    let per_page = q.per_page.unwrap_or(100).clamp(1, 500);
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let query = EpisodeQuery {
        text: q.q.unwrap_or_default(),
        limit: per_page + 1,
        offset: (page - 1) * per_page,
        ..Default::default()
    };
    let entry = c.entry(&p.code, "api list episodes", &format!("page {page}"));
    let mut found = app
        .db(move |s, _| {
            let found = s.find_episodes(&p.code, &query)?;
            s.log(&entry)?;
            Ok(found)
        })
        .await?;
    let more = found.len() > per_page;
    found.truncate(per_page);
    Ok(Json(EpisodePage {
        page,
        per_page,
        more,
        episodes: found.iter().map(episode_json).collect(),
    }))
}

/// One episode of the programme (the view is logged). Programme staff and leads of that programme.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/episodes/{id}", tag = "episodes",
    params(("code" = String, Path), ("id" = String, Path, description = "Episode id")),
    responses((status = 200, body = Object, description = "Field name → value"), (status = 404, body = ApiErrorBody)))]
async fn get_episode(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Episode>, WebError> {
    let r = crate::episode_form::load(&app, &c, &p.code, &id, "view").await?;
    Ok(Json(episode_json(&r)))
}

/// A saved episode.
#[derive(Serialize, ToSchema)]
struct Saved {
    episode_id: String,
    /// `created` or `updated`.
    outcome: String,
    /// Values to check (kept, as the upload keeps them).
    warnings: Vec<FieldProblem>,
}

/// A problem with one field.
#[derive(Serialize, ToSchema)]
struct FieldProblem {
    field: String,
    message: String,
}

/// An episode refused: every problem at once.
#[derive(Serialize, ToSchema)]
struct Invalid {
    /// `invalid`.
    code: String,
    message: String,
    errors: Vec<FieldProblem>,
}

fn problems(list: Vec<(String, String)>) -> Vec<FieldProblem> {
    list.into_iter()
        .map(|(field, message)| FieldProblem { field, message })
        .collect()
}

/// Validates and stores an episode with the form's rules; `id` for an update.
async fn save(
    app: Arc<App>,
    c: crate::Ctx,
    programme: String,
    id: Option<String>,
    body: Result<Json<Episode>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    let Json(sent) = body.map_err(|e| {
        WebError::BadRequest(format!(
            "Send the episode as a JSON object of field names and values: {}",
            e.body_text()
        ))
    })?;
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in sent {
        let text = sent_text(v).map_err(|what| {
            WebError::BadRequest(format!(
                "{k}: send text, a number or true/false, not {what}"
            ))
        })?;
        values.insert(k, text);
    }
    // Fields crest works out itself (age at event from the date of birth) are read back by
    // GET, so a client may send an episode back as it got it: they are set aside, never taken.
    values.retain(|k, _| !FIELDS.iter().any(|f| f.name == k.as_str() && !f.imported()));
    let unknown: Vec<String> = values
        .keys()
        .filter(|k| !FIELDS.iter().any(|f| f.name == k.as_str()))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(WebError::BadRequest(format!(
            "Not fields of the dataset: {} (crest dataset lists them)",
            unknown.join(", ")
        )));
    }
    if let Some(id) = &id {
        let (pc, i) = (programme.clone(), id.clone());
        let stored = app
            .db(move |s, _| s.episode(&pc, &i)?.ok_or(WebError::NotFound))
            .await?;
        // An update may send only what changes.
        for (k, v) in crate::episode_form::record_values(&stored) {
            values.entry(k).or_insert(v);
        }
        values.insert("episode_id".into(), id.clone());
        values.retain(|k, _| !FIELDS.iter().any(|f| f.name == k.as_str() && !f.imported()));
    }
    values.insert("programme_code".into(), programme.clone());
    let map: std::collections::HashMap<String, String> = values.into_iter().collect();
    let (rec, warnings) = match crate::episode_form::validate(&map, &programme, (app.today)()) {
        Ok(ok) => ok,
        Err((errors, _)) => {
            let body = Invalid {
                code: "invalid".into(),
                message: "The episode was not saved; nothing was changed.".into(),
                errors: problems(errors),
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
        }
    };
    let episode_id = rec.text(Col::EpisodeId).unwrap_or_default().to_string();
    let is_new = id.is_none();
    let mut entry = c.entry(
        &programme,
        if is_new { "create" } else { "change" },
        &episode_id,
    );
    let eid = episode_id.clone();
    let outcome = app
        .db(move |s, _| {
            let old = s.episode(&programme, &eid)?;
            if is_new && old.is_some() {
                return Ok(Err(format!(
                    "episode_id {eid} already exists in this programme; send a PUT to change it"
                )));
            }
            if let Some(dup) = crate::episode_form::probable_duplicate(s, &rec)? {
                return Ok(Err(dup));
            }
            let mut tx = s.begin()?;
            match &old {
                Some(old) => {
                    entry.detail = crate::episode_form::changes(old, &rec);
                    tx.update(&rec)?
                }
                None => tx.insert(&rec)?,
            }
            tx.log(&entry)?;
            tx.commit()?;
            Ok(Ok(()))
        })
        .await?;
    match outcome {
        Ok(()) => Ok((
            if is_new {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            Json(Saved {
                episode_id,
                outcome: if is_new { "created" } else { "updated" }.into(),
                warnings: problems(warnings),
            }),
        )
            .into_response()),
        Err(m) => Ok((
            StatusCode::CONFLICT,
            Json(Invalid {
                code: "conflict".into(),
                message: m.clone(),
                errors: vec![FieldProblem {
                    field: "episode_id".into(),
                    message: m,
                }],
            }),
        )
            .into_response()),
    }
}

/// Adds an episode, checked by the import's rules; every problem comes back at once. Programme staff and leads.
#[utoipa::path(post, path = "/api/v1/programmes/{code}/episodes", tag = "episodes",
    params(("code" = String, Path)),
    request_body(content = Object, description = "Field name → value, as the import template's columns"),
    responses((status = 201, body = Saved), (status = 409, body = Invalid), (status = 422, body = Invalid),
        (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn create_episode(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    body: Result<Json<Episode>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    save(app, c, p.code, None, body).await
}

/// Changes an episode: send only the fields that change. Programme staff and leads.
#[utoipa::path(put, path = "/api/v1/programmes/{code}/episodes/{id}", tag = "episodes",
    params(("code" = String, Path), ("id" = String, Path)),
    request_body(content = Object, description = "The fields to change; the rest stay as stored"),
    responses((status = 200, body = Saved), (status = 409, body = Invalid), (status = 422, body = Invalid),
        (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn update_episode(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Path((_, id)): Path<(String, String)>,
    body: Result<Json<Episode>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    save(app, c, p.code, Some(id), body).await
}

/// What an import did.
#[derive(Serialize, ToSchema)]
struct ImportSummary {
    rows: usize,
    imported: usize,
    updated: usize,
    unchanged: usize,
    rejected: usize,
    /// The first reasons for rejection.
    errors: Vec<FieldProblem>,
}

/// Imports a CSV or XLSX file of episodes for the programme (rows for other programmes are refused). Programme staff and leads.
#[utoipa::path(post, path = "/api/v1/programmes/{code}/imports", tag = "episodes",
    params(("code" = String, Path)),
    request_body(content = String, content_type = "text/csv", description = "A CSV or XLSX file as the import template has it; valid rows are stored, the rest reported"),
    responses((status = 200, body = ImportSummary), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody), (status = 413, body = ApiErrorBody)))]
async fn import(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    body: axum::body::Body,
) -> Result<Json<ImportSummary>, WebError> {
    let path = app
        .uploads_dir()
        .join(format!("{}-api-{}", p.code, crate::auth::token()));
    // Written to a private scratch file as it arrives, so memory does not grow with the file.
    let written = crate::uploads::stream_private(&path, body, crate::UPLOAD_LIMIT).await;
    let done = match written {
        Ok(0) => Err(WebError::BadRequest(
            "Send the file as the request body.".into(),
        )),
        Ok(_) => crate::upload::run_import(&app, &c, &p.code, &path, "api import", false).await,
        Err(e) => Err(e),
    };
    crate::uploads::discard(&path);
    let s = done?;
    Ok(Json(ImportSummary {
        rows: s.rows,
        imported: s.imported,
        updated: s.updated,
        unchanged: s.unchanged,
        rejected: s.rejected,
        errors: s
            .errors
            .iter()
            .map(|i| FieldProblem {
                field: i.issue.column.clone(),
                message: format!("row {}: {}", i.row, i.issue.message),
            })
            .collect(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PeriodParams {
    /// First referral date (YYYY-MM-DD or DD/MM/YYYY); the last complete financial year unless given.
    from: Option<String>,
    /// Last referral date.
    to: Option<String>,
}

/// A table: column names and rows of cells, as in the CSV downloads: numbers as JSON numbers,
/// codes as text, `"*"` where a cell is suppressed, null where empty.
#[derive(Serialize, ToSchema)]
struct Table {
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
    fn new(
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

fn period_of(app: &App, q: &PeriodParams) -> Result<crest_core::Period, WebError> {
    crate::requested_period(
        app,
        q.from.as_deref().unwrap_or(""),
        q.to.as_deref().unwrap_or(""),
    )
}

/// The KPI table of `programmes` (exact, or as published).
fn kpi_table(
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
                    .map_or(String::new(), crest_core::record::format_num)
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
async fn programme_kpis(
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
struct SubmissionHeld {
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
async fn submissions(
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
async fn national_kpis(
    app: &Arc<App>,
    c: &crate::Ctx,
    period: crest_core::Period,
) -> Result<
    (
        Arc<crate::national_dashboard::NationalReport>,
        Vec<String>,
        bool,
    ),
    WebError,
> {
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
async fn kpis(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<PeriodParams>,
) -> Result<Json<Table>, WebError> {
    let period = crate::planning::period_for(&c, period_of(&app, &q)?);
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
struct FunnelParams {
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
async fn funnels(
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
    let method = crate::national_dashboard::Filters {
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
    let period = crate::planning::period_for(&c, period);
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
struct AggregateParams {
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

fn asked(q: AggregateParams) -> Asked {
    Asked {
        by: q.by.unwrap_or_default(),
        measure: q.measure.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        published: matches!(q.published.as_deref(), Some("1" | "yes" | "true")),
        ..Asked::default()
    }
}

fn table(a: crest_report::aggregates::Answer) -> Table {
    Table::new(a.from, a.to, a.published, a.columns, a.rows)
}

/// Counts, proportions with Wilson intervals, means and medians by up to three breakdowns. Analysts (exact), commissioners (their regions) and researchers (published).
#[utoipa::path(get, path = "/api/v1/aggregates", tag = "aggregates", params(AggregateParams),
    responses((status = 200, body = Table), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn aggregates(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(q): Query<AggregateParams>,
) -> Result<Json<Table>, WebError> {
    Ok(Json(table(aggregate_for(&app, &c, &asked(q)).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InequalityParams {
    /// sex, age_band, ethnic_group, imd_quintile or priority_group.
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Uptake by sex, age band, ethnic group, deprivation quintile or priority group with 95% Wilson intervals. Analysts (exact), commissioners and researchers (published).
#[utoipa::path(get, path = "/api/v1/inequalities", tag = "aggregates", params(InequalityParams),
    responses((status = 200, body = Table), (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn inequalities(
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

/// A research project the caller is named on.
#[derive(Serialize, ToSchema)]
struct ProjectInfo {
    id: String,
    title: String,
    approval: String,
    fields: Vec<String>,
    valid_from: String,
    valid_to: String,
    k: u32,
    /// Whether extracts may be downloaded today.
    valid_today: bool,
}

/// The research projects the caller is named on. Researchers.
#[utoipa::path(get, path = "/api/v1/projects", tag = "research",
    responses((status = 200, body = Vec<ProjectInfo>), (status = 404, body = ApiErrorBody)))]
async fn projects(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
) -> Result<Json<Vec<ProjectInfo>>, WebError> {
    let today = (app.today)();
    let mine = crate::research::my_projects(&app, &c).await?;
    Ok(Json(
        mine.into_iter()
            .map(|p| ProjectInfo {
                valid_today: p.valid_on(today),
                id: p.id,
                title: p.title,
                approval: p.approval,
                fields: p.fields,
                valid_from: p.valid_from.to_string(),
                valid_to: p.valid_to.to_string(),
                k: p.k,
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExtractParams {
    /// `csv` (default) or `parquet`.
    format: Option<String>,
}

/// A project's k-anonymous extract as CSV or Parquet, streamed; refused outside the approval. Researchers named on it.
#[utoipa::path(get, path = "/api/v1/projects/{id}/extract", tag = "research",
    params(("id" = String, Path), ExtractParams),
    responses((status = 200, description = "The k-anonymous extract, streamed", content_type = "text/csv"),
        (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn extract(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
    Path(id): Path<String>,
    Query(q): Query<ExtractParams>,
) -> Result<Response, WebError> {
    let format = crest_privacy::research::Format::parse(q.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| WebError::BadRequest("format: use csv or parquet".into()))?;
    crate::research::extract_response(&app, &c, &id, Some(format)).await
}

/// A project's extract data dictionary: columns, meanings, codes and labels. Researchers named on it.
#[utoipa::path(get, path = "/api/v1/projects/{id}/dictionary", tag = "research",
    params(("id" = String, Path)),
    responses((status = 200, description = "The extract's data dictionary", content_type = "text/csv"),
        (status = 404, body = ApiErrorBody)))]
async fn dictionary(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    crate::research::extract_response(&app, &c, &id, None).await
}

/// The OpenAPI document, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn openapi_json() -> Response {
    match openapi().to_pretty_json() {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => WebError::internal(e).into_response(),
    }
}

/// The API for people: every operation of the OpenAPI document, with how to sign in.
async fn api_page(headers: HeaderMap, State(app): State<Arc<App>>) -> Response {
    let nav = match crate::ctx(&app, &headers).await {
        Ok(c) => c.nav(None),
        Err(_) => maud::html! {},
    };
    let doc = openapi();
    let body = maud::html! {
        p {
            "Other systems use crest through this JSON API. Make a personal token on the "
            a href="/account/tokens" { "API tokens" } " page and send it as "
            code { "Authorization: Bearer crest_pat_…" } ". A token acts as you, with your role and your programmes "
            "or regions, until it expires or you revoke it. Errors come as "
            code { "{\"code\": …, \"message\": …}" } "."
        }
        p { "The machine-readable description: " a href="/api/openapi.json" { "OpenAPI 3.1 (JSON)" } "." }
        div class="table-scroll" {
            table class="data" tabindex="0" {
                caption { "Operations" }
                thead { tr { th scope="col" { "Method" } th scope="col" { "Address" } th scope="col" { "What it does" } } }
                tbody {
                    @for (path, item) in &doc.paths.paths {
                        @for (method, op) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put)] {
                            @if let Some(op) = op {
                                tr {
                                    td { code { (method) } }
                                    td { code { (path) } }
                                    td { (op.description.clone().or(op.summary.clone()).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html_page(crate::html::page("crest API", nav, body))
}
