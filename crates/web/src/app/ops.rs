//! What the people who run crest watch it by: `/healthz` (the process answers), `/readyz`
//! (its store is reachable and its migrations current) and `/metrics` (Prometheus text:
//! requests by route and status with their latency, the database pool and worker queue,
//! imports, receipts and refused sign-ins).
//!
//! The first two need no sign-in and say nothing about the data. `/metrics` is answered only to
//! the loopback address unless `crest serve --metrics-token` or `--metrics-allow` opens it to a
//! monitoring server; behind a proxy, a request the proxy forwarded is never taken for a local
//! one. Metrics are labelled by route pattern (`/p/{code}/episodes/{id}`), never by path, so no
//! identifier reaches them.

use super::App;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// A request's labels: route pattern, method and status.
type RequestLabels = Vec<(&'static str, String)>;

/// The server's counters, kept as it answers.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram>,
    /// Sign-ins refused (wrong password or code, throttled).
    pub(crate) sign_in_refusals: Counter,
    /// Files stored from the upload page.
    pub(crate) imports: Counter,
    /// Submissions received by the national side.
    pub(crate) receipts: Counter,
    /// Database jobs waiting for a worker.
    pub(crate) queue_depth: Gauge,
    /// Store connections open and idle in the pool.
    pool_idle: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        // 5 ms to about 20 s.
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 13))
        });
        registry.register(
            "crest_http_request_duration_seconds",
            "Requests answered, by route pattern, method and status, and how long they took",
            requests.clone(),
        );
        let sign_in_refusals = Counter::default();
        registry.register(
            "crest_sign_in_refusals",
            "Sign-ins refused: a wrong password or security code, or too many attempts",
            sign_in_refusals.clone(),
        );
        let imports = Counter::default();
        registry.register("crest_imports", "Uploaded files stored", imports.clone());
        let receipts = Counter::default();
        registry.register(
            "crest_submission_receipts",
            "Submissions received by the national audit",
            receipts.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "crest_worker_queue_depth",
            "Database jobs waiting for a worker thread",
            queue_depth.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "crest_db_pool_idle",
            "Store connections open and idle",
            pool_idle.clone(),
        );
        Metrics {
            registry,
            requests,
            sign_in_refusals,
            imports,
            receipts,
            queue_depth,
            pool_idle,
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub(crate) fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&vec![
                ("route", route.to_string()),
                ("method", method.to_string()),
                ("status", status.to_string()),
            ])
            .observe(seconds);
    }
}

/// Who may read `/metrics` besides the loopback address.
#[derive(Debug, Default, Clone)]
pub struct MetricsAccess {
    /// A bearer token a monitoring server sends.
    pub token: Option<String>,
    /// Addresses allowed without the token.
    pub allow: Vec<std::net::IpAddr>,
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The process is up and answering.
async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

/// How long a readiness answer is reused: anyone may ask, so a flood of asking costs the
/// store one query a second, not one a request.
const READY_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The last readiness answer and when it was worked out.
#[derive(Default)]
pub(crate) struct Readiness(std::sync::Mutex<Option<(std::time::Instant, StatusCode, String)>>);

/// The store is reachable and its schema is what this crest expects.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    let recent = app
        .readiness
        .0
        .lock()
        .ok()
        .and_then(|last| last.clone())
        .filter(|(at, ..)| at.elapsed() < READY_FOR);
    if let Some((_, status, body)) = recent {
        return text(status, body);
    }
    let (status, body) = ready(&app).await;
    if let Ok(mut last) = app.readiness.0.lock() {
        *last = Some((std::time::Instant::now(), status, body.clone()));
    }
    text(status, body)
}

async fn ready(app: &Arc<App>) -> (StatusCode, String) {
    let answer = app
        .db(|store, _| Ok(store.migrations_pending().map_err(|e| e.to_string())))
        .await;
    match answer {
        Ok(Ok(0)) => (StatusCode::OK, "ready\n".into()),
        Ok(Ok(n)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the store needs {n} migration(s); run crest init\n"),
        ),
        Ok(Err(e)) => {
            tracing::warn!(%e, "readiness: the store's migrations cannot be checked");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the store's migrations cannot be checked (see the server log)\n".into(),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the store cannot be reached\n".into(),
        ),
    }
}

/// Prometheus text, to the loopback address or a configured monitoring server only.
async fn metrics(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    if !may_read_metrics(&app, &headers, request.extensions()) {
        // Said as not found: nothing tells a stranger there is something here.
        return text(StatusCode::NOT_FOUND, "not found\n".into());
    }
    let m = &app.metrics;
    m.pool_idle
        .set(i64::try_from(app.pool.idle()).unwrap_or(i64::MAX));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics unavailable\n".into(),
        );
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

fn may_read_metrics(app: &App, headers: &HeaderMap, extensions: &axum::http::Extensions) -> bool {
    let access = app.metrics_access.get().cloned().unwrap_or_default();
    if let Some(token) = access.token.as_deref().filter(|t| !t.is_empty()) {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), token.as_bytes()).into() {
            return true;
        }
    }
    // Behind a proxy every request comes from the proxy: one it forwarded is a stranger's.
    if app.behind_proxy.load(std::sync::atomic::Ordering::Relaxed)
        && headers.contains_key("x-forwarded-for")
    {
        return false;
    }
    let Some(peer) = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
    else {
        return false;
    };
    peer.is_loopback() || access.allow.contains(&peer)
}
