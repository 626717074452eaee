//! A commissioner's view of their region, always disclosure-controlled: uptake and
//! inequalities with intervals and the slope index, who is missed, demand by quarter, waits and
//! capacity by programme, eligible patients referred and started, each programme's KPIs and
//! grade as published, beside the nation, and charts over time of published values.
//! Every table is an aggregate any commissioner could ask for (and download) on the
//! aggregates page, so the page never shows a cell they could not get there.

use crate::app::access::Commissioner;
use crate::app::{html_page, App, WebError};
use crate::html::{page, pct};
use crate::research::aggregates::{answer_table, Asked};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_report::aggregates::{tables_with, Answer, Query as AggQuery};
use crest_stats::aggregate::{Dimension, Measure, Table};
use crest_stats::kpis::{compute, Thresholds};
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/region", get(region_page))
        .route("/region/kpis.{format}", get(kpis_download))
        .route("/region/chart.{format}", get(chart_download))
        .route(
            "/region/ascertainment.{format}",
            get(ascertainment_download),
        )
}

#[derive(serde::Deserialize, Default)]
struct Chosen {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

const GROUPS: [Dimension; 5] = [
    Dimension::Sex,
    Dimension::AgeBand,
    Dimension::Ethnicity,
    Dimension::ImdQuintile,
    Dimension::PriorityGroup,
];

/// Why a table of the page is not shown.
#[derive(Debug, thiserror::Error)]
enum NotShown {
    /// The breakdown would reveal a suppressed count.
    #[error(transparent)]
    Refused(#[from] crest_stats::aggregate::Refused),
    /// The report withholds it (the region's totals protect another's).
    #[error(transparent)]
    NotPublished(#[from] crest_report::aggregates::NotPublished),
}

/// A published table, or why it cannot be shown.
type Shown = Result<Answer, NotShown>;

fn publish(t: &Table, period: crest_core::Period) -> Shown {
    t.published_rows()
        .map(|rows| Answer {
            columns: t.columns(),
            rows,
            published: true,
            from: period.from.to_string(),
            to: period.to.to_string(),
        })
        .map_err(NotShown::from)
}

/// A published percentage cell as a fraction, if it is a number.
fn share(cell: &str) -> Option<f64> {
    cell.parse::<f64>().ok().map(|p| p / 100.0)
}

/// A quarter's key (`2024 Q3`) as people name it: `Jul–Sep 2024`. Published figures come by
/// quarter, never by month (the published grid of `crest_report::aggregates`).
fn quarter_name(key: &str) -> String {
    const NAMES: [&str; 4] = ["Jan–Mar", "Apr–Jun", "Jul–Sep", "Oct–Dec"];
    match key.split_once(" Q") {
        Some((year, q)) => q
            .parse::<usize>()
            .ok()
            .and_then(|q| NAMES.get(q.wrapping_sub(1)))
            .map_or(key.to_string(), |n| format!("{n} {year}")),
        None => key.to_string(),
    }
}

/// A published count cell, if it is a number.
fn count(cell: &str) -> Option<u64> {
    cell.parse::<u64>().ok()
}

/// What the region page computes, all published.
struct RegionFigures {
    overall: Shown,
    nation: Shown,
    groups: Vec<(Dimension, Shown, Shown)>,
    referred_by_quarter: Shown,
    started_by_quarter: Shown,
    waits: Shown,
    in_time: Shown,
    in_time_nation: Shown,
    referred_by_programme: Shown,
    started_by_programme: Shown,
    kpis: Vec<crest_stats::published::PublishedProgramme>,
    names: Vec<(String, String)>,
    /// Referrals and starts against the expected patients of the region's programmes.
    ascertainment: crest_stats::ascertainment::Ascertainment,
    /// Whether the region's total is published (the annual report may withhold it).
    region_total_published: bool,
}

fn figures(
    n: &mut crest_store::NationalStore,
    regions: &[String],
    period: crest_core::Period,
    held: &crest_report::aggregates::Facts,
) -> Result<RegionFigures, WebError> {
    let q = |by: &[Dimension], measure: Measure, mine: bool| AggQuery {
        by: by.to_vec(),
        measure,
        period,
        regions: mine.then(|| regions.to_vec()),
    };
    let mut qs = vec![
        q(&[], Measure::Uptake, true),
        q(&[], Measure::Uptake, false),
    ];
    for d in GROUPS {
        qs.push(q(&[d], Measure::Uptake, true));
        qs.push(q(&[d], Measure::Uptake, false));
    }
    qs.extend([
        q(&[Dimension::Quarter], Measure::Referred, true),
        q(&[Dimension::Quarter], Measure::Started, true),
        q(&[Dimension::Programme], Measure::WaitDays, true),
        q(&[Dimension::Programme], Measure::StartedInTime, true),
        q(&[], Measure::StartedInTime, false),
        q(&[Dimension::Programme], Measure::Referred, true),
        q(&[Dimension::Programme], Measure::Started, true),
    ]);
    let t = tables_with(n, period, None, &qs, Some(held)).map_err(WebError::internal)?;
    let p = |i: usize| publish(&t[i], period);
    let groups = GROUPS
        .iter()
        .enumerate()
        .map(|(i, d)| (*d, p(2 + 2 * i), p(3 + 2 * i)))
        .collect();
    let base = 2 + 2 * GROUPS.len();
    let programmes = n.programmes()?;
    let mine: Vec<crest_core::Programme> = programmes
        .iter()
        .filter(|p| regions.contains(&p.region))
        .cloned()
        .collect();
    let episodes = n.kpi_episodes(period.from, period.to, &mine)?;
    let report = compute(&mine, &episodes, period, &Thresholds::default());
    let ascertainment = crest_stats::ascertainment::ascertainment(
        &n.expected()?,
        &mine,
        &episodes,
        period.from,
        period.to,
    );
    // The annual report of this period withholds a region's totals where, with its
    // programmes' counts, they would give a hidden result away; so does this page, or the two
    // together would.
    let everyone = compute(
        &programmes,
        &n.kpi_episodes(period.from, period.to, &programmes)?,
        period,
        &Thresholds::default(),
    );
    let withheld = crest_report::publication_audit::withheld_places(
        &everyone,
        &programmes,
        crest_stats::funnel::Method::Auto,
    );
    let protected = mine
        .iter()
        .any(|p| withheld.contains(&(p.nation.code().to_string(), p.region.clone())));
    let region_total = |shown: Shown| {
        if protected {
            Err(crest_report::aggregates::NotPublished::Withheld.into())
        } else {
            shown
        }
    };
    Ok(RegionFigures {
        overall: region_total(p(0)),
        nation: p(1),
        groups,
        referred_by_quarter: p(base),
        started_by_quarter: p(base + 1),
        waits: p(base + 2),
        in_time: p(base + 3),
        in_time_nation: p(base + 4),
        referred_by_programme: p(base + 5),
        started_by_programme: p(base + 6),
        kpis: report
            .programmes
            .iter()
            .map(crest_stats::published::programme)
            .collect(),
        names: mine.into_iter().map(|p| (p.code, p.name)).collect(),
        ascertainment,
        region_total_published: !protected,
    })
}

/// An uptake table with the nation's published percentage of each group beside it.
fn with_nation(a: &Answer, nation: &Shown) -> Answer {
    let mut shown = a.clone();
    shown.columns.push("nation_percent".into());
    for r in &mut shown.rows {
        let national = nation
            .as_ref()
            .ok()
            .and_then(|n| n.rows.iter().find(|x| x[0] == r[0]))
            .map_or("–".to_string(), |x| x[3].clone());
        r.push(national);
    }
    shown
}

fn not_shown(why: &NotShown) -> Markup {
    html! { p class="hint" { "Not shown: " (why) } }
}

fn download(asked: &Asked) -> Markup {
    download_of("this table", asked)
}

/// Links to download `what` (the published counts behind a table) as CSV or XLSX.
fn download_of(what: &str, asked: &Asked) -> Markup {
    html! {
        p {
            "Download " (what) ": "
            a href={ "/aggregates.csv?" (asked.query_string()) } download { "CSV" } " · "
            a href={ "/aggregates.xlsx?" (asked.query_string()) } download { "XLSX" }
        }
    }
}

/// The uptake of an answer's only row (no breakdown): (percent, label).
fn headline(a: &Shown) -> (Option<f64>, String) {
    match a {
        Ok(a) => a
            .rows
            .first()
            .map(|r| {
                (
                    share(&r[2]),
                    format!(
                        "{} of {} referred started",
                        crate::html::count_words(&r[0]),
                        crate::html::count_words(&r[1])
                    ),
                )
            })
            .unwrap_or((None, "nobody referred".into())),
        Err(why) => (None, format!("not shown. {why}")),
    }
}

/// The page's charts by name: `uptake-<dimension>` for each grouping that can be shown,
/// `demand` and `conversion` when the quarters can; drawn from the published figures.
fn charts(f: &RegionFigures) -> Vec<(String, Markup)> {
    let (nation, _) = headline(&f.nation);
    let mut out = Vec::new();
    for (d, mine, _) in &f.groups {
        if let Ok(a) = mine {
            // (group, referred, started), as the chart takes them.
            let bars: Vec<(String, u64, u64)> = a
                .rows
                .iter()
                .filter_map(|r| Some((r[0].clone(), count(&r[2])?, count(&r[1])?)))
                .collect();
            let id = format!("uptake-{}", d.code());
            let chart = crest_report::charts::proportion_bars(
                &id,
                &format!("Uptake by {} in your region", d.label().to_lowercase()),
                &bars,
                nation.map(|n| (n, "the nation's uptake")),
            );
            out.push((id, chart));
        }
    }
    if let (Ok(r), Ok(s)) = (&f.referred_by_quarter, &f.started_by_quarter) {
        // Quarters by their months under the charts.
        let labels: Vec<String> = r.rows.iter().map(|x| quarter_name(&x[0])).collect();
        let referred: Vec<(String, f64)> = r
            .rows
            .iter()
            .filter_map(|x| Some((quarter_name(&x[0]), count(&x[1])? as f64)))
            .collect();
        let share: Vec<Option<f64>> = r
            .rows
            .iter()
            .map(|x| {
                let started = s
                    .rows
                    .iter()
                    .find(|y| y[0] == x[0])
                    .map_or(Some(0), |y| count(&y[1]))?;
                count(&x[1])
                    .filter(|n| *n > 0)
                    .map(|n| started as f64 / n as f64)
            })
            .collect();
        out.push((
            "demand".into(),
            crest_report::charts::column_chart(
                "demand",
                "Referrals by quarter",
                "Quarter of referral",
                "Patients referred",
                &referred,
            ),
        ));
        out.push((
            "conversion".into(),
            crest_report::charts::trend_chart(
                "conversion",
                "Share of each quarter's referrals who started core CR",
                &labels,
                &[("Started core CR", share)],
            ),
        ));
    }
    out
}

/// A chart of the page with links to download it.
fn chart_with_links(charts: &[(String, Markup)], id: &str, period: crest_core::Period) -> Markup {
    html! {
        @if let Some((_, chart)) = charts.iter().find(|c| c.0 == id) {
            (chart)
            p class="noprint" {
                "Download this chart: "
                a href={ "/region/chart.svg?chart=" (id) "&from=" (period.from) "&to=" (period.to) } download { "SVG" } " · "
                a href={ "/region/chart.png?chart=" (id) "&from=" (period.from) "&to=" (period.to) } download { "PNG" }
            }
        }
    }
}

fn render(
    c: &crate::app::Ctx,
    f: &RegionFigures,
    period: crest_core::Period,
    asked: &Asked,
    (view, eligible): (&crate::app::table::View, &crate::app::table::View),
) -> Markup {
    let drawn = charts(f);
    let (overall, _) = headline(&f.overall);
    html! {
        (crate::html::period_form(period.from, period.to, html! {}))
        p {
            "Published figures for " strong { (c.user.regions.join(", ")) } ", referred "
            (period.from.long()) " to " (period.to.long()) ". Counts of 1 to 7 show as *, other counts are rounded to the nearest 5, "
            "and percentages come from the rounded counts."
        }
        nav aria-label="On this page" {
            ul {
                li { a href="#uptake" { "Uptake and inequalities" } }
                li { a href="#missed" { "Who is missed" } }
                li { a href="#demand" { "Demand by quarter" } }
                li { a href="#waits" { "Waits by programme" } }
                li { a href="#capacity" { "Capacity by programme" } }
                li { a href="#ascertainment" { "Eligible, referred and started" } }
                li { a href="#over-time" { "Over time" } }
                li { a href="#kpis" { "Programmes' KPIs and grades" } }
            }
        }
        (uptake_section(f, &drawn, period, asked))
        (missed_section(f, overall))
        (demand_section(f, &drawn, period, asked))
        (waits_section(f, asked))
        (capacity_section(f, period, asked))
        (ascertainment_section(f, period, eligible))
        (kpis_section(f, period, view))
    }
}

/// The same question as `asked`, by another breakdown and measure (for a download link).
fn ask(asked: &Asked, by: &str, measure: &str) -> Asked {
    Asked {
        by: by.into(),
        measure: measure.into(),
        ..asked.clone()
    }
}

/// The region's and the nation's uptake, the slope index, and uptake by each grouping beside
/// the nation's.
fn uptake_section(
    f: &RegionFigures,
    drawn: &[(String, Markup)],
    period: crest_core::Period,
    asked: &Asked,
) -> Markup {
    let (overall, overall_text) = headline(&f.overall);
    let (nation, nation_text) = headline(&f.nation);
    let ask = |by: &str, measure: &str| ask(asked, by, measure);
    // The slope index from the published quintile counts; only when no quintile is hidden.
    let sii = f
        .groups
        .iter()
        .find(|g| g.0 == Dimension::ImdQuintile)
        .and_then(|(_, a, _)| a.as_ref().ok())
        .and_then(|a| {
            let mut q = [(0u64, 0u64); 5];
            for r in &a.rows {
                if let Ok(i @ 1..=5) = r[0].parse::<usize>() {
                    q[i - 1] = (count(&r[1])?, count(&r[2])?);
                }
            }
            crest_stats::funnel::slope_index(&q)
        });
    html! {
        h2 id="uptake" { "Uptake and inequalities" }
        p {
            strong { "Your region: " (pct(overall)) } " (" (overall_text) "). "
            strong { "Nation: " (pct(nation)) } " (" (nation_text) ")."
        }
        @match sii {
            Some(s) => p {
                strong { "Slope index of inequality: " (format!("{:+.1}", s * 100.0)) " percentage points" }
                " between the most and the least deprived ("
                @if s > 0.0 { "uptake rises as deprivation falls" } @else if s < 0.0 { "uptake falls as deprivation falls" } @else { "no gradient" }
                "), from the published counts."
            },
            None => p { "Slope index of inequality: not available (a deprivation quintile has too few patients to publish, or fewer than two have any)." },
        }
        @for (d, mine, nat) in &f.groups {
            h3 { "By " (d.label().to_lowercase()) }
            @match mine {
                Err(why) => (not_shown(why)),
                Ok(a) => {
                    (chart_with_links(drawn, &format!("uptake-{}", d.code()), period))
                    @let shown = with_nation(a, nat);
                    (answer_table(&format!("Uptake by {} (the nation beside it)", d.label().to_lowercase()), &shown, Measure::Uptake))
                    (download(&ask(d.code(), "uptake")))
                }
            }
        }
    }
}

/// Who is missed: a group whose whole published 95% interval lies below the region's uptake.
fn missed_section(f: &RegionFigures, overall: Option<f64>) -> Markup {
    // Who is missed: a group whose whole published 95% interval lies below the region's uptake.
    let mut missed = Vec::new();
    for (d, mine, _) in &f.groups {
        if let (Ok(a), Some(o)) = (mine, overall) {
            for r in &a.rows {
                let known = !r[0].to_ascii_lowercase().starts_with("not ");
                if let (Some(hi), true) = (share(&r[5]), known) {
                    if hi < o {
                        missed.push(format!(
                            "{} ({}): {}",
                            r[0],
                            d.label().to_lowercase(),
                            pct(share(&r[3]))
                        ));
                    }
                }
            }
        }
    }
    html! {
        h2 id="missed" { "Who is missed" }
        @if missed.is_empty() {
            p { "No group's uptake is clearly below your region's " (pct(overall)) " (its whole 95% interval below it)." }
        } @else {
            p { "Uptake clearly below your region's " (pct(overall)) " (the whole 95% interval below it):" }
            ul { @for m in &missed { li { (m) } } }
        }
    }
}

/// Demand: referrals and starts by quarter.
fn demand_section(
    f: &RegionFigures,
    drawn: &[(String, Markup)],
    period: crest_core::Period,
    asked: &Asked,
) -> Markup {
    let ask = |by: &str, measure: &str| ask(asked, by, measure);
    html! {
        h2 id="demand" { "Demand: referrals and starts by quarter, " (period.from.long()) " to " (period.to.long()) }
        @match (&f.referred_by_quarter, &f.started_by_quarter) {
            (Ok(r), Ok(s)) => {
                (chart_with_links(drawn, "demand", period))
                (chart_with_links(drawn, "conversion", period))
                (answer_table("Referrals by quarter", r, Measure::Referred))
                (download(&ask("quarter", "referred")))
                (answer_table("Starts of core CR by quarter of referral", s, Measure::Started))
                (download(&ask("quarter", "started")))
            }
            (Err(why), _) | (_, Err(why)) => (not_shown(why)),
        }
    }
}

/// Waits from referral to start by programme, and starts within the standard's days.
fn waits_section(f: &RegionFigures, asked: &Asked) -> Markup {
    let ask = |by: &str, measure: &str| ask(asked, by, measure);
    html! {
        h2 id="waits" { "Waits by programme" }
        p {
            "Nationally, " (match &f.in_time_nation { Ok(a) => a.rows.first().map_or("–".to_string(), |r| format!("{}%", r[2])), Err(_) => "*".into() })
            " of those who started did so within 28 days of referral (42 after CABG)."
        }
        @match &f.waits { Err(why) => (not_shown(why)), Ok(a) => {
            (answer_table("Days from referral to starting core CR, by programme", a, Measure::WaitDays))
            (download(&ask("programme", "wait_days")))
        } }
        @match &f.in_time { Err(why) => (not_shown(why)), Ok(a) => {
            (answer_table("Started within 28 days (42 after CABG), by programme", a, Measure::StartedInTime))
            (download(&ask("programme", "started_in_time")))
        } }
    }
}

/// Capacity: starts against referrals per month, by programme.
fn capacity_section(f: &RegionFigures, period: crest_core::Period, asked: &Asked) -> Markup {
    let ask = |by: &str, measure: &str| ask(asked, by, measure);
    let months = {
        let (fy, fm, _) = period.from.ymd();
        let (ty, tm, _) = period.to.ymd();
        ((ty - fy) * 12 + tm as i32 - fm as i32 + 1).max(1) as f64
    };
    html! {
        h2 id="capacity" { "Capacity: starts against referrals, by programme" }
        @match (&f.referred_by_programme, &f.started_by_programme) {
            (Ok(r), Ok(s)) => {
                div class="table-scroll" {
                    table class="data" tabindex="0" {
                        caption { "Referrals and starts per month (published counts over " (months) " months)" }
                        thead { tr {
                            th scope="col" { "Programme" }
                            th scope="col" class="num" { "Referred per month" }
                            th scope="col" class="num" { "Started per month" }
                            th scope="col" class="num" { "Starts per 100 referrals" }
                        } }
                        tbody {
                            @for x in &r.rows {
                                @let started = s.rows.iter().find(|y| y[0] == x[0]).map_or("0", |y| y[1].as_str());
                                tr {
                                    th scope="row" { (x[0]) }
                                    td class="num" { (count(&x[1]).map_or("*".to_string(), |v| format!("{:.1}", v as f64 / months))) }
                                    td class="num" { (count(started).map_or("*".to_string(), |v| format!("{:.1}", v as f64 / months))) }
                                    td class="num" {
                                        @match (count(started), count(&x[1])) {
                                            (Some(a), Some(b)) if b > 0 => (format!("{:.0}", 100.0 * a as f64 / b as f64)),
                                            _ => "*",
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (download_of("the referrals by programme", &ask("programme", "referred")))
                (download_of("the starts by programme", &ask("programme", "started")))
            }
            (Err(why), _) | (_, Err(why)) => (not_shown(why)),
        }
    }
}

/// The published "eligible, referred and started" table: the region's total (where the annual
/// report publishes it) and each programme. Its referrals and starts by programme are the
/// capacity section's, so where those are not shown, neither is this.
fn ascertainment_table(
    f: &RegionFigures,
    period: crest_core::Period,
) -> Result<crate::app::table::Table, &NotShown> {
    f.referred_by_programme
        .as_ref()
        .and(f.started_by_programme.as_ref())?;
    let a = &f.ascertainment;
    let mut areas: Vec<&crest_stats::ascertainment::AreaFigures> = Vec::new();
    if f.region_total_published {
        areas.extend(a.regions.iter().filter(|r| r.has_expected()));
    }
    areas.extend(a.programmes.iter().filter(|p| p.has_expected()));
    Ok(crate::ascertainment::published_table(
        &areas,
        Some(["csv", "xlsx"].map(|x| {
            format!(
                "/region/ascertainment.{x}?from={}&to={}",
                period.from, period.to
            )
        })),
    ))
}

/// Eligible, referred and started: the gap a commissioner plans against.
fn ascertainment_section(
    f: &RegionFigures,
    period: crest_core::Period,
    view: &crate::app::table::View,
) -> Markup {
    html! {
        h2 id="ascertainment" { "Eligible, referred and started" }
        p {
            "How many patients a count of hospital episodes expects to be eligible for cardiac rehabilitation, "
            "how many of them were referred (case ascertainment) and how many started. "
            "Programmes under 80% ascertainment miss eligible patients before they are ever referred."
        }
        @if !f.ascertainment.any() {
            (crate::ascertainment::none_loaded("The national audit has not loaded expected patients for your region in these quarters."))
        } @else {
            @match ascertainment_table(f, period) {
                Ok(t) => {
                    p { "Referrals from " (crate::ascertainment::quarters_words(&f.ascertainment)) ", against the patients expected in the same quarters." }
                    (t.render(view))
                    (crate::ascertainment::published_note())
                }
                Err(why) => (not_shown(why)),
            }
        }
    }
}

/// Each programme's seven KPIs and grade, as published: one model for the page and its CSV
/// and XLSX.
fn kpi_table(f: &RegionFigures, period: crest_core::Period) -> crate::app::table::Table {
    use crate::app::table::{Cell, Column};
    let keys: Vec<&str> = f
        .kpis
        .first()
        .map(|p| p.kpis.iter().map(|k| k.key).collect())
        .unwrap_or_default();
    // The page names a programme with its code; a file keeps the code in a column of its own.
    let mut columns = vec![
        Column::words("Programme", "name"),
        Column::file_only("programme_code"),
    ];
    columns.extend(
        keys.iter()
            .map(|k| Column::numbers(crest_stats::kpis::kpi_label(k), k)),
    );
    columns.extend([
        Column::numbers("KPIs met", "kpis_met"),
        Column::numbers("Assessable", "kpis_assessable"),
        Column::words("Grade", "grade"),
    ]);
    let rows = f
        .kpis
        .iter()
        .map(|p| {
            let name = f
                .names
                .iter()
                .find(|n| n.0 == p.programme_code)
                .map_or(p.programme_code.as_str(), |n| n.1.as_str());
            let mut row = vec![
                Cell::coded(format!("{name} ({})", p.programme_code), name),
                Cell::text(&p.programme_code),
            ];
            row.extend(
                p.kpis
                    .iter()
                    .map(|k| Cell::number(k.value.parse().ok(), &k.value, &k.value)),
            );
            row.extend([
                Cell::number(
                    Some(p.kpis_met as f64),
                    p.kpis_met.to_string(),
                    p.kpis_met.to_string(),
                ),
                Cell::number(
                    Some(p.kpis_assessable as f64),
                    p.kpis_assessable.to_string(),
                    p.kpis_assessable.to_string(),
                ),
                Cell::text(p.grade),
            ]);
            row
        })
        .collect();
    crate::app::table::Table {
        caption: "The seven KPIs of each programme in your region (* too few patients to publish)"
            .into(),
        rows_are: "programmes".into(),
        columns,
        rows,
        downloads: Some([
            format!("/region/kpis.csv?from={}&to={}", period.from, period.to),
            format!("/region/kpis.xlsx?from={}&to={}", period.from, period.to),
        ]),
        empty: "No programme of your region has published KPIs for this period.".into(),
    }
}

/// Each programme's seven KPIs and grade, as published.
fn kpis_section(
    f: &RegionFigures,
    period: crest_core::Period,
    view: &crate::app::table::View,
) -> Markup {
    html! {
        h2 id="kpis" { "Programmes' KPIs and grades, as published" }
        (kpi_table(f, period).render(view))
    }
}

async fn load(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    f: &Chosen,
) -> Result<(RegionFigures, crest_core::Period), WebError> {
    let period = crate::research::aggregates::period_for(
        c,
        crate::app::requested_period(app, &f.from, &f.to)?,
    );
    let regions = c.user.regions.clone();
    let mut entry = c.entry("", "region view", &regions.join(";"));
    entry.detail = format!("{} to {}", period.from, period.to);
    let a = app.clone();
    let figures = app
        .national(move |n| {
            // The page's dozen tables come from the facts the server holds in memory.
            let held = a.aggregate_facts(n)?;
            let out = figures(n, &regions, period, &held)?;
            n.log(&entry)?;
            Ok(out)
        })
        .await?;
    Ok((figures, period))
}

async fn region_page(
    State(app): State<Arc<App>>,
    Commissioner(c): Commissioner,
    Query(f): Query<Chosen>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    let chart = query.get("chart").cloned().unwrap_or_default();
    let view = crate::app::table::View::of("kpis", "/region", &query);
    let eligible = crate::app::table::View::of("eligible", "/region", &query);
    let (figures, period) = load(&app, &c, &f).await?;
    let asked = Asked {
        from: period.from.to_string(),
        to: period.to.to_string(),
        ..Default::default()
    };
    let form = crate::region::changes::change_form(&c.user.regions);
    let regions = c.user.regions.clone();
    let changes: Vec<crest_core::changes::ServiceChange> = app
        .db(move |s, _| Ok(s.service_changes()?))
        .await?
        .into_iter()
        .filter(|ch| {
            regions
                .iter()
                .any(|r| ch.drawn_on(&crest_core::changes::ChangeScope::Region(r.clone()), None))
        })
        .collect();
    // Charts over time of the region's programmes pooled, or of one of them, as published.
    let (pool, facts, chart_changes, names) =
        crate::region::over_time::load(&app, &c, &chart, period).await?;
    let series = crate::region::over_time::series(&facts, period);
    let compared = crate::region::before_after::section(&app, &c, &changes, period).await?;
    let charts = crate::region::over_time::charts(&series, period, &chart_changes, &chart);
    Ok(html_page(page(
        "Your region",
        c.nav(None),
        html! {
            (render(&c, &figures, period, &asked, (&view, &eligible)))
            (crate::region::over_time::section(&c.user.regions, &names, &pool, &charts, period))
            (compared)
            (form.render(&c.session.csrf, &Default::default(), None))
        },
    )))
}

#[derive(serde::Deserialize, Default)]
struct ChartQuery {
    /// `uptake-<dimension>`, `demand` or `conversion`.
    #[serde(default)]
    chart: String,
    #[serde(flatten)]
    chosen: Chosen,
}

/// One of the page's charts as SVG or PNG (published figures, as on the page).
async fn chart_download(
    State(app): State<Arc<App>>,
    Commissioner(c): Commissioner,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(q): Query<ChartQuery>,
) -> Result<Response, WebError> {
    let (figures, period) = load(&app, &c, &q.chosen).await?;
    let (_, chart) = charts(&figures)
        .into_iter()
        .find(|(id, _)| *id == q.chart)
        .ok_or_else(|| {
            WebError::BadRequest(
                "That chart is not on this page for this period: choose one from the page.".into(),
            )
        })?;
    crate::app::chart_download(
        &chart,
        &format,
        &format!("{}-{}-{}", q.chart, period.from, period.to),
        "There is nothing to draw for this period.",
    )
}

/// The region's programmes' published KPIs and grades as CSV or XLSX.
async fn kpis_download(
    State(app): State<Arc<App>>,
    Commissioner(c): Commissioner,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(f): Query<Chosen>,
) -> Result<Response, WebError> {
    let (figures, period) = load(&app, &c, &f).await?;
    let (columns, rows) = kpi_table(&figures, period).file();
    crate::app::table_download("region_kpis", &format, &columns, &rows)
}

/// A commissioner's published "eligible, referred and started" (the page's table, for its
/// download and the API), with the period it covers: the published grid's.
pub(crate) async fn published_ascertainment(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    from: &str,
    to: &str,
) -> Result<(crate::app::table::Table, crest_core::Period), WebError> {
    let chosen = Chosen {
        from: from.into(),
        to: to.into(),
    };
    let (figures, period) = load(app, c, &chosen).await?;
    let table = ascertainment_table(&figures, period)
        .map_err(|e| WebError::BadRequest(format!("Not shown: {e}")))?;
    Ok((table, period))
}

/// The region's published "eligible, referred and started" as CSV or XLSX.
async fn ascertainment_download(
    State(app): State<Arc<App>>,
    Commissioner(c): Commissioner,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(f): Query<Chosen>,
) -> Result<Response, WebError> {
    let (table, _) = published_ascertainment(&app, &c, &f.from, &f.to).await?;
    table.download("region_ascertainment", &format)
}
