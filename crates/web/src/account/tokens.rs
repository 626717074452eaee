//! Personal API tokens: every user makes their own on the web, for other systems to call the
//! API as them. A token is shown once; crest keeps only its SHA-256. It acts with the user's
//! role and programmes or regions as they are when it is used, expires (at most a year), and
//! can be revoked at once. Making and revoking are in the access log.

use crate::app::access::SignedIn;
use crate::app::{html_page, App, WebError};
use crate::html::{csrf_field, error_summary, page};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crest_store::UserToken;
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/account/tokens", get(tokens_page).post(change))
}

/// The longest a token may live.
const MAX_DAYS: i32 = 365;

fn body(
    c: &crate::app::Ctx,
    tokens: &[UserToken],
    errors: &[(String, String)],
    made: Option<&str>,
    notice: Option<&str>,
) -> Markup {
    let now = crest_store::utc_now();
    html! {
        (error_summary(errors))
        @if let Some(t) = made {
            div class="ok" role="status" {
                p { "Your new token (copy it now: it is not shown again):" }
                p { code class="token" { (t) } }
                p { "Send it as " code { "Authorization: Bearer " (t) } ". See the " a href="/api" { "API" } " page." }
            }
        }
        @if let Some(n) = notice { div class="ok" role="status" { p { (n) } } }
        p {
            "A token lets another system use crest's " a href="/api" { "API" } " as you, with your role ("
            (c.user.role.label()) ") and your programmes or regions, until it expires or you revoke it."
        }
        table tabindex="0" {
            caption { "Your API tokens" }
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Made" } th scope="col" { "Expires" }
                th scope="col" { "Status" } th scope="col" { span class="visually-hidden" { "Revoke" } }
            } }
            tbody {
                @if tokens.is_empty() { tr { td colspan="5" { "You have no API tokens." } } }
                @for t in tokens {
                    tr {
                        th scope="row" { (t.label) }
                        td { (crest_core::date::long_iso(&t.created_at)) }
                        td { (crest_core::date::long_iso(&t.expires_at)) }
                        td {
                            @if t.revoked_at.is_some() { "Revoked" }
                            @else if !t.live(&now) { "Expired" }
                            @else { "Working" }
                        }
                        td {
                            @if t.live(&now) {
                                form method="post" action="/account/tokens" {
                                    (csrf_field(&c.session.csrf))
                                    input type="hidden" name="revoke" value=(t.id);
                                    button class="secondary" { "Revoke " span class="visually-hidden" { (t.label) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Make a token" }
        form method="post" action="/account/tokens" novalidate {
            (csrf_field(&c.session.csrf))
            div class={ "field" @if errors.iter().any(|e| e.0 == "label") { " field-error" } } {
                label for="label" { "Name" }
                div class="hint" id="label-hint" { "What it is for, for example \"ward system\"" }
                @if let Some(e) = errors.iter().find(|e| e.0 == "label") { p class="err" { (e.1) } }
                input id="label" name="label" aria-describedby="label-hint" maxlength="60";
            }
            div class={ "field" @if errors.iter().any(|e| e.0 == "days") { " field-error" } } {
                label for="days" { "Days until it expires" }
                div class="hint" id="days-hint" { "1 to " (MAX_DAYS) }
                @if let Some(e) = errors.iter().find(|e| e.0 == "days") { p class="err" { (e.1) } }
                input id="days" name="days" class="short" inputmode="numeric" value="90" aria-describedby="days-hint";
            }
            p { button { "Make token" } }
        }
    }
}

/// A new personal token for `username`, expiring `days` from now (by the real clock, as
/// [`UserToken::live`] compares with it): the secret to show once, and what to store under its
/// hash ([`token_hash`]).
pub fn new_personal_token(
    username: &str,
    label: &str,
    days: i32,
) -> Result<(String, UserToken), crest_core::date::DateError> {
    let secret = format!(
        "{}{}",
        crate::app::PERSONAL_TOKEN_PREFIX,
        crate::app::auth::token()
    );
    let now = crest_store::utc_now();
    let today = crest_core::Date::parse_iso(now.get(..10).unwrap_or(""))?;
    let expires = format!(
        "{}{}",
        today.add_days(days),
        now.get(10..).unwrap_or("T00:00:00Z")
    );
    let token = UserToken {
        id: crate::app::auth::token()[..12].to_string(),
        username: username.to_string(),
        label: label.to_string(),
        created_at: now,
        expires_at: expires,
        revoked_at: None,
    };
    Ok((secret, token))
}

/// The SHA-256 a token is stored under.
pub fn token_hash(secret: &str) -> String {
    crate::app::auth::token_hash(secret)
}

async fn load(app: &Arc<App>, username: &str) -> Result<Vec<UserToken>, WebError> {
    let name = username.to_string();
    app.db(move |s, _| Ok(s.user_tokens(&name)?)).await
}

async fn tokens_page(
    State(app): State<Arc<App>>,
    SignedIn(c): SignedIn,
) -> Result<Response, WebError> {
    let tokens = load(&app, &c.user.username).await?;
    Ok(html_page(page(
        "API tokens",
        c.nav(None),
        body(&c, &tokens, &[], None, None),
    )))
}

#[derive(serde::Deserialize)]
struct Posted {
    csrf: Option<String>,
    #[serde(default)]
    label: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    revoke: String,
}

async fn change(
    State(app): State<Arc<App>>,
    SignedIn(c): SignedIn,
    Form(f): Form<Posted>,
) -> Result<Response, WebError> {
    c.check_csrf(f.csrf.as_deref())?;
    // A token cannot make or revoke tokens: only a person signed in with a session can.
    if c.session.csrf.is_empty() {
        return Err(WebError::NotFound);
    }
    let me = c.user.username.clone();
    if !f.revoke.is_empty() {
        let mut entry = c.entry("", "revoke API token", &f.revoke);
        let (id, name) = (f.revoke.clone(), me.clone());
        let done = app
            .db(move |s, _| {
                let done = s.revoke_user_token(&name, &id, &crest_store::utc_now())?;
                if done {
                    entry.outcome = "ok".into();
                    s.log(&entry)?;
                }
                Ok(done)
            })
            .await?;
        if !done {
            return Err(WebError::NotFound);
        }
        let tokens = load(&app, &me).await?;
        return Ok(html_page(page(
            "API tokens",
            c.nav(None),
            body(
                &c,
                &tokens,
                &[],
                None,
                Some("The token is revoked; it no longer works."),
            ),
        )));
    }
    let mut errors = Vec::new();
    let label = f.label.trim().to_string();
    if label.is_empty() || label.chars().count() > 60 {
        errors.push((
            "label".to_string(),
            "Give the token a name of at most 60 characters".to_string(),
        ));
    }
    let days = f
        .days
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|d| (1..=MAX_DAYS).contains(d));
    if days.is_none() {
        errors.push((
            "days".to_string(),
            format!("Enter a number of days from 1 to {MAX_DAYS}"),
        ));
    }
    let (Some(days), true) = (days, errors.is_empty()) else {
        let tokens = load(&app, &me).await?;
        let mut r = html_page(page(
            "API tokens",
            c.nav(None),
            body(&c, &tokens, &errors, None, None),
        ));
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    };
    let (secret, token) = new_personal_token(&me, &label, days).map_err(WebError::internal)?;
    let mut entry = c.entry("", "make API token", &token.id);
    entry.detail = format!("expires {}", token.expires_at);
    let hash = token_hash(&secret);
    app.db(move |s, _| {
        s.put_user_token(&hash, &token)?;
        s.log(&entry)?;
        Ok(())
    })
    .await?;
    let tokens = load(&app, &me).await?;
    Ok(html_page(page(
        "API tokens",
        c.nav(None),
        body(&c, &tokens, &[], Some(&secret), None),
    )))
}
