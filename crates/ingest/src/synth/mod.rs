//! `crest synth`: realistic, reproducible synthetic programmes and episodes calibrated to
//! calibration.md. No real patient data is ever used; NHS numbers come from the 9xx test
//! range with valid check digits.
//!
//! The generator has its own small PRNG (xoshiro256**) so the same seed gives the same bytes
//! on every platform and crate version. Dates later than `today` have not happened yet: such
//! episodes are still waiting or in progress.

mod measures;
use crest_core::expected::{Condition, Quarter};
use crest_core::{Col, Date, FIELDS};
use measures::measures;
use std::collections::BTreeMap;
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of programmes.
    pub programmes: usize,
    /// Number of episodes.
    pub episodes: usize,
    /// Random seed.
    pub seed: u64,
    /// Referral dates fall in this period.
    pub period: crest_core::Period,
    /// Nothing happens after this date.
    pub today: Date,
}

/// xoshiro256** seeded by SplitMix64.
pub struct Rng([u64; 4]);

impl Rng {
    /// A generator for a seed.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn unif(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [lo, hi].
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.unif() * (hi - lo + 1) as f64) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unif() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unif().max(1e-300);
        let u2 = self.unif();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Normal with mean and SD, clamped.
    pub fn clamped(&mut self, mean: f64, sd: f64, lo: f64, hi: f64) -> f64 {
        (mean + sd * self.normal()).clamp(lo, hi)
    }

    /// Picks by weight.
    pub fn pick<'a, T>(&mut self, items: &'a [(T, f64)]) -> &'a T {
        let total: f64 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.unif() * total;
        for (item, w) in items {
            if x < *w {
                return item;
            }
            x -= w;
        }
        &items[items.len() - 1].0
    }
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

struct Prog {
    code: String,
    nation: &'static str,
    region: &'static str,
    name: String,
    professions: Vec<&'static str>,
    offers: Vec<&'static str>,
    weight: f64,
    uptake: f64,
    wait: f64,
    duration: f64,
    a1: f64,
    a2: f64,
    walk_test_iswt: bool,
}

const REGIONS: &[(&str, &[&str])] = &[
    (
        "england",
        &[
            "South London",
            "North London",
            "North West",
            "North East",
            "Yorkshire and Humber",
            "East Midlands",
            "West Midlands",
            "East of England",
            "South West",
            "South East",
            "Thames Valley",
            "Cheshire and Merseyside",
        ],
    ),
    ("wales", &["North Wales", "South Wales", "West Wales"]),
    (
        "northern_ireland",
        &[
            "Belfast",
            "Northern",
            "Southern",
            "Western",
            "South Eastern",
        ],
    ),
];
const TOWNS: &[&str] = &[
    "Aldwick",
    "Barrowmere",
    "Calderbrook",
    "Dunmore",
    "Eastholme",
    "Fairleigh",
    "Glenford",
    "Hartwell",
    "Ivybridge Vale",
    "Kingsmead",
    "Langdale",
    "Millbrook",
    "Northcote",
    "Oakhurst",
    "Pendle Cross",
    "Queensway",
    "Redhill Park",
    "Stonebury",
    "Thornfield",
    "Upton Moor",
    "Westmere",
    "Yarrow",
];
const GIVEN_F: &[&str] = &[
    "Ada", "Beth", "Carys", "Dilys", "Enid", "Freya", "Gwen", "Hana", "Iris", "Joan", "Kiran",
    "Lena",
];
const GIVEN_M: &[&str] = &[
    "Arun", "Bryn", "Colin", "Dafydd", "Emeka", "Frank", "Gareth", "Harold", "Imran", "Jack",
    "Kofi", "Lloyd",
];
const FAMILY: &[&str] = &[
    "Testperson",
    "Synthwell",
    "Fakeham",
    "Madeupson",
    "Sampleton",
    "Notreal",
    "Dummer",
    "Placeholder",
    "Mockridge",
    "Examplee",
];
const OUTWARD: &[&str] = &[
    "SE1", "SW9", "N7", "M14", "LS6", "B15", "CF10", "LL57", "BT9", "BT47", "NE4", "BS3", "OX4",
    "CB2",
];

fn make_programmes(rng: &mut Rng, n: usize) -> Vec<Prog> {
    (0..n)
        .map(|i| {
            let nation = *rng.pick(&[
                ("england", 0.84),
                ("wales", 0.09),
                ("northern_ireland", 0.07),
            ]);
            let regions = REGIONS
                .iter()
                .find(|(n, _)| *n == nation)
                .map_or(&[][..], |(_, r)| *r);
            let region = regions[rng.int(0, regions.len() as i64 - 1) as usize];
            let q = rng.normal();
            let mut profs: Vec<&str> = vec!["nurse"];
            let extra = if q < -1.3 {
                rng.int(0, 1)
            } else {
                rng.int(2, 5)
            };
            // Every profession of the staffing return but the catch-all "other", nurse first.
            for p in crest_core::programme::PROFESSIONS
                .iter()
                .skip(1)
                .filter(|p| **p != "other")
            {
                if (profs.len() as i64) < extra + 1 && rng.chance(0.5) {
                    profs.push(p);
                }
            }
            for p in ["physiotherapist", "exercise_physiologist"] {
                if profs.len() < (extra + 1).min(3) as usize && !profs.contains(&p) {
                    profs.push(p);
                }
            }
            let no_return = rng.chance(0.03);
            let all = ["mi", "mi_pci", "pci", "cabg", "heart_failure"];
            let offers: Vec<&str> = if q > -0.9 || rng.chance(0.3) {
                all.to_vec()
            } else {
                let mut some = Vec::new();
                for g in all {
                    if (g != "heart_failure" || rng.chance(0.3)) && rng.chance(0.9) {
                        some.push(g);
                    }
                }
                some
            };
            let town = TOWNS[i % TOWNS.len()];
            Prog {
                code: format!("P{:03}", i + 1),
                nation,
                region,
                name: format!("{town} Cardiac Rehabilitation {}", i / TOWNS.len() + 1),
                professions: if no_return { vec![] } else { profs },
                offers: if rng.chance(0.02) { vec![] } else { offers },
                // Log-normal sizes (capped in `write`), none tiny.
                weight: (0.9 * rng.normal()).exp().max(0.07),
                uptake: 0.25 * q + 0.3 * rng.normal(),
                wait: 0.92 * (-0.16 * q + 0.16 * rng.normal()).exp(),
                duration: (0.12 * q + 0.08 * rng.normal()).exp(),
                a1: logistic(logit(0.845) + 0.65 * q + 0.6 * rng.normal()),
                a2: logistic(logit(0.55) + 0.85 * q + 0.3 * rng.normal()),
                walk_test_iswt: rng.chance(0.7),
            }
        })
        .collect()
}

/// Most referrals a programme receives in a year (calibration.md: sizes ~20–1,500).
pub const MOST_REFERRALS_A_YEAR: f64 = 1_400.0;

/// Each programme's expected referrals a year, from its log-normal `weights` scaled to
/// `per_year` referrals in all, none above [`MOST_REFERRALS_A_YEAR`]: a programme over the
/// limit is held at it and the rest shared among the others in proportion (water-filling), so
/// the limit holds however many episodes are asked for. When even that cannot hold (more than
/// the limit for every programme) every programme gets the same.
pub fn programme_sizes(weights: &[f64], per_year: f64) -> Vec<f64> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    if per_year >= MOST_REFERRALS_A_YEAR * n as f64 {
        return vec![per_year / n as f64; n];
    }
    let mut held = vec![false; n];
    loop {
        let capped = held.iter().filter(|h| **h).count() as f64;
        let left = per_year - capped * MOST_REFERRALS_A_YEAR;
        let free: f64 = weights
            .iter()
            .zip(&held)
            .filter(|(_, h)| !**h)
            .map(|(w, _)| w)
            .sum();
        let sizes: Vec<f64> = weights
            .iter()
            .zip(&held)
            .map(|(w, h)| {
                if *h {
                    MOST_REFERRALS_A_YEAR
                } else {
                    left * w / free
                }
            })
            .collect();
        let over: Vec<usize> = (0..n)
            .filter(|&i| !held[i] && sizes[i] > MOST_REFERRALS_A_YEAR)
            .collect();
        if over.is_empty() {
            return sizes;
        }
        over.into_iter().for_each(|i| held[i] = true);
    }
}

/// The nine first digits of the `i`th synthetic NHS number (9xx test range) and its check
/// digit; `None` for the ~1 in 11 that have no valid check digit.
fn nhs_number(i: u64) -> Option<String> {
    // A bijection on 0..10^8 spreads the numbers; the leading 9 keeps them in the test range.
    let body = (i.wrapping_mul(48_271).wrapping_add(12_345)) % 100_000_000;
    let first9 = format!("9{body:08}");
    let digits: Vec<u32> = first9.bytes().map(|b| u32::from(b - b'0')).collect();
    crest_core::checks::nhs_check_digit(&digits).map(|c| format!("{first9}{c}"))
}

/// One episode's cells, by column.
struct Row(Vec<String>);

impl Row {
    fn set(&mut self, c: Col, v: impl ToString) {
        self.0[c as usize] = v.to_string();
    }
}

fn d1(x: f64) -> String {
    format!("{:.1}", x)
}

/// Writes `programmes.csv`, `episodes.csv` and `expected.csv` (the eligible patients a count
/// of hospital episodes would give, per programme, quarter and condition) into `dir`; returns
/// a one-line summary.
pub fn write(dir: &Path, cfg: &Config) -> Result<String, crate::ImportError> {
    use crate::ImportError;
    if cfg.programmes == 0 {
        return Err(ImportError::File("--programmes must be at least 1".into()));
    }
    std::fs::create_dir_all(dir).map_err(ImportError::write(dir))?;
    let mut rng = Rng::new(cfg.seed);
    let progs = make_programmes(&mut rng, cfg.programmes);
    let io = ImportError::csv("cannot write synthetic data");
    let mut pw = csv::Writer::from_path(dir.join("programmes.csv")).map_err(io)?;
    pw.write_record(crest_core::programme::PROGRAMME_COLUMNS)
        .map_err(io)?;
    for p in &progs {
        pw.write_record([
            &p.code,
            &p.name,
            p.nation,
            p.region,
            &p.professions.join(";"),
            &p.offers.join(";"),
        ])
        .map_err(io)?;
    }
    let programmes_file = dir.join("programmes.csv");
    pw.flush().map_err(ImportError::write(&programmes_file))?;

    let episodes_file = dir.join("episodes.csv");
    let file = std::fs::File::create(&episodes_file).map_err(ImportError::write(&episodes_file))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    let cols: Vec<&crest_core::Field> = FIELDS.iter().filter(|f| f.imported()).collect();
    w.write_record(cols.iter().map(|f| f.name)).map_err(io)?;
    let span = cfg.period.to.days_since(cfg.period.from).max(0);
    let weights = programme_sizes(
        &progs.iter().map(|p| p.weight).collect::<Vec<_>>(),
        cfg.episodes as f64 * 365.25 / f64::from(span + 1).max(1.0),
    );
    let total_weight: f64 = weights.iter().sum();
    let mut cumulative = Vec::with_capacity(progs.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total_weight;
        cumulative.push(acc);
    }
    let mut counters = vec![0usize; progs.len()];
    let mut nhs_i: u64 = 0;
    let mut previous: Vec<Returning> = Vec::new();
    let mut row = Row(vec![String::new(); FIELDS.len()]);
    let mut referred: BTreeMap<(usize, Quarter, Condition), u32> = BTreeMap::new();
    for _ in 0..cfg.episodes {
        let x = rng.unif();
        let pi = cumulative.partition_point(|c| *c < x).min(progs.len() - 1);
        let p = &progs[pi];
        counters[pi] += 1;
        row.0.iter_mut().for_each(String::clear);
        episode(
            &mut rng,
            p,
            counters[pi],
            &mut nhs_i,
            &mut previous,
            cfg,
            span,
            &mut row,
        );
        w.write_record(cols.iter().map(|f| row.0[f.col as usize].as_str()))
            .map_err(io)?;
        if let Ok(d) = Date::parse_iso(&row.0[Col::ReferralDate as usize]) {
            let group = crest_core::PriorityGroup::of(
                &row.0[Col::InitiatingEvent as usize],
                &row.0[Col::Treatment as usize],
            );
            *referred
                .entry((pi, Quarter::of(d), Condition::of(group)))
                .or_default() += 1;
        }
    }
    w.flush().map_err(ImportError::write(&episodes_file))?;
    write_expected(&dir.join("expected.csv"), cfg, &progs, &referred)?;
    Ok(format!(
        "wrote {} programmes and {} episodes to {}",
        progs.len(),
        cfg.episodes,
        dir.display()
    ))
}

/// Writes the expected-patients file: for each programme, quarter and condition of the
/// period, the referrals divided by the programme's case ascertainment (drawn once per
/// programme, mostly 60–110%, every fourth programme under 80%) with a little noise per quarter. Its own random stream, so the
/// episodes are the same bytes as without it.
fn write_expected(
    path: &Path,
    cfg: &Config,
    progs: &[Prog],
    referred: &BTreeMap<(usize, Quarter, Condition), u32>,
) -> Result<(), crate::ImportError> {
    use crate::ImportError;
    let mut rng = Rng::new(cfg.seed ^ 0x00A5_CE27_A1ED);
    // Every fourth programme misses patients (60–75%), so any set of four or more has one
    // under the 80% flag; the others mostly 65–110%.
    let ascertainment: Vec<f64> = (0..progs.len())
        .map(|i| {
            if i % 4 == 3 {
                0.6 + 0.15 * rng.unif()
            } else {
                rng.clamped(0.9, 0.1, 0.65, 1.2)
            }
        })
        .collect();
    let io = ImportError::csv("cannot write synthetic expected patients");
    let mut w = csv::Writer::from_path(path).map_err(io)?;
    w.write_record(crest_core::expected::COLUMNS).map_err(io)?;
    let (first, last) = (Quarter::of(cfg.period.from), Quarter::of(cfg.period.to));
    for (pi, p) in progs.iter().enumerate() {
        let mut q = first;
        while q <= last {
            for c in Condition::ALL {
                let n = referred.get(&(pi, q, c)).copied().unwrap_or(0);
                let noise = rng.clamped(1.0, 0.06, 0.8, 1.2);
                let expected = (f64::from(n) / ascertainment[pi] * noise).round() as u32;
                w.write_record([
                    p.code.as_str(),
                    &q.to_string(),
                    c.code(),
                    &expected.to_string(),
                ])
                .map_err(io)?;
            }
            q = q.next();
        }
    }
    w.flush().map_err(ImportError::write(path))
}

/// A patient seen for the first time.
#[derive(Clone)]
struct Patient {
    nhs: String,
    dob: Date,
    female: bool,
    ethnicity: &'static str,
    given: &'static str,
    family: &'static str,
    local_id: String,
}

/// A patient who may come back with a new event, and the dates of their events so far.
struct Returning {
    patient: Patient,
    events: Vec<Date>,
}

fn new_patient_details(rng: &mut Rng, nhs: String, event: Date) -> Patient {
    let female = rng.chance(0.27);
    let ethnicity = *rng.pick(&[
        ("A", 0.80),
        ("B", 0.02),
        ("C", 0.05),
        ("D", 0.003),
        ("E", 0.002),
        ("F", 0.003),
        ("G", 0.002),
        ("H", 0.025),
        ("J", 0.02),
        ("K", 0.005),
        ("L", 0.01),
        ("M", 0.008),
        ("N", 0.01),
        ("P", 0.002),
        ("R", 0.004),
        ("S", 0.006),
        ("Z", 0.03),
        ("", 0.01),
    ]);
    let south_asian = matches!(ethnicity, "H" | "J" | "K");
    let age = rng.clamped(if south_asian { 59.0 } else { 65.0 }, 11.0, 18.0, 100.0) as i32;
    let dob = event.add_days(-(age * 365 + age / 4) - rng.int(1, 360) as i32);
    let given = if female { GIVEN_F } else { GIVEN_M };
    Patient {
        nhs,
        dob,
        female,
        ethnicity,
        given: given[rng.int(0, given.len() as i64 - 1) as usize],
        family: FAMILY[rng.int(0, FAMILY.len() as i64 - 1) as usize],
        local_id: format!("H{:07}", rng.int(0, 9_999_999)),
    }
}

#[allow(clippy::too_many_arguments)]
fn episode(
    rng: &mut Rng,
    p: &Prog,
    n: usize,
    nhs_i: &mut u64,
    previous: &mut Vec<Returning>,
    cfg: &Config,
    span: i32,
    r: &mut Row,
) {
    let today = cfg.today;
    let referral = cfg.period.from.add_days(rng.int(0, i64::from(span)) as i32);
    let event = referral.add_days(-(rng.int(0, 14) as i32));
    // About 2% are a returning patient with a new event: the same person, so the same NHS
    // number, date of birth, sex, ethnicity and name.
    let mut known: Option<Patient> = None;
    if previous.len() > 100 && rng.chance(0.02) {
        let i = rng.int(0, previous.len() as i64 - 1) as usize;
        let back = &mut previous[i];
        // A returning patient's new event is on a new date (else it would be a duplicate),
        // and after their birth.
        if !back.events.contains(&event) && back.patient.dob < event.add_days(-18 * 365) {
            back.events.push(event);
            known = Some(back.patient.clone());
        }
    }
    let new_patient = known.is_none();
    let patient = match known {
        Some(p) => p,
        None => {
            let nhs = loop {
                *nhs_i += 1;
                if let Some(n) = nhs_number(*nhs_i) {
                    break n;
                }
            };
            new_patient_details(rng, nhs, event)
        }
    };
    if new_patient && previous.len() < 50_000 {
        previous.push(Returning {
            patient: patient.clone(),
            events: vec![event],
        });
    }
    let Patient {
        nhs,
        dob,
        female,
        ethnicity,
        given,
        family,
        local_id,
    } = patient;
    let imd = *rng.pick(&[
        ("1", 0.2),
        ("2", 0.2),
        ("3", 0.195),
        ("4", 0.195),
        ("5", 0.19),
        ("", 0.02),
    ]);
    let group = *rng.pick(&[
        ("mi_pci", 0.33),
        ("pci", 0.20),
        ("mi", 0.12),
        ("cabg", 0.10),
        ("heart_failure", 0.10),
        ("other", 0.15),
    ]);
    let (ev, tr): (&str, &str) = match group {
        "mi_pci" => (*rng_pick_mi(rng), "pci"),
        "pci" => (
            if rng.chance(0.6) {
                "stable_angina"
            } else {
                "unstable_angina"
            },
            "pci",
        ),
        "mi" => (*rng_pick_mi(rng), "medical"),
        "cabg" => (
            *rng.pick(&[
                ("mi_nstemi", 0.4),
                ("stable_angina", 0.35),
                ("unstable_angina", 0.25),
            ]),
            "cabg",
        ),
        "heart_failure" => (
            "heart_failure",
            *rng.pick(&[("medical", 0.75), ("icd_crt", 0.2), ("pacemaker", 0.05)]),
        ),
        _ => *rng.pick(&[
            (("valve_disease", "valve_surgery"), 0.35),
            (("arrhythmia", "pacemaker"), 0.15),
            (("arrhythmia", "medical"), 0.1),
            (("stable_angina", "medical"), 0.2),
            (("cardiac_arrest", "icd_crt"), 0.1),
            (("congenital", "other_surgery"), 0.03),
            (("other", "medical"), 0.07),
        ]),
    };

    r.set(Col::ProgrammeCode, &p.code);
    r.set(Col::EpisodeId, format!("{}-{n:06}", p.code));
    r.set(Col::NhsNumber, &nhs);
    r.set(Col::LocalPatientId, &local_id);
    r.set(Col::GivenName, given);
    r.set(Col::FamilyName, family);
    r.set(Col::DateOfBirth, dob);
    if rng.chance(0.95) {
        let letters = b"ABDEFGHJLNPQRSTUWXYZ";
        let l = |rng: &mut Rng| letters[rng.int(0, letters.len() as i64 - 1) as usize] as char;
        let (a, b) = (l(rng), l(rng));
        r.set(
            Col::Postcode,
            format!(
                "{} {}{a}{b}",
                OUTWARD[rng.int(0, OUTWARD.len() as i64 - 1) as usize],
                rng.int(0, 9)
            ),
        );
    }
    r.set(Col::Sex, if female { "female" } else { "male" });
    r.set(Col::Ethnicity, ethnicity);
    r.set(Col::ImdQuintile, imd);
    r.set(Col::InitiatingEvent, ev);
    r.set(Col::Treatment, tr);
    r.set(Col::EventDate, event);
    if rng.chance(0.9) {
        r.set(
            Col::DischargeDate,
            event.add_days(rng.int(0, (referral.days_since(event) + 3).into()) as i32),
        );
    }
    r.set(Col::ReferralDate, referral);
    r.set(
        Col::ReferralSource,
        rng.pick(&[
            ("acute_trust", 0.85),
            ("gp", 0.08),
            ("community", 0.04),
            ("self", 0.01),
            ("private", 0.01),
            ("other", 0.01),
        ]),
    );
    let pathway = match (group, tr) {
        ("heart_failure", _) if rng.chance(0.6) => "heart_failure",
        (_, "icd_crt") => "icd",
        _ if rng.chance(0.03) => "community_outreach",
        _ => "standard",
    };
    r.set(Col::Pathway, pathway);
    let mut comorb = Vec::new();
    // Independent chances giving ~74% with at least one (calibration.md).
    for (c, pr) in [
        ("hypertension", 0.37),
        ("hypercholesterolaemia", 0.25),
        ("diabetes", 0.18),
        ("arthritis", 0.066),
        ("copd", 0.05),
        ("asthma", 0.042),
        ("anxiety", 0.05),
        ("depression", 0.058),
        ("stroke", 0.025),
        ("family_history", 0.10),
    ] {
        if rng.chance(pr) {
            comorb.push(c);
        }
    }
    r.set(Col::Comorbidities, comorb.join(";"));
    r.set(
        Col::NationalOptOut,
        if rng.chance(0.01) { "yes" } else { "" },
    );

    // Uptake: sex, deprivation, group and programme effects on the log-odds.
    let imd_eff = match imd {
        "1" => -0.30,
        "2" => -0.15,
        "4" => 0.12,
        "5" => 0.25,
        _ => 0.0,
    };
    let group_eff = match group {
        "cabg" => 0.45,
        "mi_pci" => 0.25,
        "pci" => 0.10,
        "mi" => -0.45,
        "heart_failure" => -0.55,
        _ => -0.2,
    };
    let lp = 0.10 + if female { -0.57 } else { 0.0 } + imd_eff + group_eff + p.uptake;
    let wants = rng.chance(logistic(lp));
    let wait_median = 35.0 * p.wait * if group == "cabg" { 1.3 } else { 1.0 };
    let start = referral.add_days(
        (wait_median * (0.6 * rng.normal()).exp())
            .round()
            .clamp(1.0, 365.0) as i32,
    );
    if !wants || start > today {
        let status = if start > today && wants {
            "referred"
        } else {
            *rng.pick(&[
                ("declined", 0.55),
                ("did_not_start", 0.38),
                ("died", 0.02),
                ("transferred", 0.05),
            ])
        };
        r.set(Col::Status, status);
        if matches!(status, "declined" | "did_not_start") {
            let reasons: &[(&str, f64)] = &[
                ("declined", 0.45),
                ("not_contactable", 0.2),
                ("clinical_unsuitable", 0.15),
                ("work_commitments", 0.1),
                ("transport", 0.07),
                ("other", 0.03),
            ];
            r.set(Col::NonStartReason, rng.pick(reasons));
        }
        return;
    }
    r.set(Col::CoreStartDate, start);
    r.set(
        Col::DeliveryMode,
        rng.pick(&[
            ("group_supervised", 0.78),
            ("home_based", 0.10),
            ("digital", 0.05),
            ("hybrid", 0.05),
            ("one_to_one", 0.02),
        ]),
    );
    let length = (64.0 * p.duration * (0.32 * rng.normal()).exp())
        .round()
        .clamp(14.0, 240.0) as i32;
    let outcome = *rng.pick(&[
        ("completed", 0.76),
        ("dropped_out", 0.2),
        ("died", 0.01),
        ("transferred", 0.03),
    ]);
    let end = match outcome {
        "dropped_out" => start.add_days((f64::from(length) * (0.2 + 0.6 * rng.unif())) as i32),
        _ => start.add_days(length),
    };
    let a1 = rng.chance(p.a1).then(|| {
        let a = start.add_days(-(rng.int(0, 14) as i32));
        if a < referral {
            referral
        } else {
            a
        }
    });
    if end > today {
        r.set(Col::Status, "in_progress");
    } else {
        r.set(Col::Status, outcome);
        if matches!(outcome, "completed" | "dropped_out") {
            r.set(Col::CoreEndDate, end);
        }
        if outcome == "dropped_out" {
            r.set(
                Col::DropoutReason,
                rng.pick(&[
                    ("lost_interest", 0.3),
                    ("illness", 0.3),
                    ("work_commitments", 0.15),
                    ("transport", 0.1),
                    ("moved", 0.05),
                    ("other", 0.1),
                ]),
            );
        }
    }
    let Some(a1) = a1 else { return };
    r.set(Col::Assessment1Date, a1);
    let m = measures(rng, female, p.walk_test_iswt);
    m.write(rng, r, 1);
    if r.0[Col::Status as usize] == "completed" && rng.chance(p.a2) {
        let late = rng.chance(0.06);
        let a2 = end.add_days(rng.int(0, 21) as i32 + if late { 90 } else { 0 });
        if a2 <= today {
            r.set(Col::Assessment2Date, a2);
            m.improved(rng).write(rng, r, 2);
        }
    }
}

fn rng_pick_mi(rng: &mut Rng) -> &'static &'static str {
    rng.pick(&[
        ("mi_stemi", 0.45),
        ("mi_nstemi", 0.5),
        ("mi_unspecified", 0.05),
    ])
}

/// Smoking at assessment 1 in twentieths: 45% never, 40% ex, 5% recent quitters, 10% current.
const SMOKING_MIX: [&str; 20] = [
    "never",
    "never",
    "never",
    "never",
    "never",
    "never",
    "never",
    "never",
    "never",
    "ex",
    "ex",
    "ex",
    "ex",
    "ex",
    "ex",
    "ex",
    "ex",
    "recent_quitter",
    "current",
    "current",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_valid_unique_and_in_the_test_range() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000 {
            if let Some(n) = nhs_number(i) {
                assert!(n.starts_with('9'));
                assert_eq!(
                    crest_core::checks::nhs_number(&n).as_deref(),
                    Ok(n.as_str())
                );
                assert!(seen.insert(n));
            }
        }
        assert!(seen.len() > 170_000);
    }

    #[test]
    fn rng_is_reproducible() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, {
            let mut r = Rng::new(8);
            (0..5).map(|_| r.next_u64()).collect::<Vec<_>>()
        });
    }
}
