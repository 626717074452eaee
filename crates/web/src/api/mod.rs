//! The JSON API under `/api/v1`: what the pages do, for other systems, documented by its
//! OpenAPI document (`/api/openapi.json`, and `/api` for people). Episodes and imports
//! (`episodes`), KPIs, funnels and aggregates (`figures`), case ascertainment (`ascertainment`), research projects (`projects`) and
//! receiving submissions (`submissions`).

mod ascertainment;
mod episodes;
mod figures;
mod over_time;
mod projects;
mod submissions;

use crate::app::access::SignedIn;
use crate::app::ApiErrorBody;
use crate::app::{html_page, App, WebError};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api", get(api_page))
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/v1/me", get(me))
        .merge(ascertainment::routes())
        .merge(episodes::routes())
        .merge(figures::routes())
        .merge(over_time::routes())
        .merge(projects::routes())
        .merge(submissions::routes())
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
        me, episodes::list_episodes, episodes::create_episode, episodes::get_episode,
        episodes::update_episode, episodes::import, figures::programme_kpis, figures::submissions,
        submissions::receive_api, figures::kpis, figures::funnels, figures::inequalities,
        figures::aggregates, projects::projects, projects::extract, projects::dictionary,
        over_time::programme_spc, over_time::national_spc, over_time::changes,
        ascertainment::ascertainment, ascertainment::programme_ascertainment
    ),
    components(schemas(
        ApiErrorBody, Me, episodes::EpisodePage, episodes::Saved, episodes::Invalid,
        episodes::FieldProblem, episodes::ImportSummary, figures::SubmissionHeld, figures::Table,
        projects::ProjectInfo, over_time::SpcSeries, over_time::Change
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
    let nav = match crate::app::ctx(&app, &headers).await {
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
