//! Funnel plots and inequality measures exactly as kpis.md defines them: Wilson-based control
//! limits around the pooled national proportion, `alert` (95%) and `alarm` (99.8%) outliers,
//! and the slope index of inequality across deprivation quintiles.
//!
//! When programmes vary more than chance allows (overdispersion), the limits are widened as
//! Spiegelhalter (2005, "Funnel plots for comparing institutional performance", Statistics in
//! Medicine 24:1185–1202) describes, with a [`Method`]: a multiplicative factor φ estimated
//! from the z-scores winsorised at 10% each end, or an additive random-effects variance τ²
//! (DerSimonian–Laird from the same winsorised φ). Either way the limits are Wilson limits at
//! the *effective* sample size (the n whose binomial variance is the inflated one), so an
//! adjustment only ever widens them. By default ([`Method::Auto`]) the adjustment is made when
//! the overdispersion test (Iφ against χ² on I − 1 degrees of freedom) is significant at 5%,
//! and multiplicatively, as NHS funnel plots do.

/// z for the 99.8% ("alarm") limits, as fixed by the spec.
pub const Z998: f64 = 3.090232;

/// The funnel's limits at denominator `n` around the pooled proportion `p0`: the Wilson score
/// interval of `p0` at `n`. `None` when n = 0.
pub fn limits(p0: f64, n: u64, z: f64) -> Option<(f64, f64)> {
    (n > 0).then(|| wilson_at(p0, n as f64, z))
}

/// The Wilson score interval of `p0` at a (possibly fractional) sample size `n` > 0.
fn wilson_at(p0: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let centre = 2.0 * n * p0 + z2;
    let half = z * (z2 + 4.0 * n * p0 * (1.0 - p0)).sqrt();
    let denom = 2.0 * (n + z2);
    ((centre - half) / denom, (centre + half) / denom)
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
        chosen: false,
        phi: 1.0,
        tau2: 0.0,
        dispersion: Dispersion {
            statistic: 0.0,
            df: 0,
            p_value: 1.0,
        },
    }
    .position(k, n)
}

/// How a funnel's limits allow for overdispersion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Method {
    /// The default: multiplicative when the overdispersion test is significant at 5%, plain
    /// otherwise (Spiegelhalter 2005; NHS funnel plots).
    #[default]
    Auto,
    /// kpis.md's Wilson limits around the pooled proportion, unadjusted.
    Plain,
    /// Wilson limits at n/φ, φ from the winsorised z-scores.
    Multiplicative,
    /// Wilson limits at the n whose variance is p₀(1−p₀)/n + τ².
    Additive,
}

impl Method {
    /// Every method, in the order pages offer them (the default first).
    pub const ALL: [Method; 4] = [
        Method::Auto,
        Method::Plain,
        Method::Multiplicative,
        Method::Additive,
    ];

    /// `auto`, `plain`, `multiplicative` or `additive` (the command line's and `funnels.csv`'s
    /// name).
    pub fn code(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Plain => "plain",
            Method::Multiplicative => "multiplicative",
            Method::Additive => "additive",
        }
    }

    /// The method in words.
    pub fn label(self) -> &'static str {
        match self {
            Method::Auto => "Adjusted when programmes vary more than chance (default)",
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

/// The overdispersion test of Spiegelhalter (2005): with I programmes, Iφ is compared with χ²
/// on I − 1 degrees of freedom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dispersion {
    /// The test statistic Iφ.
    pub statistic: f64,
    /// Degrees of freedom, I − 1.
    pub df: usize,
    /// P(χ²(I − 1) ≥ Iφ); 1 when there are fewer than two programmes.
    pub p_value: f64,
}

/// The significance level at which [`Method::Auto`] adjusts the limits.
pub const DISPERSION_LEVEL: f64 = 0.05;

impl Dispersion {
    /// Whether programmes vary significantly more than chance allows.
    pub fn significant(&self) -> bool {
        self.p_value < DISPERSION_LEVEL
    }

    /// The test in words: "Iφ = 1,587.3 on 229 degrees of freedom, p < 0.001".
    pub fn describe(&self) -> String {
        let p = if self.p_value < 0.001 {
            "p < 0.001".to_string()
        } else {
            format!("p = {:.3}", self.p_value)
        };
        format!(
            "Iφ = {:.1} against χ² on {} degrees of freedom, {p}",
            self.statistic, self.df
        )
    }
}

/// P(χ²(df) ≥ x): the regularised upper incomplete gamma function Q(df/2, x/2), by its series
/// below a + 1 and Lentz's continued fraction above (Numerical Recipes, 6.2).
pub fn chi_square_upper(x: f64, df: f64) -> f64 {
    if x <= 0.0 || df <= 0.0 {
        return 1.0;
    }
    let (a, x) = (df / 2.0, x / 2.0);
    let front = (-x + a * x.ln() - crate::outcomes::ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * front).clamp(0.0, 1.0)
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            d = if d.abs() < TINY { TINY } else { d };
            c = b + an / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (front * h).clamp(0.0, 1.0)
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
    /// The method the limits use: never [`Method::Auto`], which resolves to plain or
    /// multiplicative by the overdispersion test.
    pub method: Method,
    /// Whether the method was chosen by the overdispersion test (the default).
    pub chosen: bool,
    /// φ, the overdispersion factor from the winsorised z-scores (1 when it cannot be
    /// estimated).
    pub phi: f64,
    /// τ², the between-programme variance (0 when there is no overdispersion).
    pub tau2: f64,
    /// The overdispersion test.
    pub dispersion: Dispersion,
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
            method: if method == Method::Auto {
                Method::Plain
            } else {
                method
            },
            chosen: method == Method::Auto,
            phi: 1.0,
            tau2: 0.0,
            dispersion: Dispersion {
                statistic: 0.0,
                df: used.len().saturating_sub(1),
                p_value: 1.0,
            },
        };
        if p0 <= 0.0 || p0 >= 1.0 || used.is_empty() {
            return Some(fit);
        }
        let z: Vec<f64> = used.iter().map(|&(k, n)| z_score(k, n, p0)).collect();
        let zw = winsorise(&z, WINSORISE);
        let i = used.len() as f64;
        fit.phi = zw.iter().map(|z| z * z).sum::<f64>() / i;
        fit.dispersion.statistic = i * fit.phi;
        if used.len() > 1 {
            fit.dispersion.p_value = chi_square_upper(i * fit.phi, i - 1.0);
        }
        if method == Method::Auto && fit.dispersion.significant() {
            fit.method = Method::Multiplicative;
        }
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
            Method::Plain | Method::Auto => false,
            Method::Multiplicative => self.phi > 1.0,
            Method::Additive => self.tau2 > 0.0,
        }
    }

    /// The limits at denominator `n` for normal quantile `z`. `None` when n = 0.
    ///
    /// Adjusted limits are Wilson limits at the effective sample size: n/φ (multiplicative),
    /// or the n whose binomial variance is p₀(1−p₀)/n + τ² (additive). Symmetric normal limits
    /// clipped to 0–1 would be narrower than the plain ones at small n with p₀ far from ½, and
    /// could never flag a small programme at 100%; these are never narrower, and the wider of
    /// the two is taken so that holds whatever the rounding.
    pub fn limits(&self, n: u64, z: f64) -> Option<(f64, f64)> {
        let plain = limits(self.p0, n, z)?;
        if !self.adjusted() {
            return Some(plain);
        }
        let v = self.p0 * (1.0 - self.p0);
        let effective = match self.method {
            Method::Multiplicative => n as f64 / self.phi,
            _ => v / (v / n as f64 + self.tau2),
        };
        let (lo, hi) = wilson_at(self.p0, effective, z);
        Some((lo.min(plain.0), hi.max(plain.1)))
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
        let test = self.dispersion.describe();
        if self.chosen {
            return if self.adjusted() {
                format!(
                    "Programmes vary more than chance allows ({test}), so the limits are adjusted for overdispersion by the multiplicative factor φ = {:.2} (Spiegelhalter 2005): Wilson limits at n/φ, {:.2} times as wide.",
                    self.phi,
                    self.phi.sqrt()
                )
            } else {
                format!(
                    "Programmes vary no more than chance allows ({test}), so the plain Wilson limits are used."
                )
            };
        }
        match self.method {
            Method::Multiplicative if self.adjusted() => format!(
                "Limits adjusted for overdispersion (multiplicative): φ = {:.2} from the z-scores winsorised at 10% each end ({test}); Wilson limits at n/φ, about √φ = {:.2} times as wide.",
                self.phi,
                self.phi.sqrt()
            ),
            Method::Additive if self.adjusted() => format!(
                "Limits adjusted for overdispersion (additive random effects): τ = {:.3} (τ² = {:.5}) from φ = {:.2} of the winsorised z-scores ({test}); Wilson limits at the sample size whose variance includes τ².",
                self.tau2.sqrt(),
                self.tau2,
                self.phi
            ),
            Method::Multiplicative | Method::Additive => format!(
                "No overdispersion was found (φ = {:.2}), so the plain Wilson limits are used.",
                self.phi
            ),
            _ => format!(
                "Limits: Wilson score limits around the pooled proportion, with no adjustment for overdispersion (chosen; {test})."
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
        // Wilson limits of 0.2 at the effective n = 100 / 12.5 = 8:
        // (2·8·0.2 + z² ∓ z√(z² + 4·8·0.16)) / (2(8 + z²)) = 0.049579, 0.545066.
        let (lo, hi) = m.limits(100, crate::Z95).unwrap();
        assert!(close(lo, 0.049579) && close(hi, 0.545066), "{lo} {hi}");
        let a = Fit::new(&points, Method::Additive).unwrap();
        // Variance 0.0016 + 0.0234 = 0.025 = 0.16 / 6.4: Wilson limits at n = 6.4.
        let (lo, hi) = a.limits(100, crate::Z95).unwrap();
        assert!(close(lo, 0.042941) && close(hi, 0.582113), "{lo} {hi}");
        // The test: Iφ = 62.5 on 4 degrees of freedom, p = 8.6e-13 (scipy.stats.chi2.sf).
        assert!(close(m.dispersion.statistic, 62.5) && m.dispersion.df == 4);
        assert!((m.dispersion.p_value - 8.646237473596334e-13).abs() < 1e-18);
        let auto = Fit::new(&points, Method::Auto).unwrap();
        assert_eq!(auto.method, Method::Multiplicative);
        assert!(auto.chosen && auto.adjusted());
        assert_eq!(auto.limits(100, Z998), m.limits(100, Z998));
        assert!(
            auto.describe().contains("p < 0.001") && auto.describe().contains("φ = 12.50"),
            "{}",
            auto.describe()
        );
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
    fn chi_square_tail_matches_scipy() {
        // scipy.stats.chi2.sf(x, df).
        for (x, df, want) in [
            (3.841459, 1.0, 0.04999999465319563),
            (10.0, 5.0, 0.07523524614651217),
            (250.0, 229.0, 0.1626300661623154),
            (0.5, 3.0, 0.9188914116546758),
            (62.5, 4.0, 8.646237473596334e-13),
        ] {
            let got = chi_square_upper(x, df);
            assert!(
                (got - want).abs() <= 1e-10 * want.max(1e-3),
                "χ²({df}) ≥ {x}: {got} vs {want}"
            );
        }
        assert!(chi_square_upper(1587.3, 229.0) < 1e-150);
    }

    /// An adjustment for overdispersion only ever widens the limits: on a grid of sample
    /// sizes, pooled proportions and φ or τ², neither adjusted limit is inside the plain one.
    #[test]
    fn adjusted_limits_are_never_narrower_than_plain_ones() {
        for n in [1, 2, 3, 5, 8, 13, 20, 50, 100, 500, 5000] {
            for p0 in [0.01, 0.05, 0.2, 0.5, 0.796, 0.95, 0.99] {
                for (phi, tau2) in [(1.01, 0.0001), (1.5, 0.007), (6.9, 0.05), (40.0, 0.3)] {
                    for method in [Method::Multiplicative, Method::Additive] {
                        let f = Fit {
                            p0,
                            method,
                            chosen: false,
                            phi,
                            tau2,
                            dispersion: Dispersion {
                                statistic: 0.0,
                                df: 0,
                                p_value: 1.0,
                            },
                        };
                        for z in [crate::Z95, Z998] {
                            let (lo, hi) = f.limits(n, z).unwrap();
                            let (plo, phi_) = limits(p0, n, z).unwrap();
                            assert!(
                                lo <= plo && hi >= phi_ && lo >= 0.0 && hi <= 1.0,
                                "{method:?} n {n} p0 {p0} φ {phi} τ² {tau2}: ({lo}, {hi}) vs ({plo}, {phi_})"
                            );
                            // Wilson at the effective n is itself wider, not just widened by
                            // taking the plain limits.
                            let v = p0 * (1.0 - p0);
                            let eff = match method {
                                Method::Multiplicative => n as f64 / phi,
                                _ => v / (v / n as f64 + tau2),
                            };
                            let w = wilson_at(p0, eff, z);
                            assert!(w.0 <= plo + 1e-12 && w.1 >= phi_ - 1e-12);
                        }
                    }
                }
            }
        }
        // The review's case: 2/5 on assessment 1 (p₀ = 0.796, τ² = 0.007) is within the plain
        // limits, and so within the additive ones.
        let plain = position(2, 5, 0.796);
        assert_eq!(plain, Some(Position::Within));
        let additive = Fit {
            p0: 0.796,
            method: Method::Additive,
            chosen: false,
            phi: 2.0,
            tau2: 0.007,
            dispersion: Dispersion {
                statistic: 0.0,
                df: 0,
                p_value: 1.0,
            },
        };
        assert_eq!(additive.position(2, 5), Some(Position::Within));
        // A small programme at 100% can still be flagged high once adjusted (12/12 around
        // p₀ = 0.2 with φ = 1.5).
        let mult = Fit {
            method: Method::Multiplicative,
            phi: 1.5,
            p0: 0.2,
            ..additive
        };
        assert!(matches!(
            mult.position(12, 12),
            Some(Position::Alarm(Direction::High))
        ));
    }

    /// Without significant overdispersion the default keeps the plain limits.
    #[test]
    fn the_default_adjusts_only_when_the_test_is_significant() {
        // Within chance: 20/100, 22/100, 18/100, 21/100, 19/100.
        let calm = [(20, 100), (22, 100), (18, 100), (21, 100), (19, 100)];
        let f = Fit::new(&calm, Method::Auto).unwrap();
        assert!(!f.dispersion.significant() && f.method == Method::Plain && f.chosen);
        assert_eq!(f.limits(100, Z998), limits(0.2, 100, Z998));
        assert!(
            f.describe().contains("no more than chance"),
            "{}",
            f.describe()
        );
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
