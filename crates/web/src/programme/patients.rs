//! The patient list: search (posted, so no NHS number reaches an address) and filters.

use crate::app::access::Staff;
use crate::app::{html_page, App, WebError};
use crate::html::{self, page, url_encode};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crest_core::{Col, Programme};
use crest_store::{EpisodeQuery, EpisodeSort};
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
    /// The order (an [`EpisodeSort`] code).
    #[serde(default)]
    sort: String,
    /// The page of the list, from 1.
    #[serde(default)]
    page: Option<usize>,
    /// The form's CSRF token (searches are posted).
    #[serde(default)]
    csrf: Option<String>,
}

/// Episodes on one page of the list.
const PAGE_SIZE: usize = 50;

impl ListQuery {
    /// The store's query for these filters (dates already read), every matching row.
    pub(crate) fn episodes(
        &self,
        from: Option<crest_core::Date>,
        to: Option<crest_core::Date>,
    ) -> EpisodeQuery {
        EpisodeQuery {
            text: self.q.clone(),
            status: self.status.clone(),
            pathway: self.pathway.clone(),
            from,
            to,
            limit: usize::MAX,
            offset: 0,
            sort: EpisodeSort::parse(&self.sort),
        }
    }

    /// The form's CSRF token, as posted.
    pub(crate) fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }

    /// Whether anything narrows the list.
    fn filtered(&self) -> bool {
        [&self.q, &self.status, &self.pathway, &self.from, &self.to]
            .iter()
            .any(|v| !v.trim().is_empty())
    }

    /// The filters as hidden fields, so the pages and downloads of a search are posted (an
    /// NHS number searched for never lands in an address).
    fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="q" value=(self.q);
            input type="hidden" name="status" value=(self.status);
            input type="hidden" name="pathway" value=(self.pathway);
            input type="hidden" name="from" value=(self.from);
            input type="hidden" name="to" value=(self.to);
            input type="hidden" name="sort" value=(self.sort);
        }
    }
}

/// Reads the list's two referral dates; a date that cannot be read is a problem to show.
pub(crate) fn list_dates(
    q: &ListQuery,
) -> (
    Option<crest_core::Date>,
    Option<crest_core::Date>,
    Vec<String>,
) {
    let mut problems = Vec::new();
    let mut date = |s: &str, what: &str| {
        if s.trim().is_empty() {
            return None;
        }
        crest_core::Date::parse(s.trim())
            .map_err(|e| problems.push(format!("{what}: {e}")))
            .ok()
    };
    let (from, to) = (date(&q.from, "Referred from"), date(&q.to, "Referred to"));
    (from, to, problems)
}

/// The options of a search filter: "any", then the field's codes from the dataset dictionary.
fn code_options(col: Col, selected: &str) -> Markup {
    html! {
        option value="" { "Any" }
        @for c in col.field().codes() {
            option value=(c.code) selected[c.code == selected] { (c.label) }
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
    c: crate::app::Ctx,
    p: Programme,
    q: ListQuery,
) -> Result<Response, WebError> {
    let (from, to, problems) = list_dates(&q);
    let mut query = q.episodes(from, to);
    let pc = p.code.clone();
    let counted = query.clone();
    let total = app
        .db(move |s, _| Ok(s.count_matching(&pc, &counted)?))
        .await? as usize;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = q.page.unwrap_or(1).clamp(1, pages);
    query.limit = PAGE_SIZE;
    query.offset = (page_no - 1) * PAGE_SIZE;
    let pc = p.code.clone();
    let rows = app
        .db(move |s, _| Ok(s.find_episodes(&pc, &query)?))
        .await?;
    let code = &p.code;
    let shown = |r: &crest_core::Record, col: Col| {
        let v = r.get(col);
        if v.is_null() {
            String::new()
        } else {
            col.field().display(v)
        }
    };
    let first = (page_no - 1) * PAGE_SIZE + 1;
    let body = html! {
        @for m in &problems {
            div class="summary" role="alert" { (m) }
        }
        form method="post" action={ "/p/" (code) "/episodes" } role="search" {
            (html::csrf_field(&c.session.csrf))
            label for="q" { "Search" }
            div class="hint" id="q-hint" { "A name (or part of one), an NHS number, a hospital number or an episode ID" }
            input id="q" name="q" value=(q.q) aria-describedby="q-hint";
            div class="filters" {
                div {
                    label for="status" { "Where the patient is now" }
                    select id="status" name="status" { (code_options(Col::Status, &q.status)) }
                }
                div {
                    label for="pathway" { "What led to the referral" }
                    select id="pathway" name="pathway" { (code_options(Col::InitiatingEvent, &q.pathway)) }
                }
                div {
                    label for="from" { "Referred from" }
                    input id="from" name="from" value=(q.from) placeholder="DD/MM/YYYY" class="short";
                }
                div {
                    label for="to" { "Referred to" }
                    input id="to" name="to" value=(q.to) placeholder="DD/MM/YYYY" class="short";
                }
                div {
                    label for="sort" { "Sort by" }
                    select id="sort" name="sort" {
                        @for (order, code, words) in EpisodeSort::ALL {
                            option value=(code) selected[EpisodeSort::parse(&q.sort) == order] { (words) }
                        }
                    }
                }
            }
            p { button { "Search" } }
        }
        @if total == 0 && !q.filtered() {
            p {
                "No episodes yet. "
                a href={ "/p/" (code) "/episodes/new" } { "Enter a new episode" } " or "
                a href={ "/p/" (code) "/upload" } { "upload a file" } "."
            }
        } @else if total == 0 {
            p {
                "No episodes match this search. Check the spelling, or "
                a href={ "/p/" (code) "/episodes" } { "clear the search" } "."
            }
        } @else {
            p role="status" {
                "Showing " (first) " to " (first + rows.len() - 1) " of " (total) " episode(s)."
            }
            form method="post" class="noprint downloads" {
                (html::csrf_field(&c.session.csrf))
                (q.hidden())
                "Download these " (total) " episode(s): "
                button class="secondary" formaction={ "/p/" (code) "/export.csv" } { "CSV" } " "
                button class="secondary" formaction={ "/p/" (code) "/export.xlsx" } { "XLSX" } " "
                button class="secondary" formaction={ "/p/" (code) "/export.json" } { "FHIR" }
            }
            table tabindex="0" {
                caption { "Episodes of " (p.name) }
                thead { tr {
                    th scope="col" { "Episode" } th scope="col" { "NHS number" }
                    th scope="col" { "Name" } th scope="col" { "Referred" }
                    th scope="col" { "What led to the referral" } th scope="col" { "Where the patient is now" }
                } }
                tbody {
                    @for r in &rows {
                        @let id = r.get(Col::EpisodeId).to_text();
                        tr {
                            td { a href={ "/p/" (code) "/episodes/" (url_encode(&id)) } { (id) } }
                            td { (r.get(Col::NhsNumber).to_text()) }
                            td { (r.get(Col::GivenName).to_text()) " " (r.get(Col::FamilyName).to_text()) }
                            td { (shown(r, Col::ReferralDate)) }
                            td { (shown(r, Col::InitiatingEvent)) }
                            td { (shown(r, Col::Status)) }
                        }
                    }
                }
            }
            @if pages > 1 {
                form method="post" action={ "/p/" (code) "/episodes" } class="noprint" {
                    (html::csrf_field(&c.session.csrf))
                    (q.hidden())
                    nav aria-label="Pages of the list" class="pages" {
                        @if page_no > 1 {
                            button class="secondary" name="page" value=(page_no - 1) { "Previous page" } " "
                        }
                        "Page " (page_no) " of " (pages)
                        @if page_no < pages {
                            " " button class="secondary" name="page" value=(page_no + 1) { "Next page" }
                        }
                    }
                }
            }
        }
    };
    let mut entry = c.entry(&p.code, "search", "episode list");
    entry.detail = format!("{total} result(s)");
    app.db(move |s, _| Ok(s.log(&entry)?)).await?;
    Ok(html_page(page(
        &format!("Patients – {}", p.name),
        c.nav(Some(&p.code)),
        body,
    )))
}
