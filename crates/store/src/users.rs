//! User accounts: adding a user with checked name, role and programmes, and passwords
//! (Argon2id hashes, privacy.md: at least 19 MiB and 2 iterations; generated passwords of about
//! 80 bits). Used by `crest users`, the demo and the web app's sign-in.

use crate::{Role, Store, StoreError, User};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Why a user could not be added.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is empty, has spaces or is too long.
    #[error("'{0}' is not a usable user name (no spaces, at most 64 characters)")]
    BadName(String),
    /// The password is too short.
    #[error("passwords must have at least 10 characters")]
    ShortPassword,
    /// A programme role without a programme.
    #[error("a {0} account needs at least one programme")]
    NeedsProgramme(&'static str),
    /// A commissioner without a region.
    #[error("a commissioner account needs at least one region")]
    NeedsRegion,
    /// A region no registered programme is in.
    #[error("no registered programme is in the region {0}; check its spelling")]
    UnknownRegion(String),
    /// A programme that is not registered.
    #[error("programme {0} is not registered in crest; register it first")]
    UnknownProgramme(String),
    /// No random source or the hash failed.
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn argon2() -> Argon2<'static> {
    // privacy.md: at least 19 MiB and 2 iterations.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password as an Argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| UserError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| UserError::Hash(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Whether `password` matches a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A readable random password for new users (about 80 bits).
pub fn new_password() -> String {
    const WORDS: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b.iter()
        .map(|x| WORDS[usize::from(*x) % WORDS.len()] as char)
        .collect()
}

/// Whether `code` is right for the user's security code (`secret`, base32) now, and its
/// 30-second step not used by them before: each step is accepted once per user, so a code
/// sent twice (or seen and replayed within its step) is refused. The last accepted step is
/// kept in the store's settings, under the user's name.
pub fn accept_security_code(
    s: &mut dyn Store,
    username: &str,
    secret: &str,
    code: &str,
    now: u64,
) -> Result<bool, StoreError> {
    let Some(bytes) = crate::totp::from_base32(secret).filter(|b| b.len() >= 10) else {
        return Ok(false);
    };
    if !crate::totp::verify(&bytes, code, now) {
        return Ok(false);
    }
    let step = now / crate::totp::STEP;
    let key = format!("security_code_step:{username}");
    let last = s
        .setting(&key)?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if step <= last {
        return Ok(false);
    }
    s.put_setting(&key, &step.to_string())?;
    Ok(true)
}

/// Wrong security codes in a row, given with the right password, after which the password
/// stops working until an administrator resets it (whoever typed them knows the password).
pub const MAX_WRONG_CODES: u32 = 10;

fn wrong_codes_key(username: &str) -> String {
    format!("security_code_wrong:{username}")
}

/// Counts a wrong security code given with the right password; how many in a row now.
pub fn record_wrong_code(s: &mut dyn Store, username: &str) -> Result<u32, StoreError> {
    let key = wrong_codes_key(username);
    let n = s
        .setting(&key)?
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
        .saturating_add(1);
    s.put_setting(&key, &n.to_string())?;
    Ok(n)
}

/// How many wrong security codes were given with the right password since the last sign-in
/// (or reset), counting from zero again.
pub fn take_wrong_codes(s: &mut dyn Store, username: &str) -> Result<u32, StoreError> {
    let key = wrong_codes_key(username);
    let n = s
        .setting(&key)?
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    if n > 0 {
        s.put_setting(&key, "0")?;
    }
    Ok(n)
}

/// Adds a user (the `crest users add` command and the demo). `scope` is the programmes of a
/// programme role, or the regions of a commissioner.
pub fn add_user(
    store: &mut dyn Store,
    username: &str,
    role: Role,
    scope: &[String],
    password: &str,
) -> Result<(), UserError> {
    let username = username.trim();
    if username.is_empty() || username.len() > 64 || username.contains(char::is_whitespace) {
        return Err(UserError::BadName(username.to_string()));
    }
    check_password(password)?;
    let programmes = checked_programmes(store, role, scope)?;
    let regions = checked_regions(store, role, scope)?;
    store
        .put_user(&User {
            username: username.to_string(),
            password_hash: hash_password(password)?,
            role,
            programmes,
            disabled: false,
            totp_secret: String::new(),
            regions,
        })
        .map_err(UserError::from)
}

/// Whether a new password is long enough (at least 10 characters).
pub fn check_password(password: &str) -> Result<(), UserError> {
    if password.chars().count() < 10 {
        return Err(UserError::ShortPassword);
    }
    Ok(())
}

/// The programmes a user of `role` is bound to: registered ones, at least one for a role that
/// sees patients, none for any other role.
pub fn checked_programmes(
    store: &mut dyn Store,
    role: Role,
    programmes: &[String],
) -> Result<Vec<String>, UserError> {
    if !role.sees_patients() {
        return Ok(Vec::new());
    }
    if programmes.is_empty() {
        return Err(UserError::NeedsProgramme(role.code()));
    }
    let known = store.programmes()?;
    for p in programmes {
        if !known.iter().any(|k| &k.code == p) {
            return Err(UserError::UnknownProgramme(p.clone()));
        }
    }
    Ok(programmes.to_vec())
}

/// The regions a user of `role` is bound to: for a commissioner at least one, each the region
/// of a registered programme (names as registered, whatever case was typed); none for any other
/// role.
pub fn checked_regions(
    store: &mut dyn Store,
    role: Role,
    regions: &[String],
) -> Result<Vec<String>, UserError> {
    if role != Role::Commissioner {
        return Ok(Vec::new());
    }
    if regions.iter().all(|r| r.trim().is_empty()) {
        return Err(UserError::NeedsRegion);
    }
    let known: Vec<String> = store.programmes()?.into_iter().map(|p| p.region).collect();
    let mut out = Vec::new();
    for r in regions.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        match known.iter().find(|k| k.eq_ignore_ascii_case(r)) {
            Some(k) if !out.contains(k) => out.push(k.clone()),
            Some(_) => {}
            None => return Err(UserError::UnknownRegion(r.to_string())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert_ne!(
            h,
            hash_password("correct horse").unwrap_or_default(),
            "salted"
        );
        assert!(new_password().len() >= 16);
    }
}
