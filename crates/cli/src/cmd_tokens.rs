//! Programme systems' API tokens on the national side: `crest tokens new|list|revoke`.

use crate::today;
use anyhow::{anyhow, bail, Result};

/// `crest tokens new --programme CODE [--days N]`.
pub(crate) fn new(db: &str, programme: &str, days: u32) -> Result<i32> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no random source: {e}"))?;
    let token = hex::encode(bytes);
    let now = crest_store::utc_now();
    let expires = format!("{}{}", today().add_days(days as i32), &now[10..]);
    crest_store::NationalStore::open(db)?.add_api_token(&token, programme, &now, &expires)?;
    println!(
        "API token for {programme}, valid until {expires} (shown once; keep it secret): {token}"
    );
    Ok(0)
}

/// `crest tokens list`.
pub(crate) fn list(db: &str) -> Result<i32> {
    let now = crest_store::utc_now();
    let tokens = crest_store::NationalStore::open(db)?.api_tokens()?;
    if tokens.is_empty() {
        println!("no API tokens; make one with `crest tokens new --programme CODE`");
    }
    for t in tokens {
        let state = match &t.revoked_at {
            Some(at) => format!("revoked {at}"),
            None if !t.expires_at.is_empty() && t.expires_at <= now => "expired".to_string(),
            None => "works".to_string(),
        };
        let expires = if t.expires_at.is_empty() {
            "never"
        } else {
            &t.expires_at
        };
        println!(
            "{}  {}  made {}  expires {}  {}",
            t.id, t.programme, t.created_at, expires, state
        );
    }
    Ok(0)
}

/// `crest tokens revoke ID`.
pub(crate) fn revoke(db: &str, id: &str) -> Result<i32> {
    let mut n = crest_store::NationalStore::open(db)?;
    if n.revoke_api_token(id, &crest_store::utc_now())? {
        println!("token {id} revoked");
        Ok(0)
    } else {
        bail!(
            "no working token has the id '{}'; `crest tokens list` shows them",
            id.chars().take(20).collect::<String>()
        )
    }
}
