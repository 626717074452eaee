//! The patient list: search (posted, so no NHS number reaches an address) and filters.

use crate::access::Staff;
use crate::html::{self, page, url_encode};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crest_core::{Col, Programme};
use crest_store::EpisodeQuery;
use maud::{html, Markup};
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

/// The options of a search filter: "any", then the field's codes from the dataset dictionary.
fn code_options(col: Col, selected: &str) -> Markup {
    let codes = match col.field().kind {
        crest_core::Kind::Code(codes) => codes,
        _ => &[][..],
    };
    html! {
        option value="" { "any" }
        @for c in codes {
            option selected[*c == selected] { (c) }
        }
    }
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
    let code = &p.code;
    let body = html! {
        @for m in &problems {
            div class="summary" role="alert" { (m) }
        }
        form method="post" action={ "/p/" (code) "/episodes" } role="search" {
            (html::csrf_field(&c.session.csrf))
            label for="q" { "NHS number, name, hospital number or episode id" }
            input id="q" name="q" value=(q.q);
            " "
            label for="status" { "Status" }
            select id="status" name="status" { (code_options(Col::Status, &q.status)) }
            label for="pathway" { "Initiating event" }
            select id="pathway" name="pathway" { (code_options(Col::InitiatingEvent, &q.pathway)) }
            label for="from" { "Referred from" }
            input id="from" name="from" value=(q.from);
            label for="to" { "Referred to" }
            input id="to" name="to" value=(q.to);
            " "
            button { "Search" }
        }
        p {
            (rows.len()) " episode(s)"
            @if rows.len() == 200 { " (the first 200; narrow the search)" }
            "."
        }
        table {
            caption { "Episodes of " (p.name) }
            thead { tr {
                th scope="col" { "Episode" } th scope="col" { "NHS number" }
                th scope="col" { "Name" } th scope="col" { "Referred" }
                th scope="col" { "Event" } th scope="col" { "Status" }
            } }
            tbody {
                @for r in &rows {
                    @let t = |col| r.get(col).to_text();
                    @let id = t(Col::EpisodeId);
                    tr {
                        td { a href={ "/p/" (code) "/episodes/" (url_encode(&id)) } { (id) } }
                        td { (t(Col::NhsNumber)) }
                        td { (t(Col::GivenName)) " " (t(Col::FamilyName)) }
                        td { (t(Col::ReferralDate)) }
                        td { (t(Col::InitiatingEvent)) }
                        td { (t(Col::Status)) }
                    }
                }
            }
        }
    };
    let mut entry = c.entry(&p.code, "search", "episode list");
    entry.detail = format!("{} result(s)", rows.len());
    app.db(move |s, _| Ok(s.log(&entry)?)).await?;
    Ok(html_page(page(
        &format!("Patients – {}", p.name),
        c.nav(Some(&p.code)),
        body,
    )))
}
