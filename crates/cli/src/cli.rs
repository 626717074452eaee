//! Command definitions and their (thin) implementations.

use crate::progress::Progress;
use crate::today;
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use crest_core::Date;
use crest_ingest::{import_file, ImportOptions, ImportSummary};
use crest_stats::{compute, Period, Thresholds};
use std::path::{Path, PathBuf};

/// crest: the cardiac rehabilitation audit platform.
///
/// Programmes import their episodes, fix what validation rejects and see their KPIs against the
/// national standards (NCP_CR).
#[derive(Parser, Debug)]
#[command(name = "crest", version, about, long_about = None)]
pub struct Cli {
    /// Store to use: a file path, sqlite:PATH, or postgres://user@host/db.
    #[arg(long, env = "CREST_DB", default_value = "crest.sqlite", global = true)]
    pub db: String,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or migrate the store (`--national`: a national store, a separate database).
    Init {
        /// Create the national store's schema instead of a local store's.
        #[arg(long)]
        national: bool,
    },
    /// Register or update programmes.
    Programmes {
        #[command(subcommand)]
        action: ProgrammesAction,
    },
    /// Import episodes from CSV or XLSX files (one transaction per file).
    Import(ImportArgs),
    /// The seven NCP_CR KPIs and grades for a reporting period.
    Kpis(KpiArgs),
    /// Write the import template (.csv or .xlsx) with notes on every column.
    Template {
        /// Output file; its extension (.csv or .xlsx) decides the format.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the dataset reference as Markdown.
    Dataset {
        /// Write to a file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write calibrated synthetic programmes.csv and episodes.csv.
    Synth(SynthArgs),
    /// Serve the web app for programme teams.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Where uploads wait for confirmation.
        #[arg(long, default_value = "crest-uploads")]
        uploads: PathBuf,
        /// Submission key file, so programme leads can build national submissions and the
        /// national side can check them (else CREST_SUBMISSION_KEY, if set).
        #[arg(long)]
        submission_key: Option<PathBuf>,
        /// Also serve the national side (national analysts, receipts, the API) over this
        /// national store.
        #[arg(long, env = "CREST_NATIONAL_DB", requires = "national_key")]
        national_db: Option<String>,
        /// The national key file (with --national-db).
        #[arg(long)]
        national_key: Option<PathBuf>,
        /// Behind a reverse proxy that terminates TLS: cookies are marked Secure, and sign-in
        /// throttling uses the client address the proxy appends to X-Forwarded-For.
        #[arg(long)]
        behind_proxy: bool,
    },
    /// API tokens with which a programme's system pushes submissions to the national store at
    /// --db (`crest tokens new --programme P001`; printed once, stored hashed).
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Data sharing agreements (administrators): which fields may leave, on what basis, when.
    Agreements {
        #[command(subcommand)]
        action: AgreementsAction,
    },
    /// National submissions: `build` one from the local store, `receive` one into the national
    /// store.
    Submission {
        #[command(subcommand)]
        action: SubmissionAction,
    },
    /// Reports from the national store at --db: `crest report annual --out FILE.pdf|FILE.html`.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// Pseudonymisation keys: `crest keys new --out FILE`.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// The access log: `crest audit verify` checks its hash chain.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Manage the web app's users (administrators).
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Zero set-up demonstration: synthetic national data in a local SQLite file, the KPIs,
    /// then the web app on 127.0.0.1:8080 with one login per role.
    Demo {
        /// Generate and print the KPIs, but do not serve the web app.
        #[arg(long)]
        no_serve: bool,
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Directory for the demo store and files.
        #[arg(long, default_value = "crest-demo")]
        dir: PathBuf,
        /// Programmes to generate.
        #[arg(long, default_value_t = 230)]
        programmes: usize,
        /// Episodes to generate.
        #[arg(long, default_value_t = 95_000)]
        episodes: usize,
    },
}

/// Agreement actions.
#[derive(Subcommand, Debug)]
pub enum AgreementsAction {
    /// Record (or replace) a data sharing agreement.
    Add {
        /// Short id, e.g. ncpcr-2025.
        #[arg(long)]
        id: String,
        /// Who receives the data.
        #[arg(long)]
        recipient: String,
        /// Legal basis reference, e.g. the CAG (section 251) approval.
        #[arg(long)]
        legal_basis: String,
        /// First day in force (YYYY-MM-DD or DD/MM/YYYY).
        #[arg(long)]
        from: String,
        /// Last day in force.
        #[arg(long)]
        to: String,
        /// Approved fields, comma-separated (default: every national field).
        #[arg(long)]
        fields: Option<String>,
        /// The National Data Opt-out does not apply (an exemption is recorded).
        #[arg(long)]
        opt_out_exempt: bool,
    },
    /// List the agreements.
    List,
}

/// Submission actions.
#[derive(Subcommand, Debug)]
pub enum SubmissionAction {
    /// Build a programme's submission for a period from the local store at --db.
    Build {
        /// Programme code.
        #[arg(long)]
        programme: String,
        /// First referral date (default: start of the last complete financial year).
        #[arg(long)]
        from: Option<String>,
        /// Last referral date.
        #[arg(long)]
        to: Option<String>,
        /// Submission key file (else CREST_SUBMISSION_KEY holds the key file's text).
        #[arg(long)]
        key: Option<PathBuf>,
        /// National Data Opt-out check result listing NHS numbers that opted out
        /// (CSV: nhs_number,checked_on).
        #[arg(long, conflicts_with = "ndoo_may_use")]
        ndoo_opted_out: Option<PathBuf>,
        /// National Data Opt-out check result listing NHS numbers that may be used.
        #[arg(long)]
        ndoo_may_use: Option<PathBuf>,
        /// Oldest usable check result, in days.
        #[arg(long, default_value_t = crest_privacy::submission::NDOO_MAX_AGE_DAYS)]
        ndoo_max_age: i32,
        /// The submission file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a submission and store it in the national store at --db.
    Receive {
        /// The submission file.
        file: PathBuf,
        /// The submission key file, to check the key id (else CREST_SUBMISSION_KEY).
        #[arg(long)]
        submission_key: Option<PathBuf>,
        /// The national key file (else CREST_NATIONAL_KEY).
        #[arg(long)]
        national_key: Option<PathBuf>,
    },
}

/// API token actions.
#[derive(Subcommand, Debug)]
pub enum TokensAction {
    /// Make a new token for a programme; it is printed once and only its SHA-256 is kept.
    New {
        /// The programme whose system will use it.
        #[arg(long)]
        programme: String,
        /// Days until it stops working.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
    },
    /// The tokens on record: id, programme, made, expires, and whether each still works.
    List,
    /// Revoke a token by the id `tokens list` shows; it stops working at once.
    Revoke {
        /// The token's id (12 hex digits).
        id: String,
    },
}

/// Report actions.
#[derive(Subcommand, Debug)]
pub enum ReportAction {
    /// The annual report: national summary, every programme's KPIs and grade, funnel plots,
    /// waits, inequalities, outcomes, data quality and methods, all through disclosure control.
    /// `.html` writes one self-contained page; `.pdf` prints it with headless Chromium.
    Annual {
        /// First referral date (default: start of the last complete financial year).
        #[arg(long)]
        from: Option<String>,
        /// Last referral date.
        #[arg(long)]
        to: Option<String>,
        /// The report file: .pdf or .html.
        #[arg(long)]
        out: PathBuf,
        /// Also write every published table as CSV into this folder (made if missing), with
        /// exactly the values the report publishes: summary.csv, programmes.csv, funnels.csv, …
        #[arg(long)]
        tables: Option<PathBuf>,
    },
}

/// Key actions.
#[derive(Subcommand, Debug)]
pub enum KeysAction {
    /// Make a random 256-bit key with its key id, in a new file readable only by you. The key
    /// is never printed, logged or stored in a database; only its id travels with submissions.
    New {
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Access-log actions.
#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check every entry's hash chain; exit 1 and name the first broken entry if any was
    /// edited or deleted. Prints the head hash: keep it to detect a truncated log later.
    Verify {
        /// Check the national store's log (at --db) instead of a local store's.
        #[arg(long)]
        national: bool,
    },
}

/// User actions.
#[derive(Subcommand, Debug)]
pub enum UsersAction {
    /// Add (or replace) a user; a password is generated and printed once.
    Add {
        /// Login name.
        username: String,
        /// programme_staff, programme_lead, admin or national_analyst.
        #[arg(long)]
        role: String,
        /// Programme codes the user works for (repeat for several).
        #[arg(long = "programme")]
        programmes: Vec<String>,
    },
    /// List users.
    List,
    /// Disable a user; their sessions end at once.
    Disable {
        /// Login name.
        username: String,
    },
    /// Set a new generated password and end the user's sessions.
    ResetPassword {
        /// Login name.
        username: String,
    },
}

/// Programme actions.
#[derive(Subcommand, Debug)]
pub enum ProgrammesAction {
    /// Import programmes.csv: programme_code,name,nation,region,professions,offers.
    Import {
        /// The programmes file.
        file: PathBuf,
        /// Register them in the national store at --db.
        #[arg(long)]
        national: bool,
    },
    /// List registered programmes.
    List,
}

/// `crest import` arguments.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Files to import (.csv, .xlsx).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Validate and report only; store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Store the valid rows even when some rows are rejected.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Write every rejected row (row, column, value, reason) to this CSV file.
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Write every warning (row, column, value, reason) to this CSV file; the terminal shows
    /// a count and one example per column.
    #[arg(long)]
    pub warnings: Option<PathBuf>,
    /// Workbook sheet to read (default: the first).
    #[arg(long)]
    pub sheet: Option<String>,
    /// Accept probable duplicates (same NHS number and event date under another episode id).
    #[arg(long)]
    pub allow_duplicates: bool,
}

/// Output formats of `crest kpis`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned table for the terminal.
    Table,
    /// The JSON contract of kpis.md.
    Json,
    /// One row per programme.
    Csv,
}

/// `crest kpis` arguments.
#[derive(clap::Args, Debug)]
pub struct KpiArgs {
    /// First referral date of the period (default: start of the last complete financial year).
    #[arg(long)]
    pub from: Option<String>,
    /// Last referral date of the period, inclusive (default: its end).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this programme.
    #[arg(long)]
    pub programme: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// JSON file of thresholds (default: the NCP_CR values in kpis.md).
    #[arg(long)]
    pub thresholds: Option<PathBuf>,
    /// Read the national store at --db (pseudonymised submissions) instead of a local store.
    #[arg(long)]
    pub national: bool,
    /// Re-base KPIs 4–7 on this period's national averages per nation (from the national
    /// store): prints the current and re-based thresholds.
    #[arg(long, requires = "national")]
    pub rebase: bool,
    /// With --rebase: save the re-based thresholds as a JSON file for next year's --thresholds
    /// (never overwritten).
    #[arg(long, requires = "rebase")]
    pub save: Option<PathBuf>,
}

/// `crest synth` arguments.
#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Number of programmes.
    #[arg(long, default_value_t = 230)]
    pub programmes: usize,
    /// Number of episodes.
    #[arg(long, default_value_t = 95_000)]
    pub episodes: usize,
    /// Random seed: the same seed and period give the same bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First referral date (default: start of the last complete financial year).
    #[arg(long)]
    pub from: Option<String>,
    /// Last referral date (default: its end).
    #[arg(long)]
    pub to: Option<String>,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

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
            let token = crest_core::hex(&bytes);
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
            national_db,
            national_key,
            behind_proxy,
        } => {
            let app = crest_web::App::new(&cli.db, uploads, today).map_err(|e| anyhow!(e))?;
            app.set_behind_proxy(behind_proxy);
            if submission_key.is_some() || std::env::var_os("CREST_SUBMISSION_KEY").is_some() {
                app.set_submission_key(load_key(
                    submission_key.as_deref(),
                    "CREST_SUBMISSION_KEY",
                    "--submission-key",
                )?);
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
            action: KeysAction::New { out },
        } => keys_new(&out),
        Command::Agreements { action } => agreements(&cli.db, action),
        Command::Report {
            action:
                ReportAction::Annual {
                    from,
                    to,
                    out,
                    tables,
                },
        } => {
            let period = period(from.as_deref(), to.as_deref())?;
            let t = std::time::Instant::now();
            let mut national = crest_store::NationalStore::open(&cli.db)?;
            let report = crest_report::annual::annual(&mut national, period, today())
                .map_err(|e| anyhow!(e))?;
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
            let html = report.html;
            match out.extension().and_then(|e| e.to_str()) {
                Some("html") => std::fs::write(&out, html)
                    .with_context(|| format!("cannot write {}", out.display()))?,
                Some("pdf") => {
                    crest_report::annual::annual_pdf(&html, &out).map_err(|e| anyhow!(e))?;
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

fn parse_date(s: &str, what: &str) -> Result<Date> {
    Date::parse(s).map_err(|e| anyhow!("--{what}: {e}"))
}

fn period(from: Option<&str>, to: Option<&str>) -> Result<Period> {
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

fn import(db: &str, args: &ImportArgs) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    let mut opts = ImportOptions::new(today());
    opts.dry_run = args.dry_run;
    opts.skip_invalid = args.skip_invalid;
    opts.allow_duplicates = args.allow_duplicates;
    opts.sheet = args.sheet.clone();
    opts.warnings_file = args.warnings.clone();
    let mut errors = match &args.errors {
        Some(p) => {
            let f = std::fs::File::create(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            Some(csv::Writer::from_writer(
                Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write>,
            ))
        }
        None => None,
    };
    let mut code = 0;
    for file in &args.files {
        let mut bar = Progress::new(&file.display().to_string());
        let mut entry = command_line_entry(
            "",
            "import",
            &file
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        );
        // A stored import is logged in its own transaction.
        opts.log = Some(entry.clone());
        let result = import_file(store.as_mut(), file, &opts, errors.as_mut(), &mut |f| {
            bar.set(f)
        });
        bar.finish();
        match &result {
            Ok(s) => {
                entry.detail = s.counts();
                if !s.committed {
                    entry.outcome = "refused".into();
                }
            }
            Err(_) => entry.outcome = "refused".into(),
        }
        let committed = result.as_ref().is_ok_and(|s| s.committed);
        if !opts.dry_run && !committed {
            // Nothing was stored; the refusal is recorded if the log can be written.
            let _ = store.log(&entry);
        }
        match result {
            Ok(s) => {
                print_summary(file, &s, &opts, args.errors.as_deref());
                if s.rejected > 0 {
                    code = 1;
                }
            }
            Err(e) => {
                println!("{}: refused, nothing was stored: {e}", file.display());
                code = 1;
            }
        }
    }
    Ok(code)
}

fn print_summary(file: &Path, s: &ImportSummary, opts: &ImportOptions, errors_file: Option<&Path>) {
    let verb = if s.committed { "" } else { "would be " };
    println!(
        "{}: {} row(s): {} {verb}imported, {} {verb}updated, {} unchanged, {} rejected",
        file.display(),
        s.rows,
        s.imported,
        s.updated,
        s.unchanged,
        s.rejected
    );
    for w in &s.header_warnings {
        println!("  warning: {w}");
    }
    for e in &s.errors {
        println!("  rejected: row {}, {}", e.row, e.issue);
    }
    if s.error_count > s.errors.len() {
        println!(
            "  … and {} more problem(s){}",
            s.error_count - s.errors.len(),
            match errors_file {
                Some(p) => format!("; all are in {}", p.display()),
                None => "; write them all with --errors FILE".to_string(),
            }
        );
    }
    // Warnings a few at a time; many are summarised by column, one example each.
    if s.warning_count <= 20 {
        for w in &s.warnings {
            println!("  warning: row {}, {}", w.row, w.issue);
        }
    } else {
        println!(
            "  {} warning(s) in {} column(s){}:",
            s.warning_count,
            s.warnings_by_column.len(),
            match &opts.warnings_file {
                Some(p) => format!("; all are in {}", p.display()),
                None => "; write them all with --warnings FILE".to_string(),
            }
        );
        for (column, (n, first)) in &s.warnings_by_column {
            println!(
                "    {column}: {n} (e.g. row {}, value '{}': {})",
                first.row, first.issue.value, first.issue.message
            );
        }
    }
    if s.blank > 0 {
        println!("  {} blank or notes row(s) ignored", s.blank);
    }
    if opts.dry_run {
        println!("  dry run: nothing was stored");
    } else if !s.committed {
        println!(
            "  nothing was stored: {} row(s) were rejected. Fix them, or use --skip-invalid to store the valid rows.",
            s.rejected
        );
    } else if s.rejected > 0 {
        println!(
            "  the valid rows were stored; {} rejected row(s) were not",
            s.rejected
        );
    }
}

fn kpis(db: &str, args: &KpiArgs) -> Result<i32> {
    let period = period(args.from.as_deref(), args.to.as_deref())?;
    let thresholds = match &args.thresholds {
        Some(p) => Thresholds::from_json(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )
        .map_err(|e| anyhow!(e))?,
        None => Thresholds::default(),
    };
    let (mut programmes, national) = if args.national {
        let mut n = crest_store::NationalStore::open(db)?;
        (n.programmes()?, Some(n))
    } else {
        (crest_store::open(db)?.programmes()?, None)
    };
    if let Some(code) = &args.programme {
        programmes.retain(|p| p.code.eq_ignore_ascii_case(code));
        if programmes.is_empty() {
            bail!("programme {code} is not registered in this store");
        }
    }
    let episodes = match national {
        Some(mut n) => n.kpi_episodes(period.from, period.to, &programmes)?,
        None => crest_store::open(db)?.kpi_episodes(period.from, period.to, &programmes)?,
    };
    if args.rebase {
        let rebased = thresholds.rebased(&programmes, &episodes, period);
        println!(
            "KPIs 4–7 re-based on national averages for {} to {}:\n{:<18} {:>22} {:>22} {:>22} {:>22}",
            period.from, period.to, "nation", "assessment 1", "wait CABG (days)", "wait MI/PCI (days)", "assessment 2"
        );
        for nation in crest_core::Nation::ALL {
            let (Some(a), Some(b)) = (
                thresholds.nations.get(&nation),
                rebased.nations.get(&nation),
            ) else {
                continue;
            };
            let pair = |x: f64, y: f64| format!("{x} → {y}");
            println!(
                "{:<18} {:>22} {:>22} {:>22} {:>22}",
                nation.code(),
                pair(a.assessment1, b.assessment1),
                pair(a.wait_cabg, b.wait_cabg),
                pair(a.wait_mi_pci, b.wait_mi_pci),
                pair(a.assessment2, b.assessment2)
            );
        }
        if let Some(out) = &args.save {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(out)
                .with_context(|| {
                    format!(
                        "cannot create {} (an existing file is never overwritten)",
                        out.display()
                    )
                })?;
            f.write_all(rebased.to_json().as_bytes())?;
            println!(
                "saved to {}: use it next year with --thresholds {}",
                out.display(),
                out.display()
            );
        }
        return Ok(0);
    }
    let report = compute(&programmes, &episodes, period, &thresholds);
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report.to_json())?),
        Format::Csv => print!("{}", report.to_csv()),
        Format::Table => print!("{}", report.to_table()),
    }
    Ok(0)
}

fn synth(
    out: &Path,
    programmes: usize,
    episodes: usize,
    seed: u64,
    period: Period,
) -> Result<String> {
    let s = crest_ingest::synth::write(
        out,
        &crest_ingest::synth::Config {
            programmes,
            episodes,
            seed,
            period,
            today: today(),
        },
    )
    .map_err(|e| anyhow!("{e}"))?;
    Ok(s)
}

fn serve(app: std::sync::Arc<crest_web::App>, addr: &str) -> Result<i32> {
    // One line per request and per problem, with its request id, on standard error.
    let _ = tracing_subscriber::fmt()
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
fn load_key(path: Option<&Path>, env: &str, option: &str) -> Result<crest_privacy::Key> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the key file {}", p.display()))?,
        None => {
            std::env::var(env).map_err(|_| anyhow!("no key: pass {option} FILE or set {env}"))?
        }
    };
    crest_privacy::Key::parse(&text).map_err(|e| anyhow!(e))
}

/// An access-log entry for something done at the command line, by the signed-in OS user.
fn command_line_entry(programme: &str, action: &str, target: &str) -> crest_store::AccessEntry {
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

fn agreements(db: &str, action: AgreementsAction) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    match action {
        AgreementsAction::Add {
            id,
            recipient,
            legal_basis,
            from,
            to,
            fields,
            opt_out_exempt,
        } => {
            use crest_core::governance::{Agreement, AgreementInput};
            let a = Agreement::parse(AgreementInput {
                id,
                recipient,
                legal_basis,
                valid_from: from,
                valid_to: to,
                fields: fields.map(|f| f.split(',').map(str::to_string).collect()),
                opt_out_exempt,
            })
            .map_err(|e| {
                let flag = match e.part {
                    "valid_from" => "from",
                    "valid_to" => "to",
                    "legal_basis" => "legal-basis",
                    other => other,
                };
                anyhow!("--{flag}: {e}")
            })?;
            store.put_agreement(&a)?;
            store.log(&crest_store::AccessEntry {
                detail: a.summary(),
                ..command_line_entry("", "agreement", &a.id)
            })?;
            println!("agreement recorded: {}", a.summary());
        }
        AgreementsAction::List => {
            for a in store.agreements()? {
                println!("{}", a.summary());
            }
        }
    }
    Ok(0)
}

fn submission(db: &str, action: SubmissionAction) -> Result<i32> {
    use crest_privacy::submission::{NdooCheck, NdooList};
    match action {
        SubmissionAction::Build {
            programme,
            from,
            to,
            key,
            ndoo_opted_out,
            ndoo_may_use,
            ndoo_max_age,
            out,
        } => {
            let key = load_key(key.as_deref(), "CREST_SUBMISSION_KEY", "--key")?;
            let ndoo = match (&ndoo_opted_out, &ndoo_may_use) {
                (Some(p), _) => {
                    Some(NdooCheck::read(p, NdooList::OptedOut).map_err(|e| anyhow!(e))?)
                }
                (_, Some(p)) => Some(NdooCheck::read(p, NdooList::MayUse).map_err(|e| anyhow!(e))?),
                _ => None,
            };
            let mut store = crest_store::open(db)?;
            let req = crest_privacy::submission::BuildRequest {
                programme: &programme,
                period: period(from.as_deref(), to.as_deref())?,
                key: &key,
                ndoo: ndoo.as_ref(),
                ndoo_max_age_days: ndoo_max_age,
                today: today(),
                now: crest_store::utc_now(),
            };
            let built =
                crest_privacy::submission::build(store.as_mut(), &req).map_err(|e| anyhow!(e))?;
            std::fs::write(&out, &built.bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            store.record_sent(&programme, &built.sent, &built.withdrawn)?;
            store.log(&crest_store::AccessEntry {
                detail: format!(
                    "{} episodes, {} tombstones, key {}",
                    built.sent.len(),
                    built.withdrawn.len(),
                    key.id()
                ),
                ..command_line_entry(
                    &programme,
                    "submission",
                    &out.file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
                )
            })?;
            println!(
                "{}: {} episode(s), {} tombstone(s); left out: {} at the patient's request, {} by the National Data Opt-out; key {}; sha256 {}",
                out.display(),
                built.sent.len(),
                built.withdrawn.len(),
                built.left_out_own_request,
                built.left_out_ndoo,
                key.id(),
                built.manifest["sha256"].as_str().unwrap_or("")
            );
            Ok(0)
        }
        SubmissionAction::Receive {
            file,
            submission_key,
            national_key,
        } => {
            let sk = load_key(
                submission_key.as_deref(),
                "CREST_SUBMISSION_KEY",
                "--submission-key",
            )?;
            let nk = load_key(
                national_key.as_deref(),
                "CREST_NATIONAL_KEY",
                "--national-key",
            )?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut national = crest_store::NationalStore::open(db)?;
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            let name = file
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            match crest_privacy::submission::receive_logged(
                &mut national,
                &bytes,
                (&sk, &nk),
                (&user, "command_line"),
                &name,
            ) {
                Ok(crest_store::Received::AlreadyReceived) => {
                    println!("{}: already received; nothing changed", file.display());
                    Ok(0)
                }
                Ok(crest_store::Received::Stored {
                    episodes,
                    replaced,
                    deleted,
                }) => {
                    println!(
                        "{}: stored {episodes} episode(s); replaced {replaced} from the earlier submission for the same programme and period; {deleted} deleted by tombstones",
                        file.display()
                    );
                    let programme =
                        crest_privacy::submission::manifest_programme(&bytes).unwrap_or_default();
                    for d in national.cross_programme_duplicates(Some(&programme))? {
                        println!(
                            "  note: patient {}… has an initiating event on {} in programmes {} (counted once nationally)",
                            &d.patient_key[..12],
                            d.event_date,
                            d.programmes.join(", ")
                        );
                    }
                    Ok(0)
                }
                Err(e) => {
                    println!("{}: refused, nothing was stored: {e}", file.display());
                    Ok(1)
                }
            }
        }
    }
}

fn keys_new(out: &Path) -> Result<i32> {
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

fn users(db: &str, action: UsersAction) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    match action {
        UsersAction::Add {
            username,
            role,
            programmes,
        } => {
            let role = crest_store::Role::parse(&role).ok_or_else(|| {
                anyhow!(
                    "--role {role}: use programme_staff, programme_lead, admin or national_analyst"
                )
            })?;
            let password = crest_store::users::new_password();
            crest_store::users::add_user(store.as_mut(), &username, role, &programmes, &password)
                .map_err(|e| anyhow!(e))?;
            println!(
                "user {username} ({}) added; password: {password}",
                role.code()
            );
        }
        UsersAction::List => {
            for u in store.users()? {
                println!(
                    "{:<20} {:<16} {:<20} {}",
                    u.username,
                    u.role.code(),
                    u.programmes.join(";"),
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UsersAction::Disable { username } => {
            let mut u = store
                .user(&username)?
                .ok_or_else(|| anyhow!("no user {username}"))?;
            u.disabled = true;
            store.put_user(&u)?;
            store.drop_user_sessions(&username)?;
            println!("user {username} disabled");
        }
        UsersAction::ResetPassword { username } => {
            let mut u = store
                .user(&username)?
                .ok_or_else(|| anyhow!("no user {username}"))?;
            let password = crest_store::users::new_password();
            u.password_hash =
                crest_store::users::hash_password(&password).map_err(|e| anyhow!(e))?;
            store.put_user(&u)?;
            store.drop_user_sessions(&username)?;
            println!("user {username}: new password {password}");
        }
    }
    Ok(0)
}

/// The demo's national side: keys, an agreement, a synthetic opt-out check result, and every
/// programme's submission built locally and received into a separate national store.
fn demo_national(
    dir: &Path,
    store: &mut dyn crest_store::Store,
    progs: &[crest_core::Programme],
    period: Period,
) -> Result<String> {
    use crest_privacy::submission::{build, BuildRequest, NdooCheck, NdooList};
    for name in ["submission.key", "national.key", "ndoo-check.csv"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    keys_new(&dir.join("submission.key"))?;
    keys_new(&dir.join("national.key"))?;
    let load = |name: &str| -> Result<crest_privacy::Key> {
        crest_privacy::Key::parse(&std::fs::read_to_string(dir.join(name))?).map_err(|e| anyhow!(e))
    };
    let (sk, nk) = (load("submission.key")?, load("national.key")?);
    store.put_agreement(&crest_core::governance::Agreement {
        id: "demo-ncpcr".into(),
        recipient: "National audit of cardiac rehabilitation (demo)".into(),
        legal_basis: "CAG 99/CAG/0001 (synthetic)".into(),
        fields: None,
        opt_out_exempt: false,
        valid_from: period.from,
        valid_to: today().add_days(365),
    })?;
    // A synthetic National Data Opt-out result: every 50th patient of the synthetic file.
    let mut ndoo = String::from("nhs_number,checked_on\n");
    let mut r = csv::Reader::from_path(dir.join("episodes.csv"))?;
    let col = r
        .headers()?
        .iter()
        .position(|h| h == "nhs_number")
        .ok_or_else(|| anyhow!("episodes.csv has no nhs_number"))?;
    for row in r.records().step_by(50).take(2_000) {
        ndoo.push_str(&format!("{},{}\n", &row?[col], today()));
    }
    std::fs::write(dir.join("ndoo-check.csv"), ndoo)?;
    let check =
        NdooCheck::read(&dir.join("ndoo-check.csv"), NdooList::OptedOut).map_err(|e| anyhow!(e))?;
    let national = dir.join("crest-national.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", national.display()));
    }
    let url = format!("sqlite:{}", national.display());
    let mut n = crest_store::NationalStore::open(&url)?;
    n.migrate()?;
    n.upsert_programmes(progs)?;
    let subs = dir.join("submissions");
    std::fs::create_dir_all(&subs)?;
    let (mut sent, mut own, mut nd) = (0, 0, 0);
    let mut bar = Progress::new("submitting each programme to the national store");
    for (i, p) in progs.iter().enumerate() {
        let req = BuildRequest {
            programme: &p.code,
            period,
            key: &sk,
            ndoo: Some(&check),
            ndoo_max_age_days: crest_privacy::submission::NDOO_MAX_AGE_DAYS,
            today: today(),
            now: crest_store::utc_now(),
        };
        let b = build(store, &req).map_err(|e| anyhow!("{}: {e}", p.code))?;
        std::fs::write(subs.join(format!("{}.jsonl", p.code)), &b.bytes)?;
        store.record_sent(&p.code, &b.sent, &b.withdrawn)?;
        crest_privacy::submission::receive_logged(
            &mut n,
            &b.bytes,
            (&sk, &nk),
            ("demo", "national_analyst"),
            &format!("{}.jsonl", p.code),
        )
        .map_err(|e| anyhow!("{}: {e}", p.code))?;
        sent += b.sent.len();
        own += b.left_out_own_request;
        nd += b.left_out_ndoo;
        bar.set((i + 1) as f64 / progs.len() as f64);
    }
    bar.finish();
    println!(
        "\nnational store {}: {} submissions, {sent} pseudonymised episodes; left out {own} at the patient's request and {nd} by the National Data Opt-out; {} initiating events seen in more than one programme",
        national.display(),
        progs.len(),
        n.cross_programme_duplicates(None)?.len()
    );
    Ok(url)
}

fn demo(dir: &Path, programmes: usize, episodes: usize, serve_on: Option<&str>) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db = dir.join("crest-demo.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let period = Period::last_financial_year(today());
    println!(
        "crest demo: generating {episodes} synthetic episodes across {programmes} programmes …"
    );
    println!("{}", synth(dir, programmes, episodes, 1, period)?);
    let db_url = format!("sqlite:{}", db.display());
    let mut store = crest_store::open(&db_url)?;
    store.migrate()?;
    let progs = crest_ingest::programmes::read_programmes(&dir.join("programmes.csv"))?;
    store.upsert_programmes(&progs)?;
    let file = dir.join("episodes.csv");
    let mut bar = Progress::new("importing episodes.csv");
    let t = std::time::Instant::now();
    let s = import_file(
        store.as_mut(),
        &file,
        &ImportOptions::new(today()),
        None,
        &mut |f| bar.set(f),
    )?;
    bar.finish();
    println!(
        "imported {} episodes into {} in {:.1} s ({} rejected)\n",
        s.imported,
        db.display(),
        t.elapsed().as_secs_f64(),
        s.rejected
    );
    let episodes = store.kpi_episodes(period.from, period.to, &progs)?;
    let mut progs = progs;
    progs.sort_by(|a, b| a.code.cmp(&b.code));
    print!(
        "{}",
        compute(&progs, &episodes, period, &Thresholds::default()).to_table()
    );
    println!(
        "\nTry: crest --db {} kpis --programme P001 --from {} --to {}",
        db.display(),
        period.from,
        period.to
    );
    let national_url = demo_national(dir, store.as_mut(), &progs, period)?;
    let code = progs.first().map(|p| p.code.clone()).unwrap_or_default();
    println!("\nDemo logins (passwords are new each run):");
    for (name, role) in [
        ("demo-lead", crest_store::Role::ProgrammeLead),
        ("demo-staff", crest_store::Role::ProgrammeStaff),
        ("demo-admin", crest_store::Role::Admin),
        ("demo-analyst", crest_store::Role::NationalAnalyst),
    ] {
        let password = crest_store::users::new_password();
        crest_store::users::add_user(
            store.as_mut(),
            name,
            role,
            std::slice::from_ref(&code),
            &password,
        )
        .map_err(|e| anyhow!(e))?;
        if role.sees_patients() {
            println!(
                "  {name:<12} {password}  ({}, programme {code})",
                role.code()
            );
        } else {
            println!("  {name:<12} {password}  ({})", role.code());
        }
    }
    drop(store);
    match serve_on {
        Some(addr) => {
            let app =
                crest_web::App::new(&db_url, dir.join("uploads"), today).map_err(|e| anyhow!(e))?;
            let key = |name: &str| -> Result<crest_privacy::Key> {
                let text = std::fs::read_to_string(dir.join(name))?;
                crest_privacy::Key::parse(&text).map_err(|e| anyhow!(e))
            };
            app.set_submission_key(key("submission.key")?);
            app.set_national(&national_url, key("national.key")?)
                .map_err(|e| anyhow!(e))?;
            serve(app, addr)
        }
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn docs_dataset_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dataset.md");
        let on_disk = std::fs::read_to_string(path).expect("docs/dataset.md exists");
        assert!(
            on_disk == crest_core::dataset::reference_markdown(),
            "docs/dataset.md is out of date: run `cargo run -p crest -- dataset --out docs/dataset.md`"
        );
    }
}
