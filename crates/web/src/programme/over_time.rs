//! The programme's measures over time on its dashboard: an SPC chart per measure (uptake,
//! the median wait, assessments 1 and 2, completion, referrals) over the 24 months to the end
//! of the chosen period, each with its variation and assurance icons in words, and each
//! downloadable as SVG or PNG and its months as CSV or XLSX.

use crate::app::access::Staff;
use crate::app::table::{Cell, Column, Table, View};
use crate::app::{App, WebError};
use crate::html::url_encode;
use crate::over_time::{ChangeAnswers, ChangeForm, Charts};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use crest_core::changes::{ChangeScope, ServiceChange};
use crest_core::{KpiEpisode, Period, Programme, Record};
use crest_stats::over_time::{Measure, Month};
use crest_store::EpisodeQuery;
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/p/{code}/over-time.{format}", get(download))
        .route("/p/{code}/changes", post(record_change))
}

/// The service changes a programme's charts draw: its own, its region's and every programme's.
pub(crate) fn changes_for(p: &Programme, all: Vec<ServiceChange>) -> Vec<ServiceChange> {
    let chart = ChangeScope::Programme(p.code.clone());
    all.into_iter()
        .filter(|c| c.drawn_on(&chart, Some(&p.region)))
        .collect()
}

/// The episodes the dashboard reads for `period`: those referred in it and the two years
/// before it (for the trend and the 24 months of SPC charts).
pub(crate) fn history_query(period: Period) -> EpisodeQuery {
    EpisodeQuery {
        from: Some(period.earlier(2).from),
        to: Some(period.to),
        limit: usize::MAX,
        ..Default::default()
    }
}

/// The nation's KPI threshold for a measure that has one, as the chart's target.
fn target(p: &Programme, measure: Measure) -> Option<f64> {
    let t = crest_stats::Thresholds::default();
    let n = t.nations.get(&p.nation)?;
    match measure {
        Measure::Assessment1 => Some(n.assessment1),
        Measure::Assessment2 => Some(n.assessment2),
        _ => None,
    }
}

/// The programme's charts: its episodes, the 24 months to the period's end, its changes.
pub(crate) fn charts<'a>(
    p: &'a Programme,
    facts: &'a [KpiEpisode],
    period: Period,
    changes: &'a [ServiceChange],
) -> Charts<'a> {
    Charts {
        source: crate::over_time::Source::Facts(facts),
        months: crate::over_time::months(period),
        changes,
        target: Box::new(move |m| target(p, m)),
        files: Box::new(move |measure, format| {
            format!(
                "/p/{}/over-time.{format}?measure={}&from={}&to={}",
                url_encode(&p.code),
                measure.code(),
                period.from,
                period.to
            )
        }),
    }
}

/// The dashboard's section: every measure's chart with its icons and downloads, then the
/// service changes with their before/after comparisons.
pub(crate) fn section(
    p: &Programme,
    history: &[Record],
    period: Period,
    changes: &[ServiceChange],
) -> Markup {
    let facts: Vec<KpiEpisode> = history
        .iter()
        .filter_map(|r| KpiEpisode::of_record(r, 0))
        .collect();
    html! {
        (charts(p, &facts, period, changes).render())
        (changes_section(p, history, period, changes))
    }
}

/// Each service change with its before/after comparison of uptake: overall and by group, the
/// difference with its 95% interval, and whether the deprivation gap closed.
fn changes_section(
    p: &Programme,
    history: &[Record],
    period: Period,
    changes: &[ServiceChange],
) -> Markup {
    use crest_stats::before_after::{compare, windows, Referral};
    let keyed: Vec<(crest_core::Date, bool, Vec<String>)> = history
        .iter()
        .filter_map(|r| {
            let referred = r.date(crest_core::Col::ReferralDate)?;
            Some((
                referred,
                r.date(crest_core::Col::CoreStartDate).is_some(),
                crate::uptake::groups_of(r),
            ))
        })
        .collect();
    let first = period.earlier(2).from;
    // The tables' sorting links keep the page's period.
    let here = format!("/p/{}/dashboard", url_encode(&p.code));
    let query = std::collections::HashMap::from([
        ("from".to_string(), period.from.to_string()),
        ("to".to_string(), period.to.to_string()),
    ]);
    html! {
        h3 id="changes" { "Service changes" }
        @if changes.is_empty() {
            p { "No service change is recorded for this programme, its region or every programme. \
                 A lead records one below: the charts then draw it and work their limits out afresh \
                 from its month, and uptake before and after it is compared here." }
        }
        @for (i, c) in changes.iter().enumerate().rev() {
            details open[i + 1 == changes.len()] {
                summary { (c.date.long()) ": " (c.text) }
                p class="hint" { "Recorded by " (c.recorded_by) " (" (scope_words(&c.scope)) ")." }
                @match windows(c.date, 12, period.to).filter(|(b, _)| b.from >= first) {
                    None => p { "Not compared: this period's data do not cover a whole month after the change, or the months before it." },
                    Some((before, after)) => {
                        @let cmp = compare(
                            keyed.iter().map(|(d, s, g)| Referral { referred: *d, started: *s, groups: g }),
                            &crate::uptake::GROUPINGS,
                            Some(crate::uptake::DEPRIVATION),
                            (before, after),
                        );
                        (comparison(&cmp, &View::of(&format!("change-{i}"), &here, &query)))
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
fn comparison(c: &crest_stats::before_after::Comparison, view: &View) -> Markup {
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
        _ => "The slope index of inequality needs referrals in at least two deprivation quintiles on each side.".into(),
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

/// The form with which a lead records a change to the programme's services.
pub(crate) fn change_form(p: &Programme) -> ChangeForm {
    ChangeForm {
        action: format!("/p/{}/changes", url_encode(&p.code)),
        scopes: vec![("programme".into(), "this programme".into())],
        back: format!("/p/{}/dashboard", url_encode(&p.code)),
    }
}

/// Records a service change for the lead's programme; back to the dashboard at the change, or
/// the form again with what is wrong.
async fn record_change(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    axum::Form(form): axum::Form<ChangeAnswers>,
) -> Result<Response, WebError> {
    if c.user.role != crest_store::Role::ProgrammeLead {
        return Err(WebError::NotFound);
    }
    let code = p.code.clone();
    let nav = c.nav(Some(&p.code));
    change_form(&p)
        .record(&app, &c, nav, form, |_| {
            Some(ChangeScope::Programme(code.clone()))
        })
        .await
}

/// What a programme's charts for `period` read: its episodes' KPI facts and its changes.
pub(crate) async fn chart_data(
    app: &Arc<App>,
    p: &Programme,
    period: Period,
) -> Result<(Vec<KpiEpisode>, Vec<ServiceChange>), WebError> {
    let code = p.code.clone();
    let (records, changes) = app
        .db(move |s, _| {
            Ok((
                s.find_episodes(&code, &history_query(period))?,
                s.service_changes()?,
            ))
        })
        .await?;
    let facts = records
        .iter()
        .filter_map(|r| KpiEpisode::of_record(r, 0))
        .collect();
    Ok((facts, changes_for(p, changes)))
}

/// One measure's chart as SVG or PNG, or its months as CSV or XLSX.
async fn download(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    UrlPath((_code, format)): UrlPath<(String, String)>,
    Query(q): Query<crate::over_time::ChartQuery>,
) -> Result<Response, WebError> {
    let measure = crate::over_time::measure(&q.measure)?;
    let period = crate::app::requested_period(&app, &q.from, &q.to)?;
    let (facts, changes) = chart_data(&app, &p, period).await?;
    let name = format!("{}-{}-{}", measure.code(), p.code, Month::of(period.to));
    let answer = charts(&p, &facts, period, &changes).download(measure, &format, &name);
    answer
}
