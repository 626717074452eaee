//! Assembling episodes from FHIR facts, one patient at a time.
//!
//! An initiating event (a Condition crest maps) starts an episode. Every other resource joins
//! an episode by its references (`reasonReference`, `diagnosis`, `referralRequest`,
//! `basedOn`, `episodeOfCare`, `encounter`) or, where it has none, by date: the episode whose
//! event is the latest on or before it. Each episode comes out as a row of dataset cells, so
//! it goes through exactly the checks, transaction and idempotence of a CSV row; every cell
//! remembers the resource and element it came from, so a problem names them.

use super::mapping;
use super::read::{CareFact, Facts, FhirDate, PatientFact};
use crest_core::validate::Issue;
use crest_core::{Date, FIELDS};
use std::collections::{HashMap, VecDeque};

/// One episode read from FHIR: its cells (in [`header`] order), where each came from, and the
/// problems found while assembling it.
#[derive(Debug, Default)]
pub struct Episode {
    /// Cells in [`header`] order.
    pub cells: Vec<String>,
    /// For each cell, the resource and element it came from.
    pub origins: Vec<Option<String>>,
    /// Problems that reject the episode.
    pub errors: Vec<Issue>,
    /// Problems worth a look.
    pub warnings: Vec<Issue>,
}

/// What one assembled row is.
#[derive(Debug)]
pub enum Built {
    /// An episode to check and store.
    Episode(Episode),
    /// Resources that should have made an episode but cannot (the reason names them).
    Failed(String),
}

/// The dataset columns a FHIR import fills, as the header of its rows.
pub fn header() -> Vec<String> {
    names().iter().map(|n| n.to_string()).collect()
}

fn names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        FIELDS
            .iter()
            .filter(|f| f.imported())
            .map(|f| f.name)
            .collect()
    })
}

/// A column's place in [`header`].
pub fn index(name: &str) -> Option<usize> {
    names().iter().position(|n| *n == name)
}

/// The resources of one patient (one NHS number), by position in [`Facts`].
#[derive(Default)]
struct Group {
    patients: Vec<usize>,
    conditions: Vec<usize>,
    procedures: Vec<usize>,
    referrals: Vec<usize>,
    care: Vec<usize>,
    observations: Vec<usize>,
}

/// Episodes assembled on demand, patient by patient.
pub struct Rows {
    facts: Facts,
    groups: Vec<Group>,
    next_group: usize,
    queue: VecDeque<Built>,
    default_programme: Option<String>,
    /// Warnings about the files as a whole (ignored resource types, unmapped codes, …).
    pub notes: Vec<String>,
}

fn strip_nhs(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

impl Rows {
    /// Groups the facts by patient.
    pub fn new(mut facts: Facts) -> Rows {
        facts.resolved = facts.refs.iter().map(|r| facts.resolve(r)).collect();
        let mut groups: Vec<Group> = Vec::new();
        let mut by_nhs: HashMap<String, usize> = HashMap::new();
        let mut by_key: HashMap<String, usize> = HashMap::new();
        for (i, p) in facts.patients.iter().enumerate() {
            let g = match p.nhs.as_deref().map(strip_nhs).filter(|n| !n.is_empty()) {
                Some(n) => *by_nhs.entry(n).or_insert_with(|| {
                    groups.push(Group::default());
                    groups.len() - 1
                }),
                None => {
                    groups.push(Group::default());
                    groups.len() - 1
                }
            };
            groups[g].patients.push(i);
            by_key.insert(p.key.clone(), g);
            if let Some(url) = facts
                .urls
                .iter()
                .find(|(_, k)| **k == p.key)
                .map(|(u, _)| u.clone())
            {
                by_key.insert(url, g);
            }
        }
        let mut notes = Vec::new();
        let mut queue = VecDeque::new();
        let mut orphans: Vec<String> = Vec::new();
        let mut unlinked = 0usize;
        let group_of = |subject: &Option<u32>| -> Result<usize, Option<String>> {
            let s = subject.ok_or(None)? as usize;
            let k = &facts.resolved[s];
            by_key
                .get(k)
                .or_else(|| by_key.get(&facts.refs[s]))
                .copied()
                .ok_or_else(|| Some(k.clone()))
        };
        macro_rules! place {
            ($list:ident, $field:ident, $what:expr, $fatal:expr) => {
                for (i, f) in facts.$list.iter().enumerate() {
                    match group_of(&f.subject) {
                        Ok(g) => groups[g].$field.push(i),
                        Err(missing) => {
                            let why = match missing {
                                Some(k) => format!(
                                    "{}: its {} refers to {k}, which is not in the file",
                                    f.key, $what
                                ),
                                None => format!("{}: it names no patient ({})", f.key, $what),
                            };
                            if $fatal {
                                queue.push_back(Built::Failed(why));
                            } else if orphans.len() < 5 {
                                orphans.push(why);
                                unlinked += 1;
                            } else {
                                unlinked += 1;
                            }
                        }
                    }
                }
            };
        }
        // A mapped initiating event with no patient is an episode lost: said as a rejected row.
        for (i, f) in facts.conditions.iter().enumerate() {
            match group_of(&f.subject) {
                Ok(g) => groups[g].conditions.push(i),
                Err(missing) if f.code.is_ok() => queue.push_back(Built::Failed(match missing {
                    Some(k) => format!("{}: its subject refers to {k}, which is not in the file; the episode cannot be built without its patient", f.key),
                    None => format!("{}: it has no subject, so crest cannot tell whose episode it is", f.key),
                })),
                Err(_) => unlinked += 1,
            }
        }
        place!(procedures, procedures, "subject", false);
        place!(referrals, referrals, "subject", false);
        place!(care, care, "patient", false);
        place!(observations, observations, "subject", false);
        if unlinked > 0 {
            notes.push(format!(
                "{unlinked} resource(s) name no patient in the file and were not used{}",
                if orphans.is_empty() {
                    String::new()
                } else {
                    format!(", e.g. {}", orphans.join("; "))
                }
            ));
        }
        if !facts.ignored.is_empty() {
            notes.push(format!(
                "{} resource(s) of types crest does not read were ignored: {}",
                facts.ignored.values().sum::<usize>(),
                facts
                    .ignored
                    .iter()
                    .map(|(t, n)| format!("{t} ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let (n, examples) = &facts.unmapped_observations;
        if *n > 0 {
            notes.push(format!(
                "{n} Observation(s) have codes crest does not map and were not used, e.g. {}",
                examples.join(", ")
            ));
        }
        let without = groups.iter().filter(|g| g.conditions.is_empty()).count();
        if without > 0 {
            notes.push(format!(
                "{without} patient(s) have no Condition crest maps to an initiating event (see `crest fhir mapping`), so no episode"
            ));
        }
        Rows {
            facts,
            groups,
            next_group: 0,
            queue,
            default_programme: None,
            notes,
        }
    }

    /// The programme for episodes whose files do not name one.
    pub fn set_default_programme(&mut self, p: Option<String>) {
        self.default_programme = p;
    }

    /// Fraction of patients assembled.
    pub fn progress(&self) -> f64 {
        self.next_group as f64 / self.groups.len().max(1) as f64
    }

    /// The next episode (or failed one), or `None` at the end.
    pub fn next_built(&mut self) -> Option<Built> {
        loop {
            if let Some(b) = self.queue.pop_front() {
                return Some(b);
            }
            if self.next_group >= self.groups.len() {
                return None;
            }
            let g = std::mem::take(&mut self.groups[self.next_group]);
            self.next_group += 1;
            let built = assemble(&self.facts, &g, self.default_programme.as_deref());
            self.queue.extend(built);
        }
    }
}

struct Cells {
    ep: Episode,
}

impl Cells {
    fn new() -> Cells {
        let n = names().len();
        Cells {
            ep: Episode {
                cells: vec![String::new(); n],
                origins: vec![None; n],
                ..Default::default()
            },
        }
    }

    fn set(&mut self, field: &str, value: impl Into<String>, origin: impl Into<String>) {
        if let Some(i) = index(field) {
            self.ep.cells[i] = value.into();
            self.ep.origins[i] = Some(origin.into());
        }
    }

    fn date(&mut self, field: &str, d: &Option<FhirDate>, origin: String) {
        match d {
            Some(Ok(d)) => self.set(field, d.to_string(), origin),
            Some(Err(why)) => self.error(field, &origin, "", why.clone()),
            None => {}
        }
    }

    /// A problem with a dataset field, said against the resource and element it concerns.
    fn error(&mut self, field: &str, origin: &str, value: &str, message: String) {
        if let Some(i) = index(field) {
            self.ep.origins[i] = Some(origin.to_string());
        }
        self.ep.errors.push(Issue {
            column: field.to_string(),
            value: value.to_string(),
            message,
        });
    }

    fn warn(&mut self, column: &str, value: &str, message: String) {
        self.ep.warnings.push(Issue {
            column: column.to_string(),
            value: value.to_string(),
            message,
        });
    }
}

/// Treatments in order of precedence when an episode has several procedures: the one that
/// defines the rehabilitation pathway wins.
const TREATMENT_ORDER: [&str; 7] = [
    "transplant_lvad",
    "cabg",
    "valve_surgery",
    "icd_crt",
    "pacemaker",
    "pci",
    "other_surgery",
];

fn id_part(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// An episode id for an episode whose files carry none: stable across re-imports of the same
/// resources, so a re-import updates rather than duplicates.
fn derived_id(prefix: &str, key: &str) -> String {
    let id = id_part(key);
    let candidate = format!("{prefix}-{id}");
    if candidate.len() <= 40 {
        return candidate;
    }
    // FNV-1a: a short, stable digest of an over-long resource id.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}-{h:016x}")
}

fn assemble(facts: &Facts, g: &Group, default_programme: Option<&str>) -> Vec<Built> {
    let mut out = Vec::new();
    // Episodes: mapped initiating events with a usable date, in date order.
    let mut events: Vec<(usize, Date)> = Vec::new();
    let mut loose: Vec<String> = Vec::new();
    for &c in &g.conditions {
        let f = &facts.conditions[c];
        match (&f.code, &f.date) {
            (Err(coding), _) => loose.push(format!(
                "{}: code {coding} is not an initiating event in crest's mapping, so it was not used",
                f.key
            )),
            (Ok(_), Some(Ok(d))) => events.push((c, *d)),
            (Ok(_), Some(Err(why))) => out.push(Built::Failed(format!(
                "{} {}: {why}; an episode needs the date of its initiating event",
                f.key, f.date_element
            ))),
            (Ok(_), None) => out.push(Built::Failed(format!(
                "{}: no onsetDateTime or recordedDate; an episode needs the date of its initiating event",
                f.key
            ))),
        }
    }
    events.sort_by_key(|(c, d)| (*d, facts.conditions[*c].key.clone()));
    if events.is_empty() {
        for &e in &g.care {
            let f = &facts.care[e];
            if !f.encounter {
                out.push(Built::Failed(format!(
                    "{}: the patient has no Condition crest maps to an initiating event (see `crest fhir mapping`), so the episode cannot be built",
                    f.key
                )));
            }
        }
        return out;
    }
    let n = events.len();
    let by_date = |d: Date| -> Option<usize> {
        match events.iter().rposition(|(_, e)| *e <= d) {
            Some(i) => Some(i),
            // Up to 30 days before the first event (an inpatient assessment, say).
            None if d.add_days(30) >= events[0].1 => Some(0),
            None => None,
        }
    };
    let mut episode_of: HashMap<String, usize> = HashMap::new();
    for (i, (c, _)) in events.iter().enumerate() {
        episode_of.insert(facts.conditions[*c].key.clone(), i);
    }
    let mut notes: Vec<Vec<(String, String)>> = vec![Vec::new(); n];
    // Links resolve to keys; a link to a resource not in the files is said, then dates decide.
    let linked = |links: &[u32],
                  known: &HashMap<String, usize>,
                  who: &str,
                  notes: &mut Vec<Vec<(String, String)>>|
     -> Option<usize> {
        let mut missing = None;
        for l in links {
            let k = facts.resolved[*l as usize].clone();
            if let Some(e) = known.get(&k) {
                return Some(*e);
            }
            if !facts.has(&k) {
                missing = Some(k);
            }
        }
        if let Some(k) = missing {
            notes[0].push((
                who.to_string(),
                format!("it refers to {k}, which is not in the file; it was placed by its date"),
            ));
        }
        None
    };
    // Referrals.
    let mut referral: Vec<Option<usize>> = vec![None; n];
    for &r in &g.referrals {
        let f = &facts.referrals[r];
        let e = linked(&f.reasons, &episode_of, &f.key, &mut notes).or_else(|| match &f.authored {
            Some(Ok(d)) => by_date(*d),
            _ => None,
        });
        if let Some(e) = e {
            episode_of.insert(f.key.clone(), e);
            let earlier = referral[e]
                .is_some_and(|o| date_of(&facts.referrals[o].authored) <= date_of(&f.authored));
            if referral[e].is_some() {
                notes[e].push((
                    f.key.clone(),
                    "a second referral for this episode; the earliest was used".into(),
                ));
            }
            if !earlier {
                referral[e] = Some(r);
            }
        }
    }
    // Episodes of care first, then encounters (which may point at them).
    let mut care: Vec<Option<usize>> = vec![None; n];
    let mut encounters: Vec<Vec<usize>> = vec![Vec::new(); n];
    for pass in [false, true] {
        for &c in &g.care {
            let f = &facts.care[c];
            if f.encounter != pass {
                continue;
            }
            if f.status.as_deref() == Some("entered-in-error") {
                continue;
            }
            let e = linked(&f.links, &episode_of, &f.key, &mut notes).or_else(|| match &f.start {
                Some(Ok(d)) => by_date(*d),
                _ => None,
            });
            let Some(e) = e else { continue };
            episode_of.insert(f.key.clone(), e);
            if f.encounter {
                encounters[e].push(c);
            } else if care[e].is_some() {
                notes[e].push((
                    f.key.clone(),
                    "a second EpisodeOfCare for this episode; the first was used".into(),
                ));
            } else {
                care[e] = Some(c);
            }
        }
    }
    let mut procedures: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &p in &g.procedures {
        let f = &facts.procedures[p];
        if let Err(coding) = &f.code {
            loose.push(format!(
                "{}: code {coding} is not a treatment in crest's mapping, so it was not used",
                f.key
            ));
            continue;
        }
        let e = linked(&f.links, &episode_of, &f.key, &mut notes).or_else(|| match &f.date {
            Some(Ok(d)) => by_date(*d),
            _ => Some(0).filter(|_| n == 1),
        });
        if let Some(e) = e {
            procedures[e].push(p);
        }
    }
    let mut observations: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &o in &g.observations {
        let f = &facts.observations[o];
        let date = match &f.date {
            Some(Ok(d)) => *d,
            Some(Err(why)) => {
                loose.push(format!(
                    "{}: {why}; it cannot be placed at an assessment and was not used",
                    f.key
                ));
                continue;
            }
            None => {
                loose.push(format!(
                    "{}: no effectiveDateTime, so it cannot be placed at an assessment and was not used",
                    f.key
                ));
                continue;
            }
        };
        let e = linked(&f.links, &episode_of, &f.key, &mut notes).or_else(|| by_date(date));
        match e {
            Some(e) => observations[e].push(o),
            None => loose.push(format!(
                "{}: dated before any initiating event of this patient, so it was not used",
                f.key
            )),
        }
    }
    // Patients of this NHS number who disagree on who they are: one number is wrong.
    let conflict = conflicting(facts, g);
    for (i, (c, event)) in events.iter().enumerate() {
        let cond = &facts.conditions[*c];
        let mut cells = Cells::new();
        if let Some(why) = &conflict {
            cells.error("date_of_birth", "Patient", "", why.clone());
        }
        let patient = cond
            .subject
            .map(|s| facts.resolved[s as usize].clone())
            .and_then(|k| {
                g.patients
                    .iter()
                    .map(|p| &facts.patients[*p])
                    .find(|p| p.key == k)
            })
            .or_else(|| g.patients.first().map(|p| &facts.patients[*p]));
        if let Some(p) = patient {
            patient_cells(&mut cells, p);
        }
        cells.set(
            "initiating_event",
            cond.code.clone().unwrap_or_default(),
            format!("{} code", cond.key),
        );
        cells.set(
            "event_date",
            event.to_string(),
            format!("{} {}", cond.key, cond.date_element),
        );
        // Treatment: the procedure that defines the pathway; none is medical treatment.
        let mut best: Option<(usize, &str, &str)> = None;
        for &p in &procedures[i] {
            let f = &facts.procedures[p];
            let code = f.code.as_deref().unwrap_or("");
            let rank = TREATMENT_ORDER
                .iter()
                .position(|t| *t == code)
                .unwrap_or(TREATMENT_ORDER.len());
            if let Some((r, other, _)) = best {
                let (kept, dropped) = if rank < r {
                    (f.key.as_str(), other)
                } else {
                    (other, f.key.as_str())
                };
                cells.warn(dropped, "", format!("the episode has more than one treatment; crest records one, and took {kept}'s"));
            }
            if best.is_none_or(|(r, _, _)| rank < r) {
                best = Some((rank, f.key.as_str(), code));
            }
        }
        match best {
            Some((_, key, code)) => cells.set("treatment", code, format!("{key} code")),
            None => cells.set(
                "treatment",
                "medical",
                format!("{} (no Procedure)", cond.key),
            ),
        }
        match referral[i] {
            Some(r) => {
                let f = &facts.referrals[r];
                cells.date("referral_date", &f.authored, format!("{} authoredOn", f.key));
                if f.authored.is_none() {
                    cells.error("referral_date", &f.key, "", "the referral has no authoredOn date".into());
                }
            }
            None => cells.error(
                "referral_date",
                "ServiceRequest",
                "",
                format!("no referral to cardiac rehabilitation (ServiceRequest) was found for {}: crest takes the referral date from a ServiceRequest whose reasonReference is the condition, or one dated on or after it", cond.key),
            ),
        }
        let eoc = care[i].map(|c| &facts.care[c]);
        care_cells(
            &mut cells,
            eoc,
            &encounters[i]
                .iter()
                .map(|c| &facts.care[*c])
                .collect::<Vec<_>>(),
        );
        // Programme and episode id.
        let programme = eoc.and_then(|c| c.programme.clone());
        match (programme, default_programme) {
            (Some(p), _) => cells.set("programme_code", p, format!("{} managingOrganization", eoc.map_or("", |c| c.key.as_str()))),
            (None, Some(p)) => cells.set("programme_code", p, "the programme importing the file"),
            (None, None) => cells.error(
                "programme_code",
                "EpisodeOfCare managingOrganization",
                "",
                "the file does not say which programme this episode belongs to; import it from the programme's own upload page, or with crest import --programme CODE".into(),
            ),
        }
        let (id, origin) = match eoc {
            Some(c) => match &c.episode_id {
                Some(id) => (id.clone(), format!("{} identifier", c.key)),
                None => (derived_id("eoc", &c.key), format!("{} id", c.key)),
            },
            None => (derived_id("cond", &cond.key), format!("{} id", cond.key)),
        };
        cells.set("episode_id", id, origin);
        measure_cells(&mut cells, facts, &observations[i]);
        for (who, why) in &notes[i] {
            cells.warn(who, "", why.clone());
        }
        if i == 0 {
            for l in &loose {
                cells.warn("", "", l.clone());
            }
        }
        out.push(Built::Episode(cells.ep));
    }
    out
}

fn date_of(d: &Option<FhirDate>) -> Option<Date> {
    d.as_ref().and_then(|d| d.as_ref().ok().copied())
}

fn conflicting(facts: &Facts, g: &Group) -> Option<String> {
    let ps: Vec<&PatientFact> = g.patients.iter().map(|p| &facts.patients[*p]).collect();
    let first = ps.first()?;
    for p in &ps[1..] {
        let what = if p.birth_date != first.birth_date {
            "dates of birth"
        } else if p.gender != first.gender {
            "genders"
        } else {
            continue;
        };
        return Some(format!(
            "{} and {} have the same NHS number but different {what}: one of the NHS numbers is probably wrong; correct it in the hospital record and export again",
            first.key, p.key
        ));
    }
    None
}

fn patient_cells(cells: &mut Cells, p: &PatientFact) {
    let k = &p.key;
    match &p.nhs {
        Some(n) => cells.set(
            "nhs_number",
            n.clone(),
            format!("{k} identifier (NHS number)"),
        ),
        None => cells.error(
            "nhs_number",
            &format!("{k} identifier"),
            "",
            format!(
                "no NHS number: crest needs the identifier with system {}",
                mapping::NHS_NUMBER
            ),
        ),
    }
    if let Some(d) = &p.birth_date {
        cells.set("date_of_birth", d.clone(), format!("{k} birthDate"));
    }
    if let Some(s) = &p.gender {
        cells.set("sex", s.clone(), format!("{k} gender"));
    }
    if let Some(s) = &p.postcode {
        cells.set("postcode", s.clone(), format!("{k} address.postalCode"));
    }
    if let Some(s) = &p.family {
        cells.set("family_name", s.clone(), format!("{k} name.family"));
    }
    if let Some(s) = &p.given {
        cells.set("given_name", s.clone(), format!("{k} name.given"));
    }
    if let Some(s) = &p.local_id {
        cells.set(
            "local_patient_id",
            s.clone(),
            format!("{k} identifier (local)"),
        );
    }
    match &p.ethnicity {
        Some(Ok(e)) => cells.set("ethnicity", e.clone(), format!("{k} extension (ethnic category)")),
        Some(Err(coding)) => cells.warn(
            &format!("{k} extension (ethnic category)"),
            coding,
            "this ethnic category is not an NHS Data Dictionary code crest knows; recorded as not known".into(),
        ),
        None => {}
    }
}

/// Status, core dates and crest's own fields from the episode of care (or its encounters).
fn care_cells(cells: &mut Cells, eoc: Option<&CareFact>, encounters: &[&CareFact]) {
    let own = |f: &str| {
        eoc.and_then(|c| {
            c.fields
                .iter()
                .find(|(n, _)| *n == f)
                .map(|(_, v)| v.clone())
        })
    };
    let start = eoc
        .and_then(|c| date_of(&c.start))
        .or_else(|| encounters.iter().filter_map(|e| date_of(&e.start)).min());
    let status = match (own("status"), eoc) {
        (Some(s), Some(c)) => Some((s, format!("{} extension (status)", c.key))),
        (None, Some(c)) => c.status.as_deref().map(|s| {
            let code = match s {
                "planned" | "waitlist" => "referred",
                "active" | "onhold" => "in_progress",
                "finished" => "completed",
                "cancelled" if start.is_some() => "dropped_out",
                "cancelled" => "did_not_start",
                other => other,
            };
            (code.to_string(), format!("{} status", c.key))
        }),
        (_, None) if !encounters.is_empty() => Some((
            "in_progress".to_string(),
            format!("{} (rehabilitation encounters)", encounters[0].key),
        )),
        _ => None,
    };
    match status {
        Some((s, origin)) => cells.set("status", s, origin),
        None => cells.set("status", "referred", "no EpisodeOfCare: waiting to start"),
    }
    if let Some(c) = eoc {
        cells.date(
            "core_start_date",
            &c.start,
            format!("{} period.start", c.key),
        );
        cells.date("core_end_date", &c.end, format!("{} period.end", c.key));
        for (field, value) in &c.fields {
            if *field != "status" {
                cells.set(
                    field,
                    value.clone(),
                    format!("{} extension ({field})", c.key),
                );
            }
        }
        for field in &c.unknown {
            cells.warn(
                &c.key,
                field,
                format!("crest has no field {field}; the extension was ignored"),
            );
        }
    } else if let Some(s) = start {
        let first = encounters
            .iter()
            .find(|e| date_of(&e.start) == Some(s))
            .map_or("", |e| e.key.as_str());
        cells.set(
            "core_start_date",
            s.to_string(),
            format!("{first} period.start"),
        );
    }
}

/// Assigns each measure to assessment 1 or 2 by its date, relative to the core dates (and to
/// assessment dates the files give), keeping for each the value nearest the core programme.
fn measure_cells(cells: &mut Cells, facts: &Facts, obs: &[usize]) {
    fn get(cells: &Cells, f: &str) -> Option<Date> {
        index(f)
            .map(|i| cells.ep.cells[i].as_str())
            .filter(|s| !s.is_empty())
            .and_then(|s| Date::parse_iso(s).ok())
    }
    let (start, end) = (get(cells, "core_start_date"), get(cells, "core_end_date"));
    let (a1, a2) = (
        get(cells, "assessment1_date"),
        get(cells, "assessment2_date"),
    );
    // (slot, measure) → (date, observation, value, element)
    let mut kept: HashMap<(u8, &str), (Date, usize, usize)> = HashMap::new();
    for &o in obs {
        let f = &facts.observations[o];
        let Some(Ok(d)) = f.date else { continue };
        let slot = if let Some(s) = f.slot {
            s
        } else if Some(d) == a1 {
            1
        } else if Some(d) == a2 {
            2
        } else {
            match (start, end) {
                (Some(s), _) if d <= s => 1,
                (Some(_), Some(e)) if d >= e => 2,
                (Some(s), Some(e)) => {
                    if d.days_since(s) <= e.days_since(d) {
                        1
                    } else {
                        2
                    }
                }
                (Some(_), None) => 2,
                (None, _) => 1,
            }
        };
        for (mi, m) in f.measures.iter().enumerate() {
            let e = kept.entry((slot, m.measure)).or_insert((d, o, mi));
            // Nearest the programme: the latest before it, the earliest after.
            let better = if slot == 1 { d > e.0 } else { d < e.0 };
            if better {
                *e = (d, o, mi);
            }
        }
    }
    let mut dates: [Option<Date>; 2] = [None, None];
    let mut entries: Vec<_> = kept.into_iter().collect();
    entries.sort_by_key(|((slot, m), _)| (*slot, *m));
    for ((slot, measure), (d, o, mi)) in entries {
        let f = &facts.observations[o];
        let m = &f.measures[mi];
        let column = format!("a{slot}_{measure}");
        let origin = format!("{} {}", f.key, m.element);
        match &m.value {
            Ok(v) => cells.set(&column, v.text(), origin),
            Err(why) => cells.error(&column, &origin, "", why.to_string()),
        }
        let s = &mut dates[usize::from(slot - 1)];
        *s = Some(match *s {
            None => d,
            Some(x) if slot == 1 => x.max(d),
            Some(x) => x.min(d),
        });
    }
    for (i, name) in ["assessment1_date", "assessment2_date"].iter().enumerate() {
        if get(cells, name).is_none() {
            if let Some(d) = dates[i] {
                cells.set(name, d.to_string(), "the date of its Observations");
            }
        }
    }
}
