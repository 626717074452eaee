//! The annual report's disclosure audit (privacy.md, "No inference across cells, tables or
//! queries"), run before anything is written. It holds every count the report publishes about
//! people, with what is shown of each and the relations a reader knows:
//!
//! - each programme's referred, started, completed, with assessment 1, completed with
//!   assessment 1 and with assessment 2 (the uptake and funnel tables), each at most the one
//!   it is part of;
//! - each published funnel level, as the pairs of exact counts behind the rounded ones that sit
//!   at that level;
//! - each region's, nation's and the national pooled counts, each the sum of its programmes'
//!   (referred and started as counts, assessment 1 as a percentage of the started count, which
//!   fixes it; assessment 2 as a percentage of two counts neither published, a band around the
//!   ratio for a region);
//! - uptake by sex, age band, ethnic group, deprivation and priority group, whose groups add up
//!   to the national counts;
//! - each hidden met flag, and each withheld grade.
//!
//! It asks, by integer programming (`crest_stats::audit`), for the range of every count shown
//! as `*` and whether any hidden flag or grade is decided. One integer programme over all of it
//! (11,000 unknowns over 230 small programmes) takes minutes a question, so it is split where
//! the publication joins least: each region is solved exactly (its programmes, their levels and
//! relations, its totals), and the nation's and national totals bound the region's totals by
//! what they leave once every other region's own range is taken away; uptake by each grouping
//! is solved against the national totals. An attacker solving everything at once
//! (`crates/cli/tests/attack_published.py`, scipy's HiGHS) checks the split misses nothing.
//!
//! Pages that publish the same totals for the same period (a commissioner's region page) ask
//! [`withheld_places`] and withhold them too.
//!
//! Where something is revealed, the pooled counts that give it away are withheld
//! (complementary suppression: first the programme's region, then another region of the
//! nation, then the nation; for a group, the smallest other group shown), and the audit runs
//! again; a report that still fails is not made.

use crest_stats::audit::{Audit, Shown};
use crest_stats::disclosure::{count, Cell};
use crest_stats::funnel::Method;
use crest_stats::kpis::{grade, KpiReport, Measure};
use crest_stats::published::{self, Met};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A place of the nations-and-regions table: (nation code, region), the region empty on the
/// nation's own line; ("", "") is the national summary.
pub type Place = (String, String);

/// What the disclosure audit checked before the report was made.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditSummary {
    /// Published counts checked.
    pub counts: usize,
    /// Of them, suppressed by the rules (1–7).
    pub suppressed: usize,
    /// Lines withheld to protect others (a region's, a nation's or a group's counts, shown as `*`).
    pub withheld: usize,
    /// Hidden standards (met flag `*`) checked.
    pub hidden_flags: usize,
    /// Withheld grades checked.
    pub withheld_grades: usize,
    /// Suppressed counts narrowed to one value, or hidden standards or grades decided (none,
    /// or the report is not made).
    pub failures: Vec<String>,
    /// How long the audit took, in seconds.
    pub seconds: f64,
}

impl AuditSummary {
    /// The audit in a sentence.
    pub fn sentence(&self) -> String {
        format!(
            "Disclosure audit: {} published counts checked, {} suppressed (1 to 7 people), {} totals (a region's, a nation's or a group's line) withheld to protect them; {} hidden standards and {} withheld grades checked; {} counts narrowed to one value or results decided by what is published (in {:.2} s).",
            self.counts,
            self.suppressed,
            self.withheld,
            self.hidden_flags,
            self.withheld_grades,
            self.failures.len(),
            self.seconds
        )
    }
}

/// What the audit reads: the report's exact figures and everything published beside them.
pub struct Publication<'a> {
    /// The exact KPI report.
    pub report: &'a KpiReport,
    /// Every programme's region, by code.
    pub regions: HashMap<&'a str, &'a str>,
    /// Uptake by each grouping: (group, referred, started), exact.
    pub groups: Vec<Vec<(String, u64, u64)>>,
    /// The funnel limits' method.
    pub method: Method,
}

/// The measures of a programme, in model order: referred, started, completed, with
/// assessment 1, completed with assessment 1, with assessment 2.
const MEASURES: [&str; 6] = [
    "referred",
    "started",
    "completed",
    "with assessment 1",
    "completed with assessment 1",
    "with assessment 2",
];

/// Each measure's index among the six, for the ones pooled by place.
const POOLED: [usize; 5] = [0, 1, 3, 4, 5];

/// The pooled measures whose counts a place's line gives away: referred and started as
/// counts, and with assessment 1 as a percentage of the started count beside it (which fixes
/// its rounded count). Assessment 2 shows only as a percentage of two rounded counts neither
/// of which is published: see [`ratio`].
const POOLED_SHOWN: [usize; 3] = [0, 1, 3];

/// What a place's assessment 2 percentage says of its exact counts (with assessment 2, `k`,
/// completed with assessment 1, `n`): the percentage p is of counts rounded to 5 and is shown
/// to 0.1%, so k − p·n lies within 2 + 2p + 0.0005·n of 0. Returns p, or `None` where the
/// percentage is not shown.
fn ratio(k: u64, n: u64) -> Option<f64> {
    match crest_stats::disclosure::percentage(k, n) {
        crest_stats::disclosure::Percentage::Value(v) => Some((v * 10.0).round() / 1000.0),
        _ => None,
    }
}

/// Each measure that must be at most another (numerator and denominator, part and whole).
const AT_MOST: [(usize, usize); 6] = [(1, 0), (2, 1), (3, 1), (4, 2), (4, 3), (5, 4)];

/// The measures behind a funnel KPI: (numerator, denominator).
fn funnel_measures(key: &str) -> Option<(usize, usize)> {
    match key {
        "uptake" => Some((1, 0)),
        "completion" => Some((2, 1)),
        "assessment1" => Some((3, 1)),
        "assessment2" => Some((5, 4)),
        _ => None,
    }
}

/// A programme's six exact counts.
fn exact(p: &crest_stats::kpis::ProgrammeKpis) -> [u64; 6] {
    let r = &p.results;
    [
        r.referred,
        r.started,
        p.proportion("completion").0,
        p.proportion("assessment1").0,
        p.proportion("assessment2").1,
        p.proportion("assessment2").0,
    ]
}

fn shown(n: u64) -> Shown {
    Shown::Published(count(n))
}

type Interval = (u64, u64);

fn meet(a: Interval, b: Interval) -> Interval {
    (a.0.max(b.0), a.1.min(b.1))
}

fn add(a: Interval, b: Interval) -> Interval {
    (a.0 + b.0, a.1.saturating_add(b.1))
}

/// A place's published interval: its rounded sum, or anything when withheld.
fn published_interval(place: &Place, withheld: &BTreeSet<Place>, exact: u64) -> Interval {
    if withheld.contains(place) {
        Shown::Withheld.range()
    } else {
        shown(exact).range()
    }
}

/// Everything the audit works from, computed once per round.
struct Model<'a> {
    publication: &'a Publication<'a>,
    /// Each programme's exact counts.
    exact: Vec<[u64; 6]>,
    /// Each programme's counts' intervals: the published cell, narrowed by its funnel levels.
    ranges: Vec<[Interval; 6]>,
    /// Each funnel row with a published level: (programme, numerator, denominator, pairs of
    /// exact counts the level allows), where the level rules some out.
    levels: Vec<(usize, usize, usize, Vec<Vec<u64>>)>,
    /// Each region's (or regionless programme's) programmes, keyed by place; regionless ones
    /// under (nation, "#code").
    blocks: BTreeMap<Place, Vec<usize>>,
}

impl<'a> Model<'a> {
    fn new(publication: &'a Publication<'a>) -> Model<'a> {
        let report = publication.report;
        let exact: Vec<[u64; 6]> = report.programmes.iter().map(exact).collect();
        let mut ranges: Vec<[Interval; 6]> =
            exact.iter().map(|e| e.map(|v| shown(v).range())).collect();
        let mut levels = Vec::new();
        for (key, _) in crate::charts::FUNNELS {
            let Some((num, den)) = funnel_measures(key) else {
                continue;
            };
            let f = published::funnel(report, key, publication.method);
            let Some(fit) = f.fit else { continue };
            for row in f.rows {
                if row.published_level() == published::TOO_FEW {
                    continue;
                }
                let Some(i) = report
                    .programmes
                    .iter()
                    .position(|p| p.programme_code == row.programme_code)
                else {
                    continue;
                };
                let (klo, khi) = published::possible(row.numerator);
                let (nlo, nhi) = published::possible(row.denominator);
                let mut allowed = Vec::new();
                let mut all = true;
                for n in nlo..=nhi {
                    for k in klo..=khi.min(n) {
                        if fit.position(k, n).unwrap_or(row.position) == row.position {
                            allowed.push(vec![k, n]);
                        } else {
                            all = false;
                        }
                    }
                }
                if all || allowed.is_empty() {
                    continue;
                }
                // The level narrows both counts to the pairs it allows.
                let hull = |j: usize| {
                    (
                        allowed.iter().map(|o| o[j]).min().unwrap_or(0),
                        allowed.iter().map(|o| o[j]).max().unwrap_or(0),
                    )
                };
                ranges[i][num] = meet(ranges[i][num], hull(0));
                ranges[i][den] = meet(ranges[i][den], hull(1));
                levels.push((i, num, den, allowed));
            }
        }
        let mut blocks: BTreeMap<Place, Vec<usize>> = BTreeMap::new();
        for (i, p) in report.programmes.iter().enumerate() {
            let nation = p.nation.code().to_string();
            let region = publication
                .regions
                .get(p.programme_code.as_str())
                .copied()
                .unwrap_or("");
            let place = if region.is_empty() {
                (nation, format!("#{}", p.programme_code))
            } else {
                (nation, region.to_string())
            };
            blocks.entry(place).or_default().push(i);
        }
        Model {
            publication,
            exact,
            ranges,
            levels,
            blocks,
        }
    }

    /// The exact sum of measure `m` over `members`.
    fn sum(&self, members: &[usize], m: usize) -> u64 {
        members.iter().map(|&i| self.exact[i][m]).sum()
    }

    /// What a block's own counts say of its total of measure `m`: its programmes' intervals
    /// added up, met with the block's published total (regions; not regionless programmes).
    fn local(
        &self,
        place: &Place,
        members: &[usize],
        m: usize,
        withheld: &BTreeSet<Place>,
    ) -> Interval {
        let parts = members
            .iter()
            .fold((0, 0), |acc, &i| add(acc, self.ranges[i][m]));
        if place.1.starts_with('#') || !POOLED_SHOWN.contains(&m) {
            parts
        } else {
            meet(
                parts,
                published_interval(place, withheld, self.sum(members, m)),
            )
        }
    }

    /// The interval of block `place`'s total of measure `m`, given its own published total
    /// and what the nation's and the national totals leave once every other block's own
    /// interval is taken away.
    fn block_total(&self, place: &Place, m: usize, withheld: &BTreeSet<Place>) -> Interval {
        let members = &self.blocks[place];
        let mut range = self.local(place, members, m, withheld);
        let nation = (place.0.clone(), String::new());
        let national = (String::new(), String::new());
        let (mut in_nation, mut elsewhere) = ((0u64, 0u64), (0u64, 0u64));
        let (mut nation_exact, mut national_exact) = (0u64, 0u64);
        for (other, ms) in &self.blocks {
            let sum = self.sum(ms, m);
            national_exact += sum;
            if other.0 == place.0 {
                nation_exact += sum;
            }
            if other == place {
                continue;
            }
            let i = self.local(other, ms, m, withheld);
            if other.0 == place.0 {
                in_nation = add(in_nation, i);
            } else {
                elsewhere = add(elsewhere, i);
            }
        }
        if !POOLED_SHOWN.contains(&m) {
            return range;
        }
        let less = |total: Interval, others: Interval| {
            (
                total.0.saturating_sub(others.1),
                total.1.saturating_sub(others.0),
            )
        };
        let n = published_interval(&nation, withheld, nation_exact);
        range = meet(range, less(n, in_nation));
        let all = published_interval(&national, withheld, national_exact);
        range = meet(range, less(all, add(in_nation, elsewhere)));
        range
    }
}

/// The model of one block (a region's programmes, or one regionless programme): each
/// programme's counts and relations, its levels, and its totals within what the nation and
/// the national totals allow. Returns the audit and the model index of each programme's
/// counts.
fn block_audit(
    model: &Model,
    place: &Place,
    withheld: &BTreeSet<Place>,
) -> (Audit, Vec<(usize, [usize; 6])>) {
    let report = model.publication.report;
    let mut a = Audit::new();
    let mut vars = Vec::new();
    for &i in &model.blocks[place] {
        let code = &report.programmes[i].programme_code;
        let v: [usize; 6] = std::array::from_fn(|m| {
            a.count(format!("{code} {}", MEASURES[m]), shown(model.exact[i][m]))
        });
        for (m, &(lo, hi)) in model.ranges[i].iter().enumerate() {
            a.between(v[m], lo, hi);
        }
        for (part, whole) in AT_MOST {
            a.at_most(v[part], v[whole]);
        }
        // The pairs a level allows, where this programme has something hidden to protect.
        let hidden = model.exact[i].iter().any(|&x| count(x) == Cell::Suppressed);
        if hidden {
            for (j, num, den, allowed) in &model.levels {
                if *j == i {
                    a.one_of(&[v[*num], v[*den]], allowed);
                }
            }
        }
        vars.push((i, v));
    }
    let mut totals = [0usize; 6];
    for m in POOLED {
        let (lo, hi) = model.block_total(place, m, withheld);
        let total = a.count(
            format!("{} {} {}", place.0, place.1, MEASURES[m]),
            Shown::Between(lo, hi),
        );
        let parts: Vec<usize> = vars.iter().map(|(_, v)| v[m]).collect();
        a.sum(total, &parts);
        totals[m] = total;
    }
    // A region's line shows assessment 2 as a percentage of its two rounded counts.
    let members = &model.blocks[place];
    if !place.1.starts_with('#') && !withheld.contains(place) {
        if let Some(p) = ratio(model.sum(members, 5), model.sum(members, 4)) {
            let slack = 2.001 + 2.0 * p;
            a.at_most_value(&[(totals[5], 1.0), (totals[4], -p - 0.0005)], slack);
            a.at_least_value(&[(totals[5], 1.0), (totals[4], -p + 0.0005)], -slack);
        }
    }
    (a, vars)
}

/// The cells of uptake by a grouping as the audit keys them: ("grouping N", group).
fn group_place(g: usize, name: &str) -> Place {
    (format!("grouping {g}"), name.to_string())
}

/// Audits the publication with the places and group cells in `withheld` not published.
pub fn audit(publication: &Publication, withheld: &BTreeSet<Place>) -> AuditSummary {
    let model = Model::new(publication);
    let report = publication.report;
    let mut summary = AuditSummary {
        withheld: withheld.len(),
        ..AuditSummary::default()
    };
    for place in model.blocks.keys() {
        let (a, vars) = block_audit(&model, place, withheld);
        check_counts(&a, &mut summary);
        for (i, v) in &vars {
            flags(&a, &report.programmes[*i], v, &mut summary);
        }
    }
    // Uptake by each grouping: its groups add up to the national counts (where every episode
    // falls in one group), which the programmes' own counts bound.
    for (g, groups) in publication.groups.iter().enumerate() {
        let mut a = Audit::new();
        let mut parts = (Vec::new(), Vec::new());
        for (name, referred, started) in groups {
            let cell = |v: u64| {
                if withheld.contains(&group_place(g, name)) {
                    Shown::Withheld
                } else {
                    shown(v)
                }
            };
            let n = a.count(format!("grouping {g} {name} referred"), cell(*referred));
            let k = a.count(format!("grouping {g} {name} started"), cell(*started));
            a.at_most(k, n);
            parts.0.push(n);
            parts.1.push(k);
        }
        let (n, k) = groups
            .iter()
            .fold((0, 0), |acc, (_, n, k)| (acc.0 + n, acc.1 + k));
        for (m, exact_total, parts) in [(0, n, &parts.0), (1, k, &parts.1)] {
            let want = if m == 0 {
                report.national.referred
            } else {
                report.national.started
            };
            if exact_total != want {
                continue;
            }
            let national = (String::new(), String::new());
            let all: Vec<usize> = (0..report.programmes.len()).collect();
            let by_programmes = all
                .iter()
                .fold((0, 0), |acc, &i| add(acc, model.ranges[i][m]));
            let (lo, hi) = meet(
                by_programmes,
                published_interval(&national, withheld, exact_total),
            );
            let total = a.count(format!("national {}", MEASURES[m]), Shown::Between(lo, hi));
            a.sum(total, parts);
        }
        check_counts(&a, &mut summary);
    }
    summary
}

/// Counts the published and suppressed counts of `a`, and records each suppressed one that
/// what is published narrows to one value.
fn check_counts(a: &Audit, summary: &mut AuditSummary) {
    summary.counts += a.published();
    for range in a.ranges() {
        summary.suppressed += 1;
        if range.pinned() {
            summary.failures.push(format!(
                "{} is {} to {}",
                range.name, range.least, range.greatest
            ));
        }
    }
}

/// Checks a programme's hidden standards and withheld grade against its block's model.
fn flags(
    a: &Audit,
    p: &crest_stats::kpis::ProgrammeKpis,
    v: &[usize; 6],
    summary: &mut AuditSummary,
) {
    let shown = published::programme(p);
    let mut open = Vec::new();
    let mut free = 0;
    for k in &p.results.kpis {
        let Some(pk) = shown.kpi(k.key) else { continue };
        if pk.met != Met::TooFew {
            continue;
        }
        let counts = match (&k.measure, k.threshold) {
            (Measure::Proportion(x), Some(t)) if x.denominator > 0 => {
                funnel_measures(k.key).map(|(num, den)| (v[num], v[den], t))
            }
            _ => None,
        };
        let Some((num, den, t)) = counts else {
            // Nothing published bounds a hidden median.
            free += 1;
            continue;
        };
        summary.hidden_flags += 1;
        match a
            .possible(&[(num, den, t, true)])
            .zip(a.possible(&[(num, den, t, false)]))
        {
            Some((true, true)) => open.push((num, den, t)),
            _ => summary.failures.push(format!(
                "{} {} is decided by what is published",
                p.programme_code, k.key
            )),
        }
    }
    // A withheld grade must stay open over every outcome the counts allow together.
    if shown.grade == "withheld" && !open.is_empty() && open.len() < 8 {
        summary.withheld_grades += 1;
        let mut grades = BTreeSet::new();
        for mask in 0..(1u32 << open.len()) {
            let ask: Vec<(usize, usize, f64, bool)> = open
                .iter()
                .enumerate()
                .map(|(i, &(k, n, t))| (k, n, t, mask & (1 << i) != 0))
                .collect();
            if a.possible(&ask) != Some(false) {
                let met = shown.kpis_met + mask.count_ones() as usize;
                for extra in 0..=free {
                    grades.insert(grade(met + extra));
                }
            }
        }
        if grades.len() < 2 {
            summary.failures.push(format!(
                "{} grade is decided by what is published",
                p.programme_code
            ));
        }
    }
}

/// The programme named in a failure, and so the places that could protect it.
fn programme_of<'a>(failure: &str, publication: &'a Publication) -> Option<&'a str> {
    publication
        .report
        .programmes
        .iter()
        .map(|p| p.programme_code.as_str())
        .find(|code| failure.starts_with(&format!("{code} ")))
}

/// Audits the publication and withholds pooled counts until nothing is revealed: the places
/// withheld (empty when the plain publication passes) and the final audit. Each round withholds,
/// for each programme still revealed, the next of: its region, the smallest other region of its
/// nation, its nation; for a group of a grouping, the smallest other group shown.
pub fn protect(publication: &Publication) -> (BTreeSet<Place>, AuditSummary) {
    let mut withheld = BTreeSet::new();
    loop {
        let summary = audit(publication, &withheld);
        if summary.failures.is_empty() {
            return (withheld, summary);
        }
        let before = withheld.len();
        for failure in &summary.failures {
            let next = match programme_of(failure, publication) {
                Some(code) => next_to_withhold(code, publication, &withheld),
                None => next_group(failure, publication, &withheld),
            };
            if let Some(place) = next {
                withheld.insert(place);
            }
        }
        if withheld.len() == before {
            return (withheld, summary);
        }
    }
}

/// The smallest group shown of the grouping a failure names, to withhold beside it.
fn next_group(
    failure: &str,
    publication: &Publication,
    withheld: &BTreeSet<Place>,
) -> Option<Place> {
    let (g, groups) = publication
        .groups
        .iter()
        .enumerate()
        .find(|(g, _)| failure.starts_with(&format!("grouping {g} ")))?;
    let named = failure.strip_prefix(&format!("grouping {g} "))?;
    groups
        .iter()
        .filter(|(name, n, _)| {
            !named.starts_with(&format!("{name} "))
                && count(*n) != Cell::Suppressed
                && !withheld.contains(&group_place(g, name))
        })
        .min_by_key(|(_, n, _)| *n)
        .map(|(name, _, _)| group_place(g, name))
}

/// The next pooled line to withhold to protect programme `code`.
fn next_to_withhold(
    code: &str,
    publication: &Publication,
    withheld: &BTreeSet<Place>,
) -> Option<Place> {
    let programmes = &publication.report.programmes;
    let p = programmes.iter().find(|p| p.programme_code == code)?;
    let nation = p.nation.code().to_string();
    let region = publication.regions.get(code).copied().unwrap_or("");
    let own = (nation.clone(), region.to_string());
    if !region.is_empty() && !withheld.contains(&own) {
        return Some(own);
    }
    // Another region of the nation, the smallest by referrals: one withheld region alone is
    // its nation less the others.
    let mut others: BTreeMap<&str, u64> = BTreeMap::new();
    for q in programmes.iter().filter(|q| q.nation == p.nation) {
        let r = publication
            .regions
            .get(q.programme_code.as_str())
            .copied()
            .unwrap_or("");
        if !r.is_empty() && !withheld.contains(&(nation.clone(), r.to_string())) {
            *others.entry(r).or_default() += q.results.referred;
        }
    }
    if let Some((r, _)) = others.into_iter().min_by_key(|(_, n)| *n) {
        return Some((nation, r.to_string()));
    }
    let whole = (nation, String::new());
    if !withheld.contains(&whole) {
        return Some(whole);
    }
    let national = (String::new(), String::new());
    (!withheld.contains(&national)).then_some(national)
}

/// Whether uptake by grouping `g` shows group `name`'s counts (not withheld to protect another).
pub fn group_shown(g: usize, name: &str, withheld: &BTreeSet<Place>) -> bool {
    !withheld.contains(&group_place(g, name))
}

/// The pooled lines (regions, nations, the national line) the annual report of `report`'s
/// period withholds to protect hidden results, for the other pages that publish the same
/// totals (a commissioner's region page): they withhold them too, or the page and the report
/// together would give away what the report protects. The groups play no part in which pooled
/// lines are withheld, so they are left out here.
pub fn withheld_places(
    report: &KpiReport,
    programmes: &[crest_core::Programme],
    method: Method,
) -> BTreeSet<Place> {
    let publication = Publication {
        report,
        regions: programmes
            .iter()
            .map(|p| (p.code.as_str(), p.region.as_str()))
            .collect(),
        groups: Vec::new(),
        method,
    };
    protect(&publication).0
}

/// A pooled cell as published: `*` where the place is withheld.
pub fn pooled_cell(place: &Place, withheld: &BTreeSet<Place>, exact: u64) -> Cell {
    if withheld.contains(place) {
        Cell::Suppressed
    } else {
        count(exact)
    }
}
