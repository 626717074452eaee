//! `crest keys`: pseudonymisation keys and programmes' signing keys; `crest programmes keys`:
//! the public signing keys the national store accepts.

use crate::args::SigningKeysAction;
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// 32 random bytes.
fn secret() -> Result<[u8; 32]> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow!("no random source: {e}"))?;
    Ok(secret)
}

/// Writes a new secret file readable by its owner only; never overwrites one.
pub(crate) fn write_secret_file(out: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "cannot create {} (crest never overwrites a key file)",
                out.display()
            )
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))
}

/// `crest keys new --signing --programme P --out FILE`.
pub(crate) fn signing_key_new(out: &Path, programme: &str) -> Result<i32> {
    let programme = programme.trim().to_ascii_uppercase();
    if programme.is_empty() || !programme.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!("--programme needs a programme code, letters and digits only (e.g. P001)");
    }
    let key = crest_privacy::SigningKey::from_secret(&programme, secret()?);
    write_secret_file(out, &key.to_file_text())?;
    let public = key.public_key();
    println!(
        "signing key {} for {programme} written to {} (readable by you only; keep it on the programme's side)",
        public.id(),
        out.display()
    );
    println!("public key: {}", public.to_text());
    println!(
        "register it with the national audit: crest --db NATIONAL programmes keys add --programme {programme} --public-key {}",
        public.to_text()
    );
    Ok(0)
}

/// `crest programmes keys …` on the national store.
pub(crate) fn signing_keys(db: &str, action: SigningKeysAction) -> Result<i32> {
    let mut national = crest_store::NationalStore::open(db)?;
    match action {
        SigningKeysAction::Add {
            programme,
            public_key,
            from,
            to,
        } => {
            let public = crest_privacy::PublicKey::parse(&public_key).map_err(|e| anyhow!(e))?;
            let day = |s: &str, flag: &str| {
                crest_core::Date::parse_iso(s.trim())
                    .map_err(|e| anyhow!("{flag} '{s}': {} (write it as YYYY-MM-DD)", e.0))
            };
            let valid_from = match from {
                Some(s) => day(&s, "--from")?,
                None => crate::today(),
            };
            let valid_to = to.map(|s| day(&s, "--to")).transpose()?;
            if valid_to.is_some_and(|t| t < valid_from) {
                bail!("--to is before --from: the key would never be accepted");
            }
            let record = crest_privacy::signing::register(
                &mut national,
                &public,
                &programme.trim().to_ascii_uppercase(),
                (valid_from, valid_to),
            )?;
            national.log(&crate::common::command_line_entry(
                &record.programme,
                "signing_key_added",
                &record.key_id,
            ))?;
            println!(
                "signing key {} registered for {}: accepted from {}{}",
                record.key_id,
                record.programme,
                record.valid_from,
                record
                    .valid_to
                    .map_or(String::new(), |t| format!(" to {t}"))
            );
            Ok(0)
        }
        SigningKeysAction::List => {
            let today = crate::today();
            for k in national.signing_keys(None)? {
                let state = match &k.revoked_at {
                    Some(at) => format!("revoked {}", at.get(..10).unwrap_or(at)),
                    None if k.in_force(today) => "in force".to_string(),
                    None => "not in force today".to_string(),
                };
                println!(
                    "{:<22} {:<8} from {} to {:<10} {state}",
                    k.key_id,
                    k.programme,
                    k.valid_from,
                    k.valid_to.map_or("–".to_string(), |d| d.to_string()),
                );
            }
            Ok(0)
        }
        SigningKeysAction::Revoke { key_id } => {
            let now = crest_store::utc_now();
            if national.revoke_signing_key(&key_id, &now)? {
                national.log(&crate::common::command_line_entry(
                    "",
                    "signing_key_revoked",
                    key_id.trim(),
                ))?;
                println!(
                    "signing key {} revoked: files signed with it are refused from now on",
                    key_id.trim()
                );
                Ok(0)
            } else {
                println!(
                    "no signing key {} in force (see `crest programmes keys list`)",
                    key_id.trim()
                );
                Ok(1)
            }
        }
    }
}

pub(crate) fn keys_new(out: &Path) -> Result<i32> {
    let key = crest_privacy::Key::from_secret(secret()?);
    write_secret_file(out, &key.to_file_text())?;
    println!(
        "key {} written to {} (readable by you only); keep it out of databases, logs and e-mail",
        key.id(),
        out.display()
    );
    Ok(0)
}
