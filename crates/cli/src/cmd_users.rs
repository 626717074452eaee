//! `crest users`: accounts of the web app.

use crate::args::*;
use anyhow::{anyhow, Result};

pub(crate) fn users(db: &str, action: UsersAction) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    match action {
        UsersAction::Add {
            username,
            role,
            programmes,
            regions,
        } => {
            let role = crest_store::Role::parse(&role).ok_or_else(|| {
                anyhow!(
                    "--role {role}: use one of {}",
                    crest_store::Role::ALL.map(|r| r.code()).join(", ")
                )
            })?;
            if role == crest_store::Role::Commissioner && !programmes.is_empty() {
                return Err(anyhow!(
                    "a commissioner is bound to regions: give --region, not --programme"
                ));
            }
            if role.sees_patients() && !regions.is_empty() {
                return Err(anyhow!("programme staff and leads are bound to programmes: give --programme, not --region"));
            }
            let scope = if role == crest_store::Role::Commissioner {
                regions
            } else {
                programmes
            };
            let password = crest_store::users::new_password();
            crest_store::users::add_user(store.as_mut(), &username, role, &scope, &password)
                .map_err(|e| anyhow!(e))?;
            println!(
                "user {username} ({}) added; password: {password}",
                role.code()
            );
        }
        UsersAction::List => {
            for u in store.users()? {
                println!(
                    "{:<20} {:<16} {:<20} {}",
                    u.username,
                    u.role.code(),
                    if u.regions.is_empty() {
                        u.programmes.join(";")
                    } else {
                        u.regions.join(";")
                    },
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UsersAction::Disable { username } => {
            let mut u = store
                .user(&username)?
                .ok_or_else(|| anyhow!("no user {username}"))?;
            u.disabled = true;
            store.put_user(&u)?;
            store.drop_user_sessions(&username)?;
            println!("user {username} disabled");
        }
        UsersAction::ResetPassword { username } => {
            let mut u = store
                .user(&username)?
                .ok_or_else(|| anyhow!("no user {username}"))?;
            let password = crest_store::users::new_password();
            u.password_hash =
                crest_store::users::hash_password(&password).map_err(|e| anyhow!(e))?;
            store.put_user(&u)?;
            store.drop_user_sessions(&username)?;
            println!("user {username}: new password {password}");
        }
        UsersAction::Token {
            username,
            label,
            days,
        } => {
            if !(1..=365).contains(&days) {
                return Err(anyhow!("--days: 1 to 365"));
            }
            store
                .user(&username)?
                .ok_or_else(|| anyhow!("no user {username}"))?;
            let (secret, token) =
                crest_web::new_personal_token(&username, label.trim(), days as i32)
                    .map_err(|e| anyhow!(e))?;
            store.put_user_token(&crest_web::token_hash(&secret), &token)?;
            let mut entry = crate::common::command_line_entry("", "make API token", &token.id);
            entry.detail = format!("for {username}, expires {}", token.expires_at);
            store.log(&entry)?;
            println!(
                "API token for {username}, valid until {} (shown once; keep it secret): {secret}",
                token.expires_at
            );
        }
    }
    Ok(0)
}
