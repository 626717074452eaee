//! Assembling episodes from FHIR facts, one patient at a time.
//!
//! An initiating event (a Condition crest maps) starts an episode. Every other resource joins
//! an episode by its references (`reasonReference`, `diagnosis`, `referralRequest`,
//! `basedOn`, `episodeOfCare`, `encounter`) or, where it has none, by date: the episode whose
//! event is the latest on or before it. Each episode comes out as a row of dataset cells, so
//! it goes through exactly the checks, transaction and idempotence of a CSV row; every cell
//! remembers the resource and element it came from, so a problem names them.

use super::facts::{CareFact, Facts, FhirDate, PatientFact};
use super::mapping;
use crest_core::validate::Issue;
use crest_core::{Date, FIELDS};
use std::collections::VecDeque;

/// Hash maps keyed by the file's own keys, with the import's fast hash.
type HashMap<K, V> = std::collections::HashMap<K, V, super::facts::FastHash>;

/// Where a cell came from: a resource and its element (or words, where no one resource
/// gave it). Kept as the resource's shared key and a static element, and only written out
/// for a cell with a problem.
#[derive(Debug, Clone)]
pub struct Origin {
    key: Option<std::sync::Arc<str>>,
    element: std::borrow::Cow<'static, str>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match (&self.key, self.element.is_empty()) {
            (Some(k), true) => write!(f, "{k}"),
            (Some(k), false) => write!(f, "{k} {}", self.element),
            (None, _) => f.write_str(&self.element),
        }
    }
}

impl From<String> for Origin {
    fn from(s: String) -> Origin {
        Origin {
            key: None,
            element: s.into(),
        }
    }
}

impl From<&'static str> for Origin {
    fn from(s: &'static str) -> Origin {
        Origin {
            key: None,
            element: s.into(),
        }
    }
}

/// The origin `element` of the resource whose key is `key`.
fn at(key: &std::sync::Arc<str>, element: &'static str) -> Origin {
    Origin {
        key: Some(key.clone()),
        element: element.into(),
    }
}

/// One episode read from FHIR: its cells (in [`header`] order), where each came from, and the
/// problems found while assembling it.
#[derive(Debug, Default)]
pub struct Episode {
    /// Cells in [`header`] order.
    pub cells: Vec<String>,
    /// The resource and element each filled cell came from, by the cell's place in [`header`]
    /// (a later entry for a place replaces an earlier one). Only filled cells have one: most
    /// columns are empty, and an episode's origins are read only when a check finds a problem.
    pub origins: Vec<(usize, Origin)>,
    /// Problems that reject the episode.
    pub errors: Vec<Issue>,
    /// Problems worth a look.
    pub warnings: Vec<Issue>,
}

impl Episode {
    /// Where the cell at place `i` of [`header`] came from.
    pub fn origin(&self, i: usize) -> Option<&Origin> {
        self.origins
            .iter()
            .rev()
            .find(|(at, _)| *at == i)
            .map(|(_, o)| o)
    }
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
    static INDEX: std::sync::OnceLock<HashMap<&'static str, usize>> = std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| names().iter().enumerate().map(|(i, n)| (*n, i)).collect())
        .get(name)
        .copied()
}

/// The column of a measure at an assessment (`a1_weight_kg`), without building its name.
fn measure_column(slot: u8, measure: &str) -> &'static str {
    static COLUMNS: std::sync::OnceLock<HashMap<(u8, &'static str), &'static str>> =
        std::sync::OnceLock::new();
    COLUMNS
        .get_or_init(|| {
            let mut m = HashMap::default();
            for slot in [1u8, 2] {
                for measure in super::facts::MEASURES {
                    if let Some(f) =
                        crest_core::dataset::field_by_name(&format!("a{slot}_{measure}"))
                    {
                        m.insert((slot, measure), f.name);
                    }
                }
            }
            m
        })
        .get(&(slot, measure))
        .copied()
        .unwrap_or("")
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
    /// The facts and patients, until assembling starts (then the assembling thread has them).
    pending: Option<(Facts, Vec<Group>)>,
    /// Patients in all, and assembled so far (for progress).
    total: usize,
    next_group: usize,
    queue: VecDeque<Built>,
    /// Batches of assembled episodes from each assembling thread, taken in turn.
    batches: Vec<std::sync::mpsc::Receiver<(usize, Vec<Built>)>>,
    /// Batches taken so far.
    next_batch: usize,
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
        facts.resolve_all();
        let mut groups: Vec<Group> = Vec::with_capacity(facts.patients.len());
        let mut by_nhs: HashMap<String, usize> = HashMap::default();
        by_nhs.reserve(facts.patients.len());
        let mut by_key: HashMap<&str, usize> = HashMap::default();
        by_key.reserve(facts.patients.len());
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
            by_key.insert(&p.key, g);
        }
        let mut notes = Vec::new();
        let mut queue = VecDeque::new();
        let mut orphans: Vec<String> = Vec::new();
        let mut unlinked = 0usize;
        // Each reference's patient, found once (thousands of resources share a reference).
        let patient_of: Vec<Option<usize>> = super::cores::on_cores(facts.refs.len(), |s| {
            by_key
                .get(facts.key_of(s as u32))
                .or_else(|| by_key.get(facts.refs.get(s)))
                .copied()
        });
        let group_of = |subject: &Option<u32>| -> Result<usize, Option<String>> {
            let s = subject.ok_or(None)?;
            patient_of
                .get(s as usize)
                .copied()
                .flatten()
                .ok_or_else(|| Some(facts.key_of(s).to_string()))
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
            total: groups.len(),
            pending: Some((facts, groups)),
            next_group: 0,
            queue,
            batches: Vec::new(),
            next_batch: 0,
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
        self.next_group as f64 / self.total.max(1) as f64
    }

    /// The next episode (or failed one), or `None` at the end. Episodes are assembled on
    /// threads of their own (two, where there are two cores), a few batches of patients ahead
    /// of the caller (who checks and stores them meanwhile), and handed over in order; bounded
    /// channels keep memory flat.
    pub fn next_built(&mut self) -> Option<Built> {
        /// Patients a batch.
        const BATCH: usize = 256;
        loop {
            if let Some(b) = self.queue.pop_front() {
                return Some(b);
            }
            if let Some(pending) = self.pending.take() {
                let shared = std::sync::Arc::new(pending);
                let workers = std::thread::available_parallelism()
                    .map_or(1, |n| n.get())
                    .clamp(1, 2);
                let mut receivers = Vec::with_capacity(workers);
                for w in 0..workers {
                    let (send, receive) = std::sync::mpsc::sync_channel(2);
                    let shared = shared.clone();
                    let programme = self.default_programme.clone();
                    // Worker `w` assembles batches w, w + workers, …; the caller takes them
                    // from each worker in turn, so episodes come out in the files' order.
                    std::thread::spawn(move || {
                        let (facts, groups) = &*shared;
                        for chunk in groups.chunks(BATCH).skip(w).step_by(workers) {
                            let built: Vec<Built> = chunk
                                .iter()
                                .flat_map(|g| assemble(facts, g, programme.as_deref()))
                                .collect();
                            if send.send((chunk.len(), built)).is_err() {
                                return;
                            }
                        }
                    });
                    receivers.push(receive);
                }
                self.batches = receivers;
            }
            if self.batches.is_empty() {
                return None;
            }
            let turn = self.next_batch % self.batches.len();
            match self.batches[turn].recv() {
                Ok((n, built)) => {
                    self.next_batch += 1;
                    self.next_group += n;
                    self.queue.extend(built);
                }
                // An assembling thread stopped early (it can only have panicked): the
                // patients not yet assembled are said, never dropped quietly.
                Err(_) if self.next_group < self.total => {
                    let left = self.total - self.next_group;
                    self.next_group = self.total;
                    self.batches.clear();
                    return Some(Built::Failed(format!(
                        "the episodes of {left} patient(s) could not be assembled (an internal error in crest); they were not stored"
                    )));
                }
                Err(_) => {
                    self.batches.clear();
                    return None;
                }
            }
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
                origins: Vec::with_capacity(48),
                ..Default::default()
            },
        }
    }

    fn set(&mut self, field: &str, value: impl Into<String>, origin: impl Into<Origin>) {
        if let Some(i) = index(field) {
            self.ep.cells[i] = value.into();
            self.ep.origins.push((i, origin.into()));
        }
    }

    fn date(&mut self, field: &str, d: &Option<FhirDate>, origin: Origin) {
        match d {
            Some(Ok(d)) => self.set(field, d.to_string(), origin),
            Some(Err(why)) => self.error(field, &origin.to_string(), "", why.to_string()),
            None => {}
        }
    }

    /// A problem with a dataset field, said against the resource and element it concerns.
    fn error(&mut self, field: &str, origin: &str, value: &str, message: String) {
        if let Some(i) = index(field) {
            self.ep.origins.push((i, Origin::from(origin.to_string())));
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
    // A short, stable digest of an over-long resource id.
    format!("{prefix}-{:016x}", super::facts::digest(key))
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
    events.sort_by(|(a, x), (b, y)| {
        (x, &facts.conditions[*a].key).cmp(&(y, &facts.conditions[*b].key))
    });
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
    let mut episode_of: HashMap<&str, usize> = HashMap::default();
    for (i, (c, _)) in events.iter().enumerate() {
        episode_of.insert(&facts.conditions[*c].key, i);
    }
    let mut notes: Vec<Vec<(String, String)>> = vec![Vec::new(); n];
    // Links resolve to keys; a link to a resource not in the files is said, then dates decide.
    let linked = |links: &[u32],
                  known: &HashMap<&str, usize>,
                  who: &str,
                  notes: &mut Vec<Vec<(String, String)>>|
     -> Option<usize> {
        let mut missing = None;
        for l in links {
            let k = facts.key_of(*l);
            if let Some(e) = known.get(k) {
                return Some(*e);
            }
            if !facts.has(k) {
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
    // A ServiceRequest not linked to its condition is taken as the referral by its date only
    // if nothing says it is something else: uncoded, coded as crest's referral, or named by an
    // EpisodeOfCare. A coded one (a laboratory order, say) is never guessed to be the referral.
    let from_care: std::collections::HashSet<&str> = g
        .care
        .iter()
        .map(|c| &facts.care[*c])
        .filter(|c| !c.encounter)
        .flat_map(|c| c.links.iter().map(|l| facts.key_of(*l)))
        .collect();
    let mut other_orders = 0usize;
    for &r in &g.referrals {
        let f = &facts.referrals[r];
        let mut e = linked(&f.reasons, &episode_of, &f.key, &mut notes);
        if e.is_none() {
            if f.coded && !f.crest_coded && !from_care.contains(&*f.key) {
                other_orders += 1;
                continue;
            }
            e = match &f.authored {
                Some(Ok(d)) => by_date(*d),
                _ => None,
            };
        }
        if let Some(e) = e {
            episode_of.insert(&f.key, e);
            let earlier = referral[e]
                .is_some_and(|o| date_of(&facts.referrals[o].authored) <= date_of(&f.authored));
            if referral[e].is_some() {
                notes[e].push((
                    f.key.to_string(),
                    "a second referral for this episode; the earliest was used".into(),
                ));
            }
            if !earlier {
                referral[e] = Some(r);
            }
        }
    }
    if other_orders > 0 {
        loose.push(format!(
            "{other_orders} coded ServiceRequest(s) not linked to a Condition were not taken as the referral to cardiac rehabilitation (give the referral a reasonReference to its Condition to use it)"
        ));
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
            episode_of.insert(&f.key, e);
            if f.encounter {
                encounters[e].push(c);
            } else if care[e].is_some() {
                notes[e].push((
                    f.key.to_string(),
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
            .map(|s| facts.key_of(s))
            .and_then(|k| {
                g.patients
                    .iter()
                    .map(|p| &facts.patients[*p])
                    .find(|p| &*p.key == k)
            })
            .or_else(|| g.patients.first().map(|p| &facts.patients[*p]));
        if let Some(p) = patient {
            patient_cells(&mut cells, p);
        }
        cells.set(
            "initiating_event",
            cond.code.clone().unwrap_or_default(),
            at(&cond.key, "code"),
        );
        cells.set(
            "event_date",
            event.to_string(),
            at(&cond.key, cond.date_element),
        );
        // Treatment: the procedure that defines the pathway; none is medical treatment.
        let mut best: Option<(usize, &std::sync::Arc<str>, &str)> = None;
        for &p in &procedures[i] {
            let f = &facts.procedures[p];
            let code = f.code.as_deref().unwrap_or("");
            let rank = TREATMENT_ORDER
                .iter()
                .position(|t| *t == code)
                .unwrap_or(TREATMENT_ORDER.len());
            if let Some((r, other, _)) = best {
                let (kept, dropped) = if rank < r {
                    (&*f.key, &**other)
                } else {
                    (&**other, &*f.key)
                };
                cells.warn(dropped, "", format!("the episode has more than one treatment; crest records one, and took {kept}'s"));
            }
            if best.is_none_or(|(r, _, _)| rank < r) {
                best = Some((rank, &f.key, code));
            }
        }
        match best {
            Some((_, key, code)) => cells.set("treatment", code, at(key, "code")),
            None => cells.set("treatment", "medical", at(&cond.key, "(no Procedure)")),
        }
        match referral[i] {
            Some(r) => {
                let f = &facts.referrals[r];
                cells.date("referral_date", &f.authored, at(&f.key, "authoredOn"));
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
            (Some(p), _) => match eoc {
                Some(c) => cells.set("programme_code", p, at(&c.key, "managingOrganization")),
                None => cells.set("programme_code", p, "managingOrganization"),
            },
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
                Some(id) => (id.clone(), at(&c.key, "identifier")),
                None => (derived_id("eoc", &c.key), at(&c.key, "id")),
            },
            None => (derived_id("cond", &cond.key), at(&cond.key, "id")),
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
        Some(n) => cells.set("nhs_number", n.clone(), at(k, "identifier (NHS number)")),
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
        cells.set("date_of_birth", d.clone(), at(k, "birthDate"));
    }
    if let Some(s) = &p.gender {
        cells.set("sex", s.clone(), at(k, "gender"));
    }
    if let Some(s) = &p.postcode {
        cells.set("postcode", s.clone(), at(k, "address.postalCode"));
    }
    if let Some(s) = &p.family {
        cells.set("family_name", s.clone(), at(k, "name.family"));
    }
    if let Some(s) = &p.given {
        cells.set("given_name", s.clone(), at(k, "name.given"));
    }
    if let Some(s) = &p.local_id {
        cells.set("local_patient_id", s.clone(), at(k, "identifier (local)"));
    }
    match &p.ethnicity {
        Some(Ok(e)) => cells.set("ethnicity", e.clone(), at(k, "extension (ethnic category)")),
        Some(Err(coding)) => cells.warn(
            &format!("{k} extension (ethnic category)"),
            &coding.0,
            "this ethnic category is not an NHS Data Dictionary code crest knows; recorded as not known".into(),
        ),
        None => {}
    }
}

/// Status, core dates and crest's own fields from the episode of care (or its encounters).
fn care_cells(cells: &mut Cells, eoc: Option<&CareFact>, encounters: &[&CareFact]) {
    let own = |f: &str| eoc.and_then(|c| c.fields.get(f).map(str::to_string));
    let start = eoc
        .and_then(|c| date_of(&c.start))
        .or_else(|| encounters.iter().filter_map(|e| date_of(&e.start)).min());
    let status = match (own("status"), eoc) {
        (Some(s), Some(c)) => Some((s, at(&c.key, "extension (status)"))),
        (None, Some(c)) => c.status.as_deref().map(|s| {
            let code = match s {
                "planned" | "waitlist" => "referred",
                "active" | "onhold" => "in_progress",
                "finished" => "completed",
                "cancelled" if start.is_some() => "dropped_out",
                "cancelled" => "did_not_start",
                other => other,
            };
            (code.to_string(), at(&c.key, "status"))
        }),
        (_, None) if !encounters.is_empty() => Some((
            "in_progress".to_string(),
            at(&encounters[0].key, "(rehabilitation encounters)"),
        )),
        _ => None,
    };
    match status {
        Some((s, origin)) => cells.set("status", s, origin),
        None => cells.set("status", "referred", "no EpisodeOfCare: waiting to start"),
    }
    if let Some(c) = eoc {
        cells.date("core_start_date", &c.start, at(&c.key, "period.start"));
        cells.date("core_end_date", &c.end, at(&c.key, "period.end"));
        for (field, value) in c.fields.iter() {
            if field != "status" {
                cells.set(field, value, at(&c.key, "extension"));
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
        let origin = encounters
            .iter()
            .find(|e| date_of(&e.start) == Some(s))
            .map_or(Origin::from("period.start"), |e| at(&e.key, "period.start"));
        cells.set("core_start_date", s.to_string(), origin);
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
    let mut kept: HashMap<(u8, &str), (Date, usize, usize)> = HashMap::default();
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
        let column = measure_column(slot, measure);
        let origin = at(&f.key, m.element);
        match &m.value {
            Ok(v) => cells.set(column, v.text(), origin),
            Err(why) => cells.error(column, &origin.to_string(), "", why.to_string()),
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
