//! The measures month by month, for SPC charts: uptake, completion and the two assessments by
//! month of referral, the median wait from referral to the start of core CR by month of start,
//! and referrals per month. Each month's figures come from the same definitions as the KPIs
//! ([`crate::kpis::pooled`]).

use crate::kpis::pooled;
use crate::spc::{self, Chart, Improvement};
use crest_core::date::MONTHS;
use crest_core::{Date, KpiEpisode};
use std::collections::BTreeMap;

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// The year.
    pub year: i32,
    /// The month, 1 to 12.
    pub month: u32,
}

impl Month {
    /// The month a date falls in.
    pub fn of(d: Date) -> Month {
        let (year, month, _) = d.ymd();
        Month { year, month }
    }

    /// A month written `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.trim().split_once('-')?;
        let (year, month) = (y.parse().ok()?, m.parse().ok()?);
        (y.len() == 4 && m.len() == 2 && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    /// Its first day.
    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year, self.month, 1).unwrap_or_else(|| Date::from_days(0))
    }

    /// Its last day.
    pub fn last_day(self) -> Date {
        self.next().first_day().add_days(-1)
    }

    /// The month after it.
    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                month: self.month + 1,
                ..self
            }
        }
    }

    /// The month `n` months before it.
    pub fn back(self, n: u32) -> Month {
        let index = self.year * 12 + self.month as i32 - 1 - n as i32;
        Month {
            year: index.div_euclid(12),
            month: index.rem_euclid(12) as u32 + 1,
        }
    }

    /// Every month from this one to `to`, both included.
    pub fn through(self, to: Month) -> impl Iterator<Item = Month> {
        std::iter::successors(Some(self), |m| Some(m.next())).take_while(move |m| *m <= to)
    }

    /// Short words for a chart's axis: "Apr 2025".
    pub fn short(self) -> String {
        format!("{} {}", &MONTHS[(self.month - 1) as usize][..3], self.year)
    }

    /// Words: "April 2025".
    pub fn long(self) -> String {
        format!("{} {}", MONTHS[(self.month - 1) as usize], self.year)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// What a measure counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A proportion of a denominator.
    Proportion,
    /// Days (a median).
    Days,
    /// A count of patients.
    Count,
}

/// A measure charted over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Started core CR / referred, by month of referral.
    Uptake,
    /// Median days from referral to the start of core CR, by month of start.
    Wait,
    /// Assessment 1 recorded / started, by month of referral.
    Assessment1,
    /// Assessment 2 within 140 days of assessment 1 / completed with assessment 1, by month of
    /// referral.
    Assessment2,
    /// Completed / started, by month of referral.
    Completion,
    /// Patients referred, by month of referral.
    Referrals,
}

impl Measure {
    /// Every measure, in the order pages show them.
    pub const ALL: [Measure; 6] = [
        Measure::Uptake,
        Measure::Wait,
        Measure::Assessment1,
        Measure::Assessment2,
        Measure::Completion,
        Measure::Referrals,
    ];

    /// The code on the command line, in files and the API.
    pub fn code(self) -> &'static str {
        match self {
            Measure::Uptake => "uptake",
            Measure::Wait => "wait",
            Measure::Assessment1 => "assessment1",
            Measure::Assessment2 => "assessment2",
            Measure::Completion => "completion",
            Measure::Referrals => "referrals",
        }
    }

    /// The measure for a code.
    pub fn parse(s: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.code() == s.trim())
    }

    /// Its name for people.
    pub fn label(self) -> &'static str {
        match self {
            Measure::Uptake => "Uptake (started / referred)",
            Measure::Wait => "Median wait from referral to start (days)",
            Measure::Assessment1 => "Assessment 1 recorded",
            Measure::Assessment2 => "Assessment 2 within 140 days",
            Measure::Completion => "Completion (completed / started)",
            Measure::Referrals => "Referrals",
        }
    }

    /// Which month a patient counts in, in words.
    pub fn by(self) -> &'static str {
        match self {
            Measure::Wait => "by month of start",
            _ => "by month of referral",
        }
    }

    /// Which way is better.
    pub fn improvement(self) -> Improvement {
        match self {
            Measure::Wait => Improvement::Decrease,
            _ => Improvement::Increase,
        }
    }

    /// What it counts.
    pub fn unit(self) -> Unit {
        match self {
            Measure::Wait => Unit::Days,
            Measure::Referrals => Unit::Count,
            _ => Unit::Proportion,
        }
    }

    /// The month an episode counts in, if it counts at all.
    fn month_of(self, e: &KpiEpisode) -> Option<Month> {
        match self {
            Measure::Wait => e.core_start.map(Month::of),
            _ => Some(Month::of(e.referral_date)),
        }
    }
}

/// One month of a measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MonthValue {
    /// The month.
    pub month: Month,
    /// A proportion's numerator, or the count of referrals.
    pub numerator: Option<u64>,
    /// A proportion's denominator, or the patients a median is of.
    pub denominator: Option<u64>,
    /// The value (none when the month has no one to measure).
    pub value: Option<f64>,
}

/// `measure` for each month from `from` to `to`, over `episodes` pooled.
pub fn monthly(
    measure: Measure,
    episodes: &[KpiEpisode],
    from: Month,
    to: Month,
) -> Vec<MonthValue> {
    let mut by_month: BTreeMap<Month, Vec<&KpiEpisode>> = BTreeMap::new();
    for e in episodes {
        if let Some(m) = measure.month_of(e).filter(|m| *m >= from && *m <= to) {
            by_month.entry(m).or_default().push(e);
        }
    }
    // Referrals are counted from the first month anyone was referred to the last: the months
    // before and after are outside the data (not yet entered, or still to come), not months
    // without referrals.
    let first = by_month.keys().next().copied();
    let last = by_month.keys().next_back().copied();
    from.through(to)
        .map(|month| {
            let these = by_month.get(&month).map_or(&[][..], Vec::as_slice);
            match measure {
                Measure::Referrals => MonthValue {
                    month,
                    numerator: Some(these.len() as u64),
                    denominator: None,
                    value: (first.is_some_and(|f| month >= f) && last.is_some_and(|l| month <= l))
                        .then_some(these.len() as f64),
                },
                Measure::Wait => {
                    let mut waits: Vec<f64> = these
                        .iter()
                        .filter_map(|e| {
                            e.core_start
                                .map(|s| f64::from(s.days_since(e.referral_date)))
                        })
                        .collect();
                    MonthValue {
                        month,
                        numerator: None,
                        denominator: Some(waits.len() as u64),
                        value: crate::summary::Summary::of(&mut waits).median,
                    }
                }
                _ => {
                    let (n, d) = pooled(these.iter().copied()).proportion(measure.code());
                    MonthValue {
                        month,
                        numerator: Some(n),
                        denominator: Some(d),
                        value: (d > 0).then(|| n as f64 / d as f64),
                    }
                }
            }
        })
        .collect()
}

/// `measure` month by month as published (to commissioners): the value only, never the
/// month's counts (months are not on the published grid of counts), from counts rounded to
/// the nearest 5 (a median as it is). A month whose numerator or denominator is 1 to 7 is not
/// drawn, and nor is any other month of its quarter: with the quarter's published total, the
/// other months' values would narrow the hidden one down. Returns the months and those not
/// drawn; `None` for referrals, whose monthly counts are not published.
pub fn published(
    measure: Measure,
    episodes: &[KpiEpisode],
    from: Month,
    to: Month,
) -> Option<(Vec<MonthValue>, Vec<Month>)> {
    use crate::disclosure::{count, percentage_of, Percentage};
    if measure == Measure::Referrals {
        return None;
    }
    let exact = monthly(measure, episodes, from, to);
    let small = |n: Option<u64>| n.is_some_and(|n| (1..=7).contains(&n));
    let quarter = |m: Month| (m.year, (m.month - 1) / 3);
    let hidden_quarters: std::collections::BTreeSet<(i32, u32)> = exact
        .iter()
        .filter(|m| small(m.numerator) || small(m.denominator))
        .map(|m| quarter(m.month))
        .collect();
    let mut hidden = Vec::new();
    let months = exact
        .into_iter()
        .map(|m| {
            let value = if hidden_quarters.contains(&quarter(m.month)) {
                hidden.push(m.month);
                None
            } else if measure == Measure::Wait {
                m.value
            } else {
                match percentage_of(
                    count(m.numerator.unwrap_or(0)),
                    count(m.denominator.unwrap_or(0)),
                ) {
                    Percentage::Value(p) => Some(p / 100.0),
                    _ => None,
                }
            };
            MonthValue {
                month: m.month,
                numerator: None,
                denominator: None,
                value,
            }
        })
        .collect();
    Some((months, hidden))
}

/// A month of an SPC chart: its figures and, when it has a value, its point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpcMonth {
    /// The month's figures.
    pub figures: MonthValue,
    /// Its point on the chart (none for a month without a value).
    pub point: Option<spc::Point>,
}

/// The columns of a chart's months in files (CSV, XLSX, JSON), in order.
pub const COLUMNS: [&str; 9] = [
    "month",
    "numerator",
    "denominator",
    "value",
    "centre",
    "lower",
    "upper",
    "signal",
    "variation",
];

impl SpcMonth {
    /// The month as a JSON object with [`COLUMNS`] as keys: counts as whole numbers, values
    /// and limits as numbers, codes as text, null where the month has none.
    pub fn json(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        let limits = self.point.and_then(|p| p.limits);
        let number = |x: Option<f64>| x.map_or(Value::Null, |v| json!(v));
        let values = [
            json!(self.figures.month.to_string()),
            json!(self.figures.numerator),
            json!(self.figures.denominator),
            number(self.figures.value),
            number(limits.map(|l| l.centre)),
            number(limits.map(|l| l.lower)),
            number(limits.map(|l| l.upper)),
            json!(self.point.map(|p| p.signal.code())),
            json!(self.point.map(|p| p.variation.code())),
        ];
        Value::Object(
            COLUMNS
                .iter()
                .zip(values)
                .map(|(c, v)| (c.to_string(), v))
                .collect(),
        )
    }

    /// The month's exact values in [`COLUMNS`] order (empty where it has none).
    pub fn cells(&self) -> [String; 9] {
        let number = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
        let count = |x: Option<u64>| x.map_or(String::new(), |v| v.to_string());
        let limits = self.point.and_then(|p| p.limits);
        [
            self.figures.month.to_string(),
            count(self.figures.numerator),
            count(self.figures.denominator),
            number(self.figures.value),
            number(limits.map(|l| l.centre)),
            number(limits.map(|l| l.lower)),
            number(limits.map(|l| l.upper)),
            self.point.map_or("", |p| p.signal.code()).to_string(),
            self.point.map_or("", |p| p.variation.code()).to_string(),
        ]
    }
}

/// The SPC chart of `measure` from `from` to `to`: every month with its point, and the chart.
/// Months without a value are not points (the chart joins the months either side). Each date
/// in `changes` starts a new phase from the first point in or after its month.
pub fn spc_chart(
    measure: Measure,
    episodes: &[KpiEpisode],
    (from, to): (Month, Month),
    changes: &[Date],
    target: Option<f64>,
) -> (Vec<SpcMonth>, Chart) {
    chart_of(
        measure,
        monthly(measure, episodes, from, to),
        changes,
        target,
    )
}

/// The SPC chart of months already counted (a published series, say): as [`spc_chart`], the
/// months without a value left out of the points and the limits.
pub fn chart_of(
    measure: Measure,
    months: Vec<MonthValue>,
    changes: &[Date],
    target: Option<f64>,
) -> (Vec<SpcMonth>, Chart) {
    let drawn: Vec<(Month, f64)> = months
        .iter()
        .filter_map(|m| m.value.map(|v| (m.month, v)))
        .collect();
    let starts: Vec<usize> = changes
        .iter()
        .filter_map(|d| drawn.iter().position(|(m, _)| *m >= Month::of(*d)))
        .collect();
    let values: Vec<f64> = drawn.iter().map(|d| d.1).collect();
    let chart = spc::xmr(&values, measure.improvement(), &starts, target);
    let mut points = chart.points.iter();
    let rows = months
        .into_iter()
        .map(|figures| SpcMonth {
            point: figures.value.and_then(|_| points.next().copied()),
            figures,
        })
        .collect();
    (rows, chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crest_core::PriorityGroup;

    fn d(y: i32, m: u32, day: u32) -> Date {
        Date::from_ymd(y, m, day).unwrap()
    }

    fn episode(referred: Date, start: Option<Date>) -> KpiEpisode {
        KpiEpisode {
            programme: 0,
            referral_date: referred,
            core_start: start,
            core_end: None,
            assessment1: start,
            assessment2: None,
            completed: false,
            group: PriorityGroup::MiPci,
        }
    }

    #[test]
    fn published_months_hide_small_counts_with_their_whole_quarter_and_no_counts() {
        // April 2024: 23 referred, 11 started (published 25 and 10: 40%); May: 20 referred,
        // 5 started (hidden, so April and June too); July: 12 referred, 12 started.
        let mut eps = Vec::new();
        for i in 0..23 {
            eps.push(episode(d(2024, 4, 2), (i < 11).then(|| d(2024, 5, 1))));
        }
        for i in 0..20 {
            eps.push(episode(d(2024, 5, 2), (i < 5).then(|| d(2024, 6, 1))));
        }
        for _ in 0..12 {
            eps.push(episode(d(2024, 7, 2), Some(d(2024, 8, 1))));
        }
        let from = Month::parse("2024-04").unwrap();
        let to = Month::parse("2024-09").unwrap();
        let (months, hidden) = published(Measure::Uptake, &eps, from, to).unwrap();
        let names: Vec<String> = hidden.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, ["2024-04", "2024-05", "2024-06"]);
        assert_eq!(
            months[3].value,
            Some(1.0),
            "10 of 10 from the rounded counts"
        );
        assert!(months[..3].iter().all(|m| m.value.is_none()));
        assert_eq!(months[4].value, None, "August: no one referred");
        assert!(months
            .iter()
            .all(|m| m.numerator.is_none() && m.denominator.is_none()));
        // Without May's small count, April is drawn from its rounded counts: 10 of 25.
        let eps: Vec<KpiEpisode> = eps
            .into_iter()
            .filter(|e| e.referral_date.ymd().1 != 5)
            .collect();
        let (months, hidden) = published(Measure::Uptake, &eps, from, to).unwrap();
        assert!(hidden.is_empty());
        assert_eq!(months[0].value, Some(0.4));
        assert!(published(Measure::Referrals, &eps, from, to).is_none());
    }

    #[test]
    fn months_parse_print_and_count_back_across_years() {
        let m = Month::parse("2025-01").unwrap();
        assert_eq!(m.to_string(), "2025-01");
        assert_eq!(m.back(1).to_string(), "2024-12");
        assert_eq!(m.back(24).to_string(), "2023-01");
        assert_eq!(m.last_day(), d(2025, 1, 31));
        assert_eq!(Month::parse("2024-02").unwrap().last_day(), d(2024, 2, 29));
        assert_eq!(m.back(2).through(m).count(), 3);
        assert!(Month::parse("2025-13").is_none() && Month::parse("25-01").is_none());
        assert_eq!(m.long(), "January 2025");
    }

    #[test]
    fn uptake_counts_by_referral_month_and_waits_by_start_month() {
        // January: 3 referred, 2 started (one in February, 40 days on); February: 1 referred,
        // none started; March: nobody.
        let facts = [
            episode(d(2025, 1, 5), Some(d(2025, 1, 25))),
            episode(d(2025, 1, 10), Some(d(2025, 2, 19))),
            episode(d(2025, 1, 20), None),
            episode(d(2025, 2, 1), None),
        ];
        let (jan, mar) = (
            Month::parse("2025-01").unwrap(),
            Month::parse("2025-03").unwrap(),
        );
        let uptake = monthly(Measure::Uptake, &facts, jan, mar);
        assert_eq!(
            uptake
                .iter()
                .map(|m| (m.numerator, m.denominator))
                .collect::<Vec<_>>(),
            [(Some(2), Some(3)), (Some(0), Some(1)), (Some(0), Some(0))]
        );
        assert_eq!(uptake[2].value, None);
        let waits = monthly(Measure::Wait, &facts, jan, mar);
        assert_eq!(waits[0].value, Some(20.0));
        assert_eq!(waits[1].value, Some(40.0));
        assert_eq!(waits[1].denominator, Some(1));
        let referrals = monthly(Measure::Referrals, &facts, jan.back(1), mar.next());
        assert_eq!(referrals[0].value, None, "before the first referral");
        assert_eq!(referrals[2].value, Some(1.0), "February");
        assert_eq!(referrals[3].value, None, "after the last referral");
        let gap = [episode(d(2025, 1, 5), None), episode(d(2025, 3, 5), None)];
        let referrals = monthly(Measure::Referrals, &gap, jan, mar);
        assert_eq!(
            referrals[1].value,
            Some(0.0),
            "a month without referrals between two with"
        );
        // A month without a value is not a point; a change starts a phase at its month.
        let (rows, chart) = spc_chart(Measure::Uptake, &facts, (jan, mar), &[d(2025, 2, 14)], None);
        assert_eq!(chart.points.len(), 2);
        assert_eq!(chart.points[1].phase, 1);
        assert!(rows[2].point.is_none());
    }
}
