//! Case ascertainment for analysts: the national dashboard's section (the nation in a
//! sentence, programmes under 80% named, every programme's exact figures) and its download.

use crate::app::access::Analyst;
use crate::app::table::View;
use crate::app::{App, WebError};
use crate::ascertainment::{exact_table, none_loaded, regions_table, sentence};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_stats::ascertainment::{AreaFigures, Ascertainment};
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/national/ascertainment.{format}", get(download))
}

/// The programmes of `a` among `codes` (those the page's nation and region keep).
fn chosen<'a>(a: &'a Ascertainment, codes: &[&str]) -> Vec<&'a AreaFigures> {
    a.programmes
        .iter()
        .filter(|p| p.has_expected() && codes.contains(&p.area.as_str()))
        .collect()
}

fn link(code: &str) -> String {
    format!("/national/programme?code={}", crate::html::url_encode(code))
}

/// The dashboard's section: `codes` are the programmes it shows, `query` its filters as an
/// address query (for the downloads).
/// `views` are the programme and region tables' (sorting, paging).
pub(crate) fn section(
    a: &Ascertainment,
    codes: &[&str],
    query: &str,
    (view, by_region): (&View, &View),
) -> Markup {
    let rows = chosen(a, codes);
    let flagged: Vec<&str> = rows
        .iter()
        .filter(|p| p.all.flagged())
        .map(|p| p.area.as_str())
        .collect();
    let mut total = crest_stats::ascertainment::Counts::default();
    for p in &rows {
        total.expected += p.all.expected;
        total.referred += p.all.referred;
        total.started += p.all.started;
    }
    let downloads = Some(["csv", "xlsx"].map(|f| format!("/national/ascertainment.{f}?{query}")));
    html! {
        h2 id="ascertainment" { "Case ascertainment: referred of the eligible" }
        @if !a.any() {
            (none_loaded("Load the expected number of eligible patients per programme, quarter and condition (from hospital episode counts) with crest expected import --national FILE."))
        } @else {
            p { (sentence("The programmes shown", &total)) }
            @if flagged.is_empty() {
                p { "No programme shown is under 80% ascertainment." }
            } @else {
                p role="status" {
                    strong { (flagged.len()) " programme(s) under 80% ascertainment" }
                    " (SSNAP's rule of thumb): " (flagged.join(", ")) "."
                }
            }
            (exact_table(a, &rows, Some(&link), downloads).render(view))
            @let regions: Vec<&AreaFigures> = a
                .regions
                .iter()
                .filter(|r| r.has_expected() && rows.iter().any(|p| p.region == r.area))
                .collect();
            @if regions.len() > 1 {
                (regions_table(a, &regions).render(by_region))
            }
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct Chosen {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    nation: String,
    #[serde(default)]
    region: String,
}

/// Every programme's exact figures the dashboard's filters keep, as CSV or XLSX.
async fn download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(q): Query<Chosen>,
) -> Result<Response, WebError> {
    let period = crate::app::requested_period(&app, &q.from, &q.to)?;
    let a = app.clone();
    let table = app
        .national(move |n| {
            let nr = a.national_report(n, period)?;
            let codes: Vec<&str> = nr
                .programmes
                .iter()
                .filter(|p| {
                    (q.nation.is_empty() || p.nation.code() == q.nation)
                        && (q.region.is_empty() || p.region == q.region)
                })
                .map(|p| p.code.as_str())
                .collect();
            let rows = chosen(&nr.ascertainment, &codes);
            Ok(exact_table(&nr.ascertainment, &rows, None, None))
        })
        .await?;
    table.download(
        &format!("ascertainment-{}-{}", period.from, period.to),
        &format,
    )
}
