//! `crest keys`: pseudonymisation keys.

use anyhow::{anyhow, Context, Result};
use std::path::Path;

pub(crate) fn keys_new(out: &Path) -> Result<i32> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow!("no random source: {e}"))?;
    let key = crest_privacy::Key::from_secret(secret);
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
    f.write_all(key.to_file_text().as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "key {} written to {} (readable by you only); keep it out of databases, logs and e-mail",
        key.id(),
        out.display()
    );
    Ok(0)
}
