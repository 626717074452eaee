//! Funnel plots and inequality measures exactly as kpis.md defines them: Wilson-based control
//! limits around the pooled national proportion, `alert` (95%) and `alarm` (99.8%) outliers,
//! and the slope index of inequality across deprivation quintiles.

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

/// Classifies a programme's proportion `k / n` against the funnel around `p0`.
pub fn position(k: u64, n: u64, p0: f64) -> Option<Position> {
    let p = k as f64 / n as f64;
    let outside = |z: f64| {
        let (lo, hi) = limits(p0, n, z)?;
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
