//! Case ascertainment: how many of the patients who should have been referred were referred
//! (referred ÷ expected), and how many of them started (started ÷ expected, the uptake of
//! the eligible population), per programme, region and nation.
//!
//! - Expected counts are per area (a programme, or a region where counts are not split by
//!   programme), calendar quarter and condition ([`crest_core::expected`]). A period counts
//!   the quarters wholly inside it.
//! - Like is set against like: referrals count only in a quarter and condition that has an
//!   expected count, so a file that gives heart attacks alone is compared with heart attacks
//!   alone.
//! - A region's expected count for a quarter and condition is its own row where the file gives
//!   one, else the sum of its programmes' rows; the nation sums its regions.
//! - The ratio's 95% interval treats the referrals as a Poisson count against a fixed expected
//!   count (the exact, Garwood interval, as for a standardised ratio): ascertainment can exceed
//!   100% where patients come from outside the area.
//! - A programme is flagged under [`FLAG_BELOW`] (80%), SSNAP's rule of thumb.

use crate::disclosure::{self, Cell, Percentage};
use crate::funnel::chi_square_upper;
use crate::published::Met;
use crest_core::expected::{Area, Condition, Expected, Quarter};
use crest_core::{Date, KpiEpisode, Programme};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Ascertainment under this is flagged.
pub const FLAG_BELOW: f64 = 0.8;

/// Expected, referred and started, for one area (or one condition of it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Eligible patients a count of hospital episodes expects.
    pub expected: u64,
    /// Referred in the same quarters and conditions.
    pub referred: u64,
    /// Of them, started core CR.
    pub started: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.expected += o.expected;
        self.referred += o.referred;
        self.started += o.started;
    }

    /// Referred ÷ expected, with its interval; `None` when nothing is expected.
    pub fn ascertainment(&self) -> Option<Ratio> {
        ratio(self.referred, self.expected)
    }

    /// Started ÷ expected, with its interval; `None` when nothing is expected.
    pub fn uptake_of_eligible(&self) -> Option<Ratio> {
        ratio(self.started, self.expected)
    }

    /// Eligible patients not referred (none when referrals exceed the expected count).
    pub fn not_referred(&self) -> u64 {
        self.expected.saturating_sub(self.referred)
    }

    /// Whether ascertainment is under [`FLAG_BELOW`].
    pub fn flagged(&self) -> bool {
        self.ascertainment().is_some_and(|r| r.value < FLAG_BELOW)
    }
}

/// An observed count over an expected one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    /// observed ÷ expected.
    pub value: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// `observed ÷ expected` with its exact 95% Poisson interval: the limits are
/// χ²(0.025; 2O)/2 and χ²(0.975; 2O + 2)/2, over the expected count. `None` when nothing is
/// expected.
pub fn ratio(observed: u64, expected: u64) -> Option<Ratio> {
    if expected == 0 {
        return None;
    }
    let (o, e) = (observed as f64, expected as f64);
    let low = if observed == 0 {
        0.0
    } else {
        chi_square_quantile(0.975, 2.0 * o) / 2.0
    };
    let high = chi_square_quantile(0.025, 2.0 * o + 2.0) / 2.0;
    Some(Ratio {
        value: o / e,
        low: low / e,
        high: high / e,
    })
}

/// The x with P(χ²(df) ≥ x) = `upper`, by bisection on the tail (monotone in x).
fn chi_square_quantile(upper: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, df.max(1.0));
    while chi_square_upper(hi, df) > upper {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if chi_square_upper(mid, df) > upper {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi.max(1.0) {
            break;
        }
    }
    (lo + hi) / 2.0
}

/// One area's figures: in all and by condition.
#[derive(Clone, Debug, PartialEq)]
pub struct AreaFigures {
    /// The programme's code, the region's name, or "All programmes" for the nation.
    pub area: String,
    /// The programme's name, the region's name, or "All programmes".
    pub name: String,
    /// The region it is in (a region's own name; empty for the nation).
    pub region: String,
    /// Every condition together.
    pub all: Counts,
    /// By condition, in [`Condition::ALL`]'s order.
    pub by_condition: [Counts; 5],
    /// Whether expected counts cover every condition of every quarter of the period: only
    /// then do its referrals equal its whole cohort's, as published elsewhere.
    pub complete: bool,
}

impl AreaFigures {
    fn new(area: &str, name: &str, region: &str) -> AreaFigures {
        AreaFigures {
            area: area.to_string(),
            name: name.to_string(),
            region: region.to_string(),
            all: Counts::default(),
            by_condition: [Counts::default(); 5],
            complete: false,
        }
    }

    fn add(&mut self, c: Condition, counts: Counts) {
        self.all.add(counts);
        self.by_condition[c as usize].add(counts);
    }

    /// Whether any patient is expected.
    pub fn has_expected(&self) -> bool {
        self.all.expected > 0
    }
}

/// Ascertainment over a period.
#[derive(Clone, Debug, PartialEq)]
pub struct Ascertainment {
    /// The quarters counted (those wholly inside the period that have expected counts).
    pub quarters: Vec<Quarter>,
    /// Each programme given, in their order (zero expected where the file has none).
    pub programmes: Vec<AreaFigures>,
    /// Each region of the programmes, by name.
    pub regions: Vec<AreaFigures>,
    /// Every region together.
    pub nation: AreaFigures,
}

impl Ascertainment {
    /// Whether any expected count applies to the period.
    pub fn any(&self) -> bool {
        self.nation.has_expected()
    }

    /// The figures of a programme, by code.
    pub fn programme(&self, code: &str) -> Option<&AreaFigures> {
        self.programmes.iter().find(|p| p.area == code)
    }

    /// The figures of a region, by name.
    pub fn region(&self, name: &str) -> Option<&AreaFigures> {
        self.regions.iter().find(|r| r.area == name)
    }
}

/// Ascertainment from `from` to `to` for `programmes`, whose episodes (referred in the
/// period; `programme` indexes `programmes`) are `episodes`.
pub fn ascertainment(
    expected: &[Expected],
    programmes: &[Programme],
    episodes: &[KpiEpisode],
    from: Date,
    to: Date,
) -> Ascertainment {
    type Cell = (Quarter, Condition);
    let index: HashMap<&str, usize> = programmes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.code.as_str(), i))
        .collect();
    // Expected counts per programme and per region's own rows, by quarter and condition.
    let mut by_programme: Vec<BTreeMap<Cell, u64>> = vec![BTreeMap::new(); programmes.len()];
    let mut by_region: BTreeMap<&str, BTreeMap<Cell, u64>> = BTreeMap::new();
    let mut quarters = BTreeSet::new();
    for e in expected.iter().filter(|e| e.quarter.within(from, to)) {
        let cell = (e.quarter, e.condition);
        match &e.area {
            Area::Programme(code) => {
                if let Some(&i) = index.get(code.as_str()) {
                    *by_programme[i].entry(cell).or_default() += u64::from(e.count);
                    quarters.insert(e.quarter);
                }
            }
            Area::Region(name) => {
                if let Some(p) = programmes.iter().find(|p| p.region == *name) {
                    *by_region
                        .entry(p.region.as_str())
                        .or_default()
                        .entry(cell)
                        .or_default() += u64::from(e.count);
                    quarters.insert(e.quarter);
                }
            }
        }
    }
    // Referred and started per programme, quarter and condition.
    let mut seen: Vec<BTreeMap<Cell, (u64, u64)>> = vec![BTreeMap::new(); programmes.len()];
    for e in episodes {
        if e.referral_date < from || e.referral_date > to || e.programme >= programmes.len() {
            continue;
        }
        let q = Quarter::of(e.referral_date);
        if !quarters.contains(&q) {
            continue;
        }
        let n = seen[e.programme]
            .entry((q, Condition::of(e.group)))
            .or_default();
        n.0 += 1;
        n.1 += u64::from(e.core_start.is_some());
    }
    // Every cell of every quarter wholly inside the period.
    let needed: BTreeSet<Cell> = std::iter::successors(Some(Quarter::of(from)), |q| Some(q.next()))
        .take_while(|q| q.first_day() <= to)
        .filter(|q| q.within(from, to))
        .flat_map(|q| Condition::ALL.map(|c| (q, c)))
        .collect();
    let covers = |cells: &BTreeMap<Cell, u64>| {
        !needed.is_empty() && needed.iter().all(|c| cells.contains_key(c))
    };
    let counts = |expected: u64, (referred, started): (u64, u64)| Counts {
        expected,
        referred,
        started,
    };
    let programme_figures: Vec<AreaFigures> = programmes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut f = AreaFigures::new(&p.code, &p.name, &p.region);
            f.complete = covers(&by_programme[i]);
            for (&(q, c), &n) in &by_programme[i] {
                f.add(
                    c,
                    counts(n, seen[i].get(&(q, c)).copied().unwrap_or_default()),
                );
            }
            f
        })
        .collect();
    let mut regions: BTreeMap<&str, AreaFigures> = BTreeMap::new();
    for (i, p) in programmes.iter().enumerate() {
        let own = by_region.get(p.region.as_str());
        let region = regions.entry(p.region.as_str()).or_insert_with(|| {
            let mut r = AreaFigures::new(&p.region, &p.region, &p.region);
            r.complete = own.is_none_or(covers);
            r
        });
        if own.is_none() {
            region.complete &= covers(&by_programme[i]);
        }
        match own {
            // The region's own rows: every referral of its programmes in those cells.
            Some(own) => {
                for (&cell, &(r, s)) in &seen[i] {
                    if own.contains_key(&cell) {
                        region.add(cell.1, counts(0, (r, s)));
                    }
                }
            }
            None => {
                for (&(q, c), &n) in &by_programme[i] {
                    region.add(
                        c,
                        counts(n, seen[i].get(&(q, c)).copied().unwrap_or_default()),
                    );
                }
            }
        }
    }
    for (name, own) in &by_region {
        if let Some(region) = regions.get_mut(name) {
            for (&(_, c), &n) in own {
                region.add(c, counts(n, (0, 0)));
            }
        }
    }
    let mut nation = AreaFigures::new("All programmes", "All programmes", "");
    nation.complete = regions.values().all(|r| r.complete);
    for r in regions.values() {
        for c in Condition::ALL {
            nation.add(c, r.by_condition[c as usize]);
        }
    }
    Ascertainment {
        quarters: quarters.into_iter().collect(),
        programmes: programme_figures,
        regions: regions.into_values().collect(),
        nation,
    }
}

/// One area's figures as published (to commissioners, in the annual report): counts through
/// disclosure control, the ratios and their interval from the rounded counts, and the flag only
/// where the rounded counts decide it. An area whose expected counts do not cover the whole
/// period is not published at all, since its referrals would then be a part of its cohort that
/// can be set against the whole one.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// Eligible patients expected.
    pub expected: Cell,
    /// Referred.
    pub referred: Cell,
    /// Started.
    pub started: Cell,
    /// Referred ÷ expected, from the rounded counts.
    pub ascertainment: Percentage,
    /// Its 95% interval (per cent), from the rounded counts.
    pub interval: Option<(f64, f64)>,
    /// Started ÷ expected, from the rounded counts.
    pub uptake_of_eligible: Percentage,
    /// At least 80% (`yes`), under (`no`), or not decided by the rounded counts (`*`).
    pub at_least_80: Met,
}

impl AreaFigures {
    /// The figures as published; `None` when the expected counts do not cover the period.
    pub fn published(&self) -> Option<Published> {
        if !self.complete {
            return None;
        }
        let (expected, referred, started) = (
            disclosure::count(self.all.expected),
            disclosure::count(self.all.referred),
            disclosure::count(self.all.started),
        );
        let interval = match (referred, expected) {
            (Cell::Count(r), Cell::Count(e)) => {
                ratio(r, e).map(|x| (100.0 * x.low, 100.0 * x.high))
            }
            _ => None,
        };
        Some(Published {
            expected,
            referred,
            started,
            ascertainment: disclosure::percentage_of(referred, expected),
            interval,
            uptake_of_eligible: disclosure::percentage_of(started, expected),
            at_least_80: crate::published::decided_met(referred, expected, FLAG_BELOW),
        })
    }
}

/// The columns of [`rows`].
pub const COLUMNS: [&str; 13] = [
    "level",
    "area",
    "name",
    "region",
    "condition",
    "expected",
    "referred",
    "started",
    "ascertainment",
    "ascertainment_low",
    "ascertainment_high",
    "uptake_of_eligible",
    "flag",
];

/// Every figure as rows of [`COLUMNS`] (exact counts, for trusted users: analysts, a lead's own
/// programme): the nation, each region, each programme, each in all and by condition.
pub fn rows(a: &Ascertainment) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |level: &str, f: &AreaFigures| {
        let conditions = Condition::ALL
            .into_iter()
            .map(|c| (c.code(), f.by_condition[c as usize]));
        for (condition, n) in std::iter::once(("all", f.all)).chain(conditions) {
            if n.expected == 0 && condition != "all" {
                continue;
            }
            let r = n.ascertainment();
            let fixed = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
            out.push(vec![
                level.to_string(),
                f.area.clone(),
                f.name.clone(),
                f.region.clone(),
                condition.to_string(),
                n.expected.to_string(),
                n.referred.to_string(),
                n.started.to_string(),
                fixed(r.map(|r| r.value)),
                fixed(r.map(|r| r.low)),
                fixed(r.map(|r| r.high)),
                fixed(n.uptake_of_eligible().map(|r| r.value)),
                if n.flagged() { "under_80" } else { "" }.to_string(),
            ]);
        }
    };
    push("nation", &a.nation);
    a.regions.iter().for_each(|r| push("region", r));
    a.programmes
        .iter()
        .filter(|p| p.has_expected())
        .for_each(|p| push("programme", p));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crest_core::PriorityGroup;

    #[test]
    fn the_exact_poisson_interval_matches_scipy() {
        // scipy.stats.chi2.ppf(0.025, 2*o)/2 and chi2.ppf(0.975, 2*o+2)/2.
        let cases = [
            (0, 10, 0.0, 0.368_887_945_411_393_5),
            (1, 10, 0.002_531_780_798_428_988, 0.557_164_339_093_889_8),
            (8, 10, 0.345_383_217_674_850_14, 1.576_318_922_019_331_2),
            (150, 200, 0.634_780_806_506_224_4, 0.880_085_830_485_372_5),
        ];
        for (o, e, low, high) in cases {
            let r = ratio(o, e).unwrap();
            assert!(
                (r.low - low).abs() < 1e-9,
                "{o}/{e}: low {} not {low}",
                r.low
            );
            assert!(
                (r.high - high).abs() < 1e-9,
                "{o}/{e}: high {} not {high}",
                r.high
            );
        }
        assert_eq!(ratio(5, 0), None);
    }

    fn programme(code: &str, region: &str) -> Programme {
        Programme {
            code: code.into(),
            name: format!("{code} programme"),
            nation: crest_core::Nation::England,
            region: region.into(),
            professions: None,
            offers: None,
        }
    }

    fn episode(programme: usize, date: &str, group: PriorityGroup, started: bool) -> KpiEpisode {
        let referral_date = Date::parse_iso(date).unwrap();
        KpiEpisode {
            programme,
            referral_date,
            core_start: started.then_some(referral_date.add_days(20)),
            core_end: None,
            assessment1: None,
            assessment2: None,
            completed: false,
            group,
        }
    }

    fn expected(area: Area, quarter: &str, condition: Condition, count: u32) -> Expected {
        Expected {
            area,
            quarter: Quarter::parse(quarter).unwrap(),
            condition,
            count,
        }
    }

    #[test]
    fn by_hand() {
        let progs = [
            programme("P1", "North"),
            programme("P2", "North"),
            programme("P3", "South"),
        ];
        let d = |s| Date::parse_iso(s).unwrap();
        let p = |c: &str| Area::Programme(c.into());
        let files = [
            expected(p("P1"), "2024-Q2", Condition::Mi, 4),
            expected(p("P1"), "2024-Q3", Condition::Mi, 2),
            expected(p("P2"), "2024-Q2", Condition::Cabg, 10),
            // Outside the period (2024-Q1) and a programme not in the list: not counted.
            expected(p("P1"), "2024-Q1", Condition::Mi, 50),
            expected(p("P9"), "2024-Q2", Condition::Mi, 50),
            // South gives a region row instead.
            expected(Area::Region("South".into()), "2024-Q2", Condition::Mi, 5),
        ];
        let eps = [
            episode(0, "2024-04-10", PriorityGroup::MiPci, true),
            episode(0, "2024-05-10", PriorityGroup::Mi, false),
            episode(0, "2024-08-01", PriorityGroup::Mi, true),
            // No expected count for P1's heart failure: not counted.
            episode(0, "2024-05-10", PriorityGroup::HeartFailure, true),
            episode(1, "2024-06-30", PriorityGroup::Cabg, true),
            episode(2, "2024-04-01", PriorityGroup::Mi, true),
            episode(2, "2024-04-02", PriorityGroup::Mi, false),
            // Before the period.
            episode(0, "2024-03-31", PriorityGroup::Mi, true),
        ];
        let a = ascertainment(&files, &progs, &eps, d("2024-04-01"), d("2024-09-30"));
        assert_eq!(a.quarters.len(), 2);
        let c = |expected, referred, started| Counts {
            expected,
            referred,
            started,
        };
        assert_eq!(a.programmes[0].all, c(6, 3, 2));
        assert_eq!(
            a.programmes[0].by_condition[Condition::Mi as usize],
            c(6, 3, 2)
        );
        assert_eq!(a.programmes[1].all, c(10, 1, 1));
        assert_eq!(a.programmes[2].all, c(0, 0, 0));
        assert_eq!(a.region("North").unwrap().all, c(16, 4, 3));
        assert_eq!(a.region("South").unwrap().all, c(5, 2, 1));
        assert_eq!(a.nation.all, c(21, 6, 4));
        // 3/6 = 50% and 1/10 = 10%: both flagged; South has no programme rows to flag.
        let flagged: Vec<&str> = a
            .programmes
            .iter()
            .filter(|p| p.all.flagged())
            .map(|f| f.area.as_str())
            .collect();
        assert_eq!(flagged, ["P1", "P2"]);
        assert_eq!(a.programmes[0].all.not_referred(), 3);
        // No programme has rows for all five conditions of both quarters: none is published.
        assert!(a
            .programmes
            .iter()
            .all(|p| !p.complete && p.published().is_none()));
        let rows = rows(&a);
        assert_eq!(
            rows[0][..9],
            [
                "nation",
                "All programmes",
                "All programmes",
                "",
                "all",
                "21",
                "6",
                "4",
                "0.2857"
            ]
        );
        assert!(rows
            .iter()
            .any(|r| r[1] == "P2" && r[4] == "cabg" && r[12] == "under_80"));
    }

    #[test]
    fn published_figures_come_from_rounded_counts_and_cover_the_period() {
        let progs = [programme("P1", "North"), programme("P2", "North")];
        let d = |s| Date::parse_iso(s).unwrap();
        let mut files = Vec::new();
        for c in Condition::ALL {
            files.push(expected(Area::Programme("P1".into()), "2024-Q2", c, 30));
        }
        files.push(expected(
            Area::Programme("P2".into()),
            "2024-Q2",
            Condition::Mi,
            40,
        ));
        // 23 referred (published 25), 6 started (published *), of 150 expected.
        let mut eps: Vec<KpiEpisode> = (0..23)
            .map(|i| episode(0, "2024-05-01", PriorityGroup::Mi, i < 6))
            .collect();
        eps.push(episode(1, "2024-05-01", PriorityGroup::Mi, true));
        let a = ascertainment(&files, &progs, &eps, d("2024-04-01"), d("2024-06-30"));
        let p1 = a.programmes[0].published().expect("P1 covers the quarter");
        assert_eq!(
            (p1.expected, p1.referred, p1.started),
            (Cell::Count(150), Cell::Count(25), Cell::Suppressed)
        );
        assert_eq!(p1.ascertainment, Percentage::Value(100.0 * 25.0 / 150.0));
        assert_eq!(p1.uptake_of_eligible, Percentage::Suppressed);
        assert_eq!(p1.at_least_80, Met::No);
        let (lo, hi) = p1.interval.unwrap();
        let exact = ratio(25, 150).unwrap();
        assert!((lo - 100.0 * exact.low).abs() < 1e-9 && (hi - 100.0 * exact.high).abs() < 1e-9);
        // P2 gives heart attacks only: not published, nor is its region, nor the nation.
        assert_eq!(a.programmes[1].published(), None);
        assert_eq!(a.region("North").unwrap().published(), None);
        assert_eq!(a.nation.published(), None);
    }
}
