//! Measures over time as SPC charts on any page: the charts of a set of episodes over a run of
//! months, each with its variation and assurance icons in words, the service changes drawn on
//! them, and each chart downloadable as SVG or PNG and its months as CSV or XLSX (in the
//! columns `crest spc` writes). The lead's dashboard and the national pages use it.

use crate::app::table::{Cell, Column, Table};
use crate::app::WebError;
use axum::response::Response;
use crest_core::changes::ServiceChange;
use crest_core::{KpiEpisode, Period};
use crest_report::spc_chart::{spc_chart, spc_icons, value_words, ChangeLine};
use crest_stats::over_time::{self, Measure, Month, SpcMonth};
use crest_stats::spc::Chart;
use maud::{html, Markup};

/// The 24 months the charts cover: to the month the period ends in.
pub(crate) fn months(period: Period) -> (Month, Month) {
    let to = Month::of(period.to);
    (to.back(23), to)
}

/// The changes as the charts label them.
fn lines(changes: &[ServiceChange]) -> Vec<ChangeLine<'_>> {
    changes
        .iter()
        .map(|c| ChangeLine {
            month: Month::of(c.date),
            text: &c.text,
        })
        .collect()
}

/// A measure's target, if it has one here.
pub(crate) type TargetOf<'a> = Box<dyn Fn(Measure) -> Option<f64> + 'a>;

/// Where a measure's chart downloads in a format.
pub(crate) type FilesOf<'a> = Box<dyn Fn(Measure, &str) -> String + 'a>;

/// A form that records a service change: where it posts, whose services it may record (as
/// (value, words); one choice needs no question) and where to go back to.
pub(crate) struct ChangeForm {
    pub action: String,
    pub scopes: Vec<(String, String)>,
    pub back: String,
}

/// What a change form sends.
#[derive(serde::Deserialize, Default)]
pub(crate) struct ChangeAnswers {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    text: String,
}

impl ChangeForm {
    /// The form, with what was sent and what is wrong with it.
    pub fn render(&self, csrf: &str, sent: &ChangeAnswers, error: Option<&str>) -> Markup {
        html! {
            h3 id="record-change" { "Record a service change" }
            @if let Some(e) = error {
                (crate::html::error_summary(&[("change-text".to_string(), e.to_string())]))
            }
            form method="post" action=(self.action) class="noprint" {
                (crate::html::csrf_field(csrf))
                div class=[error.map(|_| "field-error")] {
                    @if self.scopes.len() > 1 {
                        label for="f-change-scope" { "Whose services changed" }
                        select id="f-change-scope" name="scope" {
                            @for (value, words) in &self.scopes {
                                option value=(value) selected[*value == sent.scope] { (words) }
                            }
                        }
                    }
                    label for="f-change-date" { "Date it took effect " span class="hint" { "DD/MM/YYYY, for example 01/10/2024" } }
                    input id="f-change-date" name="date" value=(sent.date) inputmode="numeric";
                    label for="f-change-text" { "What changed " span class="hint" { "at most 200 characters, for example “second exercise class added on Tuesdays”" } }
                    @if let Some(e) = error { p class="err" { (e) } }
                    input id="f-change-text" name="text" value=(sent.text) maxlength="200" size="60";
                }
                p { button { "Record the change" } }
            }
        }
    }

    /// Checks and records a change whose scope `scope_of` reads from the form; back to the
    /// page at its changes, or the form again (422) with what is wrong, in words.
    pub async fn record(
        &self,
        app: &std::sync::Arc<crate::app::App>,
        c: &crate::app::Ctx,
        nav: Markup,
        sent: ChangeAnswers,
        scope_of: impl Fn(&str) -> Option<crest_core::changes::ChangeScope>,
    ) -> Result<Response, WebError> {
        use axum::response::IntoResponse;
        c.check_csrf(Some(&sent.csrf))?;
        let checked = scope_of(&sent.scope)
            .ok_or_else(|| "Choose whose services changed.".to_string())
            .and_then(|scope| {
                let date = crest_core::Date::parse(&sent.date).map_err(|_| {
                    "Enter the date it took effect as DD/MM/YYYY, for example 01/10/2024."
                        .to_string()
                })?;
                ServiceChange::new(
                    scope,
                    date,
                    &sent.text,
                    &c.user.username,
                    &crest_store::utc_now(),
                )
                .map_err(|e| e.0)
            });
        match checked {
            Ok(change) => {
                app.db(move |s, _| Ok(s.add_service_change(&change)?))
                    .await?;
                Ok(axum::response::Redirect::to(&format!("{}#changes", self.back)).into_response())
            }
            Err(message) => {
                let mut r = crate::app::html_page(crate::html::page(
                    "Record a service change",
                    nav,
                    html! {
                        (self.render(&c.session.csrf, &sent, Some(&message)))
                        p { a href=(self.back) { "Back" } }
                    },
                ));
                *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
                Ok(r)
            }
        }
    }
}

/// A chart asked for by address: its measure and the period its months end with.
#[derive(serde::Deserialize)]
pub(crate) struct ChartQuery {
    /// The measure's code.
    #[serde(default)]
    pub measure: String,
    /// The period's first day, as the page's form gives it.
    #[serde(default)]
    pub from: String,
    /// The period's last day.
    #[serde(default)]
    pub to: String,
}

/// The measure a download names; a clear 400 for any other.
pub(crate) fn measure(code: &str) -> Result<Measure, WebError> {
    Measure::parse(code).ok_or_else(|| {
        WebError::BadRequest(format!(
            "Choose a measure: {}.",
            Measure::ALL.map(Measure::code).join(", ")
        ))
    })
}

/// Where a set of charts gets its months.
pub(crate) enum Source<'a> {
    /// Every measure, counted exactly from the episodes' KPI facts (referred up to a year
    /// before the first month, for waits).
    Facts(&'a [KpiEpisode]),
    /// The measures given, month by month as published, each with the months not drawn.
    Published(&'a [PublishedSeries]),
}

/// A measure's months as published: a month whose counts are suppressed has no value (it is
/// not drawn and adds nothing to the limits) and is named in `hidden`.
pub(crate) struct PublishedSeries {
    pub measure: Measure,
    pub months: Vec<crest_stats::over_time::MonthValue>,
    pub hidden: Vec<Month>,
}

/// The charts of a set of episodes.
pub(crate) struct Charts<'a> {
    /// Where the months come from.
    pub source: Source<'a>,
    /// The first and last month.
    pub months: (Month, Month),
    /// The service changes drawn, each splitting the limits.
    pub changes: &'a [ServiceChange],
    /// A measure's target, if it has one here.
    pub target: TargetOf<'a>,
    /// Where a measure's chart downloads in a format (`svg`, `png`, `csv`, `xlsx`).
    pub files: FilesOf<'a>,
}

impl Charts<'_> {
    /// One measure's months and chart.
    pub fn chart(&self, measure: Measure) -> (Vec<SpcMonth>, Chart) {
        let dates: Vec<crest_core::Date> = self.changes.iter().map(|c| c.date).collect();
        let target = (self.target)(measure);
        match self.source {
            Source::Facts(facts) => {
                over_time::spc_chart(measure, facts, self.months, &dates, target)
            }
            Source::Published(series) => {
                let months = series
                    .iter()
                    .find(|s| s.measure == measure)
                    .map_or_else(Vec::new, |s| s.months.clone());
                over_time::chart_of(measure, months, &dates, target)
            }
        }
    }

    /// The measures charted: every one from facts, those published from a published series.
    pub fn measures(&self) -> Vec<Measure> {
        match self.source {
            Source::Facts(_) => Measure::ALL.to_vec(),
            Source::Published(series) => series.iter().map(|s| s.measure).collect(),
        }
    }

    /// The months of a measure not drawn for disclosure control.
    fn hidden(&self, measure: Measure) -> &[Month] {
        match self.source {
            Source::Facts(_) => &[],
            Source::Published(series) => series
                .iter()
                .find(|s| s.measure == measure)
                .map_or(&[], |s| s.hidden.as_slice()),
        }
    }

    /// Every measure's chart, with its icons and downloads, under a heading.
    pub fn render(&self) -> Markup {
        self.render_with(html! {})
    }

    /// As [`Charts::render`], with `intro` (a choice of charts, a note) before the charts.
    pub fn render_with(&self, intro: Markup) -> Markup {
        let (from, to) = self.months;
        html! {
            h2 id="over-time" { "Over time: " (from.long()) " to " (to.long()) }
            p class="hint" {
                "Each chart shows a measure month by month as a statistical process control chart, \
                 the way NHS teams read change (Making Data Count). The solid line is the mean and the \
                 dashed lines the process limits: months between them vary by chance. A square marks \
                 special cause in the better direction, a diamond in the worse: a month outside the \
                 limits, 7 in a row on one side of the mean, 7 rising or falling, or 2 of 3 close to a \
                 limit. Limits need 12 months. Patients referred in the latest months may not \
                 have started yet, so those months' uptake and assessments can still rise."
            }
            (intro)
            @for measure in self.measures() {
                @let (months, chart) = self.chart(measure);
                @let hidden = self.hidden(measure);
                h3 { (measure.label()) }
                (spc_icons(measure, &months, &chart))
                (spc_chart(&format!("spc-{}", measure.code()), measure, &months, &lines(self.changes), hidden))
                @if !hidden.is_empty() {
                    p class="hint" {
                        (hidden.len()) " month(s) not drawn, to protect patients (1 to 7 people, or a count that would reveal them): "
                        (hidden.iter().map(|m| m.long()).collect::<Vec<_>>().join(", "))
                        ". The limits come from the months drawn."
                    }
                }
                p class="noprint" {
                    "Download this chart: "
                    a href=((self.files)(measure, "svg")) { "SVG" } " · "
                    a href=((self.files)(measure, "png")) { "PNG" }
                    " · its months: "
                    a href=((self.files)(measure, "csv")) { "CSV" } " · "
                    a href=((self.files)(measure, "xlsx")) { "XLSX" }
                }
            }
        }
    }

    /// A measure's chart as SVG or PNG, or its months as CSV or XLSX, named `name`.
    pub fn download(
        &self,
        measure: Measure,
        format: &str,
        name: &str,
    ) -> Result<Response, WebError> {
        let (months, _) = self.chart(measure);
        match format {
            "svg" | "png" => crate::app::chart_download(
                &spc_chart(
                    "chart",
                    measure,
                    &months,
                    &lines(self.changes),
                    self.hidden(measure),
                ),
                format,
                name,
                "There is nothing to draw for these months.",
            ),
            _ => months_table(measure, &months, self.hidden(measure)).download(name, format),
        }
    }
}

/// A chart's months as a table: the page's downloads hold every month with exact values, in
/// the columns `crest spc` writes.
fn months_table(measure: Measure, months: &[SpcMonth], hidden: &[Month]) -> Table {
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
                // A month not drawn for disclosure control says so where its value would be.
                if hidden.contains(&m.figures.month) {
                    row[3] = Cell::text("*");
                }
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
