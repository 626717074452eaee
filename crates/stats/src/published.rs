//! Published outputs (privacy.md, "Published outputs"): what a programme's KPIs, grade and
//! funnel positions look like once they leave the trusted users.
//!
//! - A KPI based on 1–7 patients is too few to assess: its value is `*`.
//! - A met flag says only what the published counts already decide. A proportion's counts are
//!   published rounded (or `*`), so each stands for a range of exact counts (`*`: 1–7; 10:
//!   8–12); the flag is `yes` or `no` where every proportion in those ranges falls on the same
//!   side of the threshold, and `*` where they straddle it. So a flag never contradicts the
//!   value shown beside it (9/12 shown as 10/10 = 100% cannot read "no"), and a hidden flag can
//!   never be worked out from the counts (3 of 15 for a threshold of 60% is published "no":
//!   the counts say so anyway).
//! - `kpis_met` counts the flags published `yes`; a grade is published only where it is the
//!   same whatever the hidden flags are.
//! - Funnel levels come from the exact data, pooled over every programme, so a published level
//!   never differs from the analysts' own; a row whose counts are suppressed is published with
//!   the level `too_few`, since a level beside hidden counts pins them.

use crate::disclosure::{self, Cell};
use crate::funnel::{self, Direction, Position};
use crate::kpis::{grade, Kpi, KpiReport, Measure, ProgrammeKpis};

/// A published met flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Met {
    /// The standard is met.
    Yes,
    /// The standard is not met.
    No,
    /// Too few to assess (based on 1–7 patients): published as `*`.
    TooFew,
}

impl Met {
    /// `yes`, `no` or `*`, as in `programmes.csv`.
    pub fn code(self) -> &'static str {
        match self {
            Met::Yes => "yes",
            Met::No => "no",
            Met::TooFew => "*",
        }
    }
}

/// One KPI as published.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedKpi {
    /// The KPI key of kpis.md.
    pub key: &'static str,
    /// The published value: a percentage from rounded counts, a median, a profile count, `*`
    /// (too few) or `–` (no data).
    pub value: String,
    /// Whether it is met, or `*`.
    pub met: Met,
}

/// Whether a KPI rests on 1–7 patients: its `n`, numerator or denominator.
fn too_few(k: &Kpi) -> bool {
    let small = |n: u64| (1..=7).contains(&n);
    match &k.measure {
        Measure::Proportion(p) => small(p.numerator) || small(p.denominator),
        Measure::Median(s) => small(s.n as u64),
        // KPIs 1–2 count the programme's staff and groups offered, not patients.
        Measure::Count(_) => false,
    }
}

/// The exact counts a published count may stand for: 0 is 0, `*` is 1–7, a rounded count v
/// is v − 2 to v + 2 (and at least 8, the smallest count published).
pub fn possible(c: Cell) -> (u64, u64) {
    match c {
        Cell::Count(0) => (0, 0),
        Cell::Suppressed => (1, disclosure::SMALLEST_PUBLISHED - 1),
        Cell::Count(v) => (
            v.saturating_sub(2).max(disclosure::SMALLEST_PUBLISHED),
            v + 2,
        ),
    }
}

/// The met flag a proportion's published counts decide against `threshold` (met when the
/// proportion is at least the threshold): `yes` or `no` when every exact proportion they may
/// stand for (numerator no more than denominator) is on one side, `*` when they straddle it.
pub fn decided_met(numerator: Cell, denominator: Cell, threshold: f64) -> Met {
    let (k_lo, k_hi) = possible(numerator);
    let (n_lo, n_hi) = possible(denominator);
    if n_hi == 0 {
        return Met::TooFew;
    }
    // The lowest proportion: fewest in the numerator over most in the denominator; the
    // highest: most over fewest, where the numerator cannot exceed the denominator.
    let lowest = k_lo as f64 / n_hi as f64;
    let highest = if k_hi >= n_lo.max(1) {
        1.0
    } else {
        k_hi as f64 / n_lo.max(1) as f64
    };
    if lowest >= threshold {
        Met::Yes
    } else if highest < threshold {
        Met::No
    } else {
        Met::TooFew
    }
}

/// A KPI as published.
pub fn kpi(k: &Kpi) -> PublishedKpi {
    let value = if too_few(k) {
        "*".to_string()
    } else {
        match &k.measure {
            Measure::Proportion(p) => {
                disclosure::percentage(p.numerator, p.denominator).to_string()
            }
            Measure::Median(s) => disclosure::statistic(s.median, s.n as u64).to_string(),
            Measure::Count(c) => c.map_or("–".into(), |c| c.to_string()),
        }
    };
    let exact = if k.met { Met::Yes } else { Met::No };
    let met = match (&k.measure, k.threshold) {
        // A proportion's flag is what its published counts decide.
        (Measure::Proportion(p), Some(t)) if p.denominator > 0 => decided_met(
            disclosure::count(p.numerator),
            disclosure::count(p.denominator),
            t,
        ),
        // A median of 1–7 people is hidden, and nothing published bounds it.
        _ if too_few(k) => Met::TooFew,
        _ => exact,
    };
    PublishedKpi {
        key: k.key,
        value,
        met,
    }
}

/// A programme's KPIs and grade as published.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedProgramme {
    /// Programme code.
    pub programme_code: String,
    /// Its KPIs in spec order.
    pub kpis: Vec<PublishedKpi>,
    /// Assessable KPIs met.
    pub kpis_met: usize,
    /// KPIs that were assessable (not too few).
    pub kpis_assessable: usize,
    /// `green`, `amber`, `red`, `withheld` (it depends on a suppressed KPI), or `no data`
    /// (nobody referred in the period).
    pub grade: &'static str,
}

impl PublishedProgramme {
    /// The published KPI of this key.
    pub fn kpi(&self, key: &str) -> Option<&PublishedKpi> {
        self.kpis.iter().find(|k| k.key == key)
    }
}

/// A programme's row as published.
pub fn programme(p: &ProgrammeKpis) -> PublishedProgramme {
    let kpis: Vec<PublishedKpi> = p.results.kpis.iter().map(kpi).collect();
    let met = kpis.iter().filter(|k| k.met == Met::Yes).count();
    let hidden = kpis.iter().filter(|k| k.met == Met::TooFew).count();
    // The grade stands only if every outcome of the hidden KPIs that the published counts
    // allow gives the same one (they are published, so a reader can work it out anyway).
    let grades = possible_grades(p, &kpis, met, hidden);
    let grade = if p.results.referred == 0 {
        "no data"
    } else if grades.len() == 1 {
        grades.into_iter().next().unwrap_or("withheld")
    } else {
        "withheld"
    };
    PublishedProgramme {
        programme_code: p.programme_code.clone(),
        kpis_assessable: kpis.len() - hidden,
        kpis_met: met,
        kpis,
        grade,
    }
}

/// Every grade the published counts of `p` allow: the hidden standards of assessment 1 and
/// 2 taken together over every set of exact counts their cells may stand for (a started count
/// is the denominator of one and bounds the other), any other hidden standard either way.
fn possible_grades(
    p: &ProgrammeKpis,
    kpis: &[PublishedKpi],
    met: usize,
    hidden: usize,
) -> std::collections::BTreeSet<&'static str> {
    let (worst, best) = (grade(met), grade(met + hidden));
    let mut out = std::collections::BTreeSet::from([worst, best]);
    if worst == best {
        return out;
    }
    let threshold = |key: &str| {
        let shown = kpis.iter().find(|k| k.key == key)?;
        let exact = p.results.kpis.iter().find(|k| k.key == key)?;
        match (&exact.measure, exact.threshold) {
            (Measure::Proportion(x), Some(t)) if x.denominator > 0 && shown.met == Met::TooFew => {
                Some(t)
            }
            _ => None,
        }
    };
    let (t1, t2) = (threshold("assessment1"), threshold("assessment2"));
    let counted = usize::from(t1.is_some()) + usize::from(t2.is_some());
    if counted == 0 {
        return out;
    }
    let free = hidden - counted;
    let range = |v: u64| possible(disclosure::count(v));
    let referred = range(p.results.referred);
    let (a1, started) = {
        let (k, n) = p.proportion("assessment1");
        (range(k), range(n))
    };
    let (a2, a2_of) = {
        let (k, n) = p.proportion("assessment2");
        (range(k), range(n))
    };
    out.clear();
    let is_met =
        |k: u64, n: u64, t: Option<f64>| t.is_some_and(|t| n > 0 && k as f64 >= t * n as f64);
    // Patients assessed twice were assessed once: assessment 2's denominator is at most
    // assessment 1's numerator. At most 7 values each (a count of 1 to 7): a few thousand sets.
    for s in started.0..=started.1.min(referred.1) {
        for k1 in a1.0..=a1.1.min(s) {
            for n2 in a2_of.0..=a2_of.1.min(k1) {
                for k2 in a2.0..=a2.1.min(n2) {
                    let m = met + usize::from(is_met(k1, s, t1)) + usize::from(is_met(k2, n2, t2));
                    for extra in 0..=free {
                        out.insert(grade(m + extra));
                    }
                }
            }
        }
    }
    if out.is_empty() {
        // No counts fit (cannot happen for counts from one programme): claim nothing.
        out.extend([worst, best]);
    }
    out
}

/// The published level of a funnel row whose counts are suppressed.
pub const TOO_FEW: &str = "too_few";

/// A funnel position, named as in `funnels.csv`.
pub fn level(position: Position) -> &'static str {
    match position {
        Position::Within => "within",
        Position::Alert(Direction::Low) => "alert_low",
        Position::Alert(Direction::High) => "alert_high",
        Position::Alarm(Direction::Low) => "alarm_low",
        Position::Alarm(Direction::High) => "alarm_high",
    }
}

/// One programme's point on a published funnel plot.
#[derive(Clone, Debug, PartialEq)]
pub struct FunnelRow {
    /// Programme code.
    pub programme_code: String,
    /// The published numerator.
    pub numerator: Cell,
    /// The published denominator.
    pub denominator: Cell,
    /// The position from the exact counts.
    pub position: Position,
    /// Whether the level may be published beside the counts (see [`funnel`]).
    pub level_shown: bool,
}

impl FunnelRow {
    /// The level as published: `too_few` where a count is suppressed (a level beside hidden
    /// counts would pin them), otherwise the level from the exact counts.
    pub fn published_level(&self) -> &'static str {
        match (self.numerator, self.denominator) {
            (Cell::Suppressed, _) | (_, Cell::Suppressed) => TOO_FEW,
            _ if !self.level_shown => TOO_FEW,
            _ => level(self.position),
        }
    }

    /// The position a published chart may use: a row whose counts are suppressed is neither
    /// drawn nor counted among the programmes outside the limits, so it counts as within.
    pub fn published_position(&self) -> Position {
        if self.published_level() == TOO_FEW {
            Position::Within
        } else {
            self.position
        }
    }

    /// Where the point can be drawn: its published counts, when neither is suppressed and its
    /// level may be shown (a point's colour is its level).
    pub fn drawn(&self) -> Option<(u64, u64)> {
        match (self.numerator, self.denominator) {
            (Cell::Count(k), Cell::Count(n)) if n > 0 && self.level_shown => Some((k, n)),
            _ => None,
        }
    }
}

/// A published funnel plot: the pooled proportion over every programme (exact) and a row per
/// programme with a non-empty denominator.
#[derive(Clone, Debug, PartialEq)]
pub struct Funnel {
    /// The pooled proportion (kpis.md) over all programmes, `None` without data.
    pub pooled: Option<f64>,
    /// The funnel fitted with the chosen overdispersion method, `None` without data.
    pub fit: Option<funnel::Fit>,
    /// Programmes with a non-empty denominator, in code order.
    pub rows: Vec<FunnelRow>,
}

/// The published funnel of a proportion KPI (`uptake`, `completion`, `assessment1`,
/// `assessment2`) across every programme of `report`, with limits by `method`.
pub fn funnel(report: &KpiReport, key: &str, method: funnel::Method) -> Funnel {
    let exact: Vec<(&ProgrammeKpis, (u64, u64))> = report
        .programmes
        .iter()
        .map(|p| (p, p.proportion(key)))
        .collect();
    let points: Vec<(u64, u64)> = exact.iter().map(|e| e.1).collect();
    let pooled = funnel::pooled(&points);
    let fit = funnel::Fit::new(&points, method);
    let rows = exact
        .into_iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(p, (k, n))| {
            let position = fit
                .and_then(|f| f.position(k, n))
                .unwrap_or(Position::Within);
            let (numerator, denominator) = (disclosure::count(k), disclosure::count(n));
            FunnelRow {
                programme_code: p.programme_code.clone(),
                numerator,
                denominator,
                position,
                level_shown: !has_hidden(p)
                    || fit.is_none_or(|f| level_says_nothing(&f, numerator, denominator, position)),
            }
        })
        .collect();
    Funnel { pooled, fit, rows }
}

/// Whether a programme has a count of 1 to 7 among those its funnels and standards use, or a
/// standard hidden as too few to assess that its counts bear on.
fn has_hidden(p: &ProgrammeKpis) -> bool {
    let small = |v: u64| disclosure::count(v) == Cell::Suppressed;
    let counts = ["uptake", "completion", "assessment1", "assessment2"]
        .iter()
        .any(|key| {
            let (k, n) = p.proportion(key);
            small(k) || small(n)
        });
    counts
        || p.results.kpis.iter().any(|k| {
            matches!(&k.measure, Measure::Proportion(x) if x.denominator > 0)
                && kpi(k).met == Met::TooFew
        })
}

/// Whether a level says nothing the published counts do not: every pair of exact counts they
/// may stand for sits at that level. Beside a programme's hidden results only such a level is
/// published (privacy.md: a level may not narrow the counts behind a hidden result; the annual
/// report's audit found `*` of a started count narrowed by its uptake level decide a hidden
/// standard).
fn level_says_nothing(
    fit: &funnel::Fit,
    numerator: Cell,
    denominator: Cell,
    position: Position,
) -> bool {
    let (klo, khi) = possible(numerator);
    let (nlo, nhi) = possible(denominator);
    (nlo..=nhi)
        .all(|n| (klo..=khi.min(n)).all(|k| fit.position(k, n).unwrap_or(position) == position))
}

/// A programme outside a proportion KPI's funnel limits, as the outliers page and the annual
/// report name it (exact counts, pooled over every programme).
#[derive(Clone, Debug, PartialEq)]
pub struct Outlier {
    /// Programme code.
    pub programme_code: String,
    /// The funnel KPI (`uptake`, `completion`, `assessment1`, `assessment2`).
    pub kpi: &'static str,
    /// Alert (outside 95%) or alarm (outside 99.8%), low or high.
    pub position: Position,
    /// Exact numerator.
    pub numerator: u64,
    /// Exact denominator.
    pub denominator: u64,
    /// The pooled proportion.
    pub pooled: f64,
    /// The limits' method in force for this KPI's funnel (the default resolved).
    pub method: funnel::Method,
}

/// Every programme outside the 95% limits of each of `kpis`' funnels, by `method`.
pub fn outliers(report: &KpiReport, kpis: &[&'static str], method: funnel::Method) -> Vec<Outlier> {
    let mut found = Vec::new();
    for &kpi in kpis {
        let f = funnel(report, kpi, method);
        let (Some(pooled), Some(fit)) = (f.pooled, f.fit) else {
            continue;
        };
        let exact = report
            .programmes
            .iter()
            .map(|p| p.proportion(kpi))
            .filter(|(_, n)| *n > 0);
        for (row, (k, n)) in f.rows.iter().zip(exact) {
            if row.position != Position::Within {
                found.push(Outlier {
                    programme_code: row.programme_code.clone(),
                    kpi,
                    position: row.position,
                    numerator: k,
                    denominator: n,
                    pooled,
                    method: fit.method,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpis::{Proportion, Results};
    use crate::summary::Summary;
    use crest_core::Nation;

    fn proportion(key: &'static str, k: u64, n: u64, met: bool) -> Kpi {
        Kpi {
            key,
            measure: Measure::Proportion(Proportion {
                numerator: k,
                denominator: n,
            }),
            threshold: Some(0.8),
            met,
        }
    }

    fn median(key: &'static str, n: usize, m: f64, met: bool) -> Kpi {
        Kpi {
            key,
            measure: Measure::Median(Summary {
                n,
                median: Some(m),
                q1: None,
                q3: None,
            }),
            threshold: Some(46.0),
            met,
        }
    }

    fn count(key: &'static str, c: usize, met: bool) -> Kpi {
        Kpi {
            key,
            measure: Measure::Count(Some(c)),
            threshold: Some(3.0),
            met,
        }
    }

    fn row(kpis: Vec<Kpi>, referred: u64) -> ProgrammeKpis {
        let met = kpis.iter().filter(|k| k.met).count();
        ProgrammeKpis {
            programme_code: "P001".into(),
            nation: Nation::England,
            results: Results {
                referred,
                started: referred,
                uptake: Proportion {
                    numerator: referred,
                    denominator: referred,
                },
                completion: Proportion::default(),
                kpis,
            },
            kpis_met: met,
            grade: grade(met),
        }
    }

    /// The reviewer's case: CABG wait on 1 patient and assessment 2 on 1–7 both met, four of
    /// the five visible met. Exact: 6 met, amber. Published: 4 of 5 assessable met; the grade
    /// would be amber whether the two hidden ones were met or not (4 to 6), so amber stands.
    #[test]
    fn hidden_kpis_are_not_counted_and_the_grade_stands_only_if_it_cannot_change() {
        let p = row(
            vec![
                count("mdt", 4, true),
                count("priority_groups", 5, true),
                median("duration", 40, 60.0, true),
                proportion("assessment1", 20, 40, false),
                median("wait_cabg", 1, 20.0, true),
                median("wait_mi_pci", 25, 30.0, true),
                proportion("assessment2", 3, 5, true),
            ],
            50,
        );
        let out = programme(&p);
        assert_eq!((out.kpis_met, out.kpis_assessable), (4, 5));
        assert_eq!(out.kpis[4].value, "*");
        assert_eq!(out.kpis[4].met, Met::TooFew);
        assert_eq!(out.kpis[6].met, Met::TooFew);
        assert_eq!(out.kpis[3].value, "50.0%", "20/40 from rounded 20/40");
        assert_eq!(
            out.kpis[3].met,
            Met::No,
            "18–22 of 38–42 is below 80% whatever"
        );
        assert_eq!(out.grade, "amber");

        // Five visible met and two hidden: 5 (amber) to 7 (green): withheld.
        let mut q = p.clone();
        q.results.kpis[3] = proportion("assessment1", 40, 40, true);
        let out = programme(&q);
        assert_eq!((out.kpis_met, out.kpis_assessable), (5, 5));
        assert_eq!(out.grade, "withheld");

        // Two visible met, two hidden: red (2) or amber (4): withheld. One hidden only with
        // two met: red either way (2 or 3).
        let mut r = p.clone();
        for i in [0, 1, 2] {
            r.results.kpis[i].met = false;
        }
        r.results.kpis[5].met = true;
        let out = programme(&r);
        assert_eq!(out.kpis_met, 1);
        assert_eq!(out.grade, "red", "1 + 2 hidden = at most 3: red either way");
        // Nobody referred: no grade at all.
        assert_eq!(
            programme(&row(vec![count("mdt", 4, true)], 0)).grade,
            "no data"
        );
    }

    /// The audit's case (programme P124 of 230 small ones): three standards met, a hidden
    /// median and assessments 1 (20 of 25) and 2 (15 of 20) each too close to tell once
    /// rounded. Each could be met or not, but not both missed: 13 or more with assessment 2
    /// below 60% needs 22 completed with assessment 1, so 22 with assessment 1, which is 80%
    /// of 27.5 or more started, and at most 27 started. So 4 to 6 are met: amber, published.
    #[test]
    fn a_grade_the_hidden_results_decide_together_is_published() {
        let mut a1 = proportion("assessment1", 20, 25, true);
        a1.threshold = Some(0.8);
        let mut a2 = proportion("assessment2", 15, 20, true);
        a2.threshold = Some(0.6);
        let p = row(
            vec![
                count("mdt", 4, true),
                count("priority_groups", 5, false),
                median("duration", 40, 60.0, true),
                a1,
                median("wait_cabg", 1, 20.0, true),
                median("wait_mi_pci", 25, 30.0, true),
                a2,
            ],
            30,
        );
        let out = programme(&p);
        assert_eq!(out.kpis[3].met, Met::TooFew);
        assert_eq!(out.kpis[6].met, Met::TooFew);
        assert_eq!(out.kpis_met, 3);
        assert_eq!(out.grade, "amber");
        // With 11 of 20 for assessment 2 (shown 10: 8 to 12) both can be missed, so red is
        // open beside amber: withheld.
        let mut q = p.clone();
        q.results.kpis[6] = proportion("assessment2", 11, 20, false);
        q.results.kpis[6].threshold = Some(0.6);
        let out = programme(&q);
        assert_eq!(out.kpis[6].met, Met::TooFew);
        assert_eq!(out.grade, "withheld");
    }

    #[test]
    fn a_proportion_on_a_small_numerator_is_too_few_even_with_a_large_denominator() {
        // 2 of 14: published `*` of 15, which stands for at most 7 of 13, below 80% whatever
        // the hidden count: the flag says what the counts already say.
        let k = kpi(&proportion("assessment2", 2, 14, false));
        assert_eq!((k.value.as_str(), k.met), ("*", Met::No));
        // 5 of 6: both hidden, anything from 1/7 to 100%: the flag is hidden too.
        let k = kpi(&proportion("assessment2", 5, 6, true));
        assert_eq!((k.value.as_str(), k.met), ("*", Met::TooFew));
        let k = kpi(&proportion("assessment2", 0, 14, false));
        assert_eq!((k.value.as_str(), k.met), ("0.0%", Met::No));
        let k = kpi(&median("duration", 8, 56.0, true));
        assert_eq!((k.value.as_str(), k.met), ("56", Met::Yes));
    }

    /// The reviewer's cases, worked by hand.
    #[test]
    fn a_met_flag_is_published_only_where_the_published_counts_decide_it() {
        use crate::disclosure::count;
        // 9/12 is published 10/10 = 100%: 8–12 of 8–12 straddles 80%, so not "no".
        assert_eq!(decided_met(count(9), count(12), 0.8), Met::TooFew);
        // `*` of 15 for 60%: at most 7 of 13 = 53.8%.
        assert_eq!(decided_met(count(3), count(15), 0.6), Met::No);
        // 0 of `*`: exactly 0%.
        assert_eq!(decided_met(count(0), count(5), 0.8), Met::No);
        // Both hidden: anything.
        assert_eq!(decided_met(count(3), count(5), 0.5), Met::TooFew);
        // 200 of 210: at least 198/212 = 93.4%.
        assert_eq!(decided_met(count(200), count(210), 0.8), Met::Yes);
        assert_eq!(possible(count(12)), (8, 12));
        assert_eq!(possible(count(13)), (13, 17));
        assert_eq!(possible(count(4)), (1, 7));
    }

    /// Every flag published is the one every exact count behind the published cells gives,
    /// so it is right, never contradicts the value shown, and a hidden one cannot be decided
    /// from the counts.
    #[test]
    fn no_published_flag_is_contradicted_by_any_counts_the_cells_may_stand_for() {
        use crate::disclosure::{count, percentage, Percentage};
        let mut hidden = 0;
        for t in [0.5, 0.6, 0.68, 0.8, 0.88] {
            for n in 1..=80u64 {
                for k in 0..=n {
                    let exact = Kpi {
                        threshold: Some(t),
                        ..proportion("assessment1", k, n, k as f64 / n as f64 >= t)
                    };
                    let met = kpi(&exact).met;
                    let (klo, khi) = possible(count(k));
                    let (nlo, nhi) = possible(count(n));
                    let mut sides = std::collections::BTreeSet::new();
                    for kk in klo..=khi {
                        for nn in nlo.max(kk).max(1)..=nhi {
                            sides.insert(kk as f64 / nn as f64 >= t);
                        }
                    }
                    match met {
                        Met::Yes => assert_eq!(sides, [true].into(), "{k}/{n} at {t}"),
                        Met::No => assert_eq!(sides, [false].into(), "{k}/{n} at {t}"),
                        Met::TooFew => {
                            hidden += 1;
                            assert_eq!(sides.len(), 2, "{k}/{n} at {t}: hidden but decided");
                        }
                    }
                    if let (Percentage::Value(v), Met::Yes | Met::No) = (percentage(k, n), met) {
                        assert_eq!(v / 100.0 >= t, met == Met::Yes, "{k}/{n} at {t}: {v}%");
                    }
                }
            }
        }
        assert!(hidden > 0);
    }

    /// The reviewer's P002: 8 completed of 9 started is within the limits around the exact
    /// pooled proportion, though its rounded counts (10/10) would look like an alarm; P012's
    /// 2/14 is an alarm low although it cannot be drawn.
    #[test]
    fn funnel_levels_come_from_exact_counts_pooled_over_every_programme() {
        let mut programmes = Vec::new();
        for (code, k, n) in [
            ("P001", 400, 500),
            ("P002", 8, 9),
            ("P012", 2, 14),
            ("P013", 0, 0),
        ] {
            let mut p = row(vec![], n);
            p.programme_code = code.into();
            p.results.completion = Proportion {
                numerator: k,
                denominator: n,
            };
            programmes.push(p);
        }
        let report = KpiReport {
            period: crate::kpis::Period {
                from: crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
                to: crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
            },
            programmes,
            national: row(vec![], 0).results,
        };
        let f = funnel(&report, "completion", funnel::Method::Plain);
        let p0 = 410.0 / 523.0;
        assert!((f.pooled.unwrap() - p0).abs() < 1e-12);
        assert_eq!(f.rows.len(), 3, "P013 has no denominator");
        let by = |c: &str| f.rows.iter().find(|r| r.programme_code == c).unwrap();
        assert_eq!(level(by("P002").position), "within");
        assert_eq!(by("P002").drawn(), Some((10, 10)));
        assert_eq!(level(by("P012").position), "alarm_low");
        assert_eq!(by("P012").drawn(), None);
        assert_eq!(by("P012").numerator, Cell::Suppressed);
        // Published, the alarm beside hidden counts would pin them (2 of 14 is the only way
        // below the limit with `*` of 15): too few, for analysts' eyes only.
        assert_eq!(by("P012").published_level(), TOO_FEW);
        assert_eq!(by("P002").published_level(), "within");
        let out = outliers(&report, &["completion"], funnel::Method::Plain);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (
                out[0].programme_code.as_str(),
                out[0].numerator,
                out[0].denominator
            ),
            ("P012", 2, 14)
        );
    }
}
