//! Why a request failed, as one error type: a page for people, JSON for the API, with a stable code.

use crate::html::{self, page};
use axum::http::HeaderValue;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

/// A multipart form that could not be read: over the route's `limit`, or broken.
pub(crate) fn form_error(e: axum::extract::multipart::MultipartError, limit: usize) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::TooLarge(format!(
            "The file is larger than the limit of {} MB. Split it into smaller files and send each.",
            limit >> 20
        ))
    } else {
        WebError::BadRequest(format!("The form could not be read: {e}"))
    }
}

/// Why a request failed. Pages say only what the user needs: never SQL or internals.
#[derive(Debug)]
pub enum WebError {
    /// Not there, or not theirs.
    NotFound,
    /// Not signed in.
    Login,
    /// A bad request, with a message for the user.
    BadRequest(String),
    /// A request body over its route's limit, with a message naming the limit.
    TooLarge(String),
    /// Too many failed sign-ins: wait this many seconds.
    TooMany(u64),
    /// Something broke; the detail goes to the server's log only.
    Internal(String),
    /// Signed in, but the user's role must use a security code and they have none yet.
    SecurityCodeNeeded,
    /// Signed in, but the request lacks what proves it was meant (an API call made with the
    /// session cookie must carry the X-CSRF-Token header).
    Forbidden(String),
}

impl WebError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> WebError {
        WebError::Internal(e.to_string())
    }

    /// The stable code of this kind of error (what a program checks; the wording may change).
    pub fn code(&self) -> &'static str {
        match self {
            WebError::NotFound => "not_found",
            WebError::Login => "sign_in_required",
            WebError::BadRequest(_) => "bad_request",
            WebError::TooLarge(_) => "too_large",
            WebError::TooMany(_) => "too_many_attempts",
            WebError::Internal(_) => "internal",
            WebError::SecurityCodeNeeded => "security_code_required",
            WebError::Forbidden(_) => "csrf_required",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Login => StatusCode::SEE_OTHER,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::SecurityCodeNeeded => StatusCode::SEE_OTHER,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
        }
    }

    /// What people are told: never SQL or internals (those go to the server's log).
    pub fn message(&self) -> String {
        match self {
            WebError::NotFound => "Page not found".into(),
            WebError::Login => "Sign in first.".into(),
            WebError::BadRequest(m) | WebError::TooLarge(m) | WebError::Forbidden(m) => m.clone(),
            WebError::TooMany(secs) => format!(
                "Too many failed sign-ins. Wait {secs} second{} and try again.",
                if *secs == 1 { "" } else { "s" }
            ),
            WebError::Internal(_) => "Something went wrong on our side. Nothing was changed. Try again, or tell your administrator.".into(),
            WebError::SecurityCodeNeeded => "Set up a security code first: your role needs one.".into(),
        }
    }
}

impl From<crest_store::StoreError> for WebError {
    fn from(e: crest_store::StoreError) -> WebError {
        WebError::internal(e)
    }
}

/// A refusal as the JSON API answers it, kept on every error response so that `error_pages`
/// can answer `/api/` requests in JSON rather than with a page or a redirect.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let api = ApiError {
            status: match self {
                WebError::Login => StatusCode::UNAUTHORIZED,
                WebError::SecurityCodeNeeded => StatusCode::FORBIDDEN,
                _ => self.status(),
            },
            code: self.code(),
            message: match self {
                WebError::Login => {
                    "Sign in, or send a personal API token: Authorization: Bearer crest_pat_…."
                        .into()
                }
                _ => self.message(),
            },
        };
        let mut r = self.into_page();
        r.extensions_mut().insert(api);
        r
    }
}

impl WebError {
    pub(crate) fn into_page(self) -> Response {
        if let WebError::Login = self {
            return Redirect::to("/login").into_response();
        }
        if let WebError::SecurityCodeNeeded = self {
            return Redirect::to(crate::app::security::SECURITY_CODE_PAGE).into_response();
        }
        if let WebError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let (status, msg) = (self.status(), self.message());
        let title = match status {
            StatusCode::NOT_FOUND => "Page not found",
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "There is a problem",
            StatusCode::PAYLOAD_TOO_LARGE => "The file is too large",
            StatusCode::TOO_MANY_REQUESTS => "Please wait",
            _ => "Sorry, something went wrong",
        };
        let page_for = ErrorPage {
            title,
            message: msg,
        };
        let mut r = (status, html_headers(), page_for.render(maud::html! {})).into_response();
        // `error_pages` draws it again with the navigation of whoever is signed in.
        r.extensions_mut().insert(page_for);
        r
    }
}

/// Refusals that come from outside crest's handlers (a query string axum cannot read, a
/// method the route does not have, an unknown address) answered in the API's JSON shape too.
pub(crate) async fn api_json_errors(r: Response) -> Response {
    let status = r.status();
    let json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return r;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = match status {
        StatusCode::NOT_FOUND => "There is nothing at this address.".to_string(),
        s if s.is_server_error() => WebError::Internal(String::new()).message(),
        _ => {
            let bytes = axum::body::to_bytes(r.into_body(), 4096)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim();
            if text.is_empty() || text.starts_with('<') {
                format!(
                    "The request was refused ({}).",
                    status.canonical_reason().unwrap_or("bad request")
                )
            } else {
                html::capitalised(text)
            }
        }
    };
    api_error(status, code, message)
}

/// An error page's words, kept on the response so it can be drawn with the user's navigation.
#[derive(Clone, Debug)]
pub(crate) struct ErrorPage {
    pub(crate) title: &'static str,
    pub(crate) message: String,
}

impl ErrorPage {
    pub(crate) fn render(&self, nav: maud::Markup) -> String {
        let body = maud::html! {
            p { (self.message) }
            p { a href="/" { "Back to the start" } }
        };
        page(self.title, nav, body)
    }
}

/// An answer of the JSON API that refuses: `{"code": …, "message": …}`, the code stable for
/// programs and the message for people.
pub(crate) fn api_error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
) -> Response {
    json_reply(
        status,
        serde_json::json!({"code": code, "message": message.into()}),
    )
}

/// A JSON answer with its status.
pub(crate) fn json_reply(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A refusal.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ApiErrorBody {
    /// Stable: what a program checks (`not_found`, `sign_in_required`, `bad_request`, …).
    pub(crate) code: String,
    /// For people; the wording may change.
    pub(crate) message: String,
}

pub(crate) fn html_headers() -> [(header::HeaderName, HeaderValue); 3] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; \
                 frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        ),
    ]
}
