//! `crest serve`: the web app, with the keys and national side it is given.

use crate::common::*;
use crate::today;
use anyhow::{anyhow, Result};

/// Serves the web app until interrupted.
pub(crate) fn run(db: &str, a: crate::args::ServeArgs) -> Result<i32> {
    let crate::args::ServeArgs {
        addr,
        uploads,
        submission_key,
        signing_key,
        server_key,
        national_db,
        national_key,
        behind_proxy,
        send_to,
        send_token,
        metrics_token,
        metrics_allow,
    } = a;
    let app = crest_web::App::new(db, uploads, today).map_err(|e| anyhow!(e))?;
    app.set_behind_proxy(behind_proxy);
    app.set_metrics_access(crest_web::MetricsAccess {
        token: metrics_token,
        allow: metrics_allow,
    });
    if let (Some(url), Some(token)) = (&send_to, &send_token) {
        app.set_send_to(url, token).map_err(|e| anyhow!(e))?;
    }
    if submission_key.is_some() || std::env::var_os("CREST_SUBMISSION_KEY").is_some() {
        app.set_submission_key(load_key(
            submission_key.as_deref(),
            "CREST_SUBMISSION_KEY",
            "--submission-key",
        )?);
    }
    if server_key.is_some() || std::env::var_os("CREST_SERVER_KEY").is_some() {
        let key = load_key(server_key.as_deref(), "CREST_SERVER_KEY", "--server-key")?;
        app.set_server_key(&key);
    } else {
        eprintln!(
            "note: no --server-key, so security-code secrets are stored in the clear; make one with `crest keys new --out server.key`"
        );
    }
    if let Some(path) = signing_key {
        let keys = crest_privacy::SigningKeys::load(&path).map_err(|e| anyhow!(e))?;
        println!(
            "signing submissions for {} programme(s) with their own keys",
            keys.len()
        );
        app.set_signing_keys(keys);
    }
    if let Some(url) = national_db {
        let key = load_key(
            national_key.as_deref(),
            "CREST_NATIONAL_KEY",
            "--national-key",
        )?;
        app.set_national(&url, key).map_err(|e| anyhow!(e))?;
    }
    serve(app, &addr)
}
