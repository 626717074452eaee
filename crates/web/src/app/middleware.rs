//! What every request passes through: its log line and id, security headers, marking the current page, and the not-found page.

use super::context::ctx;
use super::error::{api_error, api_json_errors, html_headers, ApiError, ErrorPage};
use super::respond::html_page;
use super::App;
use crate::html::page;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Every request gets an id, sent back as `X-Request-Id` and carried by every log line it
/// causes. The log names the route's pattern (`/p/{code}/episodes/{id}`), never the path
/// itself, so no episode id, NHS number or search term reaches the server's log.
pub(crate) async fn request_log(
    axum::extract::State(app): axum::extract::State<std::sync::Arc<super::App>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut id = [0u8; 8];
    let _ = getrandom::fill(&mut id);
    let id = hex::encode(id);
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", %id, %method, %route);
    let started = std::time::Instant::now();
    let mut response = {
        use tracing::Instrument;
        next.run(req).instrument(span.clone()).await
    };
    let took = started.elapsed();
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = took.as_millis() as u64,
            "answered"
        )
    });
    app.metrics.request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        took.as_secs_f64(),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The id of the request being answered.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Headers on every response: no framing, no type sniffing, no referrer beyond crest, and a
/// locked-down CSP on anything that is not a page (downloads, JSON, PNG).
pub(crate) async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; sandbox"),
        );
    }
    r
}

/// The script of the progress report's Print button, and of links to long work (a PDF that
/// takes a while to print) that show a waiting message with a progress bar once pressed. A
/// file, as the CSP allows no inline script.
pub(crate) const PRINT_JS: &str =
    "document.querySelectorAll('[data-print]').forEach(function(b){b.addEventListener('click',function(){window.print();});});\
document.querySelectorAll('[data-wait]').forEach(function(a){a.addEventListener('click',function(){var w=document.getElementById(a.getAttribute('data-wait'));if(w){w.hidden=false;}});});";

pub(crate) async fn print_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=86400"),
            ),
        ],
        PRINT_JS,
    )
        .into_response()
}

/// Any address crest does not have: the "Page not found" page, with the navigation of whoever
/// is signed in.
pub(crate) async fn not_found(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let nav = match ctx(&app, &headers).await {
        // A programme's staff keep their programme's links.
        Ok(c) if c.user.role.sees_patients() => {
            c.nav(c.user.programmes.first().map(String::as_str))
        }
        Ok(c) => c.nav(None),
        Err(_) => maud::html! {},
    };
    let body = page(
        "Page not found",
        nav,
        maud::html! {
            p {
                "There is no page at this address. Check the address, or go "
                a href="/" { "back to the start" } "."
            }
        },
    );
    let mut r = html_page(body);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// Error pages carry the layout and the navigation of the signed-in user, whichever handler
/// refused.
pub(crate) async fn error_pages(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers().clone();
    if req.uri().path().starts_with("/api/") {
        let mut r = next.run(req).await;
        if let Some(e) = r.extensions_mut().remove::<ApiError>() {
            return api_error(e.status, e.code, e.message);
        }
        return api_json_errors(r).await;
    }
    // A programme page's error keeps that programme's navigation (if the user has it).
    let code = req
        .uri()
        .path()
        .strip_prefix("/p/")
        .and_then(|rest| rest.split('/').next())
        .map(str::to_string);
    let mut r = next.run(req).await;
    let Some(error) = r.extensions_mut().remove::<ErrorPage>() else {
        return r;
    };
    if let Ok(c) = ctx(&app, &headers).await {
        let status = r.status();
        let programme = code.filter(|p| c.user.programmes.iter().any(|m| m == p));
        let nav = c.nav(programme.as_deref());
        let mut again = (status, html_headers(), error.render(nav)).into_response();
        for (k, v) in r.headers() {
            if !again.headers().contains_key(k) {
                again.headers_mut().insert(k.clone(), v.clone());
            }
        }
        r = again;
    }
    r
}
