//! Outcomes as kpis.md defines them: for each measure, the paired change from assessment 1 to
//! assessment 2 among episodes with both values (n, mean change, 95% t-interval), and for HADS
//! the share of patients at or above 8 ("symptoms present") at each assessment.

/// Paired change A1 → A2 of one measure.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct PairedChange {
    /// Episodes with both values.
    pub n: usize,
    /// Mean at assessment 1 over the pairs (`None` when n = 0).
    pub mean_a1: Option<f64>,
    /// Mean at assessment 2 over the pairs.
    pub mean_a2: Option<f64>,
    /// Mean of (A2 − A1).
    pub mean_change: Option<f64>,
    /// 95% t-interval of the mean change (`None` below two pairs).
    pub ci: Option<(f64, f64)>,
}

/// The paired change over `(a1, a2)` values.
pub fn paired_change(pairs: &[(f64, f64)]) -> PairedChange {
    let n = pairs.len();
    if n == 0 {
        return PairedChange::default();
    }
    let nf = n as f64;
    let mean_a1 = pairs.iter().map(|p| p.0).sum::<f64>() / nf;
    let mean_a2 = pairs.iter().map(|p| p.1).sum::<f64>() / nf;
    let mean = pairs.iter().map(|p| p.1 - p.0).sum::<f64>() / nf;
    let ci = (n >= 2).then(|| {
        let var = pairs
            .iter()
            .map(|p| (p.1 - p.0 - mean).powi(2))
            .sum::<f64>()
            / (nf - 1.0);
        let half = t_quantile(0.975, nf - 1.0) * (var / nf).sqrt();
        (mean - half, mean + half)
    });
    PairedChange {
        n,
        mean_a1: Some(mean_a1),
        mean_a2: Some(mean_a2),
        mean_change: Some(mean),
        ci,
    }
}

/// HADS threshold for "symptoms present".
pub const HADS_CASE: f64 = 8.0;

/// Share of values at or above `threshold` (`None` for no values).
pub fn share_at_least(values: impl IntoIterator<Item = f64>, threshold: f64) -> Option<f64> {
    let (mut n, mut k) = (0u64, 0u64);
    for v in values {
        n += 1;
        k += u64::from(v >= threshold);
    }
    (n > 0).then(|| k as f64 / n as f64)
}

/// Quantile `p` (0 < p < 1) of Student's t distribution with `df` degrees of freedom, found by
/// bisection on the exact distribution function (accurate to ~1e-12).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-13 * hi.max(1.0) {
            break;
        }
    }
    (lo + hi) / 2.0
}

/// Distribution function of Student's t: via the regularised incomplete beta function.
fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, x);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Regularised incomplete beta I_x(a, b), by its continued fraction (Lentz's method).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_r_qt() {
        // scipy.stats.t.ppf(0.975, df) (= R's qt) for df = 1, 2, 5, 10, 30, 1000.
        for (df, want) in [
            (1.0, 12.706_204_736_174_7),
            (2.0, 4.302_652_729_749_46),
            (5.0, 2.570_581_835_636_31),
            (10.0, 2.228_138_851_986_27),
            (30.0, 2.042_272_456_301_24),
            (1000.0, 1.962_339_080_826_408),
        ] {
            let got = t_quantile(0.975, df);
            assert!((got - want).abs() < 1e-10, "df {df}: {got} vs {want}");
        }
        assert!((t_quantile(0.025, 10.0) + 2.228_138_851_986_27).abs() < 1e-8);
    }

    #[test]
    fn paired_change_by_hand() {
        // Changes 2, 4, 6: mean 4, sd 2, se 2/√3, t(0.975, 2) = 4.302653 → 4 ± 4.968275.
        let c = paired_change(&[(10.0, 12.0), (10.0, 14.0), (12.0, 18.0)]);
        assert_eq!(c.n, 3);
        assert_eq!(c.mean_change, Some(4.0));
        assert!((c.mean_a1.unwrap() - 32.0 / 3.0).abs() < 1e-12);
        let (lo, hi) = c.ci.unwrap();
        assert!((lo - (4.0 - 4.968_275_1)).abs() < 1e-6, "{lo}");
        assert!((hi - (4.0 + 4.968_275_1)).abs() < 1e-6, "{hi}");
        let one = paired_change(&[(5.0, 3.0)]);
        assert_eq!((one.mean_change, one.ci), (Some(-2.0), None));
        assert_eq!(paired_change(&[]), PairedChange::default());
    }

    #[test]
    fn hads_share_counts_eight_as_symptoms() {
        assert_eq!(share_at_least([7.0, 8.0, 21.0, 0.0], HADS_CASE), Some(0.5));
        assert_eq!(share_at_least([], HADS_CASE), None);
    }
}
