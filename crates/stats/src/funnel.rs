//! Funnel plots and inequality measures exactly as kpis.md defines them: Wilson-based control
//! limits around the pooled national proportion, `alert` (95%) and `alarm` (99.8%) outliers,
//! and the slope index of inequality across deprivation quintiles.
//!
//! When programmes vary more than chance allows (overdispersion), analysts may widen the limits
//! as Spiegelhalter (2005, "Funnel plots for comparing institutional performance", Statistics
//! in Medicine 24:1185–1202) describes, with a [`Method`]: a multiplicative factor φ estimated
//! from the z-scores winsorised at 10% each end, or an additive random-effects variance τ²
//! (DerSimonian–Laird from the same winsorised φ). Where the data show no overdispersion
//! (φ ≤ 1, or τ² = 0) both give the plain limits.

/// z for the 99.8% ("alarm") limits, as fixed by the spec.
pub const Z998: f64 = 3.090232;

/// The funnel's limits at denominator `n` around the pooled proportion `p0`: the Wilson score
/// interval of `p0` at `n`. `None` when n = 0.
pub fn limits(p0: f64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let z2 = z * z;
    let centre = 2.0 * n * p0 + z2;
    let half = z * (z2 + 4.0 * n * p0 * (1.0 - p0)).sqrt();
    let denom = 2.0 * (n + z2);
    Some(((centre - half) / denom, (centre + half) / denom))
}

/// The pooled target: Σ numerators / Σ denominators (`None` when every denominator is 0).
pub fn pooled(points: &[(u64, u64)]) -> Option<f64> {
    let (k, n) = points
        .iter()
        .fold((0u64, 0u64), |(k, n), (a, b)| (k + a, n + b));
    (n > 0).then(|| k as f64 / n as f64)
}

/// Where a programme sits on a funnel plot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Inside the 95% limits.
    Within,
    /// Outside the 95% limits, inside the 99.8% ones.
    Alert(Direction),
    /// Outside the 99.8% limits.
    Alarm(Direction),
}

/// Below or above the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Below the lower limit.
    Low,
    /// Above the upper limit.
    High,
}

/// Classifies a programme's proportion `k / n` against the (plain) funnel around `p0`.
pub fn position(k: u64, n: u64, p0: f64) -> Option<Position> {
    Fit {
        p0,
        method: Method::Plain,
        phi: 1.0,
        tau2: 0.0,
    }
    .position(k, n)
}

/// How a funnel's limits allow for overdispersion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// kpis.md's Wilson limits around the pooled proportion, unadjusted.
    #[default]
    Plain,
    /// Normal limits inflated by √φ, φ from the winsorised z-scores.
    Multiplicative,
    /// Normal limits with a between-programme variance τ² added.
    Additive,
}

impl Method {
    /// Every method, in the order pages offer them.
    pub const ALL: [Method; 3] = [Method::Plain, Method::Multiplicative, Method::Additive];

    /// `plain`, `multiplicative` or `additive` (the command line's and `funnels.csv`'s name).
    pub fn code(self) -> &'static str {
        match self {
            Method::Plain => "plain",
            Method::Multiplicative => "multiplicative",
            Method::Additive => "additive",
        }
    }

    /// The method in words.
    pub fn label(self) -> &'static str {
        match self {
            Method::Plain => "No adjustment (Wilson limits)",
            Method::Multiplicative => "Overdispersion: multiplicative factor",
            Method::Additive => "Overdispersion: additive random effects",
        }
    }

    /// Parses a method's code.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.code() == s.trim().to_ascii_lowercase())
    }
}

/// Share of z-scores winsorised at each end when estimating φ (Spiegelhalter 2005: 10%).
pub const WINSORISE: f64 = 0.1;

/// A funnel fitted to the programmes' points: its target, and the overdispersion allowance of
/// its method.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// The pooled proportion.
    pub p0: f64,
    /// The method.
    pub method: Method,
    /// φ, the overdispersion factor from the winsorised z-scores (1 when it cannot be
    /// estimated).
    pub phi: f64,
    /// τ², the between-programme variance (0 when there is no overdispersion).
    pub tau2: f64,
}

/// The z-score of `k / n` against `p0` (normal approximation, kpis.md's variance p₀(1−p₀)/n).
fn z_score(k: u64, n: u64, p0: f64) -> f64 {
    (k as f64 / n as f64 - p0) / (p0 * (1.0 - p0) / n as f64).sqrt()
}

/// Winsorises values: the lowest ⌊share·I⌋ are raised to the next value up, the highest
/// ⌊share·I⌋ lowered to the next value down (as `scipy.stats.mstats.winsorize`).
pub fn winsorise(values: &[f64], share: f64) -> Vec<f64> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let cut = (share * n as f64) as usize;
    let mut out = values.to_vec();
    if n == 0 || 2 * cut >= n {
        return out;
    }
    let (low, high) = (values[order[cut]], values[order[n - cut - 1]]);
    for &i in &order[..cut] {
        out[i] = low;
    }
    for &i in &order[n - cut..] {
        out[i] = high;
    }
    out
}

impl Fit {
    /// Fits a funnel to `(numerator, denominator)` points (those with a zero denominator are
    /// left out). `None` without data, or when the pooled proportion is 0 or 1 (no variance).
    pub fn new(points: &[(u64, u64)], method: Method) -> Option<Fit> {
        let p0 = pooled(points)?;
        let used: Vec<(u64, u64)> = points.iter().copied().filter(|p| p.1 > 0).collect();
        let mut fit = Fit {
            p0,
            method,
            phi: 1.0,
            tau2: 0.0,
        };
        if p0 <= 0.0 || p0 >= 1.0 || used.is_empty() {
            return Some(fit);
        }
        let z: Vec<f64> = used.iter().map(|&(k, n)| z_score(k, n, p0)).collect();
        let zw = winsorise(&z, WINSORISE);
        let i = used.len() as f64;
        fit.phi = zw.iter().map(|z| z * z).sum::<f64>() / i;
        let w: Vec<f64> = used
            .iter()
            .map(|&(_, n)| n as f64 / (p0 * (1.0 - p0)))
            .collect();
        let (sw, sw2) = (w.iter().sum::<f64>(), w.iter().map(|x| x * x).sum::<f64>());
        let excess = i * fit.phi - (i - 1.0);
        let spread = sw - sw2 / sw;
        fit.tau2 = if excess > 0.0 && spread > 0.0 {
            excess / spread
        } else {
            0.0
        };
        Some(fit)
    }

    /// Whether this fit's method actually widens the limits (overdispersion was found).
    pub fn adjusted(&self) -> bool {
        match self.method {
            Method::Plain => false,
            Method::Multiplicative => self.phi > 1.0,
            Method::Additive => self.tau2 > 0.0,
        }
    }

    /// The limits at denominator `n` for normal quantile `z`, within 0–1. `None` when n = 0.
    pub fn limits(&self, n: u64, z: f64) -> Option<(f64, f64)> {
        if !self.adjusted() {
            return limits(self.p0, n, z);
        }
        if n == 0 {
            return None;
        }
        let var = self.p0 * (1.0 - self.p0) / n as f64;
        let sd = match self.method {
            Method::Multiplicative => (self.phi * var).sqrt(),
            _ => (var + self.tau2).sqrt(),
        };
        Some(((self.p0 - z * sd).max(0.0), (self.p0 + z * sd).min(1.0)))
    }

    /// Where `k / n` sits against this funnel. `None` when n = 0.
    pub fn position(&self, k: u64, n: u64) -> Option<Position> {
        let p = k as f64 / n as f64;
        let outside = |z: f64| {
            let (lo, hi) = self.limits(n, z)?;
            Some(if p < lo {
                Some(Direction::Low)
            } else if p > hi {
                Some(Direction::High)
            } else {
                None
            })
        };
        Some(match (outside(Z998)?, outside(crate::Z95)?) {
            (Some(d), _) => Position::Alarm(d),
            (None, Some(d)) => Position::Alert(d),
            (None, None) => Position::Within,
        })
    }

    /// What the method did, in words, for captions and the methods appendix.
    pub fn describe(&self) -> String {
        match self.method {
            Method::Plain => "Limits: Wilson score limits around the pooled proportion, with no adjustment for overdispersion.".into(),
            Method::Multiplicative if self.adjusted() => format!(
                "Limits adjusted for overdispersion (multiplicative): φ = {:.2} from the z-scores winsorised at 10% each end, so the limits are √φ = {:.2} times as wide as normal ones.",
                self.phi,
                self.phi.sqrt()
            ),
            Method::Additive if self.adjusted() => format!(
                "Limits adjusted for overdispersion (additive random effects): τ = {:.3} (τ² = {:.5}) from φ = {:.2} of the winsorised z-scores, added to each programme's own variance.",
                self.tau2.sqrt(),
                self.tau2,
                self.phi
            ),
            _ => format!(
                "No overdispersion was found (φ = {:.2}), so the plain Wilson limits are used.",
                self.phi
            ),
        }
    }
}

/// The slope index of inequality across IMD quintiles: the weighted least-squares slope of
/// each quintile's uptake on the mid-point of its cumulative population rank (0 = most
/// deprived, 1 = least), weighted by the quintile's denominator. `quintiles` are
/// `(started, referred)` for quintiles 1 (most deprived) to 5; unknown quintiles are left out
/// by the caller. `None` when fewer than two quintiles have anyone referred.
pub fn slope_index(quintiles: &[(u64, u64); 5]) -> Option<f64> {
    let total: u64 = quintiles.iter().map(|q| q.1).sum();
    if quintiles.iter().filter(|q| q.1 > 0).count() < 2 {
        return None;
    }
    let total = total as f64;
    let mut below = 0.0;
    let mut points = Vec::new();
    for &(k, n) in quintiles {
        let share = n as f64 / total;
        if n > 0 {
            points.push((below + share / 2.0, k as f64 / n as f64, n as f64));
        }
        below += share;
    }
    let w: f64 = points.iter().map(|p| p.2).sum();
    let mx = points.iter().map(|p| p.2 * p.0).sum::<f64>() / w;
    let my = points.iter().map(|p| p.2 * p.1).sum::<f64>() / w;
    let sxy: f64 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// Worked by hand: five programmes of 100 at 10%, 30%, 20%, 40% and 0% around p₀ = 20%
    /// (sd 0.04): z = −2.5, 2.5, 0, 5, −5 (none winsorised with five), so φ = 62.5 / 5 = 12.5;
    /// w = 625 each, so τ² = (5·12.5 − 4) / (3125 − 625) = 0.0234.
    #[test]
    fn overdispersion_by_hand() {
        let points = [(10, 100), (30, 100), (20, 100), (40, 100), (0, 100)];
        let m = Fit::new(&points, Method::Multiplicative).unwrap();
        assert!(close(m.p0, 0.2) && close(m.phi, 12.5), "{m:?}");
        assert!(close(m.tau2, 0.0234), "{m:?}");
        // 0.2 ± 1.959964 · √(12.5 · 0.0016) = 0.2 ± 0.277181
        let (lo, hi) = m.limits(100, crate::Z95).unwrap();
        assert!(close(lo, 0.0) && close(hi, 0.477181), "{lo} {hi}");
        let a = Fit::new(&points, Method::Additive).unwrap();
        // 0.2 ± 1.959964 · √(0.0016 + 0.0234) = 0.2 ± 0.309898
        let (_, hi) = a.limits(100, crate::Z95).unwrap();
        assert!(close(hi, 0.509898), "{hi}");
        // Plain: 40% of 100 is far outside; adjusted, it is within.
        let plain = Fit::new(&points, Method::Plain).unwrap();
        assert_eq!(plain.position(40, 100), position(40, 100, 0.2));
        assert!(matches!(
            plain.position(40, 100),
            Some(Position::Alarm(Direction::High))
        ));
        assert_eq!(m.position(40, 100), Some(Position::Within));
        assert_eq!(a.position(40, 100), Some(Position::Within));
        assert!(m.describe().contains("φ = 12.50"), "{}", m.describe());
    }

    #[test]
    fn without_overdispersion_the_adjusted_methods_are_the_plain_one() {
        // Every programme exactly on target: φ = 0, τ² = 0.
        let points = [(20, 100), (40, 200), (10, 50)];
        for method in Method::ALL {
            let f = Fit::new(&points, method).unwrap();
            assert!(!f.adjusted());
            assert_eq!(f.limits(100, Z998), limits(0.2, 100, Z998));
        }
        assert_eq!(Method::parse("Additive"), Some(Method::Additive));
        assert_eq!(Method::parse("none"), None);
    }

    #[test]
    fn winsorising_pulls_in_the_extremes_as_scipy_does() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(
            winsorise(&v, 0.1),
            [2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 9.0]
        );
        // 25 values: ⌊2.5⌋ = 2 each end.
        let v: Vec<f64> = (0..25).map(|i| f64::from((i * 7) % 25)).collect();
        let w = winsorise(&v, 0.1);
        assert_eq!(w.iter().copied().fold(f64::MAX, f64::min), 2.0);
        assert_eq!(w.iter().copied().fold(f64::MIN, f64::max), 22.0);
    }

    #[test]
    fn limits_match_statsmodels_wilson() {
        // statsmodels.stats.proportion.proportion_confint(p0 * n, n, alpha, method="wilson");
        // its z differs from the spec's in the 8th digit.
        for (p0, n, z, lo, hi) in [
            (
                0.5,
                10,
                crate::Z95,
                0.236_593_090_512_563_94,
                0.763_406_909_487_436_1,
            ),
            (
                0.5,
                10,
                Z998,
                0.150_543_672_094_257_9,
                0.849_456_327_905_742_1,
            ),
            (
                0.62,
                150,
                crate::Z95,
                0.540_244_413_816_120_6,
                0.693_762_727_535_540_9,
            ),
            (
                0.62,
                150,
                Z998,
                0.493_851_333_846_074_27,
                0.731_783_920_062_266_6,
            ),
            (
                0.9,
                1000,
                crate::Z95,
                0.879_848_036_804_651_6,
                0.917_090_556_406_904_4,
            ),
            (
                0.05,
                40,
                Z998,
                0.007_591_053_235_918_771,
                0.265_863_289_231_709_1,
            ),
        ] {
            let (l, h) = limits(p0, n, z).unwrap();
            assert!(
                (l - lo).abs() < 1e-6 && (h - hi).abs() < 1e-6,
                "{p0} {n} {z}: {l} {h}"
            );
        }
        assert_eq!(limits(0.5, 0, crate::Z95), None);
    }

    #[test]
    fn outliers_by_hand() {
        let p0 = pooled(&[(60, 100), (40, 100)]).unwrap();
        assert_eq!(p0, 0.5);
        // n = 100 around 0.5: 95% limits 0.4038–0.5962, 99.8% limits 0.3524–0.6476.
        assert_eq!(position(50, 100, p0), Some(Position::Within));
        assert_eq!(position(40, 100, p0), Some(Position::Alert(Direction::Low)));
        assert_eq!(
            position(62, 100, p0),
            Some(Position::Alert(Direction::High))
        );
        assert_eq!(position(30, 100, p0), Some(Position::Alarm(Direction::Low)));
        assert_eq!(
            position(70, 100, p0),
            Some(Position::Alarm(Direction::High))
        );
        assert_eq!(position(0, 0, p0), None);
    }

    #[test]
    fn slope_index_by_hand() {
        // Equal quintiles (100 referred each): mid-ranks 0.1, 0.3, 0.5, 0.7, 0.9. Uptake rising
        // by 0.05 per quintile (0.40 … 0.60) is a slope of 0.05 / 0.2 = 0.25.
        let q = [(40, 100), (45, 100), (50, 100), (55, 100), (60, 100)];
        assert!((slope_index(&q).unwrap() - 0.25).abs() < 1e-12);
        // Unequal sizes move the mid-points: shares 0.4, 0.1, 0.1, 0.1, 0.3 → mid-ranks 0.2,
        // 0.45, 0.55, 0.65, 0.85. With uptake equal to the mid-rank, the slope is exactly 1.
        let q = [(80, 400), (45, 100), (55, 100), (65, 100), (255, 300)];
        assert!((slope_index(&q).unwrap() - 1.0).abs() < 1e-12);
        // Flat uptake: no inequality.
        assert_eq!(
            slope_index(&[(5, 10), (5, 10), (5, 10), (5, 10), (5, 10)]),
            Some(0.0)
        );
        assert_eq!(
            slope_index(&[(5, 10), (0, 0), (0, 0), (0, 0), (0, 0)]),
            None
        );
    }
}
