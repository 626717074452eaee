//! "Submit to national audit" for programme leads, in two steps. First the lead chooses the
//! period and attaches the National Data Opt-out check result (programmes in England); crest
//! works out the submission and shows what would be sent (episodes, those left out at the
//! patient's request or by the opt-out, withdrawals) and the agreement it goes under. Then the
//! lead builds and downloads it. Both steps go through the same
//! `crest_privacy::submission::build` as `crest submission build`; the opt-out result waits in
//! the store for an hour at most (any server can finish the build) and is removed once used.

use crate::app::access::Staff;
use crate::app::{html_page, App, Code, WebError};
use crate::html::page;
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
    Router::new()
        .route(
            "/p/{code}/submit",
            get(form).post(submit.layer(axum::extract::DefaultBodyLimit::max(
                crate::app::OPT_OUT_FILE_LIMIT,
            ))),
        )
        .route("/p/{code}/submit/confirm", axum::routing::post(confirm))
}

fn form_body(c: &crate::app::Ctx, period: Period, message: Option<&str>) -> maud::Markup {
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
                label for="ndoo" {
                    "File "
                    span class="hint" {
                        "a CSV with two columns: NHS number (" code { "nhs_number" } ") and the date it was checked ("
                        code { "checked_on" } ")"
                    }
                }
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
            p { button { "Check what would be sent" } }
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
    let bad = |e| crate::app::form_error(e, crate::app::OPT_OUT_FILE_LIMIT);
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
            "This server has no submission key, so no submission can be built here yet. Ask the administrator to give it one."
                .into(),
            period,
        ));
    };
    let Some(signing) = app.signing_key(&p.code) else {
        return Ok(refuse(
            format!("This server has no signing key for programme {}, so the national audit could not tell that this programme built the file. Ask the administrator to give the server the programme's signing key.", p.code),
            period,
        ));
    };
    let key = (key, signing);
    let list = if list == "may_use" {
        NdooList::MayUse
    } else {
        NdooList::OptedOut
    };
    let ndoo_raw: Vec<u8> = ndoo
        .filter(|b| !b.is_empty())
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let ndoo = if ndoo_raw.is_empty() {
        None
    } else {
        match NdooCheck::parse(&ndoo_raw, "the opt-out check result", list) {
            Ok(n) => Some(n),
            Err(m) => return Ok(refuse(capitalise(&m.to_string()), period)),
        }
    };
    let today = (app.today)();
    let code = p.code.clone();
    let (ndoo_bytes, list_code) = (
        ndoo_raw,
        if list == NdooList::MayUse {
            "may_use"
        } else {
            "opted_out"
        },
    );
    // What the build would send, worked out now and shown before anything is recorded.
    let outcome = app
        .db(move |s, _| {
            let req = request(&code, period, &key, ndoo.as_ref(), today);
            let agreement = s.agreements()?.into_iter().find(|a| a.in_force(today));
            Ok(build(s, &req).map(|b| (b, agreement)))
        })
        .await?;
    let (built, agreement) = match outcome {
        Ok(x) => x,
        Err(m) => return Ok(refuse(capitalise(&m.message()), period)),
    };
    let token = crate::app::auth::token();
    let pending = crest_store::PendingUpload {
        token: token.clone(),
        programme: p.code.clone(),
        name: format!(
            "{}{}:{}:{list_code}",
            crate::programme::upload::SUBMISSION_PREFIX,
            period.from,
            period.to
        ),
        created: crate::app::now_secs(),
        file: ndoo_bytes,
        errors: Vec::new(),
    };
    app.db(move |s, _| Ok(s.put_upload(&pending)?)).await?;
    let code = &p.code;
    let body = maud::html! {
        h2 { "What would be sent for " (period.from.long()) " to " (period.to.long()) }
        table tabindex="0" {
            caption { "The submission, before it is built" }
            tbody {
                tr { th scope="row" { "Episodes sent (pseudonymised, minimised)" } td { (built.sent.len()) } }
                tr { th scope="row" { "Left out: the patient asked not to be included" } td { (built.left_out_own_request) } }
                tr { th scope="row" { "Left out: the National Data Opt-out" } td { (built.left_out_ndoo) } }
                tr { th scope="row" { "Withdrawn: sent before, now to be removed nationally" } td { (built.withdrawn.len()) } }
            }
        }
        @if let Some(a) = &agreement {
            h2 { "The agreement it is sent under" }
            dl class="summary-list" {
                dt { "Agreement" } dd { (a.id) }
                dt { "Recipient" } dd { (a.recipient) }
                dt { "Legal basis" } dd { (a.legal_basis) }
                dt { "In force" } dd { (a.valid_from.long()) " to " (a.valid_to.long()) }
                dt { "Fields" } dd {
                    @match &a.fields {
                        None => "every national field of the dataset",
                        Some(f) => { (f.len()) " approved fields" },
                    }
                }
            }
        }
        form method="post" action={ "/p/" (code) "/submit/confirm" } {
            (crate::html::csrf_field(&c.session.csrf))
            input type="hidden" name="token" value=(token);
            p {
                @if let Some((url, _)) = app.send_to.get() {
                    button name="send" value="1" { "Send to the national audit" } " "
                    button class="secondary" { "Build and download instead" }
                    br;
                    span class="hint" {
                        "Sent to " (url)
                        @if url.starts_with("https://") { " over an encrypted connection." }
                        @else { " on this machine." }
                    }
                } @else {
                    button { "Build and download the submission" }
                    br;
                    span class="hint" {
                        "This crest is not connected to the national audit, so the submission \
                         downloads as a file. Send that file to the national audit the way your \
                         data sharing agreement sets out (their secure upload or file transfer); \
                         do not email it. The audit's analysts receive it and tell you when it is \
                         stored."
                    }
                }
            }
        }
        p { a href={ "/p/" (code) "/submit" } { "Start again" } }
        p class="hint" {
            "Nothing is recorded as sent until you build it. The opt-out check result is kept \
             for an hour at most, until you build the submission or start again."
        }
    };
    Ok(html_page(page(
        "Check the submission",
        c.nav(Some(&p.code)),
        body,
    )))
}

/// The build of `programme`'s submission for `period`, as of now.
fn request<'a>(
    programme: &'a str,
    period: Period,
    (key, signing_key): &'a (crest_privacy::Key, crest_privacy::SigningKey),
    ndoo: Option<&'a NdooCheck>,
    today: Date,
) -> BuildRequest<'a> {
    BuildRequest {
        programme,
        period,
        key,
        signing_key,
        ndoo,
        ndoo_max_age_days: NDOO_MAX_AGE_DAYS,
        today,
        now: crest_store::utc_now(),
    }
}

/// A library's message as a sentence on a page: capital first, full stop last.
/// Why a submission could not be sent to the national audit.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// No answer from the audit's address.
    #[error("the national audit could not be reached ({0})")]
    Unreachable(#[source] ureq::Error),
    /// An answer that could not be read.
    #[error("the national audit's answer could not be read ({0})")]
    Unreadable(#[source] ureq::Error),
}

fn capitalise(s: &str) -> String {
    let mut out = crate::html::capitalised(s);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[derive(serde::Deserialize)]
pub(crate) struct ConfirmForm {
    csrf: Option<String>,
    token: String,
    /// `1` to send it to the national audit rather than download it.
    #[serde(default)]
    send: String,
}

/// Builds the checked submission, records what was sent, logs it and downloads it.
async fn confirm(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    axum::Form(f): axum::Form<ConfirmForm>,
) -> Result<Response, WebError> {
    if c.user.role != Role::ProgrammeLead {
        return Err(WebError::NotFound);
    }
    c.check_csrf(f.csrf.as_deref())?;
    let again = || {
        WebError::BadRequest(
            "This submission is no longer waiting: a check is kept for an hour. Start again from Submit."
                .into(),
        )
    };
    let pending = crate::programme::upload::waiting_for(&app, &p.code, &f.token, true)
        .await?
        .ok_or_else(again)?;
    // The period and the opt-out list, as the check recorded them.
    let parts: Vec<&str> = pending.name[crate::programme::upload::SUBMISSION_PREFIX.len()..]
        .split(':')
        .collect();
    let (Some(from), Some(to), Some(list)) = (
        parts.first().and_then(|d| Date::parse(d).ok()),
        parts.get(1).and_then(|d| Date::parse(d).ok()),
        parts.get(2),
    ) else {
        return Err(again());
    };
    let period = Period { from, to };
    let list = if *list == "may_use" {
        NdooList::MayUse
    } else {
        NdooList::OptedOut
    };
    let ndoo = if pending.file.is_empty() {
        None
    } else {
        Some(
            NdooCheck::parse(&pending.file, "the opt-out check result", list)
                .map_err(|e| WebError::BadRequest(e.to_string()))?,
        )
    };
    let key = app.submission_key.get().cloned().ok_or_else(again)?;
    let key = (key, app.signing_key(&p.code).ok_or_else(again)?);
    let today = (app.today)();
    let mut entry = c.entry(&p.code, "submission", "");
    let (code, token) = (p.code.clone(), f.token.clone());
    let send_to = app.send_to.get().cloned().filter(|_| f.send == "1");
    if let Some(target) = send_to {
        return send(app, c, p, period, (key, ndoo, today), f.token, target).await;
    }
    let built = app
        .db(move |s, _| {
            let req = request(&code, period, &key, ndoo.as_ref(), today);
            let out = match build(s, &req) {
                Ok(b) => {
                    s.record_sent(&code, &b.sent, &b.withdrawn)?;
                    entry.target = format!("{code}-{}-{}.jsonl", period.from, period.to);
                    entry.detail = format!(
                        "{} episodes, {} tombstones, {} left out at the patient's request, {} by the National Data Opt-out, key {}",
                        b.sent.len(),
                        b.withdrawn.len(),
                        b.left_out_own_request,
                        b.left_out_ndoo,
                        key.0.id()
                    );
                    s.log(&entry)?;
                    Ok(b)
                }
                Err(m) => Err(m),
            };
            s.drop_upload(&code, &token)?;
            Ok(out)
        })
        .await?;
    match built {
        Ok(b) => Ok(crate::app::download(
            b.bytes,
            "application/x-ndjson",
            &format!("{}-{}-{}.jsonl", p.code, period.from, period.to),
        )
        .into_response()),
        Err(m) => Err(WebError::BadRequest(capitalise(&m.message()))),
    }
}

/// What a build needs besides the programme and period: the key, the opt-out result, today.
type BuildInputs = (
    (crest_privacy::Key, crest_privacy::SigningKey),
    Option<NdooCheck>,
    Date,
);

/// Builds the checked submission and sends it to the national audit's API; only once the
/// audit has stored it are its episodes recorded as sent. Shows the audit's receipt, or what it
/// said when it refused (nothing is then recorded, and the lead can try again or download).
async fn send(
    app: Arc<App>,
    c: crate::app::Ctx,
    p: crest_core::Programme,
    period: Period,
    (key, ndoo, today): BuildInputs,
    token: String,
    (url, api_token): (String, String),
) -> Result<Response, WebError> {
    let code = p.code.clone();
    let built = app
        .db(move |s, _| {
            Ok(build(
                s,
                &request(&code, period, &key, ndoo.as_ref(), today),
            ))
        })
        .await?
        .map_err(|m| WebError::BadRequest(capitalise(&m.message())))?;
    let endpoint = format!("{url}/api/v1/submissions");
    let bytes = built.bytes.clone();
    // The audit's answer: its HTTP status and JSON, or why it could not be reached.
    let answer =
        tokio::task::spawn_blocking(move || -> Result<(u16, serde_json::Value), SendError> {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(300)))
                .http_status_as_error(false)
                .build()
                .into();
            let mut r = agent
                .post(&endpoint)
                .header("Authorization", &format!("Bearer {api_token}"))
                .header("Content-Type", "application/x-ndjson")
                .send(&bytes[..])
                .map_err(SendError::Unreachable)?;
            let status = r.status().as_u16();
            let text = r
                .body_mut()
                .read_to_string()
                .map_err(SendError::Unreadable)?;
            Ok((
                status,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            ))
        })
        .await
        .map_err(WebError::internal)?;
    let mut entry = c.entry(&p.code, "submission sent", &url);
    let (code, sent, withdrawn) = (p.code.clone(), built.sent.clone(), built.withdrawn.clone());
    let stored = matches!(&answer, Ok((200, _)));
    entry.outcome = if stored {
        "ok".into()
    } else {
        "refused".into()
    };
    entry.detail = match &answer {
        Ok((status, json)) => format!(
            "{} episodes, {} tombstones; the audit answered {status}: {}",
            built.sent.len(),
            built.withdrawn.len(),
            json.get("status")
                .or_else(|| json.get("code"))
                .and_then(|v| v.as_str())
                .unwrap_or("no status")
        ),
        Err(m) => m.to_string(),
    };
    app.db(move |s, _| {
        if stored {
            s.record_sent(&code, &sent, &withdrawn)?;
            s.drop_upload(&code, &token)?;
        }
        Ok(s.log(&entry)?)
    })
    .await?;
    let body = match answer {
        Ok((200, json)) => maud::html! {
            div class="ok" role="status" {
                h2 { "Received by the national audit" }
                @if json.get("status").and_then(|v| v.as_str()) == Some("already received") {
                    p { "The national audit already had exactly this submission; nothing changed." }
                } @else {
                    p {
                        "Stored " (json.get("episodes").and_then(|v| v.as_u64()).unwrap_or(0)) " episode(s) for "
                        (period.from.long()) " to " (period.to.long()) "; "
                        (json.get("replaced").and_then(|v| v.as_u64()).unwrap_or(0)) " replaced what it held, "
                        (json.get("deleted").and_then(|v| v.as_u64()).unwrap_or(0)) " withdrawn."
                    }
                }
            }
            p { a href={ "/p/" (p.code) "/dashboard" } { "Back to the dashboard" } }
        },
        other => {
            let why = match other {
                Ok((status, json)) => format!(
                    "The national audit refused it ({status}): {}",
                    json.get("message")
                        .and_then(|v| v.as_str())
                        .unwrap_or("no reason given")
                ),
                Err(m) => capitalise(&m.to_string()),
            };
            maud::html! {
                div class="summary" role="alert" tabindex="-1" {
                    h2 { "The submission was not sent" }
                    p { (why) }
                    p { "Nothing was recorded as sent. Try again later, or build and download it instead." }
                }
                p { a href={ "/p/" (p.code) "/submit" } { "Start again" } }
            }
        }
    };
    Ok(html_page(page(
        "Submit to the national audit",
        c.nav(Some(&p.code)),
        body,
    )))
}
