//! The disclosure auditor (privacy.md, "No inference across cells, tables or queries"): given
//! everything published about some exact counts (each count's published cell, and the linear
//! relations between the counts: a total is the sum of its parts, a numerator is at most its
//! denominator), it finds by integer programming the least and the greatest exact value every
//! suppressed count can have, and whether a hidden standard (a proportion against its
//! threshold) is decided. The standard it enforces: no suppressed count narrowed to one value,
//! no hidden flag decided. After τ-ARGUS's audit of secondary suppression (Hundepool et al.,
//! *Statistical Disclosure Control*, 2012, ch. 4).
//!
//! The solver is `microlp` (pure Rust, branch and bound): a bound it cannot prove optimal is
//! reported as unproven, never taken as safe.

use crate::disclosure::{Cell, SMALLEST_PUBLISHED};
use microlp::{ComparisonOp, OptimizationDirection, Problem, SolveOutcome};

/// What is published of one count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shown {
    /// Its exact value (a count published as it is, such as a staffing figure).
    Exact(u64),
    /// A published cell: 0, `*` (1–7) or a count rounded to the nearest 5.
    Published(Cell),
    /// Not published at all (withheld to protect another cell): any count.
    Withheld,
    /// A helper unknown of the model between two bounds (never reported).
    Between(u64, u64),
}

/// The most a withheld count is taken to be: far above any programme's or nation's year.
const ANY: u64 = 10_000_000;

impl Shown {
    /// The exact values it may stand for.
    pub fn range(self) -> (u64, u64) {
        match self {
            Shown::Exact(v) | Shown::Published(Cell::Count(v @ 0)) => (v, v),
            Shown::Published(Cell::Suppressed) => (1, SMALLEST_PUBLISHED - 1),
            Shown::Published(Cell::Count(v)) => {
                (v.saturating_sub(2).max(SMALLEST_PUBLISHED), v + 2)
            }
            Shown::Withheld => (0, ANY),
            Shown::Between(lo, hi) => (lo, hi),
        }
    }
}

/// A relation between counts: `Σ coefficient × count` equals, or is at most, zero.
#[derive(Clone, Debug)]
struct Relation {
    terms: Vec<(usize, f64)>,
    op: ComparisonOp,
    rhs: f64,
}

/// What the auditor found about one suppressed count.
#[derive(Clone, Debug, PartialEq)]
pub struct Range {
    /// The count's name.
    pub name: String,
    /// The least exact value everything published allows.
    pub least: u64,
    /// The greatest.
    pub greatest: u64,
    /// Whether both bounds were proven.
    pub proven: bool,
}

impl Range {
    /// Whether the count is narrowed to one value (or could not be shown not to be).
    pub fn pinned(&self) -> bool {
        self.least == self.greatest || !self.proven
    }
}

/// A set of counts, what is published of each, and the relations between them.
#[derive(Clone, Debug, Default)]
pub struct Audit {
    counts: Vec<(String, Shown)>,
    relations: Vec<Relation>,
}

impl Audit {
    /// An empty audit.
    pub fn new() -> Audit {
        Audit::default()
    }

    /// Adds a count and what is published of it; returns its index.
    pub fn count(&mut self, name: impl Into<String>, shown: Shown) -> usize {
        self.counts.push((name.into(), shown));
        self.counts.len() - 1
    }

    /// How many published counts it holds (not withheld ones, nor the model's helpers).
    pub fn published(&self) -> usize {
        self.counts
            .iter()
            .filter(|(_, s)| matches!(s, Shown::Exact(_) | Shown::Published(_)))
            .count()
    }

    /// How many counts it holds.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether it holds no counts.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// `total` is the sum of `parts`.
    pub fn sum(&mut self, total: usize, parts: &[usize]) {
        let mut terms = vec![(total, 1.0)];
        terms.extend(parts.iter().map(|&p| (p, -1.0)));
        self.relations.push(Relation {
            terms,
            op: ComparisonOp::Eq,
            rhs: 0.0,
        });
    }

    /// Count `i` lies between `least` and `greatest` (what something else published says).
    pub fn between(&mut self, i: usize, least: u64, greatest: u64) {
        self.relations.push(Relation {
            terms: vec![(i, 1.0)],
            op: ComparisonOp::Ge,
            rhs: least as f64,
        });
        self.relations.push(Relation {
            terms: vec![(i, 1.0)],
            op: ComparisonOp::Le,
            rhs: greatest as f64,
        });
    }

    /// `Σ coefficient × count` is at most `value` (what a published ratio says, say).
    pub fn at_most_value(&mut self, terms: &[(usize, f64)], value: f64) {
        self.relations.push(Relation {
            terms: terms.to_vec(),
            op: ComparisonOp::Le,
            rhs: value,
        });
    }

    /// `Σ coefficient × count` is at least `value`.
    pub fn at_least_value(&mut self, terms: &[(usize, f64)], value: f64) {
        self.relations.push(Relation {
            terms: terms.to_vec(),
            op: ComparisonOp::Ge,
            rhs: value,
        });
    }

    /// `part` is at most `whole` (a numerator and its denominator).
    pub fn at_most(&mut self, part: usize, whole: usize) {
        self.relations.push(Relation {
            terms: vec![(part, 1.0), (whole, -1.0)],
            op: ComparisonOp::Le,
            rhs: 0.0,
        });
    }

    /// The counts `vars` together take one of `options` (each option a value per count): what
    /// a published level says of the exact counts behind it, once every pair the level rules
    /// out is removed. Encoded with one 0/1 unknown per option.
    pub fn one_of(&mut self, vars: &[usize], options: &[Vec<u64>]) {
        let picks: Vec<usize> = options
            .iter()
            .enumerate()
            .map(|(i, _)| self.count(format!("option {i}"), Shown::Between(0, 1)))
            .collect();
        self.relations.push(Relation {
            terms: picks.iter().map(|&z| (z, 1.0)).collect(),
            op: ComparisonOp::Eq,
            rhs: 1.0,
        });
        for (i, &v) in vars.iter().enumerate() {
            let mut terms = vec![(v, 1.0)];
            terms.extend(
                picks
                    .iter()
                    .zip(options)
                    .map(|(&z, o)| (z, -(o.get(i).copied().unwrap_or(0) as f64))),
            );
            self.relations.push(Relation {
                terms,
                op: ComparisonOp::Eq,
                rhs: 0.0,
            });
        }
    }

    /// Whether some set of exact counts consistent with what is published also meets every
    /// one of `standards` as asked (`(numerator, denominator, threshold, met)`): `None` when
    /// the solver could not tell.
    pub fn possible(&self, standards: &[(usize, usize, f64, bool)]) -> Option<bool> {
        let mut p = Problem::new(OptimizationDirection::Minimize);
        let vars = self.variables(&mut p, &[]);
        for &(k, n, t, met) in standards {
            let terms = [(vars[k], 1.0), (vars[n], -t)];
            if met {
                p.add_constraint(&terms[..], ComparisonOp::Ge, 0.0);
            } else {
                // Not met: k − t·n < 0, held a hair below 0 (counts are whole numbers).
                p.add_constraint(&terms[..], ComparisonOp::Le, -1e-6);
            }
        }
        match p.solve() {
            Ok(SolveOutcome::Solution(_)) => Some(true),
            Err(microlp::Error::Infeasible) => Some(false),
            _ => None,
        }
    }

    /// Adds every count (with `objective`'s coefficients) and relation to `p`.
    fn variables(&self, p: &mut Problem, objective: &[(usize, f64)]) -> Vec<microlp::Variable> {
        let vars: Vec<microlp::Variable> = self
            .counts
            .iter()
            .enumerate()
            .map(|(i, (_, shown))| {
                let (lo, hi) = shown.range();
                let coeff = objective
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, c)| *c)
                    .sum();
                p.add_integer_var(
                    coeff,
                    (
                        i32::try_from(lo).unwrap_or(i32::MAX),
                        i32::try_from(hi).unwrap_or(i32::MAX),
                    ),
                )
            })
            .collect();
        for r in &self.relations {
            let terms: Vec<(microlp::Variable, f64)> =
                r.terms.iter().map(|&(i, c)| (vars[i], c)).collect();
            p.add_constraint(&terms[..], r.op, r.rhs);
        }
        vars
    }

    /// The least (or greatest) of `Σ coefficient × count` over every set of exact counts
    /// consistent with what is published; `None` with a flag when not proven.
    fn bound(&self, objective: &[(usize, f64)], direction: OptimizationDirection) -> (f64, bool) {
        let mut p = Problem::new(direction);
        self.variables(&mut p, objective);
        match p.solve() {
            Ok(SolveOutcome::Solution(s)) => (
                s.objective(),
                s.status() == microlp::SolutionStatus::Optimal,
            ),
            _ => (f64::NAN, false),
        }
    }

    /// The range of every suppressed count.
    pub fn ranges(&self) -> Vec<Range> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| *s == Shown::Published(Cell::Suppressed))
            .map(|(i, (name, _))| {
                let (lo, lo_ok) = self.bound(&[(i, 1.0)], OptimizationDirection::Minimize);
                let (hi, hi_ok) = self.bound(&[(i, 1.0)], OptimizationDirection::Maximize);
                let ok = lo_ok && hi_ok && lo.is_finite() && hi.is_finite();
                Range {
                    name: name.clone(),
                    least: if ok { lo.round() as u64 } else { 0 },
                    greatest: if ok { hi.round() as u64 } else { 0 },
                    proven: ok,
                }
            })
            .collect()
    }

    /// Every suppressed count narrowed to one value (or not shown to be safe).
    pub fn pinned(&self) -> Vec<Range> {
        self.ranges().into_iter().filter(Range::pinned).collect()
    }

    /// Whether `numerator / denominator ≥ threshold` is decided by what is published:
    /// `Some(true)` when it holds for every consistent set of counts, `Some(false)` when it
    /// holds for none, `None` when it is open.
    pub fn decided(&self, numerator: usize, denominator: usize, threshold: f64) -> Option<bool> {
        // k − t·n is linear: its least at or above 0 means always met; its greatest below 0,
        // never.
        let objective = [(numerator, 1.0), (denominator, -threshold)];
        let (lo, lo_ok) = self.bound(&objective, OptimizationDirection::Minimize);
        if lo_ok && lo >= -1e-9 {
            return Some(true);
        }
        let (hi, hi_ok) = self.bound(&objective, OptimizationDirection::Maximize);
        if hi_ok && hi < -1e-9 {
            return Some(false);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disclosure::count;

    fn published(n: u64) -> Shown {
        Shown::Published(count(n))
    }

    #[test]
    fn one_hidden_cell_beside_an_exact_total_is_pinned_beside_a_rounded_one_it_is_not() {
        let mut a = Audit::new();
        let parts = [a.count("a", published(20)), a.count("b", published(3))];
        let total = a.count("total", Shown::Exact(24));
        a.sum(total, &parts);
        let pinned = a.pinned();
        // a is 18–22, so b = 24 − a is 2–6: not one value.
        assert!(pinned.is_empty(), "{pinned:?}");
        let mut a = Audit::new();
        let parts = [a.count("a", Shown::Exact(20)), a.count("b", published(3))];
        let total = a.count("total", Shown::Exact(23));
        a.sum(total, &parts);
        assert_eq!(a.pinned()[0].least, 3);
        // The same with the total rounded (25: 23–27): b is 3–7.
        let mut a = Audit::new();
        let parts = [a.count("a", Shown::Exact(20)), a.count("b", published(3))];
        let total = a.count("total", published(23));
        a.sum(total, &parts);
        let r = &a.ranges()[0];
        assert_eq!((r.least, r.greatest, r.pinned()), (3, 7, false));
    }

    #[test]
    fn two_hidden_cells_in_a_row_and_a_column_of_a_table_with_exact_margins() {
        // | x  y | 10        x, w hidden; y = 10 − x ≥ 8 means x ≤ 2.
        // | w  z | 12        with column totals 9 and 13.
        let mut a = Audit::new();
        let x = a.count("x", published(2));
        let y = a.count("y", Shown::Exact(8));
        let w = a.count("w", published(7));
        let z = a.count("z", Shown::Exact(5));
        let (r1, r2) = (
            a.count("r1", Shown::Exact(10)),
            a.count("r2", Shown::Exact(12)),
        );
        let (c1, c2) = (
            a.count("c1", Shown::Exact(9)),
            a.count("c2", Shown::Exact(13)),
        );
        a.sum(r1, &[x, y]);
        a.sum(r2, &[w, z]);
        a.sum(c1, &[x, w]);
        a.sum(c2, &[y, z]);
        let pinned: Vec<String> = a.pinned().into_iter().map(|r| r.name).collect();
        assert_eq!(pinned, ["x", "w"]);
    }

    #[test]
    fn a_hidden_numerator_is_capped_by_its_denominator_and_a_flag_by_the_cap() {
        let mut a = Audit::new();
        let k = a.count("assessed", published(3));
        let n = a.count("completed", published(15));
        a.at_most(k, n);
        // At most 7 of at least 13: 53.8%, below a 60% standard whatever the hidden count.
        assert_eq!(a.decided(k, n, 0.6), Some(false));
        // A 30% standard is left open (1/17 to 7/13).
        assert_eq!(a.decided(k, n, 0.3), None);
        let r = &a.ranges()[0];
        assert_eq!((r.least, r.greatest), (1, 7));
        // Beside an exact denominator of 1, the hidden numerator can only be 1.
        let mut a = Audit::new();
        let k = a.count("assessed", published(1));
        let n = a.count("completed", Shown::Exact(1));
        a.at_most(k, n);
        assert_eq!(a.pinned()[0].least, 1);
    }

    #[test]
    fn a_level_that_allows_only_some_pairs_narrows_a_hidden_count_through_a_total() {
        // Region = a + b, a rounded to 40 (38–42), b hidden, region rounded to 45 (43–47):
        // b is 1 to 7. Once a level says a's exact value is 38 (the only pair left), b is
        // 5 to 7; once it says 42, b is 1 to 5; once 41 with a region of 40, b is pinned at 1.
        let build = |a_options: &[u64], region: u64| {
            let mut au = Audit::new();
            let a = au.count("a", published(40));
            let b = au.count("b", published(3));
            let r = au.count("region", published(region));
            au.sum(r, &[a, b]);
            let options: Vec<Vec<u64>> = a_options.iter().map(|&v| vec![v]).collect();
            au.one_of(&[a], &options);
            au
        };
        let r = &build(&[38], 45).ranges()[0];
        assert_eq!((r.least, r.greatest), (5, 7));
        let r = &build(&[38, 39, 40, 41, 42], 45).ranges()[0];
        assert_eq!((r.least, r.greatest), (1, 7));
        let au = build(&[41], 40);
        assert_eq!(au.pinned().len(), 1);
        assert_eq!(au.pinned()[0].least, 1);
        // The helpers of one_of are not published counts.
        assert_eq!(au.published(), 3);
    }

    #[test]
    fn a_withheld_total_protects_what_its_published_value_gave_away() {
        let mut a = Audit::new();
        let x = a.count("x", Shown::Exact(41));
        let y = a.count("y", published(1));
        let t = a.count("total", published(42));
        a.sum(t, &[x, y]);
        assert_eq!(a.pinned().len(), 1, "40 − 41 + 2 leaves only 1");
        let mut a = Audit::new();
        let x = a.count("x", Shown::Exact(41));
        let y = a.count("y", published(1));
        let t = a.count("total", Shown::Withheld);
        a.sum(t, &[x, y]);
        let r = &a.ranges()[0];
        assert_eq!((r.least, r.greatest), (1, 7));
    }

    #[test]
    fn standards_are_possible_alone_but_not_together() {
        // k1/n ≥ 0.6 and k2/n ≥ 0.6 are each possible, but k1 + k2 = n rules out both.
        let mut a = Audit::new();
        let k1 = a.count("k1", published(3));
        let k2 = a.count("k2", published(4));
        let n = a.count("n", published(3));
        a.sum(n, &[k1, k2]);
        assert_eq!(a.possible(&[(k1, n, 0.6, true)]), Some(true));
        assert_eq!(a.possible(&[(k2, n, 0.6, true)]), Some(true));
        assert_eq!(
            a.possible(&[(k1, n, 0.6, true), (k2, n, 0.6, true)]),
            Some(false)
        );
        // Both not met is possible (k1 = k2 = n / 2 at 0.6).
        assert_eq!(
            a.possible(&[(k1, n, 0.6, false), (k2, n, 0.6, false)]),
            Some(true)
        );
    }
}
