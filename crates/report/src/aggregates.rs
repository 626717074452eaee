//! Aggregates from the national store, the one way the command line (`crest aggregate`), the
//! web pages and the API make them: the store streams each episode's facts, the statistics
//! crate counts them, and the caller's role decides exact or published values. Commissioners'
//! queries are limited to the programmes of their regions here, before anything is counted.

use crate::ReportError;
use crest_core::{Date, Period};
use crest_stats::aggregate::{Aggregator, Dimension, Fact, Measure, Refused, Table};
use crest_store::NationalStore;
use std::collections::HashMap;

/// One aggregate request.
#[derive(Clone, Debug)]
pub struct Query {
    /// Up to three dimensions.
    pub by: Vec<Dimension>,
    /// What is counted or summarised.
    pub measure: Measure,
    /// Referral period.
    pub period: Period,
    /// Only programmes in these regions (a commissioner's); `None` for the nation.
    pub regions: Option<Vec<String>>,
}

/// An aggregate's result as text cells: exact, or published (disclosure-controlled).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Answer {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows of cells (`*` where suppressed when published).
    pub rows: Vec<Vec<String>>,
    /// Whether disclosure control was applied.
    pub published: bool,
    /// The referral period, ISO dates.
    pub from: String,
    /// Its end.
    pub to: String,
}

impl Answer {
    /// The answer as CSV (spreadsheet formulas neutralised).
    pub fn to_csv(&self) -> Result<Vec<u8>, ReportError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let file = |source: csv::Error| ReportError::Csv {
            table: "aggregate".into(),
            source,
        };
        w.write_record(&self.columns).map_err(file)?;
        for r in &self.rows {
            w.write_record(
                r.iter()
                    .map(|c| crest_core::spreadsheet::safe_cell(c).into_owned()),
            )
            .map_err(file)?;
        }
        w.into_inner()
            .map_err(|e| file(csv::Error::from(e.into_error())))
    }

    /// The answer as JSON: one object per row, keyed by column.
    pub fn to_json(&self) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::Value::Object(
                    self.columns
                        .iter()
                        .cloned()
                        .zip(r.iter().map(|c| serde_json::Value::String(c.clone())))
                        .collect(),
                )
            })
            .collect();
        serde_json::json!({
            "from": self.from,
            "to": self.to,
            "published": self.published,
            "columns": self.columns,
            "rows": rows,
        })
    }
}

/// What published figures may be asked for, in words for the pages and the API.
pub const PUBLISHED_PERIODS: &str = "Published figures cover whole financial years (1 April to \
31 March), or one quarter of one (April to June, July to September, October to December, \
January to March), and are broken down by year or quarter, never by month: answers for \
periods that overlap could otherwise be subtracted from each other to reveal a count of 1 to 7 \
people. A period inside one quarter gives that quarter; any other gives the financial year it \
ends in (ask for each year in turn to compare years).";

/// The quarter of the financial year a date falls in: its first and last days.
fn quarter_of(d: Date) -> Period {
    let (y, m, _) = d.ymd();
    let first = (m - 1) / 3 * 3 + 1;
    let last = first + 2;
    Period {
        from: Date::from_ymd(y, first, 1).unwrap_or(d),
        to: Date::from_ymd(y, last, crest_core::date::days_in_month(y, last)).unwrap_or(d),
    }
}

/// Snaps a restricted user's period to the published grid: one quarter of a financial year
/// where the period lies inside it, otherwise the financial year it ends in. Every answer a
/// commissioner or researcher can get is then cut from the same few tables (a year and its four
/// quarters), whose cells are each rounded once: no two periods overlap except a year and its
/// own quarters, so no answer can be subtracted from another to isolate a small count
/// (privacy.md: no inference across queries). Spans of several years are not offered: their
/// totals would overlap each year's.
pub fn published_grid(p: Period) -> Period {
    let q = quarter_of(p.from);
    if p.to <= q.to {
        return q;
    }
    let (y, m, _) = p.to.ymd();
    let fy = if m >= 4 { y } else { y - 1 };
    Period {
        from: Date::from_ymd(fy, 4, 1).unwrap_or(p.from),
        to: Date::from_ymd(fy + 1, 3, 31).unwrap_or(p.to),
    }
}

/// Why a published answer is not given.
#[derive(Debug, thiserror::Error)]
pub enum NotPublished {
    /// The breakdown would let a suppressed count be worked out from its totals.
    #[error(transparent)]
    Breakdown(#[from] Refused),
    /// Months are not on the published grid.
    #[error("Published figures are not broken down by month: choose quarter. {PUBLISHED_PERIODS}")]
    ByMonth,
    /// Calendar years cut across financial years, so they are not on the published grid.
    #[error("Published figures are not broken down by calendar year, which cuts across financial years: choose quarter, or ask for each financial year in turn. {PUBLISHED_PERIODS}")]
    ByYear,
    /// The region's totals for the period are withheld by the disclosure audit.
    #[error("Your region's totals for this period are withheld, as in the annual report: with the programmes' own published counts they would let a result based on too few patients be worked out. Break them down (by programme, quarter or a group of patients) instead.")]
    Withheld,
}

/// Whether a commissioner's answer would be their regions' whole totals (no breakdown, or
/// only by nation or region) for a period whose published figures withhold one of those
/// regions' lines (`crate::publication_audit::withheld_places`, as the annual report does).
fn region_totals_withheld(store: &mut NationalStore, q: &Query) -> Result<bool, ReportError> {
    let Some(regions) = &q.regions else {
        return Ok(false);
    };
    if !q
        .by
        .iter()
        .all(|d| matches!(d, Dimension::Nation | Dimension::Region))
    {
        return Ok(false);
    }
    let programmes = store.programmes()?;
    let episodes = store.kpi_episodes(q.period.from, q.period.to, &programmes)?;
    let report = crest_stats::kpis::compute(
        &programmes,
        &episodes,
        q.period,
        &crest_stats::kpis::Thresholds::default(),
    );
    let withheld = crate::publication_audit::withheld_places(
        &report,
        &programmes,
        crest_stats::funnel::Method::Auto,
    );
    Ok(programmes.iter().any(|p| {
        regions.contains(&p.region)
            && withheld.contains(&(p.nation.code().to_string(), p.region.clone()))
    }))
}

/// The exact table of a query.
pub fn table(store: &mut NationalStore, q: &Query) -> Result<Table, ReportError> {
    let mut t = tables(store, q.period, q.measure.field(), std::slice::from_ref(q))?;
    Ok(t.remove(0))
}

/// Several tables over the same period from one pass over the store (a commissioner's page
/// asks for a dozen). `value` is the numeric field every query's measure reads, if any; each
/// query's own regions decide which programmes it counts.
pub fn tables(
    store: &mut NationalStore,
    period: Period,
    value: Option<&str>,
    queries: &[Query],
) -> Result<Vec<Table>, ReportError> {
    tables_with(store, period, value, queries, None)
}

/// Every national episode's facts as aggregates read them (no measure field), held in memory
/// so that an answer is one pass over memory instead of a read of the store: a server loads
/// them once per version of the national data. 48 bytes an episode.
pub struct Facts {
    rows: Vec<Held>,
    /// Programme codes, by the index the rows hold.
    programmes: Vec<String>,
    /// Ethnic category letters, by the index the rows hold.
    ethnicities: Vec<String>,
    /// Coded fields' labels (sex, delivery mode, service line), by the index the rows hold.
    labels: Vec<&'static str>,
    /// Whether every value fitted its compact form; if not, answers come from the store.
    exact: bool,
}

/// One episode's facts in [`Facts`], compact: indexes into its tables, 32-bit numbers.
struct Held {
    referral: Date,
    programme: u32,
    age: Option<i32>,
    imd: Option<i32>,
    wait_days: Option<i32>,
    ethnicity: Option<u16>,
    sex: Option<u8>,
    delivery_mode: Option<u8>,
    pathway: Option<u8>,
    group: crest_core::PriorityGroup,
    started: bool,
    completed: bool,
}

/// The coded fields a fact shows in words.
struct Labels {
    sex: Option<&'static crest_core::Field>,
    mode: Option<&'static crest_core::Field>,
    pathway: Option<&'static crest_core::Field>,
}

impl Labels {
    fn new() -> Labels {
        let field = |name: &str| crest_core::field_by_name(name);
        Labels {
            sex: field("sex"),
            mode: field("delivery_mode"),
            pathway: field("pathway"),
        }
    }

    /// A row's sex, delivery mode and service line in words (an unknown code is "Other").
    fn coded(&self, r: &crest_store::national::FactRow<'_>) -> [Option<&'static str>; 3] {
        let label = |f: Option<&'static crest_core::Field>, code: Option<&str>| {
            let code = code?;
            f.and_then(|f| f.code_label(code)).or(Some("Other"))
        };
        [
            label(self.sex, r.sex),
            label(self.mode, r.delivery_mode),
            label(self.pathway, r.pathway),
        ]
    }

    /// A store row as the aggregator reads it, at its programme's nation and region.
    fn fact<'a>(
        &self,
        r: &crest_store::national::FactRow<'a>,
        nation: &'a str,
        region: &'a str,
    ) -> Fact<'a> {
        let [sex, delivery_mode, pathway] = self.coded(r);
        Fact {
            referral: r.referral,
            nation,
            region,
            programme: r.programme,
            sex,
            age: r.age,
            ethnicity: r.ethnicity,
            imd: r.imd,
            group: crest_core::PriorityGroup::of(r.initiating_event, r.treatment),
            delivery_mode,
            pathway,
            started: r.core_start.is_some(),
            completed: r.status == "completed",
            wait_days: r.core_start.map(|s| i64::from(s.days_since(r.referral))),
            value: r.value,
        }
    }
}

impl Facts {
    /// Reads every national episode's facts.
    pub fn load(store: &mut NationalStore) -> Result<Facts, ReportError> {
        let labels = Labels::new();
        let mut held = Facts {
            rows: Vec::new(),
            programmes: Vec::new(),
            ethnicities: Vec::new(),
            labels: Vec::new(),
            exact: true,
        };
        let mut programme_at: HashMap<String, u32> = HashMap::new();
        let mut ethnicity_at: HashMap<String, u16> = HashMap::new();
        let (Some(from), Some(to)) = (Date::from_ymd(1900, 1, 1), Date::from_ymd(2999, 12, 31))
        else {
            return Ok(held);
        };
        store.each_fact(from, to, None, None, &mut |r| {
            let programme = match programme_at.get(r.programme) {
                Some(&i) => i,
                None => {
                    let i = held.programmes.len() as u32;
                    held.programmes.push(r.programme.to_string());
                    programme_at.insert(r.programme.to_string(), i);
                    i
                }
            };
            let mut exact = true;
            let ethnicity = r.ethnicity.and_then(|e| match ethnicity_at.get(e) {
                Some(&i) => Some(i),
                None => {
                    let Ok(i) = u16::try_from(held.ethnicities.len()) else {
                        exact = false;
                        return None;
                    };
                    held.ethnicities.push(e.to_string());
                    ethnicity_at.insert(e.to_string(), i);
                    Some(i)
                }
            });
            let f = labels.fact(r, "", "");
            let [sex, delivery_mode, pathway] = labels.coded(r).map(|l| {
                l.and_then(|l| {
                    let at = match held.labels.iter().position(|x| *x == l) {
                        Some(i) => i,
                        None => {
                            held.labels.push(l);
                            held.labels.len() - 1
                        }
                    };
                    let i = u8::try_from(at).ok();
                    exact &= i.is_some();
                    i
                })
            });
            let mut small = |v: Option<i64>| {
                v.and_then(|v| {
                    let x = i32::try_from(v).ok();
                    exact &= x.is_some();
                    x
                })
            };
            let (age, imd, wait_days) = (small(f.age), small(f.imd), small(f.wait_days));
            held.exact &= exact;
            held.rows.push(Held {
                referral: f.referral,
                programme,
                age,
                imd,
                wait_days,
                ethnicity,
                sex,
                delivery_mode,
                pathway,
                group: f.group,
                started: f.started,
                completed: f.completed,
            });
        })?;
        Ok(held)
    }

    /// Episodes held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// [`tables`], from the facts held in memory when given (and no measure field is asked for),
/// otherwise from the store.
pub fn tables_with(
    store: &mut NationalStore,
    period: Period,
    value: Option<&str>,
    queries: &[Query],
    held: Option<&Facts>,
) -> Result<Vec<Table>, ReportError> {
    let programmes = store.programmes()?;
    let places: HashMap<String, (&'static str, String)> = programmes
        .iter()
        .map(|p| (p.code.clone(), (p.nation.label(), p.region.clone())))
        .collect();
    // Which queries count each programme.
    let counted_by: HashMap<&str, Vec<usize>> = programmes
        .iter()
        .map(|p| {
            let which = queries
                .iter()
                .enumerate()
                .filter(|(_, q)| {
                    q.regions
                        .as_ref()
                        .is_none_or(|r| r.iter().any(|r| r == &p.region))
                })
                .map(|(i, _)| i)
                .collect();
            (p.code.as_str(), which)
        })
        .collect();
    let only: Option<Vec<String>> = queries.iter().all(|q| q.regions.is_some()).then(|| {
        counted_by
            .iter()
            .filter(|(_, w)| !w.is_empty())
            .map(|(c, _)| c.to_string())
            .collect()
    });
    let mut aggs: Vec<Aggregator> = queries
        .iter()
        .map(|q| Aggregator::new(&q.by, q.measure))
        .collect();
    let none: Vec<usize> = Vec::new();
    let mut add = |fact: &Fact| {
        for &i in counted_by.get(fact.programme).unwrap_or(&none) {
            aggs[i].add(fact);
        }
    };
    let place = |code: &str| {
        places
            .get(code)
            .map_or(("Not known", ""), |(n, g)| (*n, g.as_str()))
    };
    match held {
        Some(h) if value.is_none() && h.exact => {
            let label = |i: Option<u8>| i.map(|i| h.labels[usize::from(i)]);
            for r in h
                .rows
                .iter()
                .filter(|r| r.referral >= period.from && r.referral <= period.to)
            {
                let programme = h.programmes[r.programme as usize].as_str();
                let (nation, region) = place(programme);
                add(&Fact {
                    referral: r.referral,
                    nation,
                    region,
                    programme,
                    sex: label(r.sex),
                    age: r.age.map(i64::from),
                    ethnicity: r.ethnicity.map(|e| h.ethnicities[usize::from(e)].as_str()),
                    imd: r.imd.map(i64::from),
                    group: r.group,
                    delivery_mode: label(r.delivery_mode),
                    pathway: label(r.pathway),
                    started: r.started,
                    completed: r.completed,
                    wait_days: r.wait_days.map(i64::from),
                    value: None,
                });
            }
        }
        _ => {
            let labels = Labels::new();
            store.each_fact(period.from, period.to, only.as_deref(), value, &mut |r| {
                let (nation, region) = place(r.programme);
                add(&labels.fact(r, nation, region));
            })?;
        }
    }
    Ok(aggs.into_iter().map(Aggregator::finish).collect())
}

/// A query's answer: published (disclosure-controlled) or exact.
pub fn answer(
    store: &mut NationalStore,
    q: &Query,
    published: bool,
) -> Result<Result<Answer, NotPublished>, ReportError> {
    answer_with(store, q, published, None)
}

/// [`answer`], from the facts held in memory when given.
pub fn answer_with(
    store: &mut NationalStore,
    q: &Query,
    published: bool,
    held: Option<&Facts>,
) -> Result<Result<Answer, NotPublished>, ReportError> {
    if published && q.by.contains(&Dimension::Month) {
        return Ok(Err(NotPublished::ByMonth));
    }
    if published && q.by.contains(&Dimension::Year) {
        return Ok(Err(NotPublished::ByYear));
    }
    if published && region_totals_withheld(store, q)? {
        return Ok(Err(NotPublished::Withheld));
    }
    let mut t = tables_with(
        store,
        q.period,
        q.measure.field(),
        std::slice::from_ref(q),
        held,
    )?;
    let t = t.remove(0);
    let rows = if published {
        match t.published_rows() {
            Ok(r) => r,
            Err(refused) => return Ok(Err(refused.into())),
        }
    } else {
        t.exact_rows()
    };
    Ok(Ok(Answer {
        columns: t.columns(),
        rows,
        published,
        from: q.period.from.to_string(),
        to: q.period.to.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A national store of 10 million episodes holds them in under 500 MB.
    #[test]
    fn facts_held_in_memory_take_48_bytes_an_episode() {
        assert!(
            std::mem::size_of::<Held>() <= 48,
            "{}",
            std::mem::size_of::<Held>()
        );
    }
}
