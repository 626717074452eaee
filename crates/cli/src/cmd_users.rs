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
        } => {
            let role = crest_store::Role::parse(&role).ok_or_else(|| {
                anyhow!(
                    "--role {role}: use programme_staff, programme_lead, admin or national_analyst"
                )
            })?;
            let password = crest_store::users::new_password();
            crest_store::users::add_user(store.as_mut(), &username, role, &programmes, &password)
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
                    u.programmes.join(";"),
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
    }
    Ok(0)
}
