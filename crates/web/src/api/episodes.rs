//! A programme's episodes through the API: listed a page at a time, read, created and changed
//! one at a time by the same checks as the form, and imported as a file by the same checks as
//! an upload.

use crate::app::access::Staff;
use crate::app::ApiErrorBody;
use crate::app::{App, WebError};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crest_core::{Col, Record, FIELDS};
use crest_store::EpisodeQuery;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
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
            axum::routing::post(import).layer(DefaultBodyLimit::max(crate::app::UPLOAD_LIMIT)),
        )
}

/// An episode as the API gives and takes it: dataset field name to value, with the
/// dictionary's names and codes (`crest dataset` lists them), as in the CSV files. Numbers are
/// JSON numbers, yes/no fields JSON booleans, dates ISO text (`2025-04-01`), codes text.
pub(crate) type Episode = BTreeMap<String, serde_json::Value>;

pub(crate) fn episode_json(r: &Record) -> Episode {
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
pub(crate) fn sent_text(v: serde_json::Value) -> Result<String, &'static str> {
    match v {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        serde_json::Value::Null => Ok(String::new()),
        _ => Err("a list or object"),
    }
}

/// One page of a programme's episodes.
#[derive(Serialize, ToSchema)]
pub(crate) struct EpisodePage {
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
pub(crate) struct Paging {
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
pub(crate) async fn list_episodes(
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
pub(crate) async fn get_episode(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Episode>, WebError> {
    let r = crate::programme::episode_form::load(&app, &c, &p.code, &id, "view").await?;
    Ok(Json(episode_json(&r)))
}

/// A saved episode.
#[derive(Serialize, ToSchema)]
pub(crate) struct Saved {
    episode_id: String,
    /// `created` or `updated`.
    outcome: String,
    /// Values to check (kept, as the upload keeps them).
    warnings: Vec<FieldProblem>,
}

/// A problem with one field.
#[derive(Serialize, ToSchema)]
pub(crate) struct FieldProblem {
    field: String,
    message: String,
}

/// An episode refused: every problem at once.
#[derive(Serialize, ToSchema)]
pub(crate) struct Invalid {
    /// `invalid`.
    code: String,
    message: String,
    errors: Vec<FieldProblem>,
}

pub(crate) fn problems(list: Vec<(String, String)>) -> Vec<FieldProblem> {
    list.into_iter()
        .map(|(field, message)| FieldProblem { field, message })
        .collect()
}

/// Validates and stores an episode with the form's rules; `id` for an update.
pub(crate) async fn save(
    app: Arc<App>,
    c: crate::app::Ctx,
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
        for (k, v) in crate::programme::episode_form::record_values(&stored) {
            values.entry(k).or_insert(v);
        }
        values.insert("episode_id".into(), id.clone());
        values.retain(|k, _| !FIELDS.iter().any(|f| f.name == k.as_str() && !f.imported()));
    }
    values.insert("programme_code".into(), programme.clone());
    let map: std::collections::HashMap<String, String> = values.into_iter().collect();
    let (rec, warnings) =
        match crate::programme::episode_form::validate(&map, &programme, (app.today)()) {
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
            if let Some(dup) = crate::programme::episode_form::probable_duplicate(s, &rec)? {
                return Ok(Err(dup));
            }
            let mut tx = s.begin()?;
            match &old {
                Some(old) => {
                    entry.detail = crate::programme::episode_form::changes(old, &rec);
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
pub(crate) async fn create_episode(
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
pub(crate) async fn update_episode(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Path((_, id)): Path<(String, String)>,
    body: Result<Json<Episode>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, WebError> {
    save(app, c, p.code, Some(id), body).await
}

/// What an import did.
#[derive(Serialize, ToSchema)]
pub(crate) struct ImportSummary {
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
pub(crate) async fn import(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    body: axum::body::Body,
) -> Result<Json<ImportSummary>, WebError> {
    let path = app
        .uploads_dir()
        .join(format!("{}-api-{}", p.code, crate::app::auth::token()));
    // Written to a private scratch file as it arrives, so memory does not grow with the file.
    let written = crate::app::uploads::stream_private(&path, body, crate::app::UPLOAD_LIMIT).await;
    let done = match written {
        Ok(0) => Err(WebError::BadRequest(
            "Send the file as the request body.".into(),
        )),
        Ok(_) => {
            crate::programme::upload::run_import(&app, &c, &p.code, &path, "api import", false)
                .await
        }
        Err(e) => Err(e),
    };
    crate::app::uploads::discard(&path);
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
