//! Validation of import rows against the dataset dictionary: per-field parsing and bounds, then
//! the cross-field rules (date order, status against dates, reasons, BMI, measures without
//! their assessment date). The same checks serve file import, web forms and the API.

use crate::checks;
use crate::dataset::{Code, Col, Field, Kind, Section, FIELDS};
use crate::date::Date;
use crate::record::Record;
use crate::value::{format_num, Value};
use crate::Invalid;
use std::fmt;

/// One problem with one cell, in words a CR nurse understands.
#[derive(Clone, Debug, PartialEq)]
pub struct Issue {
    /// Column name.
    pub column: String,
    /// The value as given (may be empty).
    pub value: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            if self.value.is_empty() {
                Ok(())
            } else {
                write!(f, ", value '{}'", self.value)
            }
        };
        if self.column.is_empty() {
            // A problem with the row (or a FHIR file) as a whole.
            if !self.value.is_empty() {
                write!(f, "value '{}': ", self.value)?;
            }
            return write!(f, "{}", self.message);
        }
        if self.column.contains('/') {
            // Where a FHIR import found it: the resource and element, then the field.
            write!(f, "{}", self.column)?;
            value(f)?;
            return write!(f, ": {}", self.message);
        }
        write!(
            f,
            "column {}, value '{}': {}",
            self.column, self.value, self.message
        )
    }
}

fn issue(col: Col, value: impl Into<String>, message: impl Into<String>) -> Issue {
    let (value, mut message) = (value.into(), message.into());
    let quoted = shown(&value);
    if quoted != value && !value.is_empty() {
        message = message.replace(&value, &quoted);
    }
    Issue {
        column: col.name().to_string(),
        value: quoted,
        message,
    }
}

/// Longest part of a value quoted back in a message.
const SHOWN_CHARS: usize = 80;

/// A value as quoted back to people: at most 80 characters (a 10 MB cell is not echoed), and
/// control characters written visibly (`\n`, `\u{1}`), never raw.
pub fn shown(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Why a whole file is refused before any row is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The file has no header row.
    Empty,
    /// Required columns are absent.
    Missing(Vec<&'static str>),
    /// A column appears twice.
    Duplicate(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Empty => write!(f, "the file is empty: it needs a header row naming the columns (see `crest template`)"),
            HeaderError::Missing(cols) if cols.len() == 1 => {
                write!(f, "the required column '{}' is missing from the header row; the whole file was refused (see `crest template`)", cols[0])
            }
            HeaderError::Missing(cols) => write!(
                f,
                "the required columns {} are missing from the header row; the whole file was refused (see `crest template`)",
                cols.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(", ")
            ),
            HeaderError::Duplicate(c) => write!(f, "the column '{c}' appears twice in the header row"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// The last column of a "rows to fix" file: what is wrong with each row. A file with it can be
/// uploaded again as it is, once fixed; the column is not read.
pub const PROBLEMS_COLUMN: &str = "problems";

/// The columns of one file, mapped onto the dataset.
#[derive(Clone, Debug)]
pub struct Header {
    /// For each field of [`FIELDS`], the index of its cell in a row.
    cells: Vec<Option<usize>>,
    /// Columns that are not in the dataset (never used).
    pub unknown: Vec<String>,
    /// Derived columns present in the file (ignored: crest works them out).
    pub ignored: Vec<String>,
}

impl Header {
    /// Maps a header row onto the dataset.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Header, HeaderError> {
        if names.iter().all(|n| clean_header(n.as_ref()).is_empty()) {
            return Err(HeaderError::Empty);
        }
        let mut cells = vec![None; FIELDS.len()];
        let (mut unknown, mut ignored) = (Vec::new(), Vec::new());
        for (i, raw) in names.iter().enumerate() {
            let name = clean_header(raw.as_ref());
            if name.is_empty() {
                continue;
            }
            if name.eq_ignore_ascii_case(PROBLEMS_COLUMN) {
                // crest's own "rows to fix" file: the problems column is read by people only.
                continue;
            }
            match crate::dataset::field_by_name(name) {
                Some(f) if !f.imported() => ignored.push(f.name.to_string()),
                Some(f) => {
                    if cells[f.col as usize].replace(i).is_some() {
                        return Err(HeaderError::Duplicate(f.name.to_string()));
                    }
                }
                None => unknown.push(name.to_string()),
            }
        }
        let missing: Vec<&'static str> = FIELDS
            .iter()
            .filter(|f| f.required && f.imported() && cells[f.col as usize].is_none())
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            return Err(HeaderError::Missing(missing));
        }
        Ok(Header {
            cells,
            unknown,
            ignored,
        })
    }

    /// Warnings about the header itself (unknown or ignored columns).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.unknown.is_empty() {
            w.push(format!(
                "unknown column(s) not used: {} (check the spelling against `crest dataset`)",
                self.unknown.join(", ")
            ));
        }
        for c in &self.ignored {
            w.push(format!(
                "column '{c}' is worked out by crest and was ignored"
            ));
        }
        w
    }

    /// Index of the cell holding `col`, if the file has it.
    pub fn position(&self, col: Col) -> Option<usize> {
        self.cells[col as usize]
    }
}

fn clean_header(s: &str) -> &str {
    s.trim_start_matches('\u{feff}').trim()
}

/// The outcome of checking one row.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// The validated episode, when there are no errors.
    pub record: Option<Record>,
    /// Problems that reject the row.
    pub errors: Vec<Issue>,
    /// Problems worth a look that do not reject it.
    pub warnings: Vec<Issue>,
}

/// Checks one row of cells (in file order) against the dataset; `today` bounds every date.
pub fn check_row<S: AsRef<str>>(header: &Header, cells: &[S], today: Date) -> Checked {
    let mut out = Checked::default();
    let mut rec = Record::new();
    for f in FIELDS.iter().filter(|f| f.imported()) {
        let raw = header.cells[f.col as usize]
            .and_then(|i| cells.get(i))
            .map(|s| s.as_ref().trim())
            .unwrap_or("");
        match parse_field(f, raw, today) {
            Ok((v, warning)) => {
                if let Some(w) = warning {
                    out.warnings.push(issue(f.col, raw, w));
                }
                rec.set(f.col, v);
            }
            Err(e) => out.errors.push(issue(f.col, raw, e.0)),
        }
    }
    // Every problem in one round: the rules between columns run on whatever parsed, so a row
    // with a bad cell also hears about its dates out of order. A column already refused is
    // not blamed again by a rule that saw it empty.
    let refused: Vec<String> = out.errors.iter().map(|e| e.column.clone()).collect();
    let mut later = Checked::default();
    derive(&mut rec, &mut later);
    later.errors.extend(cross_check(&rec));
    out.errors.extend(
        later
            .errors
            .into_iter()
            .filter(|e| !refused.contains(&e.column)),
    );
    out.warnings.extend(later.warnings);
    if out.errors.is_empty() {
        out.record = Some(rec);
    }
    out
}

/// Parses one cell by its field's rule: the value and an optional warning, or why it is wrong.
pub fn parse_field(f: &Field, raw: &str, today: Date) -> Result<(Value, Option<String>), Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return if f.required {
            // The column or question is named beside the message wherever it is shown.
            Err("required; it cannot be left empty".to_string().into())
        } else {
            Ok((Value::Null, None))
        };
    }
    if raw.chars().any(char::is_control) {
        return Err(
            "contains a control character (such as a line break or tab inside the cell); remove it"
                .into(),
        );
    }
    let ok = |v| Ok((v, None));
    match f.kind {
        Kind::Text { max } => {
            if raw.chars().count() > max {
                Err(format!("too long: at most {max} characters").into())
            } else {
                ok(Value::Text(raw.to_string()))
            }
        }
        Kind::ProgrammeCode => {
            if raw.len() <= 20 && raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
                ok(Value::Text(raw.to_ascii_uppercase()))
            } else {
                Err("a programme code is letters and digits only, e.g. P001".into())
            }
        }
        Kind::NhsNumber => checks::nhs_number(raw).map(|s| (Value::Text(s), None)),
        Kind::Postcode => checks::postcode(raw).map(|s| (Value::Text(s), None)),
        Kind::Date => {
            let d = Date::parse(raw).map_err(|e| e.0)?;
            if d > today {
                Err(format!("{d} is in the future").into())
            } else {
                ok(Value::Date(d))
            }
        }
        Kind::Code(codes) => match canonical(codes, raw) {
            Some(c) => ok(Value::Text(c.to_string())),
            None => Err(unknown_code(f, raw, codes).into()),
        },
        Kind::CodeList(codes) => {
            let mut seen: Vec<&str> = Vec::new();
            for part in raw.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                match canonical(codes, part) {
                    Some(c) if !seen.contains(&c) => seen.push(c),
                    Some(_) => {}
                    None => return Err(unknown_code(f, part, codes).into()),
                }
            }
            ok(if seen.is_empty() {
                Value::Null
            } else {
                Value::Text(seen.join(";"))
            })
        }
        Kind::Int { hard, soft, step } => {
            let x = parse_number(raw)?;
            if x.fract() != 0.0 {
                return Err(format!("must be a whole number, not {raw}").into());
            }
            let i = x as i64;
            if i < hard.0 || i > hard.1 {
                return Err(
                    format!("{raw} is outside the allowed range {}–{}", hard.0, hard.1).into(),
                );
            }
            if step > 1 && i % step != 0 {
                return Err(format!("must be a multiple of {step}").into());
            }
            let warn = soft
                .filter(|s| i < s.0 || i > s.1)
                .map(|s| format!("{raw} is unusual (expected {}–{})", s.0, s.1));
            Ok((Value::Int(i), warn))
        }
        Kind::Decimal { hard, soft } => {
            let x = parse_number(raw)?;
            if x < hard.0 || x > hard.1 {
                return Err(
                    format!("{raw} is outside the allowed range {}–{}", hard.0, hard.1).into(),
                );
            }
            let warn = soft
                .filter(|s| x < s.0 || x > s.1)
                .map(|s| format!("{raw} is unusual (expected {}–{})", s.0, s.1));
            Ok((Value::Num(x), warn))
        }
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "1" => ok(Value::Bool(true)),
            "false" | "no" | "n" | "0" => ok(Value::Bool(false)),
            _ => Err("must be yes or no (true/false, 1/0)".into()),
        },
    }
}

fn canonical(codes: &'static [Code], raw: &str) -> Option<&'static str> {
    let raw = raw.trim();
    codes
        .iter()
        .find(|c| c.code.eq_ignore_ascii_case(raw) || c.label.eq_ignore_ascii_case(raw))
        .map(|c| c.code)
}

fn unknown_code(f: &Field, raw: &str, codes: &[Code]) -> String {
    format!(
        "'{raw}' is not one of the codes for {} (column {}); use one of: {}",
        f.label,
        f.name,
        codes
            .iter()
            .map(|c| format!("{} ({})", c.label, c.code))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn parse_number(raw: &str) -> Result<f64, Invalid> {
    match raw.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ if raw.contains(',') && raw.replace(',', ".").parse::<f64>().is_ok() => {
            Err(format!("'{raw}': use a full stop for decimals (e.g. 4.5)").into())
        }
        _ => Err(format!("'{raw}' is not a number").into()),
    }
}

/// Fills the derived columns (age at event, BMI from weight and height), reporting problems.
fn derive(rec: &mut Record, out: &mut Checked) {
    if let (Some(dob), Some(event)) = (rec.date(Col::DateOfBirth), rec.date(Col::EventDate)) {
        let age = dob.age_on(event);
        let dob_txt = dob.to_string();
        if !(16..=110).contains(&age) {
            out.errors.push(issue(
                Col::DateOfBirth,
                dob_txt,
                format!("gives an age of {age} at the event; it must be 16–110"),
            ));
        } else {
            if !(18..=100).contains(&age) {
                out.warnings.push(issue(
                    Col::DateOfBirth,
                    dob_txt,
                    format!("age at the event is {age}; please check"),
                ));
            }
            rec.set(Col::AgeAtEvent, Value::Int(age.into()));
        }
    }
    for (w, h, b) in [
        (Col::A1WeightKg, Col::A1HeightCm, Col::A1Bmi),
        (Col::A2WeightKg, Col::A2HeightCm, Col::A2Bmi),
    ] {
        let (Some(weight), Some(height)) = (rec.num(w), rec.num(h)) else {
            continue;
        };
        let bmi = (weight / (height / 100.0).powi(2) * 10.0).round() / 10.0;
        match rec.num(b) {
            Some(given) if (given - bmi).abs() > 1.0 => out.errors.push(issue(
                b,
                format_num(given),
                format!(
                    "does not match weight and height, which give a BMI of {}; check all three",
                    format_num(bmi)
                ),
            )),
            Some(_) => {}
            None => {
                let Kind::Decimal { hard, .. } = b.field().kind else {
                    continue;
                };
                if bmi < hard.0 || bmi > hard.1 {
                    out.errors.push(issue(
                        w,
                        format_num(weight),
                        format!("with height {} cm gives a BMI of {}, outside {}–{}; check weight and height", format_num(height), format_num(bmi), hard.0, hard.1),
                    ));
                } else {
                    rec.set(b, Value::Num(bmi));
                }
            }
        }
    }
}

fn shown_value(rec: &Record, col: Col) -> String {
    rec.get(col).to_text()
}

/// The rules between columns of one episode. Also applied to the result of merging a re-import
/// with the stored episode, so a merge can never produce an inconsistent record.
pub fn cross_check(rec: &Record) -> Vec<Issue> {
    let mut errs = Vec::new();
    let d = |c| rec.date(c);
    let mut after = |later: Col, earlier: Col, slack: i32, what: &str| {
        if let (Some(l), Some(e)) = (d(later), d(earlier)) {
            if l < e.add_days(-slack) {
                errs.push(issue(
                    later,
                    l.to_string(),
                    format!("is before {} ({e}); {what}", earlier.name()),
                ));
            }
        }
    };
    after(
        Col::DischargeDate,
        Col::EventDate,
        0,
        "discharge cannot come before the event",
    );
    after(
        Col::ReferralDate,
        Col::EventDate,
        0,
        "referral cannot come before the event",
    );
    after(
        Col::CoreStartDate,
        Col::ReferralDate,
        0,
        "core CR cannot start before referral",
    );
    after(
        Col::CoreEndDate,
        Col::CoreStartDate,
        0,
        "core CR cannot end before it starts",
    );
    after(
        Col::Assessment2Date,
        Col::CoreStartDate,
        0,
        "assessment 2 comes after core CR starts",
    );
    after(
        Col::Assessment2Date,
        Col::Assessment1Date,
        0,
        "assessment 2 cannot come before assessment 1",
    );
    if let (Some(a1), Some(r)) = (d(Col::Assessment1Date), d(Col::ReferralDate)) {
        if a1 < r.add_days(-30) {
            errs.push(issue(
                Col::Assessment1Date,
                a1.to_string(),
                format!("is more than 30 days before referral ({r})"),
            ));
        }
    }
    if let (Some(a1), Some(s)) = (d(Col::Assessment1Date), d(Col::CoreStartDate)) {
        if a1 > s {
            errs.push(issue(
                Col::Assessment1Date,
                a1.to_string(),
                format!("is after core CR started ({s}); assessment 1 comes first"),
            ));
        }
    }
    if d(Col::CoreEndDate).is_some() && d(Col::CoreStartDate).is_none() {
        errs.push(issue(
            Col::CoreStartDate,
            "",
            "core_end_date is given, so core_start_date is needed too",
        ));
    }

    let status = rec.text(Col::Status).unwrap_or("");
    let need_start = matches!(status, "in_progress" | "completed" | "dropped_out");
    let no_start = matches!(status, "referred" | "declined" | "did_not_start");
    if need_start && d(Col::CoreStartDate).is_none() {
        errs.push(issue(
            Col::CoreStartDate,
            "",
            format!("status is '{status}', so core_start_date is required"),
        ));
    }
    if no_start && d(Col::CoreStartDate).is_some() {
        errs.push(issue(
            Col::CoreStartDate,
            shown_value(rec, Col::CoreStartDate),
            format!("status is '{status}' but core CR has a start date; correct the status or remove the date"),
        ));
    }
    if matches!(status, "completed" | "dropped_out") && d(Col::CoreEndDate).is_none() {
        errs.push(issue(
            Col::CoreEndDate,
            "",
            format!("status is '{status}', so core_end_date is required"),
        ));
    }
    if matches!(status, "declined" | "did_not_start") && rec.get(Col::NonStartReason).is_null() {
        errs.push(issue(
            Col::NonStartReason,
            "",
            format!("status is '{status}', so a non_start_reason is required"),
        ));
    }
    if status == "dropped_out" && rec.get(Col::DropoutReason).is_null() {
        errs.push(issue(
            Col::DropoutReason,
            "",
            "status is 'dropped_out', so a dropout_reason is required",
        ));
    }
    if d(Col::CoreStartDate).is_some() && rec.get(Col::DeliveryMode).is_null() {
        errs.push(issue(
            Col::DeliveryMode,
            "",
            "core CR has started, so delivery_mode is required",
        ));
    }
    for (sys, dia) in [
        (Col::A1SystolicBp, Col::A1DiastolicBp),
        (Col::A2SystolicBp, Col::A2DiastolicBp),
    ] {
        if let (Some(s), Some(di)) = (rec.num(sys), rec.num(dia)) {
            if di >= s {
                errs.push(issue(
                    dia,
                    format_num(di),
                    format!("must be below the systolic pressure ({})", format_num(s)),
                ));
            }
        }
    }
    for f in FIELDS {
        let date_col = match f.section {
            Section::Assessment1 => Col::Assessment1Date,
            Section::Assessment2 => Col::Assessment2Date,
            _ => continue,
        };
        if !rec.get(f.col).is_null() && d(date_col).is_none() {
            errs.push(issue(
                f.col,
                shown_value(rec, f.col),
                format!(
                    "a measure from assessment {} needs {}",
                    &f.name[1..2],
                    date_col.name()
                ),
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> Date {
        Date::from_ymd(2025, 6, 1).unwrap()
    }

    /// A valid completed episode, as (column, value) pairs.
    fn base() -> Vec<(&'static str, String)> {
        [
            ("programme_code", "p001"),
            ("episode_id", "E1"),
            ("nhs_number", "943 476 5919"),
            ("date_of_birth", "15/06/1960"),
            ("postcode", "se17eh"),
            ("sex", "Female"),
            ("ethnicity", "a"),
            ("imd_quintile", "2"),
            ("initiating_event", "mi_nstemi"),
            ("treatment", "pci"),
            ("event_date", "01/04/2024"),
            ("referral_date", "2024-04-03"),
            ("status", "completed"),
            ("delivery_mode", "group_supervised"),
            ("assessment1_date", "2024-04-20"),
            ("core_start_date", "2024-05-01"),
            ("core_end_date", "2024-07-01"),
            ("assessment2_date", "2024-07-05"),
            ("comorbidities", "Diabetes; hypertension;diabetes"),
            ("a1_weight_kg", "80"),
            ("a1_height_cm", "175"),
            ("a1_hads_anxiety", "9"),
            ("a2_hads_anxiety", "6"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    }

    fn check(row: &[(&'static str, String)]) -> Checked {
        let names: Vec<&str> = row.iter().map(|(k, _)| *k).collect();
        let cells: Vec<&str> = row.iter().map(|(_, v)| v.as_str()).collect();
        check_row(&Header::parse(&names).unwrap(), &cells, today())
    }

    fn with(changes: &[(&'static str, &str)]) -> Checked {
        let mut row = base();
        for (k, v) in changes {
            match row.iter_mut().find(|(c, _)| c == k) {
                Some(cell) => cell.1 = v.to_string(),
                None => row.push((k, v.to_string())),
            }
        }
        check(&row)
    }

    /// Asserts exactly one error, on `column`, whose message contains `text`.
    fn rejects(changes: &[(&'static str, &str)], column: &str, text: &str) {
        let c = with(changes);
        assert!(c.record.is_none(), "{changes:?} was accepted");
        assert!(
            c.errors
                .iter()
                .any(|e| e.column == column && e.message.contains(text)),
            "{changes:?}: expected {column} / {text}, got {:?}",
            c.errors
        );
    }

    #[test]
    fn control_characters_are_refused_and_long_values_are_quoted_short() {
        rejects(
            &[("episode_id", "E\u{1}1")],
            "episode_id",
            "control character",
        );
        rejects(
            &[("family_name", "Smith\nJones")],
            "family_name",
            "control character",
        );
        let c = with(&[("episode_id", "E\u{1}1")]);
        assert_eq!(c.errors[0].value, "E\\u{1}1", "written visibly");
        let huge = "x".repeat(10_000_000);
        let c = with(&[("sex", &huge)]);
        let e = &c.errors[0];
        assert!(
            e.value.chars().count() <= 81 && e.value.ends_with('…'),
            "{}",
            e.value.len()
        );
        assert!(e.message.len() < 400, "{}", e.message.len());
        assert!(e.to_string().len() < 600);
    }

    /// A nurse fixing a row hears about every problem at once: a bad cell and a rule between
    /// columns together, and a refused cell is not blamed again by a rule that saw it empty.
    #[test]
    fn every_problem_of_a_row_comes_in_one_round() {
        let c = with(&[
            ("sex", "m"),
            ("referral_date", "2024-03-01"),
            ("status", "completed"),
            ("core_start_date", "31/02/2024"),
            ("a1_systolic_bp", "120"),
            ("a1_diastolic_bp", "130"),
        ]);
        let columns: Vec<&str> = c.errors.iter().map(|e| e.column.as_str()).collect();
        assert!(c.record.is_none());
        assert!(columns.contains(&"sex"), "{columns:?}");
        // Referral before the event (2024-03-10): a rule between columns, in the same round.
        assert!(columns.contains(&"referral_date"), "{:?}", c.errors);
        assert!(columns.contains(&"a1_diastolic_bp"), "{:?}", c.errors);
        // The impossible start date is refused once, not also as "required by the status".
        assert_eq!(
            columns.iter().filter(|c| **c == "core_start_date").count(),
            1,
            "{:?}",
            c.errors
        );
    }

    #[test]
    fn accepts_and_normalises_a_valid_row() {
        let c = with(&[]);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let r = c.record.unwrap();
        assert_eq!(r.text(Col::ProgrammeCode), Some("P001"));
        assert_eq!(r.text(Col::NhsNumber), Some("9434765919"));
        assert_eq!(r.text(Col::Postcode), Some("SE1 7EH"));
        assert_eq!(r.text(Col::Sex), Some("female"));
        assert_eq!(r.text(Col::Ethnicity), Some("A"));
        assert_eq!(r.text(Col::Comorbidities), Some("diabetes;hypertension"));
        assert_eq!(r.get(Col::AgeAtEvent), &Value::Int(63));
        assert_eq!(r.num(Col::A1Bmi), Some(26.1));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn per_field_errors_name_column_value_and_reason() {
        rejects(
            &[("sex", "m")],
            "sex",
            "is not one of the codes for Sex (column sex); use one of: Male (male)",
        );
        rejects(
            &[("imd_quintile", "6")],
            "imd_quintile",
            "outside the allowed range 1–5",
        );
        rejects(
            &[("a1_hads_anxiety", "abc")],
            "a1_hads_anxiety",
            "not a number",
        );
        rejects(
            &[("a1_hads_anxiety", "4.5")],
            "a1_hads_anxiety",
            "whole number",
        );
        rejects(&[("a1_weight_kg", "80,5")], "a1_weight_kg", "full stop");
        rejects(&[("a1_iswt_m", "255")], "a1_iswt_m", "multiple of 10");
        rejects(
            &[("event_date", "31/02/2024")],
            "event_date",
            "not a real date",
        );
        rejects(&[("event_date", "04/13/2024")], "event_date", "US-style");
        rejects(
            &[("event_date", "01/04/24")],
            "event_date",
            "four-digit year",
        );
        rejects(
            &[("assessment2_date", "2099-01-01")],
            "assessment2_date",
            "in the future",
        );
        rejects(&[("nhs_number", "9434765918")], "nhs_number", "check digit");
        rejects(
            &[("postcode", "NOT A CODE")],
            "postcode",
            "not a UK postcode",
        );
        rejects(
            &[("episode_id", &"x".repeat(41))],
            "episode_id",
            "at most 40",
        );
        rejects(&[("sex", " ")], "sex", "required");
        rejects(
            &[("national_opt_out", "maybe")],
            "national_opt_out",
            "yes or no",
        );
        rejects(
            &[("comorbidities", "diabetes;gout")],
            "comorbidities",
            "'gout'",
        );
        let c = with(&[("a1_hads_anxiety", "abc")]);
        assert_eq!(c.errors[0].value, "abc");
    }

    #[test]
    fn cross_field_rules() {
        rejects(
            &[("referral_date", "2024-03-01")],
            "referral_date",
            "before event_date",
        );
        rejects(
            &[("discharge_date", "2024-03-30")],
            "discharge_date",
            "before event_date",
        );
        rejects(
            &[("core_start_date", "2024-04-02"), ("assessment1_date", "")],
            "core_start_date",
            "before referral_date",
        );
        rejects(
            &[("core_end_date", "2024-04-30")],
            "core_end_date",
            "before core_start_date",
        );
        rejects(
            &[
                ("assessment1_date", "2024-03-03"),
                ("event_date", "2024-02-01"),
            ],
            "assessment1_date",
            "more than 30 days before referral",
        );
        rejects(
            &[("assessment1_date", "2024-05-02")],
            "assessment1_date",
            "after core CR started",
        );
        rejects(
            &[("assessment2_date", "2024-04-25")],
            "assessment2_date",
            "before",
        );
        rejects(
            &[("status", "referred")],
            "core_start_date",
            "status is 'referred'",
        );
        rejects(
            &[
                ("status", "in_progress"),
                ("core_start_date", ""),
                ("core_end_date", ""),
                ("assessment2_date", ""),
                ("a2_hads_anxiety", ""),
            ],
            "core_start_date",
            "required",
        );
        rejects(
            &[("core_end_date", "")],
            "core_end_date",
            "status is 'completed'",
        );
        rejects(&[("status", "dropped_out")], "dropout_reason", "required");
        rejects(&[("delivery_mode", "")], "delivery_mode", "required");
        rejects(&[("a1_bmi", "30")], "a1_bmi", "does not match");
        rejects(
            &[("a1_systolic_bp", "120"), ("a1_diastolic_bp", "125")],
            "a1_diastolic_bp",
            "below the systolic",
        );
        rejects(
            &[("assessment1_date", "")],
            "a1_hads_anxiety",
            "needs assessment1_date",
        );
        rejects(
            &[("date_of_birth", "2015-01-01")],
            "date_of_birth",
            "age of 9",
        );
        let declined = with(&[
            ("status", "declined"),
            ("core_start_date", ""),
            ("core_end_date", ""),
            ("assessment2_date", ""),
            ("a2_hads_anxiety", ""),
            ("delivery_mode", ""),
        ]);
        assert!(
            declined
                .errors
                .iter()
                .any(|e| e.column == "non_start_reason"),
            "{:?}",
            declined.errors
        );
        let ok = with(&[
            ("status", "declined"),
            ("non_start_reason", "Transport"),
            ("core_start_date", ""),
            ("core_end_date", ""),
            ("assessment2_date", ""),
            ("a2_hads_anxiety", ""),
            ("delivery_mode", ""),
        ]);
        assert!(ok.errors.is_empty(), "{:?}", ok.errors);
    }

    #[test]
    fn soft_bounds_only_warn() {
        let c = with(&[("a1_weight_kg", "210"), ("a1_height_cm", "200")]);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(c.warnings[0].column, "a1_weight_kg");
        let old = with(&[("date_of_birth", "1920-01-01")]);
        assert!(old.record.is_some());
        assert!(old.warnings.iter().any(|w| w.column == "date_of_birth"));
    }

    #[test]
    fn header_rules() {
        assert_eq!(Header::parse(&["", " "]).unwrap_err(), HeaderError::Empty);
        let names: Vec<&str> = base()
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| *k != "status")
            .collect();
        let e = Header::parse(&names).unwrap_err();
        assert_eq!(e, HeaderError::Missing(vec!["status"]));
        assert!(e.to_string().contains("'status' is missing"));
        let mut names: Vec<&str> = base().iter().map(|(k, _)| *k).collect();
        names[0] = "\u{feff}Programme_Code";
        names.push("favourite_colour");
        names.push("age_at_event");
        let h = Header::parse(&names).unwrap();
        assert_eq!(h.unknown, vec!["favourite_colour"]);
        assert_eq!(h.warnings().len(), 2);
        names.push("sex");
        assert_eq!(
            Header::parse(&names).unwrap_err(),
            HeaderError::Duplicate("sex".into())
        );
    }

    #[test]
    fn merge_never_blanks_known_values() {
        let full = with(&[]).record.unwrap();
        let mut partial = with(&[("a1_hads_anxiety", ""), ("postcode", "")])
            .record
            .unwrap();
        partial.fill_from(&full);
        assert_eq!(partial, full);
    }
}
