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
