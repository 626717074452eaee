//! Research on the web: administrators record approved projects (title, approval reference,
//! approved fields, named researchers, validity, k); researchers see their projects and
//! download k-anonymous extracts as CSV or Parquet with the data dictionary. Extracts stream
//! from the national store as they are written, so a million rows neither wait in memory nor
//! time out; every download, and every refusal, is in the national access log.

use crate::app::access::{Admin, Researcher};
use crate::app::{html_page, App, Ctx, WebError};
use crate::html::{csrf_field, error_summary, page};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use crest_privacy::research::ExtractError;
use crest_privacy::research::{self, Format, Requester};
use crest_store::national::Project;
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/research", get(projects_page))
        .route("/research/{id}/{file}", get(download))
        .route("/admin/projects", get(admin_page).post(admin_add))
}

/// Bytes written on a worker thread and sent to the client as they come: a bounded channel,
/// so a slow client slows the writer instead of filling memory.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(http_body::Frame::data)))
    }
}

/// The writer end of a [`ChannelBody`].
pub(crate) struct ChannelWriter {
    send: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

const CHUNK: usize = 256 << 10;

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        self.send.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was cancelled")
        })
    }
}

/// A download whose bytes `work` writes on its own thread while the response is sent. A
/// failure part way ends the response early (the client sees a broken download, never a
/// truncated file that looks whole).
pub(crate) fn stream_download(
    content_type: &'static str,
    filename: &str,
    work: impl FnOnce(&mut ChannelWriter) -> Result<(), ExtractError> + Send + 'static,
) -> Response {
    let (send, receive) = tokio::sync::mpsc::channel(4);
    let fail = send.clone();
    std::thread::spawn(move || {
        let mut w = ChannelWriter {
            send,
            buffer: Vec::with_capacity(CHUNK),
        };
        let done = work(&mut w).and_then(|()| {
            use std::io::Write;
            Ok(w.flush()?)
        });
        if let Err(e) = done {
            tracing::error!(%e, "streamed download failed");
            let _ = fail.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let mut r = Body::new(ChannelBody(receive)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The projects this user may see: a researcher's own (named on them).
pub(crate) async fn my_projects(app: &Arc<App>, c: &Ctx) -> Result<Vec<Project>, WebError> {
    let me = c.user.username.clone();
    app.national(move |n| Ok(n.projects()?.into_iter().filter(|p| p.names(&me)).collect()))
        .await
}

/// Approved extract columns as people read them, each with the column name it has in the
/// extract file.
fn approved_fields(names: &[String]) -> Markup {
    let columns = research::extract_columns();
    html! {
        @for (i, name) in names.iter().enumerate() {
            @if i > 0 { ", " }
            @match columns.iter().find(|c| &c.name == name) {
                Some(c) => { (c.label) " " code { (name) } }
                None => code { (name) },
            }
        }
    }
}

fn project_summary(p: &Project, today: crest_core::Date) -> Markup {
    html! {
        dl class="facts" {
            dt { "Approval" } dd { (p.approval) }
            dt { "Valid" } dd {
                (p.valid_from.long()) " to " (p.valid_to.long())
                @if !p.valid_on(today) { " — " strong { "not valid today: extracts are refused" } }
            }
            dt { "k-anonymity" } dd { "every combination of age band, sex, ethnic group, deprivation quintile, nation, priority group and event month in the extract occurs at least " (p.k) " times" }
            dt { "Approved fields" } dd { (approved_fields(&p.fields)) }
            dt { "Researchers" } dd { (p.researchers.join(", ")) }
        }
    }
}

async fn projects_page(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
) -> Result<Response, WebError> {
    let projects = my_projects(&app, &c).await?;
    let today = (app.today)();
    let body = html! {
        @if projects.is_empty() {
            p { "You are not named on any research project yet. The national audit's administrators record approved projects and name their researchers." }
        }
        @for p in &projects {
            section aria-labelledby={ "p-" (p.id) } {
                h2 id={ "p-" (p.id) } { (p.title) " (" (p.id) ")" }
                (project_summary(p, today))
                @if p.valid_on(today) {
                    p {
                        a href={ "/research/" (p.id) "/extract.csv" } download { "Download the extract (CSV)" } " · "
                        a href={ "/research/" (p.id) "/extract.parquet" } download { "Download the extract (Parquet)" } " · "
                        a href={ "/research/" (p.id) "/dictionary.csv" } download { "Data dictionary (CSV)" }
                    }
                    p class="hint" {
                        "Patient keys are this project's own: they match no other project's. Ages come in 5-year bands, "
                        "dates as days since the initiating event. Records in groups smaller than k are left out; "
                        "every download is logged."
                    }
                }
            }
        }
        p { a href="/aggregates" { "Aggregates" } ": published counts, proportions, means and medians by up to three breakdowns." }
    };
    Ok(html_page(page("Your research projects", c.nav(None), body)))
}

async fn download(
    State(app): State<Arc<App>>,
    Researcher(c): Researcher,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let format = match file.as_str() {
        "extract.csv" => Some(Format::Csv),
        "extract.parquet" => Some(Format::Parquet),
        "dictionary.csv" => None,
        _ => return Err(WebError::NotFound),
    };
    extract_response(&app, &c, &id, format).await
}

/// A project's extract (streamed) or, with no format, its data dictionary; 404 for a project
/// the user is not named on, a clear refusal outside the approval (logged).
pub(crate) async fn extract_response(
    app: &Arc<App>,
    c: &Ctx,
    id: &str,
    format: Option<Format>,
) -> Result<Response, WebError> {
    let (me, role, today) = (
        c.user.username.clone(),
        c.user.role.code().to_string(),
        (app.today)(),
    );
    let pid = id.to_string();
    let project = app
        .national(move |n| {
            let who = Requester {
                username: &me,
                role: &role,
                for_researcher: None,
                today,
            };
            match research::allowed_project(n, &pid, &who) {
                Ok(p) => Ok(Ok(p)),
                Err(research::ExtractError::NoProject(_)) => Err(WebError::NotFound),
                Err(e) => {
                    n.log(&crest_store::AccessEntry {
                        at: crest_store::utc_now(),
                        username: me.clone(),
                        role: role.clone(),
                        programme: String::new(),
                        action: "research extract".into(),
                        target: pid.clone(),
                        outcome: "refused".into(),
                        detail: e.to_string(),
                    })?;
                    Ok(Err(crate::html::capitalised(&e.to_string())))
                }
            }
        })
        .await?
        .map_err(WebError::BadRequest)?;
    let Some(format) = format else {
        let bytes = research::dictionary_csv(&project).map_err(WebError::internal)?;
        return Ok(crate::app::download(
            bytes,
            "text/csv; charset=utf-8",
            &format!("{}-dictionary.csv", project.id),
        ));
    };
    let url = app.national_db.get().cloned().ok_or(WebError::NotFound)?;
    let (me, role) = (c.user.username.clone(), c.user.role.code().to_string());
    let filename = format!("{}-extract.{}", project.id, format.extension());
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Parquet => "application/vnd.apache.parquet",
    };
    Ok(stream_download(content_type, &filename, move |w| {
        let mut n = crest_store::NationalStore::open(&url)?;
        let who = Requester {
            username: &me,
            role: &role,
            for_researcher: None,
            today,
        };
        research::write_extract(&mut n, &project, format, w, &who, &mut |_| {}).map(|_| ())
    }))
}

use crate::app::forms::{one, Posted};

fn admin_body(
    c: &Ctx,
    projects: &[Project],
    errors: &[(String, String)],
    typed: &Posted,
    notice: Option<&str>,
    today: crest_core::Date,
) -> Markup {
    let field = |name: &str, label: &str, hint: &str| {
        let error = errors.iter().find(|e| e.0 == name).map(|e| e.1.clone());
        html! {
            div class={ "field" @if error.is_some() { " field-error" } } {
                label for={ "f-" (name) } { (label) }
                @if !hint.is_empty() { div class="hint" id={ "h-" (name) } { (hint) } }
                @if let Some(e) = &error { p class="err" { (e) } }
                input id={ "f-" (name) } name=(name) value=(one(typed, name))
                    aria-describedby=[(!hint.is_empty()).then(|| format!("h-{name}"))];
            }
        }
    };
    let columns = research::extract_columns();
    html! {
        (error_summary(errors))
        @if let Some(n) = notice { div class="ok" role="status" { p { (n) } } }
        @if projects.is_empty() {
            p { "No research projects yet." }
        }
        @for p in projects {
            section {
                h2 { (p.title) " (" (p.id) ")" }
                (project_summary(p, today))
            }
        }
        h2 { "Record a research project" }
        p class="hint" { "Recording a project with an existing id updates it; its patient keys stay the same." }
        form method="post" action="/admin/projects" novalidate {
            (csrf_field(&c.session.csrf))
            (field("id", "Project id", "Letters, digits, - and _; for example uptake-2026"))
            (field("title", "Title", ""))
            (field("approval", "Approval reference", "For example the IRAS or CAG reference"))
            (field("fields", "Approved fields", "The extract's column names, comma-separated, from the list below"))
            details {
                summary { "Extract columns" }
                ul {
                    @for col in &columns {
                        li { (col.label) " " code { (col.name) } }
                    }
                }
            }
            (field("researchers", "Researchers", "Their user names, comma-separated"))
            (field("from", "Valid from", "DD/MM/YYYY"))
            (field("to", "Valid to", "DD/MM/YYYY"))
            (field("k", "k (k-anonymity)", "At least 2; 5 unless the approval says otherwise"))
            p { button { "Record project" } }
        }
    }
}

async fn admin_page(State(app): State<Arc<App>>, Admin(c): Admin) -> Result<Response, WebError> {
    let projects = app.national(|n| Ok(n.projects()?)).await?;
    let typed = vec![("k".to_string(), "5".to_string())];
    Ok(html_page(page(
        "Research projects",
        c.nav(None),
        admin_body(&c, &projects, &[], &typed, None, (app.today)()),
    )))
}

/// Checks a project form: every problem at once.
pub(crate) fn checked_project(
    form: &Posted,
    known_users: &[crest_store::User],
) -> Result<Project, Vec<(String, String)>> {
    let mut errors: Vec<(String, String)> = Vec::new();
    let id = one(form, "id");
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.push((
            "id".into(),
            "Enter an id of letters, digits, - and _ (at most 64)".into(),
        ));
    }
    for (name, what) in [
        ("title", "the title"),
        ("approval", "the approval reference"),
    ] {
        if one(form, name).is_empty() {
            errors.push((name.into(), format!("Enter {what}")));
        }
    }
    let fields = research::parse_fields(&one(form, "fields")).unwrap_or_else(|e| {
        errors.push(("fields".into(), crate::html::capitalised(&e.0)));
        Vec::new()
    });
    let researchers: Vec<String> = one(form, "researchers")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    if researchers.is_empty() {
        errors.push(("researchers".into(), "Name at least one researcher".into()));
    }
    for r in &researchers {
        match known_users.iter().find(|u| &u.username == r) {
            Some(u) if u.role == crest_store::Role::Researcher => {}
            Some(_) => errors.push((
                "researchers".into(),
                format!("{r} is not a researcher: give them the researcher role first"),
            )),
            None => errors.push(("researchers".into(), format!("There is no user called {r}"))),
        }
    }
    let date = |name: &str, what: &str, errors: &mut Vec<(String, String)>| {
        let typed = one(form, name);
        if typed.is_empty() {
            errors.push((name.to_string(), format!("Enter the {what}")));
            return None;
        }
        crest_core::Date::parse(&typed)
            .map_err(|e| errors.push((name.to_string(), crate::html::capitalised(&e.to_string()))))
            .ok()
    };
    let from = date("from", "first day the approval is valid", &mut errors);
    let to = date("to", "last day the approval is valid", &mut errors);
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            errors.push(("to".into(), "The end is before the start".into()));
        }
    }
    let k = one(form, "k");
    let k = if k.is_empty() {
        Some(5)
    } else {
        k.parse::<u32>().ok().filter(|k| (2..=1000).contains(k))
    };
    if k.is_none() {
        errors.push(("k".into(), "Enter a whole number from 2 to 1000".into()));
    }
    match (from, to, k, errors.is_empty()) {
        (Some(valid_from), Some(valid_to), Some(k), true) => Ok(Project {
            id,
            title: one(form, "title"),
            approval: one(form, "approval"),
            fields,
            researchers,
            valid_from,
            valid_to,
            k,
            secret: research::new_secret(),
            created_at: crest_store::utc_now(),
        }),
        _ => Err(errors),
    }
}

async fn admin_add(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Form(form): Form<Posted>,
) -> Result<Response, WebError> {
    c.check_csrf(Some(&one(&form, "csrf")))?;
    let users = app.db(|s, _| Ok(s.users()?)).await?;
    let today = (app.today)();
    match checked_project(&form, &users) {
        Ok(p) => {
            let mut entry = c.entry("", "record research project", &p.id);
            entry.detail = format!(
                "fields {}; researchers {}",
                p.fields.join(","),
                p.researchers.join(",")
            );
            let id = p.id.clone();
            let (projects, preview) = app
                .national(move |n| {
                    n.put_project(&p)?;
                    n.log(&entry)?;
                    // What the approved fields would release, before anyone takes an extract.
                    let preview =
                        crest_privacy::research::preview(n, &p).map_err(WebError::internal)?;
                    Ok((n.projects()?, preview))
                })
                .await?;
            let notice = format!("Project {id} is recorded. {}", preview.sentence());
            Ok(html_page(page(
                "Research projects",
                c.nav(None),
                admin_body(&c, &projects, &[], &Vec::new(), Some(&notice), today),
            )))
        }
        Err(errors) => {
            let projects = app.national(|n| Ok(n.projects()?)).await?;
            let mut r = html_page(page(
                "Research projects",
                c.nav(None),
                admin_body(&c, &projects, &errors, &form, None, today),
            ));
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}
