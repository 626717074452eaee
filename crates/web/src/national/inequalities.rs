//! Inequalities for national analysts: uptake by sex, age band, ethnic group, deprivation
//! quintile and priority group with Wilson intervals, nationally or for a region; the slope
//! index of inequality across deprivation quintiles; and the groups a region is missing.

use crate::app::access::Analyst;
use crate::app::table::{Table, View};
use crate::app::{html_page, App, WebError};
use crate::html::{page, pct};
use crate::national::dashboard::{chosen_period, Filters};
use crate::uptake::uptake_tables;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Period, Programme};
use crest_stats::Z95;
use crest_store::national::EquityFact;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/inequalities", get(inequalities))
        .route("/national/inequalities.{format}", get(download))
        .route("/national/inequalities/chart.{format}", get(chart_download))
}

#[derive(serde::Deserialize)]
struct ChartQuery {
    /// Which grouping: 0 sex, 1 age band, 2 ethnic group, 3 deprivation, 4 priority group.
    #[serde(default)]
    by: String,
    #[serde(flatten)]
    filters: Filters,
}

/// A grouping's uptake as a bar chart with 95% intervals and the overall uptake as a line.
fn uptake_chart(i: usize, title: &str, rows: &Uptake, overall: Option<f64>) -> maud::Markup {
    let rows: Uptake = rows
        .iter()
        .map(|(g, n, k)| (crate::html::group_words(g).into_owned(), *n, *k))
        .collect();
    crest_report::charts::proportion_bars(
        &format!("uptake-{i}"),
        &format!("Uptake by {title}"),
        &rows,
        overall.map(|o| (o, "the overall uptake")),
    )
}

/// One grouping's chart as SVG or PNG, with the page's period and region.
async fn chart_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(q): Query<ChartQuery>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &q.filters)?;
    let i: usize =
        q.by.parse()
            .ok()
            .filter(|i| *i < 5)
            .ok_or_else(|| WebError::BadRequest("Choose a grouping from 0 to 4.".into()))?;
    let chart = app
        .national(move |n| {
            let programmes = n.programmes()?;
            let facts = n.equity_facts(period.from, period.to)?;
            let (n, k, groups) = groupings(&programmes, &facts, &q.filters);
            let overall = (n > 0).then(|| k as f64 / n as f64);
            let (title, rows) = &groups[i];
            Ok(uptake_chart(i, title, rows, overall))
        })
        .await?;
    crate::app::chart_download(
        &chart,
        &format,
        &format!("uptake-by-{i}-{}-{}", period.from, period.to),
        "Nobody was referred in this period and region.",
    )
}

/// Uptake rows: (group, referred, started).
pub(crate) type Uptake = Vec<crest_stats::inequality::GroupUptake>;

/// Uptake by a grouping of the facts.
pub(crate) fn uptake_by(facts: &[&EquityFact], key: impl Fn(&EquityFact) -> String) -> Uptake {
    crest_stats::inequality::uptake_by(facts.iter().copied(), |f| key(f), |f| f.started)
}

/// The facts of the chosen region's programmes (every programme when none is chosen).
fn in_region<'a>(
    programmes: &[Programme],
    facts: &'a [EquityFact],
    f: &Filters,
) -> Vec<&'a EquityFact> {
    let codes: std::collections::HashSet<&str> = programmes
        .iter()
        .filter(|p| f.region.is_empty() || p.region == f.region)
        .map(|p| p.code.as_str())
        .collect();
    facts
        .iter()
        .filter(|x| codes.contains(x.programme.as_str()))
        .collect()
}

/// Referred, started, and uptake by each of the five groupings, for the chosen region.
fn groupings(
    programmes: &[Programme],
    facts: &[EquityFact],
    f: &Filters,
) -> (u64, u64, [(&'static str, Uptake); 5]) {
    let chosen = in_region(programmes, facts, f);
    let n = chosen.len() as u64;
    let k = chosen.iter().filter(|x| x.started).count() as u64;
    (n, k, by_group(&chosen))
}

/// Uptake by each of the five groupings (sex, age band, ethnic group, deprivation, priority
/// group) of `facts`.
pub(crate) fn by_group(facts: &[&EquityFact]) -> [(&'static str, Uptake); 5] {
    [
        (
            "sex",
            uptake_by(facts, |x| {
                x.sex.clone().unwrap_or_else(|| "not known".into())
            }),
        ),
        (
            "age band",
            uptake_by(facts, |x| crest_core::age_band(x.age).to_string()),
        ),
        (
            "ethnic group",
            uptake_by(facts, |x| {
                crest_core::ethnic_group(x.ethnicity.as_deref()).to_string()
            }),
        ),
        (
            "deprivation quintile (1 = most deprived)",
            uptake_by(facts, |x| {
                x.imd_quintile.map_or("not known".into(), |q| q.to_string())
            }),
        ),
        (
            "priority group",
            uptake_by(facts, |x| x.group.label().to_string()),
        ),
    ]
}

/// Every uptake table of the page as one CSV or XLSX (exact counts, for analysts).
async fn download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &f)?;
    app.national(move |n| {
        let programmes = n.programmes()?;
        let facts = n.equity_facts(period.from, period.to)?;
        let (_, _, groups) = groupings(&programmes, &facts, &f);
        Ok(Table::stacked("grouping", &tables(&groups)))
    })
    .await?
    .download(
        &format!("inequalities-{}-{}", period.from, period.to),
        &format,
    )
}

/// Each grouping's uptake table.
fn tables(groups: &[(&'static str, Uptake); 5]) -> Vec<(String, Table)> {
    uptake_tables(groups.iter().map(|(t, rows)| (*t, rows.as_slice())))
}

fn render(
    programmes: &[Programme],
    facts: &[EquityFact],
    f: &Filters,
    period: Period,
    query: &HashMap<String, String>,
) -> maud::Markup {
    let mut regions: Vec<&str> = programmes.iter().map(|p| p.region.as_str()).collect();
    regions.sort_unstable();
    regions.dedup();
    let (n, k, groupings) = groupings(programmes, facts, f);
    let chosen: Vec<&EquityFact> = in_region(programmes, facts, f);
    let overall = (n > 0).then(|| k as f64 / n as f64);
    // A group is being missed when its whole 95% interval lies below the overall uptake.
    let mut missed = Vec::new();
    for (title, rows) in &groupings {
        for (g, n, k) in rows {
            let upper = crest_stats::summary::wilson(*k, *n, Z95).map(|c| c.1);
            let known = !g.to_ascii_lowercase().starts_with("not ");
            if let (Some(u), Some(o), true) = (upper, overall, known) {
                if u < o {
                    missed.push(format!(
                        "{} ({title}): {}",
                        crate::html::group_words(g),
                        pct(Some(*k as f64 / *n as f64))
                    ));
                }
            }
        }
    }
    let mut quintiles = [(0u64, 0u64); 5];
    for x in &chosen {
        if let Some(q) = x.imd_quintile.filter(|q| (1..=5).contains(q)) {
            let slot = &mut quintiles[(q - 1) as usize];
            slot.1 += 1;
            slot.0 += u64::from(x.started);
        }
    }
    let sii = crest_stats::funnel::slope_index(&quintiles);
    maud::html! {
        (crate::html::period_form(period.from, period.to, maud::html! {
            label for="region" { "Region" }
            select id="region" name="region" {
                option value="" { "all (national)" }
                @for r in &regions {
                    option selected[f.region == *r] { (r) }
                }
            }
        }))
        p {
            @if f.region.is_empty() { "Nationally" } @else { (f.region) }
            ": " (crate::html::thousands(n)) " referred, " (crate::html::thousands(k)) " started core CR (uptake " (pct(overall)) ")."
        }
        h2 { "Who is missed" }
        @if missed.is_empty() {
            p { "No group's uptake is clearly below the overall uptake (its whole 95% interval below it)." }
        } @else {
            p { "Uptake clearly below the overall " (pct(overall)) " (the whole 95% interval below it):" }
            ul { @for m in &missed { li { (m) } } }
        }
        @match sii {
            Some(sii) => p {
                strong { "Slope index of inequality: " (format!("{:+.1}", sii * 100.0)) " percentage points" }
                ": the modelled difference in uptake between the most and the least deprived ("
                @if sii > 0.0 { "uptake rises as deprivation falls" }
                @else if sii < 0.0 { "uptake falls as deprivation falls" }
                @else { "no gradient" }
                ")."
            },
            None => p {
                "Slope index of inequality: not enough data (fewer than two deprivation quintiles with referrals)."
            },
        }
        h2 { "Uptake by group" }
        @let q = format!("from={}&to={}&region={}", period.from, period.to, crate::html::url_encode(&f.region));
        p class="noprint" {
            "Download every table below (exact counts): "
            a href={ "/national/inequalities.csv?" (q) } { "CSV" } " · "
            a href={ "/national/inequalities.xlsx?" (q) } { "XLSX" }
        }
        @for (i, ((title, rows), (_, table))) in groupings.iter().zip(tables(&groupings)).enumerate() {
            (uptake_chart(i, title, rows, overall))
            p class="noprint" {
                "Download this chart: "
                a href={ "/national/inequalities/chart.svg?by=" (i) "&" (q) } { "SVG" } " · "
                a href={ "/national/inequalities/chart.png?by=" (i) "&" (q) } { "PNG" }
            }
            (table.render(&View::of(&format!("uptake-{i}"), "/national/inequalities", query)))
        }
    }
}

async fn inequalities(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(f): Query<Filters>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &f)?;
    // Everything the page shows follows from the period and the address.
    let key = crate::app::cache::cache_key(
        "inequalities",
        "national",
        Some(period),
        &View::of("", "/national/inequalities", &query).key(),
    );
    let a = app.clone();
    let body = app
        .national(move |n| {
            a.national_page(n, key, |n| {
                let programmes = n.programmes()?;
                let facts = n.equity_facts(period.from, period.to)?;
                Ok(render(&programmes, &facts, &f, period, &query))
            })
        })
        .await?;
    Ok(html_page(page(
        "National audit: who takes up cardiac rehabilitation",
        c.nav(None),
        body,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(sex: &str, quintile: i64, started: bool) -> EquityFact {
        EquityFact {
            referred: crest_core::Date::from_ymd(2024, 5, 1).unwrap(),
            programme: "P001".into(),
            sex: Some(sex.into()),
            age: Some(65),
            ethnicity: Some("A".into()),
            imd_quintile: Some(quintile),
            group: crest_core::PriorityGroup::MiPci,
            started,
        }
    }

    #[test]
    fn names_the_groups_clearly_below_overall_uptake_and_the_gradient() {
        let programmes = [Programme::parse(["P001", "One", "england", "London", "", ""]).unwrap()];
        // 100 men, 60 started; 100 women, 30 started: overall 45%, women 30% (95% interval
        // 21.9%–39.6%, all below 45%). Quintile 1 holds everyone who did not start but one
        // group, so uptake rises with the quintile.
        let mut facts = Vec::new();
        for i in 0..100 {
            facts.push(fact("male", if i < 60 { 5 } else { 1 }, i < 60));
            facts.push(fact("female", if i < 30 { 4 } else { 1 }, i < 30));
        }
        let period = Period {
            from: crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
            to: crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
        };
        let html = render(
            &programmes,
            &facts,
            &Filters::default(),
            period,
            &HashMap::new(),
        )
        .into_string();
        assert!(
            html.contains("Nationally: 200 referred, 90 started core CR (uptake 45.0%)"),
            "{html}"
        );
        assert!(html.contains("<li>Female (sex): 30.0%</li>"), "{html}");
        assert!(!html.contains("Male (sex): 60.0%</li>"), "{html}");
        assert!(html.contains("Slope index of inequality: +"), "{html}");
        assert!(html.contains("uptake rises as deprivation falls"), "{html}");
    }

    /// A region's name comes from the programmes file: it is shown, and kept selected, as text.
    #[test]
    fn shows_the_region_name_as_text() {
        let region = "North <b>&</b>";
        let programmes = [Programme::parse(["P001", "One", "england", region, "", ""]).unwrap()];
        let facts = [fact("female", 1, true), fact("male", 2, false)];
        let filters = Filters {
            region: region.into(),
            ..Default::default()
        };
        let period = Period {
            from: crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
            to: crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
        };
        let html = render(&programmes, &facts, &filters, period, &HashMap::new()).into_string();
        assert!(
            html.contains(
                "North &lt;b&gt;&amp;&lt;/b&gt;: 2 referred, 1 started core CR (uptake 50.0%)."
            ),
            "{html}"
        );
        assert!(html.contains("<option selected>North &lt;b&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }
}
