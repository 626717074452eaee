//! A commissioner's charts over time: the region's programmes pooled, or one programme of it,
//! as SPC charts of published values only (`crest_stats::over_time::published`): no month's
//! counts, a month with 1 to 7 patients not drawn (nor the rest of its quarter), the limits
//! from the months drawn, and the service changes recorded for the region drawn on them.

use crate::app::access::Commissioner;
use crate::app::{App, WebError};
use crate::html::url_encode;
use crate::national::over_time::{chart_data, Pool};
use crate::over_time::{Charts, PublishedSeries, Source};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::changes::ServiceChange;
use crest_core::{KpiEpisode, Period};
use crest_stats::over_time::{published, Measure, Month};
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/region/over-time.{format}", get(download))
}

/// Whose charts: `chart` is one of the commissioner's regions or a programme code (empty: the
/// first region).
#[derive(serde::Deserialize, Default, Clone)]
pub(crate) struct Chosen {
    #[serde(default)]
    pub chart: String,
}

/// A programme of the commissioner's regions: (code, name, region).
pub(crate) type Named = (String, String, String);

/// The pool `chart` names among the commissioner's regions and their programmes; 404 for
/// anything else.
pub(crate) fn pool(regions: &[String], names: &[Named], chart: &str) -> Result<Pool, WebError> {
    if chart.is_empty() {
        let region = regions.first().ok_or(WebError::NotFound)?;
        return Ok(Pool {
            region: region.clone(),
            ..Default::default()
        });
    }
    if let Some(r) = regions.iter().find(|r| r.as_str() == chart) {
        return Ok(Pool {
            region: r.clone(),
            ..Default::default()
        });
    }
    match names.iter().find(|(code, _, _)| code == chart) {
        Some((code, _, region)) => Ok(Pool {
            code: code.clone(),
            region: region.clone(),
            ..Default::default()
        }),
        None => Err(WebError::NotFound),
    }
}

/// A measure this page publishes over time; a clear 400 for referrals, whose monthly counts
/// are not published.
pub(crate) fn published_measure(
    series: &[PublishedSeries],
    measure: Measure,
) -> Result<(), WebError> {
    if series.iter().any(|s| s.measure == measure) {
        Ok(())
    } else {
        Err(WebError::BadRequest(
            "Referrals per month are not published: choose uptake, wait, assessment1, assessment2 or completion.".into(),
        ))
    }
}

/// Every published measure's months for the charts of `period`.
pub(crate) fn series(facts: &[KpiEpisode], period: Period) -> Vec<PublishedSeries> {
    let (from, to) = crate::over_time::months(period);
    Measure::ALL
        .into_iter()
        .filter_map(|measure| {
            published(measure, facts, from, to).map(|(months, hidden)| PublishedSeries {
                measure,
                months,
                hidden,
            })
        })
        .collect()
}

/// The charts of a pool as published, with downloads that keep the choice.
pub(crate) fn charts<'a>(
    series: &'a [PublishedSeries],
    period: Period,
    changes: &'a [ServiceChange],
    chart: &'a str,
) -> Charts<'a> {
    Charts {
        source: Source::Published(series),
        months: crate::over_time::months(period),
        changes,
        target: Box::new(|_| None),
        files: Box::new(move |measure, format| {
            format!(
                "/region/over-time.{format}?measure={}&chart={}&from={}&to={}",
                measure.code(),
                url_encode(chart),
                period.from,
                period.to
            )
        }),
    }
}

/// The section: links to each pool's charts, then the chosen pool's charts.
pub(crate) fn section(
    regions: &[String],
    names: &[Named],
    chosen: &Pool,
    charts: &Charts<'_>,
    period: Period,
) -> Markup {
    let here = |chart: &str| {
        format!(
            "/region?from={}&to={}&chart={}#over-time",
            period.from,
            period.to,
            url_encode(chart)
        )
    };
    let current = if chosen.code.is_empty() {
        chosen.region.as_str()
    } else {
        chosen.code.as_str()
    };
    charts.render_with(html! {
        p class="hint" {
            "Published values only: each month's value comes from counts rounded to the nearest 5, \
             and a month with 1 to 7 patients is not drawn, nor are the other months of its quarter. \
             Referrals per month are not published (the published counts are by quarter)."
        }
        nav aria-label="Charts over time for" {
            p {
                "Charts for: "
                @for (i, r) in regions.iter().enumerate() {
                    @if i > 0 { " · " }
                    @if r == current { strong { (r) " (all programmes)" } }
                    @else { a href=(here(r)) { (r) " (all programmes)" } }
                }
                @for (code, name, _) in names {
                    " · "
                    @if code == current { strong { (name) " (" (code) ")" } }
                    @else { a href=(here(code)) { (name) " (" (code) ")" } }
                }
            }
        }
    })
}

/// What the charts of `chart` read: the pool, its facts and the changes drawn.
pub(crate) async fn load(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    chart: &str,
    period: Period,
) -> Result<(Pool, Vec<KpiEpisode>, Vec<ServiceChange>, Vec<Named>), WebError> {
    let regions = c.user.regions.clone();
    let names: Vec<Named> = app
        .national(move |n| {
            Ok(n.programmes()?
                .into_iter()
                .filter(|p| regions.contains(&p.region))
                .map(|p| (p.code, p.name, p.region))
                .collect())
        })
        .await?;
    let pool = pool(&c.user.regions, &names, chart)?;
    let (facts, changes) = chart_data(app, &pool, period).await?;
    Ok((pool, facts, changes, names))
}

#[derive(serde::Deserialize)]
struct DownloadQuery {
    #[serde(flatten)]
    chart: crate::over_time::ChartQuery,
    #[serde(flatten)]
    chosen: Chosen,
}

/// One published chart as SVG or PNG, or its months (values only) as CSV or XLSX.
async fn download(
    State(app): State<Arc<App>>,
    Commissioner(c): Commissioner,
    Path(format): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, WebError> {
    let measure = crate::over_time::measure(&q.chart.measure)?;
    let period = crate::research::aggregates::period_for(
        &c,
        crate::app::requested_period(&app, &q.chart.from, &q.chart.to)?,
    );
    let (_, facts, changes, _) = load(&app, &c, &q.chosen.chart, period).await?;
    let series = series(&facts, period);
    published_measure(&series, measure)?;
    let name = format!("{}-region-{}", measure.code(), Month::of(period.to));
    let answer =
        charts(&series, period, &changes, &q.chosen.chart).download(measure, &format, &name);
    answer
}
