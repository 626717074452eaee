//! The episode statements of each back end, built from the dataset dictionary (the columns
//! themselves come from the frozen migrations in `migrations/`), and SQLite's bulk-load indexes.

use crest_core::FIELDS;

/// SQL dialect differences that matter to the schema.
#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
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
