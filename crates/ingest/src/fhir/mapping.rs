//! The FHIR mapping, kept as data: `mapping.csv` beside this file lists every SNOMED CT and
//! LOINC code crest reads or writes, the dataset field and code it stands for, and where the
//! code was checked. The importer, the exporter, `crest fhir mapping` and `docs/fhir.md` all
//! read this one table.
//!
//! Codes the table does not hold (a treatment with no checked SNOMED CT code, a measure with
//! no checked LOINC code) travel in crest's own code systems, `{CREST}/CodeSystem/{field}`,
//! whose codes are the dataset's own; the dataset definition is that code system.

use std::sync::OnceLock;

/// crest's namespace for its own code systems, identifiers and extensions.
pub const CREST: &str = "https://crest-audit.org/fhir";
/// The NHS number's identifier system (UK Core).
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// The UK Core ethnic category extension.
pub const ETHNIC_CATEGORY: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory";
/// SNOMED CT.
pub const SNOMED: &str = "http://snomed.info/sct";
/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// UCUM, the units of quantities.
pub const UCUM: &str = "http://unitsofmeasure.org";

/// The mapping table as shipped.
pub const MAPPING_CSV: &str = include_str!("mapping.csv");

/// One row of the mapping.
#[derive(Debug, Clone)]
pub struct Entry {
    /// FHIR resource type.
    pub resource: String,
    /// Element holding the code (`code`, `component`, `value`, `extension`).
    pub element: String,
    /// Code system.
    pub system: String,
    /// The code.
    pub code: String,
    /// Its display term.
    pub display: String,
    /// The dataset field (a measure's name without its `a1_`/`a2_`).
    pub field: String,
    /// The dataset code it stands for (empty for a measure).
    pub value: String,
    /// Whether crest writes this code (else it only reads it, as a descendant of one it writes).
    pub export: bool,
    /// Where the code was checked.
    pub checked: String,
}

/// The whole table, read once.
pub fn entries() -> &'static [Entry] {
    static TABLE: OnceLock<Vec<Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut r = csv::Reader::from_reader(MAPPING_CSV.as_bytes());
        r.records()
            .filter_map(Result::ok)
            .map(|rec| {
                let c = |i: usize| rec.get(i).unwrap_or("").to_string();
                Entry {
                    resource: c(0),
                    element: c(1),
                    system: c(2),
                    code: c(3),
                    display: c(4),
                    field: c(5),
                    value: c(6),
                    export: c(7) == "yes",
                    checked: c(8),
                }
            })
            .collect()
    })
}

/// The entry of a coding (system and code, never display text).
pub fn find(resource: &str, element: &str, system: &str, code: &str) -> Option<&'static Entry> {
    // Indexed by code: every resource of an import looks its codings up here.
    static BY_CODE: OnceLock<std::collections::HashMap<&'static str, Vec<&'static Entry>>> =
        OnceLock::new();
    BY_CODE
        .get_or_init(|| {
            let mut m: std::collections::HashMap<&'static str, Vec<&'static Entry>> =
                Default::default();
            for e in entries() {
                m.entry(e.code.as_str()).or_default().push(e);
            }
            m
        })
        .get(code)?
        .iter()
        .find(|e| e.resource == resource && e.element == element && e.system == system)
        .copied()
}

/// The code crest writes for a dataset field's value (or measure, with `value` empty).
pub fn export_code(field: &str, value: &str) -> Option<&'static Entry> {
    entries()
        .iter()
        .find(|e| e.export && e.field == field && e.value == value && e.code != "A-Z")
}

/// crest's own code system for a field.
pub fn crest_system(field: &str) -> String {
    format!("{CREST}/CodeSystem/{field}")
}

/// crest's own extension for a field.
pub fn crest_extension(field: &str) -> String {
    format!("{CREST}/StructureDefinition/{field}")
}

/// crest's identifier system for episode ids and programme codes.
pub fn crest_identifier(what: &str) -> String {
    format!("{CREST}/Id/{what}")
}

/// How a measure's quantity is read: the UCUM units accepted, each with the factor to the
/// dataset's unit (first: the unit crest writes), and whether a missing unit is accepted
/// (scores have none).
pub fn units(measure: &str) -> (&'static [(&'static str, f64)], bool) {
    const KG: &[(&str, f64)] = &[("kg", 1.0), ("g", 0.001), ("[lb_av]", 0.453_592_37)];
    const CM: &[(&str, f64)] = &[("cm", 1.0), ("m", 100.0), ("mm", 0.1), ("[in_i]", 2.54)];
    const MMHG: &[(&str, f64)] = &[("mm[Hg]", 1.0)];
    // Total cholesterol: 1 mmol/L is 38.67 mg/dL (molar mass 386.65 g/mol).
    const MMOL: &[(&str, f64)] = &[("mmol/L", 1.0), ("mg/dL", 1.0 / 38.67)];
    const METRES: &[(&str, f64)] = &[("m", 1.0), ("km", 1000.0), ("[ft_i]", 0.3048)];
    const BMI: &[(&str, f64)] = &[("kg/m2", 1.0)];
    const MINUTES: &[(&str, f64)] = &[("min/wk", 1.0), ("min", 1.0)];
    const SCORE: &[(&str, f64)] = &[("{score}", 1.0), ("1", 1.0)];
    match measure {
        "weight_kg" => (KG, false),
        "height_cm" | "waist_cm" => (CM, false),
        "systolic_bp" | "diastolic_bp" => (MMHG, false),
        "total_cholesterol" => (MMOL, false),
        "iswt_m" | "six_mwt_m" => (METRES, false),
        "bmi" => (BMI, true),
        "activity_minutes" => (MINUTES, true),
        _ => (SCORE, true),
    }
}

/// The mapping as CSV (what `crest fhir mapping` prints and `docs/fhir.md` tabulates).
pub fn as_csv() -> &'static str {
    MAPPING_CSV
}

/// The FHIR documentation (`docs/fhir.md`): how crest reads and writes FHIR, then the mapping.
pub fn document() -> String {
    let mut out = format!(
        "# FHIR R4 (UK Core) import and export

Generated by `crest fhir mapping --format markdown` from the mapping file
(`crates/ingest/src/fhir/mapping.csv`); a test fails when this page is out of date.

## Reading

- `crest import` and the web upload read a FHIR R4 JSON **Bundle** of type `collection`,
  `transaction` or `searchset` (streamed entry by entry), or **bulk-export NDJSON** (one resource
  per line; several files, or a folder of them, read as one import). Other Bundle types, a single
  resource, and JSON that is not FHIR are refused whole, with where.
- Resources read: Patient, Condition, Procedure, ServiceRequest, EpisodeOfCare, Encounter and
  Observation. Others are counted and ignored.
- Codes are matched on system **and** code, never on display text. An unknown code is a warning
  naming the resource; the resource is not used.
- **Patient**: the NHS number is the identifier with system `{NHS_NUMBER}` (its check digit is
  checked as for CSV); `birthDate`; `gender` (`other` is the dataset's `indeterminate`, `unknown`
  its `not_known`); the postcode of the current home address; the official name; the ethnic
  category from the UK Core extension `{ETHNIC_CATEGORY}` (NHS Data Dictionary letters; `99` is not
  known). Two Patient resources with one NHS number are one patient; if their dates of birth or
  genders differ, their episodes are rejected (one NHS number is probably wrong).
- **Condition** with a mapped code starts an episode: its initiating event, and its date from
  `onsetDateTime` (else `recordedDate`).
- **Procedure** gives the treatment (the one that defines the pathway when there are several:
  transplant/LVAD, CABG, valve surgery, ICD/CRT, pacemaker, PCI; none is medical treatment).
- **ServiceRequest**: the referral date from `authoredOn`: the one whose `reasonReference` is the
  Condition or that the EpisodeOfCare names; else one dated on or after the event, but only if
  it is not coded as something else (a coded laboratory order is never taken for the referral).
- **EpisodeOfCare** (or, without one, the rehabilitation Encounters): core rehabilitation start
  and end from `period`; status from `status` (`planned`/`waitlist` referred, `active`/`onhold`
  in progress, `finished` completed, `cancelled` dropped out if started, else did not start).
- **Observation**: the measures below, in the dataset's units (UCUM units converted where they
  convert, e.g. `[lb_av]`, `[in_i]`, `mg/dL` of cholesterol; refused in words where they do not),
  placed at assessment 1 (on or before the core start, or nearer it) or assessment 2 (on or
  after the core end, or nearer it); for each, the value nearest the core programme.
- Resources join an episode by `reasonReference`, `diagnosis`, `referralRequest`, `basedOn`,
  `episodeOfCare` and `encounter`; where there is none, by date (the episode whose event is the
  latest on or before it). A reference to a resource not in the files is a warning, and the
  resource is placed by date; a Condition whose patient is not in the files is a rejected episode.
- Dates and times are converted to the UK calendar date (Europe/London), never UTC midnight.
- Each episode then goes through the same checks, transaction and idempotence as a CSV row;
  every problem names the resource and element it came from.
- Without crest's own programme identifier the episodes belong to the programme of the upload
  page, `--programme`, or the store's only programme. Without crest's episode id, the id is
  `eoc-` or `cond-` and the resource id, so a re-import updates rather than duplicates.

## Writing

`crest export --format fhir` and the patient list's FHIR download write a `collection` Bundle:
Patient, Condition, Procedure, ServiceRequest, EpisodeOfCare and Observation resources with the
codes marked \"written\" below. Dataset fields FHIR has no standard place for (status and its
reasons, delivery mode, referral source, pathway, comorbidities, deprivation quintile, discharge
date, the national opt-out and the assessment dates) travel as the parts of crest's own complex
extension on the EpisodeOfCare, `{CREST}/StructureDefinition/episode`, each part named by its
field (crest also reads them as separate extensions, `{CREST}/StructureDefinition/<field>`); an
Observation is of the assessment its date is (crest's `assessment` extension says which only
when both assessments fall on one day); codes with no checked standard code travel in
crest's own code systems, `{CREST}/CodeSystem/<field>`, whose codes are the dataset's. `crest
import` reads such a file back to the same episodes.

## The mapping

Every code was checked where the last column says; none was written from memory.

"
    );
    out.push_str(&as_markdown());
    out
}

/// The mapping as a Markdown table, for the documentation.
pub fn as_markdown() -> String {
    let mut out = String::from(
        "| resource | element | system | code | display | dataset field | dataset code | written | checked |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for e in entries() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            e.resource,
            e.element,
            e.system,
            e.code,
            e.display,
            e.field,
            e.value,
            if e.export { "yes" } else { "read only" },
            e.checked.replace('|', "/")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_names_a_dataset_field_and_code_and_where_it_was_checked() {
        assert!(entries().len() >= 30);
        for e in entries() {
            assert!(!e.checked.is_empty(), "{} has no citation", e.code);
            assert!(!e.display.is_empty());
            let field = if e.field == "blood_pressure" {
                continue;
            } else if ["initiating_event", "treatment", "ethnicity"].contains(&e.field.as_str()) {
                e.field.clone()
            } else {
                format!("a1_{}", e.field)
            };
            let f = crest_core::dataset::field_by_name(&field)
                .unwrap_or_else(|| panic!("{} maps to unknown field {field}", e.code));
            if !e.value.is_empty() {
                assert!(
                    crest_core::validate::parse_field(
                        f,
                        &e.value,
                        crest_core::Date::from_days(20_000)
                    )
                    .is_ok(),
                    "{} maps to {}={} which the dataset refuses",
                    e.code,
                    field,
                    e.value
                );
            }
        }
    }

    #[test]
    fn each_written_value_has_one_code() {
        let mut seen = std::collections::HashSet::new();
        for e in entries().iter().filter(|e| e.export && e.code != "A-Z") {
            assert!(
                seen.insert((e.element.clone(), e.field.clone(), e.value.clone())),
                "{} twice",
                e.code
            );
        }
    }
}
