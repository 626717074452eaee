//! The programme's measures over time on its dashboard: an SPC chart per measure (uptake,
//! the median wait, assessments 1 and 2, completion, referrals) over the 24 months to the end
//! of the chosen period, each with its variation and assurance icons in words, and each
//! downloadable as SVG or PNG and its months as CSV or XLSX.

use crate::app::access::Staff;
use crate::app::table::{Cell, Column, Table};
use crate::app::{App, WebError};
use crate::html::url_encode;
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{KpiEpisode, Period, Programme, Record};
use crest_report::spc_chart::{spc_chart, spc_icons, value_words};
use crest_stats::over_time::{self, Measure, Month, SpcMonth};
use crest_stats::spc::Chart;
use crest_store::EpisodeQuery;
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/p/{code}/over-time.{format}", get(download))
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

/// The 24 months the charts cover: to the month the period ends in.
fn months(period: Period) -> (Month, Month) {
    let to = Month::of(period.to);
    (to.back(23), to)
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

/// One measure's chart over `history`.
fn chart_of(
    p: &Programme,
    history: &[KpiEpisode],
    period: Period,
    measure: Measure,
) -> (Vec<SpcMonth>, Chart) {
    over_time::spc_chart(measure, history, months(period), &[], target(p, measure))
}

/// The dashboard's section: every measure's chart with its icons and downloads.
pub(crate) fn section(p: &Programme, history: &[Record], period: Period) -> Markup {
    let facts: Vec<KpiEpisode> = history
        .iter()
        .filter_map(|r| KpiEpisode::of_record(r, 0))
        .collect();
    let (from, to) = months(period);
    let files = |measure: Measure, format: &str| {
        format!(
            "/p/{}/over-time.{format}?measure={}&from={}&to={}",
            url_encode(&p.code),
            measure.code(),
            period.from,
            period.to
        )
    };
    html! {
        h2 id="over-time" { "Over time: " (from.long()) " to " (to.long()) }
        p class="hint" {
            "Each chart shows a measure month by month as a statistical process control chart, \
             the way NHS teams read change (Making Data Count). The solid line is the mean and the \
             dashed lines the process limits: months between them vary by chance. A square marks \
             special cause in the better direction, a diamond in the worse: a month outside the \
             limits, 7 in a row on one side of the mean, 7 rising or falling, or 2 of 3 close to a \
             limit. Limits need 12 months."
        }
        @for measure in Measure::ALL {
            @let (months, chart) = chart_of(p, &facts, period, measure);
            h3 { (measure.label()) }
            (spc_icons(measure, &months, &chart))
            (spc_chart(&format!("spc-{}", measure.code()), measure, &months, &[], &[]))
            p class="noprint" {
                "Download this chart: "
                a href=(files(measure, "svg")) { "SVG" } " · "
                a href=(files(measure, "png")) { "PNG" }
                " · its months: "
                a href=(files(measure, "csv")) { "CSV" } " · "
                a href=(files(measure, "xlsx")) { "XLSX" }
            }
        }
    }
}

/// A chart's months as a table: the page's downloads hold every month with exact values, in
/// the columns `crest spc` writes.
fn months_table(measure: Measure, months: &[SpcMonth]) -> Table {
    let headings = [
        "Month",
        "Numerator",
        "Denominator",
        "Value",
        "Mean",
        "Lower limit",
        "Upper limit",
        "Signal",
        "Variation",
    ];
    Table {
        caption: format!("{}, {}", measure.label(), measure.by()),
        rows_are: "months".into(),
        columns: headings
            .iter()
            .zip(over_time::COLUMNS)
            .enumerate()
            .map(|(i, (h, f))| {
                if (1..=6).contains(&i) {
                    Column::numbers(h, f)
                } else {
                    Column::words(h, f)
                }
            })
            .collect(),
        rows: months
            .iter()
            .map(|m| {
                let limits = m.point.and_then(|p| p.limits);
                let values = [
                    m.figures.value,
                    limits.map(|l| l.centre),
                    limits.map(|l| l.lower),
                    limits.map(|l| l.upper),
                ];
                let exact = m.cells();
                let mut row = vec![
                    Cell::coded(m.figures.month.long(), exact[0].clone()),
                    Cell::text(exact[1].clone()),
                    Cell::text(exact[2].clone()),
                ];
                row.extend(values.iter().zip(&exact[3..7]).map(|(v, e)| {
                    Cell::number(
                        *v,
                        v.map_or("–".into(), |v| value_words(measure, v)),
                        e.clone(),
                    )
                }));
                row.push(m.point.map_or(Cell::text(""), |p| {
                    Cell::coded(p.signal.words(), p.signal.code())
                }));
                row.push(m.point.map_or(Cell::text(""), |p| {
                    Cell::coded(p.variation.words(), p.variation.code())
                }));
                row
            })
            .collect(),
        downloads: None,
        empty: "No months.".into(),
    }
}

#[derive(serde::Deserialize)]
struct DownloadQuery {
    #[serde(default)]
    measure: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// One measure's chart as SVG or PNG, or its months as CSV or XLSX.
async fn download(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    UrlPath((_code, format)): UrlPath<(String, String)>,
    Query(q): Query<DownloadQuery>,
) -> Result<Response, WebError> {
    let measure = Measure::parse(&q.measure).ok_or_else(|| {
        WebError::BadRequest(format!(
            "Choose a measure: {}.",
            Measure::ALL.map(Measure::code).join(", ")
        ))
    })?;
    let period = crate::app::requested_period(&app, &q.from, &q.to)?;
    let code = p.code.clone();
    let records = app
        .db(move |s, _| Ok(s.find_episodes(&code, &history_query(period))?))
        .await?;
    let facts: Vec<KpiEpisode> = records
        .iter()
        .filter_map(|r| KpiEpisode::of_record(r, 0))
        .collect();
    let (months, _) = chart_of(&p, &facts, period, measure);
    let name = format!("{}-{}-{}", measure.code(), p.code, Month::of(period.to));
    match format.as_str() {
        "svg" | "png" => crate::app::chart_download(
            &spc_chart("chart", measure, &months, &[], &[]),
            &format,
            &name,
            "There is nothing to draw for these months.",
        ),
        _ => months_table(measure, &months).download(&name, &format),
    }
}
