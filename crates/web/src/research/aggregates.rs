//! Aggregates for the people who plan and study services: national analysts (exact figures),
//! commissioners (their regions only) and researchers (the nation), the last two always
//! disclosure-controlled. One function answers the page, its CSV and the API, so all three
//! give the same cells.

use crate::app::access::Planner;
use crate::app::{html_page, App, Ctx, WebError};
use crate::html::page;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_report::aggregates::{answer_with, published_grid, Answer, Query as AggQuery};
use crest_stats::aggregate::{numeric_field, Dimension, Measure, MAX_DIMENSIONS};
use crest_store::Role;
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/aggregates", get(aggregates_page))
        .route("/aggregates.{format}", get(aggregates_file))
}

/// An aggregate request as typed on a page or sent to the API: `by` may repeat or hold a
/// comma-separated list.
#[derive(Clone, Debug, Default)]
pub(crate) struct Asked {
    pub by: String,
    pub measure: String,
    pub from: String,
    pub to: String,
    /// An analyst's choice to see the published values.
    pub published: bool,
    /// The page of the table shown (from 1).
    pub page: usize,
    /// The column the table is sorted by, and whether high to low.
    pub sort: String,
    pub descending: bool,
}

impl Asked {
    /// From a query string's pairs.
    pub fn from_pairs(pairs: &[(String, String)]) -> Asked {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let by: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "by")
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        Asked {
            by: by.join(","),
            measure: get("measure"),
            from: get("from"),
            to: get("to"),
            published: matches!(get("published").as_str(), "1" | "yes" | "true" | "on"),
            page: get("page").parse().unwrap_or(1).max(1),
            sort: get("sort"),
            descending: get("order") == "desc",
        }
    }

    /// The page's own address with a different page or order of the table.
    fn page_link(&self, page: usize, sort: &str, descending: bool) -> String {
        let mut q = self.query_string();
        q.push_str(&format!("&run=1&page={page}"));
        if !sort.is_empty() {
            q.push_str(&format!(
                "&sort={}&order={}",
                crate::html::url_encode(sort),
                if descending { "desc" } else { "asc" }
            ));
        }
        format!("/aggregates?{q}")
    }

    /// The query string that asks for this again.
    pub fn query_string(&self) -> String {
        let mut parts: Vec<String> = self
            .by
            .split(',')
            .filter(|b| !b.is_empty())
            .map(|b| format!("by={}", crate::html::url_encode(b)))
            .collect();
        for (k, v) in [
            ("measure", &self.measure),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", crate::html::url_encode(v)));
            }
        }
        if self.published {
            parts.push("published=1".into());
        }
        parts.join("&")
    }
}

/// Answers an aggregate for the signed-in user: commissioners only over their regions, and
/// commissioners and researchers only ever with disclosure control. Every problem with the
/// request is reported at once.
pub(crate) async fn aggregate_for(
    app: &Arc<App>,
    c: &Ctx,
    asked: &Asked,
) -> Result<Answer, WebError> {
    let role = c.user.role;
    if !matches!(
        role,
        Role::NationalAnalyst | Role::Commissioner | Role::Researcher
    ) {
        return Err(WebError::NotFound);
    }
    let mut problems = Vec::new();
    let by = Dimension::parse_list(&asked.by).unwrap_or_else(|e| {
        problems.push(e.0);
        Vec::new()
    });
    let measure_text = if asked.measure.is_empty() {
        "uptake"
    } else {
        asked.measure.as_str()
    };
    let measure = Measure::parse(measure_text).unwrap_or_else(|e| {
        problems.push(e.0);
        Measure::Uptake
    });
    let period = crate::app::requested_period(app, &asked.from, &asked.to);
    let period = match period {
        Ok(p) => Some(p),
        Err(e) => {
            problems.push(e.message());
            None
        }
    };
    let (false, Some(period)) = (!problems.is_empty(), period) else {
        return Err(WebError::BadRequest(problems.join(" ")));
    };
    let restricted = role.restricted();
    let q = AggQuery {
        by,
        measure,
        period: period_for(c, period),
        regions: (role == Role::Commissioner).then(|| c.user.regions.clone()),
    };
    let published = restricted || asked.published;
    let mut entry = c.entry("", "aggregate", &asked.by);
    entry.detail = format!(
        "measure {}, {} to {}",
        measure.code(),
        q.period.from,
        q.period.to
    );
    let a = app.clone();
    app.national(move |n| {
        let answered = a
            .answer(n, &q, published)?
            .map_err(|refused| WebError::BadRequest(refused.to_string()))?;
        // Every question is logged, answered from the cache or not.
        n.log(&entry)?;
        Ok((*answered).clone())
    })
    .await
}

impl App {
    /// An aggregate answer, computed once per version of the national data: the aggregates
    /// page, its downloads, the API and the region page's comparisons ask through here, so the
    /// same question always gets the same published cells.
    pub(crate) fn answer(
        &self,
        n: &mut crest_store::NationalStore,
        q: &AggQuery,
        published: bool,
    ) -> Result<Result<Arc<Answer>, crest_report::aggregates::NotPublished>, WebError> {
        let key = format!(
            "{:?}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{:?}\u{1f}{published}",
            q.by,
            q.measure.code(),
            q.period.from,
            q.period.to,
            q.regions
        );
        let version = n.data_version()?;
        if let Some(hit) = self.answers.get(&key, &version) {
            return Ok(Ok(hit));
        }
        // Counts and waits come from the facts held in memory; a measure field's values from
        // the store.
        let held = match q.measure.field() {
            None => Some(self.aggregate_facts(n)?),
            Some(_) => None,
        };
        match answer_with(n, q, published, held.as_deref()).map_err(WebError::internal)? {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                self.answers.put(key, version, fresh.clone());
                Ok(Ok(fresh))
            }
            Err(refused) => Ok(Err(refused)),
        }
    }
}

/// The period a user's figures cover: commissioners and researchers get the published grid
/// (one quarter, or whole financial years), so no two answers can be differenced.
pub(crate) fn period_for(c: &Ctx, period: crest_core::Period) -> crest_core::Period {
    if c.user.role.restricted() {
        published_grid(period)
    } else {
        period
    }
}

/// A column name of an answer in words.
pub(crate) fn column_label(column: &str, measure: Measure) -> String {
    if let Some(d) = Dimension::parse(column) {
        return d.label().to_string();
    }
    match (column, measure) {
        ("numerator", Measure::Uptake) => "Started".into(),
        ("numerator", Measure::StartedInTime) => "Started in time".into(),
        ("numerator", _) => "Completed".into(),
        ("denominator", Measure::Uptake) => "Referred".into(),
        ("denominator", _) => "Started".into(),
        ("percent", _) => "Per cent".into(),
        ("ci_low", _) => "95% interval from".into(),
        ("ci_high", _) => "95% interval to".into(),
        ("n", _) => "Patients with a value".into(),
        ("nation_percent", _) => "Nation, per cent".into(),
        ("mean", _) => "Mean".into(),
        ("median", _) => "Median".into(),
        (other, m) if other == m.code() => m.label(),
        (other, _) => other.to_string(),
    }
}

/// An answer as a table people can read, with a caption.
pub(crate) fn answer_table(caption: &str, a: &Answer, measure: Measure) -> Markup {
    let width = a.columns.len();
    let dims = a
        .columns
        .iter()
        .take_while(|c| Dimension::parse(c).is_some())
        .count();
    html! {
        div class="table-scroll" {
            table class="data" tabindex="0" {
                caption { (caption) }
                thead { tr {
                    @for c in &a.columns {
                        th scope="col" class=[(Dimension::parse(c).is_none()).then_some("num")] {
                            (column_label(c, measure))
                        }
                    }
                } }
                tbody {
                    @if a.rows.is_empty() {
                        tr { td colspan=(width) { "No episodes in this period." } }
                    }
                    @for r in &a.rows {
                        tr {
                            @for (i, cell) in r.iter().enumerate() {
                                @if i < dims.max(1) && dims > 0 {
                                    th scope="row" { (cell) }
                                } @else {
                                    td class="num" { (crate::html::count_words(cell)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Rows of an answer on one page of the page's table.
const ROWS_PER_PAGE: usize = 50;

/// Orders cells as people expect: numbers by value, text alphabetically, and `*` (hidden) and
/// empty cells last whichever way the table runs.
fn cell_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let blank = |c: &str| c.is_empty() || c == "*";
    match (blank(a), blank(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => a.cmp(b),
        },
    }
}

/// The aggregates page's table: sortable by any column (the headings are links), in pages of
/// [`ROWS_PER_PAGE`] rows; the download always holds every row.
fn paged_table(caption: &str, a: &Answer, measure: Measure, asked: &Asked) -> Markup {
    let column = a.columns.iter().position(|c| *c == asked.sort);
    let mut rows: Vec<&Vec<String>> = a.rows.iter().collect();
    if let Some(i) = column {
        rows.sort_by(|x, y| {
            let o = cell_order(&x[i], &y[i]);
            let blank = |c: &str| c.is_empty() || c == "*";
            // Hidden cells stay last in either direction.
            if asked.descending && !blank(&x[i]) && !blank(&y[i]) {
                o.reverse()
            } else {
                o
            }
        });
    }
    let pages = rows.len().div_ceil(ROWS_PER_PAGE).max(1);
    let page = asked.page.min(pages);
    let shown: Vec<Vec<String>> = rows
        .iter()
        .skip((page - 1) * ROWS_PER_PAGE)
        .take(ROWS_PER_PAGE)
        .map(|r| (*r).clone())
        .collect();
    let part = Answer {
        rows: shown,
        ..a.clone()
    };
    html! {
        @if !a.rows.is_empty() {
            p role="status" {
                "Rows " ((page - 1) * ROWS_PER_PAGE + 1) " to " (((page - 1) * ROWS_PER_PAGE + part.rows.len())) " of " (a.rows.len()) ". "
                "Sort by: "
                @for (i, c) in a.columns.iter().enumerate() {
                    @let now = asked.sort == *c;
                    @let descending = now && !asked.descending;
                    @if i > 0 { " · " }
                    a href=(asked.page_link(1, c, descending)) aria-current=[now.then_some("true")] {
                        (column_label(c, measure))
                        @if now { (if asked.descending { " (high to low)" } else { " (low to high)" }) }
                    }
                }
            }
        }
        (answer_table(caption, &part, measure))
        @if pages > 1 {
            nav aria-label="Pages of the table" class="pages" {
                @if page > 1 {
                    a href=(asked.page_link(page - 1, &asked.sort, asked.descending)) { "Previous page" } " "
                }
                "Page " (page) " of " (pages)
                @if page < pages {
                    " " a href=(asked.page_link(page + 1, &asked.sort, asked.descending)) { "Next page" }
                }
            }
        }
    }
}

fn measure_options(chosen: &str) -> Markup {
    // Assessment 1 and 2 record the same measures under the same labels: their groups tell
    // them apart, so no option needs its column name.
    let group = |assessment: Option<u8>| {
        crest_core::FIELDS
            .iter()
            .filter(move |f| numeric_field(f) && f.assessment() == assessment)
    };
    html! {
        @for m in Measure::FIXED {
            option value=(m.code()) selected[chosen == m.code()] { (m.label()) }
        }
        @for (title, assessment) in [("About the patient", None), ("Assessment 1", Some(1)), ("Assessment 2", Some(2))] {
            optgroup label=(title) {
                @for f in group(assessment) {
                    option value=(f.name) selected[chosen == f.name] { (f.label) }
                }
            }
        }
    }
}

fn aggregates_body(c: &Ctx, asked: &Asked, result: Option<Result<Answer, WebError>>) -> Markup {
    let chosen: Vec<&str> = asked.by.split(',').filter(|b| !b.is_empty()).collect();
    let measure = Measure::parse(if asked.measure.is_empty() {
        "uptake"
    } else {
        &asked.measure
    })
    .unwrap_or(Measure::Uptake);
    let restricted = c.user.role.restricted();
    html! {
        p {
            "Count, compare and summarise episodes by up to " (MAX_DIMENSIONS) " breakdowns. "
            @if c.user.role == Role::Commissioner {
                "You see the programmes of " strong { (c.user.regions.join(", ")) } " only. "
            }
            @if restricted {
                "Figures are published values: counts of 1 to 7 show as *, other counts are rounded to the nearest 5, "
                "and a few more cells may be hidden so that no hidden count can be worked out from totals. "
                "Periods run in whole months."
            } @else {
                "You see exact values; tick \"Published values\" to see what commissioners and researchers would get."
            }
        }
        form method="get" action="/aggregates" class="filters" {
            @for i in 0..MAX_DIMENSIONS {
                div class="field" {
                    label for={ "by" (i) } { "Breakdown " (i + 1) }
                    select id={ "by" (i) } name="by" {
                        option value="" { "none" }
                        // Months and calendar years are not on the published grid.
                        @for d in Dimension::ALL.iter().filter(|d| !(restricted && matches!(d, Dimension::Month | Dimension::Year))) {
                            option value=(d.code()) selected[chosen.get(i) == Some(&d.code())] { (d.label()) }
                        }
                    }
                }
            }
            div class="field" {
                label for="measure" { "Measure" }
                select id="measure" name="measure" { (measure_options(&asked.measure)) }
            }
            div class="field" {
                label for="from" { "Referred from" }
                div class="hint" id="from-hint" {
                    "DD/MM/YYYY; empty for the last complete financial year."
                    @if restricted { " " (crest_report::aggregates::PUBLISHED_PERIODS) }
                }
                input id="from" name="from" class="short" value=(asked.from) aria-describedby="from-hint";
            }
            div class="field" {
                label for="to" { "to" }
                input id="to" name="to" class="short" value=(asked.to);
            }
            @if !restricted {
                div class="choice" {
                    input type="checkbox" id="published" name="published" value="1" checked[asked.published];
                    label for="published" { "Published values" }
                }
            }
            input type="hidden" name="run" value="1";
            p { button { "Show" } }
        }
        @match result {
            None => {}
            Some(Err(message)) => div class="summary" role="alert" tabindex="-1" {
                h2 { "There is a problem" }
                p { (message.message()) }
            },
            Some(Ok(a)) => {
                @let caption = format!(
                    "{}{}, referred {} to {}{}",
                    measure.label(),
                    if chosen.is_empty() { String::new() } else {
                        format!(" by {}", chosen.iter().filter_map(|b| Dimension::parse(b)).map(|d| d.label().to_lowercase()).collect::<Vec<_>>().join(", "))
                    },
                    crest_core::Date::parse_iso(&a.from).map(|d| d.long()).unwrap_or_default(),
                    crest_core::Date::parse_iso(&a.to).map(|d| d.long()).unwrap_or_default(),
                    if a.published { " (published values)" } else { " (exact values)" }
                );
                (paged_table(&caption, &a, measure, asked))
                p {
                    "Download this table (every row): "
                    a href={ "/aggregates.csv?" (asked.query_string()) } download { "CSV" } " · "
                    a href={ "/aggregates.xlsx?" (asked.query_string()) } download { "XLSX" }
                    " · "
                    a href={ "/api/v1/aggregates?" (asked.query_string()) } { "as JSON (API)" }
                }
            }
        }
    }
}

async fn aggregates_page(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let asked = Asked::from_pairs(&pairs);
    let run = pairs.iter().any(|(k, _)| k == "run") || !asked.by.is_empty();
    let result = if run {
        Some(match aggregate_for(&app, &c, &asked).await {
            Ok(a) => Ok(a),
            Err(e @ WebError::BadRequest(_)) => Err(e),
            Err(e) => return Err(e),
        })
    } else {
        None
    };
    let failed = matches!(result, Some(Err(_)));
    let mut r = html_page(page(
        "Aggregates",
        c.nav(None),
        aggregates_body(&c, &asked, result),
    ));
    if failed {
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn aggregates_file(
    State(app): State<Arc<App>>,
    Planner(c): Planner,
    axum::extract::Path(format): axum::extract::Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    if !matches!(format.as_str(), "csv" | "xlsx") {
        return Err(WebError::NotFound);
    }
    let a = aggregate_for(&app, &c, &Asked::from_pairs(&pairs)).await?;
    crate::app::table_download("crest-aggregate", &format, &a.columns, &a.rows)
}
