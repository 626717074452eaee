//! Accounts on the web: administrators add users, set their role and programmes, disable and
//! re-enable them and reset their passwords; everyone changes their own password. The same
//! rules as `crest users` (store::users); every change is in the access log, and a disabled
//! user or a reset password ends that user's sessions at once.

use crate::access::{Admin, SignedIn};
use crate::html::{csrf_field, error_summary, page};
use crate::{html_page, App, WebError};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use crest_store::users::{
    check_password, checked_programmes, checked_regions, hash_password, new_password,
};
use crest_store::{Role, User};
use maud::{html, Markup};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/users", get(list).post(add))
        .route("/admin/users/change", get(user_form).post(change))
        .route("/admin/users/security", axum::routing::post(require_codes))
        .route(
            "/account/password",
            get(password_form).post(change_password),
        )
        .route(
            SECURITY_CODE_PAGE,
            get(security_code_form).post(set_security_code),
        )
}

/// Where a user sets up (or turns off) their security code.
pub(crate) const SECURITY_CODE_PAGE: &str = "/account/security-code";

/// The setting naming the roles that must use a security code (`;`-separated role codes).
const REQUIRED_SETTING: &str = "security_code_required_for";

/// The throttling records for proving who one is on an account page: the user's name (shared
/// with signing in) and the account pages' own.
fn proof_keys(username: &str) -> [String; 2] {
    [format!("name:{username}"), format!("account:{username}")]
}

/// Whether users of `role` must use a security code.
pub(crate) fn code_required(s: &mut dyn crest_store::Store, role: Role) -> Result<bool, WebError> {
    Ok(s.setting(REQUIRED_SETTING)?
        .is_some_and(|v| v.split(';').any(|r| r == role.code())))
}

/// A form as posted: every value of every name, in order.
pub(crate) type Posted = Vec<(String, String)>;

/// The first value posted under `name`, trimmed (empty when there is none).
pub(crate) fn one(form: &Posted, name: &str) -> String {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

fn all(form: &Posted, name: &str) -> Vec<String> {
    form.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The users, the programmes and the roles that must use a security code, for the list.
type Loaded = (Vec<User>, Vec<crest_core::Programme>, Vec<Role>);

async fn load(app: &Arc<App>) -> Result<Loaded, WebError> {
    app.db(|s, _| {
        let required = Role::ALL
            .into_iter()
            .filter_map(|r| code_required(s, r).map(|yes| yes.then_some(r)).transpose())
            .collect::<Result<Vec<Role>, WebError>>()?;
        Ok((s.users()?, s.programmes()?, required))
    })
    .await
}

/// The role choices, programme ticks and region ticks of the add and change forms.
fn role_and_programmes(
    prefix: &str,
    role: Option<Role>,
    ticked: &[String],
    programmes: &[crest_core::Programme],
) -> Markup {
    let mut regions: Vec<&str> = programmes.iter().map(|p| p.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    html! {
        fieldset class="choices" {
            legend { "Role" }
            @for (i, r) in Role::ALL.iter().enumerate() {
                div class="choice" {
                    input type="radio" id={ (prefix) "-role-" (i) } name="role" value=(r.code())
                        checked[role == Some(*r)];
                    label for={ (prefix) "-role-" (i) } { (r.label()) }
                }
            }
        }
        fieldset class="choices" {
            legend { "Programmes" }
            div class="hint" { "For programme staff and leads: the programmes whose patients they may see." }
            // Two hundred programmes are grouped by region, each region folded unless it
            // holds a ticked programme.
            @for region in &regions {
                @let here: Vec<(usize, &crest_core::Programme)> = programmes.iter().enumerate().filter(|(_, p)| p.region == *region).collect();
                @let ticked_here = here.iter().filter(|(_, p)| ticked.contains(&p.code)).count();
                details class="region" open[ticked_here > 0] {
                    summary {
                        (region) " (" (here.len()) " programme" @if here.len() != 1 { "s" }
                        @if ticked_here > 0 { ", " (ticked_here) " ticked" } ")"
                    }
                    @for (i, p) in &here {
                        div class="choice" {
                            input type="checkbox" id={ (prefix) "-p-" (i) } name="programmes" value=(p.code)
                                checked[ticked.contains(&p.code)];
                            label for={ (prefix) "-p-" (i) } { (p.name) " (" (p.code) ")" }
                        }
                    }
                }
            }
        }
        fieldset class="choices" {
            legend { "Regions" }
            div class="hint" { "For commissioners: the regions whose figures they see. Researchers are named on their research projects." }
            @for (i, r) in regions.iter().enumerate() {
                div class="choice" {
                    input type="checkbox" id={ (prefix) "-r-" (i) } name="regions" value=(r)
                        checked[ticked.iter().any(|t| t == r)];
                    label for={ (prefix) "-r-" (i) } { (r) }
                }
            }
        }
    }
}

/// Everyone with an account, searchable and paged; each links to the page that changes them.
fn accounts(users: &[User]) -> crate::table::Table {
    use crate::table::{Cell, Column, Table};
    Table {
        caption: "Accounts".into(),
        rows_are: "accounts".into(),
        columns: vec![
            Column::words("User name", "username"),
            Column::words("Role", "role"),
            Column::words("Programmes or regions", "programmes_or_regions"),
            Column::words("Status", "status"),
        ],
        rows: users
            .iter()
            .map(|u| {
                let rights = if !u.regions.is_empty() {
                    u.regions.join(", ")
                } else if u.programmes.is_empty() {
                    "–".to_string()
                } else {
                    u.programmes.join(", ")
                };
                let status = match (u.disabled, u.totp_secret.is_empty()) {
                    (true, _) => "Disabled",
                    (false, true) => "Active",
                    (false, false) => "Active, security code set up",
                };
                vec![
                    Cell::text(u.username.clone()).link(format!(
                        "/admin/users/change?username={}",
                        crate::html::url_encode(&u.username)
                    )),
                    Cell::coded(u.role.label(), u.role.code()),
                    Cell::text(rights),
                    Cell::text(status).strong(u.disabled),
                ]
            })
            .collect(),
        downloads: None,
        empty: "No accounts yet.".into(),
    }
}

/// One user's page: their role, programmes and regions, and their password, security code
/// and access.
fn user_page(
    c: &crate::Ctx,
    (_, programmes, _): &Loaded,
    u: &User,
    errors: &[(String, String)],
    notice: Option<Markup>,
) -> String {
    let body = html! {
        (error_summary(errors))
        @if let Some(n) = notice { div class="ok" role="status" { (n) } }
        p { a href="/admin/users" { "All accounts" } }
        p {
            (u.role.label())
            @if u.disabled { ". " strong { "Disabled" } } @else { ". Active" }
            @if !u.totp_secret.is_empty() { ", security code set up" }
            "."
        }
        form method="post" action="/admin/users/change" {
            (csrf_field(&c.session.csrf))
            input type="hidden" name="username" value=(u.username);
            div id="f-role" {
                @if let Some((_, e)) = errors.iter().find(|e| e.0 == "role") { p class="err" { (e) } }
                (role_and_programmes("u", Some(u.role), &[u.programmes.clone(), u.regions.clone()].concat(), programmes))
            }
            p { button name="action" value="save" { "Save role, programmes and regions" } }
        }
        h2 { "Password, security code and access" }
        form method="post" action="/admin/users/change" {
            (csrf_field(&c.session.csrf))
            input type="hidden" name="username" value=(u.username);
            p {
                button class="secondary" name="action" value="reset" { "Reset password" } " "
                @if !u.totp_secret.is_empty() {
                    button class="secondary" name="action" value="remove_code" { "Remove security code" } " "
                }
                @if u.disabled {
                    button class="secondary" name="action" value="enable" { "Enable" }
                } @else if u.username != c.user.username {
                    button class="secondary" name="action" value="disable" { "Disable" }
                }
            }
        }
    };
    page(&format!("User {}", u.username), c.nav(None), body)
}

/// `GET /admin/users/change?username=…`: one user's page.
async fn user_form(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let loaded = load(&app).await?;
    let name = q.get("username").map(String::as_str).unwrap_or_default();
    let u = loaded
        .0
        .iter()
        .find(|u| u.username == name)
        .ok_or(WebError::NotFound)?;
    Ok(html_page(user_page(&c, &loaded, u, &[], None)))
}

/// The users page: everyone with an account, and a form to add one.
fn users_page(
    c: &crate::Ctx,
    (users, programmes, required): &Loaded,
    errors: &[(String, String)],
    typed: &Posted,
    notice: Option<Markup>,
    query: &HashMap<String, String>,
) -> String {
    let role = Role::parse(&one(typed, "role"));
    let body = html! {
        (error_summary(errors))
        @if let Some(n) = notice { div class="ok" role="status" { (n) } }
        (accounts(users).render(&crate::table::View::of("accounts", "/admin/users", query)))
        h2 { "Security codes" }
        form method="post" action="/admin/users/security" {
            (csrf_field(&c.session.csrf))
            fieldset class="choices" {
                legend { "Who must use a security code (a second step at sign-in, from an authenticator app)" }
                @for (i, r) in Role::ALL.iter().enumerate() {
                    div class="choice" {
                        input type="checkbox" id={ "req-" (i) } name="roles" value=(r.code())
                            checked[required.contains(r)];
                        label for={ "req-" (i) } { (r.label()) }
                    }
                }
            }
            p { button class="secondary" { "Save" } }
        }
        h2 { "Add a user" }
        form method="post" action="/admin/users" novalidate {
            (csrf_field(&c.session.csrf))
            div class={ "field" @if errors.iter().any(|e| e.0 == "username") { " field-error" } } {
                label for="f-username" { "User name" }
                div class="hint" id="h-username" { "No spaces; at most 64 characters. They sign in with it." }
                @if let Some((_, e)) = errors.iter().find(|e| e.0 == "username") {
                    p class="err" id="e-username" { (e) }
                }
                input id="f-username" name="username" value=(one(typed, "username"))
                    aria-describedby="h-username" autocomplete="off";
            }
            div id="f-role" {
                @if let Some((_, e)) = errors.iter().find(|e| e.0 == "role") { p class="err" { (e) } }
                (role_and_programmes("new", role, &[all(typed, "programmes"), all(typed, "regions")].concat(), programmes))
            }
            p class="hint" { "crest makes a password for the new user and shows it once, here." }
            p { button { "Add user" } }
        }
    };
    page("Users", c.nav(None), body)
}

async fn list(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let loaded = load(&app).await?;
    Ok(html_page(users_page(
        &c,
        &loaded,
        &[],
        &Vec::new(),
        None,
        &q,
    )))
}

async fn add(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Form(form): Form<Posted>,
) -> Result<Response, WebError> {
    c.check_csrf(Some(&one(&form, "csrf")))?;
    let username = one(&form, "username");
    let role = Role::parse(&one(&form, "role"));
    let programmes = all(&form, "programmes");
    let regions = all(&form, "regions");
    let password = new_password();
    let hash = hashed(&app, &password).await?;
    let mut entry = c.entry("", "add user", &username);
    let name = username.clone();
    let outcome = app
        .db(move |s, _| {
            // Every problem of the form in one round.
            let mut errors = Vec::new();
            if name.is_empty() || name.chars().count() > 64 || name.contains(char::is_whitespace) {
                errors.push((
                    "username".to_string(),
                    "Enter a user name with no spaces, at most 64 characters".to_string(),
                ));
            } else if s.user(&name)?.is_some() {
                errors.push((
                    "username".into(),
                    format!("There is already a user called {name}"),
                ));
            }
            let checked = match role {
                None => {
                    errors.push(("role".into(), "Choose the user's role".into()));
                    None
                }
                Some(r) => match checked_programmes(s, r, &programmes)
                    .and_then(|p| Ok((p, checked_regions(s, r, &regions)?)))
                {
                    Ok((p, g)) => Some((r, p, g)),
                    Err(e) => {
                        errors.push(("role".into(), crate::html::capitalised(&e.to_string())));
                        None
                    }
                },
            };
            let (Some((role, programmes, regions)), true) = (checked, errors.is_empty()) else {
                return Ok(Err(errors));
            };
            entry.detail = format!(
                "role {}, programmes {}, regions {}",
                role.code(),
                programmes.join(";"),
                regions.join(";")
            );
            s.log(&entry)?;
            s.put_user(&User {
                username: name.clone(),
                password_hash: hash,
                role,
                programmes,
                disabled: false,
                totp_secret: String::new(),
                regions,
            })?;
            Ok(Ok(()))
        })
        .await?;
    let loaded = load(&app).await?;
    match outcome {
        Ok(()) => Ok(html_page(users_page(
            &c,
            &loaded,
            &[],
            &Vec::new(),
            Some(html! {
                "User " strong { (username) } " added. Their password is "
                strong { code { (password) } } ". Give it to them safely; it is not shown again. \
                 They can change it under \"Change password\" once signed in."
            }),
            &HashMap::new(),
        ))),
        Err(errors) => {
            let mut r = html_page(users_page(
                &c,
                &loaded,
                &errors,
                &form,
                None,
                &HashMap::new(),
            ));
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}

/// A password's Argon2id hash, made off the async threads and a few at a time (each takes
/// 19 MiB), as at sign-in.
async fn hashed(app: &Arc<App>, password: &str) -> Result<String, WebError> {
    let _permit = app.hashing.acquire().await.map_err(WebError::internal)?;
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)
}

/// Saves a user's role and programmes, disables or enables them, or resets their password.
async fn change(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Form(form): Form<Posted>,
) -> Result<Response, WebError> {
    c.check_csrf(Some(&one(&form, "csrf")))?;
    let username = one(&form, "username");
    let action = one(&form, "action");
    if action == "disable" && username == c.user.username {
        return Err(WebError::BadRequest(
            "You cannot disable your own account: ask another administrator.".into(),
        ));
    }
    let password = new_password();
    let hash = if action == "reset" {
        Some(hashed(&app, &password).await?)
    } else {
        None
    };
    let role = Role::parse(&one(&form, "role"));
    let programmes = all(&form, "programmes");
    let regions = all(&form, "regions");
    let mut entry = c.entry("", &format!("{action} user"), &username);
    let name = username.clone();
    let act = action.clone();
    let outcome = app
        .db(move |s, _| {
            let Some(mut u) = s.user(&name)? else {
                return Err(WebError::NotFound);
            };
            match act.as_str() {
                "disable" => u.disabled = true,
                "enable" => u.disabled = false,
                "reset" => u.password_hash = hash.unwrap_or_default(),
                // A lost phone: they sign in with their password and set up a new code.
                "remove_code" => u.totp_secret.clear(),
                "save" => {
                    let Some(role) = role else {
                        return Ok(Err("Choose the user's role".to_string()));
                    };
                    match checked_programmes(s, role, &programmes)
                        .and_then(|p| Ok((p, checked_regions(s, role, &regions)?)))
                    {
                        Ok((p, g)) => {
                            u.role = role;
                            u.programmes = p;
                            u.regions = g;
                        }
                        Err(e) => return Ok(Err(crate::html::capitalised(&e.to_string()))),
                    }
                    entry.detail = format!(
                        "role {}, programmes {}, regions {}",
                        u.role.code(),
                        u.programmes.join(";"),
                        u.regions.join(";")
                    );
                }
                _ => return Err(WebError::BadRequest("Choose what to change.".into())),
            }
            s.log(&entry)?;
            s.put_user(&u)?;
            // A disabled account, a new password or new rights take effect at once.
            s.drop_user_sessions(&name)?;
            // Tokens made under the old password or security code stop with them.
            let revoked = if matches!(act.as_str(), "reset" | "remove_code" | "disable") {
                s.revoke_user_tokens(&name, &crest_store::utc_now())?
            } else {
                0
            };
            if act == "reset" {
                crest_store::users::take_wrong_codes(s, &name)?;
            }
            Ok(Ok(revoked))
        })
        .await?;
    let loaded = load(&app).await?;
    let (errors, notice) = match outcome {
        Err(e) => (vec![("role".to_string(), format!("{username}: {e}"))], None),
        Ok(revoked) => (
            Vec::new(),
            Some(match action.as_str() {
                "reset" => html! {
                    "New password for " strong { (username) } ": " strong { code { (password) } }
                    ". Give it to them safely; it is not shown again."
                    @if revoked > 0 { " Their " (revoked) " API token(s) no longer work." }
                },
                "disable" => html! { strong { (username) } " is disabled and signed out." },
                "enable" => html! { strong { (username) } " can sign in again." },
                "remove_code" => {
                    html! { strong { (username) } "'s security code is removed; they set up a new one after signing in." }
                }
                _ => html! { strong { (username) } "'s role, programmes and regions are saved." },
            }),
        ),
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let u = loaded
        .0
        .iter()
        .find(|u| u.username == username)
        .ok_or(WebError::NotFound)?;
    let mut r = html_page(user_page(&c, &loaded, u, &errors, notice));
    *r.status_mut() = status;
    Ok(r)
}

fn password_page(c: &crate::Ctx, errors: &[(String, String)]) -> String {
    password_page_with(c, errors, 0)
}

/// The password page; `wrong_codes` wrong security codes were given with this user's
/// password since they last signed in.
fn password_page_with(c: &crate::Ctx, errors: &[(String, String)], wrong_codes: u32) -> String {
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

async fn password_form(
    SignedIn(c): SignedIn,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    let wrong = q
        .get("wrong_codes")
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    Ok(html_page(password_page_with(&c, &[], wrong)))
}

async fn change_password(
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
    crate::start_attempt(&app, &keys).await?;
    let stored = c.user.password_hash.clone();
    let (ok, hash) = {
        let _permit = app.hashing.acquire().await.map_err(WebError::internal)?;
        let n = new.clone();
        tokio::task::spawn_blocking(move || {
            let ok = crate::auth::verify_password(&current, &stored);
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
    crate::finish_attempt(&app, keys, ok).await;
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

/// Saves which roles must use a security code.
async fn require_codes(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    Form(form): Form<Posted>,
) -> Result<Response, WebError> {
    c.check_csrf(Some(&one(&form, "csrf")))?;
    let roles: Vec<&str> = Role::ALL
        .iter()
        .map(|r| r.code())
        .filter(|code| all(&form, "roles").iter().any(|r| r == code))
        .collect();
    let value = roles.join(";");
    let mut entry = c.entry("", "require security codes", &value);
    entry.detail = format!("roles: {}", if value.is_empty() { "none" } else { &value });
    app.db(move |s, _| {
        s.log(&entry)?;
        Ok(s.put_setting(REQUIRED_SETTING, &value)?)
    })
    .await?;
    let loaded = load(&app).await?;
    Ok(html_page(users_page(
        &c,
        &loaded,
        &[],
        &Vec::new(),
        Some(html! { "Saved: who must use a security code." }),
        &HashMap::new(),
    )))
}

fn security_page(
    c: &crate::Ctx,
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
fn qr_svg(address: &str) -> Option<String> {
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

fn code_field(error: Option<&str>) -> Markup {
    html! {
        div class={ "field" @if error.is_some() { " field-error" } } {
            label for="f-code" { "The six digits your app shows now" }
            @if let Some(e) = error { p class="err" id="e-code" { (e) } }
            input id="f-code" name="code" inputmode="numeric" autocomplete="one-time-code" class="short"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "e-code")];
        }
    }
}

async fn security_code_form(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, WebError> {
    let c = crate::ctx_any(&app, &headers).await?;
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

async fn set_security_code(
    State(app): State<Arc<App>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<Posted>,
) -> Result<Response, WebError> {
    let c = crate::ctx_any(&app, &headers).await?;
    c.check_csrf(Some(&one(&form, "csrf")))?;
    let role = c.user.role;
    let required = app.db(move |s, _| code_required(s, role)).await?;
    let now = crate::now_secs().max(0) as u64;
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
    crate::start_attempt(&app, &keys).await?;
    let (user, s2, c2) = (c.user.username.clone(), secret.clone(), code.clone());
    let right = app
        .db(move |s, _| {
            Ok(crest_store::users::accept_security_code(
                s, &user, &s2, &c2, now,
            )?)
        })
        .await?;
    crate::finish_attempt(&app, keys, right).await;
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
