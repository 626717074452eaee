//! Measures over time for national analysts: SPC charts of the nation (or the chosen nation's
//! or region's programmes pooled) on the national dashboard, and of one programme on its
//! national page, from the national store's exact figures, with the service changes recorded
//! for them; each downloadable.

use crate::app::access::Analyst;
use crate::app::{App, WebError};
use crate::html::url_encode;
use crate::over_time::{ChangeAnswers, ChangeForm, Charts};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use crest_core::changes::{ChangeScope, ServiceChange};
use crest_core::{KpiEpisode, Period, Programme};
use crest_stats::over_time::Month;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/over-time.{format}", get(download))
        .route("/national/changes", post(record_change))
}

/// The form with which an analyst records a change to every programme's services or a
/// region's (`regions`: those of the national store's programmes).
pub(crate) fn change_form(regions: &[String]) -> ChangeForm {
    ChangeForm {
        action: "/national/changes".into(),
        scopes: std::iter::once(("national".to_string(), "every programme".to_string()))
            .chain(
                regions
                    .iter()
                    .map(|r| (format!("region:{r}"), format!("the region {r}"))),
            )
            .collect(),
        back: "/national/dashboard".into(),
    }
}

/// The regions of the national store's programmes, in order.
pub(crate) fn regions(programmes: &[Programme]) -> Vec<String> {
    let mut r: Vec<String> = programmes.iter().map(|p| p.region.clone()).collect();
    r.sort();
    r.dedup();
    r
}

async fn record_change(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    axum::Form(sent): axum::Form<ChangeAnswers>,
) -> Result<Response, WebError> {
    let regions = app.national(|n| Ok(regions(&n.programmes()?))).await?;
    let nav = c.nav(None);
    change_form(&regions)
        .record(&app, &c, nav, sent, |s| match s.split_once(':') {
            None if s == "national" => Some(ChangeScope::National),
            Some(("region", r)) => regions
                .iter()
                .find(|x| x.as_str() == r)
                .map(|x| ChangeScope::Region(x.clone())),
            _ => None,
        })
        .await
}

/// Whose figures a national chart pools: one programme (`code`), else the programmes of a
/// nation and a region (either may be empty: all).
#[derive(serde::Deserialize, Default, Clone)]
pub(crate) struct Pool {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub nation: String,
    #[serde(default)]
    pub region: String,
}

/// The programmes a national chart pools.
pub(crate) fn chosen(programmes: &[Programme], f: &Pool) -> Vec<Programme> {
    let code = f.code.as_str();
    programmes
        .iter()
        .filter(|p| {
            if code.is_empty() {
                (f.nation.is_empty() || p.nation.code() == f.nation)
                    && (f.region.is_empty() || p.region == f.region)
            } else {
                p.code == code
            }
        })
        .cloned()
        .collect()
}

/// The KPI facts the charts of `period` read: referred from a year before their first month
/// (a wait counts in its month of start) to the end of their last.
pub(crate) fn facts(
    n: &mut crest_store::NationalStore,
    programmes: &[Programme],
    period: Period,
) -> Result<Vec<KpiEpisode>, WebError> {
    let (from, to) = crate::over_time::months(period);
    Ok(n.kpi_episodes(from.back(12).first_day(), to.last_day(), programmes)?)
}

/// The service changes with their before/after comparisons of uptake, from the national
/// store's exact facts of `programmes` (read only where there is a change to compare).
pub(crate) fn compared(
    n: &mut crest_store::NationalStore,
    programmes: &[Programme],
    changes: &[ServiceChange],
    period: Period,
    here: (&str, &[(&str, &str)]),
) -> Result<maud::Markup, WebError> {
    let first = period.earlier(2).from;
    let mut keyed: Vec<crate::before_after::Keyed> = Vec::new();
    if let (Some(earliest), Some(latest)) = (
        changes.iter().map(|c| c.date).min(),
        changes.iter().map(|c| c.date).max(),
    ) {
        // Each change compares up to 12 months either side.
        let from = earliest.add_days(-370).max(first);
        let to = latest.add_days(370).min(period.to);
        let codes: std::collections::HashSet<&str> =
            programmes.iter().map(|p| p.code.as_str()).collect();
        n.each_equity_fact(None, from, to, &mut |f| {
            if codes.contains(f.programme.as_str()) {
                keyed.push((f.referred, f.started, crate::uptake::groups_of_fact(&f)));
            }
            Ok(())
        })?;
    }
    Ok(crate::before_after::section(
        changes,
        &crate::before_after::exact(changes, &keyed, (first, period)),
        period,
        here,
        "No service change is recorded for these programmes. Analysts record them on the \
         national dashboard, commissioners on their region's page and leads on their dashboard: \
         the charts then draw each and work their limits out afresh from its month, and uptake \
         before and after it is compared here.",
    ))
}

/// The service changes a national chart of these programmes draws: every programme's, the
/// chosen region's, and one programme's own and its region's.
pub(crate) fn changes_for(
    all: Vec<ServiceChange>,
    programmes: &[Programme],
    f: &Pool,
) -> Vec<ServiceChange> {
    let (chart, region) = match programmes.first() {
        Some(p) if !f.code.is_empty() => (
            ChangeScope::Programme(p.code.clone()),
            Some(p.region.clone()),
        ),
        _ if !f.region.is_empty() => (ChangeScope::Region(f.region.clone()), None),
        _ => (ChangeScope::National, None),
    };
    all.into_iter()
        .filter(|c| c.drawn_on(&chart, region.as_deref()))
        .collect()
}

/// The charts, with downloads that keep the page's choices.
pub(crate) fn charts<'a>(
    facts: &'a [KpiEpisode],
    period: Period,
    changes: &'a [ServiceChange],
    f: &'a Pool,
) -> Charts<'a> {
    Charts {
        source: crate::over_time::Source::Facts(facts),
        months: crate::over_time::months(period),
        changes,
        // Thresholds differ by nation: a pooled chart has no one target.
        target: Box::new(|_| None),
        files: Box::new(move |measure, format| {
            format!(
                "/national/over-time.{format}?measure={}&from={}&to={}&nation={}&region={}&code={}",
                measure.code(),
                period.from,
                period.to,
                url_encode(&f.nation),
                url_encode(&f.region),
                url_encode(&f.code)
            )
        }),
    }
}

/// What a national chart of `pool` for `period` reads: the KPI facts and the changes it draws
/// (404 when the pool has no programme).
pub(crate) async fn chart_data(
    app: &Arc<App>,
    pool: &Pool,
    period: Period,
) -> Result<(Vec<KpiEpisode>, Vec<ServiceChange>), WebError> {
    let all_changes = app.db(|s, _| Ok(s.service_changes()?)).await?;
    let chosen_pool = pool.clone();
    let (facts, programmes) = app
        .national(move |n| {
            let programmes = chosen(&n.programmes()?, &chosen_pool);
            if programmes.is_empty() {
                return Err(WebError::NotFound);
            }
            Ok((facts(n, &programmes, period)?, programmes))
        })
        .await?;
    Ok((facts, changes_for(all_changes, &programmes, pool)))
}

#[derive(serde::Deserialize)]
struct DownloadQuery {
    #[serde(flatten)]
    chart: crate::over_time::ChartQuery,
    #[serde(flatten)]
    pool: Pool,
}

/// One chart as SVG or PNG, or its months as CSV or XLSX (exact: analysts' own).
async fn download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Path(format): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, WebError> {
    let measure = crate::over_time::measure(&q.chart.measure)?;
    let period = crate::app::requested_period(&app, &q.chart.from, &q.chart.to)?;
    let (facts, changes) = chart_data(&app, &q.pool, period).await?;
    let scope = if q.pool.code.is_empty() {
        "national".to_string()
    } else {
        q.pool.code.clone()
    };
    let name = format!("{}-{scope}-{}", measure.code(), Month::of(period.to));
    let answer = charts(&facts, period, &changes, &q.pool).download(measure, &format, &name);
    answer
}
