//! Runs the command the arguments name (each command lives in its own module).

use crate::args::*;
use crate::common::*;
use crate::today;
use crate::{
    cmd_agreements::*, cmd_demo::*, cmd_import::*, cmd_keys::*, cmd_kpis::*, cmd_submission::*,
    cmd_synth::*, cmd_users::*,
};
use anyhow::{anyhow, bail, Context, Result};

/// Runs a command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Init { national: true } => {
            let mut store = crest_store::NationalStore::open(&cli.db)?;
            let n = store.migrate()?;
            println!(
                "national {} store ready ({n} migration(s) applied)",
                store.backend()
            );
            Ok(0)
        }
        Command::Init { national: false } => {
            let mut store = crest_store::open(&cli.db)?;
            let n = store.migrate()?;
            println!("{} store ready ({n} migration(s) applied)", store.backend());
            Ok(0)
        }
        Command::Programmes {
            action:
                ProgrammesAction::Import {
                    file,
                    national: true,
                },
        } => {
            let programmes = crest_ingest::programmes::read_programmes(&file)?;
            crest_store::NationalStore::open(&cli.db)?.upsert_programmes(&programmes)?;
            println!(
                "{}: {} programme(s) registered nationally",
                file.display(),
                programmes.len()
            );
            Ok(0)
        }
        Command::Programmes {
            action:
                ProgrammesAction::Import {
                    file,
                    national: false,
                },
        } => {
            let programmes = crest_ingest::programmes::read_programmes(&file)?;
            let mut store = crest_store::open(&cli.db)?;
            let c = store.upsert_programmes(&programmes)?;
            println!(
                "{}: {} programme(s) added, {} updated",
                file.display(),
                c.added,
                c.updated
            );
            Ok(0)
        }
        Command::Programmes {
            action: ProgrammesAction::List,
        } => {
            let mut store = crest_store::open(&cli.db)?;
            for p in store.programmes()? {
                println!(
                    "{:<8} {:<18} {:<24} professions: {:<3} offers: {}",
                    p.code,
                    p.nation.code(),
                    p.region,
                    p.professions
                        .as_ref()
                        .map_or("–".to_string(), |v| v.len().to_string()),
                    p.offers_text()
                );
            }
            Ok(0)
        }
        Command::Import(args) => import(&cli.db, &args),
        Command::Kpis(args) => kpis(&cli.db, &args),
        Command::Template { out } => {
            crest_ingest::template::write_template(&out).map_err(|e| anyhow!(e))?;
            println!("template written to {}", out.display());
            Ok(0)
        }
        Command::Dataset { out } => {
            let md = crest_core::dataset::reference_markdown();
            match out {
                Some(p) => std::fs::write(&p, md)
                    .with_context(|| format!("cannot write {}", p.display()))?,
                None => print!("{md}"),
            }
            Ok(0)
        }
        Command::Synth(args) => {
            let period = period(args.from.as_deref(), args.to.as_deref())?;
            let s = synth(&args.out, args.programmes, args.episodes, args.seed, period)?;
            println!("{s}");
            Ok(0)
        }
        Command::Tokens {
            action: TokensAction::New { programme, days },
        } => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow!("no random source: {e}"))?;
            let token = hex::encode(bytes);
            let now = crest_store::utc_now();
            let expires = format!("{}{}", today().add_days(days as i32), &now[10..]);
            crest_store::NationalStore::open(&cli.db)?
                .add_api_token(&token, &programme, &now, &expires)?;
            println!("API token for {programme}, valid until {expires} (shown once; keep it secret): {token}");
            Ok(0)
        }
        Command::Tokens {
            action: TokensAction::List,
        } => {
            let now = crest_store::utc_now();
            let tokens = crest_store::NationalStore::open(&cli.db)?.api_tokens()?;
            if tokens.is_empty() {
                println!("no API tokens; make one with `crest tokens new --programme CODE`");
            }
            for t in tokens {
                let state = match &t.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None if !t.expires_at.is_empty() && t.expires_at <= now => {
                        "expired".to_string()
                    }
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
        Command::Tokens {
            action: TokensAction::Revoke { id },
        } => {
            let mut n = crest_store::NationalStore::open(&cli.db)?;
            if n.revoke_api_token(&id, &crest_store::utc_now())? {
                println!("token {id} revoked");
                Ok(0)
            } else {
                bail!(
                    "no working token has the id '{}'; `crest tokens list` shows them",
                    id.chars().take(20).collect::<String>()
                )
            }
        }
        Command::Serve {
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
        } => {
            let app = crest_web::App::new(&cli.db, uploads, today).map_err(|e| anyhow!(e))?;
            app.set_behind_proxy(behind_proxy);
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
        Command::Users { action } => users(&cli.db, action),
        Command::Keys {
            action:
                KeysAction::New {
                    out,
                    signing: false,
                    ..
                },
        } => keys_new(&out),
        Command::Keys {
            action:
                KeysAction::New {
                    out,
                    signing: true,
                    programme,
                },
        } => signing_key_new(&out, programme.as_deref().unwrap_or_default()),
        Command::Programmes {
            action: ProgrammesAction::Keys { action },
        } => signing_keys(&cli.db, action),
        Command::Agreements { action } => agreements(&cli.db, action),
        Command::Projects { action } => crate::cmd_research::projects(&cli.db, action),
        Command::Extract {
            project,
            format,
            out,
            for_user,
        } => crate::cmd_research::extract(&cli.db, &project, &format, &out, for_user.as_deref()),
        Command::Aggregate {
            by,
            measure,
            from,
            to,
            regions,
            published,
            format,
        } => crate::cmd_research::aggregate(
            &cli.db,
            &by,
            &measure,
            period(from.as_deref(), to.as_deref())?,
            regions.as_deref(),
            published,
            &format,
        ),
        Command::Figures {
            action:
                FiguresAction::Load {
                    period,
                    programmes,
                    funnels,
                },
        } => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
            };
            let (p, f) = (read(&programmes)?, read(&funnels)?);
            let mut store = crest_store::open(&cli.db)?;
            let figures = crest_report::figures::save(store.as_mut(), &period, &p, &f)
                .map_err(|e| anyhow!(e))?;
            let mut entry = command_line_entry("", "load national figures", &figures.period);
            entry.detail = format!(
                "{} programmes, {} funnel points",
                figures.programmes.len(),
                figures.funnels.len()
            );
            store.log(&entry)?;
            println!(
                "national figures for {} loaded: {} programmes, {} funnel points",
                figures.period,
                figures.programmes.len(),
                figures.funnels.len()
            );
            Ok(0)
        }
        Command::Report {
            action:
                ReportAction::Site {
                    from,
                    to,
                    out,
                    funnel_method,
                },
        } => {
            let report = annual_report(&cli.db, &from, &to, &funnel_method)?;
            let files = crest_report::site::write_site(&report, &out).map_err(|e| anyhow!(e))?;
            println!(
                "public results site: {files} files in {} (open {}); every value as the annual report publishes it",
                out.display(),
                out.join("index.html").display()
            );
            Ok(0)
        }
        Command::Report {
            action:
                ReportAction::Annual {
                    from,
                    to,
                    out,
                    tables,
                    funnel_method,
                },
        } => {
            let t = std::time::Instant::now();
            let report = annual_report(&cli.db, &from, &to, &funnel_method)?;
            let period = report.period;
            println!("{}", report.audit.sentence());
            if let Some(dir) = &tables {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot make the folder {}", dir.display()))?;
                for table in &report.tables {
                    let file = dir.join(format!("{}.csv", table.name));
                    std::fs::write(&file, table.csv().map_err(|e| anyhow!(e))?)
                        .with_context(|| format!("cannot write {}", file.display()))?;
                }
                println!(
                    "{} published tables written to {}",
                    report.tables.len(),
                    dir.display()
                );
            }
            match out.extension().and_then(|e| e.to_str()) {
                Some("html") => std::fs::write(&out, report.html())
                    .with_context(|| format!("cannot write {}", out.display()))?,
                Some("pdf") => {
                    // Chromium prints twice and says nothing meanwhile: each step is announced.
                    let started = std::time::Instant::now();
                    let pages = report
                        .pdf_with_steps(&out, &mut |step, of, what| {
                            eprintln!(
                                "PDF step {step} of {of}: {what} with Chromium ({:.0} s so far) …",
                                started.elapsed().as_secs_f64()
                            )
                        })
                        .map_err(|e| anyhow!(e))?;
                    eprintln!("PDF printed: {pages} pages");
                }
                _ => bail!("--out must end in .pdf or .html, not '{}'", out.display()),
            }
            println!(
                "annual report for {} to {} written to {} in {:.1} s",
                period.from,
                period.to,
                out.display(),
                t.elapsed().as_secs_f64()
            );
            Ok(0)
        }
        Command::Submission { action } => submission(&cli.db, action),
        Command::Audit {
            action: AuditAction::Verify { national },
        } => {
            // A national store's log is checked as such whether or not --national is given.
            let as_national =
                crest_store::NationalStore::open(&cli.db).and_then(|mut n| n.verify_access_log());
            let check = match as_national {
                Ok(check) => check,
                Err(e) if national => return Err(e.into()),
                Err(_) => crest_store::open(&cli.db)?.verify_access_log()?,
            };
            match check.broken {
                None => {
                    println!(
                        "access log intact: {} entries; head {}",
                        check.entries, check.head
                    );
                    Ok(0)
                }
                Some(why) => {
                    println!(
                        "access log BROKEN after {} intact entries: {why}",
                        check.entries
                    );
                    Ok(1)
                }
            }
        }
        Command::Demo {
            dir,
            programmes,
            episodes,
            no_serve,
            addr,
        } => demo(
            &dir,
            programmes,
            episodes,
            (!no_serve).then_some(addr.as_str()),
        ),
    }
}

/// The annual report of the national store at `db` for `crest report annual` and
/// `crest report site`: the period from `--from`/`--to`, funnel limits by `--funnel-method`.
fn annual_report(
    db: &str,
    from: &Option<String>,
    to: &Option<String>,
    funnel_method: &str,
) -> Result<crest_report::annual::AnnualReport> {
    let period = period(from.as_deref(), to.as_deref())?;
    let method = crest_stats::funnel::Method::parse(funnel_method).ok_or_else(|| {
        anyhow!("--funnel-method {funnel_method}: use auto, plain, multiplicative or additive")
    })?;
    let mut national = crest_store::NationalStore::open(db)?;
    crest_report::annual::annual(&mut national, period, today(), method).map_err(|e| anyhow!(e))
}
