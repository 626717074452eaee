//! A programme seen from the national audit: its KPIs and grade over the last three years, its
//! position on each funnel plot for the chosen period (limits by the chosen method, as on the
//! dashboard and the outliers page), and its uptake by group. Each table downloads as CSV and
//! XLSX with the exact values.

use crate::app::access::Analyst;
use crate::app::{html_page, App, WebError};
use crate::html::{page, pct, uptake_table, url_encode};
use crate::national::dashboard::{chosen_period, exact, method_choice, Filters};
use crate::national::inequalities::{by_group, Uptake};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Period, Programme};
use crest_report::charts::FUNNELS;
use crest_stats::funnel::{Direction, Fit, Method, Position};
use crest_stats::kpis::{Measure, ProgrammeKpis};
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/programme", get(programme))
        .route("/national/programme.{format}", get(download))
}

#[derive(serde::Deserialize)]
struct ProgrammeQuery {
    code: String,
    /// Which table a download is of: `kpis`, `funnels` or `uptake`.
    #[serde(default)]
    table: String,
    #[serde(flatten)]
    filters: Filters,
}

/// Where the programme sits on one funnel plot: exact counts against the limits fitted over
/// every programme.
struct Place {
    key: &'static str,
    title: &'static str,
    numerator: u64,
    denominator: u64,
    fit: Fit,
    position: Option<Position>,
}

/// Everything the page shows, computed once for the page and its downloads.
struct ProgrammeView {
    programme: Programme,
    period: Period,
    method: Method,
    /// The programme's row for each of the last three years, oldest first.
    years: Vec<(Period, ProgrammeKpis)>,
    places: Vec<Place>,
    uptake: Vec<(&'static str, Uptake)>,
}

fn place_words(p: &Place) -> String {
    let side = |d: Direction| if d == Direction::Low { "low" } else { "high" };
    match p.position {
        None => "no patients".into(),
        Some(Position::Within) => "within the limits".into(),
        Some(Position::Alert(d)) => format!("alert, {}", side(d)),
        Some(Position::Alarm(d)) => format!("alarm, {}", side(d)),
    }
}

impl ProgrammeView {
    fn load(
        app: &App,
        n: &mut crest_store::NationalStore,
        code: &str,
        period: Period,
        method: Method,
    ) -> Result<ProgrammeView, WebError> {
        let mut years = Vec::new();
        let mut places = Vec::new();
        let mut programme = None;
        // The dashboard's shared reports: a period it has computed is not computed again.
        let three = [period.earlier(2), period.earlier(1), period];
        let reports = app.national_reports(n, &three)?;
        for (back, (p, nr)) in three
            .into_iter()
            .zip(reports)
            .enumerate()
            .map(|(i, x)| (2 - i, x))
        {
            programme = nr.programmes.iter().find(|x| x.code == code).cloned();
            let Some(i) = nr
                .report
                .programmes
                .iter()
                .position(|k| k.programme_code == code)
            else {
                continue;
            };
            years.push((p, nr.report.programmes[i].clone()));
            if back == 0 {
                for (key, title) in FUNNELS {
                    let points: Vec<(u64, u64)> = nr
                        .report
                        .programmes
                        .iter()
                        .map(|k| k.proportion(key))
                        .collect();
                    let Some(fit) = Fit::new(&points, method) else {
                        continue;
                    };
                    let (numerator, denominator) = points[i];
                    places.push(Place {
                        key,
                        title,
                        numerator,
                        denominator,
                        fit,
                        position: fit.position(numerator, denominator),
                    });
                }
            }
        }
        let programme = programme.ok_or(WebError::NotFound)?;
        let facts = n.equity_facts_of(Some(code), period.from, period.to)?;
        let mine: Vec<&crest_store::national::EquityFact> = facts.iter().collect();
        let uptake = by_group(&mine).to_vec();
        Ok(ProgrammeView {
            programme,
            period,
            method,
            years,
            places,
            uptake,
        })
    }

    /// One of the page's tables with exact values, as (columns, rows): `kpis`, `funnels` or
    /// `uptake`.
    fn table(&self, which: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
        let strings = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match which {
            "kpis" => {
                let mut columns =
                    strings(&["period_from", "period_to", "referred", "started", "uptake"]);
                if let Some((_, k)) = self.years.first() {
                    for kpi in &k.results.kpis {
                        columns.push(kpi.key.to_string());
                        columns.push(format!("{}_met", kpi.key));
                    }
                }
                columns.extend(strings(&["kpis_met", "grade"]));
                let rows = self
                    .years
                    .iter()
                    .map(|(p, k)| {
                        let mut row = vec![
                            p.from.to_string(),
                            p.to.to_string(),
                            k.results.referred.to_string(),
                            k.results.started.to_string(),
                            exact((k.results.started, k.results.referred)),
                        ];
                        for kpi in &k.results.kpis {
                            row.push(
                                kpi.value()
                                    .map_or(String::new(), crest_core::value::format_num),
                            );
                            row.push(if kpi.met { "yes" } else { "no" }.into());
                        }
                        row.extend([k.kpis_met.to_string(), k.grade_shown().to_string()]);
                        row
                    })
                    .collect();
                Some((columns, rows))
            }
            "funnels" => {
                let columns = strings(&[
                    "kpi",
                    "numerator",
                    "denominator",
                    "proportion",
                    "pooled",
                    "level",
                    "method",
                ]);
                let rows = self
                    .places
                    .iter()
                    .map(|p| {
                        vec![
                            p.key.to_string(),
                            p.numerator.to_string(),
                            p.denominator.to_string(),
                            exact((p.numerator, p.denominator)),
                            format!("{:.4}", p.fit.p0),
                            p.position
                                .map_or("no patients", crest_stats::published::level)
                                .to_string(),
                            p.fit.method.code().to_string(),
                        ]
                    })
                    .collect();
                Some((columns, rows))
            }
            "uptake" => {
                let columns = strings(&["grouping", "group", "referred", "started", "uptake"]);
                let rows = self
                    .uptake
                    .iter()
                    .flat_map(|(grouping, rows)| {
                        rows.iter().map(move |(g, n, k)| {
                            vec![
                                grouping.to_string(),
                                g.clone(),
                                n.to_string(),
                                k.to_string(),
                                exact((*k, *n)),
                            ]
                        })
                    })
                    .collect();
                Some((columns, rows))
            }
            _ => None,
        }
    }

    /// Links to download one table with the page's choices.
    fn downloads(&self, which: &str) -> Markup {
        let q = format!(
            "code={}&from={}&to={}&method={}&table={which}",
            url_encode(&self.programme.code),
            self.period.from,
            self.period.to,
            self.method.code()
        );
        html! {
            p class="downloads" {
                "Download this table (exact values): "
                a href={ "/national/programme.csv?" (q) } { "CSV" } " · "
                a href={ "/national/programme.xlsx?" (q) } { "XLSX" }
            }
        }
    }

    fn html(&self) -> Markup {
        let me = &self.programme;
        let (from, to) = (self.period.from, self.period.to);
        html! {
            p { (me.code) " · " (me.nation.label()) " · " (me.region) }
            (crate::html::period_form(from, to, html! {
                input type="hidden" name="code" value=(me.code);
                (method_choice(self.method))
            }))
            h2 { "KPIs over three years" }
            table tabindex="0" {
                caption { "KPIs and grade by year" }
                thead { tr {
                    th scope="col" { "Period" } th scope="col" { "Referred" } th scope="col" { "Uptake" }
                    @if let Some((_, k)) = self.years.first() {
                        @for kpi in &k.results.kpis {
                            th scope="col" { (kpi.label()) }
                        }
                    }
                    th scope="col" { "Grade" }
                } }
                tbody {
                    @for (p, k) in &self.years {
                        tr {
                            th scope="row" { (p.from.long()) " to " (p.to.long()) }
                            td class="num" { (crate::html::thousands(k.results.referred)) }
                            td { (pct(k.results.uptake.value())) }
                            @for kpi in &k.results.kpis {
                                td {
                                    @match kpi.measure {
                                        Measure::Proportion(_) => (pct(kpi.value())),
                                        _ => (kpi.value().map_or("–".into(), crest_core::value::format_num)),
                                    }
                                    @if !kpi.met { " ✗" }
                                }
                            }
                            @if k.results.referred == 0 {
                                td { "no data" }
                            } @else {
                                td class={ "grade-" (k.grade) } { (k.grade) " (" (k.kpis_met) " of 7)" }
                            }
                        }
                    }
                }
            }
            p { "✗ = standard not met." }
            (self.downloads("kpis"))
            h2 { "On the funnel plots, " (from.long()) " to " (to.long()) }
            @if self.places.is_empty() {
                p { "No programme had patients in this period, so there are no funnel plots." }
            } @else {
                p { "Funnel limits: " (self.method.label()) "." }
                table tabindex="0" {
                    caption { "Position on each funnel plot" }
                    thead { tr {
                        th scope="col" { "Funnel plot" } th scope="col" { "This programme" }
                        th scope="col" { "Nationally" } th scope="col" { "Position" }
                    } }
                    tbody {
                        @for p in &self.places {
                            tr {
                                th scope="row" {
                                    a href={ "/national/dashboard?kpi=" (p.key) "&from=" (from) "&to=" (to) "&method=" (self.method.code()) } { (p.title) }
                                }
                                td { (crate::html::thousands(p.numerator)) "/" (crate::html::thousands(p.denominator)) " = " (pct((p.denominator > 0).then(|| p.numerator as f64 / p.denominator as f64))) }
                                td { (pct(Some(p.fit.p0))) }
                                td { strong { (place_words(p)) } }
                            }
                        }
                    }
                }
                (self.downloads("funnels"))
            }
            h2 { "Who takes up cardiac rehabilitation here" }
            @for (title, rows) in &self.uptake {
                (uptake_table(title, rows))
            }
            (self.downloads("uptake"))
        }
    }
}

async fn view(app: &Arc<App>, q: ProgrammeQuery) -> Result<(ProgrammeView, String), WebError> {
    let period = chosen_period(app, &q.filters)?;
    let method = q.filters.method()?;
    let a = app.clone();
    let view = app
        .national(move |n| ProgrammeView::load(&a, n, &q.code, period, method))
        .await?;
    Ok((view, q.table))
}

async fn programme(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<ProgrammeQuery>,
) -> Result<Response, WebError> {
    let (view, _) = view(&app, q).await?;
    Ok(html_page(page(
        &format!("National audit: {}", view.programme.name),
        c.nav(None),
        view.html(),
    )))
}

/// One of the page's tables as CSV or XLSX (`table=kpis|funnels|uptake`).
async fn download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Path(format): Path<String>,
    Query(q): Query<ProgrammeQuery>,
) -> Result<Response, WebError> {
    let (view, which) = view(&app, q).await?;
    let (columns, rows) = view.table(&which).ok_or_else(|| {
        WebError::BadRequest("Choose a table to download: kpis, funnels or uptake.".into())
    })?;
    crate::app::table_download(
        &format!(
            "{which}-{}-{}-{}",
            view.programme.code, view.period.from, view.period.to
        ),
        &format,
        &columns,
        &rows,
    )
}
