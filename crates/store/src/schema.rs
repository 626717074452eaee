//! The episode statements of each back end, built from the dataset dictionary (the columns
//! themselves come from the frozen migrations in `migrations/`), and SQLite's bulk-load indexes.

use crest_core::FIELDS;

/// SQLite's episode indexes as (name, definition). A bulk load into an empty table drops them
/// and builds each once at the end, by sorting, which is several times faster than keeping
/// them current row by row.
pub(crate) const BULK_INDEXES: [(&str, &str); 2] = [
    (
        "episodes_key",
        "CREATE UNIQUE INDEX episodes_key ON episodes (programme_code, episode_id)",
    ),
    (
        "episodes_programme_referral",
        "CREATE INDEX episodes_programme_referral ON episodes (programme_code, referral_date)",
    ),
];

/// The episode statements, built once from the dictionary, with `?N` placeholders.
pub(crate) struct Sql {
    pub insert: String,
    pub update: String,
    pub select: String,
    pub kpi: String,
}

/// The episode statements.
pub(crate) fn sql() -> &'static Sql {
    static SQL: std::sync::OnceLock<Sql> = std::sync::OnceLock::new();
    SQL.get_or_init(|| Sql {
        insert: insert_sql(),
        update: update_sql(),
        select: select_sql(),
        kpi: kpi_sql(),
    })
}

/// `INSERT` of every column, with numbered placeholders.
fn insert_sql() -> String {
    let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    let marks: Vec<String> = (1..=FIELDS.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO episodes ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    )
}

/// `UPDATE` of every column by key; the key parameters come last.
fn update_sql() -> String {
    let sets: Vec<String> = FIELDS
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{} = ?{}", f.name, i + 1))
        .collect();
    let n = FIELDS.len();
    format!(
        "UPDATE episodes SET {} WHERE programme_code = ?{} AND episode_id = ?{}",
        sets.join(", "),
        n + 1,
        n + 2
    )
}

/// `SELECT` of every column by key.
fn select_sql() -> String {
    let names: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    format!(
        "SELECT {} FROM episodes WHERE programme_code = ?1 AND episode_id = ?2",
        names.join(", ")
    )
}

/// The KPI facts of one programme's episodes.
fn kpi_sql() -> String {
    "SELECT referral_date, core_start_date, core_end_date, assessment1_date, \
     assessment2_date, status, initiating_event, treatment FROM episodes \
     WHERE programme_code = ?1"
        .to_string()
}
