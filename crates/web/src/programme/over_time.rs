//! The programme's measures over time on its dashboard: an SPC chart per measure (uptake,
//! the median wait, assessments 1 and 2, completion, referrals) over the 24 months to the end
//! of the chosen period, each with its variation and assurance icons in words, and each
//! downloadable as SVG or PNG and its months as CSV or XLSX.

use crate::app::access::Staff;
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

/// Each service change with its before/after comparison of uptake (`crate::before_after`),
/// from the programme's own records.
fn changes_section(
    p: &Programme,
    history: &[Record],
    period: Period,
    changes: &[ServiceChange],
) -> Markup {
    let keyed: Vec<crate::before_after::Keyed> = history
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
    crate::before_after::section(
        changes,
        &crate::before_after::exact(changes, &keyed, (period.earlier(2).from, period)),
        period,
        (&format!("/p/{}/dashboard", url_encode(&p.code)), &[]),
        "No service change is recorded for this programme, its region or every programme. \
         A lead records one below: the charts then draw it and work their limits out afresh \
         from its month, and uptake before and after it is compared here.",
    )
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
