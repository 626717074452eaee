//! Generalising an extract's quasi-identifiers before suppressing records (privacy.md,
//! "Research extracts"), as ARX does (Prasser & Kohlmayer: a search of the lattice of
//! generalisations with a suppression limit). Each quasi-identifier has a fixed hierarchy of
//! ever broader values, the last of which releases nothing; crest chooses the least
//! generalisation under which, once at most [`SUPPRESSION_LIMIT`] of the records are
//! suppressed, every class holds at least k distinct patients.

use std::collections::{HashMap, HashSet};

/// The largest share of an extract's records suppressed once its quasi-identifiers are
/// generalised: 5%.
pub const SUPPRESSION_LIMIT: f64 = 0.05;

/// The levels of a quasi-identifier's hierarchy: level 0 is the value as it is, the last
/// releases nothing.
pub fn levels(column: &str) -> usize {
    if is_days(column) {
        // Whole weeks, 4-week blocks, 13-week blocks, nothing: a day offset is never
        // released to the day.
        return 4;
    }
    match column {
        // 5-year band, 10-year, 20-year, nothing.
        "age_band" => 4,
        // Month, quarter, year, nothing.
        "event_month" => 4,
        // Ethnic group, broad group, nothing.
        "ethnicity" => 3,
        // As it is, nothing.
        _ => 2,
    }
}

/// Whether a column is a day offset (days since the initiating event).
pub fn is_days(column: &str) -> bool {
    column.ends_with("_days")
}

/// The width in days of a day offset's band at `level`.
fn days_band(level: usize) -> i64 {
    match level {
        0 => 7,
        1 => 28,
        _ => 91,
    }
}

/// A level of a quasi-identifier's hierarchy in words, for the dictionary and the log.
pub fn describe(column: &str, level: usize) -> String {
    if level + 1 >= levels(column) {
        return "not released".into();
    }
    if is_days(column) {
        let band = days_band(level);
        return format!(
            "{} (days rounded down to a multiple of {band}: 0 means 0 to {})",
            match level {
                0 => "whole weeks",
                1 => "4-week blocks",
                _ => "13-week blocks",
            },
            band - 1
        );
    }
    if level == 0 {
        return "as recorded".into();
    }
    match (column, level) {
        ("age_band", 1) => "10-year bands".into(),
        ("age_band", _) => "20-year bands".into(),
        ("event_month", 1) => "quarter".into(),
        ("event_month", _) => "year".into(),
        ("ethnicity", _) => "broad group".into(),
        _ => format!("level {level}"),
    }
}

/// A value at `level` of its column's hierarchy.
pub fn generalise(column: &str, value: &Value, level: usize) -> Value {
    if matches!(value, Value::Null) {
        return Value::Null;
    }
    if level + 1 >= levels(column) {
        return Value::Null;
    }
    if is_days(column) {
        let band = days_band(level);
        return match value {
            Value::Int(d) => Value::Int(d.div_euclid(band) * band),
            _ => Value::Null,
        };
    }
    if level == 0 {
        return value.clone();
    }
    match (column, value) {
        ("age_band", Value::Text(band)) => {
            let lo: i64 = band
                .split(['-', '+'])
                .next()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let width = if level == 1 { 10 } else { 20 };
            // 90+ stays the top band at every width.
            let from = (lo / width * width).min(90 / width * width);
            if from + width > 90 {
                Value::Text(format!("{from}+"))
            } else {
                Value::Text(format!("{from}-{}", from + width - 1))
            }
        }
        ("event_month", Value::Text(month)) => {
            let (year, m) = month.split_once('-').unwrap_or((month.as_str(), "1"));
            let m: u32 = m.parse().unwrap_or(1);
            if level == 1 {
                Value::Text(format!("{year} Q{}", (m.max(1) - 1) / 3 + 1))
            } else {
                Value::Text(year.to_string())
            }
        }
        ("ethnicity", Value::Text(code)) => {
            Value::Text(crest_core::ethnic_group(Some(code)).to_string())
        }
        _ => Value::Null,
    }
}

/// One class of the ungeneralised quasi-identifiers: its values, its records and its distinct
/// patients (each a hash of its national key).
pub struct BaseClass {
    /// The quasi-identifiers' values, in column order.
    pub values: Vec<Value>,
    /// Records (episodes) in the class.
    pub records: u64,
    /// Its distinct patients.
    pub patients: HashSet<u64>,
}

/// The generalisation chosen: a level per quasi-identifier, and what it suppresses.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// A level per quasi-identifier column, in column order.
    pub levels: Vec<usize>,
    /// Records in classes of fewer than k patients, suppressed.
    pub suppressed: u64,
    /// The generalised classes of at least k patients, by their key.
    pub kept: HashSet<String>,
}

/// The key of a generalised class.
pub fn key(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::Null => String::new(),
            Value::Text(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Real(x) => x.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The values of a class at `levels`.
pub fn at(columns: &[&str], values: &[Value], levels: &[usize]) -> Vec<Value> {
    columns
        .iter()
        .zip(values)
        .zip(levels)
        .map(|((c, v), l)| generalise(c, v, *l))
        .collect()
}

/// What `levels` keeps and suppresses.
fn evaluate(columns: &[&str], classes: &[BaseClass], levels: &[usize], k: u64) -> Choice {
    let mut groups: HashMap<String, (u64, HashSet<u64>)> = HashMap::new();
    for c in classes {
        let g = groups
            .entry(key(&at(columns, &c.values, levels)))
            .or_default();
        g.0 += c.records;
        g.1.extend(c.patients.iter().copied());
    }
    let mut suppressed = 0;
    let mut kept = HashSet::new();
    for (key, (records, patients)) in groups {
        if (patients.len() as u64) < k {
            suppressed += records;
        } else {
            kept.insert(key);
        }
    }
    Choice {
        levels: levels.to_vec(),
        suppressed,
        kept,
    }
}

/// How much a generalisation loses: each quasi-identifier's level as a share of its
/// hierarchy's height, added up (Sweeney's precision), so moving months to quarters (a third
/// of the way) costs less than not releasing sex at all (the whole way).
fn loss(node: &[usize], tops: &[usize]) -> f64 {
    node.iter()
        .zip(tops)
        .map(|(l, t)| *l as f64 / (*t).max(1) as f64)
        .sum()
}

/// The least generalisation of `columns` (quasi-identifiers) that keeps every released class
/// at `k` distinct patients or more with at most [`SUPPRESSION_LIMIT`] of the records
/// suppressed: the nodes of the lattice are tried from the least loss up, and among those of
/// the least loss that meet the limit, the one suppressing fewest records is chosen. Where
/// none does, everything is generalised as far as it goes.
pub fn choose(columns: &[&str], classes: &[BaseClass], k: u64) -> Choice {
    let total: u64 = classes.iter().map(|c| c.records).sum();
    let limit = (total as f64 * SUPPRESSION_LIMIT).floor() as u64;
    let tops: Vec<usize> = columns.iter().map(|c| levels(c) - 1).collect();
    let size: f64 = tops.iter().map(|t| (t + 1) as f64).product();
    if size > LATTICE_SEARCHED as f64 {
        return climb(columns, classes, k, limit, &tops);
    }
    let height: usize = tops.iter().sum();
    let mut all: Vec<(f64, Vec<usize>)> = (0..=height)
        .flat_map(|h| nodes(&tops, h))
        .map(|n| (loss(&n, &tops), n))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut best: Option<(f64, Choice)> = None;
    for (cost, node) in all {
        if best.as_ref().is_some_and(|(c, _)| cost > *c + 1e-9) {
            break;
        }
        let choice = evaluate(columns, classes, &node, k);
        if choice.suppressed <= limit
            && best
                .as_ref()
                .is_none_or(|(_, b)| choice.suppressed < b.suppressed)
        {
            best = Some((cost, choice));
        }
    }
    best.map_or_else(|| evaluate(columns, classes, &tops, k), |(_, c)| c)
}

/// The largest lattice searched node by node; a larger one (many approved day offsets, say)
/// is climbed instead.
pub const LATTICE_SEARCHED: usize = 4096;

/// A greedy climb of a lattice too large to search (after Sweeney's Datafly): from every
/// quasi-identifier as recorded, each step raises the one quasi-identifier whose next level
/// suppresses fewest records (the least loss on a tie), until at most `limit` are suppressed
/// or everything is at its top.
fn climb(columns: &[&str], classes: &[BaseClass], k: u64, limit: u64, tops: &[usize]) -> Choice {
    let mut node = vec![0; tops.len()];
    let mut current = evaluate(columns, classes, &node, k);
    while current.suppressed > limit {
        let mut best: Option<(u64, f64, Choice)> = None;
        for i in 0..node.len() {
            if node[i] >= tops[i] {
                continue;
            }
            let mut next = node.clone();
            next[i] += 1;
            let cost = loss(&next, tops);
            let choice = evaluate(columns, classes, &next, k);
            let better = best.as_ref().is_none_or(|(s, c, _)| {
                choice.suppressed < *s || (choice.suppressed == *s && cost < *c)
            });
            if better {
                best = Some((choice.suppressed, cost, choice));
            }
        }
        let Some((_, _, choice)) = best else { break };
        node.clone_from(&choice.levels);
        current = choice;
    }
    current
}

/// Every vector of levels (each from 0 to its top) whose levels add up to `height`.
fn nodes(tops: &[usize], height: usize) -> Vec<Vec<usize>> {
    let Some((first, rest)) = tops.split_first() else {
        return if height == 0 {
            vec![Vec::new()]
        } else {
            Vec::new()
        };
    };
    let mut out = Vec::new();
    for l in 0..=(*first).min(height) {
        for mut tail in nodes(rest, height - l) {
            tail.insert(0, l);
            out.push(tail);
        }
    }
    out
}

/// A cell of an extract row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Empty.
    Null,
    /// Text.
    Text(String),
    /// Whole number.
    Int(i64),
    /// Decimal.
    Real(f64),
}

impl Value {
    pub(crate) fn text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Text(s) => s.clone(),
            Value::Int(n) => n.to_string(),
            Value::Real(x) => x.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn hierarchies_widen_to_nothing() {
        assert_eq!(generalise("age_band", &t("65-69"), 1), t("60-69"));
        assert_eq!(generalise("age_band", &t("65-69"), 2), t("60-79"));
        assert_eq!(generalise("age_band", &t("90+"), 1), t("90+"));
        assert_eq!(generalise("age_band", &t("85-89"), 2), t("80+"));
        assert_eq!(generalise("age_band", &t("65-69"), 3), Value::Null);
        assert_eq!(generalise("event_month", &t("2024-08"), 1), t("2024 Q3"));
        assert_eq!(generalise("event_month", &t("2024-08"), 2), t("2024"));
        assert_eq!(
            generalise("ethnicity", &t("J"), 1),
            t("Asian or Asian British")
        );
        assert_eq!(generalise("sex", &t("female"), 1), Value::Null);
        assert_eq!(describe("event_month", 1), "quarter");
        assert_eq!(describe("sex", 1), "not released");
        // Day offsets are never released to the day.
        assert_eq!(
            generalise("referral_days", &Value::Int(20), 0),
            Value::Int(14)
        );
        assert_eq!(
            generalise("referral_days", &Value::Int(-1), 0),
            Value::Int(-7)
        );
        assert_eq!(
            generalise("referral_days", &Value::Int(60), 1),
            Value::Int(56)
        );
        assert_eq!(
            generalise("referral_days", &Value::Int(100), 2),
            Value::Int(91)
        );
        assert_eq!(
            generalise("referral_days", &Value::Int(100), 3),
            Value::Null
        );
        assert!(describe("referral_days", 0).starts_with("whole weeks"));
    }

    #[test]
    fn a_lattice_too_large_to_search_is_climbed_to_within_the_limit() {
        // Nine day offsets (4 levels each: 262,144 nodes) on 200 patients, each unique to the
        // day; at k = 5 the climb must reach at most 5% suppressed.
        let columns: Vec<String> = (0..9).map(|i| format!("d{i}_days")).collect();
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        let classes: Vec<BaseClass> = (0..200u64)
            .map(|p| BaseClass {
                values: (0..9)
                    .map(|i| Value::Int(((p * 7 + i * 13) % 120) as i64))
                    .collect(),
                records: 1,
                patients: [p].into(),
            })
            .collect();
        let c = choose(&names, &classes, 5);
        assert!(c.suppressed <= 10, "{c:?}");
        let again = evaluate(&names, &classes, &c.levels, 5);
        assert_eq!(again.suppressed, c.suppressed);
        assert!(c.levels.iter().any(|&l| l > 0));
    }

    #[test]
    fn the_least_generalisation_within_the_suppression_limit_is_chosen() {
        // 40 patients in months of one quarter, each month's class too small at k = 5 unless
        // months become quarters; sex varies too but does not need to go.
        let mut classes = Vec::new();
        let mut id = 0u64;
        for (month, sex, n) in [
            ("2024-04", "female", 3),
            ("2024-05", "female", 3),
            ("2024-06", "female", 4),
            ("2024-04", "male", 10),
            ("2024-05", "male", 10),
            ("2024-06", "male", 10),
        ] {
            let patients: HashSet<u64> = (0..n)
                .map(|_| {
                    id += 1;
                    id
                })
                .collect();
            classes.push(BaseClass {
                values: vec![t(month), t(sex)],
                records: n,
                patients,
            });
        }
        let c = choose(&["event_month", "sex"], &classes, 5);
        assert_eq!(c.levels, vec![1, 0], "months to quarters, sex kept");
        assert_eq!(c.suppressed, 0);
        // Without generalising, 10 of 40 records (25%) would go.
        assert_eq!(
            evaluate(&["event_month", "sex"], &classes, &[0, 0], 5).suppressed,
            10
        );
        // A patient with two episodes counts once.
        let twice = vec![BaseClass {
            values: vec![t("2024-04")],
            records: 6,
            patients: [1, 2, 3].into(),
        }];
        assert_eq!(evaluate(&["event_month"], &twice, &[0], 5).suppressed, 6);
    }
}
