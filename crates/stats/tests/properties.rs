//! Properties of disclosure control that hold for every count, not only the hand-worked ones.
#![allow(clippy::unwrap_used)]

use crest_stats::disclosure::{count, total, Cell};
use crest_stats::published::possible;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every published count is 0, `*` (for 1–7 people) or a multiple of 5 of at least 10,
    /// within 2 of the truth, and the truth is among the values the published cell allows.
    #[test]
    fn every_published_count_is_0_star_or_a_multiple_of_5(n in 0u64..10_000_000) {
        let c = count(n);
        match c {
            Cell::Count(0) => prop_assert_eq!(n, 0),
            Cell::Suppressed => prop_assert!((1..=7).contains(&n)),
            Cell::Count(m) => {
                prop_assert!(m % 5 == 0 && m >= 10 && m.abs_diff(n) <= 2, "{n} -> {m}");
            }
        }
        let (lo, hi) = possible(c);
        prop_assert!(lo <= n && n <= hi, "{n} published as {c} allows {lo}..={hi}");
        prop_assert!(matches!(c.to_string().as_str(), "*") || c.to_string().parse::<u64>().is_ok());
    }

    /// Disclosure control applied to what it published changes nothing.
    #[test]
    fn disclosure_control_applied_twice_changes_nothing(n in 0u64..10_000_000) {
        if let Cell::Count(m) = count(n) {
            prop_assert_eq!(count(m), Cell::Count(m));
        }
    }

    /// A total is published from the exact sum of its parts, never from rounded cells.
    #[test]
    fn totals_come_from_the_exact_sum(parts in proptest::collection::vec(0u64..50, 0..12)) {
        prop_assert_eq!(total(&parts), count(parts.iter().sum()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The KPIs' medians and quartiles from counts per day are exactly those of the sorted
    /// values, however the values fall and however the counts are split and merged.
    #[test]
    fn day_counts_summarise_exactly_as_sorting(values in proptest::collection::vec(-400i32..2_000, 0..300), split in 0usize..300) {
        use crest_stats::summary::{DayCounts, Summary};
        let split = split.min(values.len());
        let (mut left, mut right) = (DayCounts::default(), DayCounts::default());
        values[..split].iter().for_each(|d| left.add(*d));
        values[split..].iter().for_each(|d| right.add(*d));
        left.merge(&right);
        let mut sorted: Vec<f64> = values.iter().map(|d| f64::from(*d)).collect();
        prop_assert_eq!(left.summary(), Summary::of(&mut sorted));
    }
}
