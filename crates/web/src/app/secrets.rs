//! Security-code secrets at rest (privacy.md, "Access control"): a user's TOTP secret is
//! stored sealed with a key the server holds outside the database (`crest serve --server-key`),
//! so a copy of the database alone cannot produce anyone's codes. Sealing is ChaCha20-Poly1305
//! with the user's name as associated data, so a sealed secret moved to another account does
//! not open. A secret stored in the clear (before a server key was given) still works, and is
//! sealed the next time its user signs in.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};

/// What a sealed secret starts with in the store.
const SEALED: &str = "sealed1:";

/// The server's key for security-code secrets.
pub(crate) struct SecretBox(ChaCha20Poly1305);

impl SecretBox {
    /// A box from 32 secret bytes.
    pub(crate) fn new(key: [u8; 32]) -> SecretBox {
        SecretBox(ChaCha20Poly1305::new(&key.into()))
    }

    /// `secret` sealed for `username`, as stored.
    pub(crate) fn seal(&self, username: &str, secret: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(SealError::NoRandom)?;
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: username.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!("{SEALED}{}", hex::encode(bytes)))
    }

    /// A stored secret opened for `username`; `None` if it does not open (another key, another
    /// user, or altered).
    fn open(&self, username: &str, stored: &str) -> Option<String> {
        let hex = stored.strip_prefix(SEALED)?;
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        let (nonce, sealed) = bytes.split_at_checked(12)?;
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: username.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Whether a stored secret is sealed.
pub(crate) fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED)
}

/// A stored secret as the app uses it: opened with the server's box when sealed, as it is
/// when stored in the clear; `None` when it is sealed and cannot be opened here.
pub(crate) fn open(boxed: Option<&SecretBox>, username: &str, stored: &str) -> Option<String> {
    if is_sealed(stored) {
        boxed?.open(username, stored)
    } else {
        Some(stored.to_string())
    }
}

/// Why a security-code secret could not be sealed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealError {
    /// No random source for the nonce.
    #[error("no random source: {0}")]
    NoRandom(getrandom::Error),
    /// The cipher refused (it does not, for a secret of this size).
    #[error("the security code could not be sealed")]
    Seal,
}

/// A secret as it is to be stored: sealed when the server has a box, else in the clear.
pub(crate) fn seal(
    boxed: Option<&SecretBox>,
    username: &str,
    secret: &str,
) -> Result<String, SealError> {
    match boxed {
        Some(b) => b.seal(username, secret),
        None => Ok(secret.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_user_and_key() {
        let b = SecretBox::new([7; 32]);
        let sealed = b.seal("nurse1", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_eq!(
            open(Some(&b), "nurse1", &sealed).as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
        assert_eq!(
            open(Some(&b), "nurse2", &sealed),
            None,
            "moved to another user"
        );
        assert_eq!(
            open(Some(&SecretBox::new([8; 32])), "nurse1", &sealed),
            None
        );
        assert_eq!(open(None, "nurse1", &sealed), None, "no key, no secret");
        let mut altered = sealed.clone();
        altered.pop();
        altered.push('0');
        assert!(altered == sealed || open(Some(&b), "nurse1", &altered).is_none());
        // Two seals of one secret differ (a fresh nonce each time).
        assert_ne!(b.seal("nurse1", "JBSWY3DPEHPK3PXP").unwrap(), sealed);
        // A secret stored in the clear still works.
        assert_eq!(
            open(Some(&b), "nurse1", "JBSWY3DPEHPK3PXP").as_deref(),
            Some("JBSWY3DPEHPK3PXP")
        );
    }
}
