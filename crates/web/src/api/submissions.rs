//! Receiving a programme's submission through the API, with the programme system's token: the
//! token is checked before a byte of the body is read, and every refusal is logged nationally.

use crate::app::uploads::ScratchFile;
use crate::app::{api_error, json_reply, App, WebError};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use crest_store::national::TokenAccess;
use crest_store::NationalStore;
use crest_store::Received;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route(
        "/api/v1/submissions",
        post(receive_api).layer(DefaultBodyLimit::max(crate::app::SUBMISSION_LIMIT)),
    )
}

/// At most `n` characters of an untrusted value, for messages.
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Receives a programme's submission file, with the programme system's API token (`crest tokens new`), not a personal one.
///
/// The token names the programme; a submission for any other is refused. Every refused call
/// (401, 403) goes to the national access log, naming the token's programme where it is known
/// (never the token).
#[utoipa::path(post, path = "/api/v1/submissions", tag = "national",
    security(("programme_system" = [])),
    request_body(content = String, content_type = "text/plain", description = "A submission file as `crest submission build` writes it (JSON lines)"),
    responses((status = 200, description = "Stored, or already received"), (status = 401, body = crate::app::ApiErrorBody),
        (status = 403, body = crate::app::ApiErrorBody), (status = 413, body = crate::app::ApiErrorBody),
        (status = 422, description = "Refused: nothing was stored")))]
pub(crate) async fn receive_api(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if app.national_db.get().is_none() {
        return api_error(
            StatusCode::NOT_FOUND,
            "no_national_store",
            "this server has no national store",
        );
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    // The token is checked before a byte of the body is read: a caller without a working
    // token never makes the server hold (or even receive) what it sends.
    let access = app
        .national(move |n| {
            let now = crest_store::utc_now();
            let access = match &token {
                None => None,
                Some(t) => Some(n.api_token_access(t, &now)?),
            };
            let refusal = match access {
                None => Some((
                    StatusCode::UNAUTHORIZED,
                    "token_missing",
                    String::new(),
                    "send Authorization: Bearer <API token>".to_string(),
                )),
                Some(TokenAccess::Unknown) => Some((
                    StatusCode::UNAUTHORIZED,
                    "token_unknown",
                    String::new(),
                    "unknown API token".to_string(),
                )),
                Some(TokenAccess::Expired(p)) => Some((
                    StatusCode::UNAUTHORIZED,
                    "token_expired",
                    p,
                    "this API token has expired; ask the national audit for a new one".to_string(),
                )),
                Some(TokenAccess::Revoked(p)) => Some((
                    StatusCode::UNAUTHORIZED,
                    "token_revoked",
                    p,
                    "this API token was revoked; ask the national audit for a new one".to_string(),
                )),
                Some(TokenAccess::Valid(p)) => return Ok(Ok(p)),
            };
            Ok(Err(refused(n, refusal)?))
        })
        .await;
    let token_programme = match access {
        Ok(Ok(p)) => p,
        Ok(Err((status, v))) => return json_reply(status, v),
        Err(e) => return api_error(e.status(), e.code(), e.message()),
    };
    // Large bodies are read a few at a time, whoever sends them.
    let Ok(_permit) = app.large_bodies.acquire().await else {
        return api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server is shutting down",
        );
    };
    // Written to a private scratch file as it arrives: memory does not grow with the body.
    let file = ScratchFile::new(&app, "api-receipt");
    match crate::app::uploads::stream_private(&file.0, body, crate::app::SUBMISSION_LIMIT).await {
        Ok(_) => {}
        Err(WebError::TooLarge(_)) => {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the submission is larger than the limit of {} MB",
                    crate::app::SUBMISSION_LIMIT >> 20
                ),
            )
        }
        Err(e) => return api_error(e.status(), "unreadable_body", e.message()),
    }
    let keys = app.receipt_keys();
    let receipts = app.metrics.receipts.clone();
    let result = app
        .national(move |n| {
            let claimed =
                crest_privacy::submission::manifest_programme_in(&file.0).unwrap_or_default();
            if token_programme != claimed {
                let m = format!("this token is for programme {token_programme}; the submission is for '{}'", clip(&claimed, 20));
                return refused(n, Some((StatusCode::FORBIDDEN, "wrong_programme", token_programme, m)));
            }
            let programme = claimed;
            let (sk, nk) = match keys {
                Ok(k) => k,
                Err(m) => return Ok((StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"code": "keys_missing", "message": m.to_string()}))),
            };
            let who = format!("api:{programme}");
            Ok(match crest_privacy::submission::receive_file_logged(n, &file.0, (&sk, &nk), (&who, "api"), "api") {
                Ok(Received::Stored { episodes, replaced, deleted }) => (
                    {
                        receipts.inc();
                        StatusCode::OK
                    },
                    serde_json::json!({"status": "stored", "episodes": episodes, "replaced": replaced, "deleted": deleted}),
                ),
                Ok(Received::AlreadyReceived) => (StatusCode::OK, serde_json::json!({"status": "already received"})),
                Err(m) => (StatusCode::UNPROCESSABLE_ENTITY, serde_json::json!({"code": "submission_refused", "message": m.to_string(), "stored": false})),
            })
        })
        .await;
    match result {
        Ok((status, v)) => json_reply(status, v),
        // The API answers in JSON even when something broke.
        Err(e) => {
            let status = e.status();
            api_error(status, e.code(), e.message())
        }
    }
}

/// A refused API call, logged in the national access log naming the token's programme where
/// it is known (never the token); the answer to send.
type Refusal = (StatusCode, &'static str, String, String);

fn refused(
    n: &mut NationalStore,
    refusal: Option<Refusal>,
) -> Result<(StatusCode, serde_json::Value), WebError> {
    let Some((status, code, programme, message)) = refusal else {
        return Err(WebError::Internal("a refusal without a reason".into()));
    };
    n.log(&crest_store::AccessEntry {
        at: crest_store::utc_now(),
        username: "api".into(),
        role: "api".into(),
        programme,
        action: "api_submission".into(),
        target: "/api/v1/submissions".into(),
        outcome: format!("refused {}", status.as_u16()),
        detail: message.clone(),
    })?;
    Ok((
        status,
        serde_json::json!({"code": code, "message": message}),
    ))
}
