//! Change over time as NHS teams read it: statistical process control (SPC) charts in NHS
//! England's "Making Data Count" style, computed as the NHS-R community's NHSRplotthedots
//! computes them (its `ptd_spc` with its defaults), so a chart here reads the same as one an
//! NHS analyst draws.
//!
//! An XmR chart of monthly values: the centre line is the mean, the process limits are the mean
//! ± 2.66 × the mean moving range (moving ranges of 3.267 × their mean or more are screened out
//! before the mean moving range is taken, as NHSRplotthedots does by default), and each point is
//! common cause or part of a special cause:
//! - **outside**: above the upper or below the lower process limit;
//! - **trend**: part of 7 or more points each higher (or each lower) than the one before;
//! - **two of three**: part of 3 consecutive points on one side of the mean of which 2 or more
//!   lie between the 2-sigma line (two thirds of the way to the limit) and the limit;
//! - **shift**: part of a run of 7 or more points on one side of the mean (a point on the mean
//!   breaks a run).
//!
//! When a point meets several rules it is named by the first in that order. A special-cause
//! point is an improvement or a concern by the side it lies on (a trend by its direction) and
//! the measure's improvement direction. A recorded service change starts a new phase: each phase
//! has its own mean, limits and runs. A phase of fewer than [`MIN_POINTS`] points is too short
//! for limits: it is drawn without them and no point of it is special cause.

/// The fewest points a phase needs for process limits (NHS England's guidance: 12 or more).
pub const MIN_POINTS: usize = 12;

/// Process limits: the mean ± this × the mean moving range (3 sigma for an XmR chart).
pub const LIMIT: f64 = 2.66;

/// Moving ranges this many times their mean or more are screened out of the mean moving range.
const SCREEN: f64 = 3.267;

/// Which way is better for a measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Improvement {
    /// Higher is better (uptake, assessments recorded).
    Increase,
    /// Lower is better (waits).
    Decrease,
}

impl Improvement {
    fn sign(self) -> i8 {
        match self {
            Improvement::Increase => 1,
            Improvement::Decrease => -1,
        }
    }

    /// The direction in words.
    pub fn words(self) -> &'static str {
        match self {
            Improvement::Increase => "higher is better",
            Improvement::Decrease => "lower is better",
        }
    }
}

/// The special-cause rule a point is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Common cause.
    None,
    /// Outside the process limits.
    Outside,
    /// Part of a run of 7 or more on one side of the mean.
    Shift,
    /// Part of 7 or more consecutively increasing or decreasing points.
    Trend,
    /// Part of two of three points beyond the 2-sigma line on one side.
    TwoOfThree,
}

impl Signal {
    /// The code in files and the API.
    pub fn code(self) -> &'static str {
        match self {
            Signal::None => "none",
            Signal::Outside => "outside",
            Signal::Shift => "shift",
            Signal::Trend => "trend",
            Signal::TwoOfThree => "two_of_three",
        }
    }

    /// The rule in words.
    pub fn words(self) -> &'static str {
        match self {
            Signal::None => "no signal",
            Signal::Outside => "outside the process limits",
            Signal::Shift => "a run of 7 or more on one side of the mean",
            Signal::Trend => "7 or more rising or falling in a row",
            Signal::TwoOfThree => "2 of 3 near a process limit",
        }
    }
}

/// What a point's variation says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variation {
    /// Common cause: the process's usual variation.
    Common,
    /// Special cause, in the better direction.
    Improvement,
    /// Special cause, in the worse direction.
    Concern,
}

impl Variation {
    /// The code in files and the API.
    pub fn code(self) -> &'static str {
        match self {
            Variation::Common => "common",
            Variation::Improvement => "improvement",
            Variation::Concern => "concern",
        }
    }

    /// The variation in words, as Making Data Count names it.
    pub fn words(self) -> &'static str {
        match self {
            Variation::Common => "common cause variation",
            Variation::Improvement => "special cause: improvement",
            Variation::Concern => "special cause: concern",
        }
    }
}

/// Whether the process will meet a target, read from the latest phase's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assurance {
    /// The target lies beyond the limits on the worse side: the process meets it every month.
    ConsistentPass,
    /// The target lies beyond the limits on the better side: the process misses it every month.
    ConsistentFail,
    /// The target lies inside the limits: some months meet it and some do not, by chance.
    Inconsistent,
}

impl Assurance {
    /// The code in files and the API.
    pub fn code(self) -> &'static str {
        match self {
            Assurance::ConsistentPass => "consistent_pass",
            Assurance::ConsistentFail => "consistent_fail",
            Assurance::Inconsistent => "inconsistent",
        }
    }

    /// The reading in words.
    pub fn words(self) -> &'static str {
        match self {
            Assurance::ConsistentPass => "the target will be met every month",
            Assurance::ConsistentFail => "the target will be missed every month",
            Assurance::Inconsistent => "the target will be met in some months and missed in others",
        }
    }
}

/// A phase's centre line and process limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The mean.
    pub centre: f64,
    /// The lower process limit.
    pub lower: f64,
    /// The upper process limit.
    pub upper: f64,
}

/// One point of a chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// The value.
    pub value: f64,
    /// Its phase's centre line and limits; none in a phase too short for them.
    pub limits: Option<Limits>,
    /// The special-cause rule it is part of.
    pub signal: Signal,
    /// What its variation says.
    pub variation: Variation,
    /// Its phase, from 0 (each recorded change starts the next).
    pub phase: usize,
}

/// An XmR chart: every point with its phase's limits, and the target's assurance.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The points, in order.
    pub points: Vec<Point>,
    /// With a target and a latest phase long enough for limits: whether it will be met.
    pub assurance: Option<Assurance>,
}

impl Chart {
    /// The latest point's variation, with the rule it is part of (the chart's headline icon).
    pub fn latest(&self) -> Option<&Point> {
        self.points.last()
    }
}

/// The XmR chart of `values` (in time order, no gaps: a month without a value is left out by
/// the caller). `phase_starts` are the indices at which a new phase begins (a service change);
/// `target`, if any, is read against the latest phase's limits.
pub fn xmr(
    values: &[f64],
    improvement: Improvement,
    phase_starts: &[usize],
    target: Option<f64>,
) -> Chart {
    let mut starts: Vec<usize> = phase_starts
        .iter()
        .copied()
        .filter(|&i| i > 0 && i < values.len())
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(starts)
        .chain(std::iter::once(values.len()))
        .collect();
    let mut points = Vec::with_capacity(values.len());
    for (phase, w) in bounds.windows(2).enumerate() {
        points.extend(phase_points(&values[w[0]..w[1]], improvement, phase));
    }
    let assurance = match (target, points.last().and_then(|p| p.limits)) {
        (Some(t), Some(l)) => Some(assurance(t, l, improvement)),
        _ => None,
    };
    Chart { points, assurance }
}

fn assurance(target: f64, l: Limits, improvement: Improvement) -> Assurance {
    let increasing = improvement == Improvement::Increase;
    if target > l.upper {
        if increasing {
            Assurance::ConsistentFail
        } else {
            Assurance::ConsistentPass
        }
    } else if target < l.lower {
        if increasing {
            Assurance::ConsistentPass
        } else {
            Assurance::ConsistentFail
        }
    } else {
        Assurance::Inconsistent
    }
}

/// The sign of `x` as -1, 0 or 1 (0 for a tie).
fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// A phase's limits: the mean, and the mean moving range after screening.
fn limits(y: &[f64]) -> Limits {
    let n = y.len() as f64;
    let centre = y.iter().sum::<f64>() / n;
    let ranges: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let first = mean(&ranges);
    let kept: Vec<f64> = ranges
        .iter()
        .copied()
        .filter(|r| *r < SCREEN * first)
        .collect();
    // A constant phase has no moving range at all: its limits are its mean.
    let amr = if kept.is_empty() { 0.0 } else { mean(&kept) };
    Limits {
        centre,
        lower: centre - LIMIT * amr,
        upper: centre + LIMIT * amr,
    }
}

/// Marks every point of a run whose last point is marked in `ends` (a run of 7: the end and
/// the 6 before it).
fn part_of_seven(ends: &[i8]) -> Vec<bool> {
    (0..ends.len())
        .map(|i| (i..(i + 7).min(ends.len())).any(|j| ends[j] != 0))
        .collect()
}

fn phase_points(y: &[f64], improvement: Improvement, phase: usize) -> Vec<Point> {
    let common = |value: f64, limits: Option<Limits>| Point {
        value,
        limits,
        signal: Signal::None,
        variation: Variation::Common,
        phase,
    };
    if y.len() < MIN_POINTS {
        return y.iter().map(|&v| common(v, None)).collect();
    }
    let l = limits(y);
    let amr = (l.upper - l.centre) / LIMIT;
    let near = 2.0 * (LIMIT / 3.0);
    let (near_lower, near_upper) = (l.centre - near * amr, l.centre + near * amr);
    let m = y.len();
    let outside: Vec<bool> = y.iter().map(|&v| v > l.upper || v < l.lower).collect();
    let side: Vec<i8> = y.iter().map(|&v| sign(v - l.centre)).collect();
    let close: Vec<bool> = (0..m)
        .map(|i| !outside[i] && (y[i] < near_lower || y[i] > near_upper))
        .collect();
    // Shift: the 7th of 7 on one side of the mean.
    let shift_ends: Vec<i8> = (0..m)
        .map(|i| i8::from(i >= 6 && side[i] != 0 && (1..=6).all(|k| side[i - k] == side[i])))
        .collect();
    // Trend: the 7th of 7 each higher (1) or each lower (-1) than the one before.
    let trend_ends: Vec<i8> = (0..m)
        .map(|i| {
            if i < 6 {
                return 0;
            }
            let steps: Vec<i8> = (0..6).map(|k| sign(y[i - k] - y[i - k - 1])).collect();
            if steps.iter().all(|&s| s == 1) {
                1
            } else if steps.iter().all(|&s| s == -1) {
                -1
            } else {
                0
            }
        })
        .collect();
    let shift = part_of_seven(&shift_ends);
    let trend = part_of_seven(&trend_ends);
    // Two of three: a window of 3 wholly on one side of the mean with 2 or more near a limit;
    // its near points are part of it.
    let window = |start: isize| -> bool {
        if start < 0 || start as usize + 3 > m {
            return false;
        }
        let s = start as usize;
        let near_count = (s..s + 3).filter(|&j| close[j]).count();
        let sides: i32 = (s..s + 3).map(|j| i32::from(side[j])).sum();
        near_count >= 2 && sides.abs() == 3
    };
    let two_of_three: Vec<bool> = (0..m)
        .map(|i| close[i] && (0..3).any(|back| window(i as isize - back)))
        .collect();
    (0..m)
        .map(|i| {
            // The side the special cause lies on: a trend's by its direction (the step to the
            // next point when that point is part of the trend too, else the step to this one).
            let (signal, direction) = if outside[i] {
                (Signal::Outside, if side[i] == 1 { 1 } else { -1 })
            } else if trend[i] {
                let step = if i + 1 < m && trend[i + 1] {
                    sign(y[i + 1] - y[i])
                } else if i > 0 {
                    sign(y[i] - y[i - 1])
                } else {
                    0
                };
                (Signal::Trend, if step == 1 { 1 } else { -1 })
            } else if two_of_three[i] {
                (Signal::TwoOfThree, if side[i] > 0 { 1 } else { -1 })
            } else if shift[i] {
                (Signal::Shift, if side[i] > 0 { 1 } else { -1 })
            } else {
                return common(y[i], Some(l));
            };
            let variation = if direction * improvement.sign() > 0 {
                Variation::Improvement
            } else {
                Variation::Concern
            };
            Point {
                value: y[i],
                limits: Some(l),
                signal,
                variation,
                phase,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(c: &Chart) -> Vec<&'static str> {
        c.points.iter().map(|p| p.signal.code()).collect()
    }

    /// Twelve points alternating about 10 (mean 10, mean moving range 2: limits 4.68 to 15.32)
    /// and then `tail`.
    fn steady(tail: &[f64]) -> Vec<f64> {
        let mut v: Vec<f64> = (0..12)
            .map(|i| if i % 2 == 0 { 9.0 } else { 11.0 })
            .collect();
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn limits_are_the_mean_and_266_mean_moving_ranges() {
        let c = xmr(&steady(&[]), Improvement::Increase, &[], None);
        let l = c.points[0].limits.unwrap();
        assert_eq!(l.centre, 10.0);
        assert!((l.upper - 15.32).abs() < 1e-12 && (l.lower - 4.68).abs() < 1e-12);
        assert!(c.points.iter().all(|p| p.signal == Signal::None));
    }

    #[test]
    fn a_point_outside_the_limits_is_special_cause_by_the_improvement_direction() {
        let mut v = steady(&[]);
        v[5] = 40.0;
        let up = xmr(&v, Improvement::Increase, &[], None);
        assert_eq!(up.points[5].signal, Signal::Outside);
        assert_eq!(up.points[5].variation, Variation::Improvement);
        let down = xmr(&v, Improvement::Decrease, &[], None);
        assert_eq!(down.points[5].variation, Variation::Concern);
        // The large moving ranges either side of it are screened out of the limits.
        let l = up.points[0].limits.unwrap();
        assert!(l.upper < 20.0, "{l:?}");
    }

    #[test]
    fn seven_on_one_side_of_the_mean_is_a_shift_and_a_point_on_the_mean_breaks_it() {
        // 12 alternating points, then 7 at 10.5: all above the new mean.
        let v: Vec<f64> = (0..14)
            .map(|i| {
                if i < 7 {
                    8.0 + (i % 2) as f64
                } else {
                    11.0 + (i % 2) as f64
                }
            })
            .collect();
        let c = xmr(&v, Improvement::Increase, &[], None);
        assert_eq!(
            signals(&c),
            [vec!["shift"; 7], vec!["shift"; 7]].concat(),
            "{c:?}"
        );
        assert_eq!(c.points[0].variation, Variation::Concern);
        assert_eq!(c.points[13].variation, Variation::Improvement);
        // Below, above, one on the mean, above, below (mean exactly 10): the point on the mean
        // breaks the run above into two runs of 6.
        let run = |middle: f64| -> Vec<f64> {
            let below = [8.0, 9.0, 8.0, 9.0, 8.0, 9.0];
            let above = [11.0, 12.0, 11.0, 12.0, 11.0, 12.0];
            [&below[..], &above, &[middle], &above, &below].concat()
        };
        let c = xmr(&run(10.0), Improvement::Increase, &[], None);
        assert_eq!(c.points[0].limits.unwrap().centre, 10.0);
        assert!(c.points.iter().all(|p| p.signal != Signal::Shift), "{c:?}");
        // The same with 11 in the middle: a run of 13 above the mean.
        let c = xmr(&run(11.0), Improvement::Increase, &[], None);
        assert_eq!(c.points[6].signal, Signal::Shift, "{c:?}");
    }

    #[test]
    fn seven_rising_in_a_row_is_a_trend_and_a_tie_breaks_it() {
        let rising = [8.0, 8.5, 9.0, 9.5, 10.0, 10.5, 11.0];
        let c = xmr(&steady(&rising), Improvement::Decrease, &[], None);
        for p in &c.points[12..] {
            assert_eq!(p.signal, Signal::Trend, "{c:?}");
            assert_eq!(p.variation, Variation::Concern);
        }
        let tied = [8.0, 8.5, 9.0, 9.0, 10.0, 10.5, 11.0];
        let c = xmr(&steady(&tied), Improvement::Decrease, &[], None);
        assert!(c.points.iter().all(|p| p.signal != Signal::Trend), "{c:?}");
    }

    #[test]
    fn two_of_three_near_a_limit_on_one_side_flags_the_near_points() {
        let c = xmr(
            &steady(&[16.0, 11.0, 16.5]),
            Improvement::Increase,
            &[],
            None,
        );
        let l = c.points[12].limits.unwrap();
        let near = l.centre + 2.0 * (l.upper - l.centre) / 3.0;
        assert!(16.0 > near && 16.5 < l.upper && 11.0 > l.centre, "{l:?}");
        assert_eq!(c.points[12].signal, Signal::TwoOfThree, "{c:?}");
        assert_eq!(c.points[13].signal, Signal::None);
        assert_eq!(c.points[14].signal, Signal::TwoOfThree);
        // Opposite sides of the mean: no signal.
        let c = xmr(
            &steady(&[16.0, 9.0, 16.5]),
            Improvement::Increase,
            &[],
            None,
        );
        assert!(c.points.iter().all(|p| p.signal == Signal::None), "{c:?}");
    }

    #[test]
    fn a_change_starts_a_phase_with_its_own_limits_and_a_short_phase_has_none() {
        let mut v = steady(&[]);
        v.extend(steady(&[]).iter().map(|x| x + 20.0));
        let c = xmr(&v, Improvement::Increase, &[12], None);
        assert_eq!(c.points[0].limits.unwrap().centre, 10.0);
        assert_eq!(c.points[12].limits.unwrap().centre, 30.0);
        assert_eq!(c.points[12].phase, 1);
        assert!(c.points.iter().all(|p| p.signal == Signal::None));
        // Eleven points since the change: too few for limits.
        let c = xmr(&v[..23], Improvement::Increase, &[12], Some(25.0));
        assert!(c.points[12..].iter().all(|p| p.limits.is_none()));
        assert_eq!(c.assurance, None);
        assert!(xmr(&v[..11], Improvement::Increase, &[], None).points[0]
            .limits
            .is_none());
    }

    #[test]
    fn a_target_outside_the_limits_is_consistently_met_or_missed() {
        let v = steady(&[]);
        let read = |t, i| xmr(&v, i, &[], Some(t)).assurance;
        assert_eq!(
            read(20.0, Improvement::Increase),
            Some(Assurance::ConsistentFail)
        );
        assert_eq!(
            read(2.0, Improvement::Increase),
            Some(Assurance::ConsistentPass)
        );
        assert_eq!(
            read(20.0, Improvement::Decrease),
            Some(Assurance::ConsistentPass)
        );
        assert_eq!(
            read(10.0, Improvement::Decrease),
            Some(Assurance::Inconsistent)
        );
    }

    #[test]
    fn a_constant_series_is_all_common_cause() {
        let c = xmr(&[5.0; 15], Improvement::Increase, &[], None);
        assert!(c.points.iter().all(|p| p.signal == Signal::None));
        assert_eq!(c.points[0].limits.unwrap().upper, 5.0);
    }
}
