//! The schema, derived from the dataset dictionary, in each back end's dialect.

use crest_core::{Kind, FIELDS};

/// SQL dialect differences that matter to the schema.
#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

pub(crate) fn column_type(kind: &Kind, d: Dialect) -> &'static str {
    match (kind, d) {
        (Kind::Int { .. }, Dialect::Sqlite) => "INTEGER",
        (Kind::Int { .. }, Dialect::Postgres) => "BIGINT",
        (Kind::Decimal { .. }, Dialect::Sqlite) => "REAL",
        (Kind::Decimal { .. }, Dialect::Postgres) => "DOUBLE PRECISION",
        (Kind::Bool, Dialect::Sqlite) => "INTEGER",
        (Kind::Bool, Dialect::Postgres) => "BOOLEAN",
        _ => "TEXT",
    }
}

/// Migration 1: programmes and episodes.
pub(crate) fn v1(d: Dialect) -> Vec<String> {
    let cols: Vec<String> = FIELDS
        .iter()
        .map(|f| {
            let not_null = if f.required { " NOT NULL" } else { "" };
            format!("    {} {}{}", f.name, column_type(&f.kind, d), not_null)
        })
        .collect();
    let mut out = vec![
        "CREATE TABLE programmes (
            programme_code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            nation TEXT NOT NULL,
            region TEXT NOT NULL,
            professions TEXT NOT NULL,
            offers TEXT NOT NULL
        )"
        .to_string(),
        // In SQLite the key is a unique index rather than a primary key so that a bulk load
        // can build it once at the end (see [`BULK_INDEXES`]).
        format!(
            "CREATE TABLE episodes (\n{},\n{}    FOREIGN KEY (programme_code) REFERENCES programmes (programme_code)\n)",
            cols.join(",\n"),
            match d {
                Dialect::Postgres => "    PRIMARY KEY (programme_code, episode_id),\n",
                Dialect::Sqlite => "",
            }
        ),
    ];
    match d {
        Dialect::Sqlite => out.extend(BULK_INDEXES.iter().map(|(_, sql)| sql.to_string())),
        Dialect::Postgres => out.push(KPI_INDEX.to_string()),
    }
    // Each programme's KPI facts, packed (see `KpiEpisode::encode`), rewritten whenever an
    // import or edit touches the programme: the KPIs read these instead of every row.
    out.push(format!(
        "CREATE TABLE kpi_facts (\n    programme_code TEXT PRIMARY KEY REFERENCES programmes (programme_code),\n    facts {} NOT NULL\n)",
        match d {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
        }
    ));
    out
}

/// SQLite's episode indexes as (name, definition). A bulk load into an empty table drops them
/// and builds each once at the end, by sorting, which is several times faster than keeping
/// them current row by row.
pub(crate) const BULK_INDEXES: [(&str, &str); 2] = [
    (
        "episodes_key",
        "CREATE UNIQUE INDEX episodes_key ON episodes (programme_code, episode_id)",
    ),
    ("episodes_kpi", KPI_INDEX),
];

/// Covers the KPI query, so the KPIs read a narrow index instead of the whole table.
const KPI_INDEX: &str = "CREATE INDEX episodes_kpi ON episodes (referral_date, \
    programme_code, core_start_date, core_end_date, assessment1_date, assessment2_date, status, \
    initiating_event, treatment)";

/// The statements of one dialect, built once from the dictionary.
pub(crate) struct Sql {
    pub insert: String,
    pub update: String,
    pub select: String,
    pub kpi: String,
}

/// The statements for a dialect.
pub(crate) fn sql(d: Dialect) -> &'static Sql {
    static SQLITE: std::sync::OnceLock<Sql> = std::sync::OnceLock::new();
    static PG: std::sync::OnceLock<Sql> = std::sync::OnceLock::new();
    let cell = match d {
        Dialect::Sqlite => &SQLITE,
        Dialect::Postgres => &PG,
    };
    cell.get_or_init(|| Sql {
        insert: insert_sql(d),
        update: update_sql(d),
        select: select_sql(d),
        kpi: kpi_sql(d),
    })
}

/// `INSERT` of every column, with numbered placeholders.
fn insert_sql(d: Dialect) -> String {
    let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    let marks: Vec<String> = (1..=FIELDS.len()).map(|i| placeholder(d, i)).collect();
    format!(
        "INSERT INTO episodes ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    )
}

/// `UPDATE` of every column by key; the key parameters come last.
fn update_sql(d: Dialect) -> String {
    let sets: Vec<String> = FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = {}", f.name, placeholder(d, i + 1)))
        .collect();
    let n = FIELDS.len();
    format!(
        "UPDATE episodes SET {} WHERE programme_code = {} AND episode_id = {}",
        sets.join(", "),
        placeholder(d, n + 1),
        placeholder(d, n + 2)
    )
}

/// `SELECT` of every column by key.
fn select_sql(d: Dialect) -> String {
    let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    format!(
        "SELECT {} FROM episodes WHERE programme_code = {} AND episode_id = {}",
        names.join(", "),
        placeholder(d, 1),
        placeholder(d, 2)
    )
}

/// The KPI facts of one programme's episodes.
fn kpi_sql(d: Dialect) -> String {
    format!(
        "SELECT referral_date, core_start_date, core_end_date, assessment1_date, \
         assessment2_date, status, initiating_event, treatment FROM episodes \
         WHERE programme_code = {}",
        placeholder(d, 1)
    )
}

fn placeholder(d: Dialect, i: usize) -> String {
    match d {
        Dialect::Sqlite => format!("?{i}"),
        Dialect::Postgres => format!("${i}"),
    }
}

/// Migration 3 (both back ends): a version per programme's data, raised whenever its episodes
/// change, so readers (the dashboard) can tell whether what they computed is still current.
pub(crate) fn v3() -> Vec<String> {
    vec!["ALTER TABLE kpi_facts ADD COLUMN version BIGINT NOT NULL DEFAULT 1".to_string()]
}
