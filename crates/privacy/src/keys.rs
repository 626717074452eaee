//! Keyed pseudonyms (privacy.md, "Submission" step 3): patient key = HMAC-SHA256(key, the
//! 10-digit NHS number), episode key = HMAC-SHA256(key, `programme_code:episode_id`), both as
//! lower-case hex. Unkeyed hashes of NHS numbers can be reversed by trying all ~10⁹ numbers; a
//! secret key cannot. Keys are 256 random bits with a public key id; the key itself is never
//! shown by `Debug` or `Display`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 of `message` under `key`, lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A pseudonymisation key: 32 secret bytes and a public id.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    id: String,
    secret: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}, secret hidden)", self.id)
    }
}

/// First line of a key file.
const KEY_FILE_HEADER: &str = "crest-key v1";

impl Key {
    /// A key from 32 random bytes (the caller supplies the randomness: this crate does no I/O).
    /// Its id is derived from the secret, so a key file cannot pair an id with another key.
    pub fn from_secret(secret: [u8; 32]) -> Key {
        let mut h = Sha256::new();
        h.update(b"crest key id\0");
        h.update(secret);
        let id = format!("k-{}", &hex::encode(h.finalize())[..16]);
        Key { id, secret }
    }

    /// The public key id that travels with submissions.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key file's text: a header, the id and the secret in hex.
    pub fn to_file_text(&self) -> String {
        format!(
            "{KEY_FILE_HEADER}\nid: {}\nsecret: {}\n",
            self.id,
            hex::encode(self.secret)
        )
    }

    /// Reads a key file's text (or the same text from an environment variable). Errors never
    /// repeat the secret.
    pub fn parse(text: &str) -> Result<Key, crest_core::Invalid> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(format!(
                "not a crest key (the first line must be '{KEY_FILE_HEADER}'); make one with `crest keys new`"
            ).into());
        }
        let (mut id, mut secret) = (None, None);
        for l in lines {
            match l.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("secret", v)) => secret = Some(v.to_string()),
                _ => return Err("a crest key has only 'id:' and 'secret:' lines".into()),
            }
        }
        let secret = secret.ok_or(crest_core::Invalid::from("the key has no 'secret:' line"))?;
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the key's secret must be 64 hexadecimal digits (256 bits)".into());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&secret, &mut bytes)
            .map_err(|_| crest_core::Invalid::from("the key's secret is not hexadecimal"))?;
        let key = Key::from_secret(bytes);
        match id {
            Some(id) if id == key.id => Ok(key),
            Some(id) => Err(format!(
                "the key file says id {id} but its secret belongs to {}; the file was altered",
                key.id
            )
            .into()),
            None => Err("the key has no 'id:' line".into()),
        }
    }

    /// The patient key of an NHS number.
    pub fn patient_key(&self, nhs_number: &crest_core::NhsNumber) -> String {
        hmac_sha256_hex(&self.secret, nhs_number.digits().as_bytes())
    }

    /// The episode key of a programme's episode.
    pub fn episode_key(&self, programme: &str, episode_id: &str) -> String {
        hmac_sha256_hex(&self.secret, format!("{programme}:{episode_id}").as_bytes())
    }

    /// Re-keys a submitted key with this (national) key, as the national store does on receipt.
    pub fn rekey(&self, submitted: &str) -> String {
        hmac_sha256_hex(&self.secret, submitted.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_4231_hmac_sha256_vectors() {
        let big_key = vec![0xaa; 131];
        let key4 = unhex("0102030405060708090a0b0c0d0e0f10111213141516171819");
        let cases: [(&[u8], &[u8], &str); 6] = [
            (&[0x0b; 20], b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            (&[0xaa; 20], &[0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
            (&key4, &[0xcd; 50], "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            (&big_key, b"Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
            (&big_key, b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.", "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        ];
        for (key, data, want) in cases {
            assert_eq!(hmac_sha256_hex(key, data), want);
        }
    }

    #[test]
    fn the_spec_vector_for_an_nhs_number() {
        assert_eq!(
            hmac_sha256_hex(b"test-key", b"9434765919"),
            "ac2d566b999ffa782e9c51c0428f1e604dff61e07ebfeb02be887732cebcc7df"
        );
    }

    #[test]
    fn keys_round_trip_link_patients_and_hide_their_secret() {
        let a = Key::from_secret([7; 32]);
        let b = Key::from_secret([8; 32]);
        assert_eq!(Key::parse(&a.to_file_text()).unwrap(), a);
        assert!(a.id().starts_with("k-") && a.id().len() == 18);
        assert_ne!(a.id(), b.id());
        // Spaces do not matter; the same patient links; another key gives another pseudonym.
        let nhs = |s: &str| crest_core::NhsNumber::parse(s).unwrap();
        assert_eq!(
            a.patient_key(&nhs("943 476 5919")),
            a.patient_key(&nhs("9434765919"))
        );
        assert_ne!(
            a.patient_key(&nhs("9434765919")),
            b.patient_key(&nhs("9434765919"))
        );
        assert_ne!(a.episode_key("P001", "E1"), a.episode_key("P002", "E1"));
        let secret_hex = "07".repeat(32);
        assert!(!format!("{a:?}").contains(&secret_hex));
        // A tampered file is refused without echoing the secret.
        let tampered = a.to_file_text().replace(a.id(), b.id());
        let err = Key::parse(&tampered).unwrap_err();
        assert!(
            err.0.contains("altered") && !err.0.contains(&secret_hex),
            "{err}"
        );
        assert!(Key::parse("crest-key v1\nid: x\nsecret: 12\n").is_err());
        assert!(Key::parse("hello")
            .unwrap_err()
            .0
            .contains("crest keys new"));
    }
}
