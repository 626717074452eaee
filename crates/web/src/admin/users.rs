//! Accounts on the web: administrators add users, set their role and programmes, disable and
//! re-enable them, reset their passwords and choose who must use a security code. The same
//! rules as `crest users` (store::users); every change is in the access log, and a disabled
//! user or a reset password ends that user's sessions at once.

use crate::app::access::Admin;
use crate::app::forms::{all, one, Posted};
use crate::app::security::{code_required, hashed, REQUIRED_SETTING};
use crate::app::{html_page, App, WebError};
use crate::html::{csrf_field, error_summary, page};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crest_store::users::{checked_programmes, checked_regions, new_password};
use crest_store::{Role, User};
use maud::{html, Markup};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/admin/users", get(list).post(add))
        .route("/admin/users/change", get(user_form).post(change))
        .route("/admin/users/security", axum::routing::post(require_codes))
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
fn accounts(users: &[User]) -> crate::app::table::Table {
    use crate::app::table::{Cell, Column, Table};
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
    c: &crate::app::Ctx,
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
    c: &crate::app::Ctx,
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
        (accounts(users).render(&crate::app::table::View::of("accounts", "/admin/users", query)))
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
