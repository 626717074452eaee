//! Uploading a file of episodes: a preview of what would be stored and every rejected row,
//! then store or cancel (the file is private and never left behind).

use crate::app::access::{SignedIn, Staff};
use crate::app::download;
use crate::app::{html_page, App, WebError};
use crate::html::{self, page};
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/template.csv", get(template_csv))
        .route("/template.xlsx", get(template_xlsx))
        .route(
            "/p/{code}/upload",
            get(upload_form).post(upload.layer(axum::extract::DefaultBodyLimit::max(
                crate::app::UPLOAD_LIMIT,
            ))),
        )
        .route("/p/{code}/upload/confirm", post(confirm))
        .route("/p/{code}/upload/cancel", post(cancel))
        .route("/p/{code}/upload/{token}/rows-to-fix", get(rows_to_fix))
}

pub(crate) async fn upload_form(
    State(_app): State<Arc<App>>,
    Staff(c, p): Staff,
) -> Result<Response, WebError> {
    let body = maud::html! {
        p {
            "Upload a CSV or XLSX file of episodes for " (p.name) ", or FHIR from your \
             hospital's record system. You will see what would be stored, and every rejected \
             row, before anything changes."
        }
        form method="post" enctype="multipart/form-data" {
            (html::csrf_field(&c.session.csrf))
            label for="file" { "File" }
            div class="hint" id="file-hint" {
                "CSV or XLSX; or FHIR R4 JSON: a Bundle (.json), or the .ndjson files of a bulk \
                 export, chosen together."
            }
            input id="file" type="file" name="file" accept=".csv,.xlsx,.json,.ndjson"
                aria-describedby="file-hint" multiple required;
            p { button id="check-file" { "Check file" } }
        }
        p {
            "Templates: " a href="/template.csv" { "CSV" } " · " a href="/template.xlsx" { "XLSX" }
        }
    };
    Ok(html_page(page(
        "Upload episodes",
        c.nav(Some(&p.code)),
        body,
    )))
}

/// Reads an upload form: the CSRF field, and the file written to `path` (mode 0600) chunk by
/// chunk. Returns the CSRF value, the file's name and its size.
pub(crate) async fn receive_upload_file(
    multipart: &mut Multipart,
    path: &std::path::Path,
    limit: usize,
) -> Result<(Option<String>, String, u64), WebError> {
    use std::io::Write;
    let bad = |e| crate::app::form_error(e, limit);
    let (mut csrf, mut name, mut size) = (None, String::new(), 0u64);
    let mut file: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut files = 0usize;
    let ndjson = |n: &str| n.to_ascii_lowercase().ends_with(".ndjson");
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok(),
            Some("file") => {
                let this = field.file_name().unwrap_or("upload").to_string();
                files += 1;
                // The files of a FHIR bulk export (one per resource type) are read as one:
                // NDJSON files joined line after line are one NDJSON file.
                let out =
                    match file.as_mut() {
                        None => {
                            name = this;
                            file.insert(std::io::BufWriter::new(
                                crate::app::uploads::create_private(path)
                                    .map_err(WebError::internal)?,
                            ))
                        }
                        Some(out) if ndjson(&name) && ndjson(&this) => {
                            out.write_all(b"\n").map_err(WebError::internal)?;
                            out
                        }
                        Some(_) => return Err(WebError::BadRequest(
                            "Upload one CSV, XLSX or FHIR Bundle file at a time; several files \
                             can be chosen together only as the .ndjson files of a FHIR bulk \
                             export."
                                .into(),
                        )),
                    };
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    size += chunk.len() as u64;
                    out.write_all(&chunk).map_err(WebError::internal)?;
                }
            }
            _ => {}
        }
    }
    if let Some(mut out) = file {
        out.flush().map_err(WebError::internal)?;
    }
    if files > 1 {
        name = format!("{name} and {} more", files - 1);
    }
    Ok((csrf, name, size))
}

/// Reads an upload form's body exactly as the upload page does, writing its file to `save_to`:
/// the entry point of the fuzzer (`fuzz/`), which sends it any bytes. Returns the file's name
/// and size, or the refusal the page would show.
#[doc(hidden)]
pub async fn read_upload_form(
    boundary: &str,
    body: Vec<u8>,
    save_to: &std::path::Path,
) -> Result<(String, u64), WebError> {
    use axum::extract::FromRequest;
    let request = axum::http::Request::builder()
        .method("POST")
        .header(
            axum::http::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(axum::body::Body::from(body))
        .map_err(WebError::internal)?;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| WebError::BadRequest(e.body_text()))?;
    let (_csrf, name, size) =
        receive_upload_file(&mut multipart, save_to, crate::app::UPLOAD_LIMIT).await?;
    Ok((name, size))
}

/// A private scratch file for one request's work on an upload (removed before it answers).
fn scratch(app: &App, programme: &str) -> std::path::PathBuf {
    app.uploads
        .join(format!("{programme}-{}", crate::app::auth::token()))
}

/// Tokens are our own hex; anything else is refused before it reaches the store.
pub(crate) fn valid_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The name a submission waiting for confirmation is kept under (its period and opt-out list
/// follow), so an upload's routes never take it for a file of episodes, nor the other way.
pub(crate) const SUBMISSION_PREFIX: &str = "submission:";

/// The upload waiting under `token`, if it is under an hour old (an older one is removed).
async fn waiting(
    app: &Arc<App>,
    programme: &str,
    token: &str,
) -> Result<Option<crest_store::PendingUpload>, WebError> {
    waiting_for(app, programme, token, false).await
}

/// What waits under `token` for the programme: an upload, or (with `submission`) a submission
/// to confirm; under an hour old (an older one is removed).
pub(crate) async fn waiting_for(
    app: &Arc<App>,
    programme: &str,
    token: &str,
    submission: bool,
) -> Result<Option<crest_store::PendingUpload>, WebError> {
    if !valid_token(token) {
        return Ok(None);
    }
    let (programme, token) = (programme.to_string(), token.to_string());
    app.db(move |s, _| {
        let found = s
            .upload(&programme, &token)?
            .filter(|u| u.name.starts_with(SUBMISSION_PREFIX) == submission);
        match found {
            Some(u)
                if crate::app::now_secs() - u.created
                    < crate::app::uploads::MAX_AGE.as_secs() as i64 =>
            {
                Ok(Some(u))
            }
            Some(_) => {
                s.drop_upload(&programme, &token)?;
                Ok(None)
            }
            None => Ok(None),
        }
    })
    .await
}

pub(crate) async fn upload(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    sweep(&app).await;
    let token = crate::app::auth::token();
    let path = scratch(&app, &p.code);
    // The file is streamed to a private scratch file as it arrives, never held whole in
    // memory while it is read; the scratch files go before this request answers.
    let checked = check_upload(&app, &c, &p.code, &path, &mut multipart).await;
    crate::app::uploads::discard(&path);
    let (name, summary, file, errors) = checked?;
    let pending = crest_store::PendingUpload {
        token: token.clone(),
        programme: p.code.clone(),
        name: name.clone(),
        created: crate::app::now_secs(),
        // Nothing to store: only the rejected rows are kept, for the hour.
        file: if summary.rows > summary.rejected {
            file
        } else {
            Vec::new()
        },
        errors,
    };
    app.db(move |s, _| Ok(s.put_upload(&pending)?)).await?;
    let valid = summary.rows - summary.rejected;
    let code = &p.code;
    let unit = if summary.fhir { "episode" } else { "row" };
    let body = maud::html! {
        (preview(&summary, &name))
        @if valid > 0 {
            form method="post" action={ "/p/" (code) "/upload/confirm" } {
                (html::csrf_field(&c.session.csrf))
                input type="hidden" name="token" value=(token);
                input type="hidden" name="name" value=(name);
                p { button { "Store the " (valid) " valid " (unit) "(s)" } }
            }
        }
        @if summary.rejected > 0 {
            p {
                a href={ "/p/" (code) "/upload/" (token) "/rows-to-fix" } {
                    "Download the " (summary.rejected) " " (unit) "(s) to fix"
                }
                br;
                span class="hint" {
                    @if summary.fhir {
                        "The rejected episodes as a CSV file with crest's columns, as crest \
                         read them from the FHIR resources, with a last column saying what is \
                         wrong and which resource it came from. Correct them there and upload \
                         that file, or correct the hospital record and export it again."
                    } @else {
                        "The rejected rows as your file has them, every column, with a last \
                         column saying what is wrong. Correct them in that file and upload it \
                         again."
                    }
                }
            }
        }
        form method="post" action={ "/p/" (code) "/upload/cancel" } {
            (html::csrf_field(&c.session.csrf))
            input type="hidden" name="token" value=(token);
            p { button class="secondary" { "Cancel this upload" } }
        }
        p class="hint" { "The file is kept for an hour at most, until you store or cancel it." }
    };
    Ok(html_page(page("Check upload", c.nav(Some(&p.code)), body)))
}

/// Reads the upload form into the scratch file at `path` and checks it: the file's name,
/// what storing it would do, and the file and its rejected rows as bytes to keep.
async fn check_upload(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    programme: &str,
    path: &std::path::Path,
    multipart: &mut Multipart,
) -> Result<(String, crest_ingest::ImportSummary, Vec<u8>, Vec<u8>), WebError> {
    let (csrf, name, size) = receive_upload_file(multipart, path, crate::app::UPLOAD_LIMIT).await?;
    c.check_csrf(csrf.as_deref())?;
    if size == 0 {
        return Err(WebError::BadRequest("Choose a file to upload.".into()));
    }
    let summary = run_import(app, c, programme, path, &name, true).await?;
    // A refused over-long cell is kept cut short, never whole, for the hour the upload waits.
    crest_ingest::read::clip_overlong_cells(path).map_err(WebError::internal)?;
    let file = std::fs::read(path).map_err(WebError::internal)?;
    let errors =
        std::fs::read(crate::app::uploads::errors_file(path)).map_err(WebError::internal)?;
    // What is kept for "download the rows to fix": the rejected rows in the file's own format.
    let fix = if summary.rejected > 0 {
        crest_ingest::fix::rows_to_fix(path, &errors, Some(programme))
            .map_err(WebError::internal)?
            .bytes
    } else {
        Vec::new()
    };
    Ok((name, summary, file, fix))
}

/// Removes uploads over an hour old and idle sign-in records (any server may do it).
async fn sweep(app: &Arc<App>) {
    let _ = app
        .db(|s, _| {
            let now = crate::app::now_secs();
            s.sweep(
                now - crate::app::uploads::MAX_AGE.as_secs() as i64,
                crate::app::auth::now_ms() - crate::app::auth::WINDOW_MS,
            )?;
            Ok(())
        })
        .await;
}

pub(crate) fn preview(s: &crest_ingest::ImportSummary, name: &str) -> maud::Markup {
    // A FHIR file's rows are the episodes crest assembled from its resources, in order.
    let (unit, heading) = if s.fhir {
        ("episode", "Episode")
    } else {
        ("row", "Row")
    };
    maud::html! {
        p {
            strong { (name) } ": " (s.rows) " " (unit) "(s): " (s.imported) " new, " (s.updated)
            " changed, " (s.unchanged) " unchanged, " strong { (s.rejected) " rejected" } "."
        }
        @for w in &s.header_warnings {
            p { "Warning: " (w) }
        }
        @if !s.errors.is_empty() {
            table tabindex="0" {
                caption { "Rejected " (unit) "s" }
                thead { tr {
                    th scope="col" { (heading) } th scope="col" { "Column" }
                    th scope="col" { "Value" } th scope="col" { "Reason" }
                } }
                tbody {
                    @for e in &s.errors {
                        tr {
                            td { (e.row) }
                            td { (column_named(&e.issue.column)) }
                            td { code { (e.issue.value) } }
                            td { (crate::programme::episode_form::reason(&e.issue.message)) }
                        }
                    }
                }
            }
        }
        @if !s.warnings.is_empty() {
            p { (s.warning_count) " warning(s) (stored, but please check):" }
            ul {
                // The first 50 show the pattern; the count above says how many there are in all.
                @for w in s.warnings.iter().take(50) {
                    li {
                        (heading) " " (w.row) ", " (column_named(&w.issue.column)) ": "
                        (crate::programme::episode_form::reason(&w.issue.message))
                    }
                }
            }
        }
    }
}

/// A column of the file as a page names it: its label, then the heading the file uses.
/// A FHIR import names the resource and element first, then the field: `Observation/o1
/// valueQuantity (a1_weight_kg)`.
fn column_named(column: &str) -> maud::Markup {
    let field = |name: &str| crest_core::FIELDS.iter().find(|f| f.name == name);
    if let Some(f) = field(column) {
        return maud::html! { (f.label) " (" code { (column) } ")" };
    }
    let fhir = column
        .strip_suffix(')')
        .and_then(|c| c.rsplit_once(" ("))
        .and_then(|(origin, name)| Some((origin, field(name)?)));
    match fhir {
        Some((origin, f)) => maud::html! {
            (f.label) " (" code { (f.name) } "), from " code { (origin) }
        },
        None => maud::html! { code { (column) } },
    }
}

/// The command line's import, restricted to the programme of the page.
pub(crate) async fn run_import(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    programme: &str,
    path: &std::path::Path,
    name: &str,
    dry_run: bool,
) -> Result<crest_ingest::ImportSummary, WebError> {
    let mut entry = c.entry(
        programme,
        if dry_run { "check upload" } else { "import" },
        name,
    );
    let (path, programme) = (path.to_path_buf(), programme.to_string());
    app.db(move |s, app| {
        let mut opts = crest_ingest::ImportOptions::new((app.today)());
        opts.dry_run = dry_run;
        opts.skip_invalid = !dry_run;
        opts.only_programme = Some(programme);
        if !dry_run {
            opts.log = Some(entry.clone());
        }
        let errors_path = crate::app::uploads::errors_file(&path);
        let file = crate::app::uploads::create_private(&errors_path).map_err(WebError::internal)?;
        let mut w = csv::Writer::from_writer(Box::new(file) as Box<dyn std::io::Write>);
        let result = crest_ingest::import_file(s, &path, &opts, Some(&mut w), &mut |_| {});
        match result {
            Ok(sum) => {
                if !sum.committed {
                    // A check, or nothing to store: logged on its own.
                    entry.detail = sum.counts();
                    s.log(&entry)?;
                }
                Ok(sum)
            }
            Err(crest_ingest::ImportError::Store(e)) => Err(WebError::internal(e)),
            Err(e) => Err(WebError::BadRequest(format!(
                "The file was refused and nothing was stored: {e}"
            ))),
        }
    })
    .await
}

#[derive(serde::Deserialize)]
pub(crate) struct CancelForm {
    csrf: Option<String>,
    token: String,
}

/// Cancels an upload waiting for confirmation: the file and its rejected rows are removed.
pub(crate) async fn cancel(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Form(f): Form<CancelForm>,
) -> Result<Response, WebError> {
    c.check_csrf(f.csrf.as_deref())?;
    if valid_token(&f.token) {
        let (pc, token) = (p.code.clone(), f.token.clone());
        app.db(move |s, _| Ok(s.drop_upload(&pc, &token)?)).await?;
    }
    let body = maud::html! {
        div class="ok" role="status" {
            "Upload cancelled; nothing was stored and the file was removed."
        }
        p { a href={ "/p/" (p.code) "/upload" } { "Upload another file" } }
    };
    Ok(html_page(page(
        "Upload cancelled",
        c.nav(Some(&p.code)),
        body,
    )))
}

#[derive(serde::Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: Option<String>,
    token: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn confirm(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    c.check_csrf(f.csrf.as_deref())?;
    let Some(pending) = waiting(&app, &p.code, &f.token).await? else {
        return Err(WebError::BadRequest(
            "This upload is no longer waiting: uploads are kept for an hour until stored or cancelled, and a programme's ten newest only (more were uploaded since). Upload the file again."
                .into(),
        ));
    };
    if pending.file.is_empty() {
        return Err(WebError::BadRequest(
            "This upload has no rows to store. Fix the rejected rows and upload the file again."
                .into(),
        ));
    }
    let path = scratch(&app, &p.code);
    let summary = match crate::app::uploads::write_private(&path, &pending.file) {
        Ok(()) => run_import(&app, &c, &p.code, &path, &f.name, false).await,
        Err(e) => Err(WebError::internal(e)),
    };
    crate::app::uploads::discard(&path);
    let summary = summary?;
    app.metrics.imports.inc();
    let (pc, token) = (p.code.clone(), f.token.clone());
    app.db(move |s, _| Ok(s.drop_upload(&pc, &token)?)).await?;
    let body = maud::html! {
        div class="ok" role="status" {
            "Stored: " (summary.imported) " new, " (summary.updated) " changed, "
            (summary.unchanged) " unchanged; " (summary.rejected) " rejected row(s) were not stored."
        }
        p { a href={ "/p/" (p.code) "/episodes" } { "See the patients" } }
    };
    Ok(html_page(page("Upload stored", c.nav(Some(&p.code)), body)))
}

/// The rejected rows of an upload, as the file had them plus a problems column, in the
/// file's own format (a workbook comes back as a workbook).
pub(crate) async fn rows_to_fix(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    UrlPath((_, token)): UrlPath<(String, String)>,
) -> Result<Response, WebError> {
    let pending = waiting(&app, &p.code, &token)
        .await?
        .ok_or(WebError::NotFound)?;
    // A workbook is a zip archive; anything else was read as CSV.
    let xlsx = pending.errors.starts_with(b"PK");
    let stem = std::path::Path::new(&pending.name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("upload")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(60)
        .collect::<String>();
    let (mime, ext) = if xlsx {
        (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        )
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    Ok(crate::app::download(
        pending.errors,
        mime,
        &format!("{stem}-rows-to-fix.{ext}"),
    ))
}

pub(crate) async fn template_csv(_signed_in: SignedIn) -> Result<Response, WebError> {
    let bytes = crest_ingest::template::csv_template().map_err(WebError::internal)?;
    Ok(download(
        bytes,
        "text/csv; charset=utf-8",
        "crest-template.csv",
    ))
}

pub(crate) async fn template_xlsx(_signed_in: SignedIn) -> Result<Response, WebError> {
    let bytes = crest_ingest::template::xlsx_template().map_err(WebError::internal)?;
    Ok(download(
        bytes,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "crest-template.xlsx",
    ))
}

#[cfg(test)]
mod tests {
    use super::preview;
    use crest_core::validate::Issue;
    use crest_ingest::{ImportSummary, RowIssue};

    /// Everything in the preview comes from the uploaded file (its name, its cells), so all of
    /// it must reach the page as text, never as markup.
    #[test]
    fn preview_shows_hostile_file_text_as_text() {
        let hostile = "<script>alert(1)</script>\"'&";
        let issue = || RowIssue {
            row: 7,
            issue: Issue {
                column: hostile.into(),
                value: hostile.into(),
                message: hostile.into(),
            },
        };
        let s = ImportSummary {
            rows: 3,
            imported: 1,
            rejected: 1,
            errors: vec![issue()],
            error_count: 1,
            warnings: vec![issue()],
            warning_count: 1,
            header_warnings: vec![hostile.into()],
            ..Default::default()
        };
        let html = preview(&s, hostile).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"),
            "{html}"
        );
        assert!(html.contains("<strong>1 rejected</strong>"), "{html}");
        assert!(html.contains("<td>7</td>"), "{html}");
        assert!(html.contains("<li>Row 7, "), "{html}");
    }
}
