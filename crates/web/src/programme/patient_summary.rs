//! What a nurse sees on opening a patient: who they are, where they are on the pathway, what is
//! due next and by when, and their measures so far. Changing the episode is a step away.

use crate::app::access::Staff;
use crate::app::{html_page, App, WebError};
use crate::html::{page, url_encode};
use crate::programme::progress_report::{measures, measures_table};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use crest_core::{Col, Date, PriorityGroup, Record};
use crest_stats::pathway::{pathway, Pathway};
use crest_stats::Thresholds;
use std::collections::HashMap;
use std::sync::Arc;

/// `GET /p/{code}/episodes/{id}`: the patient's summary.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let rec = crate::programme::episode_form::load(&app, &c, &p.code, &id, "view").await?;
    let path = pathway(&rec, p.nation, &Thresholds::default());
    let today = crest_core::date::uk_today();
    Ok(html_page(page(
        &format!("Episode {id}"),
        c.nav(Some(&p.code)),
        summary(&p.code, &id, &rec, &path, today, q.contains_key("saved")),
    )))
}

/// A value in the dictionary's words, or a dash when it is not recorded.
fn shown(rec: &Record, col: Col) -> String {
    let v = rec.get(col);
    if v.is_null() {
        "–".to_string()
    } else {
        col.field().display(v)
    }
}

/// An NHS number as it is read out and printed: 943 476 5919.
fn nhs_spaced(digits: &str) -> String {
    match (digits.get(..3), digits.get(3..6), digits.get(6..)) {
        (Some(a), Some(b), Some(c)) if digits.len() == 10 => format!("{a} {b} {c}"),
        _ => digits.to_string(),
    }
}

fn summary(
    programme: &str,
    id: &str,
    rec: &Record,
    path: &Pathway,
    today: Date,
    saved: bool,
) -> maud::Markup {
    let base = format!("/p/{programme}/episodes/{}", url_encode(id));
    let name = format!(
        "{} {}",
        rec.text(Col::GivenName).unwrap_or_default(),
        rec.text(Col::FamilyName).unwrap_or_default()
    );
    let group = PriorityGroup::of(
        rec.text(Col::InitiatingEvent).unwrap_or_default(),
        rec.text(Col::Treatment).unwrap_or_default(),
    );
    let age = match (rec.date(Col::DateOfBirth), rec.date(Col::EventDate)) {
        (Some(born), Some(event)) => format!(", {} at the event", born.age_on(event)),
        _ => String::new(),
    };
    let measures = measures(rec);
    let long = |d: Option<Date>| d.map(Date::long);
    maud::html! {
        @if saved {
            div class="ok" role="status" { "Saved." }
        }
        p class="patient" {
            strong { (name.trim()) } " · NHS number " (nhs_spaced(&shown(rec, Col::NhsNumber)))
            " · born " (shown(rec, Col::DateOfBirth)) (age)
        }
        p {
            "What led to the referral: " (shown(rec, Col::InitiatingEvent)) ". "
            "Treatment: " (shown(rec, Col::Treatment)) ". Priority group: " (group.label()) "."
        }
        p { "Where the patient is now: " strong { (shown(rec, Col::Status)) } "." }
        p class="actions" {
            a class="button" href={ (base) "/edit" } { "Change the episode" } " "
            a href={ (base) "/assessment1" } { "Assessment 1" } " · "
            a href={ (base) "/assessment2" } { "Assessment 2" } " · "
            a href={ (base) "/report" } { "Patient progress report" }
        }
        h2 { "Due next" }
        @if path.due.is_empty() {
            p { "Nothing: the episode is closed." }
        } @else {
            ul class="due" {
                @for due in &path.due {
                    @let late = due.days_late(today);
                    li class=[(late > 0).then_some("late")] {
                        strong { (due.what) }
                        @match (long(due.from), long(due.by)) {
                            (Some(from), Some(by)) => { ": from " (from) ", by " (by) }
                            (Some(from), None) => { ": from " (from) }
                            (None, Some(by)) => { ": by " (by) }
                            (None, None) => {}
                        }
                        @if late > 0 {
                            " " strong class="tag" { (late) (if late == 1 { " day" } else { " days" }) " late" }
                        }
                        br;
                        span class="hint" { (due.why) "." }
                    }
                }
            }
        }
        h2 { "The pathway" }
        ol class="pathway" {
            @for stage in &path.stages {
                li class=[stage.on.is_some().then_some("done")] {
                    (stage.name) ": "
                    @match stage.on {
                        Some(on) => { (on.long()) }
                        None => { span class="hint" { "not yet" } }
                    }
                }
            }
        }
        h2 { "Measures" }
        @if measures.is_empty() {
            p { "No measures are recorded yet. Enter them with assessment 1." }
        } @else {
            (measures_table(
                "Measures at assessment 1 and assessment 2",
                ["Assessment 1", "Assessment 2"],
                &measures,
            ))
        }
    }
}
