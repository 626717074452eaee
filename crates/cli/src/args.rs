//! The command line's arguments: every command and option, with its help text.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
    /// Import episodes from CSV or XLSX files (one transaction per file) or FHIR R4 JSON (a
    /// Bundle, or bulk-export NDJSON files or a folder of them, read together as one import).
    Import(ImportArgs),
    /// Export a programme's episodes (identifiable, for the programme's own use) as CSV, XLSX
    /// or a FHIR R4 collection Bundle that `crest import` reads back.
    Export(ExportArgs),
    /// FHIR R4 (UK Core): `crest fhir mapping` prints the codes crest maps, with where each was
    /// checked.
    Fhir {
        #[command(subcommand)]
        action: FhirAction,
    },
    /// The seven NCP_CR KPIs and grades for a reporting period.
    Kpis(KpiArgs),
    /// A measure month by month as an SPC chart (XmR, Making Data Count rules): one row per
    /// month with its centre line, process limits, signal and variation.
    Spc(SpcArgs),
    /// Service changes (a new class, a new community programme): recorded with their date,
    /// drawn on SPC charts and splitting their limits.
    Changes {
        #[command(subcommand)]
        action: ChangesAction,
    },
    /// Expected patients (eligible for CR per programme or region, quarter and condition, as
    /// hospital episode counts give them): `crest expected import FILE.csv`.
    Expected {
        #[command(subcommand)]
        action: ExpectedAction,
    },
    /// Case ascertainment: referred ÷ expected and started ÷ expected, with 95% intervals,
    /// per programme, region and nation; programmes under 80% flagged.
    Ascertainment(AscertainmentArgs),
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
    Serve(ServeArgs),
    /// API tokens with which a programme's system pushes submissions to the national store at
    /// --db (`crest tokens new --programme P001`; printed once, stored hashed).
    Tokens {
        #[command(subcommand)]
        action: TokensAction,
    },
    /// The national audit's published figures for programme leads' dashboards on a server with
    /// no national store: `crest figures load --period "…" --programmes programmes.csv
    /// --funnels funnels.csv` (the tables `crest report annual --tables` writes).
    Figures {
        #[command(subcommand)]
        action: FiguresAction,
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
    /// Back the store at --db up to a new file, consistently while the server runs (SQLite:
    /// the online backup API; PostgreSQL: pg_dump's custom format, where pg_dump is installed).
    Backup {
        /// The backup file to write (never replaces an existing file).
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into the new, empty store at --db, then check its migrations and its
    /// access log's hash chain (SQLite: a new file; PostgreSQL: an empty database, with
    /// pg_restore).
    Restore {
        /// The backup file (`crest backup`'s, or pg_dump's custom format).
        file: PathBuf,
    },
    /// The configuration (`crest.toml` and CREST_* environment variables): `crest config
    /// check` shows every setting, where it came from, and whether it works.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// The access log: `crest audit verify` checks its hash chain.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Approved research projects in the national store at --db: `crest projects add …`,
    /// `crest projects list`.
    Projects {
        #[command(subcommand)]
        action: ProjectsAction,
    },
    /// A research project's k-anonymous extract from the national store at --db, as CSV or
    /// Parquet, with its data dictionary beside it (FILE.dictionary.csv).
    Extract {
        /// Project id.
        #[arg(long)]
        project: String,
        /// csv or parquet.
        #[arg(long, default_value = "csv")]
        format: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// As the national team, for this researcher named on the project (default: the
        /// signed-in OS user must be named on it).
        #[arg(long = "for")]
        for_user: Option<String>,
    },
    /// Counts, proportions (with Wilson intervals), means and medians from the national store
    /// at --db, broken down by up to three of: year, quarter, month, nation, region,
    /// programme, sex, age_band, ethnic_group, imd_quintile, priority_group, delivery_mode,
    /// pathway.
    Aggregate {
        /// Breakdowns, comma-separated (up to three); none for the whole.
        #[arg(long, default_value = "")]
        by: String,
        /// uptake, referred, started, completed, completion, wait_days, or a numeric field
        /// such as a1_bmi.
        #[arg(long, default_value = "uptake")]
        measure: String,
        /// First referral date (default: start of the last complete financial year).
        #[arg(long)]
        from: Option<String>,
        /// Last referral date.
        #[arg(long)]
        to: Option<String>,
        /// Only these regions (comma-separated), as a commissioner sees them.
        #[arg(long)]
        regions: Option<String>,
        /// Apply disclosure control exactly as researchers and commissioners get it.
        #[arg(long)]
        published: bool,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
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
        /// Episodes a year to generate; the demo covers the last three financial years.
        #[arg(long, default_value_t = 95_000)]
        episodes: usize,
    },
}

/// Research project actions.
#[derive(Subcommand, Debug)]
pub enum ProjectsAction {
    /// Record (or update) an approved research project.
    Add {
        /// Short id, e.g. uptake-2025.
        #[arg(long)]
        id: String,
        /// Title.
        #[arg(long)]
        title: String,
        /// Approval reference (ethics, CAG or the audit's panel).
        #[arg(long)]
        approval: String,
        /// Approved fields, comma-separated (extract columns such as age_band, sex,
        /// referral_days, a1_bmi, or the dataset names they come from).
        #[arg(long)]
        fields: String,
        /// User names of the researchers, comma-separated.
        #[arg(long)]
        researchers: String,
        /// First day extracts may be downloaded.
        #[arg(long)]
        from: String,
        /// Last day.
        #[arg(long)]
        to: String,
        /// k of k-anonymity (at least 2).
        #[arg(long, default_value_t = 5)]
        k: u32,
    },
    /// List the projects.
    List,
}

/// Published-figures actions.
#[derive(Subcommand, Debug)]
pub enum FiguresAction {
    /// Load (or replace) the published programmes.csv and funnels.csv.
    Load {
        /// Which period they are for, e.g. "1 April 2024 to 31 March 2025".
        #[arg(long)]
        period: String,
        /// The published programmes.csv.
        #[arg(long)]
        programmes: PathBuf,
        /// The published funnels.csv.
        #[arg(long)]
        funnels: PathBuf,
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
        /// The programme's own signing key file (`crest keys new --signing`), which proves
        /// to the national audit that this programme built the file (else CREST_SIGNING_KEY
        /// holds the key file's text or names the file).
        #[arg(long)]
        signing_key: Option<PathBuf>,
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
        /// Funnel limits: auto (the default: adjusted multiplicatively when programmes vary
        /// more than chance allows, by the overdispersion test of Spiegelhalter 2005), plain
        /// (kpis.md's Wilson limits), multiplicative or additive. Outliers follow the choice.
        #[arg(long, default_value = "auto")]
        funnel_method: String,
    },
    /// The public results site: static HTML pages of the annual report's published results
    /// (a page per programme, searchable; funnel plots; inequalities; every table as CSV),
    /// disclosure-controlled exactly as the report, working from any web server or from disk.
    Site {
        /// First referral date (default: start of the last complete financial year).
        #[arg(long)]
        from: Option<String>,
        /// Last referral date.
        #[arg(long)]
        to: Option<String>,
        /// The folder to write (made if missing).
        #[arg(long)]
        out: PathBuf,
        /// Funnel limits: auto (the default), plain, multiplicative or additive.
        #[arg(long, default_value = "auto")]
        funnel_method: String,
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
        /// Make a programme's Ed25519 signing key instead (with --programme): the private key
        /// goes to --out, and the public key is printed, to register nationally with
        /// `crest programmes keys add`.
        #[arg(long, requires = "programme")]
        signing: bool,
        /// The programme the signing key signs for.
        #[arg(long, requires = "signing")]
        programme: Option<String>,
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
        /// programme_staff, programme_lead, admin, national_analyst, commissioner or researcher
        /// (researchers are named on research projects: `crest projects add --researchers`).
        #[arg(long)]
        role: String,
        /// Programme codes the user works for (repeat for several).
        #[arg(long = "programme")]
        programmes: Vec<String>,
        /// A commissioner's regions (repeat for several), as programmes.csv names them.
        #[arg(long = "region")]
        regions: Vec<String>,
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
    /// Make a personal API token for a user (printed once; the store keeps its hash). Users
    /// make their own on the web's "API tokens" page.
    Token {
        /// Login name.
        username: String,
        /// What it is for.
        #[arg(long, default_value = "made with crest users token")]
        label: String,
        /// Days until it expires (1 to 365).
        #[arg(long, default_value_t = 90)]
        days: u32,
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
    /// Programmes' public signing keys in the national store at --db: `add`, `list`, `revoke`.
    Keys {
        #[command(subcommand)]
        action: SigningKeysAction,
    },
}

/// Actions on programmes' public signing keys (national store).
#[derive(Subcommand, Debug)]
pub enum SigningKeysAction {
    /// Register a programme's public key (as `crest keys new --signing` prints it). A
    /// programme may have several (to rotate keys); each is accepted within its validity.
    Add {
        /// The programme.
        #[arg(long)]
        programme: String,
        /// The public key: `ed25519:` and 64 hex digits.
        #[arg(long)]
        public_key: String,
        /// First day the key is accepted (default: today).
        #[arg(long)]
        from: Option<String>,
        /// Last day the key is accepted (default: no end).
        #[arg(long)]
        to: Option<String>,
    },
    /// Every registered key: id, programme, validity and whether it is revoked.
    List,
    /// Revoke a key by its id (`sig-…`): files signed with it are refused from now on.
    Revoke {
        /// The key's id.
        key_id: String,
    },
}

/// `crest import` arguments.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Files to import (.csv, .xlsx; FHIR .json or .ndjson, or a folder of bulk-export NDJSON).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The programme of FHIR episodes whose files do not name one (default: the store's only
    /// programme).
    #[arg(long)]
    pub programme: Option<String>,
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

/// `crest fhir` actions.
#[derive(Subcommand, Debug)]
pub enum FhirAction {
    /// Print the mapping: every resource element and code crest reads or writes, the dataset
    /// field it fills, and where the code was checked.
    Mapping {
        /// `csv` (the mapping file itself) or `markdown` (the documentation, docs/fhir.md).
        #[arg(long, value_enum, default_value_t = MappingFormat::Csv)]
        format: MappingFormat,
    },
}

/// How `crest fhir mapping` prints.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingFormat {
    /// The mapping file.
    Csv,
    /// A Markdown table.
    Markdown,
}

/// Formats of `crest export`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV with the import's columns.
    Csv,
    /// An XLSX workbook with the import's columns and a notes sheet.
    Xlsx,
    /// A FHIR R4 collection Bundle (JSON).
    Fhir,
}

/// `crest export` arguments.
#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The programme whose episodes to export.
    #[arg(long)]
    pub programme: String,
    /// Episodes referred on or after this date.
    #[arg(long)]
    pub from: Option<String>,
    /// Episodes referred on or before this date.
    #[arg(long)]
    pub to: Option<String>,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Output file.
    #[arg(long)]
    pub out: PathBuf,
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

/// `crest changes` actions.
#[derive(Subcommand, Debug)]
pub enum ChangesAction {
    /// Record a service change in the local store at --db.
    Add {
        /// The programme whose services changed.
        #[arg(long, conflicts_with_all = ["region", "national"])]
        programme: Option<String>,
        /// The region whose services changed.
        #[arg(long, conflicts_with = "national")]
        region: Option<String>,
        /// Every programme's services changed.
        #[arg(long)]
        national: bool,
        /// The day it took effect (YYYY-MM-DD or DD/MM/YYYY).
        #[arg(long)]
        date: String,
        /// What changed, in at most 200 characters.
        #[arg(long)]
        text: String,
    },
    /// Every service change recorded, oldest first.
    List,
}

/// Output formats of `crest spc`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpcFormat {
    /// One row per month.
    Csv,
    /// The chart as JSON: the measure, its direction, every month and the assurance.
    Json,
}

/// Whose figures a command works over (`crest spc`, `crest ascertainment`).
#[derive(clap::Args, Debug)]
pub struct ScopeArgs {
    /// Only this programme.
    #[arg(long, conflicts_with = "region")]
    pub programme: Option<String>,
    /// Only the programmes of this region.
    #[arg(long)]
    pub region: Option<String>,
    /// Read the national store at --db (every programme, unless --programme or --region
    /// chooses) instead of a local store.
    #[arg(long)]
    pub national: bool,
}

/// `crest spc` arguments.
#[derive(clap::Args, Debug)]
pub struct SpcArgs {
    /// The measure: uptake, wait, assessment1, assessment2, completion or referrals.
    #[arg(long)]
    pub measure: String,
    /// Whose figures.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// The first month: a date in it, or YYYY-MM (default: 24 months before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// The last month: a date in it, or YYYY-MM (default: the last complete month).
    #[arg(long)]
    pub to: Option<String>,
    /// A service change from this date: the limits are worked out afresh from its month
    /// (repeat for several).
    #[arg(long = "change")]
    pub changes: Vec<String>,
    /// A target to read the assurance against (a proportion from 0 to 1, or days).
    #[arg(long)]
    pub target: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SpcFormat::Csv)]
    pub format: SpcFormat,
}

/// `crest expected` actions.
#[derive(Subcommand, Debug)]
pub enum ExpectedAction {
    /// Load a file (CSV or XLSX) with the columns programme_code (or region), quarter
    /// (YYYY-Qn, Q1 is January to March), condition (mi, pci, cabg, heart_failure, other)
    /// and expected. Rows already loaded are replaced, so loading a file again changes
    /// nothing; any bad row refuses the whole file.
    Import {
        /// The file.
        file: PathBuf,
        /// Load into the national store at --db.
        #[arg(long)]
        national: bool,
    },
}

/// `crest ascertainment` arguments.
#[derive(clap::Args, Debug)]
pub struct AscertainmentArgs {
    /// Whose figures.
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// First referral date (default: start of the last complete financial year); quarters
    /// wholly inside the period count.
    #[arg(long)]
    pub from: Option<String>,
    /// Last referral date (default: its end).
    #[arg(long)]
    pub to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RowsFormat::Csv)]
    pub format: RowsFormat,
}

/// How `crest ascertainment` writes its figures.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsFormat {
    /// One row per area and condition.
    Csv,
    /// The period, its quarters and the same rows as objects.
    Json,
}

/// `crest config …`.
#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Show every setting (secrets masked) with where it came from, and check that the store
    /// answers with its migrations current, key files read, the uploads folder is writable and
    /// the addresses parse; every problem is listed, and the exit code is 1 if there is any.
    Check,
}

/// What `crest serve` is given.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CREST_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Where uploads wait for confirmation.
    #[arg(long, env = "CREST_UPLOADS", default_value = "crest-uploads")]
    pub uploads: PathBuf,
    /// Submission key file, so programme leads can build national submissions and the
    /// national side can check them (else CREST_SUBMISSION_KEY, if set, holds the key's text).
    #[arg(long, env = "CREST_SUBMISSION_KEY_FILE")]
    pub submission_key: Option<PathBuf>,
    /// The programmes' signing keys, so leads' submissions built on the web prove which
    /// programme made them: a key file, or a folder of them (one `*.key` per programme;
    /// else CREST_SIGNING_KEY names one).
    #[arg(long, env = "CREST_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// The server's own key file (`crest keys new`), kept outside the database: users'
    /// security-code secrets are sealed with it in the store (else CREST_SERVER_KEY holds
    /// the key file's text). Without it they are stored in the clear.
    #[arg(long, env = "CREST_SERVER_KEY_FILE")]
    pub server_key: Option<PathBuf>,
    /// Also serve the national side (national analysts, receipts, the API) over this
    /// national store.
    #[arg(long, env = "CREST_NATIONAL_DB", requires = "national_key")]
    pub national_db: Option<String>,
    /// The national key file (with --national-db).
    #[arg(long, env = "CREST_NATIONAL_KEY_FILE")]
    pub national_key: Option<PathBuf>,
    /// Behind a reverse proxy that terminates TLS: cookies are marked Secure, and sign-in
    /// throttling uses the client address the proxy appends to X-Forwarded-For.
    #[arg(long, env = "CREST_BEHIND_PROXY")]
    pub behind_proxy: bool,
    /// The national audit's address, so leads can send submissions to it from the web
    /// (with --send-token; https://, or http:// on this machine only).
    #[arg(long, env = "CREST_SEND_TO", requires = "send_token")]
    pub send_to: Option<String>,
    /// The API token the national audit issued for this programme system.
    #[arg(long, env = "CREST_SEND_TOKEN", hide_env_values = true)]
    pub send_token: Option<String>,
    /// A bearer token that opens GET /metrics to a monitoring server (it is otherwise
    /// answered only to this machine's loopback address).
    #[arg(long, env = "CREST_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Addresses that may read GET /metrics without the token (comma-separated IPs).
    #[arg(long, env = "CREST_METRICS_ALLOW", value_delimiter = ',')]
    pub metrics_allow: Vec<std::net::IpAddr>,
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
    /// Also write the episodes as FHIR R4 bulk-export NDJSON (one file per resource type) in
    /// this folder.
    #[arg(long)]
    pub fhir: Option<PathBuf>,
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

    #[test]
    fn docs_fhir_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/fhir.md");
        let on_disk = std::fs::read_to_string(path).expect("docs/fhir.md exists");
        assert!(
            on_disk == crest_ingest::fhir::mapping::document(),
            "docs/fhir.md is out of date: run `cargo run -p crest -- fhir mapping --format markdown > docs/fhir.md`"
        );
    }
}
