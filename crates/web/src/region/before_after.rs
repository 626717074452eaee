//! Before and after a service change, for a commissioner's region, from published figures
//! only: the windows are whole quarters (the published grid), and each window's counts are the
//! sums of the very quarter-by-group cells the aggregates page publishes for each financial
//! year (rounded, with its suppression). A group with a suppressed cell in a window is not
//! compared, and says so; nothing is shown that the aggregates page would not give.

use crate::app::WebError;
use crest_core::changes::ServiceChange;
use crest_core::Period;
use crest_report::aggregates::Query as AggQuery;
use crest_stats::aggregate::{Dimension, Measure};
use crest_stats::before_after::{from_counts, quarter_windows, Comparison, Counts};
use maud::{html, Markup};
use std::collections::BTreeSet;

/// The groupings compared, in `crate::uptake::GROUPINGS` order.
const GROUPS: [Dimension; 5] = [
    Dimension::Sex,
    Dimension::AgeBand,
    Dimension::Ethnicity,
    Dimension::ImdQuintile,
    Dimension::PriorityGroup,
];

/// A comparison from published counts, with the groups left out because a quarter's cell is
/// suppressed (as `grouping: group`).
pub(crate) struct Published {
    pub comparison: Comparison,
    pub left_out: Vec<String>,
}

/// The comparison of uptake in the region's programmes before and after `change`, from the
/// published quarter cells; `None` when not one whole quarter of data lies on each side.
pub(crate) fn compare(
    app: &crate::app::App,
    n: &mut crest_store::NationalStore,
    regions: &[String],
    change: &ServiceChange,
    data: Period,
) -> Result<Option<Published>, WebError> {
    let Some((before, after)) = quarter_windows(change.date, 4, data) else {
        return Ok(None);
    };
    // The financial years the windows touch, each asked for as the aggregates page asks.
    let mut years = Vec::new();
    let mut d = before.from;
    while d <= after.to {
        let fy = Period::financial_year_of(d);
        years.push(fy);
        d = fy.to.add_days(1);
    }
    let side = |quarter: &str| -> Option<usize> {
        // "2024 Q3" → its first day.
        let (y, q) = quarter.split_once(" Q")?;
        let first =
            crest_core::Date::from_ymd(y.parse().ok()?, (q.parse::<u32>().ok()? - 1) * 3 + 1, 1)?;
        if before.contains(first) {
            Some(0)
        } else if after.contains(first) {
            Some(1)
        } else {
            None
        }
    };
    let mut counts = Counts::new();
    let mut hidden: BTreeSet<(Option<usize>, String)> = BTreeSet::new();
    let mut refused: BTreeSet<Option<usize>> = BTreeSet::new();
    for period in years {
        for grouping in std::iter::once(None).chain((0..GROUPS.len()).map(Some)) {
            let mut by = vec![Dimension::Quarter];
            by.extend(grouping.map(|i| GROUPS[i]));
            let q = AggQuery {
                by,
                measure: Measure::Uptake,
                period,
                regions: Some(regions.to_vec()),
            };
            let answer = match app.answer(n, &q, true)? {
                Ok(a) => a,
                Err(_) => {
                    refused.insert(grouping);
                    continue;
                }
            };
            let col = |name: &str| answer.columns.iter().position(|c| c == name);
            let (Some(k), Some(total)) = (col("numerator"), col("denominator")) else {
                continue;
            };
            for row in &answer.rows {
                let Some(s) = side(&row[0]) else { continue };
                let group = match grouping {
                    None => "all".to_string(),
                    Some(_) => row[1].clone(),
                };
                let key = (grouping, group);
                match (row[k].parse::<u64>(), row[total].parse::<u64>()) {
                    (Ok(k), Ok(total)) => {
                        let slot = &mut counts.entry(key).or_default()[s];
                        slot.0 += k;
                        slot.1 += total;
                    }
                    _ => {
                        hidden.insert(key);
                    }
                }
            }
        }
    }
    // A group with any suppressed cell, or a grouping refused, is left out whole.
    counts.retain(|key, _| !hidden.contains(key) && !refused.contains(&key.0));
    let groupings = crate::uptake::GROUPINGS;
    let mut comparison = from_counts(
        &counts,
        &groupings,
        Some(crate::uptake::DEPRIVATION),
        (before, after),
    );
    // The slope index needs every quintile; one hidden leaves it unknown.
    let quintile_hidden = refused.contains(&Some(crate::uptake::DEPRIVATION))
        || hidden
            .iter()
            .any(|(g, q)| *g == Some(crate::uptake::DEPRIVATION) && q.parse::<u8>().is_ok());
    if quintile_hidden {
        comparison.slope_index = (None, None);
    }
    let name = |g: Option<usize>| g.map_or("everyone".to_string(), |i| groupings[i].to_string());
    let left_out = hidden
        .iter()
        .filter(|(g, _)| !refused.contains(g))
        .map(|(g, group)| match g {
            None => "everyone".to_string(),
            Some(_) => format!("{}: {}", name(*g), crate::html::group_words(group)),
        })
        .chain(refused.iter().map(|g| format!("every {} group", name(*g))))
        .collect();
    Ok(Some(Published {
        comparison,
        left_out,
    }))
}

/// The note under a published comparison.
fn note(p: &Published) -> Markup {
    html! {
        p class="hint" {
            "From published counts: whole quarters either side, each quarter's counts rounded to the nearest 5 as the aggregates page gives them. "
            @if !p.left_out.is_empty() {
                "Not compared, as a quarter has 1 to 7 patients (or a count that would reveal them): "
                (p.left_out.join(", ")) "."
            }
        }
    }
}

/// The region page's service changes, each with its comparison from published figures.
pub(crate) async fn section(
    app: &std::sync::Arc<crate::app::App>,
    c: &crate::app::Ctx,
    changes: &[ServiceChange],
    period: Period,
) -> Result<Markup, WebError> {
    let (regions, these) = (c.user.regions.clone(), changes.to_vec());
    let a = app.clone();
    let compared = app
        .national(move |n| {
            let data = Period {
                from: period.earlier(2).from,
                to: period.to,
            };
            these
                .iter()
                .map(|change| {
                    Ok(compare(&a, n, &regions, change, data)?.map(|p| {
                        let note = note(&p);
                        (p.comparison, note)
                    }))
                })
                .collect::<Result<Vec<_>, WebError>>()
        })
        .await?;
    Ok(crate::before_after::section(
        changes,
        &compared,
        period,
        ("/region", &[]),
        "No service change is recorded for your region or every programme. Record one below: \
         the charts then draw it and work their limits out afresh from its month, and uptake \
         before and after it is compared here, from published figures.",
    ))
}
