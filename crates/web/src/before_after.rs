//! Before and after a service change: uptake over equal windows either side (up to 12 months,
//! cut to the data), overall and by sex, age band, ethnic group, deprivation quintile and
//! priority group, each difference with Newcombe's 95% interval, and the slope index of
//! inequality before and after ("did the gap close?"). The lead's dashboard compares the
//! programme's own records, the national pages the national store's exact facts.

use crate::app::table::{Cell, Column, Table, View};
use crest_core::changes::{ChangeScope, ServiceChange};
use crest_core::{Date, Period};
use crest_stats::before_after::{compare, windows, Comparison, Referral};
use maud::{html, Markup};

/// A referral as compared: its date, whether core CR started, and its group in each of
/// `crate::uptake::GROUPINGS`.
pub(crate) type Keyed = (Date, bool, Vec<String>);

/// Each change's comparison from exact referrals: `first` is the first day they cover and
/// `period` the page's (the windows end with it); `None` where the data do not cover a whole
/// month after the change or the months before it.
pub(crate) fn exact(
    changes: &[ServiceChange],
    keyed: &[Keyed],
    (first, period): (Date, Period),
) -> Vec<Option<Compared>> {
    changes
        .iter()
        .map(|c| {
            let (before, after) =
                windows(c.date, 12, period.to).filter(|(b, _)| b.from >= first)?;
            let cmp = compare(
                keyed.iter().map(|(d, s, g)| Referral {
                    referred: *d,
                    started: *s,
                    groups: g,
                }),
                &crate::uptake::GROUPINGS,
                Some(crate::uptake::DEPRIVATION),
                (before, after),
            );
            Some((cmp, html! {}))
        })
        .collect()
}

/// A change's comparison and a note to show under it.
pub(crate) type Compared = (Comparison, Markup);

/// Each change with its comparison (`compared`, in the same order), newest first (the newest
/// open); `period` is the page's, and `here` its address and the choices it keeps (its period
/// added), for the tables' sorting links; `none` what to say when no change is recorded.
pub(crate) fn section(
    changes: &[ServiceChange],
    compared: &[Option<Compared>],
    period: Period,
    (here, keep): (&str, &[(&str, &str)]),
    none: &str,
) -> Markup {
    // The tables' sorting links keep the page's period and choices.
    let mut query = std::collections::HashMap::from([
        ("from".to_string(), period.from.to_string()),
        ("to".to_string(), period.to.to_string()),
    ]);
    query.extend(keep.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    html! {
        h3 id="changes" { "Service changes" }
        @if changes.is_empty() {
            p { (none) }
        }
        @for (i, c) in changes.iter().enumerate().rev() {
            details open[i + 1 == changes.len()] {
                summary { (c.date.long()) ": " (c.text) }
                p class="hint" { "Recorded by " (c.recorded_by) " (" (scope_words(&c.scope)) ")." }
                @match compared.get(i).and_then(Option::as_ref) {
                    None => p { "Not compared: the data do not cover whole months (whole quarters, for published figures) on both sides of the change." },
                    Some((cmp, note)) => {
                        (comparison(cmp, &View::of(&format!("change-{i}"), here, &query)))
                        (note)
                    }
                }
            }
        }
    }
}

fn scope_words(s: &ChangeScope) -> String {
    match s {
        ChangeScope::Programme(_) => "this programme".into(),
        ChangeScope::Region(r) => format!("the region {r}"),
        ChangeScope::National => "every programme".into(),
    }
}

/// A before/after comparison as a table and a sentence on the deprivation gap.
fn comparison(c: &Comparison, view: &View) -> Markup {
    use crate::html::pct;
    let share = |(k, n): (u64, u64)| {
        if n == 0 {
            "–".to_string()
        } else {
            format!("{} ({k} of {n})", pct(Some(k as f64 / n as f64)))
        }
    };
    let points = |x: f64| format!("{:+.1}", x * 100.0);
    let table = Table {
        // Short: a caption scrolls with a wide table on a phone.
        caption: "Uptake before and after, by group".into(),
        rows_are: "groups".into(),
        columns: vec![
            Column::words("Group", "group"),
            Column::file_only("grouping"),
            Column::words("Before", "before"),
            Column::words("After", "after"),
            Column::numbers("Difference", "difference"),
            Column::words("95% interval", "interval"),
        ],
        rows: c
            .rows
            .iter()
            .map(|r| {
                let name = if r.grouping == "all" {
                    "Everyone".to_string()
                } else {
                    format!(
                        "{}: {}",
                        crate::html::capitalised(&r.grouping),
                        crate::html::group_words(&r.group)
                    )
                };
                vec![
                    Cell::text(name).strong(r.grouping == "all"),
                    Cell::text(r.grouping.clone()),
                    Cell::text(share(r.before)),
                    Cell::text(share(r.after)),
                    match r.difference {
                        Some((d, _, _)) => Cell::number(Some(d), points(d), format!("{d:.4}")),
                        None => Cell::number(None, "–", ""),
                    },
                    Cell::text(r.difference.map_or("–".into(), |(_, lo, hi)| {
                        format!("{} to {}", points(lo), points(hi))
                    })),
                ]
            })
            .collect(),
        downloads: None,
        empty: "Nobody was referred in either window.".into(),
    };
    let gap = match c.slope_index {
        (Some(b), Some(a)) => format!(
            "The slope index of inequality across deprivation quintiles went from {} to {} percentage points: the gap between the most and the least deprived {}.",
            points(b),
            points(a),
            if a.abs() < b.abs() { "narrowed" } else if a.abs() > b.abs() { "widened" } else { "stayed the same" }
        ),
        _ => "The slope index of inequality needs referrals in at least two deprivation quintiles on each side (and, from published figures, every quintile's counts).".into(),
    };
    html! {
        p {
            "Uptake from " (c.after.from.long()) " to " (c.after.to.long()) " against "
            (c.before.from.long()) " to " (c.before.to.long())
            ": the difference is after − before, in percentage points."
        }
        (table.render(view))
        p { (gap) }
        p class="hint" {
            "An interval that does not include 0 is a difference beyond chance (Newcombe's 95% \
             interval). Small groups give wide intervals; before and after are equal windows."
        }
    }
}
