//! Passwords (Argon2id), session tokens, CSRF tokens and login rate limiting.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sessions end after this long without a request.
pub const IDLE_TIMEOUT: i64 = 30 * 60;
/// Sessions end this long after login whatever happens.
pub const ABSOLUTE_TIMEOUT: i64 = 12 * 60 * 60;

fn argon2() -> Argon2<'static> {
    // privacy.md: at least 19 MiB and 2 iterations.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password as an Argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A fresh random token: 256 bits, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    // Without randomness there must be no session at all.
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    hex(&b)
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

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a token, hex: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Compares secrets without leaking where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Failed logins per user name: after `MAX_FAILURES` in `WINDOW`, further attempts are refused
/// until the window passes.
#[derive(Default)]
pub struct RateLimit {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);

impl RateLimit {
    /// Whether another attempt for this name is allowed now.
    pub fn allowed(&self, key: &str) -> bool {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(key) {
            Some((n, since)) if since.elapsed() < WINDOW => *n < MAX_FAILURES,
            Some(_) => {
                m.remove(key);
                true
            }
            None => true,
        }
    }

    /// Records a failed attempt.
    pub fn failed(&self, key: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(key.to_string()).or_insert((0, Instant::now()));
        e.0 += 1;
    }

    /// Forgets the failures after a successful login.
    pub fn succeeded(&self, key: &str) {
        let mut m = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash("abc").len(), 64);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn rate_limit_after_five_failures() {
        let r = RateLimit::default();
        for _ in 0..5 {
            assert!(r.allowed("u"));
            r.failed("u");
        }
        assert!(!r.allowed("u"));
        assert!(r.allowed("v"));
        r.succeeded("u");
        assert!(r.allowed("u"));
    }
}
