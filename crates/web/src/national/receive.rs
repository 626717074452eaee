//! The national side of the app, for national analysts, over the separate national store
//! (`crest serve --national-db URL`): the submissions held, patients seen by several
//! programmes, and receiving a submission file. Also the API endpoint through which a
//! programme's system pushes a submission with its API token (stored hashed). Every receipt,
//! refused or not, goes to the national store's access log, through the same
//! `crest_privacy::submission::receive_logged` as `crest submission receive`.

use crate::app::access::Analyst;
use crate::app::table::{Cell, Column, Table, View};
use crate::app::{html_page, App, WebError};
use crate::html::page;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use crest_store::{NationalStore, Received};
use maud::{html, Markup};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national", get(overview))
        .route("/national/submissions.{format}", get(submissions_download))
        .route("/national/duplicates.{format}", get(duplicates_download))
        .route(
            "/national/receive",
            post(receive_upload).layer(DefaultBodyLimit::max(crate::app::SUBMISSION_LIMIT)),
        )
}

impl App {
    /// Runs `f` with a (pooled) national-store connection on a plain thread; 404 when this
    /// server has none.
    pub(crate) async fn national<T, F>(self: &Arc<Self>, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut NationalStore) -> Result<T, WebError> + Send + 'static,
    {
        let url = self.national_db.get().cloned().ok_or(WebError::NotFound)?;
        let app = self.clone();
        let (send, receive) = tokio::sync::oneshot::channel();
        self.workers.run(Box::new(move || {
            let out = match app.national_pool.take(|| NationalStore::open(&url)) {
                Ok(mut n) => {
                    let out = f(&mut n);
                    app.national_pool.give_back(n);
                    out
                }
                Err(e) => Err(WebError::from(e)),
            };
            let _ = send.send(out);
        }));
        receive
            .await
            .map_err(|e| WebError::Internal(e.to_string()))?
    }

    /// A national page's body for `key`, built by `build` only when it is not kept for the
    /// national data's present version (a receipt changes the version, so nothing is stale).
    pub(crate) fn national_page(
        &self,
        n: &mut NationalStore,
        key: String,
        build: impl FnOnce(&mut NationalStore) -> Result<Markup, WebError>,
    ) -> Result<Arc<Markup>, WebError> {
        let version = n.data_version()?;
        self.national_pages.get_or_build(key, &version, || build(n))
    }

    pub(crate) fn receipt_keys(
        &self,
    ) -> Result<(crest_privacy::Key, crest_privacy::Key), NoReceiptKeys> {
        match (self.submission_key.get(), self.national_key.get()) {
            (Some(s), Some(n)) => Ok((s.clone(), n.clone())),
            _ => Err(NoReceiptKeys),
        }
    }
}

/// A server without the keys that receiving needs.
#[derive(Debug, thiserror::Error)]
#[error("this server holds no submission and national keys, so it cannot receive submissions yet; ask the administrator to give it both")]
pub(crate) struct NoReceiptKeys;

/// The first characters of a key or hash: enough to tell them apart on screen.
fn prefix(s: &str, n: usize) -> &str {
    s.get(..n).unwrap_or(s)
}

/// The submissions held, newest first: one model for the page and its downloads.
fn submissions_table(subs: &[crest_store::national::HeldSubmission]) -> Table {
    Table {
        caption: format!("{} submission(s), newest first", subs.len()),
        rows_are: "submission(s)".into(),
        columns: vec![
            Column::words("Programme", "programme_code"),
            Column::words("Period", "period_from"),
            Column::file_only("period_to"),
            Column::numbers("Episodes", "episodes"),
            Column::words("Key id", "key_id"),
            Column::words("Current", "current"),
            Column::words("SHA-256", "sha256"),
        ],
        rows: subs
            .iter()
            .map(|s| {
                vec![
                    Cell::text(s.programme.clone()),
                    Cell::coded(
                        format!(
                            "{} to {}",
                            crest_core::date::long_iso(&s.from),
                            crest_core::date::long_iso(&s.to)
                        ),
                        s.from.clone(),
                    ),
                    Cell::text(s.to.clone()),
                    Cell::count(s.episodes.max(0) as u64),
                    Cell::text(s.key_id.clone()),
                    Cell::text(if s.current { "yes" } else { "replaced" }),
                    Cell::coded(format!("{}…", prefix(&s.sha256, 16)), s.sha256.clone()),
                ]
            })
            .collect(),
        downloads: Some([
            "/national/submissions.csv".into(),
            "/national/submissions.xlsx".into(),
        ]),
        empty: "No submission has been received yet. Receive a programme's submission file above, or ask programmes to send theirs.".into(),
    }
}

/// Patients seen by several programmes: the patient key shortened alike on the page and in
/// files (a key whole is a linkage handle nobody needs to read).
fn duplicates_table(dups: &[crest_store::national::CrossProgrammeDuplicate]) -> Table {
    Table {
        caption: "Same patient key and event date in several programmes".into(),
        rows_are: "event(s)".into(),
        columns: vec![
            Column::words("Patient key", "patient_key"),
            Column::words("Event date", "event_date"),
            Column::words("Programmes", "programmes"),
        ],
        rows: dups
            .iter()
            .map(|d| {
                vec![
                    Cell::text(format!("{}…", prefix(&d.patient_key, 12))),
                    Cell::coded(
                        crest_core::date::long_iso(&d.event_date),
                        d.event_date.clone(),
                    ),
                    Cell::coded(d.programmes.join(", "), d.programmes.join(" ")),
                ]
            })
            .collect(),
        downloads: Some([
            "/national/duplicates.csv".into(),
            "/national/duplicates.xlsx".into(),
        ]),
        empty: "No initiating event appears in more than one programme.".into(),
    }
}

fn overview_body(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    n: &mut NationalStore,
    message: Option<Markup>,
    query: &HashMap<String, String>,
) -> Result<maud::Markup, WebError> {
    let subs = submissions_table(&n.submissions()?);
    // The duplicate report scans the whole national store: kept until the next receipt.
    let view = View::of("duplicates", "/national", query);
    let key = crate::app::cache::cache_key("duplicates", "national", None, &view.key());
    let dups_html = app.national_page(n, key, |n| {
        let dups = duplicates_table(&n.cross_programme_duplicates(None)?);
        Ok(html! {
            h2 { "Patients seen by more than one programme" }
            p {
                (dups.rows.len()) " initiating event(s) appear in more than one programme; \
                 each is counted once nationally."
            }
            (dups.render(&view))
        })
    })?;
    Ok(html! {
        @if let Some(m) = message { (m) }
        p { a href="/national/dashboard" { "Programme KPIs, grades and funnel plots" } }
        h2 { "Receive a submission" }
        form method="post" action="/national/receive" enctype="multipart/form-data" {
            (crate::html::csrf_field(&c.session.csrf))
            label for="file" { "Submission file" }
            input id="file" type="file" name="file" required;
            p { button { "Check and store" } }
        }
        h2 { "Submissions held" }
        (subs.render(&View::of("submissions", "/national", query)))
        (dups_html)
    })
}

async fn overview(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let nav = c.nav(None);
    let a = app.clone();
    let body = app
        .national(move |n| overview_body(&a, &c, n, None, &q))
        .await?;
    Ok(html_page(page("National audit: submissions", nav, body)))
}

/// The submissions held, every row, as CSV or XLSX.
async fn submissions_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Path(format): Path<String>,
) -> Result<Response, WebError> {
    app.national(move |n| Ok(submissions_table(&n.submissions()?)))
        .await?
        .download("submissions", &format)
}

/// The patients seen by several programmes, every row, as CSV or XLSX.
async fn duplicates_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Path(format): Path<String>,
) -> Result<Response, WebError> {
    app.national(move |n| Ok(duplicates_table(&n.cross_programme_duplicates(None)?)))
        .await?
        .download("duplicates", &format)
}

async fn receive_upload(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    // Large bodies are read a few at a time, whoever sends them, and written to a private
    // scratch file as they arrive: memory does not grow with the file.
    let _permit = app
        .large_bodies
        .acquire()
        .await
        .map_err(|_| WebError::Internal("the server is shutting down".into()))?;
    let file = crate::app::uploads::ScratchFile::new(&app, "receipt");
    let (csrf, name, size) = crate::programme::upload::receive_upload_file(
        &mut multipart,
        &file.0,
        crate::app::SUBMISSION_LIMIT,
    )
    .await?;
    c.check_csrf(csrf.as_deref())?;
    if size == 0 {
        return Err(WebError::BadRequest("Choose a submission file.".into()));
    }
    let keys = app.receipt_keys();
    let nav = c.nav(None);
    let a = app.clone();
    let receipts = app.metrics.receipts.clone();
    let (status, body) = app
        .national(move |n| {
            let outcome = match keys {
                Err(m) => Err(m.to_string()),
                Ok((sk, nk)) => crest_privacy::submission::receive_file_logged(
                    n,
                    &file.0,
                    (&sk, &nk),
                    (&c.user.username, c.user.role.code()),
                    &name,
                )
                .map_err(|e| e.to_string()),
            };
            let (status, message) = match outcome {
                Ok(Received::Stored { episodes, replaced, deleted }) => (
                    {
                        receipts.inc();
                        StatusCode::OK
                    },
                    html! {
                        div class="ok" role="status" {
                            (name) ": stored " (episodes) " episode(s); replaced " (replaced)
                            "; " (deleted) " deleted by tombstones."
                        }
                    },
                ),
                Ok(Received::AlreadyReceived) => (
                    StatusCode::OK,
                    html! { div class="ok" role="status" { (name) ": already received; nothing changed." } },
                ),
                Err(m) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    html! {
                        div class="summary" role="alert" tabindex="-1" autofocus {
                            h2 { "Refused; nothing was stored" }
                            @let mut lines = m.lines();
                            p { (lines.next().unwrap_or_default()) }
                            @let rest: Vec<&str> = lines.collect();
                            @if !rest.is_empty() { ul { @for l in rest { li { (l) } } } }
                        }
                    },
                ),
            };
            Ok((status, overview_body(&a, &c, n, Some(message), &HashMap::new())?))
        })
        .await?;
    let mut r = html_page(page("National audit: submissions", nav, body));
    *r.status_mut() = status;
    Ok(r)
}
