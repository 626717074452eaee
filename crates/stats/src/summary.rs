//! Medians, quartiles and Wilson score intervals exactly as kpis.md defines them.

/// z for a two-sided 95% interval, as fixed by the spec.
pub const Z95: f64 = 1.959964;

/// Median: the middle value, or the mean of the two middle values for an even count.
/// `None` for no values. Reorders `values`.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    let (left, mid, _) = values.select_nth_unstable_by(n / 2, cmp);
    let upper = *mid;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = left.iter().copied().max_by(cmp).unwrap_or(upper);
    Some((lower + upper) / 2.0)
}

/// Quantile `p` (0–1) of sorted values by linear interpolation between order statistics
/// (R's `quantile` type 7, NumPy's default). `None` for no values.
pub fn quantile(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// Wilson score interval for `k` successes out of `n` at normal quantile `z`; `None` when n = 0.
pub fn wilson(k: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Median and quartiles of a set of values.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Median (`None` when empty).
    pub median: Option<f64>,
    /// First quartile.
    pub q1: Option<f64>,
    /// Third quartile.
    pub q3: Option<f64>,
}

impl Summary {
    /// Summarises the values (sorts them).
    pub fn of(values: &mut [f64]) -> Summary {
        values.sort_unstable_by(f64::total_cmp);
        Summary {
            n: values.len(),
            median: quantile(values, 0.5),
            q1: quantile(values, 0.25),
            q3: quantile(values, 0.75),
        }
    }
}

/// Whole numbers of days (waits, durations) as counts per value: the exact order statistics of
/// millions of values in a few kilobytes, merged by adding counts and summarised without
/// sorting. The KPIs' medians over ten years of a national store were most of `crest kpis`'s time
/// and memory as sorted lists of every value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayCounts {
    /// The value `counts[0]` counts.
    first: i32,
    counts: Vec<u64>,
    n: usize,
}

impl DayCounts {
    /// Counts one value.
    pub fn add(&mut self, days: i32) {
        let i = self.cover(days);
        self.counts[i] += 1;
        self.n += 1;
    }

    /// Adds another's counts to these.
    pub fn merge(&mut self, other: &DayCounts) {
        let Some(last) = other.counts.len().checked_sub(1) else {
            return;
        };
        self.cover(other.first + last as i32);
        let offset = self.cover(other.first);
        for (i, c) in other.counts.iter().enumerate() {
            self.counts[offset + i] += c;
        }
        self.n += other.n;
    }

    /// Makes room to count `days`; its place in `counts`.
    fn cover(&mut self, days: i32) -> usize {
        if self.counts.is_empty() {
            self.first = days;
        } else if days < self.first {
            // Room below for as many again, so values arriving in falling order cost little.
            let need = days.abs_diff(self.first) as usize;
            let room = self.first.abs_diff(i32::MIN) as usize;
            let grow = need.max(self.counts.len()).min(room);
            let mut counts = vec![0; grow];
            counts.append(&mut self.counts);
            self.counts = counts;
            self.first -= grow as i32;
        }
        let i = days.abs_diff(self.first) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        i
    }

    /// How many values are counted.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no value is counted.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `k`th smallest value (from 0).
    fn nth(&self, k: usize) -> Option<f64> {
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > k as u64 {
                return Some(f64::from(self.first + i as i32));
            }
        }
        None
    }

    /// Quantile `p`, exactly as [`quantile`] gives it over the sorted values.
    fn quantile(&self, p: f64) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let h = (self.n - 1) as f64 * p.clamp(0.0, 1.0);
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(self.n - 1);
        let (a, b) = (self.nth(lo)?, self.nth(hi)?);
        Some(a + (h - lo as f64) * (b - a))
    }

    /// Median and quartiles, the same as [`Summary::of`] over the values.
    pub fn summary(&self) -> Summary {
        Summary {
            n: self.n,
            median: self.quantile(0.5),
            q1: self.quantile(0.25),
            q3: self.quantile(0.75),
        }
    }
}

/// The difference of two proportions, `k1/n1 − k2/n2`, with Newcombe's hybrid score interval
/// (his method 10: each proportion's Wilson interval, combined), as statsmodels'
/// `confint_proportions_2indep(method="newcomb")` gives it. `None` when either has no
/// denominator.
pub fn newcombe(k1: u64, n1: u64, k2: u64, n2: u64, z: f64) -> Option<(f64, f64, f64)> {
    let (l1, u1) = wilson(k1, n1, z)?;
    let (l2, u2) = wilson(k2, n2, z)?;
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let d = p1 - p2;
    Some((
        d,
        d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt(),
        d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-7
    }

    #[test]
    fn medians_average_the_two_middle_values() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [7.0]), Some(7.0));
        assert_eq!(median(&mut [40.0, 10.0, 30.0, 20.0]), Some(25.0));
        assert_eq!(median(&mut [5.0, 5.0, 5.0, 9.0]), Some(5.0));
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
    }

    #[test]
    fn day_counts_summarise_as_the_sorted_values_do() {
        let sets: [&[i32]; 6] = [
            &[],
            &[7],
            &[40, 10, 30, 20],
            &[5, 5, 5, 9],
            &[3, -1, 2, 100, -50, 2, 2],
            &[1000, 999, 998, 1, 0, -3, 12, 12, 12, 13],
        ];
        for set in sets {
            let mut counts = DayCounts::default();
            set.iter().for_each(|d| counts.add(*d));
            let mut values: Vec<f64> = set.iter().map(|d| f64::from(*d)).collect();
            assert_eq!(counts.summary(), Summary::of(&mut values), "{set:?}");
            assert_eq!(counts.len(), set.len());
        }
        // Merged counts are the counts of both.
        let (mut a, mut b, mut both) = (
            DayCounts::default(),
            DayCounts::default(),
            DayCounts::default(),
        );
        for d in [4, 9, 9, 2] {
            a.add(d);
            both.add(d);
        }
        for d in [-7, 9, 30] {
            b.add(d);
            both.add(d);
        }
        a.merge(&b);
        assert_eq!(a.summary(), both.summary());
        assert_eq!(a.summary().median, Some(9.0));
    }

    #[test]
    fn quartiles_match_r_type_7() {
        // R: quantile(c(1,2,3,4,5,6,7,8,9,10)) -> 3.25, 5.5, 7.75
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.25), Some(3.25));
        assert_eq!(quantile(&v, 0.5), Some(5.5));
        assert_eq!(quantile(&v, 0.75), Some(7.75));
        // numpy.percentile([10, 20, 40], [25, 75]) -> 15, 30
        let s = Summary::of(&mut [40.0, 10.0, 20.0]);
        assert_eq!((s.q1, s.median, s.q3), (Some(15.0), Some(20.0), Some(30.0)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn wilson_matches_statsmodels() {
        // statsmodels.stats.proportion.proportion_confint(k, n, method="wilson")
        for (k, n, lo, hi) in [
            (45, 100, 0.356145, 0.547554),
            (0, 20, 0.0, 0.161125),
            (1, 3, 0.061492, 0.792340),
            (180, 200, 0.850594, 0.934330),
            (70, 120, 0.494, 0.668),
        ] {
            let (l, h) = wilson(k, n, Z95).unwrap();
            let tol = if n == 120 { 5e-4 } else { 5e-7 };
            assert!(
                (l - lo).abs() < tol && (h - hi).abs() < tol,
                "{k}/{n}: {l} {h}"
            );
        }
        let (l, h) = wilson(20, 20, Z95).unwrap();
        assert!(close(h, 1.0) && close(l, 0.838875), "{l}");
        assert_eq!(wilson(0, 0, Z95), None);
    }
}
