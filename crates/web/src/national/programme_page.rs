//! A programme seen from the national audit: its KPIs and grade over the last three years, its
//! position on each funnel plot for the chosen period (limits by the chosen method, as on the
//! dashboard and the outliers page), and its uptake by group. Each table downloads as CSV and
//! XLSX with the exact values.

use crate::app::access::Analyst;
use crate::app::table::{Cell, Column, Table, View};
use crate::app::{html_page, App, WebError};
use crate::html::{page, pct, url_encode};
use crate::national::dashboard::{chosen_period, exact, method_choice, Filters};
use crate::national::inequalities::{by_group, Uptake};
use crate::national::over_time;
use crate::uptake::uptake_tables;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Period, Programme};
use crest_report::charts::FUNNELS;
use crest_stats::funnel::{Direction, Fit, Method, Position};
use crest_stats::kpis::{Measure, ProgrammeKpis};
use maud::{html, Markup};
use std::collections::HashMap;
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
    /// Referrals and starts against the expected patients of the period, and its quarters.
    ascertainment: Option<(crest_stats::ascertainment::AreaFigures, String)>,
    /// The programme's KPI facts for its charts over time, and the changes they draw (loaded
    /// for the page, not for its table downloads).
    over_time: Option<(
        Vec<crest_core::KpiEpisode>,
        Vec<crest_core::changes::ServiceChange>,
        Markup,
    )>,
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
        changes: Option<Vec<crest_core::changes::ServiceChange>>,
    ) -> Result<ProgrammeView, WebError> {
        let mut years = Vec::new();
        let mut places = Vec::new();
        let mut programme = None;
        let mut ascertainment = None;
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
                ascertainment = nr
                    .ascertainment
                    .programme(code)
                    .filter(|f| f.has_expected())
                    .map(|f| {
                        (
                            f.clone(),
                            crate::ascertainment::quarters_words(&nr.ascertainment),
                        )
                    });
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
        let pool = over_time::Pool {
            code: programme.code.clone(),
            ..Default::default()
        };
        let over_time = match changes {
            Some(changes) => {
                let one = std::slice::from_ref(&programme);
                let changes = over_time::changes_for(changes, one, &pool);
                let here = ("/national/programme", &[("code", code)][..]);
                let compared = over_time::compared(n, one, &changes, period, here)?;
                Some((over_time::facts(n, one, period)?, changes, compared))
            }
            None => None,
        };
        Ok(ProgrammeView {
            over_time,
            programme,
            period,
            method,
            years,
            places,
            uptake,
            ascertainment,
        })
    }

    /// Where one of the page's tables downloads, with the page's choices.
    fn files(&self, which: &str) -> Option<[String; 2]> {
        let q = format!(
            "code={}&from={}&to={}&method={}&table={which}",
            url_encode(&self.programme.code),
            self.period.from,
            self.period.to,
            self.method.code()
        );
        Some(["csv", "xlsx"].map(|x| format!("/national/programme.{x}?{q}")))
    }

    /// The programme's KPIs and grade by year.
    fn kpis_table(&self) -> Table {
        let mut columns = vec![
            Column::words("Period", "period_from"),
            Column::file_only("period_to"),
            Column::numbers("Referred", "referred"),
            Column::file_only("started"),
            Column::numbers("Uptake", "uptake"),
        ];
        if let Some((_, k)) = self.years.first() {
            for kpi in &k.results.kpis {
                columns.push(Column::numbers(kpi.label(), kpi.key));
                columns.push(Column::file_only(&format!("{}_met", kpi.key)));
            }
        }
        columns.extend([
            Column::file_only("kpis_met"),
            Column::words("Grade", "grade"),
        ]);
        Table {
            caption: "KPIs and grade by year".into(),
            rows_are: "years".into(),
            columns,
            rows: self
                .years
                .iter()
                .map(|(p, k)| {
                    let mut row = vec![
                        Cell::coded(
                            format!("{} to {}", p.from.long(), p.to.long()),
                            p.from.to_string(),
                        ),
                        Cell::text(p.to.to_string()),
                        Cell::count(k.results.referred),
                        Cell::count(k.results.started),
                        Cell::proportion(k.results.uptake.value()),
                    ];
                    for kpi in &k.results.kpis {
                        let value = kpi.value();
                        let shown = match kpi.measure {
                            Measure::Proportion(_) => pct(value),
                            _ => value.map_or("–".into(), crest_core::value::format_num),
                        };
                        let mark = if kpi.met { "" } else { " ✗" };
                        row.push(Cell::number(
                            value,
                            format!("{shown}{mark}"),
                            value.map_or(String::new(), crest_core::value::format_num),
                        ));
                        row.push(Cell::text(if kpi.met { "yes" } else { "no" }));
                    }
                    row.push(Cell::count(k.kpis_met as u64));
                    row.push(if k.results.referred == 0 {
                        Cell::text(k.grade_shown())
                    } else {
                        Cell::coded(
                            format!("{} ({} of 7)", k.grade, k.kpis_met),
                            k.grade_shown(),
                        )
                        .class(format!("grade-{}", k.grade))
                    });
                    row
                })
                .collect(),
            downloads: self.files("kpis"),
            empty: "The programme has no figures for these years.".into(),
        }
    }

    /// Where the programme sits on each funnel plot.
    fn funnels_table(&self) -> Table {
        let (from, to) = (self.period.from, self.period.to);
        Table {
            caption: "Position on each funnel plot".into(),
            rows_are: "funnel plots".into(),
            columns: vec![
                Column::words("Funnel plot", "kpi"),
                Column::file_only("numerator"),
                Column::file_only("denominator"),
                Column::numbers("This programme", "proportion"),
                Column::numbers("Nationally", "pooled"),
                Column::words("Position", "level"),
                Column::file_only("method"),
            ],
            rows: self
                .places
                .iter()
                .map(|p| {
                    let share =
                        (p.denominator > 0).then(|| p.numerator as f64 / p.denominator as f64);
                    vec![
                        Cell::coded(p.title, p.key).link(format!(
                            "/national/dashboard?kpi={}&from={from}&to={to}&method={}",
                            p.key,
                            self.method.code()
                        )),
                        Cell::count(p.numerator),
                        Cell::count(p.denominator),
                        Cell::number(
                            share,
                            format!(
                                "{}/{} = {}",
                                crate::html::thousands(p.numerator),
                                crate::html::thousands(p.denominator),
                                pct(share)
                            ),
                            exact((p.numerator, p.denominator)),
                        ),
                        Cell::proportion(Some(p.fit.p0)),
                        Cell::coded(
                            place_words(p),
                            p.position
                                .map_or("no patients", crest_stats::published::level),
                        )
                        .strong(true),
                        Cell::text(p.fit.method.code()),
                    ]
                })
                .collect(),
            downloads: self.files("funnels"),
            empty: "No programme had patients in this period, so there are no funnel plots.".into(),
        }
    }

    /// Uptake by each grouping, one table each.
    fn uptake_tables(&self) -> Vec<(String, Table)> {
        uptake_tables(self.uptake.iter().map(|(t, rows)| (*t, rows.as_slice())))
    }

    /// One of the page's tables: `kpis`, `funnels` or `uptake` (every grouping in one).
    fn table(&self, which: &str) -> Option<Table> {
        match which {
            "kpis" => Some(self.kpis_table()),
            "funnels" => Some(self.funnels_table()),
            "uptake" => Some(Table::stacked("grouping", &self.uptake_tables())),
            _ => None,
        }
    }

    fn html(&self, query: &HashMap<String, String>) -> Markup {
        let me = &self.programme;
        let (from, to) = (self.period.from, self.period.to);
        let view = |id: &str| View::of(id, "/national/programme", query);
        html! {
            p { (me.code) " · " (me.nation.label()) " · " (me.region) }
            (crate::html::period_form(from, to, html! {
                input type="hidden" name="code" value=(me.code);
                (method_choice(self.method))
            }))
            h2 { "KPIs over three years" }
            (self.kpis_table().render(&view("kpis")))
            p { "✗ = standard not met." }
            h2 { "On the funnel plots, " (from.long()) " to " (to.long()) }
            @if !self.places.is_empty() {
                p { "Funnel limits: " (self.method.label()) "." }
            }
            (self.funnels_table().render(&view("funnels")))
            h2 id="ascertainment" { "Eligible patients referred" }
            @match &self.ascertainment {
                None => (crate::ascertainment::none_loaded("Load them with crest expected import --national FILE.")),
                Some((f, quarters)) => {
                    p { (crate::ascertainment::sentence(&format!("{}, {quarters}", me.name), &f.all)) }
                    (crate::ascertainment::by_condition(f).render(&view("conditions")))
                }
            }
            h2 { "Who takes up cardiac rehabilitation here" }
            @for (i, (_, t)) in self.uptake_tables().iter().enumerate() {
                (t.render(&view(&format!("uptake-{i}"))))
            }
            p class="noprint" {
                @if let Some([csv, xlsx]) = self.files("uptake") {
                    "Download every group's uptake (exact values): "
                    a href=(csv) { "CSV" } " · " a href=(xlsx) { "XLSX" }
                }
            }
            @if let Some((facts, changes, compared)) = &self.over_time {
                @let pool = over_time::Pool { code: me.code.clone(), ..Default::default() };
                (over_time::charts(facts, self.period, changes, &pool).render())
                (compared)
            }
        }
    }
}

/// The page's figures; with `charts`, its charts over time too.
async fn view(
    app: &Arc<App>,
    q: ProgrammeQuery,
    charts: bool,
) -> Result<(ProgrammeView, String), WebError> {
    let period = chosen_period(app, &q.filters)?;
    let method = q.filters.method()?;
    let changes = if charts {
        Some(app.db(|s, _| Ok(s.service_changes()?)).await?)
    } else {
        None
    };
    let a = app.clone();
    let view = app
        .national(move |n| ProgrammeView::load(&a, n, &q.code, period, method, changes))
        .await?;
    Ok((view, q.table))
}

async fn programme(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<ProgrammeQuery>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (view, _) = view(&app, q, true).await?;
    Ok(html_page(page(
        &format!("National audit: {}", view.programme.name),
        c.nav(None),
        view.html(&query),
    )))
}

/// One of the page's tables as CSV or XLSX (`table=kpis|funnels|uptake`).
async fn download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Path(format): Path<String>,
    Query(q): Query<ProgrammeQuery>,
) -> Result<Response, WebError> {
    let (view, which) = view(&app, q, false).await?;
    view.table(&which)
        .ok_or_else(|| {
            WebError::BadRequest("Choose a table to download: kpis, funnels or uptake.".into())
        })?
        .download(
            &format!(
                "{which}-{}-{}-{}",
                view.programme.code, view.period.from, view.period.to
            ),
            &format,
        )
}
