//! Changing one's own password: the old password (and security code, where set) first, then
//! the new one twice; every other session of the user ends.

use crate::app::access::SignedIn;
use crate::app::forms::{one, Posted};
use crate::app::security::proof_keys;
use crate::app::{html_page, App, WebError};
use crate::html::{csrf_field, error_summary, page};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use crest_store::users::{check_password, hash_password};
use maud::html;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route(
        "/account/password",
        get(password_form).post(change_password),
    )
}

pub(crate) fn password_page(c: &crate::app::Ctx, errors: &[(String, String)]) -> String {
    password_page_with(c, errors, 0)
}

/// The password page; `wrong_codes` wrong security codes were given with this user's
/// password since they last signed in.
pub(crate) fn password_page_with(
    c: &crate::app::Ctx,
    errors: &[(String, String)],
    wrong_codes: u32,
) -> String {
    let field = |name: &str, label: &str, hint: Option<&str>, autocomplete: &str| {
        let error = errors.iter().find(|e| e.0 == name).map(|e| e.1.as_str());
        html! {
            div class={ "field" @if error.is_some() { " field-error" } } {
                label for={ "f-" (name) } { (label) }
                @if let Some(h) = hint { div class="hint" id={ "h-" (name) } { (h) } }
                @if let Some(e) = error { p class="err" id={ "e-" (name) } { (e) } }
                input type="password" id={ "f-" (name) } name=(name) autocomplete=(autocomplete)
                    aria-invalid=[error.map(|_| "true")]
                    aria-describedby=[error.map(|_| format!("e-{name}"))];
            }
        }
    };
    let body = html! {
        (error_summary(errors))
        @if wrong_codes > 0 {
            div class="summary" role="alert" {
                p {
                    strong {
                        "Since you last signed in, your password was given "
                        @if wrong_codes == 1 { "once" } @else { (wrong_codes) " times" }
                        " with a wrong security code."
                    }
                    " If that was not you, someone knows your password: change it now. After "
                    (crest_store::users::MAX_WRONG_CODES) " wrong codes in a row the password stops working until an administrator resets it."
                }
            }
        }
        form method="post" action="/account/password" novalidate {
            (csrf_field(&c.session.csrf))
            (field("current", "Your current password", None, "current-password"))
            (field("new", "New password", Some("At least 10 characters. A few unrelated words are easy to remember and hard to guess."), "new-password"))
            (field("again", "New password again", None, "new-password"))
            p { button { "Change password" } }
        }
    };
    page("Change your password", c.nav(None), body)
}

pub(crate) async fn password_form(
    SignedIn(c): SignedIn,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    let wrong = q
        .get("wrong_codes")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    Ok(html_page(password_page_with(&c, &[], wrong)))
}

pub(crate) async fn change_password(
    State(app): State<Arc<App>>,
    SignedIn(c): SignedIn,
    Form(form): Form<Posted>,
) -> Result<Response, WebError> {
    c.check_csrf(Some(&one(&form, "csrf")))?;
    let field = |n: &str| {
        form.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (current, new, again) = (field("current"), field("new"), field("again"));
    // Guessing the current password here is throttled like signing in (one budget per name).
    let keys = proof_keys(&c.user.username);
    crate::app::start_attempt(&app, &keys).await?;
    let stored = c.user.password_hash.clone();
    let (ok, hash) = {
        let _permit = app.hashing.acquire().await.map_err(WebError::internal)?;
        let n = new.clone();
        tokio::task::spawn_blocking(move || {
            let ok = crate::app::auth::verify_password(&current, &stored);
            let hash = if ok && check_password(&n).is_ok() {
                hash_password(&n).ok()
            } else {
                None
            };
            (ok, hash)
        })
        .await
        .map_err(WebError::internal)?
    };
    crate::app::finish_attempt(&app, keys, ok).await;
    let mut errors = Vec::new();
    if !ok {
        errors.push((
            "current".to_string(),
            "Your current password is not right".to_string(),
        ));
    }
    if let Err(e) = check_password(&new) {
        errors.push(("new".into(), crate::html::capitalised(&e.to_string())));
    }
    if new != again {
        errors.push((
            "again".into(),
            "The two new passwords are not the same".into(),
        ));
    }
    let name = c.user.username.clone();
    let mut entry = c.entry("", "change password", &name);
    if !errors.is_empty() {
        entry.outcome = "refused".into();
        app.db(move |s, _| Ok(s.log(&entry)?)).await?;
        let mut r = html_page(password_page(&c, &errors));
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    }
    let Some(hash) = hash else {
        return Err(WebError::internal("the password could not be hashed"));
    };
    app.db(move |s, _| {
        let Some(mut u) = s.user(&name)? else {
            return Err(WebError::NotFound);
        };
        u.password_hash = hash;
        s.log(&entry)?;
        s.put_user(&u)?;
        // Every session and API token of the old password ends, this one too.
        s.drop_user_sessions(&name)?;
        Ok(s.revoke_user_tokens(&name, &crest_store::utc_now())?)
    })
    .await
    .map(|revoked| {
        let to = if revoked > 0 {
            "/login?changed=1&tokens_revoked=1"
        } else {
            "/login?changed=1"
        };
        Redirect::to(to).into_response()
    })
}
