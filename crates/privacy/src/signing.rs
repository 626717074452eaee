//! Programme signing keys (privacy.md, "Submission" step 6): every programme holds the shared
//! submission key, so the pseudonyms alone cannot prove who built a file. Each programme
//! therefore signs its submission's manifest (which carries the payload's SHA-256) with its own
//! Ed25519 key; the national store holds each programme's public keys, with a validity and a
//! revocation, and refuses a file whose signature does not verify against the key of the
//! programme its manifest names.
//!
//! A signed manifest line is the unsigned manifest with one last member,
//! `"signature":"<128 hex digits>"`, added before its closing brace; the signature covers the
//! unsigned manifest's exact bytes, so nothing has to be re-serialised to check it.

use crest_core::Invalid;
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// First line of a signing key file.
const SIGNING_FILE_HEADER: &str = "crest-signing-key v1";

/// The text that starts a public key: `ed25519:` and 64 hex digits.
const PUBLIC_PREFIX: &str = "ed25519:";

/// The member a signed manifest ends with.
const SIGNATURE_MEMBER: &[u8] = b",\"signature\":\"";

/// A programme's private signing key. Never shown by `Debug`.
#[derive(Clone)]
pub struct SigningKey {
    programme: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({}, {}, secret hidden)",
            self.programme,
            self.public_key().id()
        )
    }
}

/// A programme's public key, as the national store registers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads `ed25519:` followed by 64 hexadecimal digits.
    pub fn parse(text: &str) -> Result<PublicKey, Invalid> {
        let digits = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            Invalid(format!(
                "a public signing key starts with '{PUBLIC_PREFIX}' (as `crest keys new --signing` prints it)"
            ))
        })?;
        let bytes: [u8; 32] = unhex(digits)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                Invalid("a public signing key has 64 hexadecimal digits after 'ed25519:'".into())
            })?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| Invalid("that is not a valid Ed25519 public key".into()))
    }

    /// The key as text: `ed25519:` and 64 hex digits.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", hex::encode(self.0.as_bytes()))
    }

    /// A short public id for the key (`sig-` and 16 hex digits of its SHA-256).
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"crest signing key id\0");
        h.update(self.0.as_bytes());
        format!("sig-{}", &hex::encode(h.finalize())[..16])
    }

    /// Whether `signature` (128 hex digits) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Some(bytes) = unhex(signature).and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        self.0.verify_strict(message, &sig).is_ok()
    }
}

impl SigningKey {
    /// A programme's key from 32 random bytes (the caller supplies the randomness).
    pub fn from_secret(programme: &str, secret: [u8; 32]) -> SigningKey {
        SigningKey {
            programme: programme.to_string(),
            key: ed25519_dalek::SigningKey::from_bytes(&secret),
        }
    }

    /// The programme this key signs for.
    pub fn programme(&self) -> &str {
        &self.programme
    }

    /// The public key to register nationally.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// The key file's text: a header, the programme, the public key and the secret in hex.
    pub fn to_file_text(&self) -> String {
        format!(
            "{SIGNING_FILE_HEADER}\nprogramme: {}\npublic: {}\nsecret: {}\n",
            self.programme,
            self.public_key().to_text(),
            hex::encode(self.key.as_bytes())
        )
    }

    /// Reads a signing key file's text. Errors never repeat the secret.
    pub fn parse(text: &str) -> Result<SigningKey, Invalid> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(SIGNING_FILE_HEADER) {
            return Err(Invalid(format!(
                "not a crest signing key (the first line must be '{SIGNING_FILE_HEADER}'); make one with `crest keys new --signing --programme CODE`"
            )));
        }
        let (mut programme, mut public, mut secret) = (None, None, None);
        for l in lines {
            match l.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("programme", v)) => programme = Some(v.to_string()),
                Some(("public", v)) => public = Some(v.to_string()),
                Some(("secret", v)) => secret = Some(v.to_string()),
                _ => {
                    return Err(Invalid(
                        "a crest signing key has only 'programme:', 'public:' and 'secret:' lines"
                            .into(),
                    ))
                }
            }
        }
        let programme = programme
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Invalid("the signing key has no 'programme:' line".into()))?;
        let secret: [u8; 32] = secret
            .as_deref()
            .and_then(unhex)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                Invalid("the signing key's secret must be 64 hexadecimal digits".into())
            })?;
        let key = SigningKey::from_secret(&programme, secret);
        match public {
            Some(p) if PublicKey::parse(&p).ok() == Some(key.public_key()) => Ok(key),
            Some(_) => Err(Invalid(
                "the signing key file's public key does not belong to its secret; the file was altered".into(),
            )),
            None => Err(Invalid("the signing key has no 'public:' line".into())),
        }
    }

    /// Signs an unsigned manifest line: the same line with the signature as its last member.
    pub fn sign_manifest(&self, unsigned: &str) -> String {
        let sig = self.key.sign(unsigned.as_bytes());
        let body = unsigned.strip_suffix('}').unwrap_or(unsigned);
        format!("{body},\"signature\":\"{}\"}}", hex::encode(sig.to_bytes()))
    }
}

/// A signed manifest line taken apart: the unsigned manifest (what the signature covers) and
/// the signature. `None` when the line carries no signature as its last member.
pub fn split_signed(line: &[u8]) -> Option<(Vec<u8>, String)> {
    let body = line.strip_suffix(b"\"}")?;
    let at = body
        .windows(SIGNATURE_MEMBER.len())
        .rposition(|w| w == SIGNATURE_MEMBER)?;
    let sig = std::str::from_utf8(&body[at + SIGNATURE_MEMBER.len()..]).ok()?;
    if sig.len() != 128 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut unsigned = body[..at].to_vec();
    unsigned.push(b'}');
    Some((unsigned, sig.to_string()))
}

/// The signing keys a server or command holds, by programme.
#[derive(Clone, Debug, Default)]
pub struct SigningKeys(BTreeMap<String, SigningKey>);

impl SigningKeys {
    /// Reads a key file, or every `*.key` file of a folder (one per programme).
    pub fn load(path: &std::path::Path) -> Result<SigningKeys, Invalid> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p)
                .map_err(|e| Invalid(format!("cannot read {}: {e}", p.display())))
                .and_then(|t| {
                    SigningKey::parse(&t).map_err(|e| Invalid(format!("{}: {}", p.display(), e.0)))
                })
        };
        let mut keys = SigningKeys::default();
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| Invalid(format!("cannot read {}: {e}", path.display())))?;
            let mut files: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "key"))
                .collect();
            files.sort();
            for f in files {
                keys.add(read(&f)?);
            }
        } else {
            keys.add(read(path)?);
        }
        Ok(keys)
    }

    /// Adds (or replaces) a programme's key.
    pub fn add(&mut self, key: SigningKey) {
        self.0.insert(key.programme.clone(), key);
    }

    /// The key for a programme.
    pub fn get(&self, programme: &str) -> Option<&SigningKey> {
        self.0.get(programme)
    }

    /// How many programmes have a key.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Registers a programme's public key in the national store, accepted from `from` (to `to`,
/// if given); what was registered.
pub fn register(
    national: &mut crest_store::NationalStore,
    key: &PublicKey,
    programme: &str,
    (from, to): (crest_core::Date, Option<crest_core::Date>),
) -> Result<crest_store::ProgrammeSigningKey, crest_store::StoreError> {
    let record = crest_store::ProgrammeSigningKey {
        key_id: key.id(),
        programme: programme.to_string(),
        public_key: key.to_text(),
        valid_from: from,
        valid_to: to,
        added_at: crest_store::utc_now(),
        revoked_at: None,
    };
    national.add_signing_key(&record)?;
    Ok(record)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_manifest_verifies_and_an_edited_one_does_not() {
        let key = SigningKey::from_secret("P001", [7; 32]);
        let line = key.sign_manifest(r#"{"programme_code":"P001","sha256":"ab"}"#);
        let (unsigned, sig) = split_signed(line.as_bytes()).expect("signed");
        assert_eq!(unsigned, br#"{"programme_code":"P001","sha256":"ab"}"#);
        assert!(key.public_key().verifies(&unsigned, &sig));
        let edited = line.replace("P001", "P002");
        let (unsigned, sig) = split_signed(edited.as_bytes()).expect("still shaped as signed");
        assert!(!key.public_key().verifies(&unsigned, &sig));
        let other = SigningKey::from_secret("P002", [8; 32]);
        assert!(!other
            .public_key()
            .verifies(br#"{"programme_code":"P001","sha256":"ab"}"#, &sig));
    }

    #[test]
    fn key_files_round_trip_and_refuse_a_mismatched_public_key() {
        let key = SigningKey::from_secret("P001", [9; 32]);
        let text = key.to_file_text();
        let back = SigningKey::parse(&text).expect("parses");
        assert_eq!(back.public_key(), key.public_key());
        assert_eq!(back.programme(), "P001");
        let other = SigningKey::from_secret("P001", [1; 32])
            .public_key()
            .to_text();
        let altered = text.replace(&key.public_key().to_text(), &other);
        assert!(SigningKey::parse(&altered).is_err());
        assert!(!format!("{key:?}").contains(&hex::encode([9; 32])));
        assert_eq!(
            PublicKey::parse(&key.public_key().to_text()).ok(),
            Some(key.public_key())
        );
        assert!(PublicKey::parse("ed25519:zz").is_err());
    }

    #[test]
    fn an_unsigned_line_has_no_signature() {
        assert!(split_signed(br#"{"programme_code":"P001"}"#).is_none());
        assert!(split_signed(br#"{"programme_code":"P001","signature":"ab"}"#).is_none());
    }
}
