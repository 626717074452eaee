//! Data quality for national analysts: which programmes have submitted for a period (missing
//! first), and how complete each programme's data are, field by field, with assessment 1 and 2
//! recording, the worst first.

use crate::app::access::Analyst;
use crate::app::table::{Cell, Column, Table, View};
use crate::app::{html_page, App, WebError};
use crate::html::{page, pct, url_encode};
use crate::national::dashboard::{chosen_period, proportion, Filters};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_store::national::national_fields;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/national/quality", get(quality))
}

#[derive(serde::Deserialize, Default)]
struct QualityQuery {
    #[serde(flatten)]
    filters: Filters,
    #[serde(default)]
    programme: String,
    /// `submissions.csv`, `submissions.xlsx`, `completeness.csv`, `completeness.xlsx`, or
    /// (with a programme) `fields.csv` or `fields.xlsx`: that table as a file instead of the
    /// page.
    #[serde(default)]
    download: String,
}

/// The page, or one of its tables as a file named so.
enum Answer {
    Page(maud::Markup),
    File(String, Table),
}

async fn quality(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(q): Query<QualityQuery>,
    Query(raw): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &q.filters)?;
    let chosen = q.programme.clone();
    let download = q.download.clone();
    let a = app.clone();
    let answer = app
        .national(move |n| {
            // The dashboard's shared report of the period: computed once per data version.
            let nr = a.national_report(n, period)?;
            let (programmes, report) = (&nr.programmes, &nr.report);
            let held = n.submissions()?;
            let counts = n.completeness(period.from, period.to)?;
            let (from, to) = (period.from.to_string(), period.to.to_string());
            // Submissions received against expected: every registered programme, once,
            // missing first.
            let mut submitted: Vec<(&str, Option<&crest_store::national::HeldSubmission>)> = programmes
                .iter()
                .map(|p| {
                    let got = held
                        .iter()
                        .find(|s| s.programme == p.code && s.from == from && s.to == to && s.current);
                    (p.code.as_str(), got)
                })
                .collect();
            submitted.sort_by_key(|r| r.1.is_some());
            let received = submitted.iter().filter(|r| r.1.is_some()).count();
            // Completeness of the optional national fields (required ones are always there).
            let fields: Vec<(usize, &crest_core::Field)> = national_fields()
                .enumerate()
                .filter(|(_, f)| !f.required)
                .collect();
            // A programme uses one walk test: the other, never recorded, is not a gap.
            let walk_tests = ["iswt_m", "six_mwt_m"];
            let unused_walk_test = |f: &crest_core::Field, filled: &[i64]| {
                let Some(other) = walk_tests
                    .iter()
                    .position(|w| f.name.ends_with(w))
                    .map(|i| f.name.replace(walk_tests[i], walk_tests[1 - i]))
                else {
                    return false;
                };
                let used = |name: &str| {
                    fields
                        .iter()
                        .find(|(_, g)| g.name == name)
                        .is_some_and(|(i, _)| filled[*i] > 0)
                };
                !used(f.name) && used(&other)
            };
            let shares_of = |total: i64, filled: &[i64]| {
                let mut shares: Vec<(f64, String)> = fields
                    .iter()
                    .filter(|(_, f)| !unused_walk_test(f, filled))
                    .map(|(i, f)| (filled[*i] as f64 / total.max(1) as f64, in_words(f)))
                    .collect();
                shares.sort_by(|a, b| a.0.total_cmp(&b.0));
                shares
            };
            struct Row<'a> {
                code: &'a str,
                total: i64,
                overall: f64,
                worst: String,
                a1: Option<f64>,
                a2: Option<f64>,
            }
            let mut table: Vec<Row> = Vec::new();
            for (code, total, filled) in &counts {
                let shares = shares_of(*total, filled);
                let overall = shares.iter().map(|s| s.0).sum::<f64>() / shares.len().max(1) as f64;
                let worst = shares
                    .iter()
                    .take(3)
                    .map(|(s, name)| format!("{name} {}", pct(Some(*s))))
                    .collect::<Vec<_>>()
                    .join(", ");
                let kpis = report.programmes.iter().find(|p| &p.programme_code == code);
                let share = |key: &str| {
                    kpis.map(|k| proportion(k, key))
                        .and_then(|(k, n)| (n > 0).then(|| k as f64 / n as f64))
                };
                table.push(Row {
                    code,
                    total: *total,
                    overall,
                    worst,
                    a1: share("assessment1"),
                    a2: share("assessment2"),
                });
            }
            table.sort_by(|a, b| a.overall.total_cmp(&b.overall));
            let share = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
            let proportion_cell = |x: Option<f64>| Cell::number(x, pct(x), share(x));
            let name_of = |code: &str| {
                programmes
                    .iter()
                    .find(|p| p.code == code)
                    .map_or(code.to_string(), |p| format!("{} ({code})", p.name))
            };
            let files = |table: &str| {
                let at = |format: &str| format!("/national/quality?from={from}&to={to}&download={table}.{format}");
                Some([at("csv"), at("xlsx")])
            };
            let submissions = Table {
                caption: "Submissions received against expected (missing first)".into(),
                rows_are: "programmes".into(),
                columns: vec![
                    Column::words("Programme", "programme_code"),
                    Column::words("Status", "status"),
                    Column::numbers("Episodes", "episodes"),
                    Column::words("Key id", "key_id"),
                ],
                rows: submitted
                    .iter()
                    .map(|(code, got)| {
                        let programme = Cell::coded(name_of(code), *code);
                        match got {
                            Some(s) => vec![
                                programme,
                                Cell::text("received"),
                                Cell::number(Some(s.episodes as f64), crate::html::thousands(s.episodes as u64), s.episodes.to_string()),
                                Cell::text(s.key_id.clone()),
                            ],
                            None => vec![
                                programme,
                                Cell::text("missing").strong(true),
                                Cell::number(None, "–", ""),
                                Cell::coded("–", ""),
                            ],
                        }
                    })
                    .collect(),
                downloads: files("submissions"),
                empty: "No programmes are registered.".into(),
            };
            let completeness = Table {
                caption: "Completeness of the optional national fields by programme (worst first)".into(),
                rows_are: "programmes".into(),
                columns: vec![
                    Column::words("Programme", "programme_code"),
                    Column::numbers("Episodes", "episodes"),
                    Column::numbers("Fields complete", "fields_complete"),
                    Column::words("Least complete", "least_complete"),
                    Column::numbers("Assessment 1 recorded", "assessment1"),
                    Column::numbers("Assessment 2 within 140 days", "assessment2"),
                ],
                rows: table
                    .iter()
                    .map(|r| {
                        vec![
                            Cell::coded(name_of(r.code), r.code).link(format!(
                                "/national/quality?from={from}&to={to}&programme={}#fields",
                                url_encode(r.code)
                            )),
                            Cell::number(Some(r.total as f64), crate::html::thousands(r.total.max(0) as u64), r.total.to_string()),
                            proportion_cell(Some(r.overall)),
                            Cell::text(r.worst.clone()),
                            proportion_cell(r.a1),
                            proportion_cell(r.a2),
                        ]
                    })
                    .collect(),
                downloads: files("completeness"),
                empty: "No episodes were submitted for this period.".into(),
            };
            // One programme's every optional field, least complete first.
            let fields_table = |(code, total, filled): &(String, i64, Vec<i64>)| -> Table {
                let total = *total;
                Table {
                    caption: format!(
                        "Completeness of each optional national field, {} episodes",
                        crate::html::thousands(total.max(0) as u64)
                    ),
                    rows_are: "fields".into(),
                    columns: vec![
                        Column::words("Field", "field"),
                        Column::numbers("Complete", "complete"),
                    ],
                    rows: shares_of(total, filled)
                        .into_iter()
                        .map(|(s, name)| vec![Cell::text(name), proportion_cell(Some(s))])
                        .collect(),
                    downloads: Some(["csv", "xlsx"].map(|x| {
                        format!(
                            "/national/quality?from={from}&to={to}&programme={}&download=fields.{x}",
                            url_encode(code)
                        )
                    })),
                    empty: "No episodes were submitted for this period.".into(),
                }
            };
            match download.split_once('.').map(|(t, _)| t) {
                Some("submissions") => {
                    return Ok(Answer::File(format!("submissions-{from}-{to}"), submissions));
                }
                Some("completeness") => {
                    return Ok(Answer::File(format!("completeness-{from}-{to}"), completeness));
                }
                Some("fields") => {
                    let one = counts.iter().find(|c| c.0 == chosen).ok_or(WebError::NotFound)?;
                    return Ok(Answer::File(format!("fields-{}-{from}-{to}", one.0), fields_table(one)));
                }
                Some(_) => return Err(WebError::NotFound),
                None => {}
            }
            let one = counts.iter().find(|c| c.0 == chosen);
            let body = maud::html! {
                (crate::html::period_form(period.from, period.to, maud::html! {}))
                h2 { "Submissions for " (period.long()) }
                p { (received) " of " (programmes.len()) " programmes have submitted." }
                (submissions.render(&View::of("submissions", "/national/quality", &raw)))
                h2 { "Completeness" }
                (completeness.render(&View::of("completeness", "/national/quality", &raw)))
                @if let Some(one) = one {
                    h2 id="fields" { "Every field of " (name_of(&one.0)) }
                    (fields_table(one).render(&View::of("fields", "/national/quality", &raw)))
                }
            };
            Ok(Answer::Page(body))
        })
        .await?;
    match answer {
        Answer::Page(body) => Ok(html_page(page(
            "National audit: data quality",
            c.nav(None),
            body,
        ))),
        Answer::File(name, table) => {
            table.download(&name, q.download.rsplit('.').next().unwrap_or(""))
        }
    }
}

/// A field as people name it: a measure says which assessment it was taken at.
fn in_words(f: &crest_core::Field) -> String {
    match f.assessment() {
        Some(n) => format!("{} at assessment {n}", f.label),
        None => f.label.to_string(),
    }
}
