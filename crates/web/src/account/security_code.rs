//! Setting up (or turning off) one's security code: a time-based one-time code app, shown as
//! a key and a QR code, confirmed with a first code before it is required at sign-in.

use crate::app::forms::{one, Posted};
use crate::app::security::{code_required, proof_keys, SECURITY_CODE_PAGE};
use crate::app::{html_page, App, WebError};
use crate::html::{csrf_field, error_summary, page};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route(
        SECURITY_CODE_PAGE,
        get(security_code_form).post(set_security_code),
    )
}

pub(crate) fn security_page(
    c: &crate::app::Ctx,
    new_secret: Option<&str>,
    error: Option<&str>,
    required: bool,
) -> String {
    let errors: Vec<(String, String)> = error
        .map(|e| vec![("code".to_string(), e.to_string())])
        .unwrap_or_default();
    let grouped = |s: &str| {
        s.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let body = html! {
        (error_summary(&errors))
        @match new_secret {
            Some(secret) => {
                @if required { p { strong { "Your role needs a security code before you can go on." } } }
                p {
                    "A security code is a second step at sign-in: six digits from an authenticator \
                     app on your phone (such as Microsoft or Google Authenticator), new every 30 seconds."
                }
                ol {
                    li { "In the app, add an account and choose to enter a key." }
                    li { "Enter this key: " strong { code { (grouped(secret)) } } " (time-based)." }
                    li { "Type the six digits the app shows below." }
                }
                @let address = format!("otpauth://totp/crest:{}?secret={secret}&issuer=crest", c.user.username);
                @if let Some(svg) = qr_svg(&address) {
                    figure class="qr" {
                        (maud::PreEscaped(svg))
                        figcaption { "Or scan this with the app." }
                    }
                }
                p class="hint" { "Or open this address on your phone: " code { (address) } }
                form method="post" action=(SECURITY_CODE_PAGE) novalidate {
                    (csrf_field(&c.session.csrf))
                    input type="hidden" name="secret" value=(secret);
                    input type="hidden" name="action" value="enable";
                    (code_field(error))
                    p { button { "Turn on security codes" } }
                }
            }
            None => {
                p { "Your account asks for a security code at every sign-in." }
                @if required {
                    p { "Your role needs one, so it cannot be turned off. If you lose your phone, ask an administrator to remove it; you then set up a new one." }
                } @else {
                    form method="post" action=(SECURITY_CODE_PAGE) novalidate {
                        (csrf_field(&c.session.csrf))
                        input type="hidden" name="action" value="disable";
                        (code_field(error))
                        p { button class="secondary" { "Turn off security codes" } }
                    }
                }
            }
        }
    };
    page("Security code", c.nav(None), body)
}

/// The set-up address as a QR code an authenticator app can scan, as SVG (drawn by the
/// `qrcode` crate from text crest made, so nothing in it comes from the request).
pub(crate) fn qr_svg(address: &str) -> Option<String> {
    let code = qrcode::QrCode::new(address.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    // The crate writes an XML declaration first, which has no place inside HTML.
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen(
        "<svg",
        "<svg role=\"img\" aria-label=\"QR code of the security code's set-up address\"",
        1,
    ))
}

pub(crate) fn code_field(error: Option<&str>) -> Markup {
    html! {
        div class={ "field" @if error.is_some() { " field-error" } } {
            label for="f-code" { "The six digits your app shows now" }
            @if let Some(e) = error { p class="err" id="e-code" { (e) } }
            input id="f-code" name="code" inputmode="numeric" autocomplete="one-time-code" class="short"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "e-code")];
        }
    }
}

pub(crate) async fn security_code_form(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    let c = crate::app::ctx_any(&app, &headers).await?;
    let role = c.user.role;
    let required = app.db(move |s, _| code_required(s, role)).await?;
    let secret = if c.user.totp_secret.is_empty() {
        let fresh = crest_store::totp::new_secret().map_err(WebError::internal)?;
        let mut pending = app
            .pending_codes
            .lock()
            .map_err(|_| WebError::internal("the pending security codes were poisoned"))?;
        Some(
            pending
                .entry(c.user.username.clone())
                .or_insert(fresh)
                .clone(),
        )
    } else {
        None
    };
    Ok(html_page(security_page(
        &c,
        secret.as_deref(),
        None,
        required,
    )))
}

pub(crate) async fn set_security_code(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<Posted>,
) -> Result<Response, WebError> {
    let c = crate::app::ctx_any(&app, &headers).await?;
    c.check_csrf(Some(&one(&form, "csrf")))?;
    let role = c.user.role;
    let required = app.db(move |s, _| code_required(s, role)).await?;
    let now = crate::app::now_secs().max(0) as u64;
    let (action, code) = (one(&form, "action"), one(&form, "code"));
    let secret = match action.as_str() {
        "enable" => one(&form, "secret"),
        _ => app
            .code_secret(&c.user.username, &c.user.totp_secret)
            .unwrap_or_default(),
    };
    // A code already set up is replaced only by turning it off first, which takes a code
    // from it: someone holding the session but not the phone cannot swap in their own.
    if action == "enable" && !c.user.totp_secret.is_empty() {
        return Err(WebError::BadRequest(
            "You already have a security code. To change it, turn it off first with a code from your app (or ask an administrator to remove it), then set up the new one.".into(),
        ));
    }
    // Guessing codes here is throttled like signing in.
    let keys = proof_keys(&c.user.username);
    crate::app::start_attempt(&app, &keys).await?;
    let (user, s2, c2) = (c.user.username.clone(), secret.clone(), code.clone());
    let right = app
        .db(move |s, _| {
            Ok(crest_store::users::accept_security_code(
                s, &user, &s2, &c2, now,
            )?)
        })
        .await?;
    crate::app::finish_attempt(&app, keys, right).await;
    if !right || (action == "disable" && required) {
        let shown = (action == "enable").then_some(secret.as_str());
        let mut r = html_page(security_page(
            &c,
            shown,
            Some("Those digits are not right: type the six digits your app shows now"),
            required,
        ));
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    }
    let name = c.user.username.clone();
    let mut entry = c.entry("", &format!("security code {action}"), &name);
    entry.detail = String::new();
    if let Ok(mut pending) = app.pending_codes.lock() {
        pending.remove(&name);
    }
    let stored = if action == "enable" {
        app.seal_code_secret(&name, &secret)?
    } else {
        String::new()
    };
    app.db(move |s, _| {
        let Some(mut u) = s.user(&name)? else {
            return Err(WebError::NotFound);
        };
        u.totp_secret = stored;
        s.log(&entry)?;
        s.put_user(&u)?;
        // Tokens made under the old security code stop with it.
        Ok(s.revoke_user_tokens(&name, &crest_store::utc_now())?)
    })
    .await?;
    Ok(Redirect::to("/").into_response())
}
