//! The programme profile: professions in the staffing return and groups offered (the lead
//! changes it; staff see it).

use crate::app::access::Staff;
use crate::app::{html_page, App, Code, WebError};
use crate::html::{self, page};
use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crest_core::PriorityGroup;
use crest_store::Role;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/p/{code}/profile", get(profile).post(save_profile))
}

pub(crate) async fn profile(
    State(_app): State<Arc<App>>,
    Staff(c, p): Staff,
) -> Result<Response, WebError> {
    Ok(html_page(profile_page(&c, &p, false)))
}

pub(crate) fn profile_page(c: &crate::app::Ctx, p: &crest_core::Programme, saved: bool) -> String {
    let lead = c.user.role == Role::ProgrammeLead;
    let has = p.professions.clone().unwrap_or_default();
    let offers = p.offers.clone().unwrap_or_default();
    let body = maud::html! {
        @if saved {
            div class="ok" role="status" { "Profile saved." }
        }
        @if !lead {
            p { "Only the programme lead can change the profile." }
        }
        form method="post" {
            (html::csrf_field(&c.session.csrf))
            fieldset {
                legend { "Staffing return: professions in the team (KPI 1)" }
                @for (i, prof) in crest_core::programme::PROFESSIONS.iter().enumerate() {
                    div {
                        input type="checkbox" id={ "prof" (i) } name="profession" value=(prof)
                            checked[has.iter().any(|h| h == prof)] disabled[!lead];
                        " "
                        label for={ "prof" (i) } style="display:inline" { (profession_words(prof)) }
                    }
                }
            }
            fieldset {
                legend { "Priority groups offered (KPI 2)" }
                @for (i, g) in PriorityGroup::OFFERED.iter().enumerate() {
                    div {
                        input type="checkbox" id={ "grp" (i) } name="offer" value=(g.code())
                            checked[offers.contains(g)] disabled[!lead];
                        " "
                        label for={ "grp" (i) } style="display:inline" { (g.label()) }
                    }
                }
            }
            @if lead {
                p { button { "Save profile" } }
            }
        }
    };
    page(&format!("Profile – {}", p.name), c.nav(Some(&p.code)), body)
}

pub(crate) async fn save_profile(
    State(app): State<Arc<App>>,
    Staff(c, mut p): Staff,
    UrlPath(_code): Code,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |k: &str| {
        form.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    c.check_csrf(get("csrf").first().map(String::as_str))?;
    if c.user.role != Role::ProgrammeLead {
        return Err(WebError::NotFound);
    }
    let professions: Vec<String> = get("profession")
        .into_iter()
        .filter(|v| crest_core::programme::PROFESSIONS.contains(&v.as_str()))
        .collect();
    let offers: Vec<PriorityGroup> = get("offer")
        .iter()
        .filter_map(|v| PriorityGroup::parse(v))
        .collect();
    let mut entry = c.entry(&p.code, "change profile", &p.code);
    entry.detail = format!(
        "professions: {}; offers: {}",
        professions.join(";"),
        offers
            .iter()
            .map(|g| g.code())
            .collect::<Vec<_>>()
            .join(";")
    );
    p.professions = (!professions.is_empty()).then_some(professions);
    p.offers = (!offers.is_empty()).then_some(offers);
    let saved = p.clone();
    app.db(move |s, _| {
        // Logged first: a change may never be stored without its entry.
        s.log(&entry)?;
        s.upsert_programmes(&[saved])?;
        Ok(())
    })
    .await?;
    Ok(html_page(profile_page(&c, &p, true)))
}

/// A profession as the staffing return names it: "Exercise physiologist", "Other".
fn profession_words(code: &str) -> String {
    let words = code.replace('_', " ");
    let mut chars = words.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}
