//! Outlier management for national analysts: the programmes outside the funnel limits of a
//! proportion KPI for a period (`alert` beyond 95%, `alarm` beyond 99.8%, low or high), and a
//! case for each that moves open → contacted → response received → closed, with dated notes
//! and its whole history kept.

use crate::app::access::Analyst;
use crate::app::table::{Cell, Column, Table, View};
use crate::app::{html_page, App, WebError};
use crate::html::{csrf_field, page, pct, url_encode};
use crate::national::dashboard::{chosen_period, Filters};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use crest_report::charts::FUNNELS;
use crest_stats::funnel::{Direction, Position};
use crest_store::national::{OutlierCase, CASE_STAGES};
use maud::html;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/outliers", get(list).post(open_case))
        .route("/national/outliers.{format}", get(download))
        .route("/national/outliers/case", get(show).post(update))
        .route("/national/outliers/case.{format}", get(case_download))
        .route("/national/cases.{format}", get(cases_download))
}

fn stage(s: &str) -> String {
    s.replace('_', " ")
}

/// A finding's case id: the programme, KPI and period.
fn case_id(f: &Found, period: crest_core::Period) -> String {
    format!("{}|{}|{}|{}", f.programme, f.kpi, period.from, period.to)
}

/// The findings the triage filters keep (KPI, level, direction, case stage).
fn triaged<'a>(
    found: &'a [Found],
    cases: &[OutlierCase],
    f: &Filters,
    period: crest_core::Period,
) -> Vec<&'a Found> {
    found
        .iter()
        .filter(|o| f.kpi.is_empty() || o.kpi == f.kpi)
        .filter(|o| f.level.is_empty() || o.level == f.level)
        .filter(|o| f.direction.is_empty() || o.direction == f.direction)
        .filter(|o| {
            let stage = cases
                .iter()
                .find(|c| c.id == case_id(o, period))
                .map_or("none", |c| c.status.as_str());
            f.stage.is_empty() || stage == f.stage
        })
        .collect()
}

/// Every finding of the chosen period and method, and every case.
struct Findings {
    period: crest_core::Period,
    method: crest_stats::funnel::Method,
    all: Vec<Found>,
    cases: Vec<OutlierCase>,
}

impl Findings {
    async fn load(app: &Arc<App>, f: &Filters) -> Result<Findings, WebError> {
        let period = chosen_period(app, f)?;
        let method = f.method()?;
        let a = app.clone();
        let (all, cases) = app
            .national(move |n| Ok((find_outliers(&a, n, period, method)?, n.cases()?)))
            .await?;
        Ok(Findings {
            period,
            method,
            all,
            cases,
        })
    }

    /// The findings the filters keep, as the page and its downloads show them.
    fn table(&self, f: &Filters, csrf: Option<&str>) -> Table {
        let found = triaged(&self.all, &self.cases, f, self.period);
        findings_table(
            &found,
            self.all.len(),
            &self.cases,
            f,
            self.period,
            self.method,
            csrf,
        )
    }
}

/// The outlier list as CSV or XLSX, with the page's filters (exact counts: analysts' own).
async fn download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let findings = Findings::load(&app, &f).await?;
    let period = findings.period;
    findings
        .table(&f, None)
        .download(&format!("outliers-{}-{}", period.from, period.to), &format)
}

/// The findings the filters keep: one model for the page and its downloads. On the page, a
/// finding with no case yet has a button to open one (`csrf` is the session's token).
fn findings_table(
    found: &[&Found],
    all: usize,
    cases: &[OutlierCase],
    f: &Filters,
    period: crest_core::Period,
    method: crest_stats::funnel::Method,
    csrf: Option<&str>,
) -> Table {
    let query = format!(
        "from={}&to={}&method={}&kpi={}&level={}&direction={}&stage={}",
        period.from,
        period.to,
        method.code(),
        url_encode(&f.kpi),
        url_encode(&f.level),
        url_encode(&f.direction),
        url_encode(&f.stage)
    );
    Table {
        caption: format!(
            "{} of {all} finding(s) outside the limits, with these filters",
            found.len(),
        ),
        rows_are: "findings".into(),
        columns: vec![
            Column::words("Programme", "programme_code"),
            Column::words("KPI", "kpi"),
            Column::words("Level", "level"),
            Column::file_only("direction"),
            Column::words("Finding", "finding"),
            Column::file_only("method"),
            Column::words("Case", "case_stage"),
        ],
        rows: found
            .iter()
            .map(|o| {
                let id = case_id(o, period);
                let case = match cases.iter().find(|c| c.id == id) {
                    Some(case) => {
                        Cell::coded(stage(&case.status), case.status.clone()).link(case_href(&id))
                    }
                    None => {
                        let none = Cell::coded("no case yet", "none");
                        match csrf {
                            Some(csrf) => none.control(html! {
                                form method="post" action="/national/outliers" {
                                    (csrf_field(csrf))
                                    input type="hidden" name="programme" value=(o.programme);
                                    input type="hidden" name="kpi" value=(o.kpi);
                                    input type="hidden" name="from" value=(period.from);
                                    input type="hidden" name="to" value=(period.to);
                                    input type="hidden" name="method" value=(method.code());
                                    button { "Open a case" }
                                }
                            }),
                            None => none,
                        }
                    }
                };
                vec![
                    Cell::text(o.programme.clone()),
                    Cell::coded(o.label, o.kpi),
                    Cell::coded(format!("{} {}", o.level, o.direction), o.level)
                        .strong(o.level == "alarm"),
                    Cell::text(o.direction),
                    Cell::text(o.finding.clone()),
                    Cell::text(o.method),
                    case,
                ]
            })
            .collect(),
        downloads: Some(["csv", "xlsx"].map(|x| format!("/national/outliers.{x}?{query}"))),
        empty: "No programme is outside the limits with these filters.".into(),
    }
}

/// Where a case is managed.
fn case_href(id: &str) -> String {
    format!("/national/outliers/case?id={}", url_encode(id))
}

/// Every outlier case, newest first: one model for the page and its downloads.
fn cases_table(cases: &[OutlierCase]) -> Table {
    Table {
        caption: format!("{} case(s), newest first", cases.len()),
        rows_are: "cases".into(),
        columns: vec![
            Column::words("Programme", "programme_code"),
            Column::words("KPI", "kpi"),
            Column::words("Period", "period_from"),
            Column::file_only("period_to"),
            Column::words("Level", "level"),
            Column::file_only("direction"),
            Column::file_only("finding"),
            Column::words("Stage", "stage"),
            Column::words("Opened", "opened_at"),
        ],
        rows: cases
            .iter()
            .map(|c| {
                vec![
                    Cell::text(c.programme.clone()).link(case_href(&c.id)),
                    Cell::text(c.kpi.clone()),
                    Cell::coded(
                        format!(
                            "{} to {}",
                            crest_core::date::long_iso(&c.from),
                            crest_core::date::long_iso(&c.to)
                        ),
                        c.from.clone(),
                    ),
                    Cell::text(c.to.clone()),
                    Cell::coded(format!("{} {}", c.level, c.direction), c.level.clone()),
                    Cell::text(c.direction.clone()),
                    Cell::text(c.finding.clone()),
                    Cell::coded(stage(&c.status), c.status.clone()),
                    Cell::text(c.opened_at.clone()),
                ]
            })
            .collect(),
        downloads: Some(["/national/cases.csv".into(), "/national/cases.xlsx".into()]),
        empty: "No case has been opened yet.".into(),
    }
}

async fn list(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(f): Query<Filters>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let findings = Findings::load(&app, &f).await?;
    let (period, method) = (findings.period, findings.method);
    let (all, cases) = (&findings.all, &findings.cases);
    let count = |level: &str| all.iter().filter(|o| o.level == level).count();
    let filters = html! {
        (crate::national::dashboard::method_choice(method))
        label for="kpi" { "KPI" }
        select id="kpi" name="kpi" {
            option value="" { "all" }
            @for (k, t) in FUNNELS { option value=(k) selected[f.kpi == *k] { (t) } }
        }
        label for="level" { "Level" }
        select id="level" name="level" {
            @for (v, w) in [("", "all"), ("alarm", "alarm (outside 99.8%)"), ("alert", "alert (outside 95%)")] {
                option value=(v) selected[f.level == v] { (w) }
            }
        }
        label for="direction" { "Direction" }
        select id="direction" name="direction" {
            @for (v, w) in [("", "both"), ("low", "low"), ("high", "high")] {
                option value=(v) selected[f.direction == v] { (w) }
            }
        }
        label for="stage" { "Case" }
        select id="stage" name="stage" {
            option value="" { "any" }
            option value="none" selected[f.stage == "none"] { "no case yet" }
            @for s in CASE_STAGES { option value=(s) selected[f.stage == s] { (stage(s)) } }
        }
    };
    let findings = findings.table(&f, Some(&c.session.csrf));
    let body = html! {
        (crate::html::period_form(period.from, period.to, filters))
        p class="hint" { "Limits: " (method.label()) ". When most programmes fall outside plain limits, the programmes vary more than chance allows (overdispersion): an adjusted method shows which stand out beyond that." }
        h2 { "Summary" }
        ul {
            li { strong { (count("alarm")) } " alarm(s) (outside the 99.8% limits) and " strong { (count("alert")) } " alert(s) (outside 95% only), over " (FUNNELS.len()) " funnel KPIs" }
            li {
                "Cases: "
                @for (i, s) in CASE_STAGES.iter().enumerate() {
                    @if i > 0 { ", " }
                    (cases.iter().filter(|c| c.status == *s).count()) " " (stage(s))
                }
            }
        }
        h2 { "Outside the funnel limits, " (period.long()) }
        (findings.render(&View::of("findings", "/national/outliers", &raw)))
        h2 { "Cases" }
        (cases_table(cases).render(&View::of("cases", "/national/outliers", &raw)))
    };
    Ok(html_page(page(
        "National audit: outliers",
        c.nav(None),
        body,
    )))
}

async fn open_case(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    c.check_csrf(form.get("csrf").map(String::as_str))?;
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (programme, kpi) = (field("programme"), field("kpi"));
    let filters = Filters {
        from: field("from"),
        to: field("to"),
        method: field("method"),
        ..Default::default()
    };
    let period = chosen_period(&app, &filters)?;
    let method = filters.method()?;
    if !FUNNELS.iter().any(|(k, _)| *k == kpi) {
        return Err(WebError::BadRequest(format!("'{kpi}' has no funnel plot")));
    }
    let username = c.user.username.clone();
    let a = app.clone();
    let id = app
        .national(move |n| {
            // The finding is computed again here: a case is opened only for a real outlier.
            let found = find_outliers(&a, n, period, method)?
                .into_iter()
                .find(|o| o.programme == programme && o.kpi == kpi)
                .ok_or_else(|| {
                    WebError::BadRequest(format!(
                        "{programme} is within the limits for {kpi} in this period"
                    ))
                })?;
            let case = OutlierCase {
                id: String::new(),
                programme,
                kpi,
                from: period.from.to_string(),
                to: period.to.to_string(),
                level: found.level.into(),
                direction: found.direction.into(),
                finding: found.finding,
                status: "open".into(),
                opened_at: crest_store::utc_now(),
            };
            Ok(n.open_case(&case, &username)?)
        })
        .await?;
    Ok(Redirect::to(&format!("/national/outliers/case?id={}", url_encode(&id))).into_response())
}

/// A programme outside a funnel's limits.
struct Found {
    programme: String,
    kpi: &'static str,
    label: &'static str,
    level: &'static str,
    direction: &'static str,
    finding: String,
    /// The limits' method in force for its KPI's funnel.
    method: &'static str,
}

/// Every programme outside the 95% limits of a proportion KPI's funnel in `period`.
fn find_outliers(
    app: &App,
    n: &mut crest_store::NationalStore,
    period: crest_core::Period,
    method: crest_stats::funnel::Method,
) -> Result<Vec<Found>, WebError> {
    let nr = app.national_report(n, period)?;
    let report = &nr.report;
    // The same positions the annual report publishes (one definition: exact counts, pooled
    // over every programme).
    let keys: Vec<&'static str> = FUNNELS.iter().map(|(k, _)| *k).collect();
    let found = crest_stats::published::outliers(report, &keys, method)
        .into_iter()
        .filter_map(|o| {
            let (level, dir) = match o.position {
                Position::Alert(d) => ("alert", d),
                Position::Alarm(d) => ("alarm", d),
                Position::Within => return None,
            };
            let label = FUNNELS
                .iter()
                .find(|(k, _)| *k == o.kpi)
                .map_or("", |f| f.1);
            Some(Found {
                programme: o.programme_code,
                kpi: o.kpi,
                label,
                level,
                direction: if dir == Direction::Low { "low" } else { "high" },
                finding: format!(
                    "{}/{} = {} (pooled {})",
                    crate::html::thousands(o.numerator),
                    crate::html::thousands(o.denominator),
                    pct(Some(o.numerator as f64 / o.denominator as f64)),
                    pct(Some(o.pooled))
                ),
                method: o.method.code(),
            })
        })
        .collect();
    Ok(found)
}

#[derive(serde::Deserialize)]
struct CaseQuery {
    id: String,
    /// For a download: `years` (the programme's year on year) or `history`.
    #[serde(default)]
    table: String,
}

/// Where one of a case's tables downloads.
fn case_files(id: &str, table: &str) -> Option<[String; 2]> {
    let q = format!("id={}&table={table}", url_encode(id));
    Some(["csv", "xlsx"].map(|x| format!("/national/outliers/case.{x}?{q}")))
}

/// A case's programme year on year for its KPI, beside the nation's pooled proportion.
fn case_years_table(case: &OutlierCase, recent: &Recent) -> Table {
    Table {
        caption: format!("{}'s {}, year on year", case.programme, case.kpi),
        rows_are: "years".into(),
        columns: vec![
            Column::words("Period", "period_from"),
            Column::file_only("period_to"),
            Column::file_only("kpi"),
            Column::words("Programme", "programme").page_only(),
            Column::file_only("numerator"),
            Column::file_only("denominator"),
            Column::numbers("Nation (pooled)", "pooled"),
        ],
        rows: recent
            .iter()
            .map(|(p, (k, n), pooled)| {
                let mine = if *n == 0 {
                    "no patients".to_string()
                } else {
                    format!("{k}/{n} = {}", pct(Some(*k as f64 / *n as f64)))
                };
                vec![
                    Cell::coded(
                        format!("{} to {}", p.from.long(), p.to.long()),
                        p.from.to_string(),
                    ),
                    Cell::text(p.to.to_string()),
                    Cell::text(case.kpi.clone()),
                    Cell::text(mine),
                    Cell::count(*k),
                    Cell::count(*n),
                    Cell::proportion(*pooled),
                ]
            })
            .collect(),
        downloads: case_files(&case.id, "years"),
        empty: "No year has figures for this case's programme.".into(),
    }
}

/// A case's history: every stage and note, dated.
fn case_history_table(case: &OutlierCase, history: &[crest_store::national::CaseNote]) -> Table {
    Table {
        caption: "History".into(),
        rows_are: "notes".into(),
        columns: vec![
            Column::words("When", "at"),
            Column::words("Who", "username"),
            Column::words("Stage", "stage"),
            Column::words("Note", "note"),
        ],
        rows: history
            .iter()
            .map(|h| {
                vec![
                    Cell::coded(crest_core::date::uk_timestamp_iso(&h.at), h.at.clone()),
                    Cell::text(h.username.clone()),
                    Cell::coded(stage(&h.status), h.status.clone()),
                    Cell::text(h.note.clone()),
                ]
            })
            .collect(),
        downloads: case_files(&case.id, "history"),
        empty: "Nothing has been recorded yet.".into(),
    }
}

/// Every outlier case as CSV or XLSX, newest first.
async fn cases_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
) -> Result<Response, WebError> {
    let cases = app.national(|n| Ok(n.cases()?)).await?;
    cases_table(&cases).download("cases", &format)
}

/// One of a case's tables as CSV or XLSX: `years` or `history`.
async fn case_download(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(q): Query<CaseQuery>,
) -> Result<Response, WebError> {
    let a = app.clone();
    let name = format!("case-{}", q.table);
    app.national(move |n| {
        let case = n
            .cases()?
            .into_iter()
            .find(|x| x.id == q.id)
            .ok_or(WebError::NotFound)?;
        match q.table.as_str() {
            "years" => Ok(case_years_table(&case, &recent_history(&a, n, &case)?)),
            "history" => Ok(case_history_table(&case, &n.case_history(&case.id)?)),
            _ => Err(WebError::BadRequest(
                "Choose a table to download: years or history.".into(),
            )),
        }
    })
    .await?
    .download(&name, &format)
}

/// A programme's year on year for a case's KPI: each of the case's period and the two before
/// it, with the programme's exact counts and the national pooled proportion.
type Recent = Vec<(crest_core::Period, (u64, u64), Option<f64>)>;

fn recent_history(
    app: &App,
    n: &mut crest_store::NationalStore,
    case: &OutlierCase,
) -> Result<Recent, WebError> {
    let (Ok(from), Ok(to)) = (
        crest_core::Date::parse_iso(&case.from),
        crest_core::Date::parse_iso(&case.to),
    ) else {
        return Ok(Vec::new());
    };
    let period = crest_core::Period { from, to };
    let three = [period.earlier(2), period.earlier(1), period];
    // The dashboard's shared reports: three years from one read of the store.
    let reports = app.national_reports(n, &three)?;
    Ok(three
        .into_iter()
        .zip(reports)
        .map(|(p, r)| {
            let mine = r
                .report
                .programmes
                .iter()
                .find(|k| k.programme_code == case.programme)
                .map_or((0, 0), |k| k.proportion(&case.kpi));
            let all: Vec<(u64, u64)> = r
                .report
                .programmes
                .iter()
                .map(|k| k.proportion(&case.kpi))
                .collect();
            (p, mine, crest_stats::funnel::pooled(&all))
        })
        .collect())
}

fn case_page(
    c: &crate::app::Ctx,
    case: &OutlierCase,
    history: &[crest_store::national::CaseNote],
    recent: &Recent,
    error: Option<&str>,
) -> maud::Markup {
    // A closed case takes no more notes; an open one moves only forward.
    let from = CASE_STAGES
        .iter()
        .position(|s| *s == case.status)
        .unwrap_or(0);
    let query = HashMap::from([("id".to_string(), case.id.clone())]);
    let view = |table: &str| View::of(table, "/national/outliers/case", &query);
    html! {
        @if let Some(e) = error {
            div class="summary" role="alert" tabindex="-1" autofocus {
                h2 { "There is a problem" }
                p { (e) }
            }
        }
        p {
            (case.programme) " is an " strong { (case.level) " " (case.direction) }
            " outlier for " (case.kpi) " from " (crest_core::date::long_iso(&case.from)) " to " (crest_core::date::long_iso(&case.to)) ": " (case.finding) "."
        }
        p { "Stage: " strong { (stage(&case.status)) } "." }
        @if !recent.is_empty() {
            (case_years_table(case, recent).render(&view("years")))
        }
        (case_history_table(case, history).render(&view("history")))
        @if case.status != "closed" {
            form method="post" {
                (csrf_field(&c.session.csrf))
                input type="hidden" name="id" value=(case.id);
                label for="status" { "Stage" }
                select id="status" name="status" {
                    @for s in &CASE_STAGES[from..] {
                        option value=(s) selected[*s == case.status] { (stage(s)) }
                    }
                }
                label for="note" { "Note (dated and kept)" }
                textarea id="note" name="note" rows="3" cols="60" {}
                p { button { "Record" } }
            }
        }
        p { a href="/national/outliers" { "All outliers and cases" } }
    }
}

async fn show(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<CaseQuery>,
) -> Result<Response, WebError> {
    let id = q.id.clone();
    let a = app.clone();
    let (case, history, recent) = app
        .national(move |n| {
            let case = n
                .cases()?
                .into_iter()
                .find(|x| x.id == id)
                .ok_or(WebError::NotFound)?;
            let history = n.case_history(&case.id)?;
            let recent = recent_history(&a, n, &case)?;
            Ok((case, history, recent))
        })
        .await?;
    Ok(html_page(page(
        &format!("Outlier case: {} {}", case.programme, case.kpi),
        c.nav(None),
        case_page(&c, &case, &history, &recent, None),
    )))
}

async fn update(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, WebError> {
    c.check_csrf(form.get("csrf").map(String::as_str))?;
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (id, status, note) = (field("id"), field("status"), field("note"));
    let username = c.user.username.clone();
    let a = app.clone();
    let outcome = app
        .national(move |n| {
            let result = n.update_case(&id, &status, &note, &username, &crest_store::utc_now());
            let case = n
                .cases()?
                .into_iter()
                .find(|x| x.id == id)
                .ok_or(WebError::NotFound)?;
            let history = n.case_history(&id)?;
            // The page is drawn again only when the change is refused.
            let recent = if result.is_err() {
                recent_history(&a, n, &case)?
            } else {
                Vec::new()
            };
            Ok((result, case, (history, recent)))
        })
        .await?;
    match outcome {
        (Ok(()), case, _) => Ok(Redirect::to(&format!(
            "/national/outliers/case?id={}",
            url_encode(&case.id)
        ))
        .into_response()),
        (Err(e), case, (history, recent)) => {
            let mut r = html_page(page(
                &format!("Outlier case: {} {}", case.programme, case.kpi),
                c.nav(None),
                case_page(&c, &case, &history, &recent, Some(&e.to_string())),
            ));
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
    }
}
