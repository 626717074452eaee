//! "Submit to national audit" for programme leads: builds the programme's submission for a
//! period with the server's submission key, through the same `crest_privacy::submission::build`
//! as `crest submission build`, and downloads it. English programmes attach their National Data
//! Opt-out check result, which is used for this build only and never stored.

use crate::access::Staff;
use crate::html::page;
use crate::{html_page, App, Code, WebError};
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use crest_core::{Date, Period};
use crest_privacy::submission::{build, BuildRequest, NdooCheck, NdooList, NDOO_MAX_AGE_DAYS};
use crest_store::Role;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route(
        "/p/{code}/submit",
        get(form).post(submit.layer(axum::extract::DefaultBodyLimit::max(
            crate::OPT_OUT_FILE_LIMIT,
        ))),
    )
}

fn form_body(c: &crate::Ctx, period: Period, message: Option<&str>) -> maud::Markup {
    maud::html! {
        @if let Some(m) = message {
            div class="summary" role="alert" tabindex="-1" autofocus {
                h2 { "The submission was not built" }
                p { (m) }
            }
        }
        p {
            "The national audit receives only pseudonymised, minimised episodes: no names, NHS numbers, dates of birth, \
             postcodes or local ids. Patients who asked to be left out are left out, with all their episodes."
        }
        form method="post" enctype="multipart/form-data" {
            (crate::html::csrf_field(&c.session.csrf))
            label for="from" { "Referred from" }
            input id="from" name="from" value=(period.from);
            label for="to" { "Referred to" }
            input id="to" name="to" value=(period.to);
            fieldset {
                legend {
                    "National Data Opt-out check result (programmes in England; no older than "
                    (NDOO_MAX_AGE_DAYS) " days)"
                }
                label for="ndoo" { "File (CSV: nhs_number,checked_on)" }
                input id="ndoo" type="file" name="ndoo" accept=".csv";
                div {
                    input type="radio" id="l1" name="list" value="opted_out" checked;
                    " "
                    label for="l1" style="display:inline" { "it lists those who opted out" }
                }
                div {
                    input type="radio" id="l2" name="list" value="may_use";
                    " "
                    label for="l2" style="display:inline" { "it lists those who may be included" }
                }
            }
            p { button { "Build and download the submission" } }
        }
    }
}

async fn form(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
) -> Result<Response, WebError> {
    if c.user.role != Role::ProgrammeLead {
        return Err(WebError::NotFound);
    }
    let period = Period::last_financial_year((app.today)());
    Ok(html_page(page(
        "Submit to the national audit",
        c.nav(Some(&p.code)),
        form_body(&c, period, None),
    )))
}

async fn submit(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    if c.user.role != Role::ProgrammeLead {
        return Err(WebError::NotFound);
    }
    let bad = |e| crate::form_error(e, crate::OPT_OUT_FILE_LIMIT);
    let (mut csrf, mut from, mut to, mut list, mut ndoo) =
        (None, String::new(), String::new(), String::new(), None);
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok(),
            Some("from") => from = field.text().await.map_err(bad)?,
            Some("to") => to = field.text().await.map_err(bad)?,
            Some("list") => list = field.text().await.map_err(bad)?,
            Some("ndoo") => ndoo = Some(field.bytes().await.map_err(bad)?),
            _ => {}
        }
    }
    c.check_csrf(csrf.as_deref())?;
    let default = Period::last_financial_year((app.today)());
    let refuse = |m: String, period: Period| {
        let mut r = html_page(page(
            "Submit to the national audit",
            c.nav(Some(&p.code)),
            form_body(&c, period, Some(&m)),
        ));
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        r
    };
    let day = |s: &str, d: Date| {
        if s.trim().is_empty() {
            Ok(d)
        } else {
            Date::parse(s.trim()).map_err(|e| format!("'{s}': {e}"))
        }
    };
    let period = match (day(&from, default.from), day(&to, default.to)) {
        (Ok(from), Ok(to)) if from <= to => Period { from, to },
        (Err(e), _) | (_, Err(e)) => {
            return Ok(refuse(format!("That period is not usable: {e}"), default))
        }
        _ => {
            return Ok(refuse(
                "The end of the period is before its start.".into(),
                default,
            ))
        }
    };
    let Some(key) = app.submission_key.get().cloned() else {
        return Ok(refuse(
            "This server has no submission key: the administrator starts it with --submission-key FILE (or CREST_SUBMISSION_KEY)."
                .into(),
            period,
        ));
    };
    let list = if list == "may_use" {
        NdooList::MayUse
    } else {
        NdooList::OptedOut
    };
    let ndoo = match ndoo.filter(|b| !b.is_empty()) {
        Some(bytes) => match NdooCheck::parse(&bytes, "the opt-out check result", list) {
            Ok(n) => Some(n),
            Err(m) => return Ok(refuse(m.to_string(), period)),
        },
        None => None,
    };
    let today = (app.today)();
    let mut entry = c.entry(&p.code, "submission", "");
    let code = p.code.clone();
    let built = app
        .db(move |s, _| {
            let req = BuildRequest {
                programme: &code,
                period,
                key: &key,
                ndoo: ndoo.as_ref(),
                ndoo_max_age_days: NDOO_MAX_AGE_DAYS,
                today,
                now: crest_store::utc_now(),
            };
            match build(s, &req) {
                Ok(b) => {
                    s.record_sent(&code, &b.sent, &b.withdrawn)?;
                    entry.target = format!("{code}-{}-{}.jsonl", period.from, period.to);
                    entry.detail = format!(
                        "{} episodes, {} tombstones, key {}",
                        b.sent.len(),
                        b.withdrawn.len(),
                        key.id()
                    );
                    s.log(&entry)?;
                    Ok(Ok(b))
                }
                Err(m) => Ok(Err(m)),
            }
        })
        .await?;
    match built {
        Ok(b) => Ok(crate::download(
            b.bytes,
            "application/x-ndjson",
            &format!("{}-{}-{}.jsonl", p.code, period.from, period.to),
        )
        .into_response()),
        Err(m) => Ok(refuse(m.to_string(), period)),
    }
}
