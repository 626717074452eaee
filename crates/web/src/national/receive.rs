//! The national side of the app, for national analysts, over the separate national store
//! (`crest serve --national-db URL`): the submissions held, patients seen by several
//! programmes, and receiving a submission file. Also the API endpoint through which a
//! programme's system pushes a submission with its API token (stored hashed). Every receipt,
//! refused or not, goes to the national store's access log, through the same
//! `crest_privacy::submission::receive_logged` as `crest submission receive`.

use crate::app::access::Analyst;
use crate::app::{html_page, App, WebError};
use crate::html::page;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use crest_store::{NationalStore, Received};
use maud::{html, Markup};
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

/// Rows of a table shown a page at a time on the overview.
const PER_PAGE: usize = 50;

/// The submissions held as a table (columns, rows), newest first.
fn submissions_table(
    subs: &[crest_store::national::HeldSubmission],
) -> (Vec<String>, Vec<Vec<String>>) {
    let columns = [
        "programme_code",
        "period_from",
        "period_to",
        "episodes",
        "key_id",
        "current",
        "sha256",
    ]
    .map(String::from)
    .to_vec();
    let rows = subs
        .iter()
        .map(|s| {
            vec![
                s.programme.clone(),
                s.from.clone(),
                s.to.clone(),
                s.episodes.to_string(),
                s.key_id.clone(),
                if s.current { "yes" } else { "replaced" }.to_string(),
                s.sha256.clone(),
            ]
        })
        .collect();
    (columns, rows)
}

/// Patients seen by several programmes as a table (columns, rows): the patient key shortened
/// as on the page.
fn duplicates_table(
    dups: &[crest_store::national::CrossProgrammeDuplicate],
) -> (Vec<String>, Vec<Vec<String>>) {
    let columns = ["patient_key", "event_date", "programmes"]
        .map(String::from)
        .to_vec();
    let rows = dups
        .iter()
        .map(|d| {
            vec![
                format!("{}…", prefix(&d.patient_key, 12)),
                d.event_date.clone(),
                d.programmes.join(" "),
            ]
        })
        .collect();
    (columns, rows)
}

/// The page numbered `page` (from 1, clamped to those there are): (that page's number, its
/// rows, how many pages there are).
fn page_of<T>(rows: &[T], page: usize) -> (usize, &[T], usize) {
    let pages = rows.len().div_ceil(PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let from = (page - 1) * PER_PAGE;
    (
        page,
        &rows[from.min(rows.len())..(from + PER_PAGE).min(rows.len())],
        pages,
    )
}

/// "Showing 1 to 50 of 120", the previous and next pages, and the table's downloads.
fn pager(
    what: &str,
    total: usize,
    page: usize,
    pages: usize,
    param: &str,
    other: &str,
    file: &str,
) -> Markup {
    let first = (page - 1) * PER_PAGE + 1;
    let last = (page * PER_PAGE).min(total);
    html! {
        p class="pages" {
            @if total > 0 { "Showing " (first) " to " (last) " of " (total) " " (what) ". " }
            @if page > 1 { a href={ "/national?" (param) "=" (page - 1) (other) } { "Previous page" } " " }
            @if page < pages { a href={ "/national?" (param) "=" (page + 1) (other) } { "Next page" } " " }
            "Download every row: "
            a href={ "/national/" (file) ".csv" } { "CSV" } " · "
            a href={ "/national/" (file) ".xlsx" } { "XLSX" }
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct OverviewQuery {
    /// The page of submissions.
    #[serde(default)]
    page: Option<String>,
    /// The page of patients seen by several programmes.
    #[serde(default)]
    dpage: Option<String>,
}

fn number(s: &Option<String>) -> usize {
    s.as_deref()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1)
}

fn overview_body(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    n: &mut NationalStore,
    message: Option<Markup>,
    q: &OverviewQuery,
) -> Result<maud::Markup, WebError> {
    let subs = n.submissions()?;
    let (page, shown, pages) = page_of(&subs, number(&q.page));
    let dpage = number(&q.dpage);
    // The duplicate report scans the whole national store: kept until the next receipt.
    let version = n.data_version()?;
    let key = format!("duplicates|{dpage}|{page}");
    let dups_html = match app.national_pages.get(&key, &version) {
        Some(cached) => cached,
        None => {
            let dups = n.cross_programme_duplicates(None)?;
            let (dpage, dshown, dpages) = page_of(&dups, dpage);
            let h = html! {
                h2 id="duplicates" { "Patients seen by more than one programme" }
                p {
                    (dups.len()) " initiating event(s) appear in more than one programme; \
                     each is counted once nationally."
                }
                @if !dups.is_empty() {
                    table tabindex="0" {
                        caption { "Same patient key and event date in several programmes" }
                        thead { tr {
                            th scope="col" { "Patient key" } th scope="col" { "Event date" }
                            th scope="col" { "Programmes" }
                        } }
                        tbody {
                            @for d in dshown {
                                tr {
                                    td { code { (prefix(&d.patient_key, 12)) "…" } }
                                    td { (crest_core::date::long_iso(&d.event_date)) }
                                    td { (d.programmes.join(", ")) }
                                }
                            }
                        }
                    }
                    (pager("event(s)", dups.len(), dpage, dpages, "dpage", &format!("&page={page}#duplicates"), "duplicates"))
                }
            };
            let h = std::sync::Arc::new(h);
            app.national_pages.put(key, version, h.clone());
            h
        }
    };
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
        h2 id="submissions" { "Submissions held" }
        @if subs.is_empty() {
            p { "No submission has been received yet. Receive a programme's submission file above, or ask programmes to send theirs." }
        } @else {
            table tabindex="0" {
                caption { (subs.len()) " submission(s), newest first" }
                thead { tr {
                    th scope="col" { "Programme" } th scope="col" { "Period" }
                    th scope="col" { "Episodes" } th scope="col" { "Key id" }
                    th scope="col" { "Current" } th scope="col" { "SHA-256" }
                } }
                tbody {
                    @for s in shown {
                        tr {
                            th scope="row" { (s.programme) }
                            td { (crest_core::date::long_iso(&s.from)) " to " (crest_core::date::long_iso(&s.to)) }
                            td class="num" { (crate::html::thousands(s.episodes.max(0) as u64)) }
                            td { (s.key_id) }
                            td { @if s.current { "yes" } @else { "replaced" } }
                            td { code { (prefix(&s.sha256, 16)) "…" } }
                        }
                    }
                }
            }
            (pager("submission(s)", subs.len(), page, pages, "page", &format!("&dpage={dpage}#submissions"), "submissions"))
        }
        (dups_html)
    })
}

async fn overview(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<OverviewQuery>,
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
    let (columns, rows) = app
        .national(move |n| Ok(submissions_table(&n.submissions()?)))
        .await?;
    crate::app::table_download("submissions", &format, &columns, &rows)
}

/// The patients seen by several programmes, every row, as CSV or XLSX.
async fn duplicates_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Path(format): Path<String>,
) -> Result<Response, WebError> {
    let (columns, rows) = app
        .national(move |n| Ok(duplicates_table(&n.cross_programme_duplicates(None)?)))
        .await?;
    crate::app::table_download("duplicates", &format, &columns, &rows)
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
                    StatusCode::OK,
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
            Ok((status, overview_body(&a, &c, n, Some(message), &OverviewQuery::default())?))
        })
        .await?;
    let mut r = html_page(page("National audit: submissions", nav, body));
    *r.status_mut() = status;
    Ok(r)
}
