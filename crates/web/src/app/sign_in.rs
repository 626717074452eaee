//! Signing in and out: the home page, the sign-in form with throttling, and signing out.

use super::access::SignedIn;
use super::context::{cookie, ctx_any, now_secs, set_cookie, LOGIN_COOKIE, SESSION_COOKIE};
use super::error::WebError;
use super::respond::html_page;
use super::App;
use super::{auth, secrets};
use crate::html::{self, page};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use crest_store::{AccessEntry, Role, Session, User};
use std::collections::HashMap;
use std::sync::Arc;

/// Signing in and out, and the home page it leads to.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

pub(crate) async fn home(SignedIn(c): SignedIn) -> Result<Response, WebError> {
    if let (true, [only]) = (c.user.role.sees_patients(), c.user.programmes.as_slice()) {
        return Ok(Redirect::to(&format!("/p/{only}/episodes")).into_response());
    }
    match c.user.role {
        Role::NationalAnalyst => return Ok(Redirect::to("/national").into_response()),
        Role::Commissioner => return Ok(Redirect::to("/region").into_response()),
        Role::Researcher => return Ok(Redirect::to("/research").into_response()),
        _ => {}
    }
    let body = maud::html! {
        @if c.user.role.sees_patients() {
            p { "Your programmes:" }
            ul {
                @for p in &c.user.programmes {
                    li { a href={ "/p/" (p) "/episodes" } { (p) } }
                }
            }
        } @else {
            p {
                "Administrators record the " a href="/admin/agreements" { "data sharing agreements" }
                " that allow national submissions, manage "
                a href="/admin/users" { "users" } " and " a href="/admin/projects" { "research projects" }
                ", and see no patient data."
            }
            p {
                a href="/template.csv" { "CSV template" } " · "
                a href="/template.xlsx" { "XLSX template" }
            }
        }
    };
    Ok(html_page(page("crest", c.nav(None), body)))
}

pub(crate) fn login_form(csrf: &str, message: &str, username: &str, notice: &str) -> String {
    let body = maud::html! {
        @if !message.is_empty() {
            div class="summary" role="alert" { p { (message) } }
        }
        @if !notice.is_empty() {
            div class="ok" role="status" { p { (notice) } }
        }
        form method="post" action="/login" {
            (html::csrf_field(csrf))
            label for="username" { "User name" }
            input id="username" name="username" autocomplete="username" value=(username) required;
            label for="password" { "Password" }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            label for="code" { "Security code" }
            div class="hint" id="code-hint" { "Only if you have set one up: the 6 digits your authenticator app shows now." }
            input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" class="short"
                aria-describedby="code-hint";
            p { button { "Sign in" } }
        }
    };
    page("Sign in", maud::html! {}, body)
}

pub(crate) async fn login_page(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    // Login CSRF: the form carries the same random value as a Strict cookie.
    let t = auth::token();
    let notice = if q.contains_key("changed") && q.contains_key("tokens_revoked") {
        "Your password is changed, and your API tokens no longer work (make new ones if you need them). Sign in with your new password."
    } else if q.contains_key("changed") {
        "Your password is changed. Sign in with your new password."
    } else {
        ""
    };
    let mut r = html_page(login_form(&t, "", "", notice));
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&app, LOGIN_COOKIE, &t, 3600).1) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) csrf: String,
    /// The security code, for users who have set one up.
    #[serde(default)]
    pub(crate) code: String,
}

/// The client's address for login throttling: the peer, or with `--behind-proxy` the address
/// the proxy appended last to `X-Forwarded-For` (the only part a client cannot forge).
pub(crate) fn client_address(
    app: &App,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> String {
    if app.behind_proxy.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|v| !v.is_empty())
        {
            return auth::throttle_address(&last.chars().take(64).collect::<String>());
        }
    }
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(
            || "unknown".to_string(),
            |c| auth::throttle_address(&c.0.ip().to_string()),
        )
}

/// Starts an attempt to prove who one is (a password or a security code) on the throttling
/// records `keys` (a name's, then an address's): refused with the wait when too many have
/// failed lately; otherwise counted now, before the slow check, so parallel guesses cannot
/// all slip through. [`finish_attempt`] records how it ended.
pub(crate) async fn start_attempt(app: &Arc<App>, keys: &[String; 2]) -> Result<(), WebError> {
    // A wait only because other attempts are under way is a queue: the attempt waits its turn
    // instead of being refused, so forty staff signing in at once from one hospital all get
    // in, while parallel guesses go no faster than guesses in turn. A wait earned by failures
    // is refused, saying how long.
    for _ in 0..QUEUE_TURNS {
        let keys = keys.clone();
        let (wait, earned) = app
            .db(move |s, _| {
                let (mut wait, mut earned) = (0, 0);
                s.sign_in_limits(&[&keys[0], &keys[1]], &mut |limits| {
                    let now = auth::now_ms();
                    let both = |l: &[crest_store::SignInLimit]| {
                        auth::wait_ms(&l[0], auth::NAME, now).max(auth::wait_ms(
                            &l[1],
                            auth::ADDRESS,
                            now,
                        ))
                    };
                    wait = both(limits);
                    let idle: Vec<crest_store::SignInLimit> = limits
                        .iter()
                        .map(|l| crest_store::SignInLimit {
                            in_flight: 0,
                            ..l.clone()
                        })
                        .collect();
                    earned = both(&idle);
                    if wait > 0 {
                        return false;
                    }
                    for l in limits.iter_mut() {
                        auth::start(l, now);
                    }
                    true
                })?;
                Ok((wait, earned))
            })
            .await?;
        match (wait, earned) {
            (0, _) => return Ok(()),
            (w, 0) => {
                tokio::time::sleep(std::time::Duration::from_millis(w.min(1000) as u64)).await
            }
            (w, e) => {
                app.metrics.sign_in_refusals.inc();
                return Err(WebError::TooMany(((w.max(e) + 999) / 1000) as u64));
            }
        }
    }
    Err(WebError::TooMany(1))
}

/// How many times an attempt waits its turn (a second at most each) before it is refused.
pub(crate) const QUEUE_TURNS: usize = 30;

/// Records how a sign-in attempt ended on its name's and address's throttling records: success
/// clears the name's failures (the address keeps its own, so one good account does not unlock
/// guessing at others). Best effort: a failure here must not hide the sign-in's own answer.
pub(crate) async fn finish_attempt(app: &Arc<App>, keys: [String; 2], ok: bool) {
    if !ok {
        app.metrics.sign_in_refusals.inc();
    }
    let _ = app
        .db(move |s, _| {
            s.sign_in_limits(&[&keys[0], &keys[1]], &mut |limits| {
                let now = auth::now_ms();
                auth::finish(&mut limits[0], ok, now);
                if ok {
                    limits[1].in_flight = (limits[1].in_flight - 1).max(0);
                } else {
                    auth::finish(&mut limits[1], false, now);
                }
                true
            })?;
            Ok(())
        })
        .await;
}

pub(crate) async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let pre = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if pre.is_empty() || !auth::same(&pre, &f.csrf) {
        return Err(WebError::BadRequest(
            "The sign-in form expired. Reload the page and try again.".into(),
        ));
    }
    let name = f.username.trim().to_string();
    let address = client_address(&app, &headers, &extensions);
    // Throttling records live in the store, shared by every server. A name is cut to the
    // longest a user name can be, so a huge form cannot make a huge key.
    let keys = [
        format!("name:{}", name.chars().take(64).collect::<String>()),
        format!("addr:{address}"),
    ];
    start_attempt(&app, &keys).await?;
    let attempt = keys;
    let name2 = name.clone();
    let user = app.db(move |s, _| Ok(s.user(&name2)?)).await;
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            finish_attempt(&app, attempt, false).await;
            return Err(e);
        }
    };
    // Verify even for unknown users so timing does not reveal who exists. Hashes run a few at
    // a time (each takes 19 MiB); the rest queue for a permit rather than fail.
    let hash = user.as_ref().map_or(
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .to_string(),
        |u| u.password_hash.clone(),
    );
    let ok = {
        let _permit = app.hashing.acquire().await.map_err(WebError::internal)?;
        let password = f.password;
        tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
            .await
            .map_err(WebError::internal)?
    };
    let name2 = name.clone();
    let code = f.code.clone();
    let app2 = app.clone();
    let outcome = app
        .db(move |s, _| {
            let app = app2;
            let mut entry = AccessEntry {
                at: crest_store::utc_now(),
                username: name2.clone(),
                action: "login".into(),
                outcome: "failed".into(),
                ..Default::default()
            };
            // A user with a security code must give it as well: a wrong or missing code
            // fails the sign-in like a wrong password (and counts towards throttling).
            // Each code is accepted once (see `accept_security_code`).
            let code_ok = |s: &mut dyn crest_store::Store, u: &User| {
                if u.totp_secret.is_empty() {
                    return Ok::<bool, WebError>(true);
                }
                // A sealed secret this server cannot open fails the sign-in (its log says why).
                let Some(secret) = app.code_secret(&u.username, &u.totp_secret) else {
                    tracing::error!(user = %u.username, "a security code is sealed with another server key");
                    return Ok(false);
                };
                let right = crest_store::users::accept_security_code(
                    s,
                    &u.username,
                    &secret,
                    &code,
                    now_secs().max(0) as u64,
                )?;
                // A secret stored in the clear before the server had a key is sealed now.
                if right && !secrets::is_sealed(&u.totp_secret) {
                    let sealed = app.seal_code_secret(&u.username, &secret)?;
                    if sealed != u.totp_secret {
                        let mut sealed_user = u.clone();
                        sealed_user.totp_secret = sealed;
                        s.put_user(&sealed_user)?;
                    }
                }
                Ok(right)
            };
            let right = match &user {
                Some(u) if ok && !u.disabled => code_ok(s, u)?,
                _ => false,
            };
            match user {
                Some(mut u) if ok && !u.disabled && !right => {
                    entry.detail = "security code not right".into();
                    // Whoever keeps giving the right password with wrong codes knows the
                    // password: after too many, it stops working until an administrator
                    // resets it.
                    let n = crest_store::users::record_wrong_code(s, &u.username)?;
                    if n >= crest_store::users::MAX_WRONG_CODES {
                        u.password_hash.clear();
                        s.put_user(&u)?;
                        s.drop_user_sessions(&u.username)?;
                        s.revoke_user_tokens(&u.username, &crest_store::utc_now())?;
                        entry.detail = format!(
                            "security code not right, {n} times in a row: the password no longer works until an administrator resets it"
                        );
                    }
                    s.log(&entry)?;
                    Ok(None)
                }
                Some(u) if ok && !u.disabled => {
                    let token = auth::token();
                    let now = now_secs();
                    s.put_session(&Session {
                        token_hash: auth::token_hash(&token),
                        username: u.username.clone(),
                        csrf: auth::token(),
                        created: now,
                        seen: now,
                    })?;
                    entry.role = u.role.code().into();
                    entry.outcome = "ok".into();
                    s.log(&entry)?;
                    let wrong = crest_store::users::take_wrong_codes(s, &u.username)?;
                    Ok(Some((token, wrong)))
                }
                _ => {
                    s.log(&entry)?;
                    Ok(None)
                }
            }
        })
        .await;
    let outcome = match outcome {
        Ok(o) => {
            finish_attempt(&app, attempt, o.is_some()).await;
            o
        }
        Err(e) => {
            finish_attempt(&app, attempt, false).await;
            return Err(e);
        }
    };
    let Some((token, wrong_codes)) = outcome else {
        let t = auth::token();
        let mut r = html_page(login_form(
            &t,
            "The user name, password or security code is not right, or the account is disabled.",
            &name,
            "",
        ));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        if let Ok(v) = HeaderValue::from_str(&set_cookie(&app, LOGIN_COOKIE, &t, 3600).1) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        return Ok(r);
    };
    // A new token at every login: a session id planted before login is worthless. Someone
    // who typed the password with wrong security codes meanwhile is told, where they can
    // change it.
    let to = if wrong_codes > 0 {
        format!("/account/password?wrong_codes={wrong_codes}")
    } else {
        "/".to_string()
    };
    let mut r = Redirect::to(&to).into_response();
    for (k, v) in [
        set_cookie(&app, SESSION_COOKIE, &token, auth::ABSOLUTE_TIMEOUT),
        set_cookie(&app, LOGIN_COOKIE, "", 0),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().append(k, v);
        }
    }
    Ok(r)
}

#[derive(serde::Deserialize)]
pub(crate) struct CsrfForm {
    pub(crate) csrf: Option<String>,
}

pub(crate) async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    let c = ctx_any(&app, &headers).await?;
    c.check_csrf(f.csrf.as_deref())?;
    let hash = c.session.token_hash.clone();
    app.db(move |s, _| Ok(s.drop_session(&hash)?)).await?;
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&app, SESSION_COOKIE, "", 0).1) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}
