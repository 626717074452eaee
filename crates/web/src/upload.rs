//! Uploading a file of episodes: a preview of what would be stored and every rejected row,
//! then store or cancel (the file is private and never left behind).

use crate::access::Staff;
use crate::html::{self, esc, page};
use crate::{html_page, App, Code, WebError};
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::handler::Handler;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/p/{code}/upload",
            get(upload_form)
                .post(upload.layer(axum::extract::DefaultBodyLimit::max(crate::UPLOAD_LIMIT))),
        )
        .route("/p/{code}/upload/confirm", post(confirm))
        .route("/p/{code}/upload/cancel", post(cancel))
        .route("/p/{code}/upload/{token}/errors.csv", get(upload_errors))
}

pub(crate) async fn upload_form(
    State(_app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
) -> Result<Response, WebError> {
    let body = format!(
        "<p>Upload a CSV or XLSX file of episodes for {}. You will see what would be stored, and every rejected row, before anything changes.</p>\
         <form method=\"post\" enctype=\"multipart/form-data\">{}<label for=\"file\">File</label><input id=\"file\" type=\"file\" name=\"file\" accept=\".csv,.xlsx\" required>\
         <p><button>Check file</button></p></form><p>Templates: <a href=\"/template.csv\">CSV</a> · <a href=\"/template.xlsx\">XLSX</a></p>",
        esc(&p.name),
        html::csrf_field(&c.session.csrf)
    );
    Ok(html_page(page(
        "Upload episodes",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

/// Reads an upload form: the CSRF field, and the file written to `path` (mode 0600) chunk by
/// chunk. Returns the CSRF value, the file's name and its size.
pub(crate) async fn receive_upload_file(
    multipart: &mut Multipart,
    path: &std::path::Path,
) -> Result<(Option<String>, String, u64), WebError> {
    use std::io::Write;
    let bad = |e| crate::form_error(e, crate::UPLOAD_LIMIT);
    let (mut csrf, mut name, mut size) = (None, String::new(), 0u64);
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok(),
            Some("file") => {
                name = field.file_name().unwrap_or("upload").to_string();
                let mut file = std::io::BufWriter::new(
                    crate::uploads::create_private(path).map_err(WebError::internal)?,
                );
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    size += chunk.len() as u64;
                    file.write_all(&chunk).map_err(WebError::internal)?;
                }
                file.flush().map_err(WebError::internal)?;
            }
            _ => {}
        }
    }
    Ok((csrf, name, size))
}

pub(crate) fn upload_path(app: &App, programme: &str, token: &str) -> Option<std::path::PathBuf> {
    // Tokens are our own hex; anything else is refused before it touches a path.
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| app.uploads.join(format!("{programme}-{token}")))
}

pub(crate) async fn upload(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    crate::uploads::sweep(&app.uploads, crate::uploads::MAX_AGE);
    let token = crate::auth::token();
    let path = upload_path(&app, &p.code, &token).ok_or(WebError::NotFound)?;
    // The file is streamed to a private file as it arrives, never held whole in memory.
    let received = receive_upload_file(&mut multipart, &path).await;
    let (csrf, name, size) = match received {
        Ok(r) => r,
        Err(e) => {
            crate::uploads::discard(&path);
            return Err(e);
        }
    };
    if let Err(e) = c.check_csrf(csrf.as_deref()) {
        crate::uploads::discard(&path);
        return Err(e);
    }
    if size == 0 {
        crate::uploads::discard(&path);
        return Err(WebError::BadRequest("Choose a file to upload.".into()));
    }
    let summary = match run_import(&app, &c, &p.code, &path, &name, true).await {
        Ok(s) => s,
        Err(e) => {
            // A refused file is not kept.
            crate::uploads::discard(&path);
            return Err(e);
        }
    };
    let mut body = preview(&summary, &name);
    if summary.rows > summary.rejected {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/p/{}/upload/confirm\">{}<input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <input type=\"hidden\" name=\"name\" value=\"{}\"><p><button>Store the {} valid row(s)</button></p></form>",
            esc(&p.code),
            html::csrf_field(&c.session.csrf),
            esc(&name),
            summary.rows - summary.rejected
        );
    }
    if summary.rejected > 0 {
        let _ = write!(
            body,
            "<p><a href=\"/p/{}/upload/{token}/errors.csv\">Download the rejected rows (CSV)</a></p>",
            esc(&p.code)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/p/{}/upload/cancel\">{}<input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <p><button class=\"secondary\">Cancel this upload</button></p></form>\
         <p class=\"hint\">The file is kept for an hour at most, until you store or cancel it.</p>",
        esc(&p.code),
        html::csrf_field(&c.session.csrf)
    );
    if summary.rows == summary.rejected {
        // Nothing to confirm: only the rejected-rows file is kept, for the hour.
        let _ = std::fs::remove_file(&path);
    }
    Ok(html_page(page(
        "Check upload",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

pub(crate) fn preview(s: &crest_ingest::ImportSummary, name: &str) -> String {
    let mut body = format!(
        "<p><strong>{}</strong>: {} row(s): {} new, {} changed, {} unchanged, <strong>{} rejected</strong>.</p>",
        esc(name),
        s.rows,
        s.imported,
        s.updated,
        s.unchanged,
        s.rejected
    );
    for w in &s.header_warnings {
        let _ = write!(body, "<p>Warning: {}</p>", esc(w));
    }
    if !s.errors.is_empty() {
        body.push_str("<table><caption>Rejected rows</caption><thead><tr><th scope=\"col\">Row</th><th scope=\"col\">Column</th><th scope=\"col\">Value</th><th scope=\"col\">Reason</th></tr></thead><tbody>");
        for e in &s.errors {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.row,
                esc(&e.issue.column),
                esc(&e.issue.value),
                esc(&e.issue.message)
            );
        }
        body.push_str("</tbody></table>");
    }
    if !s.warnings.is_empty() {
        let _ = write!(
            body,
            "<p>{} warning(s) (stored, but please check):</p><ul>",
            s.warning_count
        );
        for w in s.warnings.iter().take(50) {
            let _ = write!(
                body,
                "<li>row {}, {}: {}</li>",
                w.row,
                esc(&w.issue.column),
                esc(&w.issue.message)
            );
        }
        body.push_str("</ul>");
    }
    body
}

/// The command line's import, restricted to the programme of the page.
pub(crate) async fn run_import(
    app: &Arc<App>,
    c: &crate::Ctx,
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
        let errors_path = crate::uploads::errors_file(&path);
        let file = crate::uploads::create_private(&errors_path).map_err(WebError::internal)?;
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
    UrlPath(_code): Code,
    Form(f): Form<CancelForm>,
) -> Result<Response, WebError> {
    c.check_csrf(f.csrf.as_deref())?;
    let path = upload_path(&app, &p.code, &f.token).ok_or(WebError::NotFound)?;
    crate::uploads::discard(&path);
    let body = format!(
        "<div class=\"ok\" role=\"status\">Upload cancelled; nothing was stored and the file was removed.</div>\
         <p><a href=\"/p/{}/upload\">Upload another file</a></p>",
        esc(&p.code)
    );
    Ok(html_page(page(
        "Upload cancelled",
        &c.nav(Some(&p.code)),
        &body,
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
    UrlPath(_code): Code,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    c.check_csrf(f.csrf.as_deref())?;
    let path = upload_path(&app, &p.code, &f.token).ok_or(WebError::NotFound)?;
    if !crate::uploads::waiting(&path) {
        crate::uploads::discard(&path);
        return Err(WebError::BadRequest(
            "This upload is no longer waiting: uploads are kept for an hour until stored or cancelled. Upload the file again."
                .into(),
        ));
    }
    let summary = run_import(&app, &c, &p.code, &path, &f.name, false).await;
    crate::uploads::discard(&path);
    let summary = summary?;
    let body = format!(
        "<div class=\"ok\" role=\"status\">Stored: {} new, {} changed, {} unchanged; {} rejected row(s) were not stored.</div>\
         <p><a href=\"/p/{}/episodes\">See the patients</a></p>",
        summary.imported,
        summary.updated,
        summary.unchanged,
        summary.rejected,
        esc(&p.code)
    );
    Ok(html_page(page(
        "Upload stored",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

pub(crate) async fn upload_errors(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    UrlPath((_code, token)): UrlPath<(String, String)>,
) -> Result<Response, WebError> {
    let path = upload_path(&app, &p.code, &token).ok_or(WebError::NotFound)?;
    let errors = crate::uploads::errors_file(&path);
    if !crate::uploads::waiting(&errors) {
        crate::uploads::discard(&path);
        return Err(WebError::NotFound);
    }
    let bytes = std::fs::read(errors).map_err(|_| WebError::NotFound)?;
    Ok(crate::download(
        bytes,
        "text/csv; charset=utf-8",
        "rejected-rows.csv",
    ))
}
