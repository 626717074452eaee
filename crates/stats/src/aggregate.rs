//! Aggregates for analysts, commissioners and researchers: counts, proportions with Wilson
//! intervals, and means and medians of a measure, broken down by up to three dimensions.
//!
//! National analysts get the exact table. Everyone else gets [`Table::published`]: every cell
//! passes through [`crate::disclosure`] independently from its exact value, and then
//! **complementary suppression** makes sure no suppressed count can be worked out by
//! differencing: for every margin another query could publish (a total over any subset of the
//! dimensions, the grand total included), a group whose exact total is published never holds
//! exactly one suppressed cell. Where that cannot be arranged the breakdown is refused.

use crate::disclosure::{self, Cell, Percentage, Statistic};
use crate::summary::{quantile, wilson};
use crest_core::{Date, PriorityGroup};
use std::collections::{BTreeMap, HashMap};

/// The most dimensions one breakdown may have.
pub const MAX_DIMENSIONS: usize = 3;

/// What a breakdown can be broken down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    /// Calendar year of referral.
    Year,
    /// Quarter of referral (`2024 Q3`).
    Quarter,
    /// Month of referral (`2024-07`).
    Month,
    /// The programme's nation.
    Nation,
    /// The programme's region.
    Region,
    /// The programme.
    Programme,
    /// Sex.
    Sex,
    /// Age band at the event (kpis.md's inequality bands).
    AgeBand,
    /// Broad ethnic group.
    Ethnicity,
    /// IMD quintile (1 = most deprived).
    ImdQuintile,
    /// Priority group.
    PriorityGroup,
    /// How core CR was delivered.
    DeliveryMode,
    /// Service line.
    Pathway,
}

impl Dimension {
    /// Every dimension, in the order forms offer them.
    pub const ALL: [Dimension; 13] = [
        Dimension::Year,
        Dimension::Quarter,
        Dimension::Month,
        Dimension::Nation,
        Dimension::Region,
        Dimension::Programme,
        Dimension::Sex,
        Dimension::AgeBand,
        Dimension::Ethnicity,
        Dimension::ImdQuintile,
        Dimension::PriorityGroup,
        Dimension::DeliveryMode,
        Dimension::Pathway,
    ];

    /// The name typed on the command line and used as a column name.
    pub fn code(self) -> &'static str {
        match self {
            Dimension::Year => "year",
            Dimension::Quarter => "quarter",
            Dimension::Month => "month",
            Dimension::Nation => "nation",
            Dimension::Region => "region",
            Dimension::Programme => "programme",
            Dimension::Sex => "sex",
            Dimension::AgeBand => "age_band",
            Dimension::Ethnicity => "ethnic_group",
            Dimension::ImdQuintile => "imd_quintile",
            Dimension::PriorityGroup => "priority_group",
            Dimension::DeliveryMode => "delivery_mode",
            Dimension::Pathway => "pathway",
        }
    }

    /// The dimension in words.
    pub fn label(self) -> &'static str {
        match self {
            Dimension::Year => "Year of referral",
            Dimension::Quarter => "Quarter of referral",
            Dimension::Month => "Month of referral",
            Dimension::Nation => "Nation",
            Dimension::Region => "Region",
            Dimension::Programme => "Programme",
            Dimension::Sex => "Sex",
            Dimension::AgeBand => "Age band",
            Dimension::Ethnicity => "Ethnic group",
            Dimension::ImdQuintile => "Deprivation quintile (1 = most deprived)",
            Dimension::PriorityGroup => "Priority group",
            Dimension::DeliveryMode => "Delivery mode",
            Dimension::Pathway => "Service line",
        }
    }

    /// Parses a dimension name (`age_band`; `age`, `ethnicity`, `imd` and `deprivation` too).
    pub fn parse(s: &str) -> Option<Dimension> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let alias = match s.as_str() {
            "age" => "age_band",
            "ethnicity" => "ethnic_group",
            "imd" | "deprivation" | "imd_quintile" => "imd_quintile",
            "group" => "priority_group",
            other => other,
        };
        Dimension::ALL.into_iter().find(|d| d.code() == alias)
    }

    /// Parses up to [`MAX_DIMENSIONS`] comma-separated names, all problems at once.
    pub fn parse_list(s: &str) -> Result<Vec<Dimension>, crest_core::Invalid> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match Dimension::parse(part) {
                Some(d) if out.contains(&d) => bad.push(format!("{part} is given twice")),
                Some(d) => out.push(d),
                None => bad.push(format!("{part} is not a breakdown")),
            }
        }
        if out.len() > MAX_DIMENSIONS {
            bad.push(format!(
                "at most {MAX_DIMENSIONS} breakdowns at once ({} given)",
                out.len()
            ));
        }
        if bad.is_empty() {
            Ok(out)
        } else {
            Err(format!(
                "{}. Breakdowns: {}",
                bad.join("; "),
                Dimension::ALL.map(Dimension::code).join(", ")
            )
            .into())
        }
    }

    /// This dimension's value for one episode.
    fn value(self, f: &Fact<'_>) -> String {
        let known = |v: Option<&str>| v.map_or("Not known".to_string(), str::to_string);
        let (y, m, _) = f.referral.ymd();
        match self {
            Dimension::Year => y.to_string(),
            Dimension::Quarter => format!("{y} Q{}", (m - 1) / 3 + 1),
            Dimension::Month => format!("{y}-{m:02}"),
            Dimension::Nation => f.nation.to_string(),
            Dimension::Region => f.region.to_string(),
            Dimension::Programme => f.programme.to_string(),
            Dimension::Sex => known(f.sex),
            Dimension::AgeBand => crest_core::age_band(f.age).to_string(),
            Dimension::Ethnicity => crest_core::ethnic_group(f.ethnicity).to_string(),
            Dimension::ImdQuintile => f.imd.map_or("Not known".into(), |q| q.to_string()),
            Dimension::PriorityGroup => f.group.label().to_string(),
            Dimension::DeliveryMode => known(f.delivery_mode),
            Dimension::Pathway => known(f.pathway),
        }
    }
}

/// What is counted or summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Episodes referred.
    Referred,
    /// Episodes that started core CR.
    Started,
    /// Episodes that completed core CR.
    Completed,
    /// Started / referred, with a Wilson interval.
    Uptake,
    /// Completed / started, with a Wilson interval.
    Completion,
    /// Days from referral to the start of core CR: mean and median.
    WaitDays,
    /// Of those who started, the share who started within 28 days of referral (42 after
    /// CABG), as kpis.md's wait standard.
    StartedInTime,
    /// A numeric field of the dataset (its name): mean and median of the episodes that have it.
    Field(&'static str),
}

/// How a measure is summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A count.
    Count,
    /// Numerator over denominator.
    Proportion,
    /// Mean and median of values.
    Values,
}

impl Measure {
    /// The fixed measures (every numeric national field is one too).
    pub const FIXED: [Measure; 7] = [
        Measure::Uptake,
        Measure::Referred,
        Measure::Started,
        Measure::Completed,
        Measure::Completion,
        Measure::WaitDays,
        Measure::StartedInTime,
    ];

    /// The name typed on the command line.
    pub fn code(self) -> &'static str {
        match self {
            Measure::Referred => "referred",
            Measure::Started => "started",
            Measure::Completed => "completed",
            Measure::Uptake => "uptake",
            Measure::Completion => "completion",
            Measure::WaitDays => "wait_days",
            Measure::StartedInTime => "started_in_time",
            Measure::Field(name) => name,
        }
    }

    /// The measure in words.
    pub fn label(self) -> String {
        match self {
            Measure::Referred => "Referred".into(),
            Measure::Started => "Started core CR".into(),
            Measure::Completed => "Completed core CR".into(),
            Measure::Uptake => "Uptake (started / referred)".into(),
            Measure::Completion => "Completion (completed / started)".into(),
            Measure::WaitDays => "Days from referral to starting core CR".into(),
            Measure::StartedInTime => "Started within 28 days of referral (42 after CABG)".into(),
            Measure::Field(name) => {
                crest_core::field_by_name(name).map_or(name.to_string(), |f| f.label.to_string())
            }
        }
    }

    /// Parses a measure: a fixed one, or a numeric national field of the dataset.
    pub fn parse(s: &str) -> Result<Measure, crest_core::Invalid> {
        let s = s.trim();
        if let Some(m) = Measure::FIXED.into_iter().find(|m| m.code() == s) {
            return Ok(m);
        }
        if let Some(f) = crest_core::field_by_name(s).filter(|f| numeric_field(f)) {
            return Ok(Measure::Field(f.name));
        }
        Err(format!(
            "{s} is not a measure. Measures: {}, or a numeric field such as a1_bmi",
            Measure::FIXED.map(Measure::code).join(", ")
        )
        .into())
    }

    /// How it is summarised.
    pub fn shape(self) -> Shape {
        match self {
            Measure::Referred | Measure::Started | Measure::Completed => Shape::Count,
            Measure::Uptake | Measure::Completion | Measure::StartedInTime => Shape::Proportion,
            Measure::WaitDays | Measure::Field(_) => Shape::Values,
        }
    }

    /// The dataset field whose values the store must give for this measure.
    pub fn field(self) -> Option<&'static str> {
        match self {
            Measure::Field(name) => Some(name),
            _ => None,
        }
    }
}

/// Whether a dataset field can be a measure: a number the national store holds.
pub fn numeric_field(f: &crest_core::Field) -> bool {
    matches!(
        f.kind,
        crest_core::Kind::Int { .. } | crest_core::Kind::Decimal { .. }
    ) && f.tier != crest_core::Tier::Local
}

/// What an aggregate needs of one national episode (borrowed from the store's row).
#[derive(Clone, Debug)]
pub struct Fact<'a> {
    /// Referral date.
    pub referral: Date,
    /// The programme's nation, in words.
    pub nation: &'a str,
    /// The programme's region.
    pub region: &'a str,
    /// The programme's code.
    pub programme: &'a str,
    /// Sex, in words.
    pub sex: Option<&'a str>,
    /// Age at the event.
    pub age: Option<i64>,
    /// NHS ethnic category letter.
    pub ethnicity: Option<&'a str>,
    /// IMD quintile.
    pub imd: Option<i64>,
    /// Priority group.
    pub group: PriorityGroup,
    /// Delivery mode, in words.
    pub delivery_mode: Option<&'a str>,
    /// Service line, in words.
    pub pathway: Option<&'a str>,
    /// Started core CR.
    pub started: bool,
    /// Completed core CR.
    pub completed: bool,
    /// Days from referral to core start.
    pub wait_days: Option<i64>,
    /// The measure field's value, when the measure is a field.
    pub value: Option<f64>,
}

#[derive(Clone, Debug, Default)]
struct Acc {
    n: u64,
    k: u64,
    values: Vec<f64>,
}

/// Builds a table one episode at a time (the store streams them).
pub struct Aggregator {
    by: Vec<Dimension>,
    measure: Measure,
    cells: HashMap<Vec<String>, Acc>,
}

impl Aggregator {
    /// A breakdown of `measure` by `by` (at most [`MAX_DIMENSIONS`]).
    pub fn new(by: &[Dimension], measure: Measure) -> Aggregator {
        Aggregator {
            by: by.iter().copied().take(MAX_DIMENSIONS).collect(),
            measure,
            cells: HashMap::new(),
        }
    }

    /// Counts one episode.
    pub fn add(&mut self, f: &Fact<'_>) {
        // Who is in the denominator (n) and the numerator (k) of each measure.
        let (inside, hit, value) = match self.measure {
            Measure::Referred => (true, false, None),
            Measure::Started => (f.started, false, None),
            Measure::Completed => (f.completed, false, None),
            Measure::Uptake => (true, f.started, None),
            Measure::Completion => (f.started, f.completed, None),
            Measure::WaitDays => {
                let v = f.wait_days.filter(|d| *d >= 0).map(|d| d as f64);
                (v.is_some(), false, v)
            }
            Measure::StartedInTime => match f.wait_days.filter(|d| *d >= 0) {
                Some(d) => {
                    let target = if f.group == PriorityGroup::Cabg {
                        42
                    } else {
                        28
                    };
                    (true, d <= target, None)
                }
                None => (false, false, None),
            },
            Measure::Field(_) => (f.value.is_some(), false, f.value),
        };
        if !inside {
            return;
        }
        let key: Vec<String> = self.by.iter().map(|d| d.value(f)).collect();
        let acc = self.cells.entry(key).or_default();
        acc.n += 1;
        acc.k += u64::from(hit);
        if let Some(v) = value {
            acc.values.push(v);
        }
    }

    /// The exact table, rows in key order.
    pub fn finish(self) -> Table {
        let rows: BTreeMap<Vec<String>, Acc> = self.cells.into_iter().collect();
        Table {
            by: self.by,
            measure: self.measure,
            rows: rows
                .into_iter()
                .map(|(keys, mut acc)| {
                    acc.values.sort_unstable_by(f64::total_cmp);
                    let mean = (!acc.values.is_empty())
                        .then(|| acc.values.iter().sum::<f64>() / acc.values.len() as f64);
                    Row {
                        keys,
                        n: acc.n,
                        k: acc.k,
                        mean,
                        median: quantile(&acc.values, 0.5),
                    }
                })
                .collect(),
        }
    }
}

/// One exact cell of a breakdown.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its value of each dimension, in the table's order.
    pub keys: Vec<String>,
    /// Episodes counted (the denominator of a proportion).
    pub n: u64,
    /// The numerator of a proportion.
    pub k: u64,
    /// Mean of the values.
    pub mean: Option<f64>,
    /// Median of the values.
    pub median: Option<f64>,
}

/// An exact breakdown.
#[derive(Clone, Debug)]
pub struct Table {
    /// Its dimensions.
    pub by: Vec<Dimension>,
    /// Its measure.
    pub measure: Measure,
    /// Its cells (combinations with no episodes are 0 and not listed).
    pub rows: Vec<Row>,
}

/// A published value of a breakdown cell.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedRow {
    /// Its value of each dimension.
    pub keys: Vec<String>,
    /// The count (denominator).
    pub n: Cell,
    /// The numerator of a proportion.
    pub k: Cell,
    /// The proportion, from the rounded counts.
    pub percent: Percentage,
    /// Its 95% Wilson interval (from the rounded counts).
    pub ci: (Statistic, Statistic),
    /// Mean.
    pub mean: Statistic,
    /// Median.
    pub median: Statistic,
}

/// Why a breakdown cannot be published.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("This breakdown would let a suppressed count (1 to 7 people) be worked out from its totals. Choose fewer or broader breakdowns, or a longer period.")]
pub struct Refused;

impl Table {
    /// The column names of [`Table::exact_rows`] and [`Table::published_rows`].
    pub fn columns(&self) -> Vec<String> {
        let mut c: Vec<String> = self.by.iter().map(|d| d.code().to_string()).collect();
        match self.measure.shape() {
            Shape::Count => c.push(self.measure.code().to_string()),
            Shape::Proportion => {
                for s in ["numerator", "denominator", "percent", "ci_low", "ci_high"] {
                    c.push(s.to_string());
                }
            }
            Shape::Values => {
                for s in ["n", "mean", "median"] {
                    c.push(s.to_string());
                }
            }
        }
        c
    }

    /// The exact table as text cells (national analysts).
    pub fn exact_rows(&self) -> Vec<Vec<String>> {
        let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
        self.rows
            .iter()
            .map(|r| {
                let mut out = r.keys.clone();
                match self.measure.shape() {
                    Shape::Count => out.push(r.n.to_string()),
                    Shape::Proportion => {
                        let ci = wilson(r.k, r.n, crate::Z95);
                        out.push(r.k.to_string());
                        out.push(r.n.to_string());
                        out.push(num((r.n > 0).then(|| 100.0 * r.k as f64 / r.n as f64)));
                        out.push(num(ci.map(|c| 100.0 * c.0)));
                        out.push(num(ci.map(|c| 100.0 * c.1)));
                    }
                    Shape::Values => {
                        out.push(r.n.to_string());
                        out.push(num(r.mean));
                        out.push(num(r.median));
                    }
                }
                out
            })
            .collect()
    }

    /// The disclosure-controlled table, or [`Refused`] when a suppressed count could be
    /// recovered from totals that other queries publish.
    pub fn published(&self) -> Result<Vec<PublishedRow>, Refused> {
        let keys: Vec<&[String]> = self.rows.iter().map(|r| r.keys.as_slice()).collect();
        let hide_n = protect(&keys, &self.rows.iter().map(|r| r.n).collect::<Vec<_>>())?;
        let hide_k = if self.measure.shape() == Shape::Proportion {
            protect(&keys, &self.rows.iter().map(|r| r.k).collect::<Vec<_>>())?
        } else {
            vec![false; self.rows.len()]
        };
        Ok(self
            .rows
            .iter()
            .zip(hide_n.iter().zip(&hide_k))
            .map(|(r, (&hn, &hk))| {
                let n = if hn {
                    Cell::Suppressed
                } else {
                    disclosure::count(r.n)
                };
                let k = if hk {
                    Cell::Suppressed
                } else {
                    disclosure::count(r.k)
                };
                let (percent, ci) = match (k, n) {
                    (_, Cell::Count(0)) => (
                        Percentage::NotApplicable,
                        (Statistic::NotApplicable, Statistic::NotApplicable),
                    ),
                    (Cell::Count(a), Cell::Count(b)) => {
                        let ci = wilson(a, b, crate::Z95).unwrap_or((0.0, 0.0));
                        (
                            Percentage::Value(100.0 * a as f64 / b as f64),
                            (
                                Statistic::Value(100.0 * ci.0),
                                Statistic::Value(100.0 * ci.1),
                            ),
                        )
                    }
                    _ => (
                        Percentage::Suppressed,
                        (Statistic::Suppressed, Statistic::Suppressed),
                    ),
                };
                let stat = |v: Option<f64>| {
                    if hn {
                        Statistic::Suppressed
                    } else {
                        disclosure::statistic(v, r.n)
                    }
                };
                PublishedRow {
                    keys: r.keys.clone(),
                    n,
                    k,
                    percent,
                    ci,
                    mean: stat(r.mean),
                    median: stat(r.median),
                }
            })
            .collect())
    }

    /// The disclosure-controlled table as text cells (`*` where suppressed).
    pub fn published_rows(&self) -> Result<Vec<Vec<String>>, Refused> {
        let stat = |s: Statistic| match s {
            Statistic::Value(v) => format!("{v:.1}"),
            Statistic::Suppressed => "*".into(),
            Statistic::NotApplicable => String::new(),
        };
        Ok(self
            .published()?
            .into_iter()
            .map(|r| {
                let mut out = r.keys.clone();
                match self.measure.shape() {
                    Shape::Count => out.push(r.n.to_string()),
                    Shape::Proportion => {
                        out.push(r.k.to_string());
                        out.push(r.n.to_string());
                        out.push(match r.percent {
                            Percentage::Value(p) => format!("{p:.1}"),
                            Percentage::Suppressed => "*".into(),
                            Percentage::NotApplicable => String::new(),
                        });
                        out.push(stat(r.ci.0));
                        out.push(stat(r.ci.1));
                    }
                    Shape::Values => {
                        out.push(r.n.to_string());
                        out.push(stat(r.mean));
                        out.push(stat(r.median));
                    }
                }
                out
            })
            .collect())
    }
}

/// Which cells must be hidden: the primary ones (1–7) and enough complementary ones that no
/// margin another query could publish (the total over any subset of the dimensions) has
/// exactly one hidden cell, which its total minus the other cells would reveal. Complements
/// are the smallest non-zero visible cells of the group, so as little as possible is lost.
fn protect(keys: &[&[String]], counts: &[u64]) -> Result<Vec<bool>, Refused> {
    let mut hidden: Vec<bool> = counts.iter().map(|&n| (1..=7).contains(&n)).collect();
    let width = keys.first().map_or(0, |k| k.len());
    // Every margin: each proper subset of the dimensions held fixed (the empty set is the
    // grand total).
    let subsets: Vec<Vec<usize>> = (0u32..(1 << width) - 1)
        .map(|mask| (0..width).filter(|i| mask & (1 << i) != 0).collect())
        .collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for fixed in &subsets {
        let mut by: BTreeMap<Vec<&str>, Vec<usize>> = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            by.entry(fixed.iter().map(|&d| k[d].as_str()).collect())
                .or_default()
                .push(i);
        }
        groups.extend(by.into_values());
    }
    loop {
        let mut changed = false;
        for g in &groups {
            let total: u64 = g.iter().map(|&i| counts[i]).sum();
            // A margin of 1–7 is itself suppressed wherever it is published.
            if (1..=7).contains(&total) {
                continue;
            }
            if g.iter().filter(|&&i| hidden[i]).count() != 1 {
                continue;
            }
            let complement = g
                .iter()
                .copied()
                .filter(|&i| !hidden[i] && counts[i] > 0)
                .min_by_key(|&i| counts[i]);
            match complement {
                Some(i) => {
                    hidden[i] = true;
                    changed = true;
                }
                None => return Err(Refused),
            }
        }
        if !changed {
            return Ok(hidden);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(sex: &'static str, age: i64, started: bool) -> Fact<'static> {
        Fact {
            referral: Date::from_ymd(2024, 5, 3).unwrap(),
            nation: "England",
            region: "London",
            programme: "P001",
            sex: Some(sex),
            age: Some(age),
            ethnicity: Some("A"),
            imd: Some(1),
            group: PriorityGroup::Mi,
            delivery_mode: None,
            pathway: None,
            started,
            completed: false,
            wait_days: Some(20),
            value: None,
        }
    }

    fn table(by: &[Dimension], measure: Measure, facts: &[Fact<'_>]) -> Table {
        let mut a = Aggregator::new(by, measure);
        for f in facts {
            a.add(f);
        }
        a.finish()
    }

    #[test]
    fn counts_uptake_and_wilson_by_hand() {
        // 20 women of 60 (12 started), 30 men of 65 (15 started).
        let mut facts = Vec::new();
        for i in 0..20 {
            facts.push(fact("Female", 60, i < 12));
        }
        for i in 0..30 {
            facts.push(fact("Male", 65, i < 15));
        }
        let t = table(&[Dimension::Sex], Measure::Uptake, &facts);
        assert_eq!(t.columns()[0], "sex");
        let exact = t.exact_rows();
        // statsmodels proportion_confint(12, 20, method="wilson") = (0.3866, 0.7812)
        assert_eq!(exact[0], ["Female", "12", "20", "60.0", "38.7", "78.1"]);
        assert_eq!(exact[1][..4], ["Male", "15", "30", "50.0"]);
        let published = t.published_rows().unwrap();
        // Rounded: 12 -> 10, 20 -> 20 (50.0%); 15 -> 15, 30 -> 30.
        assert_eq!(published[0][..4], ["Female", "10", "20", "50.0"]);
    }

    #[test]
    fn a_lone_small_cell_gets_a_complement_so_the_total_does_not_reveal_it() {
        // Female 3 (primary), Male 40, Not known 12: the total 55 is published by the
        // breakdown with no dimension, so one more cell (the smallest, 12) is hidden.
        let mut facts = Vec::new();
        facts.extend((0..3).map(|_| fact("Female", 60, true)));
        facts.extend((0..40).map(|_| fact("Male", 60, true)));
        facts.extend((0..12).map(|_| fact("Other", 60, true)));
        let t = table(&[Dimension::Sex], Measure::Referred, &facts);
        let p = t.published_rows().unwrap();
        assert_eq!(p[0], ["Female", "*"]);
        assert_eq!(p[1], ["Male", "40"]);
        assert_eq!(p[2], ["Other", "*"]);
    }

    #[test]
    fn a_small_cell_alone_with_zeros_is_refused_only_when_its_margin_is_published() {
        // One group only: the total is the cell itself (3), itself suppressed: fine.
        let facts: Vec<_> = (0..3).map(|_| fact("Female", 60, true)).collect();
        let t = table(&[Dimension::Sex], Measure::Referred, &facts);
        assert_eq!(t.published_rows().unwrap()[0], ["Female", "*"]);
    }

    #[test]
    fn dimensions_parse_with_all_problems_at_once() {
        assert_eq!(
            Dimension::parse_list("sex, age").unwrap(),
            [Dimension::Sex, Dimension::AgeBand]
        );
        let e = Dimension::parse_list("sex,sex,colour,year,month,nation").unwrap_err();
        assert!(e.0.contains("sex is given twice"), "{e}");
        assert!(e.0.contains("colour is not a breakdown"), "{e}");
        assert!(e.0.contains("at most 3"), "{e}");
        assert!(Measure::parse("a1_bmi").is_ok());
        assert!(Measure::parse("sex").is_err());
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    /// Random tables of 1–3 dimensions with many small cells; every published cell is 0, `*`
    /// or a multiple of 5 of at least 10, and an attacker holding every margin (the same
    /// query with fewer dimensions, which is also allowed) can never compute a suppressed
    /// cell as "margin minus the other cells": each such margin hides 0 or at least 2 cells.
    #[test]
    fn no_small_value_and_no_differencing_over_random_tables() {
        const SEXES: [&str; 3] = ["Female", "Male", "Other"];
        const AGES: [i64; 5] = [45, 55, 65, 75, 85];
        const PROGRAMMES: [&str; 4] = ["P001", "P002", "P003", "P004"];
        let mut seed = 11;
        let mut refused = 0;
        for round in 0..300 {
            let people = 1 + lcg(&mut seed) % 200;
            let mut facts = Vec::new();
            for _ in 0..people {
                let mut f = fact(
                    SEXES[(lcg(&mut seed) % 3) as usize],
                    AGES[(lcg(&mut seed) % 5) as usize],
                    lcg(&mut seed).is_multiple_of(2),
                );
                f.programme = PROGRAMMES[(lcg(&mut seed) % 4) as usize];
                facts.push(f);
            }
            let dims = [Dimension::Sex, Dimension::AgeBand, Dimension::Programme];
            let by = &dims[..1 + round % 3];
            for measure in [Measure::Referred, Measure::Uptake] {
                let t = table(by, measure, &facts);
                let Ok(rows) = t.published() else {
                    refused += 1;
                    continue;
                };
                for r in &rows {
                    for c in [r.n, r.k] {
                        if let Cell::Count(v) = c {
                            assert!(v == 0 || (v >= 10 && v % 5 == 0), "{v}");
                        }
                    }
                }
                // Every margin over every proper subset of the dimensions.
                let width = by.len();
                for mask in 0u32..(1 << width) - 1 {
                    let fixed: Vec<usize> = (0..width).filter(|i| mask & (1 << i) != 0).collect();
                    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
                    for (i, r) in t.rows.iter().enumerate() {
                        let key = fixed.iter().map(|&d| r.keys[d].clone()).collect();
                        groups.entry(key).or_default().push(i);
                    }
                    for g in groups.values() {
                        let exact: u64 = g.iter().map(|&i| t.rows[i].n).sum();
                        if (1..=7).contains(&exact) {
                            continue;
                        }
                        let hidden = g.iter().filter(|&&i| rows[i].n == Cell::Suppressed).count();
                        assert_ne!(hidden, 1, "round {round}: a margin hides exactly one cell");
                    }
                }
            }
        }
        // Refusal is the exception, not the rule.
        assert!(refused < 60, "{refused} of 600 refused");
    }
}
