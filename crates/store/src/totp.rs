//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP, HMAC-SHA1, 30-second steps,
//! 6 digits): the optional second factor at sign-in, as authenticator apps compute it. Tested
//! against the RFC's published vectors.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP: u64 = 30;

/// The code for `secret` at Unix time `now`, with `digits` digits (6 for people, 8 for the
/// RFC's vectors).
pub fn code_at(secret: &[u8], now: u64, digits: u32) -> String {
    let counter = (now / STEP).to_be_bytes();
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter);
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let binary = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    let code = binary % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// Whether `code` (spaces ignored) is right for `secret` in the current 30-second step. An
/// earlier step's code is refused: a code read over a shoulder is worthless once the app has
/// moved on. (Each step is also accepted only once per user: see `users::accept_security_code`.)
pub fn verify(secret: &[u8], code: &str, now: u64) -> bool {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    // Compared without leaking where they differ.
    use subtle::ConstantTimeEq;
    code_at(secret, now, 6)
        .as_bytes()
        .ct_eq(code.as_bytes())
        .into()
}

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Base32 (RFC 4648, no padding), as authenticator apps take a secret.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The bytes of a base32 secret (spaces and case ignored), or `None` if it is not base32.
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = ALPHABET
            .iter()
            .position(|a| *a as char == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// A new random secret (160 bits, as RFC 4226 recommends), in base32.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 20];
    getrandom::fill(&mut b)?;
    Ok(base32(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 rows (secret "12345678901234567890", 8 digits).
    #[test]
    fn matches_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(secret, time, 8), code, "T = {time}");
        }
    }

    /// RFC 4226, appendix D: HOTP values for counters 0 and 1 (6 digits).
    #[test]
    fn matches_the_rfc_4226_hotp_values() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 0, 6), "755224");
        assert_eq!(code_at(secret, STEP, 6), "287082");
    }

    #[test]
    fn codes_verify_within_one_step_and_base32_round_trips() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let code = code_at(secret, now, 6);
        assert!(verify(secret, &code, now));
        assert!(verify(
            secret,
            &format!("{} {}", &code[..3], &code[3..]),
            now + 25
        ));
        assert!(!verify(secret, &code, now + 120));
        assert!(
            !verify(secret, &code, now + STEP),
            "the previous step's code"
        );
        assert!(!verify(secret, "12345", now));
        // RFC 4648's base32 of "foobar".
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(from_base32("mzxw 6ytb oi").unwrap(), b"foobar");
        assert!(from_base32("not base32!").is_none());
    }
}
