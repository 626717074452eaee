//! What FHIR resources are reduced to: compact facts, one per resource crest maps, holding
//! only what the mapping uses (dataset codes, UK dates, measures in the dataset's units, and
//! references as numbers). Reading fills them; assembling episodes reads them.

use super::mapping::{self, CREST, ETHNIC_CATEGORY, NHS_NUMBER};
use super::model::{Concept, Period, Quantity, Reference, Resource, S};
pub use super::value::{fhir_date, FhirDate, Unusable};
use std::collections::{BTreeMap, HashMap};

/// Most structural problems listed before the rest are only counted.
const MAX_PROBLEMS: usize = 50;

/// The import's fast hash for the indexes of one file's own references (see `import::Fx`).
pub type FastHash = std::hash::BuildHasherDefault<crate::hash::Fx>;

/// A reference as written, interned: thousands of resources point at one patient or one
/// referral, and each holds only this number.
pub type Ref = u32;

/// A patient.
#[derive(Debug, Default)]
pub struct PatientFact {
    /// Its `Type/id`.
    pub key: std::sync::Arc<str>,
    /// The NHS number as written.
    pub nhs: Option<String>,
    /// birthDate as written.
    pub birth_date: Option<String>,
    /// The dataset sex code.
    pub gender: Option<String>,
    /// The current home postcode.
    pub postcode: Option<String>,
    /// Family name.
    pub family: Option<String>,
    /// Given names.
    pub given: Option<String>,
    /// The hospital number (crest's own identifier system).
    pub local_id: Option<String>,
    /// The dataset's ethnic category letter ("" = not known), or the coding it could not map.
    pub ethnicity: Option<Result<String, Unusable>>,
}

/// A coded clinical resource (Condition or Procedure) mapped to a dataset code.
#[derive(Debug)]
pub struct EventFact {
    /// Its `Type/id`.
    pub key: std::sync::Arc<str>,
    /// The patient it is about, as referenced.
    pub subject: Option<Ref>,
    /// The dataset code, or the coding crest does not map.
    pub code: Result<String, Unusable>,
    /// Its date.
    pub date: Option<FhirDate>,
    /// The element the date came from.
    pub date_element: &'static str,
    /// reasonReference (a Procedure's condition) and encounter.
    pub links: Vec<Ref>,
}

/// A ServiceRequest (a referral).
#[derive(Debug)]
pub struct ReferralFact {
    /// Its `Type/id`.
    pub key: std::sync::Arc<str>,
    /// The patient it is about, as referenced.
    pub subject: Option<Ref>,
    /// authoredOn.
    pub authored: Option<FhirDate>,
    /// reasonReference: the condition it is for.
    pub reasons: Vec<Ref>,
    /// Coded as crest's cardiac rehabilitation referral.
    pub crest_coded: bool,
    /// Coded at all (a laboratory or imaging order is; crest's own referral may not be).
    pub coded: bool,
}

/// An EpisodeOfCare or an Encounter of rehabilitation.
#[derive(Debug)]
pub struct CareFact {
    /// Its `Type/id`.
    pub key: std::sync::Arc<str>,
    /// An Encounter (else an EpisodeOfCare).
    pub encounter: bool,
    /// The patient it is about, as referenced.
    pub subject: Option<Ref>,
    /// status.
    pub status: Option<String>,
    /// period.start.
    pub start: Option<FhirDate>,
    /// period.end.
    pub end: Option<FhirDate>,
    /// referralRequest, diagnosis conditions, basedOn, episodeOfCare.
    pub links: Vec<Ref>,
    /// crest's episode id (its own identifier system).
    pub episode_id: Option<String>,
    /// The programme (managingOrganization.identifier).
    pub programme: Option<String>,
    /// crest's own extensions: dataset fields and their values as text.
    pub fields: super::texts::OwnFields,
    /// crest extensions naming no dataset field.
    pub unknown: Vec<String>,
}

/// One measure read from an Observation.
#[derive(Debug)]
pub struct Measure {
    /// The dataset measure (`weight_kg`, …; without `a1_`).
    pub measure: &'static str,
    /// The value in the dataset's unit, or why it cannot be used.
    pub value: Result<MeasureValue, Unusable>,
    /// The element it came from.
    pub element: &'static str,
}

/// A measure's value, kept small: an episode has dozens.
#[derive(Debug, Clone, Copy)]
pub enum MeasureValue {
    /// A quantity in the dataset's unit.
    Num(f64),
    /// A dataset code (smoking status).
    Code(&'static str),
}

impl MeasureValue {
    /// As a cell of the import.
    pub fn text(self) -> String {
        match self {
            // Whole numbers (most measures) without the general formatter's exact rounding.
            MeasureValue::Num(x) if x.fract() == 0.0 && x.abs() < 1e15 => (x as i64).to_string(),
            MeasureValue::Num(x) => crest_core::value::format_num(x),
            MeasureValue::Code(c) => c.to_string(),
        }
    }
}

/// An Observation with at least one mapped measure.
#[derive(Debug)]
pub struct ObservationFact {
    /// Its `Type/id`.
    pub key: std::sync::Arc<str>,
    /// The patient it is about, as referenced.
    pub subject: Option<Ref>,
    /// Its date.
    pub date: Option<FhirDate>,
    /// References to other resources, as written.
    pub links: Vec<Ref>,
    /// The measures it holds.
    pub measures: Box<[Measure]>,
    /// The assessment (1 or 2) crest's own files say it belongs to.
    pub slot: Option<u8>,
}

/// Everything read from the files.
#[derive(Debug, Default)]
pub struct Facts {
    /// Patients.
    pub patients: Vec<PatientFact>,
    /// Conditions.
    pub conditions: Vec<EventFact>,
    /// Procedures.
    pub procedures: Vec<EventFact>,
    /// ServiceRequests.
    pub referrals: Vec<ReferralFact>,
    /// EpisodesOfCare and Encounters.
    pub care: Vec<CareFact>,
    /// Observations with a mapped measure.
    pub observations: Vec<ObservationFact>,
    /// Bundle entry fullUrl → `Type/id`.
    pub urls: HashMap<String, String>,
    /// Resources read, by type.
    pub read: BTreeMap<String, usize>,
    /// Resources of types crest does not read, by type.
    pub ignored: BTreeMap<String, usize>,
    /// Observations whose code crest does not map: how many, and the first few named.
    pub unmapped_observations: (usize, Vec<String>),
    /// Problems that refuse the files (not JSON, wrong Bundle type, a resource of the wrong shape).
    pub problems: Vec<String>,
    /// How many problems in all.
    pub problem_count: usize,
    /// A digest of every resource's key (and fullUrl), to tell a reference to a resource
    /// that is in the files but not mapped from one to a resource that is not there.
    pub keys: std::collections::HashSet<u64, FastHash>,
    /// The key digests of merged pieces, kept as they were read.
    other_keys: Vec<std::collections::HashSet<u64, FastHash>>,
    /// References as written, by [`Ref`].
    pub refs: super::texts::Texts,
    /// The `Type/id` key each reference names, by [`Ref`], where it differs from the
    /// reference as written (filled once every file is read, since a Bundle may name a
    /// fullUrl before the entry that has it). Most references are already `Type/id`, so
    /// most entries are `None` and cost no allocation.
    resolved: Vec<Option<Box<str>>>,
    /// The index of [`Facts::refs`] by text: numbers only, hashed from the text there, so
    /// each reference is held once.
    pub(crate) ref_ids: hashbrown::HashTable<Ref>,
}

pub(crate) fn digest(s: &str) -> u64 {
    // FNV-1a: a stable 64-bit digest (the same in every run, so derived episode ids are); a
    // collision could only hide a missing-reference warning.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Facts {
    /// Adds the facts of a later piece of the files. Its references are numbered after
    /// ours (the same reference may then have two numbers: every use compares what a
    /// reference names, never its number), so merging hashes nothing again.
    pub(crate) fn merge(&mut self, part: &mut Facts) {
        let offset = self.refs.len() as Ref;
        self.refs.append(&mut part.refs);
        part.ref_ids.clear();
        let map = |r: Ref| r + offset;
        let maps = |v: &mut Vec<Ref>| v.iter_mut().for_each(|r| *r += offset);
        self.patients.append(&mut part.patients);
        self.conditions
            .extend(part.conditions.drain(..).map(|mut f| {
                f.subject = f.subject.map(map);
                maps(&mut f.links);
                f
            }));
        self.procedures
            .extend(part.procedures.drain(..).map(|mut f| {
                f.subject = f.subject.map(map);
                maps(&mut f.links);
                f
            }));
        self.referrals.extend(part.referrals.drain(..).map(|mut f| {
            f.subject = f.subject.map(map);
            maps(&mut f.reasons);
            f
        }));
        self.care.extend(part.care.drain(..).map(|mut f| {
            f.subject = f.subject.map(map);
            maps(&mut f.links);
            f
        }));
        self.observations
            .extend(part.observations.drain(..).map(|mut f| {
                f.subject = f.subject.map(map);
                maps(&mut f.links);
                f
            }));
        self.urls.extend(part.urls.drain());
        for (t, n) in std::mem::take(&mut part.read) {
            *self.read.entry(t).or_default() += n;
        }
        for (t, n) in std::mem::take(&mut part.ignored) {
            *self.ignored.entry(t).or_default() += n;
        }
        let (n, examples) = std::mem::take(&mut part.unmapped_observations);
        self.unmapped_observations.0 += n;
        for e in examples {
            if self.unmapped_observations.1.len() < 5 {
                self.unmapped_observations.1.push(e);
            }
        }
        self.problem_count += std::mem::take(&mut part.problem_count);
        for p in part.problems.drain(..) {
            if self.problems.len() < MAX_PROBLEMS {
                self.problems.push(p);
            }
        }
        self.other_keys.push(std::mem::take(&mut part.keys));
        self.other_keys.append(&mut part.other_keys);
    }

    /// The number standing for a reference.
    fn intern(&mut self, r: &str) -> Ref {
        let hash = |s: &str| std::hash::BuildHasher::hash_one(&FastHash::default(), s);
        let refs = &self.refs;
        match self.ref_ids.entry(
            hash(r),
            |i| refs.get(*i as usize) == r,
            |i| hash(refs.get(*i as usize)),
        ) {
            hashbrown::hash_table::Entry::Occupied(e) => *e.get(),
            hashbrown::hash_table::Entry::Vacant(e) => {
                let i = self.refs.len() as Ref;
                e.insert(i);
                self.refs.push(r);
                i
            }
        }
    }

    /// Whether a resource with this key (or fullUrl) was read.
    pub fn has(&self, key: &str) -> bool {
        let d = digest(key);
        self.keys.contains(&d) || self.other_keys.iter().any(|k| k.contains(&d))
    }

    pub(crate) fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }

    /// The `Type/id` key a reference names, where it is not the reference itself.
    fn resolve_changed(&self, reference: &str) -> Option<String> {
        if !self.urls.is_empty() {
            if let Some(k) = self.urls.get(reference) {
                return Some(k.clone());
            }
        }
        // Most references are already `Type/id` (one slash, found without a searcher).
        if memchr::memchr_iter(b'/', reference.as_bytes()).count() == 1 {
            return None;
        }
        // `https://server/fhir/Patient/1`, `Patient/1/_history/2`.
        let r = reference.split("/_history/").next().unwrap_or(reference);
        let mut parts = r.rsplit('/');
        let key = match (parts.next(), parts.next()) {
            (Some(id), Some(t)) if t.len() + 1 + id.len() == reference.len() => return None,
            (Some(id), Some(t)) => format!("{t}/{id}"),
            _ if r.len() == reference.len() => return None,
            _ => r.to_string(),
        };
        Some(key)
    }

    /// Resolves every reference (once every file is read).
    pub(crate) fn resolve_all(&mut self) {
        self.resolved = super::cores::on_cores(self.refs.len(), |i| {
            self.resolve_changed(self.refs.get(i))
                .map(String::into_boxed_str)
        });
    }

    /// The `Type/id` key that reference `r` names (after [`Facts::resolve_all`]).
    pub fn key_of(&self, r: Ref) -> &str {
        let i = r as usize;
        match self.resolved.get(i) {
            Some(Some(k)) => k,
            _ => self.refs.get(i),
        }
    }
}

static STRUCTURE_DEFINITIONS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Whether `url` is crest's own `{CREST}/{kind}/{name}` (compared without building it).
fn is_crest(url: &str, kind: &str, name: &str) -> bool {
    url.strip_prefix(CREST)
        .and_then(|s| s.strip_prefix('/'))
        .and_then(|s| s.strip_prefix(kind))
        .and_then(|s| s.strip_prefix('/'))
        == Some(name)
}

fn owned(s: &Option<S>) -> Option<String> {
    s.as_deref().map(str::to_string)
}

fn opt_date(s: &Option<S>) -> Option<FhirDate> {
    s.as_deref().map(fhir_date)
}

fn period_dates(p: Option<&Period>) -> (Option<FhirDate>, Option<FhirDate>) {
    match p {
        Some(p) => (opt_date(&p.start), opt_date(&p.end)),
        None => (None, None),
    }
}

fn refs<'a, 'b: 'a>(facts: &mut Facts, r: impl IntoIterator<Item = &'a Reference<'b>>) -> Vec<Ref> {
    r.into_iter()
        .filter_map(|r| r.reference.as_deref())
        .map(|s| facts.intern(s))
        .collect()
}

/// The dataset code of a coded element, or the first coding as `system|code` when no coding
/// is in the mapping (never the display text).
fn map_code(
    resource: &str,
    element: &str,
    field: &str,
    c: Option<&Concept>,
) -> Result<String, Unusable> {
    let Some(c) = c else {
        return Err("no code".into());
    };
    let own = |system: &str| {
        system
            .strip_prefix(CREST)
            .and_then(|s| s.strip_prefix("/CodeSystem/"))
            == Some(field)
    };
    for coding in &c.coding {
        let (Some(system), Some(code)) = (coding.system.as_deref(), coding.code.as_deref()) else {
            continue;
        };
        if own(system) {
            return Ok(code.to_string());
        }
        if let Some(e) = mapping::find(resource, element, system, code) {
            return Ok(e.value.clone());
        }
    }
    Err(Unusable(match c.coding.first() {
        Some(cd) => format!(
            "{}|{}",
            cd.system.as_deref().unwrap_or("(no system)"),
            cd.code.as_deref().unwrap_or("(no code)")
        ),
        None => match &c.text {
            Some(t) => format!("text only: '{}'", crest_core::validate::shown(t)),
            None => "no coding".into(),
        },
    }))
}

/// The measure an Observation's code (or a component's) stands for.
fn measure_of(element: &str, c: &Concept) -> Option<&'static str> {
    for coding in &c.coding {
        let (Some(system), Some(code)) = (coding.system.as_deref(), coding.code.as_deref()) else {
            continue;
        };
        if let Some(e) = mapping::find("Observation", element, system, code) {
            return Some(static_measure(&e.field));
        }
        if let Some(m) = system
            .strip_prefix(CREST)
            .filter(|s| *s == "/CodeSystem/measure")
            .and_then(|_| MEASURES.iter().find(|m| **m == code))
        {
            return Some(m);
        }
    }
    None
}

/// The measures of the dataset (each is `a1_` and `a2_` + this).
pub const MEASURES: [&str; 14] = [
    "weight_kg",
    "height_cm",
    "bmi",
    "waist_cm",
    "systolic_bp",
    "diastolic_bp",
    "total_cholesterol",
    "smoking",
    "activity_minutes",
    "iswt_m",
    "six_mwt_m",
    "hads_anxiety",
    "hads_depression",
    "eq5d_vas",
];

fn static_measure(m: &str) -> &'static str {
    if m == "blood_pressure" {
        return "blood_pressure";
    }
    MEASURES.iter().find(|x| **x == m).copied().unwrap_or("")
}

/// A quantity in the dataset's unit.
fn quantity(measure: &str, q: &Quantity) -> Result<f64, Unusable> {
    let Some(v) = q.value else {
        return Err("the quantity has no value".into());
    };
    let (units, unitless) = mapping::units(measure);
    let unit = q.code.as_deref().or(q.unit.as_deref());
    let factor = match unit {
        None | Some("") if unitless => 1.0,
        None | Some("") => {
            return Err(Unusable(format!(
                "the quantity has no unit; crest reads it in {}",
                units[0].0
            )))
        }
        Some(u) => match units.iter().find(|(name, _)| *name == u) {
            Some((_, f)) => *f,
            None => {
                return Err(Unusable(format!(
                    "the unit '{}' cannot be converted to {}; crest reads {}",
                    crest_core::validate::shown(u),
                    units[0].0,
                    units.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )))
            }
        },
    };
    let x = v * factor;
    Ok(if factor == 1.0 {
        x
    } else {
        // Converted values keep two decimals: enough for any unit the dataset uses.
        (x * 100.0).round() / 100.0
    })
}

/// Reduces one resource to what the mapping uses.
pub(crate) fn add(res: &Resource, key: std::sync::Arc<str>, facts: &mut Facts) {
    match facts.read.get_mut(&*res.resource_type) {
        Some(n) => *n += 1,
        None => {
            facts.read.insert(res.resource_type.to_string(), 1);
        }
    }
    let subject = res
        .subject
        .as_ref()
        .or(res.patient.as_ref())
        .and_then(|r| r.reference.as_deref())
        .map(|r| facts.intern(r));
    match &*res.resource_type {
        "Patient" => facts.patients.push(patient(res, key)),
        "Condition" => {
            let (date, date_element) = match (&res.onset_date_time, &res.recorded_date) {
                (Some(d), _) => (Some(fhir_date(d)), "onsetDateTime"),
                (None, Some(d)) => (Some(fhir_date(d)), "recordedDate"),
                (None, None) => (None, "onsetDateTime"),
            };
            let links = refs(facts, res.encounter.as_deref());
            facts.conditions.push(EventFact {
                key,
                subject,
                code: map_code("Condition", "code", "initiating_event", res.code.as_deref()),
                date,
                date_element,
                links,
            });
        }
        "Procedure" => {
            let (date, date_element) = match (&res.performed_date_time, &res.performed_period) {
                (Some(d), _) => (Some(fhir_date(d)), "performedDateTime"),
                (None, Some(p)) => (p.start.as_deref().map(fhir_date), "performedPeriod.start"),
                (None, None) => (None, "performedDateTime"),
            };
            let mut links = refs(facts, &res.reason_reference);
            links.extend(refs(facts, res.encounter.as_deref()));
            links.extend(refs(facts, &res.based_on));
            facts.procedures.push(EventFact {
                key,
                subject,
                code: map_code("Procedure", "code", "treatment", res.code.as_deref()),
                date,
                date_element,
                links,
            });
        }
        "ServiceRequest" => {
            let crest_coded = res.code.as_ref().is_some_and(|c| {
                c.coding.iter().any(|cd| {
                    cd.system
                        .as_deref()
                        .is_some_and(|s| is_crest(s, "CodeSystem", "service"))
                })
            });
            let reasons = refs(facts, &res.reason_reference);
            facts.referrals.push(ReferralFact {
                key,
                subject,
                authored: opt_date(&res.authored_on),
                reasons,
                crest_coded,
                coded: res.code.as_ref().is_some_and(|c| !c.coding.is_empty()),
            });
        }
        "EpisodeOfCare" | "Encounter" => {
            let encounter = &*res.resource_type == "Encounter";
            let (start, end) = period_dates(res.period.as_deref());
            let mut links = refs(facts, &res.referral_request);
            links.extend(refs(
                facts,
                res.diagnosis.iter().filter_map(|d| d.condition.as_ref()),
            ));
            links.extend(refs(facts, &res.based_on));
            links.extend(refs(facts, &res.episode_of_care));
            let episode_id = res
                .identifier
                .iter()
                .find(|i| {
                    i.system
                        .as_deref()
                        .is_some_and(|s| is_crest(s, "Id", "episode"))
                })
                .and_then(|i| i.value.clone());
            let programme = res
                .managing_organization
                .as_ref()
                .and_then(|o| o.identifier.as_ref())
                .filter(|i| {
                    i.system
                        .as_deref()
                        .is_some_and(|s| is_crest(s, "Id", "programme"))
                })
                .and_then(|i| i.value.clone());
            let prefix =
                STRUCTURE_DEFINITIONS.get_or_init(|| format!("{CREST}/StructureDefinition/"));
            let mut fields: Vec<(crest_core::Col, String)> = Vec::new();
            let mut unknown = Vec::new();
            // crest's fields: the parts of its complex `episode` extension (or, as crest
            // once wrote them, one extension per field).
            let mut parts: Vec<(&str, &super::model::Extension)> = Vec::new();
            for x in &res.extension {
                let Some(name) = x.url.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                if name == "episode" {
                    parts.extend(x.extension.iter().map(|p| (&*p.url, p)));
                } else {
                    parts.push((name, x));
                }
            }
            for (field, x) in parts {
                let v = x
                    .value_code
                    .clone()
                    .or_else(|| x.value_string.clone())
                    .or_else(|| x.value_date.clone())
                    .or_else(|| x.value_integer.map(|i| S(i.to_string().into())))
                    .or_else(|| x.value_boolean.map(|b| S(b.to_string().into())))
                    .unwrap_or_default();
                let Some(field) = crest_core::dataset::field_by_name(field)
                    .filter(|f| f.imported())
                    .map(|f| f.col)
                else {
                    unknown.push(field.to_string());
                    continue;
                };
                // A list (comorbidities) is one part per code.
                match fields.iter_mut().find(|(f, _)| *f == field) {
                    Some((_, old)) => {
                        old.push(';');
                        old.push_str(&v);
                    }
                    None => fields.push((field, v.to_string())),
                }
            }
            facts.care.push(CareFact {
                key,
                encounter,
                subject,
                status: owned(&res.status),
                start,
                end,
                links,
                episode_id: owned(&episode_id),
                programme: owned(&programme),
                fields: super::texts::OwnFields::new(&fields),
                unknown,
            });
        }
        "Observation" => observation(res, key, subject, facts),
        other => {
            *facts.read.entry(other.to_string()).or_default() -= 1;
            *facts.ignored.entry(other.to_string()).or_default() += 1;
        }
    }
}

fn patient(res: &Resource, key: std::sync::Arc<str>) -> PatientFact {
    let nhs = res
        .identifier
        .iter()
        .find(|i| i.system.as_deref() == Some(NHS_NUMBER))
        .and_then(|i| i.value.clone());
    let local_id = res
        .identifier
        .iter()
        .find(|i| {
            i.system
                .as_deref()
                .is_some_and(|s| is_crest(s, "Id", "local-patient-id"))
        })
        .and_then(|i| i.value.clone());
    let gender = res.gender.as_deref().map(|g| {
        match g {
            "other" => "indeterminate",
            "unknown" => "not_known",
            g => g,
        }
        .to_string()
    });
    // The current home address: not an old one, not one whose period has ended.
    let address = res
        .address
        .iter()
        .filter(|a| a.postal_code.is_some() && a.use_.as_deref() != Some("old"))
        .filter(|a| a.period.as_ref().and_then(|p| p.end.as_ref()).is_none())
        .max_by_key(|a| a.use_.as_deref() == Some("home"));
    let name = res
        .name
        .iter()
        .filter(|n| n.use_.as_deref() != Some("old"))
        .max_by_key(|n| n.use_.as_deref() == Some("official"));
    let ethnicity = res
        .extension
        .iter()
        .find(|x| &*x.url == ETHNIC_CATEGORY)
        .map(|x| ethnic_category(x.value_codeable_concept.as_ref()));
    PatientFact {
        key,
        nhs: owned(&nhs),
        birth_date: owned(&res.birth_date),
        gender,
        postcode: address.and_then(|a| owned(&a.postal_code)),
        family: name.and_then(|n| owned(&n.family)),
        given: name
            .map(|n| {
                n.given
                    .iter()
                    .map(|g| &**g)
                    .collect::<Vec<&str>>()
                    .join(" ")
            })
            .filter(|g| !g.is_empty()),
        local_id: owned(&local_id),
        ethnicity,
    }
}

/// The dataset's ethnic category letter from the UK Core extension.
fn ethnic_category(c: Option<&Concept>) -> Result<String, Unusable> {
    const ENGLAND: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland";
    const WALES: &str = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryWales";
    const LETTERS: &str = "ABCDEFGHJKLMNPRSZ";
    let Some(c) = c else {
        return Err("the extension has no valueCodeableConcept".into());
    };
    for cd in &c.coding {
        let code = cd.code.as_deref().unwrap_or("");
        match cd.system.as_deref() {
            Some(ENGLAND) | Some(WALES) if code == "99" => return Ok(String::new()),
            Some(ENGLAND) | Some(WALES) if code.len() == 1 && LETTERS.contains(code) => {
                return Ok(code.to_string())
            }
            _ => {}
        }
    }
    Err(Unusable(match c.coding.first() {
        Some(cd) => format!(
            "{}|{}",
            cd.system.as_deref().unwrap_or("(no system)"),
            cd.code.as_deref().unwrap_or("(no code)")
        ),
        None => "no coding".into(),
    }))
}

/// The dataset's own spelling of a smoking status.
fn smoking_code(c: &str) -> Option<&'static str> {
    match crest_core::Col::A1Smoking.field().kind {
        crest_core::dataset::Kind::Code(codes) => codes
            .iter()
            .find(|k| k.code.eq_ignore_ascii_case(c))
            .map(|k| k.code),
        _ => None,
    }
}

fn observation(res: &Resource, key: std::sync::Arc<str>, subject: Option<Ref>, facts: &mut Facts) {
    let none = Concept::default();
    let code = res.code.as_deref().unwrap_or(&none);
    let Some(measure) = measure_of("code", code) else {
        let n = &mut facts.unmapped_observations;
        n.0 += 1;
        if n.1.len() < 5 {
            let coding = code
                .coding
                .first()
                .map(|c| {
                    format!(
                        "{}|{}",
                        c.system.as_deref().unwrap_or(""),
                        c.code.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| "no coding".into());
            n.1.push(format!("{key} ({coding})"));
        }
        return;
    };
    let mut measures = Vec::new();
    match measure {
        "blood_pressure" => {
            for comp in &res.component {
                if let Some(m @ ("systolic_bp" | "diastolic_bp")) =
                    measure_of("component", &comp.code)
                {
                    measures.push(Measure {
                        measure: m,
                        value: comp
                            .value_quantity
                            .as_ref()
                            .map_or(Err("the component has no valueQuantity".into()), |q| {
                                quantity(m, q).map(MeasureValue::Num)
                            }),
                        element: if m == "systolic_bp" {
                            "component[systolic].valueQuantity"
                        } else {
                            "component[diastolic].valueQuantity"
                        },
                    });
                }
            }
            if measures.is_empty() {
                measures.push(Measure {
                    measure: "systolic_bp",
                    value: Err(
                        "the blood pressure panel has no systolic or diastolic component".into(),
                    ),
                    element: "component",
                });
            }
        }
        "smoking" => measures.push(Measure {
            measure: "smoking",
            value: map_code(
                "Observation",
                "value",
                "smoking",
                res.value_codeable_concept.as_deref(),
            )
            .map_err(|c| format!("the smoking status {c} is not in crest's mapping"))
            .and_then(|c| {
                smoking_code(&c)
                    .map(MeasureValue::Code)
                    .ok_or_else(|| format!("'{c}' is not a smoking status crest knows"))
            })
            .map_err(Into::into),
            element: "valueCodeableConcept",
        }),
        m => measures.push(Measure {
            measure: m,
            value: match (&res.value_quantity, res.value_integer) {
                (Some(q), _) => quantity(m, q).map(MeasureValue::Num),
                (None, Some(i)) => Ok(MeasureValue::Num(i as f64)),
                (None, None) => Err("the Observation has no valueQuantity".into()),
            },
            element: if res.value_quantity.is_some() {
                "valueQuantity"
            } else {
                "valueInteger"
            },
        }),
    }
    let date = match (&res.effective_date_time, &res.effective_period) {
        (Some(d), _) => Some(fhir_date(d)),
        (None, Some(p)) => p.start.as_deref().map(fhir_date),
        (None, None) => None,
    };
    let mut links = refs(facts, &res.based_on);
    links.extend(refs(facts, res.encounter.as_deref()));
    let slot = res
        .extension
        .iter()
        .find(|x| is_crest(&x.url, "StructureDefinition", "assessment"))
        .and_then(|x| x.value_integer)
        .and_then(|i| u8::try_from(i).ok())
        .filter(|i| (1..=2).contains(i));
    facts.observations.push(ObservationFact {
        key,
        subject,
        date,
        links,
        measures: measures.into_boxed_slice(),
        slot,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_are_uk_calendar_dates() {
        let d = |s: &str| fhir_date(s).map(|d| d.to_string());
        assert_eq!(d("2024-07-01").unwrap(), "2024-07-01");
        // 23:30 UTC in July is 00:30 BST the next day.
        assert_eq!(d("2024-07-01T23:30:00Z").unwrap(), "2024-07-02");
        // In January London is on UTC.
        assert_eq!(d("2024-01-01T23:30:00Z").unwrap(), "2024-01-01");
        // An offset is honoured: 01:00+02:00 is 23:00 UTC the day before, 00:00 BST.
        assert_eq!(d("2024-07-02T01:00:00+02:00").unwrap(), "2024-07-02");
        assert_eq!(d("2024-07-02T00:30:00+02:00").unwrap(), "2024-07-01");
        assert!(d("2024-07").is_err());
        assert!(d("2024-13-01").is_err());
        assert!(d("2024-07-01T25:00:00Z").is_err());
        // Found by the property tests: a date with a character of several bytes inside its
        // first ten bytes panicked when cut; it is refused in words.
        assert!(d("&ತwꡑz𐖼Ⱥપ𐠅.{9")
            .unwrap_err()
            .0
            .contains("is not a FHIR date"));
        assert!(d("2024-07-0é").is_err());
        assert!(d("2024-07-01Té").is_err());
    }

    #[test]
    fn units_convert_or_are_refused_in_words() {
        let q = |v: f64, u: &'static str| Quantity {
            value: Some(v),
            code: Some(S(u.into())),
            ..Default::default()
        };
        assert_eq!(quantity("weight_kg", &q(154.0, "[lb_av]")).unwrap(), 69.85);
        assert_eq!(quantity("height_cm", &q(1.72, "m")).unwrap(), 172.0);
        assert_eq!(quantity("height_cm", &q(68.0, "[in_i]")).unwrap(), 172.72);
        assert_eq!(
            quantity("total_cholesterol", &q(193.35, "mg/dL")).unwrap(),
            5.0
        );
        let e = quantity("weight_kg", &q(70.0, "mm[Hg]")).unwrap_err();
        assert!(e.0.contains("cannot be converted to kg"), "{e}");
        let none = Quantity {
            value: Some(70.0),
            ..Default::default()
        };
        assert!(quantity("weight_kg", &none)
            .unwrap_err()
            .0
            .contains("no unit"));
        assert_eq!(quantity("hads_anxiety", &none).unwrap(), 70.0);
    }
}
