//! What several commands share: periods and dates from options, keys from files, the
//! access-log entry of a command-line action, and serving the web app.

use crate::today;
use anyhow::{anyhow, bail, Context, Result};
use crest_core::Date;
use crest_stats::Period;
use std::path::Path;

pub(crate) fn parse_date(s: &str, what: &str) -> Result<Date> {
    Date::parse(s).map_err(|e| anyhow!("--{what}: {e}"))
}

pub(crate) fn period(from: Option<&str>, to: Option<&str>) -> Result<Period> {
    let default = Period::last_financial_year(today());
    let p = Period {
        from: from
            .map(|s| parse_date(s, "from"))
            .transpose()?
            .unwrap_or(default.from),
        to: to
            .map(|s| parse_date(s, "to"))
            .transpose()?
            .unwrap_or(default.to),
    };
    if p.to < p.from {
        bail!("--to ({}) is before --from ({})", p.to, p.from);
    }
    Ok(p)
}

pub(crate) fn serve(app: std::sync::Arc<crest_web::App>, addr: &str) -> Result<i32> {
    // One line per request and per problem, with its request id, on standard error; RUST_LOG
    // (error, warn, info, debug or trace) sets how much, info by default. No level logs a
    // patient identifier (a test runs the web journeys at trace and searches the log).
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| {
            v.trim()
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .ok()
        })
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    let rt = tokio::runtime::Runtime::new()?;
    println!("crest web app on http://{addr}/ (Ctrl-C to stop)");
    rt.block_on(crest_web::serve(app, addr))
        .with_context(|| format!("cannot serve on {addr}"))?;
    Ok(0)
}

/// A key from its file, or from an environment variable holding the file's text.
pub(crate) fn load_key(path: Option<&Path>, env: &str, option: &str) -> Result<crest_privacy::Key> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the key file {}", p.display()))?,
        None => {
            std::env::var(env).map_err(|_| anyhow!("no key: pass {option} FILE or set {env}"))?
        }
    };
    crest_privacy::Key::parse(&text).map_err(|e| anyhow!(e))
}

/// The programme's signing key: from `--signing-key FILE` (a key file, or a folder of them),
/// else `CREST_SIGNING_KEY` (a key file's text, or the path of one or of a folder).
pub(crate) fn load_signing_key(
    path: Option<&Path>,
    programme: &str,
) -> Result<crest_privacy::SigningKey> {
    const ENV: &str = "CREST_SIGNING_KEY";
    let keys = match path {
        Some(p) => crest_privacy::SigningKeys::load(p).map_err(|e| anyhow!(e))?,
        None => {
            let v = std::env::var(ENV).map_err(|_| {
                anyhow!(
                    "no signing key: pass --signing-key FILE or set {ENV} (make one with \
                     `crest keys new --signing --programme {programme} --out FILE` and register its \
                     public key with the national audit)"
                )
            })?;
            if v.trim_start().starts_with("crest-signing-key") {
                let mut keys = crest_privacy::SigningKeys::default();
                keys.add(crest_privacy::SigningKey::parse(&v).map_err(|e| anyhow!(e))?);
                keys
            } else {
                crest_privacy::SigningKeys::load(Path::new(v.trim())).map_err(|e| anyhow!(e))?
            }
        }
    };
    keys.get(programme).cloned().ok_or_else(|| {
        anyhow!("the signing key given is not {programme}'s: a submission is signed with its own programme's key")
    })
}

/// An access-log entry for something done at the command line, by the signed-in OS user.
pub(crate) fn command_line_entry(
    programme: &str,
    action: &str,
    target: &str,
) -> crest_store::AccessEntry {
    crest_store::AccessEntry {
        at: crest_store::utc_now(),
        username: std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        role: "command_line".into(),
        programme: programme.into(),
        action: action.into(),
        target: target.into(),
        outcome: "ok".into(),
        detail: String::new(),
    }
}

/// The programmes a figures command works over, from the local store at `db` or (with
/// `national`) the national store, narrowed to `programme` if given; with the store to read
/// their episodes from.
pub(crate) struct Scope {
    pub programmes: Vec<crest_core::Programme>,
    national: Option<crest_store::NationalStore>,
    db: String,
}

impl Scope {
    pub(crate) fn open(db: &str, national: bool, programme: Option<&str>) -> Result<Scope> {
        let (mut programmes, national) = if national {
            let mut n = crest_store::NationalStore::open(db)?;
            (n.programmes()?, Some(n))
        } else {
            (crest_store::open(db)?.programmes()?, None)
        };
        if let Some(code) = programme {
            programmes.retain(|p| p.code.eq_ignore_ascii_case(code));
            if programmes.is_empty() {
                bail!("programme {code} is not registered in this store");
            }
        }
        Ok(Scope {
            programmes,
            national,
            db: db.to_string(),
        })
    }

    /// The programmes `args` choose: one, a region's, or every one of the store.
    pub(crate) fn chosen(db: &str, args: &crate::args::ScopeArgs) -> Result<Scope> {
        let mut scope = Scope::open(db, args.national, args.programme.as_deref())?;
        if let Some(region) = &args.region {
            scope
                .programmes
                .retain(|p| p.region.eq_ignore_ascii_case(region));
            if scope.programmes.is_empty() {
                bail!("no programme of this store is in the region {region}");
            }
        }
        Ok(scope)
    }

    /// The expected-patients rows of the store.
    pub(crate) fn expected(&mut self) -> Result<Vec<crest_core::expected::Expected>> {
        Ok(match &mut self.national {
            Some(n) => n.expected()?,
            None => crest_store::open(&self.db)?.expected()?,
        })
    }

    /// The same episodes as [`Scope::episodes`], handed to `each` a few at a time.
    pub(crate) fn each_episode(
        self,
        from: Date,
        to: Date,
        each: &mut dyn FnMut(&[crest_core::KpiEpisode]),
    ) -> Result<()> {
        match self.national {
            Some(mut n) => n.each_kpi_episode(from, to, &self.programmes, each)?,
            None => {
                crest_store::open(&self.db)?.each_kpi_episode(from, to, &self.programmes, each)?
            }
        }
        Ok(())
    }

    /// The KPI facts of the programmes' episodes referred from `from` to `to`.
    pub(crate) fn episodes(self, from: Date, to: Date) -> Result<Vec<crest_core::KpiEpisode>> {
        Ok(match self.national {
            Some(mut n) => n.kpi_episodes(from, to, &self.programmes)?,
            None => crest_store::open(&self.db)?.kpi_episodes(from, to, &self.programmes)?,
        })
    }
}
