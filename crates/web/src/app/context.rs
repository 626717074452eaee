//! Who is asking: the signed-in context of a request (session cookie or personal token), CSRF, and the programme and period it asks about.

use super::auth;
use super::error::WebError;
use super::App;
use crate::html::{self};
use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use crest_core::{Date, Programme};
use crest_store::{AccessEntry, Role, Session, Store, User};
use std::sync::Arc;

/// The signed-in user of a request.
pub(crate) struct Ctx {
    pub user: User,
    pub session: Session,
}

impl Ctx {
    /// The programme at `code`, if this user may see its patients; otherwise 404.
    pub fn programme<'a>(
        &self,
        code: &str,
        all: &'a [Programme],
    ) -> Result<&'a Programme, WebError> {
        if !self.user.role.sees_patients() || !self.user.programmes.iter().any(|p| p == code) {
            return Err(WebError::NotFound);
        }
        all.iter()
            .find(|p| p.code == code)
            .ok_or(WebError::NotFound)
    }

    /// Header links, the one to the page being answered marked as current.
    pub fn nav(&self, programme: Option<&str>) -> maud::Markup {
        let role = self.user.role;
        let link = |href: String, words: &str| {
            maud::html! { a href=(href) aria-current=[current(&href)] { (words) } }
        };
        let links = |label: &str, items: Vec<(String, &str)>| {
            let last = items.len().saturating_sub(1);
            maud::html! {
                nav aria-label=(label) {
                    @for (i, (href, words)) in items.into_iter().enumerate() {
                        (link(href, words))
                        @if i < last { " · " }
                    }
                }
            }
        };
        let fixed = |items: &[(&str, &'static str)]| -> Vec<(String, &'static str)> {
            items.iter().map(|(h, w)| (h.to_string(), *w)).collect()
        };
        let programme_links = |p: &str| {
            let mut items = vec![
                (format!("/p/{p}/episodes"), "Patients"),
                (format!("/p/{p}/episodes/new"), "New episode"),
                (format!("/p/{p}/upload"), "Upload"),
                (format!("/p/{p}/dashboard"), "Dashboard"),
                (format!("/p/{p}/profile"), "Profile"),
            ];
            // Links only to what the role may open: building a submission is the lead's.
            if role == Role::ProgrammeLead {
                items.push((format!("/p/{p}/submit"), "Submit"));
            }
            items.push((format!("/p/{p}/export.csv"), "Export CSV"));
            items.push((format!("/p/{p}/export.xlsx"), "Export XLSX"));
            items
        };
        maud::html! {
            @if let Some(p) = programme {
                (links("Programme", programme_links(p)))
            } @else if role == Role::Admin {
                (links("Administration", fixed(&[
                    ("/admin/users", "Users"),
                    ("/admin/national-figures", "National figures"),
                    ("/admin/agreements", "Data sharing agreements"),
                    ("/admin/projects", "Research projects"),
                ])))
            } @else if role == Role::NationalAnalyst {
                (links("National audit", fixed(&[
                    ("/national", "Submissions"),
                    ("/national/dashboard", "Programmes"),
                    ("/national/inequalities", "Inequalities"),
                    ("/national/outliers", "Outliers"),
                    ("/national/quality", "Data quality"),
                    ("/national/report", "Annual report"),
                    ("/aggregates", "Aggregates"),
                ])))
            } @else if role == Role::Commissioner {
                (links("Planning", fixed(&[
                    ("/region", "Your region"),
                    ("/aggregates", "Aggregates"),
                    ("/api", "API"),
                ])))
            } @else if role == Role::Researcher {
                (links("Research", fixed(&[
                    ("/research", "Your projects"),
                    ("/aggregates", "Aggregates"),
                    ("/api", "API"),
                ])))
            }
            // The account's links fold under the user's name, so on a phone the header stays
            // a few lines high.
            details class="account" {
                summary { (self.user.username) " (" (role.label()) ")" }
                div {
                    (link("/account/password".into(), "Change password"))
                    (link("/account/tokens".into(), "API tokens"))
                    (link(crate::app::security::SECURITY_CODE_PAGE.into(), "Security code"))
                    form method="post" action="/logout" style="display:inline" {
                        (html::csrf_field(&self.session.csrf))
                        button { "Sign out" }
                    }
                }
            }
        }
    }

    /// Checks a form's CSRF token.
    pub fn check_csrf(&self, sent: Option<&str>) -> Result<(), WebError> {
        match sent {
            Some(t) if auth::same(t, &self.session.csrf) => Ok(()),
            _ => Err(WebError::BadRequest(
                "This form has expired. Go back, reload the page and try again.".into(),
            )),
        }
    }

    /// An access-log entry by this user.
    pub fn entry(&self, programme: &str, action: &str, target: &str) -> AccessEntry {
        AccessEntry {
            at: crest_store::utc_now(),
            username: self.user.username.clone(),
            role: self.user.role.code().into(),
            programme: programme.into(),
            action: action.into(),
            target: target.into(),
            outcome: "ok".into(),
            detail: String::new(),
        }
    }
}

pub(crate) fn now_secs() -> i64 {
    crest_core::date::unix_now()
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

pub(crate) const SESSION_COOKIE: &str = "crest_session";
pub(crate) const LOGIN_COOKIE: &str = "crest_login";

/// A cookie crest sets: HttpOnly, SameSite=Strict, and Secure when served over TLS (behind a
/// proxy that terminates it: `crest serve --behind-proxy`).
pub(crate) fn set_cookie(
    app: &App,
    name: &str,
    value: &str,
    max_age: i64,
) -> (header::HeaderName, String) {
    let secure = if app.behind_proxy.load(std::sync::atomic::Ordering::Relaxed) {
        "; Secure"
    } else {
        ""
    };
    (
        header::SET_COOKIE,
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"),
    )
}

/// The signed-in user of a page or form, or `WebError::Login`: only the session cookie
/// counts here. A personal API token drives the JSON API and nothing else.
pub(crate) async fn ctx(app: &Arc<App>, headers: &HeaderMap) -> Result<Ctx, WebError> {
    let cred = credentials(headers, false)?;
    app.db(move |s, _| cred.user(s)).await
}

/// The header an API call made with the session cookie must carry, holding the session's
/// CSRF token (a page on another site can neither read that token nor set the header).
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The signed-in user of a request, by where it goes: on the JSON API (`/api/v1/…`) a
/// personal API token or the session cookie, where a call that changes something with the
/// cookie must also carry the session's CSRF token in `X-CSRF-Token`; anywhere else the
/// session cookie only.
pub(crate) async fn ctx_of(
    app: &Arc<App>,
    parts: &axum::http::request::Parts,
) -> Result<Ctx, WebError> {
    let (cred, check) = request_credentials(parts)?;
    let c = app.db(move |s, _| cred.user(s)).await?;
    check.check(&c)?;
    Ok(c)
}

/// What an API call made with the session cookie must also send: the session's CSRF token
/// in `X-CSRF-Token` (`None` when the request needs no such proof).
pub(crate) struct CsrfHeader(Option<String>);

impl CsrfHeader {
    /// Whether the signed-in user's request passes.
    pub(crate) fn check(&self, c: &Ctx) -> Result<(), WebError> {
        match &self.0 {
            None => Ok(()),
            Some(sent) if !sent.is_empty() && auth::same(sent, &c.session.csrf) => Ok(()),
            Some(_) => Err(WebError::Forbidden(
                "An API call made with the session cookie must send the session's CSRF token in the X-CSRF-Token header; programs should use a personal API token instead.".into(),
            )),
        }
    }
}

/// A request's credentials by where it goes (see [`ctx_of`]), and the CSRF proof its
/// signed-in user must then pass.
pub(crate) fn request_credentials(
    parts: &axum::http::request::Parts,
) -> Result<(Credentials, CsrfHeader), WebError> {
    let api = parts.uri.path().starts_with("/api/v1/");
    let cred = credentials(&parts.headers, api)?;
    let by_cookie = matches!(cred, Credentials::Session(_));
    let changes = !matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let proof = (api && by_cookie && changes).then(|| {
        parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    });
    Ok((cred, CsrfHeader(proof)))
}

/// The prefix of personal API tokens (programme systems' submission tokens have none).
pub(crate) const PERSONAL_TOKEN_PREFIX: &str = "crest_pat_";

/// How a request says who it is.
pub(crate) enum Credentials {
    /// The session cookie's token.
    Session(String),
    /// A personal API token (`Authorization: Bearer crest_pat_…`).
    Personal(String),
}

impl Credentials {
    /// The signed-in user these credentials stand for.
    pub(crate) fn user(&self, s: &mut dyn Store) -> Result<Ctx, WebError> {
        match self {
            Credentials::Session(token) => signed_in_fully(s, token),
            Credentials::Personal(token) => token_user(s, token),
        }
    }
}

/// A request's session cookie or (where `token_allowed`: the JSON API) personal API token;
/// `WebError::Login` when it has neither. A personal token, when one is sent where it may be,
/// is what counts: a program sending one means it.
pub(crate) fn credentials(
    headers: &HeaderMap,
    token_allowed: bool,
) -> Result<Credentials, WebError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| t.starts_with(PERSONAL_TOKEN_PREFIX));
    if let Some(t) = token {
        if token_allowed {
            return Ok(Credentials::Personal(t.to_string()));
        }
    }
    cookie(headers, SESSION_COOKIE)
        .map(Credentials::Session)
        .ok_or(WebError::Login)
}

/// The user of a live personal API token: it acts with their role and programmes or regions
/// as they are now, and stops with their account. There is no cookie, so there is nothing to
/// forge across sites: its session carries no CSRF token to check.
pub(crate) fn token_user(s: &mut dyn Store, token: &str) -> Result<Ctx, WebError> {
    let hash = auth::token_hash(token);
    let t = s.user_token(&hash)?.ok_or(WebError::Login)?;
    if !t.live(&crest_store::utc_now()) {
        return Err(WebError::Login);
    }
    let user = s.user(&t.username)?.ok_or(WebError::Login)?;
    if user.disabled {
        return Err(WebError::Login);
    }
    let now = now_secs();
    Ok(Ctx {
        session: Session {
            token_hash: hash,
            username: user.username.clone(),
            csrf: String::new(),
            created: now,
            seen: now,
        },
        user,
    })
}

/// A live session whose user has what their role needs: a role that must use a security code
/// reaches nothing else until one is set up.
pub(crate) fn signed_in_fully(s: &mut dyn Store, token: &str) -> Result<Ctx, WebError> {
    let c = signed_in(s, token)?;
    if c.user.totp_secret.is_empty() && crate::app::security::code_required(s, c.user.role)? {
        return Err(WebError::SecurityCodeNeeded);
    }
    Ok(c)
}

/// The signed-in user, whether or not their role's security code is set up yet (for the page
/// that sets it up, and for signing out).
pub(crate) async fn ctx_any(app: &Arc<App>, headers: &HeaderMap) -> Result<Ctx, WebError> {
    let token = cookie(headers, SESSION_COOKIE).ok_or(WebError::Login)?;
    app.db(move |s, _| signed_in(s, &token)).await
}

/// Checks a session token: live, within its time-outs, and its user still enabled.
pub(crate) fn signed_in(s: &mut dyn Store, token: &str) -> Result<Ctx, WebError> {
    let hash = auth::token_hash(token);
    let session = s.session(&hash)?.ok_or(WebError::Login)?;
    let now = now_secs();
    if now - session.seen > auth::IDLE_TIMEOUT || now - session.created > auth::ABSOLUTE_TIMEOUT {
        s.drop_session(&hash)?;
        return Err(WebError::Login);
    }
    let user = s.user(&session.username)?.ok_or(WebError::Login)?;
    if user.disabled {
        s.drop_session(&hash)?;
        return Err(WebError::Login);
    }
    if now - session.seen > 60 {
        s.touch_session(&hash, now)?;
    }
    Ok(Ctx { user, session })
}

/// Programme code from the URL, and the programmes list, for scoped handlers.
pub(crate) async fn scoped_of(
    app: &Arc<App>,
    parts: &axum::http::request::Parts,
    code: &str,
) -> Result<(Ctx, Programme), WebError> {
    let (cred, check) = request_credentials(parts)?;
    let code = code.to_string();
    // One trip to the store for the session and the programme.
    let (c, p) = app
        .db(move |s, _| {
            let c = cred.user(s)?;
            let all = s.programmes()?;
            let p = c.programme(&code, &all)?.clone();
            Ok((c, p))
        })
        .await?;
    check.check(&c)?;
    Ok((c, p))
}

/// A reporting period typed into a page's `from`/`to` fields: either may be empty (the last
/// complete financial year's end fills it); a bad date or a reversed period is a clear 400.
pub(crate) fn requested_period(
    app: &App,
    from: &str,
    to: &str,
) -> Result<crest_core::Period, WebError> {
    let default = crest_core::Period::last_financial_year((app.today)());
    let parse = |s: &str, d: Date| {
        if s.trim().is_empty() {
            Ok(d)
        } else {
            Date::parse(s.trim())
                .map_err(|e| WebError::BadRequest(format!("That period is not usable: {e}")))
        }
    };
    let period = crest_core::Period {
        from: parse(from, default.from)?,
        to: parse(to, default.to)?,
    };
    if period.to < period.from {
        return Err(WebError::BadRequest(
            "The end of the period is before its start.".into(),
        ));
    }
    Ok(period)
}

/// The path parameter type of programme pages.
pub(crate) type Code = UrlPath<String>;

tokio::task_local! {
    /// The path of the page being answered, so the navigation can mark it.
    static CURRENT_PAGE: String;
}

/// Runs a request with its path known to [`Ctx::nav`], which marks the link to the page the
/// user is on (`aria-current="page"`) without every handler passing its own address.
pub(crate) async fn current_page(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_string();
    CURRENT_PAGE.scope(path, next.run(req)).await
}

/// `Some("page")` when `href` is the page being answered.
pub(crate) fn current(href: &str) -> Option<&'static str> {
    CURRENT_PAGE
        .try_with(|p| p == href)
        .unwrap_or(false)
        .then_some("page")
}
