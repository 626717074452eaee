//! Account security every area needs: who must use a security code and where it is set up,
//! the throttling records for proving who one is, and hashing passwords a few at a time.

use crate::app::{App, WebError};
use crest_store::users::hash_password;
use crest_store::Role;
use std::sync::Arc;

/// Where a user sets up (or turns off) their security code.
pub(crate) const SECURITY_CODE_PAGE: &str = "/account/security-code";

/// The setting naming the roles that must use a security code (`;`-separated role codes).
pub(crate) const REQUIRED_SETTING: &str = "security_code_required_for";

/// The throttling records for proving who one is on an account page: the user's name (shared
/// with signing in) and the account pages' own.
pub(crate) fn proof_keys(username: &str) -> [String; 2] {
    [format!("name:{username}"), format!("account:{username}")]
}

/// Whether users of `role` must use a security code.
pub(crate) fn code_required(s: &mut dyn crest_store::Store, role: Role) -> Result<bool, WebError> {
    Ok(s.setting(REQUIRED_SETTING)?
        .is_some_and(|v| v.split(';').any(|r| r == role.code())))
}

/// A password's Argon2id hash, made off the async threads and a few at a time (each takes
/// 19 MiB), as at sign-in.
pub(crate) async fn hashed(app: &Arc<App>, password: &str) -> Result<String, WebError> {
    let _permit = app.hashing.acquire().await.map_err(WebError::internal)?;
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(WebError::internal)?
        .map_err(WebError::internal)
}
