//! Research projects through the API: a researcher's approved projects, their extracts and
//! data dictionaries.

use crate::app::access::Researcher;
use crate::app::ApiErrorBody;
use crate::app::{App, WebError};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/v1/projects", get(projects))
        .route("/api/v1/projects/{id}/extract", get(extract))
        .route("/api/v1/projects/{id}/dictionary", get(dictionary))
}

/// A research project the caller is named on.
#[derive(Serialize, ToSchema)]
pub(crate) struct ProjectInfo {
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
pub(crate) async fn projects(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
) -> Result<Json<Vec<ProjectInfo>>, WebError> {
    let today = (app.today)();
    let mine = crate::research::projects::my_projects(&app, &c).await?;
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
pub(crate) struct ExtractParams {
    /// `csv` (default) or `parquet`.
    format: Option<String>,
}

/// A project's k-anonymous extract as CSV or Parquet, streamed; refused outside the approval. Researchers named on it.
#[utoipa::path(get, path = "/api/v1/projects/{id}/extract", tag = "research",
    params(("id" = String, Path), ExtractParams),
    responses((status = 200, description = "The k-anonymous extract, streamed", content_type = "text/csv"),
        (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub(crate) async fn extract(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
    Path(id): Path<String>,
    Query(q): Query<ExtractParams>,
) -> Result<Response, WebError> {
    let format = crest_privacy::research::Format::parse(q.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| WebError::BadRequest("format: use csv or parquet".into()))?;
    crate::research::projects::extract_response(&app, &c, &id, Some(format)).await
}

/// A project's extract data dictionary: columns, meanings, codes and labels. Researchers named on it.
#[utoipa::path(get, path = "/api/v1/projects/{id}/dictionary", tag = "research",
    params(("id" = String, Path)),
    responses((status = 200, description = "The extract's data dictionary", content_type = "text/csv"),
        (status = 404, body = ApiErrorBody)))]
pub(crate) async fn dictionary(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    crate::research::projects::extract_response(&app, &c, &id, None).await
}
