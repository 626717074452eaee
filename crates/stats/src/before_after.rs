//! Did a service change make a difference? Uptake before and after it, over equal windows on
//! either side, overall and by each grouping (sex, age band, ethnic group, deprivation, priority
//! group), each difference with Newcombe's 95% interval; and the slope index of inequality
//! across deprivation quintiles before and after, so "did the gap close?" has one answer.

use crate::summary::newcombe;
use crate::Z95;
use crest_core::{Date, Period};
use std::collections::BTreeMap;

/// The windows compared: `months` months before the change and as many after it, cut to the
/// months the data cover after it (so both windows stay equal). `None` when the change is not
/// inside the data.
pub fn windows(change: Date, months: u32, data_end: Date) -> Option<(Period, Period)> {
    let shift = |d: Date, by: i32| {
        let (y, m, day) = d.ymd();
        let index = y * 12 + m as i32 - 1 + by;
        let (y, m) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
        Date::from_ymd(y, m, day.min(crest_core::date::days_in_month(y, m)))
    };
    if data_end < change {
        return None;
    }
    // Whole months after the change that the data cover, at most `months`.
    let mut n = months as i32;
    while n > 0 && shift(change, n)?.add_days(-1) > data_end {
        n -= 1;
    }
    if n == 0 {
        return None;
    }
    Some((
        Period {
            from: shift(change, -n)?,
            to: change.add_days(-1),
        },
        Period {
            from: change,
            to: shift(change, n)?.add_days(-1),
        },
    ))
}

/// Windows of whole calendar quarters (the published grid): up to `quarters` quarters before
/// the quarter a change falls in and as many from the next (from its own quarter when it takes
/// effect on the quarter's first day), both within `data` and of equal length. `None` when not
/// one whole quarter fits on each side.
pub fn quarter_windows(change: Date, quarters: u32, data: Period) -> Option<(Period, Period)> {
    use crest_core::expected::Quarter;
    let q0 = Quarter::of(change);
    let first_after = if change == q0.first_day() {
        q0
    } else {
        q0.next()
    };
    let previous = |q: Quarter| Quarter::of(q.first_day().add_days(-1));
    let last_before = previous(q0);
    let mut n = 0;
    let (mut a, mut b) = (first_after, last_before);
    while n < quarters && a.last_day() <= data.to && b.first_day() >= data.from {
        n += 1;
        a = a.next();
        b = previous(b);
    }
    (n > 0).then(|| {
        let before_from = b.next().first_day();
        (
            Period {
                from: before_from,
                to: last_before.last_day(),
            },
            Period {
                from: first_after.first_day(),
                to: previous(a).last_day(),
            },
        )
    })
}

/// One line of the comparison: a group's uptake (started, referred) before and after, and the
/// difference (after − before) with its 95% interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The grouping ("all" for everyone).
    pub grouping: String,
    /// The group.
    pub group: String,
    /// Started and referred before.
    pub before: (u64, u64),
    /// Started and referred after.
    pub after: (u64, u64),
    /// After − before, with Newcombe's 95% interval; none without referrals on a side.
    pub difference: Option<(f64, f64, f64)>,
}

/// A before/after comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The window before the change.
    pub before: Period,
    /// The window after it (as long as the one before).
    pub after: Period,
    /// Everyone first, then each grouping's groups.
    pub rows: Vec<Row>,
    /// The slope index of inequality across deprivation quintiles before and after (uptake in
    /// the least deprived minus the most deprived, modelled).
    pub slope_index: (Option<f64>, Option<f64>),
}

/// One referral: when, whether core CR started, and its group in each grouping.
pub struct Referral<'a> {
    /// The referral date.
    pub referred: Date,
    /// Whether core CR started.
    pub started: bool,
    /// Its group in each of the groupings, in their order.
    pub groups: &'a [String],
}

/// Compares uptake in `before` and `after`. `groupings` name the groupings of each referral's
/// groups; `quintiles` is the index of the deprivation grouping, whose groups `1`–`5` give the
/// slope index.
pub fn compare<'a>(
    referrals: impl IntoIterator<Item = Referral<'a>>,
    groupings: &[&str],
    quintiles: Option<usize>,
    (before, after): (Period, Period),
) -> Comparison {
    let mut counts = Counts::new();
    for r in referrals {
        let side = if before.contains(r.referred) {
            0
        } else if after.contains(r.referred) {
            1
        } else {
            continue;
        };
        let mut add = |key: (Option<usize>, String)| {
            let slot = &mut counts.entry(key).or_default()[side];
            slot.0 += u64::from(r.started);
            slot.1 += 1;
        };
        add((None, "all".into()));
        for (i, g) in r.groups.iter().enumerate().take(groupings.len()) {
            add((Some(i), g.clone()));
        }
    }
    from_counts(&counts, groupings, quintiles, (before, after))
}

/// Started and referred before and after, by (grouping index, or none for everyone; group).
pub type Counts = BTreeMap<(Option<usize>, String), [(u64, u64); 2]>;

/// The comparison of counts already made (published counts summed over whole quarters, say):
/// as [`compare`] from there on.
pub fn from_counts(
    counts: &Counts,
    groupings: &[&str],
    quintiles: Option<usize>,
    (before, after): (Period, Period),
) -> Comparison {
    let rows = counts
        .iter()
        .map(|((i, group), [b, a])| Row {
            grouping: i.map_or("all", |i| groupings[i]).to_string(),
            group: group.clone(),
            before: *b,
            after: *a,
            difference: newcombe(a.0, a.1, b.0, b.1, Z95),
        })
        .collect();
    let slope = |side: usize| {
        let q = quintiles?;
        let mut by = [(0u64, 0u64); 5];
        for ((i, g), sides) in counts {
            if *i == Some(q) {
                if let Some(n) = g.parse::<usize>().ok().filter(|n| (1..=5).contains(n)) {
                    by[n - 1] = sides[side];
                }
            }
        }
        crate::funnel::slope_index(&by)
    };
    Comparison {
        before,
        after,
        rows,
        slope_index: (slope(0), slope(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> Date {
        Date::from_ymd(y, m, day).unwrap()
    }

    #[test]
    fn quarter_windows_are_whole_quarters_either_side() {
        let data = Period {
            from: d(2023, 4, 1),
            to: d(2025, 3, 31),
        };
        // Mid-quarter: its quarter is in neither window; two whole quarters after, two before.
        let (b, a) = quarter_windows(d(2024, 8, 15), 4, data).unwrap();
        assert_eq!((b.from, b.to), (d(2024, 1, 1), d(2024, 6, 30)));
        assert_eq!((a.from, a.to), (d(2024, 10, 1), d(2025, 3, 31)));
        // Four before where the data allow.
        let (b, a) = quarter_windows(d(2024, 2, 10), 4, data).unwrap();
        assert_eq!((b.from, b.to), (d(2023, 4, 1), d(2023, 12, 31)));
        assert_eq!((a.from, a.to), (d(2024, 4, 1), d(2024, 12, 31)));
        // On the quarter's first day: it starts the after window.
        let (b, a) = quarter_windows(d(2024, 10, 1), 4, data).unwrap();
        assert_eq!(
            (b.from, b.to, a.from, a.to),
            (
                d(2024, 4, 1),
                d(2024, 9, 30),
                d(2024, 10, 1),
                d(2025, 3, 31)
            )
        );
        assert_eq!(quarter_windows(d(2025, 2, 1), 4, data), None);
        assert_eq!(quarter_windows(d(2023, 5, 1), 4, data), None);
    }

    #[test]
    fn windows_are_equal_and_cut_to_the_data() {
        let (b, a) = windows(d(2024, 10, 1), 12, d(2026, 1, 1)).unwrap();
        assert_eq!((b.from, b.to), (d(2023, 10, 1), d(2024, 9, 30)));
        assert_eq!((a.from, a.to), (d(2024, 10, 1), d(2025, 9, 30)));
        // Data to the end of March 2025: six whole months after, six before.
        let (b, a) = windows(d(2024, 10, 1), 12, d(2025, 3, 31)).unwrap();
        assert_eq!((b.from, a.to), (d(2024, 4, 1), d(2025, 3, 31)));
        assert_eq!(windows(d(2025, 3, 15), 12, d(2025, 3, 31)), None);
        assert_eq!(windows(d(2025, 5, 1), 12, d(2025, 3, 31)), None);
        // The 31st, shifted into a shorter month, keeps within it.
        let (b, _) = windows(d(2024, 3, 31), 1, d(2025, 1, 1)).unwrap();
        assert_eq!(b.from, d(2024, 2, 29));
    }

    #[test]
    fn uptake_before_and_after_by_group_with_the_gap() {
        let (b, a) = windows(d(2024, 4, 1), 12, d(2025, 3, 31)).unwrap();
        let groups: Vec<Vec<String>> = ["1", "5"].iter().map(|q| vec![q.to_string()]).collect();
        // Before: quintile 1 2 of 10 started, quintile 5 6 of 10; after: 5 of 10 and 6 of 10.
        let mut referrals = Vec::new();
        for (date, q, started) in [
            (d(2023, 6, 1), 0, 2),
            (d(2023, 6, 1), 1, 6),
            (d(2024, 6, 1), 0, 5),
            (d(2024, 6, 1), 1, 6),
        ] {
            for i in 0..10 {
                referrals.push(Referral {
                    referred: date,
                    started: i < started,
                    groups: &groups[q],
                });
            }
        }
        // Outside both windows: ignored.
        referrals.push(Referral {
            referred: d(2022, 1, 1),
            started: true,
            groups: &groups[0],
        });
        let c = compare(referrals, &["deprivation"], Some(0), (b, a));
        assert_eq!(c.rows[0].group, "all");
        assert_eq!((c.rows[0].before, c.rows[0].after), ((8, 20), (11, 20)));
        let q1 = &c.rows[1];
        assert_eq!(
            (q1.grouping.as_str(), q1.group.as_str()),
            ("deprivation", "1")
        );
        let (diff, lo, hi) = q1.difference.unwrap();
        assert!((diff - 0.3).abs() < 1e-12 && lo < diff && diff < hi);
        // The gap closed: the slope index fell from 40 to 10 points (quintiles 1 and 5 only).
        let (before, after) = c.slope_index;
        assert!(before.unwrap() > after.unwrap(), "{:?}", c.slope_index);
    }
}
