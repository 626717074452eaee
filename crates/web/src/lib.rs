//! crest's web app for CR programmes: login, the episode list and forms, upload with preview,
//! the dashboard, patient progress reports, the programme profile and exports.
//!
//! Handlers are thin: validation is `crest_core::check_row`, uploads are
//! `crest_ingest::import_file`, KPIs are `crest_stats::kpis::compute`, exactly as on the
//! command line. Every query is scoped to the signed-in user's programmes; another programme's
//! pages answer 404, as if they did not exist.

mod access;
mod api;
use access::SignedIn;
pub use api::openapi;
mod agreements;
mod annual_report;
mod auth;
mod dashboard;
mod episode_form;
mod episode_steps;
mod exports;
mod patient_summary;
mod patients;
mod profile;
mod progress_report;
mod upload;
mod users;
pub use crest_report::html;
mod inequalities;
mod national;
mod national_dashboard;
mod national_figures;
mod outliers;
mod planning;
mod programme_page;
mod quality;
mod region;
mod research;
mod secrets;
mod submit;
mod table;
mod tokens;
pub use tokens::{new_personal_token, token_hash};
pub mod uploads;

pub use crest_store::users::{add_user, hash_password, new_password};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use crest_core::{Date, Programme};
use crest_store::{AccessEntry, Role, Session, Store, User};
use html::page;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Idle connections, reused by the next request instead of opening a new one.
struct Pool<T>(Mutex<Vec<T>>);

impl<T> Pool<T> {
    fn new(first: Vec<T>) -> Pool<T> {
        Pool(Mutex::new(first))
    }

    /// An idle connection, or a new one from `open`.
    fn take<E>(&self, open: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let idle = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.map_or_else(open, Ok)
    }

    fn give_back(&self, conn: T) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
    }
}

/// The largest upload of episodes (CSV or XLSX) a programme may send.
pub const UPLOAD_LIMIT: usize = 100 << 20;
/// The largest national submission (web receive and the API); 100,000 episodes are about 70 MB.
pub const SUBMISSION_LIMIT: usize = 512 << 20;

/// How many large bodies (submissions) are read at once; the rest wait their turn.
const LARGE_BODIES_AT_ONCE: usize = 2;
/// The largest National Data Opt-out check result attached to a build.
pub const OPT_OUT_FILE_LIMIT: usize = 50 << 20;

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

/// Password hashes computed at once; further sign-ins queue (150 at once took 2 GiB before).
const CONCURRENT_HASHES: usize = 4;

/// Database connections (and the threads holding them) in use at once by one server.
const DB_CONNECTIONS: usize = 16;

/// A job of database work.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for database work: a burst of requests queues for them instead of
/// starting a thread each. Plain threads, not tokio's blocking pool: the PostgreSQL client
/// drives its own runtime, which must not be nested in ours.
struct Workers {
    queue: std::sync::mpsc::Sender<Job>,
}

impl Workers {
    fn new(threads: usize) -> Workers {
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            let _ = std::thread::Builder::new()
                .name(format!("crest-db-{i}"))
                .spawn(move || loop {
                    let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        // The app is gone.
                        Err(_) => return,
                    };
                    // A job that panics answers nothing (its request gets a 500); the worker
                    // goes on.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                });
        }
        Workers { queue }
    }

    /// Queues a job.
    fn run(&self, job: Job) {
        let _ = self.queue.send(job);
    }
}

/// The shared state of the app.
pub struct App {
    db: String,
    pool: Pool<Box<dyn Store>>,
    /// Idle national-store connections (when this server has the national side).
    national_pool: Pool<crest_store::NationalStore>,
    /// The threads that run database work (each holds a connection while it works).
    workers: Workers,
    /// Password hashes allowed at once (each takes 19 MiB and a core for a while).
    hashing: tokio::sync::Semaphore,
    /// Trust `X-Forwarded-For` and mark cookies `Secure` (crest serve --behind-proxy).
    behind_proxy: std::sync::atomic::AtomicBool,
    uploads: PathBuf,
    today: fn() -> Date,
    dashboards: dashboard::Cache,
    /// The programme side's submission key, if this server builds national submissions.
    submission_key: std::sync::OnceLock<crest_privacy::Key>,
    /// The programmes' own signing keys, for submissions built on the web.
    signing_keys: std::sync::OnceLock<crest_privacy::SigningKeys>,
    /// Permits to read a large body (a submission), so a few callers at once cannot fill
    /// memory.
    pub(crate) large_bodies: tokio::sync::Semaphore,
    /// The server's key for security-code secrets at rest.
    secret_box: std::sync::OnceLock<secrets::SecretBox>,
    /// Where leads' submissions are sent: the national audit's address and this programme
    /// system's API token (`crest serve --send-to URL --send-token TOKEN`).
    send_to: std::sync::OnceLock<(String, String)>,
    /// The national side: its store's URL and the national key, if this server has one.
    national_db: std::sync::OnceLock<String>,
    national_key: std::sync::OnceLock<crest_privacy::Key>,
    national_pages: national_dashboard::PageCache,
    national_reports: national_dashboard::ReportCache,
    /// Aggregate answers: the published grid makes few periods, so most questions repeat.
    answers: national_dashboard::VersionCache<crest_report::aggregates::Answer>,
    /// Every national episode's facts for aggregates, in memory (one entry).
    facts: national_dashboard::VersionCache<crest_report::aggregates::Facts>,
    /// Security-code keys shown but not yet confirmed, by user: reloading the set-up page
    /// shows the same key, so an app set up from the first showing still works.
    pub(crate) pending_codes: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl App {
    /// An app over the store at `db` (`--db` syntax); uploads wait for confirmation in
    /// `uploads`.
    pub fn new(db: &str, uploads: PathBuf, today: fn() -> Date) -> Result<Arc<App>, String> {
        let store = crest_store::open(db).map_err(|e| e.to_string())?;
        uploads::prepare(&uploads)
            .map_err(|e| format!("cannot create {}: {e}", uploads.display()))?;
        Ok(Arc::new(App {
            db: db.to_string(),
            pool: Pool::new(vec![store]),
            national_pool: Pool::new(Vec::new()),
            hashing: tokio::sync::Semaphore::new(CONCURRENT_HASHES),
            workers: Workers::new(DB_CONNECTIONS),
            behind_proxy: std::sync::atomic::AtomicBool::new(false),
            uploads,
            today,
            dashboards: dashboard::Cache::default(),
            submission_key: std::sync::OnceLock::new(),
            signing_keys: std::sync::OnceLock::new(),
            large_bodies: tokio::sync::Semaphore::new(LARGE_BODIES_AT_ONCE),
            secret_box: std::sync::OnceLock::new(),
            send_to: std::sync::OnceLock::new(),
            national_db: std::sync::OnceLock::new(),
            national_key: std::sync::OnceLock::new(),
            national_pages: national_dashboard::PageCache::default(),
            national_reports: national_dashboard::ReportCache::default(),
            answers: Default::default(),
            facts: Default::default(),
            pending_codes: Default::default(),
        }))
    }

    /// Serves behind a proxy that terminates TLS: cookies are marked `Secure`, and the
    /// client's address for login throttling is the one the proxy appended to
    /// `X-Forwarded-For`.
    pub fn set_behind_proxy(&self, yes: bool) {
        self.behind_proxy
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The folder where uploads wait for confirmation.
    pub fn uploads_dir(&self) -> &std::path::Path {
        &self.uploads
    }

    /// Removes uploads waiting longer than `max_age` (from the store, which every server of a
    /// deployment shares), idle sign-in throttling records, and any scratch file a crash left
    /// behind; returns how many uploads went. `serve` does this every minute with
    /// [`uploads::MAX_AGE`].
    pub fn sweep_uploads(
        &self,
        max_age: std::time::Duration,
    ) -> Result<usize, crest_store::StoreError> {
        uploads::sweep(&self.uploads, max_age);
        crest_store::open(&self.db)?.sweep(
            now_secs() - max_age.as_secs() as i64,
            auth::now_ms() - auth::WINDOW_MS,
        )
    }

    /// Lets programme leads build national submissions with this key (once, at start-up).
    pub fn set_submission_key(&self, key: crest_privacy::Key) {
        let _ = self.submission_key.set(key);
    }

    /// Gives the server its programmes' signing keys, with which leads' submissions prove
    /// which programme built them.
    pub fn set_signing_keys(&self, keys: crest_privacy::SigningKeys) {
        let _ = self.signing_keys.set(keys);
    }

    /// Gives the server its own key (a crest key file), with which users' security-code
    /// secrets are sealed in the store (once, at start-up).
    pub fn set_server_key(&self, key: &crest_privacy::Key) {
        // A key of its own for this one purpose, derived from the server key.
        let derived = key.rekey("crest security-code secrets");
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(derived.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
        }
        let _ = self.secret_box.set(secrets::SecretBox::new(bytes));
    }

    /// A user's stored security-code secret, opened (see `secrets::open`).
    pub(crate) fn code_secret(&self, username: &str, stored: &str) -> Option<String> {
        secrets::open(self.secret_box.get(), username, stored)
    }

    /// A security-code secret as it is to be stored (sealed when the server has a key).
    pub(crate) fn seal_code_secret(
        &self,
        username: &str,
        secret: &str,
    ) -> Result<String, WebError> {
        secrets::seal(self.secret_box.get(), username, secret).map_err(WebError::Internal)
    }

    /// The signing key of a programme this server holds.
    pub(crate) fn signing_key(&self, programme: &str) -> Option<crest_privacy::SigningKey> {
        self.signing_keys.get()?.get(programme).cloned()
    }

    /// Lets leads send their submissions to the national audit at `url` (its address, e.g.
    /// `https://audit.example.nhs.uk`) with the API token it issued for this system. Plain
    /// `http://` is taken only for this machine (loopback), so submissions never cross a
    /// network unencrypted.
    pub fn set_send_to(&self, url: &str, token: &str) -> Result<(), String> {
        let url = url.trim().trim_end_matches('/');
        // Parsed as an address, never matched as text: the host exactly (not a prefix, not
        // what precedes an '@'), and no user name or password in it.
        let uri: axum::http::Uri = url.parse().map_err(|_| {
            format!("{url}: not a web address; give the national audit's address, e.g. https://audit.example.nhs.uk")
        })?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        if authority.contains('@') {
            return Err(format!(
                "{url}: the address may not carry a user name or password (before '@'); give the national audit's address alone"
            ));
        }
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "::1");
        let scheme = uri.scheme_str().unwrap_or("");
        if host.is_empty() || !(scheme == "https" || (scheme == "http" && loopback)) {
            return Err(format!(
                "{url}: the national audit's address must start with https:// (plain http only on this machine)"
            ));
        }
        let _ = self
            .send_to
            .set((url.to_string(), token.trim().to_string()));
        Ok(())
    }

    /// Serves the national side too, over the national store at `url` with its key (once, at
    /// start-up). The store must exist (`crest init --national`).
    pub fn set_national(
        &self,
        url: &str,
        key: crest_privacy::Key,
    ) -> Result<(), crest_store::StoreError> {
        let mut n = crest_store::NationalStore::open(url)?;
        n.submissions()?;
        let _ = self.national_db.set(url.to_string());
        let _ = self.national_key.set(key);
        Ok(())
    }

    /// Runs `f` with a store connection on a blocking thread.
    async fn db<T, F>(self: &Arc<Self>, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store, &App) -> Result<T, WebError> + Send + 'static,
    {
        let app = self.clone();
        let (send, receive) = tokio::sync::oneshot::channel();
        self.workers.run(Box::new(move || {
            let mut store = match app.pool.take(|| crest_store::open(&app.db)) {
                Ok(s) => s,
                Err(e) => {
                    let _ = send.send(Err(WebError::internal(e)));
                    return;
                }
            };
            let out = f(store.as_mut(), &app);
            app.pool.give_back(store);
            let _ = send.send(out);
        }));
        receive.await.map_err(WebError::internal)?
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
    fn internal(e: impl std::fmt::Display) -> WebError {
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
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
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
    fn into_page(self) -> Response {
        if let WebError::Login = self {
            return Redirect::to("/login").into_response();
        }
        if let WebError::SecurityCodeNeeded = self {
            return Redirect::to(users::SECURITY_CODE_PAGE).into_response();
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
async fn api_json_errors(r: Response) -> Response {
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
    national::api_error(status, code, message)
}

/// An error page's words, kept on the response so it can be drawn with the user's navigation.
#[derive(Clone, Debug)]
struct ErrorPage {
    title: &'static str,
    message: String,
}

impl ErrorPage {
    fn render(&self, nav: maud::Markup) -> String {
        let body = maud::html! {
            p { (self.message) }
            p { a href="/" { "Back to the start" } }
        };
        page(self.title, nav, body)
    }
}

/// Error pages carry the layout and the navigation of the signed-in user, whichever handler
/// refused.
async fn error_pages(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers().clone();
    if req.uri().path().starts_with("/api/") {
        let mut r = next.run(req).await;
        if let Some(e) = r.extensions_mut().remove::<ApiError>() {
            return national::api_error(e.status, e.code, e.message);
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

fn html_headers() -> [(header::HeaderName, HeaderValue); 3] {
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

/// Every request gets an id, sent back as `X-Request-Id` and carried by every log line it
/// causes. The log names the route's pattern (`/p/{code}/episodes/{id}`), never the path
/// itself, so no episode id, NHS number or search term reaches the server's log.
async fn request_log(mut req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut id = [0u8; 8];
    let _ = getrandom::fill(&mut id);
    let id = auth::hex(&id);
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
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
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
async fn security_headers(mut r: Response) -> Response {
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
const PRINT_JS: &str =
    "document.querySelectorAll('[data-print]').forEach(function(b){b.addEventListener('click',function(){window.print();});});\
document.querySelectorAll('[data-wait]').forEach(function(a){a.addEventListener('click',function(){var w=document.getElementById(a.getAttribute('data-wait'));if(w){w.hidden=false;}});});";

async fn print_js() -> Response {
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
async fn not_found(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
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

/// An HTML page response.
pub(crate) fn html_page(body: String) -> Response {
    (html_headers(), body).into_response()
}

/// The signed-in user of a request.
pub(crate) struct Ctx {
    pub user: User,
    pub session: Session,
}

impl Ctx {
    /// The programme at `code`, if this user may see its patients; otherwise 404.
    pub fn programme<'a>(
        &self,
        code: &str,
        all: &'a [Programme],
    ) -> Result<&'a Programme, WebError> {
        if !self.user.role.sees_patients() || !self.user.programmes.iter().any(|p| p == code) {
            return Err(WebError::NotFound);
        }
        all.iter()
            .find(|p| p.code == code)
            .ok_or(WebError::NotFound)
    }

    /// Header links, the one to the page being answered marked as current.
    pub fn nav(&self, programme: Option<&str>) -> maud::Markup {
        let role = self.user.role;
        let link = |href: String, words: &str| {
            maud::html! { a href=(href) aria-current=[current(&href)] { (words) } }
        };
        let links = |label: &str, items: Vec<(String, &str)>| {
            let last = items.len().saturating_sub(1);
            maud::html! {
                nav aria-label=(label) {
                    @for (i, (href, words)) in items.into_iter().enumerate() {
                        (link(href, words))
                        @if i < last { " · " }
                    }
                }
            }
        };
        let fixed = |items: &[(&str, &'static str)]| -> Vec<(String, &'static str)> {
            items.iter().map(|(h, w)| (h.to_string(), *w)).collect()
        };
        let programme_links = |p: &str| {
            let mut items = vec![
                (format!("/p/{p}/episodes"), "Patients"),
                (format!("/p/{p}/episodes/new"), "New episode"),
                (format!("/p/{p}/upload"), "Upload"),
                (format!("/p/{p}/dashboard"), "Dashboard"),
                (format!("/p/{p}/profile"), "Profile"),
            ];
            // Links only to what the role may open: building a submission is the lead's.
            if role == Role::ProgrammeLead {
                items.push((format!("/p/{p}/submit"), "Submit"));
            }
            items.push((format!("/p/{p}/export.csv"), "Export CSV"));
            items.push((format!("/p/{p}/export.xlsx"), "Export XLSX"));
            items
        };
        maud::html! {
            @if let Some(p) = programme {
                (links("Programme", programme_links(p)))
            } @else if role == Role::Admin {
                (links("Administration", fixed(&[
                    ("/admin/users", "Users"),
                    ("/admin/national-figures", "National figures"),
                    ("/admin/agreements", "Data sharing agreements"),
                    ("/admin/projects", "Research projects"),
                ])))
            } @else if role == Role::NationalAnalyst {
                (links("National audit", fixed(&[
                    ("/national", "Submissions"),
                    ("/national/dashboard", "Programmes"),
                    ("/national/inequalities", "Inequalities"),
                    ("/national/outliers", "Outliers"),
                    ("/national/quality", "Data quality"),
                    ("/national/report", "Annual report"),
                    ("/aggregates", "Aggregates"),
                ])))
            } @else if role == Role::Commissioner {
                (links("Planning", fixed(&[
                    ("/region", "Your region"),
                    ("/aggregates", "Aggregates"),
                    ("/api", "API"),
                ])))
            } @else if role == Role::Researcher {
                (links("Research", fixed(&[
                    ("/research", "Your projects"),
                    ("/aggregates", "Aggregates"),
                    ("/api", "API"),
                ])))
            }
            // The account's links fold under the user's name, so on a phone the header stays
            // a few lines high.
            details class="account" {
                summary { (self.user.username) " (" (role.label()) ")" }
                div {
                    (link("/account/password".into(), "Change password"))
                    (link("/account/tokens".into(), "API tokens"))
                    (link(users::SECURITY_CODE_PAGE.into(), "Security code"))
                    form method="post" action="/logout" style="display:inline" {
                        (html::csrf_field(&self.session.csrf))
                        button { "Sign out" }
                    }
                }
            }
        }
    }

    /// Checks a form's CSRF token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), WebError> {
        match sent {
            Some(t) if auth::same(t, &self.session.csrf) => Ok(()),
            _ => Err(WebError::BadRequest(
                "This form has expired. Go back, reload the page and try again.".into(),
            )),
        }
    }

    /// An access-log entry by this user.
    pub fn entry(&self, programme: &str, action: &str, target: &str) -> AccessEntry {
        AccessEntry {
            at: crest_store::utc_now(),
            username: self.user.username.clone(),
            role: self.user.role.code().into(),
            programme: programme.into(),
            action: action.into(),
            target: target.into(),
            outcome: "ok".into(),
            detail: String::new(),
        }
    }
}

fn now_secs() -> i64 {
    crest_core::date::unix_now()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

const SESSION_COOKIE: &str = "crest_session";
const LOGIN_COOKIE: &str = "crest_login";

/// A cookie crest sets: HttpOnly, SameSite=Strict, and Secure when served over TLS (behind a
/// proxy that terminates it: `crest serve --behind-proxy`).
fn set_cookie(app: &App, name: &str, value: &str, max_age: i64) -> (header::HeaderName, String) {
    let secure = if app.behind_proxy.load(std::sync::atomic::Ordering::Relaxed) {
        "; Secure"
    } else {
        ""
    };
    (
        header::SET_COOKIE,
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"),
    )
}

/// The signed-in user of a page or form, or `WebError::Login`: only the session cookie
/// counts here. A personal API token drives the JSON API and nothing else.
pub(crate) async fn ctx(app: &Arc<App>, headers: &HeaderMap) -> Result<Ctx, WebError> {
    let cred = credentials(headers, false)?;
    app.db(move |s, _| cred.user(s)).await
}

/// The header an API call made with the session cookie must carry, holding the session's
/// CSRF token (a page on another site can neither read that token nor set the header).
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The signed-in user of a request, by where it goes: on the JSON API (`/api/v1/…`) a
/// personal API token or the session cookie, where a call that changes something with the
/// cookie must also carry the session's CSRF token in `X-CSRF-Token`; anywhere else the
/// session cookie only.
pub(crate) async fn ctx_of(
    app: &Arc<App>,
    parts: &axum::http::request::Parts,
) -> Result<Ctx, WebError> {
    let (cred, check) = request_credentials(parts)?;
    let c = app.db(move |s, _| cred.user(s)).await?;
    check.check(&c)?;
    Ok(c)
}

/// What an API call made with the session cookie must also send: the session's CSRF token
/// in `X-CSRF-Token` (`None` when the request needs no such proof).
struct CsrfHeader(Option<String>);

impl CsrfHeader {
    /// Whether the signed-in user's request passes.
    fn check(&self, c: &Ctx) -> Result<(), WebError> {
        match &self.0 {
            None => Ok(()),
            Some(sent) if !sent.is_empty() && auth::same(sent, &c.session.csrf) => Ok(()),
            Some(_) => Err(WebError::Forbidden(
                "An API call made with the session cookie must send the session's CSRF token in the X-CSRF-Token header; programs should use a personal API token instead.".into(),
            )),
        }
    }
}

/// A request's credentials by where it goes (see [`ctx_of`]), and the CSRF proof its
/// signed-in user must then pass.
fn request_credentials(
    parts: &axum::http::request::Parts,
) -> Result<(Credentials, CsrfHeader), WebError> {
    let api = parts.uri.path().starts_with("/api/v1/");
    let cred = credentials(&parts.headers, api)?;
    let by_cookie = matches!(cred, Credentials::Session(_));
    let changes = !matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let proof = (api && by_cookie && changes).then(|| {
        parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    });
    Ok((cred, CsrfHeader(proof)))
}

/// The prefix of personal API tokens (programme systems' submission tokens have none).
pub(crate) const PERSONAL_TOKEN_PREFIX: &str = "crest_pat_";

/// How a request says who it is.
enum Credentials {
    /// The session cookie's token.
    Session(String),
    /// A personal API token (`Authorization: Bearer crest_pat_…`).
    Personal(String),
}

impl Credentials {
    /// The signed-in user these credentials stand for.
    fn user(&self, s: &mut dyn Store) -> Result<Ctx, WebError> {
        match self {
            Credentials::Session(token) => signed_in_fully(s, token),
            Credentials::Personal(token) => token_user(s, token),
        }
    }
}

/// A request's session cookie or (where `token_allowed`: the JSON API) personal API token;
/// `WebError::Login` when it has neither. A personal token, when one is sent where it may be,
/// is what counts: a program sending one means it.
fn credentials(headers: &HeaderMap, token_allowed: bool) -> Result<Credentials, WebError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(PERSONAL_TOKEN_PREFIX));
    if let Some(t) = token {
        if token_allowed {
            return Ok(Credentials::Personal(t.to_string()));
        }
    }
    cookie(headers, SESSION_COOKIE)
        .map(Credentials::Session)
        .ok_or(WebError::Login)
}

/// The user of a live personal API token: it acts with their role and programmes or regions
/// as they are now, and stops with their account. There is no cookie, so there is nothing to
/// forge across sites: its session carries no CSRF token to check.
fn token_user(s: &mut dyn Store, token: &str) -> Result<Ctx, WebError> {
    let hash = auth::token_hash(token);
    let t = s.user_token(&hash)?.ok_or(WebError::Login)?;
    if !t.live(&crest_store::utc_now()) {
        return Err(WebError::Login);
    }
    let user = s.user(&t.username)?.ok_or(WebError::Login)?;
    if user.disabled {
        return Err(WebError::Login);
    }
    let now = now_secs();
    Ok(Ctx {
        session: Session {
            token_hash: hash,
            username: user.username.clone(),
            csrf: String::new(),
            created: now,
            seen: now,
        },
        user,
    })
}

/// A live session whose user has what their role needs: a role that must use a security code
/// reaches nothing else until one is set up.
fn signed_in_fully(s: &mut dyn Store, token: &str) -> Result<Ctx, WebError> {
    let c = signed_in(s, token)?;
    if c.user.totp_secret.is_empty() && users::code_required(s, c.user.role)? {
        return Err(WebError::SecurityCodeNeeded);
    }
    Ok(c)
}

/// The signed-in user, whether or not their role's security code is set up yet (for the page
/// that sets it up, and for signing out).
pub(crate) async fn ctx_any(app: &Arc<App>, headers: &HeaderMap) -> Result<Ctx, WebError> {
    let token = cookie(headers, SESSION_COOKIE).ok_or(WebError::Login)?;
    app.db(move |s, _| signed_in(s, &token)).await
}

/// Checks a session token: live, within its time-outs, and its user still enabled.
fn signed_in(s: &mut dyn Store, token: &str) -> Result<Ctx, WebError> {
    let hash = auth::token_hash(token);
    let session = s.session(&hash)?.ok_or(WebError::Login)?;
    let now = now_secs();
    if now - session.seen > auth::IDLE_TIMEOUT || now - session.created > auth::ABSOLUTE_TIMEOUT {
        s.drop_session(&hash)?;
        return Err(WebError::Login);
    }
    let user = s.user(&session.username)?.ok_or(WebError::Login)?;
    if user.disabled {
        s.drop_session(&hash)?;
        return Err(WebError::Login);
    }
    if now - session.seen > 60 {
        s.touch_session(&hash, now)?;
    }
    Ok(Ctx { user, session })
}

/// The app's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/template.csv", get(template_csv))
        .route("/template.xlsx", get(template_xlsx))
        .merge(agreements::routes())
        .merge(users::routes())
        .merge(national_figures::routes())
        .merge(patients::routes())
        .merge(episode_form::routes())
        .merge(progress_report::routes())
        .merge(upload::routes())
        .merge(exports::routes())
        .merge(profile::routes())
        .merge(dashboard::routes())
        .merge(submit::routes())
        .merge(national::routes())
        .merge(national_dashboard::routes())
        .merge(inequalities::routes())
        .merge(outliers::routes())
        .merge(programme_page::routes())
        .merge(quality::routes())
        .merge(annual_report::routes())
        .merge(planning::routes())
        .merge(research::routes())
        .merge(region::routes())
        .merge(api::routes())
        .merge(tokens::routes())
        .route("/assets/print.js", get(print_js))
        .fallback(not_found)
        .with_state(app.clone())
        .layer(axum::middleware::from_fn_with_state(app, error_pages))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(current_page))
        .route_layer(axum::middleware::from_fn(request_log))
}

tokio::task_local! {
    /// The path of the page being answered, so the navigation can mark it.
    static CURRENT_PAGE: String;
}

/// Runs a request with its path known to [`Ctx::nav`], which marks the link to the page the
/// user is on (`aria-current="page"`) without every handler passing its own address.
async fn current_page(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let path = req.uri().path().to_string();
    CURRENT_PAGE.scope(path, next.run(req)).await
}

/// `Some("page")` when `href` is the page being answered.
fn current(href: &str) -> Option<&'static str> {
    CURRENT_PAGE
        .try_with(|p| p == href)
        .unwrap_or(false)
        .then_some("page")
}

/// Serves the app until interrupted. Uploads left unconfirmed are removed once an hour old.
pub async fn serve(app: Arc<App>, addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The national dashboard's reports are computed while the server starts answering (a
    // plain thread: the PostgreSQL client must not run inside tokio's runtime).
    let warm = app.clone();
    std::thread::spawn(move || warm.warm_national_reports());
    let sweeper = app.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            let app = sweeper.clone();
            // A plain thread: the PostgreSQL client must not run inside tokio's runtime.
            let swept = std::thread::spawn(move || app.sweep_uploads(uploads::MAX_AGE)).join();
            if let Ok(Err(e)) = swept {
                tracing::error!(%e, "sweeping uploads");
            }
        }
    });
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

async fn home(SignedIn(c): SignedIn) -> Result<Response, WebError> {
    if let (true, [only]) = (c.user.role.sees_patients(), c.user.programmes.as_slice()) {
        return Ok(Redirect::to(&format!("/p/{only}/episodes")).into_response());
    }
    match c.user.role {
        Role::NationalAnalyst => return Ok(Redirect::to("/national").into_response()),
        Role::Commissioner => return Ok(Redirect::to("/region").into_response()),
        Role::Researcher => return Ok(Redirect::to("/research").into_response()),
        _ => {}
    }
    let body = maud::html! {
        @if c.user.role.sees_patients() {
            p { "Your programmes:" }
            ul {
                @for p in &c.user.programmes {
                    li { a href={ "/p/" (p) "/episodes" } { (p) } }
                }
            }
        } @else {
            p {
                "Administrators record the " a href="/admin/agreements" { "data sharing agreements" }
                " that allow national submissions, manage "
                a href="/admin/users" { "users" } " and " a href="/admin/projects" { "research projects" }
                ", and see no patient data."
            }
            p {
                a href="/template.csv" { "CSV template" } " · "
                a href="/template.xlsx" { "XLSX template" }
            }
        }
    };
    Ok(html_page(page("crest", c.nav(None), body)))
}

fn login_form(csrf: &str, message: &str, username: &str, notice: &str) -> String {
    let body = maud::html! {
        @if !message.is_empty() {
            div class="summary" role="alert" { p { (message) } }
        }
        @if !notice.is_empty() {
            div class="ok" role="status" { p { (notice) } }
        }
        form method="post" action="/login" {
            (html::csrf_field(csrf))
            label for="username" { "User name" }
            input id="username" name="username" autocomplete="username" value=(username) required;
            label for="password" { "Password" }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            label for="code" { "Security code" }
            div class="hint" id="code-hint" { "Only if you have set one up: the 6 digits your authenticator app shows now." }
            input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" class="short"
                aria-describedby="code-hint";
            p { button { "Sign in" } }
        }
    };
    page("Sign in", maud::html! {}, body)
}

async fn login_page(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // Login CSRF: the form carries the same random value as a Strict cookie.
    let t = auth::token();
    let notice = if q.contains_key("changed") && q.contains_key("tokens_revoked") {
        "Your password is changed, and your API tokens no longer work (make new ones if you need them). Sign in with your new password."
    } else if q.contains_key("changed") {
        "Your password is changed. Sign in with your new password."
    } else {
        ""
    };
    let mut r = html_page(login_form(&t, "", "", notice));
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&app, LOGIN_COOKIE, &t, 3600).1) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    /// The security code, for users who have set one up.
    #[serde(default)]
    code: String,
}

/// The client's address for login throttling: the peer, or with `--behind-proxy` the address
/// the proxy appended last to `X-Forwarded-For` (the only part a client cannot forge).
fn client_address(app: &App, headers: &HeaderMap, extensions: &axum::http::Extensions) -> String {
    if app.behind_proxy.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
        {
            return auth::throttle_address(&last.chars().take(64).collect::<String>());
        }
    }
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(
            || "unknown".to_string(),
            |c| auth::throttle_address(&c.0.ip().to_string()),
        )
}

/// Starts an attempt to prove who one is (a password or a security code) on the throttling
/// records `keys` (a name's, then an address's): refused with the wait when too many have
/// failed lately; otherwise counted now, before the slow check, so parallel guesses cannot
/// all slip through. [`finish_attempt`] records how it ended.
pub(crate) async fn start_attempt(app: &Arc<App>, keys: &[String; 2]) -> Result<(), WebError> {
    // A wait only because other attempts are under way is a queue: the attempt waits its turn
    // instead of being refused, so forty staff signing in at once from one hospital all get
    // in, while parallel guesses go no faster than guesses in turn. A wait earned by failures
    // is refused, saying how long.
    for _ in 0..QUEUE_TURNS {
        let keys = keys.clone();
        let (wait, earned) = app
            .db(move |s, _| {
                let (mut wait, mut earned) = (0, 0);
                s.sign_in_limits(&[&keys[0], &keys[1]], &mut |limits| {
                    let now = auth::now_ms();
                    let both = |l: &[crest_store::SignInLimit]| {
                        auth::wait_ms(&l[0], auth::NAME, now).max(auth::wait_ms(
                            &l[1],
                            auth::ADDRESS,
                            now,
                        ))
                    };
                    wait = both(limits);
                    let idle: Vec<crest_store::SignInLimit> = limits
                        .iter()
                        .map(|l| crest_store::SignInLimit {
                            in_flight: 0,
                            ..l.clone()
                        })
                        .collect();
                    earned = both(&idle);
                    if wait > 0 {
                        return false;
                    }
                    for l in limits.iter_mut() {
                        auth::start(l, now);
                    }
                    true
                })?;
                Ok((wait, earned))
            })
            .await?;
        match (wait, earned) {
            (0, _) => return Ok(()),
            (w, 0) => {
                tokio::time::sleep(std::time::Duration::from_millis(w.min(1000) as u64)).await
            }
            (w, e) => return Err(WebError::TooMany(((w.max(e) + 999) / 1000) as u64)),
        }
    }
    Err(WebError::TooMany(1))
}

/// How many times an attempt waits its turn (a second at most each) before it is refused.
const QUEUE_TURNS: usize = 30;

/// Records how a sign-in attempt ended on its name's and address's throttling records: success
/// clears the name's failures (the address keeps its own, so one good account does not unlock
/// guessing at others). Best effort: a failure here must not hide the sign-in's own answer.
pub(crate) async fn finish_attempt(app: &Arc<App>, keys: [String; 2], ok: bool) {
    let _ = app
        .db(move |s, _| {
            s.sign_in_limits(&[&keys[0], &keys[1]], &mut |limits| {
                let now = auth::now_ms();
                auth::finish(&mut limits[0], ok, now);
                if ok {
                    limits[1].in_flight = (limits[1].in_flight - 1).max(0);
                } else {
                    auth::finish(&mut limits[1], false, now);
                }
                true
            })?;
            Ok(())
        })
        .await;
}

async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let pre = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if pre.is_empty() || !auth::same(&pre, &f.csrf) {
        return Err(WebError::BadRequest(
            "The sign-in form expired. Reload the page and try again.".into(),
        ));
    }
    let name = f.username.trim().to_string();
    let address = client_address(&app, &headers, &extensions);
    // Throttling records live in the store, shared by every server. A name is cut to the
    // longest a user name can be, so a huge form cannot make a huge key.
    let keys = [
        format!("name:{}", name.chars().take(64).collect::<String>()),
        format!("addr:{address}"),
    ];
    start_attempt(&app, &keys).await?;
    let attempt = keys;
    let name2 = name.clone();
    let user = app.db(move |s, _| Ok(s.user(&name2)?)).await;
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            finish_attempt(&app, attempt, false).await;
            return Err(e);
        }
    };
    // Verify even for unknown users so timing does not reveal who exists. Hashes run a few at
    // a time (each takes 19 MiB); the rest queue for a permit rather than fail.
    let hash = user.as_ref().map_or(
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .to_string(),
        |u| u.password_hash.clone(),
    );
    let ok = {
        let _permit = app.hashing.acquire().await.map_err(WebError::internal)?;
        let password = f.password;
        tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
            .await
            .map_err(WebError::internal)?
    };
    let name2 = name.clone();
    let code = f.code.clone();
    let app2 = app.clone();
    let outcome = app
        .db(move |s, _| {
            let app = app2;
            let mut entry = AccessEntry {
                at: crest_store::utc_now(),
                username: name2.clone(),
                action: "login".into(),
                outcome: "failed".into(),
                ..Default::default()
            };
            // A user with a security code must give it as well: a wrong or missing code
            // fails the sign-in like a wrong password (and counts towards throttling).
            // Each code is accepted once (see `accept_security_code`).
            let code_ok = |s: &mut dyn crest_store::Store, u: &User| {
                if u.totp_secret.is_empty() {
                    return Ok::<bool, WebError>(true);
                }
                // A sealed secret this server cannot open fails the sign-in (its log says why).
                let Some(secret) = app.code_secret(&u.username, &u.totp_secret) else {
                    tracing::error!(user = %u.username, "a security code is sealed with another server key");
                    return Ok(false);
                };
                let right = crest_store::users::accept_security_code(
                    s,
                    &u.username,
                    &secret,
                    &code,
                    now_secs().max(0) as u64,
                )?;
                // A secret stored in the clear before the server had a key is sealed now.
                if right && !secrets::is_sealed(&u.totp_secret) {
                    let sealed = app.seal_code_secret(&u.username, &secret)?;
                    if sealed != u.totp_secret {
                        let mut sealed_user = u.clone();
                        sealed_user.totp_secret = sealed;
                        s.put_user(&sealed_user)?;
                    }
                }
                Ok(right)
            };
            let right = match &user {
                Some(u) if ok && !u.disabled => code_ok(s, u)?,
                _ => false,
            };
            match user {
                Some(mut u) if ok && !u.disabled && !right => {
                    entry.detail = "security code not right".into();
                    // Whoever keeps giving the right password with wrong codes knows the
                    // password: after too many, it stops working until an administrator
                    // resets it.
                    let n = crest_store::users::record_wrong_code(s, &u.username)?;
                    if n >= crest_store::users::MAX_WRONG_CODES {
                        u.password_hash.clear();
                        s.put_user(&u)?;
                        s.drop_user_sessions(&u.username)?;
                        s.revoke_user_tokens(&u.username, &crest_store::utc_now())?;
                        entry.detail = format!(
                            "security code not right, {n} times in a row: the password no longer works until an administrator resets it"
                        );
                    }
                    s.log(&entry)?;
                    Ok(None)
                }
                Some(u) if ok && !u.disabled => {
                    let token = auth::token();
                    let now = now_secs();
                    s.put_session(&Session {
                        token_hash: auth::token_hash(&token),
                        username: u.username.clone(),
                        csrf: auth::token(),
                        created: now,
                        seen: now,
                    })?;
                    entry.role = u.role.code().into();
                    entry.outcome = "ok".into();
                    s.log(&entry)?;
                    let wrong = crest_store::users::take_wrong_codes(s, &u.username)?;
                    Ok(Some((token, wrong)))
                }
                _ => {
                    s.log(&entry)?;
                    Ok(None)
                }
            }
        })
        .await;
    let outcome = match outcome {
        Ok(o) => {
            finish_attempt(&app, attempt, o.is_some()).await;
            o
        }
        Err(e) => {
            finish_attempt(&app, attempt, false).await;
            return Err(e);
        }
    };
    let Some((token, wrong_codes)) = outcome else {
        let t = auth::token();
        let mut r = html_page(login_form(
            &t,
            "The user name, password or security code is not right, or the account is disabled.",
            &name,
            "",
        ));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        if let Ok(v) = HeaderValue::from_str(&set_cookie(&app, LOGIN_COOKIE, &t, 3600).1) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        return Ok(r);
    };
    // A new token at every login: a session id planted before login is worthless. Someone
    // who typed the password with wrong security codes meanwhile is told, where they can
    // change it.
    let to = if wrong_codes > 0 {
        format!("/account/password?wrong_codes={wrong_codes}")
    } else {
        "/".to_string()
    };
    let mut r = Redirect::to(&to).into_response();
    for (k, v) in [
        set_cookie(&app, SESSION_COOKIE, &token, auth::ABSOLUTE_TIMEOUT),
        set_cookie(&app, LOGIN_COOKIE, "", 0),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    Ok(r)
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let c = ctx_any(&app, &headers).await?;
    c.check_csrf(f.csrf.as_deref())?;
    let hash = c.session.token_hash.clone();
    app.db(move |s, _| Ok(s.drop_session(&hash)?)).await?;
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&app, SESSION_COOKIE, "", 0).1) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

fn download(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}

/// A chart downloaded as `svg` or `png` (anything else is 404), named `name.svg|png`, with its
/// title, axes and legend; `empty` says why when there is nothing to draw.
pub(crate) fn chart_download(
    chart: &maud::Markup,
    format: &str,
    name: &str,
    empty: &str,
) -> Result<Response, WebError> {
    let nothing = |_| WebError::BadRequest(empty.to_string());
    match format {
        "svg" => Ok(download(
            crest_report::charts::svg_file(chart)
                .map_err(nothing)?
                .into_bytes(),
            "image/svg+xml",
            &format!("{name}.svg"),
        )),
        "png" => Ok(download(
            crest_report::charts::svg_png(chart).map_err(nothing)?,
            "image/png",
            &format!("{name}.png"),
        )),
        _ => Err(WebError::NotFound),
    }
}

/// A table downloaded as `csv` or `xlsx` (anything else is 404), named `name.csv|xlsx`.
pub(crate) fn table_download(
    name: &str,
    format: &str,
    columns: &[String],
    rows: &[Vec<String>],
) -> Result<Response, WebError> {
    match format {
        "csv" => Ok(download(
            crest_ingest::export::table_csv(columns, rows).map_err(WebError::internal)?,
            "text/csv; charset=utf-8",
            &format!("{name}.csv"),
        )),
        "xlsx" => Ok(download(
            // A sheet name has at most 31 characters: the table's name without its period.
            crest_ingest::export::table_xlsx(
                &name
                    .split('-')
                    .next()
                    .unwrap_or("table")
                    .chars()
                    .take(31)
                    .collect::<String>(),
                columns,
                rows,
            )
            .map_err(WebError::internal)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &format!("{name}.xlsx"),
        )),
        _ => Err(WebError::NotFound),
    }
}

async fn template_csv(_signed_in: SignedIn) -> Result<Response, WebError> {
    let bytes = crest_ingest::template::csv_template().map_err(WebError::internal)?;
    Ok(download(
        bytes,
        "text/csv; charset=utf-8",
        "crest-template.csv",
    ))
}

async fn template_xlsx(_signed_in: SignedIn) -> Result<Response, WebError> {
    let bytes = crest_ingest::template::xlsx_template().map_err(WebError::internal)?;
    Ok(download(
        bytes,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "crest-template.xlsx",
    ))
}

/// Programme code from the URL, and the programmes list, for scoped handlers.
pub(crate) async fn scoped_of(
    app: &Arc<App>,
    parts: &axum::http::request::Parts,
    code: &str,
) -> Result<(Ctx, Programme), WebError> {
    let (cred, check) = request_credentials(parts)?;
    let code = code.to_string();
    // One trip to the store for the session and the programme.
    let (c, p) = app
        .db(move |s, _| {
            let c = cred.user(s)?;
            let all = s.programmes()?;
            let p = c.programme(&code, &all)?.clone();
            Ok((c, p))
        })
        .await?;
    check.check(&c)?;
    Ok((c, p))
}

/// A reporting period typed into a page's `from`/`to` fields: either may be empty (the last
/// complete financial year's end fills it); a bad date or a reversed period is a clear 400.
pub(crate) fn requested_period(
    app: &App,
    from: &str,
    to: &str,
) -> Result<crest_core::Period, WebError> {
    let default = crest_core::Period::last_financial_year((app.today)());
    let parse = |s: &str, d: Date| {
        if s.trim().is_empty() {
            Ok(d)
        } else {
            Date::parse(s.trim())
                .map_err(|e| WebError::BadRequest(format!("That period is not usable: {e}")))
        }
    };
    let period = crest_core::Period {
        from: parse(from, default.from)?,
        to: parse(to, default.to)?,
    };
    if period.to < period.from {
        return Err(WebError::BadRequest(
            "The end of the period is before its start.".into(),
        ));
    }
    Ok(period)
}

/// The path parameter type of programme pages.
pub(crate) type Code = UrlPath<String>;

#[cfg(test)]
mod send_to_tests {
    use super::*;

    #[test]
    fn only_https_or_this_machine() {
        let dir = crest_store::testing::scratch_dir("send-to");
        let db = format!("sqlite:{}", dir.join("s.sqlite").display());
        let mut s = crest_store::open(&db).unwrap();
        s.migrate().unwrap();
        for url in [
            "http://localhost.example.org",
            "http://127.0.0.1.example.org/",
            "ftp://127.0.0.1",
            "http://audit.example.org",
            "http://localhost:x@127.0.0.2:8327",
            "http://[::1]@127.0.0.2:8327",
            "https://user:pass@audit.example.org",
            "not an address",
        ] {
            let app = App::new(&db, dir.join("uploads"), || {
                crest_core::Date::from_ymd(2025, 6, 1).unwrap()
            })
            .unwrap();
            assert!(app.set_send_to(url, "t").is_err(), "{url}");
        }
        for url in [
            "https://audit.example.org",
            "http://localhost:8080",
            "http://127.0.0.1:9/",
            "http://[::1]:80",
        ] {
            let app = App::new(&db, dir.join("uploads"), || {
                crest_core::Date::from_ymd(2025, 6, 1).unwrap()
            })
            .unwrap();
            assert!(app.set_send_to(url, "t").is_ok(), "{url}");
        }
    }
}
