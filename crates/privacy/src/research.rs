//! Research extracts (privacy.md, "Research extracts"): row-level data from the national store
//! for an approved project only. Patient keys are re-keyed for each extract, from the project's
//! own secret and a new random salt: two projects, or two extracts of one project (before and
//! after an amendment), can never be joined on them. Age comes in 5-year bands (90+); dates
//! become days since the initiating event, which itself is given as month and year; there is no
//! free text; and k-anonymity holds over the quasi-identifiers: every combination released
//! holds at least k distinct patients (a patient with episodes in two programmes counts once),
//! records in smaller classes are suppressed, and the number suppressed is reported and logged.
//! Nothing outside the approved fields is ever read into an extract.
//!
//! Extracts stream: the store is read twice (once to size the classes, once to write), and
//! rows go straight to CSV or to Parquet row groups, so a million rows take little memory.

pub use crate::generalise::Value;
use crate::generalise::{self, BaseClass};
use crest_core::{Code, Date, Field, Kind, PriorityGroup};
use crest_store::national::{national_fields, Project};
use crest_store::NationalStore;
use std::collections::HashMap;
use std::io::Write;

/// Why an extract was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// No such project, or the user is not named on it (the same answer, so names of other
    /// people's projects do not leak).
    #[error("there is no research project {0} that you are named on")]
    NoProject(String),
    /// Outside the approval's validity.
    #[error("project {id}'s approval runs from {from} to {to}; extracts are refused outside it")]
    OutsideApproval {
        /// Project id.
        id: String,
        /// First valid day.
        from: Date,
        /// Last valid day.
        to: Date,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crest_store::StoreError),
    /// Writing the file failed.
    #[error("the extract could not be written: {0}")]
    Write(#[from] std::io::Error),
    /// Writing the CSV failed.
    #[error("the extract could not be written: {0}")]
    Csv(#[from] csv::Error),
    /// Writing the Parquet file failed.
    #[error("the extract could not be written: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// How a column's values are typed (Parquet's physical types; CSV writes them as text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// Text.
    Text,
    /// Whole number.
    Int,
    /// Decimal.
    Real,
}

/// Where a column comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// HMAC of the national patient key with the extract's own key (the project's secret and a
    /// salt new for each extract).
    PatientKey,
    /// 5-year band of `age_at_event`.
    AgeBand,
    /// `event_date` as `YYYY-MM`.
    EventMonth,
    /// From `initiating_event` and `treatment`.
    PriorityGroup,
    /// The programme's nation.
    Nation,
    /// Days from `event_date` to this date field.
    DaysSinceEvent(&'static str),
    /// A national field as it is.
    Field(&'static str),
}

/// One column an approval may list.
#[derive(Clone, Debug)]
pub struct ExtractColumn {
    /// Column name in the extract.
    pub name: String,
    /// What it holds, in words.
    pub label: String,
    /// Its type.
    pub kind: ColumnType,
    /// Its codes and labels, for coded columns.
    pub codes: &'static [Code],
    /// Whether it is a quasi-identifier (k-anonymity is held over these).
    pub quasi_identifier: bool,
    source: Source,
}

/// The quasi-identifier columns (privacy.md), in extract order.
pub const QUASI_IDENTIFIERS: [&str; 7] = [
    "age_band",
    "sex",
    "ethnicity",
    "imd_quintile",
    "nation",
    "priority_group",
    "event_month",
];

fn field(name: &str) -> &'static Field {
    crest_core::field_by_name(name).unwrap_or(&crest_core::FIELDS[0])
}

/// Every column an approval may list, in extract order: the quasi-identifiers, then each
/// national field that is neither free text nor replaced by one of them (dates as days since
/// the event). `patient_key` is always the first column and is not listed.
pub fn extract_columns() -> Vec<ExtractColumn> {
    let qi = |name: &str, label: &str, kind, codes, source| ExtractColumn {
        name: name.into(),
        label: label.into(),
        kind,
        codes,
        quasi_identifier: true,
        source,
    };
    let codes_of = |f: &Field| match f.kind {
        Kind::Code(c) | Kind::CodeList(c) => c,
        _ => &[],
    };
    let mut out = vec![
        qi(
            "age_band",
            "Age at the event in 5-year bands (90+ the top band)",
            ColumnType::Text,
            &[],
            Source::AgeBand,
        ),
        qi(
            "sex",
            "Sex",
            ColumnType::Text,
            codes_of(field("sex")),
            Source::Field("sex"),
        ),
        qi(
            "ethnicity",
            "Ethnic group (NHS ethnic category)",
            ColumnType::Text,
            codes_of(field("ethnicity")),
            Source::Field("ethnicity"),
        ),
        qi(
            "imd_quintile",
            "Deprivation quintile (1 = most deprived)",
            ColumnType::Int,
            &[],
            Source::Field("imd_quintile"),
        ),
        qi(
            "nation",
            "The programme's nation",
            ColumnType::Text,
            &[],
            Source::Nation,
        ),
        qi(
            "priority_group",
            "Priority group (kpis.md)",
            ColumnType::Text,
            &[],
            Source::PriorityGroup,
        ),
        qi(
            "event_month",
            "Month and year of the initiating event (YYYY-MM)",
            ColumnType::Text,
            &[],
            Source::EventMonth,
        ),
    ];
    let replaced = [
        "sex",
        "ethnicity",
        "imd_quintile",
        "age_at_event",
        "event_date",
    ];
    for f in national_fields() {
        if replaced.contains(&f.name) || matches!(f.kind, Kind::Text { .. }) {
            continue;
        }
        let (name, label, kind, source) = match f.kind {
            Kind::Date => (
                format!("{}_days", f.name.trim_end_matches("_date")),
                format!("{}: days since the initiating event", f.label),
                ColumnType::Int,
                Source::DaysSinceEvent(f.name),
            ),
            Kind::Int { .. } => (
                f.name.to_string(),
                f.label.to_string(),
                ColumnType::Int,
                Source::Field(f.name),
            ),
            Kind::Decimal { .. } => (
                f.name.to_string(),
                f.label.to_string(),
                ColumnType::Real,
                Source::Field(f.name),
            ),
            _ => (
                f.name.to_string(),
                f.label.to_string(),
                ColumnType::Text,
                Source::Field(f.name),
            ),
        };
        out.push(ExtractColumn {
            name,
            label,
            kind,
            codes: codes_of(f),
            // What describes the person or their event narrows a record as a quasi-identifier
            // does: the programme, the event and its treatment, and every day offset (dates
            // of their care, which a neighbour or employer may know).
            quasi_identifier: matches!(f.name, "programme_code" | "initiating_event" | "treatment")
                || matches!(f.kind, Kind::Date),
            source,
        });
    }
    out
}

/// The approved columns of a typed list: extract column names, or the dataset names they come
/// from (`age_at_event` is `age_band`, `event_date` is `event_month`, `referral_date` is
/// `referral_days`). Every problem at once; no column twice.
pub fn parse_fields(list: &str) -> Result<Vec<String>, crest_core::Invalid> {
    let columns = extract_columns();
    let mut out: Vec<String> = Vec::new();
    let mut bad = Vec::new();
    for typed in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let t = typed.to_ascii_lowercase();
        let name = match t.as_str() {
            "age_at_event" | "age" => "age_band".to_string(),
            "event_date" => "event_month".to_string(),
            "initiating_event+treatment" => "priority_group".to_string(),
            other if other.ends_with("_date") => {
                format!("{}_days", other.trim_end_matches("_date"))
            }
            other => other.to_string(),
        };
        if !columns.iter().any(|c| c.name == name) {
            bad.push(typed.to_string());
        } else if !out.contains(&name) {
            out.push(name);
        }
    }
    if !bad.is_empty() {
        return Err(format!(
            "not fields an extract can hold: {} (identifiers, free text and local fields never leave; the extract's columns are: {})",
            bad.join(", "),
            columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
        ).into());
    }
    if out.is_empty() {
        return Err("approve at least one field".into());
    }
    Ok(out)
}

/// The columns of a project's extract, in extract order (`patient_key` first).
pub fn project_columns(project: &Project) -> Vec<ExtractColumn> {
    let mut out = vec![ExtractColumn {
        name: "patient_key".into(),
        label: "The patient, keyed for this extract only (never the same in another extract, of this project or another)"
            .into(),
        kind: ColumnType::Text,
        codes: &[],
        quasi_identifier: false,
        source: Source::PatientKey,
    }];
    out.extend(
        extract_columns()
            .into_iter()
            .filter(|c| project.fields.iter().any(|f| f == &c.name)),
    );
    out
}

/// The extract's data dictionary as CSV: each column's name, meaning, type and codes.
pub fn dictionary_csv(project: &Project) -> Result<Vec<u8>, ExtractError> {
    dictionary_of(project, None)
}

/// The data dictionary of one extract: as [`dictionary_csv`], with the column `released_as`
/// stating how each quasi-identifier was generalised in that extract.
pub fn extract_dictionary_csv(
    project: &Project,
    summary: &ExtractSummary,
) -> Result<Vec<u8>, ExtractError> {
    dictionary_of(project, Some(summary))
}

fn dictionary_of(
    project: &Project,
    summary: Option<&ExtractSummary>,
) -> Result<Vec<u8>, ExtractError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["column", "meaning", "type", "quasi_identifier", "codes"];
    if summary.is_some() {
        head.push("released_as");
    }
    w.write_record(&head)?;
    for c in project_columns(project) {
        let codes: Vec<String> = c
            .codes
            .iter()
            .map(|x| format!("{} = {}", x.code, x.label))
            .collect();
        w.write_record(
            [
                c.name.as_str(),
                c.label.as_str(),
                match c.kind {
                    ColumnType::Text => "text",
                    ColumnType::Int => "whole number",
                    ColumnType::Real => "decimal",
                },
                if c.quasi_identifier { "yes" } else { "no" },
                &codes.join("; "),
            ]
            .into_iter()
            .map(String::from)
            .chain(summary.map(|s| {
                s.generalisation
                    .iter()
                    .find(|(name, _)| *name == c.name)
                    .map_or_else(|| "as recorded".to_string(), |(_, how)| how.clone())
            }))
            .collect::<Vec<String>>(),
        )?;
    }
    w.into_inner()
        .map_err(|e| ExtractError::Write(e.into_error()))
}

/// A new project secret (256 random bits, hex): the key its patient keys are made with.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    hex::encode(b)
}

/// The 5-year age band of an age (90+ the top band).
pub fn age_band(age: i64) -> String {
    if age >= 90 {
        "90+".into()
    } else {
        let lo = age.max(0) / 5 * 5;
        format!("{lo}-{}", lo + 4)
    }
}

/// The file format of an extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// CSV with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl Format {
    /// `csv` or `parquet`.
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// What an extract holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtractSummary {
    /// Rows written.
    pub rows: u64,
    /// Records suppressed for k-anonymity.
    pub suppressed: u64,
    /// The k held.
    pub k: u32,
    /// The columns written.
    pub columns: Vec<String>,
    /// How each quasi-identifier was generalised before records were suppressed (column,
    /// in words: "as recorded", "quarter", "not released", …).
    pub generalisation: Vec<(String, String)>,
}

impl ExtractSummary {
    /// The generalisation in a sentence, for the log and the command line.
    pub fn generalisation_text(&self) -> String {
        self.generalisation
            .iter()
            .map(|(c, how)| format!("{c}: {how}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Who asks for an extract, and when.
pub struct Requester<'a> {
    /// User name (a researcher named on the project, or the national team for one).
    pub username: &'a str,
    /// Their role code, for the access log.
    pub role: &'a str,
    /// The named researcher the national team extracts for (`crest extract --for`).
    pub for_researcher: Option<&'a str>,
    /// Today.
    pub today: Date,
}

/// The project, if `who` may download it today.
pub fn allowed_project(
    store: &mut NationalStore,
    id: &str,
    who: &Requester<'_>,
) -> Result<Project, ExtractError> {
    let researcher = who.for_researcher.unwrap_or(who.username);
    let project = store
        .project(id)?
        .filter(|p| p.names(researcher))
        .ok_or_else(|| ExtractError::NoProject(id.to_string()))?;
    if !project.valid_on(who.today) {
        return Err(ExtractError::OutsideApproval {
            id: project.id,
            from: project.valid_from,
            to: project.valid_to,
        });
    }
    Ok(project)
}

/// The national columns an extract must read for its columns.
fn sources(columns: &[ExtractColumn]) -> Vec<&'static str> {
    let mut need: Vec<&'static str> = vec!["patient_key", "event_date"];
    for c in columns {
        let more: &[&'static str] = match c.source {
            Source::PatientKey | Source::EventMonth => &[],
            Source::AgeBand => &["age_at_event"],
            Source::PriorityGroup => &["initiating_event", "treatment"],
            Source::Nation => &["nation"],
            Source::DaysSinceEvent(f) | Source::Field(f) => {
                if !need.contains(&f) {
                    need.push(f);
                }
                &[]
            }
        };
        for m in more {
            if !need.contains(m) {
                need.push(m);
            }
        }
    }
    need
}

/// One row's values for `columns` from the store's cells (named by `read`).
/// With no `secret`, only the quasi-identifiers are worked out (the first pass needs no more).
fn values(
    columns: &[ExtractColumn],
    read: &HashMap<&str, usize>,
    cells: &[Option<&str>],
    secret: Option<&[u8]>,
) -> Vec<Value> {
    let cell = |name: &str| {
        read.get(name)
            .and_then(|&i| cells[i])
            .filter(|s| !s.is_empty())
    };
    let event = cell("event_date").and_then(|d| Date::parse_iso(d).ok());
    columns
        .iter()
        .map(|c| match (c.source, secret) {
            (_, None) if !c.quasi_identifier => Value::Null,
            (Source::PatientKey, Some(secret)) => {
                Value::Text(cell("patient_key").map_or(String::new(), |k| {
                    crate::keys::hmac_sha256_hex(secret, k.as_bytes())[..32].to_string()
                }))
            }
            (Source::PatientKey, None) => Value::Null,
            (Source::AgeBand, _) => cell("age_at_event")
                .and_then(|a| a.parse::<f64>().ok())
                .map_or(Value::Null, |a| Value::Text(age_band(a as i64))),
            (Source::EventMonth, _) => event.map_or(Value::Null, |d| {
                let (y, m, _) = d.ymd();
                Value::Text(format!("{y}-{m:02}"))
            }),
            (Source::PriorityGroup, _) => Value::Text(
                PriorityGroup::of(
                    cell("initiating_event").unwrap_or_default(),
                    cell("treatment").unwrap_or_default(),
                )
                .code()
                .to_string(),
            ),
            (Source::Nation, _) => cell("nation").map_or(Value::Null, |n| Value::Text(n.into())),
            (Source::DaysSinceEvent(f), _) => {
                match (cell(f).and_then(|d| Date::parse_iso(d).ok()), event) {
                    (Some(d), Some(e)) => Value::Int(i64::from(d.days_since(e))),
                    _ => Value::Null,
                }
            }
            (Source::Field(f), _) => match (cell(f), c.kind) {
                (None, _) => Value::Null,
                (Some(v), ColumnType::Int) => v
                    .parse::<f64>()
                    .map_or(Value::Null, |x| Value::Int(x.round() as i64)),
                (Some(v), ColumnType::Real) => v.parse::<f64>().map_or(Value::Null, Value::Real),
                (Some(v), ColumnType::Text) => Value::Text(v.to_string()),
            },
        })
        .collect()
}

/// The quasi-identifier class of a row (the values of its quasi-identifier columns).
fn class_of(columns: &[ExtractColumn], row: &[Value]) -> String {
    columns
        .iter()
        .zip(row)
        .filter(|(c, _)| c.quasi_identifier)
        .map(|(_, v)| v.text())
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// Pass 1 of an extract: the distinct patients of every class of the quasi-identifiers as
/// recorded (k counts people, not episodes, each held as a 64-bit hash of its national key),
/// and the least generalisation that keeps k with at most 5% of the records suppressed.
/// Returns the quasi-identifier columns (positions and names), the records, and the choice.
#[allow(clippy::type_complexity)]
fn plan<'c>(
    store: &mut NationalStore,
    project: &Project,
    columns: &'c [ExtractColumn],
    read: &[&str],
    index: &HashMap<&str, usize>,
) -> Result<(Vec<usize>, Vec<&'c str>, u64, generalise::Choice), ExtractError> {
    let qi: Vec<usize> = (0..columns.len())
        .filter(|&i| columns[i].quasi_identifier)
        .collect();
    let qi_names: Vec<&str> = qi.iter().map(|&i| columns[i].name.as_str()).collect();
    let mut base: HashMap<String, BaseClass> = HashMap::new();
    let mut total = 0u64;
    let patient_at = index.get("patient_key").copied();
    store.each_episode_cells(read, false, &mut |cells| {
        let row = values(columns, index, cells, None);
        let patient = patient_at.and_then(|i| cells[i]).unwrap_or_default();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(patient, &mut h);
        let class = base
            .entry(class_of(columns, &row))
            .or_insert_with(|| BaseClass {
                values: qi.iter().map(|&i| row[i].clone()).collect(),
                records: 0,
                patients: Default::default(),
            });
        class.records += 1;
        class.patients.insert(std::hash::Hasher::finish(&h));
        total += 1;
        Ok(())
    })?;
    let k = u64::from(project.k.max(2));
    let classes: Vec<BaseClass> = base.into_values().collect();
    let choice = generalise::choose(&qi_names, &classes, k);
    Ok((qi, qi_names, total, choice))
}

/// What an approval would release, worked out before any extract is taken: the records the
/// national store holds, those an extract would keep, and how each quasi-identifier would be
/// generalised. Shown when a project is recorded, with a warning under [`KEPT_WARNING`].
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    /// Records (episodes) the national store holds.
    pub records: u64,
    /// Records an extract would keep.
    pub kept: u64,
    /// Column and how it would be released.
    pub generalisation: Vec<(String, String)>,
}

/// The share of records under which recording a project warns that its fields release too
/// little: 90%.
pub const KEPT_WARNING: f64 = 0.9;

impl Preview {
    /// The share of records kept (1 when the store is empty).
    pub fn share(&self) -> f64 {
        if self.records == 0 {
            1.0
        } else {
            self.kept as f64 / self.records as f64
        }
    }

    /// The preview in a sentence, with a warning when it keeps under 90%.
    pub fn sentence(&self) -> String {
        let how = self
            .generalisation
            .iter()
            .map(|(c, how)| format!("{c}: {how}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = format!(
            "An extract would release {} of {} records ({:.1}%){}.",
            self.kept,
            self.records,
            100.0 * self.share(),
            if how.is_empty() {
                String::new()
            } else {
                format!(", with {how}")
            }
        );
        if self.share() < KEPT_WARNING {
            out.push_str(
                " Warning: that is under 90%; approve fewer or broader fields, or a smaller k.",
            );
        }
        out
    }
}

/// The [`Preview`] of `project`'s extract from the national store as it is now.
pub fn preview(store: &mut NationalStore, project: &Project) -> Result<Preview, ExtractError> {
    let columns = project_columns(project);
    let read = sources(&columns);
    let index: HashMap<&str, usize> = read.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    let (_, qi_names, total, choice) = plan(store, project, &columns, &read, &index)?;
    Ok(Preview {
        records: total,
        kept: total - choice.suppressed,
        generalisation: qi_names
            .iter()
            .zip(&choice.levels)
            .map(|(c, l)| (c.to_string(), generalise::describe(c, *l)))
            .collect(),
    })
}

/// Writes the extract of `project` to `out` and logs it in the national access log: every
/// row whose quasi-identifier class has at least k members, and the count of those that do
/// not. `progress` is told the share done (0–1).
pub fn write_extract(
    store: &mut NationalStore,
    project: &Project,
    format: Format,
    out: &mut (dyn Write + Send),
    who: &Requester<'_>,
    progress: &mut dyn FnMut(f64),
) -> Result<ExtractSummary, ExtractError> {
    let columns = project_columns(project);
    let read = sources(&columns);
    let index: HashMap<&str, usize> = read.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    // This extract's own key: the project's secret with a new random salt, so no two
    // extracts share patient keys and none can be joined to another.
    let extract_key =
        crate::keys::hmac_sha256_hex(project.secret.as_bytes(), new_secret().as_bytes());
    let secret = extract_key.as_bytes();
    let (qi, qi_names, total, choice) = plan(store, project, &columns, &read, &index)?;
    progress(0.1);
    // Pass 2: the rows, generalised, of classes of at least k patients.
    let mut sink = Sink::new(format, &columns, out)?;
    let (mut rows, mut suppressed, mut seen) = (0u64, 0u64, 0u64);
    let mut failed: Option<ExtractError> = None;
    store
        .each_episode_cells(&read, true, &mut |cells| {
            let mut row = values(&columns, &index, cells, Some(secret));
            for (j, &i) in qi.iter().enumerate() {
                row[i] = generalise::generalise(qi_names[j], &row[i], choice.levels[j]);
            }
            seen += 1;
            if !choice.kept.contains(&class_of(&columns, &row)) {
                suppressed += 1;
            } else if let Err(e) = sink.push(row) {
                failed = Some(e);
                return Err(crest_store::StoreError::Refused("writing failed".into()));
            } else {
                rows += 1;
            }
            if seen % 50_000 == 0 && total > 0 {
                progress(0.1 + 0.9 * seen as f64 / total as f64);
            }
            Ok(())
        })
        .map_err(|e| failed.take().unwrap_or(ExtractError::Store(e)))?;
    sink.finish()?;
    progress(1.0);
    let summary = ExtractSummary {
        rows,
        suppressed,
        k: project.k,
        columns: columns.iter().map(|c| c.name.clone()).collect(),
        generalisation: qi_names
            .iter()
            .zip(&choice.levels)
            .map(|(c, l)| (c.to_string(), generalise::describe(c, *l)))
            .collect(),
    };
    store.log(&crest_store::AccessEntry {
        at: crest_store::utc_now(),
        username: who.username.to_string(),
        role: who.role.to_string(),
        programme: String::new(),
        action: "research extract".into(),
        target: project.id.clone(),
        outcome: "ok".into(),
        detail: format!(
            "{} for {}: {rows} rows, {suppressed} suppressed for k-anonymity (k = {}); generalised {}",
            format.extension(),
            who.for_researcher.unwrap_or(who.username),
            project.k,
            summary.generalisation_text()
        ),
    })?;
    Ok(summary)
}

/// Rows in Parquet row groups: enough for readers to skip through well, few enough that a
/// group waiting to be written stays near 10 MB.
const ROW_GROUP: usize = 16_384;

enum Sink<'a> {
    Csv(csv::Writer<&'a mut (dyn Write + Send)>),
    Parquet {
        writer: parquet::file::writer::SerializedFileWriter<&'a mut (dyn Write + Send)>,
        kinds: Vec<ColumnType>,
        buffer: Vec<Vec<Value>>,
    },
}

impl<'a> Sink<'a> {
    fn new(
        format: Format,
        columns: &[ExtractColumn],
        out: &'a mut (dyn Write + Send),
    ) -> Result<Sink<'a>, ExtractError> {
        match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(columns.iter().map(|c| c.name.as_str()))?;
                Ok(Sink::Csv(w))
            }
            Format::Parquet => {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| match c.kind {
                        ColumnType::Text => format!("OPTIONAL BYTE_ARRAY {} (UTF8);", c.name),
                        ColumnType::Int => format!("OPTIONAL INT64 {};", c.name),
                        ColumnType::Real => format!("OPTIONAL DOUBLE {};", c.name),
                    })
                    .collect();
                let schema = parquet::schema::parser::parse_message_type(&format!(
                    "message extract {{ {} }}",
                    fields.join(" ")
                ))?;
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_created_by("crest".into())
                    .build();
                let writer = parquet::file::writer::SerializedFileWriter::new(
                    out,
                    std::sync::Arc::new(schema),
                    std::sync::Arc::new(props),
                )?;
                Ok(Sink::Parquet {
                    writer,
                    kinds: columns.iter().map(|c| c.kind).collect(),
                    buffer: Vec::new(),
                })
            }
        }
    }

    fn push(&mut self, row: Vec<Value>) -> Result<(), ExtractError> {
        match self {
            Sink::Csv(w) => {
                // No free text leaves, but codes are still neutralised for spreadsheets.
                w.write_record(row.iter().map(|v| match v {
                    Value::Text(t) => crest_core::spreadsheet::safe_cell(t).into_owned(),
                    other => other.text(),
                }))?;
            }
            Sink::Parquet { buffer, .. } => {
                buffer.push(row);
                if buffer.len() >= ROW_GROUP {
                    self.flush()?;
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExtractError> {
        use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
        let Sink::Parquet {
            writer,
            kinds,
            buffer,
        } = self
        else {
            return Ok(());
        };
        if buffer.is_empty() {
            return Ok(());
        }
        let mut group = writer.next_row_group()?;
        let mut i = 0;
        while let Some(mut column) = group.next_column()? {
            let cells = buffer.iter().map(|r| &r[i]);
            let defs: Vec<i16> = cells
                .clone()
                .map(|v| i16::from(*v != Value::Null))
                .collect();
            match kinds[i] {
                ColumnType::Text => {
                    let v: Vec<ByteArray> = cells
                        .filter_map(|v| match v {
                            Value::Null => None,
                            v => Some(ByteArray::from(v.text().as_str())),
                        })
                        .collect();
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&v, Some(&defs), None)?;
                }
                ColumnType::Int => {
                    let v: Vec<i64> = cells
                        .filter_map(|v| match v {
                            Value::Int(n) => Some(*n),
                            _ => None,
                        })
                        .collect();
                    column
                        .typed::<Int64Type>()
                        .write_batch(&v, Some(&defs), None)?;
                }
                ColumnType::Real => {
                    let v: Vec<f64> = cells
                        .filter_map(|v| match v {
                            Value::Real(x) => Some(*x),
                            _ => None,
                        })
                        .collect();
                    column
                        .typed::<DoubleType>()
                        .write_batch(&v, Some(&defs), None)?;
                }
            }
            column.close()?;
            i += 1;
        }
        group.close()?;
        buffer.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<(), ExtractError> {
        self.flush()?;
        match self {
            Sink::Csv(mut w) => w.flush()?,
            Sink::Parquet { writer, .. } => {
                writer.close()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_bands_are_five_years_with_90_plus() {
        assert_eq!(age_band(16), "15-19");
        assert_eq!(age_band(64), "60-64");
        assert_eq!(age_band(65), "65-69");
        assert_eq!(age_band(89), "85-89");
        assert_eq!(age_band(90), "90+");
        assert_eq!(age_band(104), "90+");
    }

    #[test]
    fn approvals_take_extract_or_dataset_names_and_never_identifiers() {
        assert_eq!(
            parse_fields("age_at_event, sex, referral_date, a1_bmi").unwrap(),
            ["age_band", "sex", "referral_days", "a1_bmi"]
        );
        for bad in [
            "nhs_number",
            "postcode",
            "date_of_birth",
            "family_name",
            "episode_id",
        ] {
            let e = parse_fields(&format!("sex,{bad}")).unwrap_err();
            assert!(e.0.contains(bad), "{e}");
        }
        let names: Vec<String> = extract_columns().into_iter().map(|c| c.name).collect();
        for qi in QUASI_IDENTIFIERS {
            assert!(names.contains(&qi.to_string()), "{qi}");
        }
        assert!(!names
            .iter()
            .any(|n| n == "event_date" || n == "age_at_event"));
    }
}
