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
        let file = |e: csv::Error| ReportError::File(e.to_string());
        w.write_record(&self.columns).map_err(file)?;
        for r in &self.rows {
            w.write_record(
                r.iter()
                    .map(|c| crest_core::spreadsheet::safe_cell(c).into_owned()),
            )
            .map_err(file)?;
        }
        w.into_inner().map_err(|e| ReportError::File(e.to_string()))
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
    let field = |name: &str| crest_core::field_by_name(name);
    let (sex, mode, pathway) = (field("sex"), field("delivery_mode"), field("pathway"));
    let label =
        |f: Option<&'static crest_core::Field>, code: Option<&str>| -> Option<&'static str> {
            let code = code?;
            f.and_then(|f| f.code_label(code)).or(Some("Other"))
        };
    let mut aggs: Vec<Aggregator> = queries
        .iter()
        .map(|q| Aggregator::new(&q.by, q.measure))
        .collect();
    let none: Vec<usize> = Vec::new();
    store.each_fact(period.from, period.to, only.as_deref(), value, &mut |r| {
        let which = counted_by.get(r.programme).unwrap_or(&none);
        if which.is_empty() {
            return;
        }
        let (nation, region) = places
            .get(r.programme)
            .map_or(("Not known", ""), |(n, g)| (*n, g.as_str()));
        let fact = Fact {
            referral: r.referral,
            nation,
            region,
            programme: r.programme,
            sex: label(sex, r.sex),
            age: r.age,
            ethnicity: r.ethnicity,
            imd: r.imd,
            group: crest_core::PriorityGroup::of(r.initiating_event, r.treatment),
            delivery_mode: label(mode, r.delivery_mode),
            pathway: label(pathway, r.pathway),
            started: r.core_start.is_some(),
            completed: r.status == "completed",
            wait_days: r.core_start.map(|s| i64::from(s.days_since(r.referral))),
            value: r.value,
        };
        for &i in which {
            aggs[i].add(&fact);
        }
    })?;
    Ok(aggs.into_iter().map(Aggregator::finish).collect())
}

/// A query's answer: published (disclosure-controlled) or exact.
pub fn answer(
    store: &mut NationalStore,
    q: &Query,
    published: bool,
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
    let t = table(store, q)?;
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
