//! Disclosure control (privacy.md): the one function every published output passes through.
//! A count of 0 stays 0; 1–7 becomes `*`; any other count is rounded to the nearest 5.
//! Totals are rounded from the exact sum, percentages are computed from the rounded counts
//! (and are `*` when either count is), and a statistic based on 1–7 people is `*`.

use std::fmt;

/// A published count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// 0, or a multiple of 5 of at least 10.
    Count(u64),
    /// 1–7 people: not published.
    Suppressed,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Count(n) => write!(f, "{n}"),
            Cell::Suppressed => f.write_str("*"),
        }
    }
}

/// The smallest count published as it is (rounded); below it, down to 1, is suppressed.
pub const SMALLEST_PUBLISHED: u64 = 8;

/// A count as published.
pub fn count(n: u64) -> Cell {
    match n {
        0 => Cell::Count(0),
        1..=7 => Cell::Suppressed,
        // Nearest multiple of 5 (no ties are possible for whole numbers).
        _ => Cell::Count((n + 2) / 5 * 5),
    }
}

/// A total, published from the exact sum of its parts (never from rounded cells).
pub fn total(parts: &[u64]) -> Cell {
    count(parts.iter().sum())
}

/// A published percentage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Percentage {
    /// 0–100, from the rounded counts.
    Value(f64),
    /// Either count is suppressed.
    Suppressed,
    /// The denominator is 0.
    NotApplicable,
}

impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Percentage::Value(p) => write!(f, "{p:.1}%"),
            Percentage::Suppressed => f.write_str("*"),
            Percentage::NotApplicable => f.write_str("–"),
        }
    }
}

/// `numerator / denominator` as published: from the rounded counts.
pub fn percentage(numerator: u64, denominator: u64) -> Percentage {
    percentage_of(count(numerator), count(denominator))
}

/// A percentage of two published cells (`*` when either is).
pub fn percentage_of(numerator: Cell, denominator: Cell) -> Percentage {
    match (numerator, denominator) {
        (_, Cell::Count(0)) => Percentage::NotApplicable,
        (Cell::Suppressed, _) | (_, Cell::Suppressed) => Percentage::Suppressed,
        (Cell::Count(k), Cell::Count(n)) => Percentage::Value(100.0 * k as f64 / n as f64),
    }
}

/// A published statistic (mean, median, interval limit) computed from `people`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Statistic {
    /// The value.
    Value(f64),
    /// Based on 1–7 people.
    Suppressed,
    /// No people, or no value.
    NotApplicable,
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::Value(v) => write!(f, "{}", crest_core::value::format_num(*v)),
            Statistic::Suppressed => f.write_str("*"),
            Statistic::NotApplicable => f.write_str("–"),
        }
    }
}

/// A statistic as published: suppressed when based on 1–7 people.
pub fn statistic(value: Option<f64>, people: u64) -> Statistic {
    match (value, people) {
        (_, 1..=7) => Statistic::Suppressed,
        (Some(v), _) if people > 0 => Statistic::Value(v),
        _ => Statistic::NotApplicable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        let got: Vec<Cell> = [0, 1, 7, 8, 12, 13].map(count).to_vec();
        assert_eq!(
            got,
            [
                Cell::Count(0),
                Cell::Suppressed,
                Cell::Suppressed,
                Cell::Count(10),
                Cell::Count(10),
                Cell::Count(15)
            ]
        );
        assert_eq!(count(17), Cell::Count(15));
        assert_eq!(count(18), Cell::Count(20));
        assert_eq!(count(1_000_002), Cell::Count(1_000_000));
        assert_eq!(format!("{} {}", count(3), count(13)), "* 15");
    }

    /// A small deterministic generator for the property tests (no extra dependency).
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *seed >> 33
    }

    #[test]
    fn no_published_cell_is_small_every_count_is_a_multiple_of_5_and_it_is_idempotent() {
        for n in 0..200_000u64 {
            match count(n) {
                Cell::Count(c) => {
                    assert!(c == 0 || (c >= 10 && c % 5 == 0), "{n} → {c}");
                    assert!(c.abs_diff(n) <= 2, "{n} → {c}: rounded to the nearest 5");
                    assert_eq!(
                        count(c),
                        Cell::Count(c),
                        "applying it twice changes nothing"
                    );
                }
                Cell::Suppressed => assert!((1..=7).contains(&n)),
            }
        }
    }

    #[test]
    fn totals_come_from_exact_sums_and_percentages_from_rounded_counts() {
        // 3 + 4 + 5 = 12 → 10, although every part alone would be suppressed.
        assert_eq!(total(&[3, 4, 5]), Cell::Count(10));
        let mut seed = 7;
        for _ in 0..10_000 {
            let parts: Vec<u64> = (0..(lcg(&mut seed) % 8))
                .map(|_| lcg(&mut seed) % 40)
                .collect();
            assert_eq!(total(&parts), count(parts.iter().sum()));
        }
        // 13 of 41 → 15 of 40 = 37.5%.
        assert_eq!(percentage(13, 41), Percentage::Value(37.5));
        assert_eq!(percentage(5, 41), Percentage::Suppressed);
        assert_eq!(percentage(13, 6), Percentage::Suppressed);
        assert_eq!(percentage(0, 41), Percentage::Value(0.0));
        assert_eq!(percentage(0, 0), Percentage::NotApplicable);
        assert_eq!(format!("{}", percentage(13, 41)), "37.5%");
    }

    #[test]
    fn statistics_on_one_to_seven_people_are_suppressed() {
        assert_eq!(statistic(Some(42.0), 7), Statistic::Suppressed);
        assert_eq!(statistic(Some(42.0), 1), Statistic::Suppressed);
        assert_eq!(statistic(Some(42.0), 8), Statistic::Value(42.0));
        assert_eq!(statistic(None, 0), Statistic::NotApplicable);
        assert_eq!(statistic(Some(1.0), 0), Statistic::NotApplicable);
        assert_eq!(format!("{}", statistic(Some(33.5), 8)), "33.5");
    }
}
