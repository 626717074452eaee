//! The patient list: search (posted, so no NHS number reaches an address) and filters.

use crate::access::Staff;
use crate::html::{self, esc, page, url_encode};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crest_core::{Col, Programme};
use crest_store::EpisodeQuery;
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/p/{code}/episodes", get(list).post(search))
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    pathway: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The form's CSRF token (searches are posted).
    #[serde(default)]
    csrf: Option<String>,
}

pub(crate) fn code_options(col: Col, selected: &str) -> String {
    let mut s = String::from("<option value=\"\">any</option>");
    if let crest_core::Kind::Code(codes) = col.field().kind {
        for c in codes {
            let sel = if *c == selected { " selected" } else { "" };
            let _ = write!(s, "<option{sel}>{}</option>", esc(c));
        }
    }
    s
}

pub(crate) async fn list(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    list_page(app, c, p, q).await
}

/// The search form posts, so an NHS number or name searched for never lands in the address
/// bar, the browser's history or a server's access log.
pub(crate) async fn search(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Form(q): Form<ListQuery>,
) -> Result<Response, WebError> {
    c.check_csrf(q.csrf.as_deref())?;
    list_page(app, c, p, q).await
}

pub(crate) async fn list_page(
    app: Arc<App>,
    c: crate::Ctx,
    p: Programme,
    q: ListQuery,
) -> Result<Response, WebError> {
    let mut problems = Vec::new();
    let mut date = |s: &str, what: &str| {
        if s.trim().is_empty() {
            return None;
        }
        crest_core::Date::parse(s.trim())
            .map_err(|e| problems.push(format!("{what}: {e}")))
            .ok()
    };
    let query = EpisodeQuery {
        text: q.q.clone(),
        status: q.status.clone(),
        pathway: q.pathway.clone(),
        from: date(&q.from, "Referred from"),
        to: date(&q.to, "Referred to"),
        limit: 200,
    };
    let pc = p.code.clone();
    let rows = app
        .db(move |s, _| Ok(s.find_episodes(&pc, &query)?))
        .await?;
    let mut body = String::new();
    for m in &problems {
        let _ = write!(
            body,
            "<div class=\"summary\" role=\"alert\">{}</div>",
            esc(m)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/p/{}/episodes\" role=\"search\">{}<label for=\"q\">NHS number, name, hospital number or episode id</label>\
         <input id=\"q\" name=\"q\" value=\"{}\"> <label for=\"status\">Status</label><select id=\"status\" name=\"status\">{}</select>\
         <label for=\"pathway\">Initiating event</label><select id=\"pathway\" name=\"pathway\">{}</select>\
         <label for=\"from\">Referred from</label><input id=\"from\" name=\"from\" value=\"{}\">\
         <label for=\"to\">Referred to</label><input id=\"to\" name=\"to\" value=\"{}\"> <button>Search</button></form>",
        esc(&p.code),
        html::csrf_field(&c.session.csrf),
        esc(&q.q),
        code_options(Col::Status, &q.status),
        code_options(Col::InitiatingEvent, &q.pathway),
        esc(&q.from),
        esc(&q.to)
    );
    let _ = write!(
        body,
        "<p>{} episode(s){}.</p><table><caption>Episodes of {}</caption><thead><tr><th scope=\"col\">Episode</th><th scope=\"col\">NHS number</th>\
         <th scope=\"col\">Name</th><th scope=\"col\">Referred</th><th scope=\"col\">Event</th><th scope=\"col\">Status</th></tr></thead><tbody>",
        rows.len(),
        if rows.len() == 200 { " (the first 200; narrow the search)" } else { "" },
        esc(&p.name)
    );
    for r in &rows {
        let t = |col| r.get(col).to_text();
        let id = t(Col::EpisodeId);
        let _ = write!(
            body,
            "<tr><td><a href=\"/p/{}/episodes/{}\">{}</a></td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.code),
            url_encode(&id),
            esc(&id),
            esc(&t(Col::NhsNumber)),
            esc(&t(Col::GivenName)),
            esc(&t(Col::FamilyName)),
            esc(&t(Col::ReferralDate)),
            esc(&t(Col::InitiatingEvent)),
            esc(&t(Col::Status))
        );
    }
    body.push_str("</tbody></table>");
    let mut entry = c.entry(&p.code, "search", "episode list");
    entry.detail = format!("{} result(s)", rows.len());
    app.db(move |s, _| Ok(s.log(&entry)?)).await?;
    Ok(html_page(page(
        &format!("Patients – {}", p.name),
        &c.nav(Some(&p.code)),
        &body,
    )))
}
