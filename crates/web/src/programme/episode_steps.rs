//! A new episode entered step by step along the patient's pathway (patient; event and
//! treatment; referral; core rehabilitation; assessment 1; assessment 2; outcome), then a
//! summary to check before saving. Nothing is stored until the summary is saved: each step
//! carries the answers so far in the form itself, so any server can take the next step. Each
//! step reports every problem of its own answers at once; the summary reports every problem of
//! the whole episode at once (the rules between fields too) and asks to confirm unusual values,
//! exactly as the whole-episode form and uploads do.

use crate::app::access::Staff;
use crate::app::{html_page, App, WebError};
use crate::html::{self, page};
use crate::programme::episode_form::{
    labelled, save_episode, validate, EpisodeForm, FieldMessages, CONFIRM,
};
use axum::http::StatusCode;
use axum::response::Response;
use crest_core::{Field, Kind, Step, FIELDS};
use maud::{html, Markup};
use std::collections::HashMap;
use std::sync::Arc;

/// The form field naming the step being answered.
pub(crate) const STEP: &str = "step";
/// The button pressed: `next`, `back`, `to:N` (change step N) or `save`.
const GO: &str = "go";

fn step_fields(step: Step) -> impl Iterator<Item = &'static Field> {
    FIELDS
        .iter()
        .filter(move |f| f.imported() && f.step() == step)
}

/// Every answer not asked on this page, carried along as hidden fields.
fn carried(values: &HashMap<String, String>, except: Option<Step>) -> Markup {
    html! {
        @for f in FIELDS.iter().filter(|f| f.imported() && Some(f.step()) != except) {
            @if let Some(v) = values.get(f.name).filter(|v| !v.is_empty()) {
                input type="hidden" name=(f.name) value=(v);
            }
        }
    }
}

/// One step's questions.
pub(crate) fn step_page(
    c: &crate::app::Ctx,
    programme: &str,
    step: Step,
    values: &HashMap<String, String>,
    errors: &[(String, String)],
) -> String {
    let errs: HashMap<String, String> = errors.iter().cloned().collect();
    let summary: Vec<(String, String)> = labelled(errors);
    let n = step.number();
    let body = html! {
        (html::error_summary(&summary))
        p class="hint" { "Step " (n) " of " (Step::ALL.len()) }
        form method="post" action={ "/p/" (programme) "/episodes/new" } novalidate {
            (html::csrf_field(&c.session.csrf))
            input type="hidden" name=(STEP) value=(n);
            (carried(values, Some(step)))
            (html::fields_form(values, &errs, &|f| f.step() == step, &["programme_code"]))
            // "Continue" comes first, so Enter in any field moves forward, never back.
            p {
                button name=(GO) value="next" {
                    @if n == Step::ALL.len() { "Check the answers" } @else { "Continue" }
                }
                @if n > 1 {
                    " " button class="secondary" name=(GO) value="back" { "Back" }
                }
            }
        }
        p class="noprint" {
            a href={ "/p/" (programme) "/episodes/new?whole=1" } { "Enter the whole episode on one page instead" }
        }
    };
    page(
        &format!("New episode: {}", step.title()),
        c.nav(Some(programme)),
        body,
    )
}

/// An answer as typed, in words: a code as its label, ticks as their labels, yes/no, a date
/// as "3 March 2025".
fn answer(f: &Field, raw: &str) -> String {
    let raw = raw.trim();
    if raw.is_empty() {
        return "Not given".into();
    }
    match f.kind {
        Kind::Code(_) => f.code_label(raw).unwrap_or(raw).to_string(),
        Kind::CodeList(_) => raw
            .split(';')
            .map(|c| f.code_label(c).unwrap_or(c.trim()).to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "1" => "Yes".into(),
            "no" | "n" | "false" | "0" => "No".into(),
            _ => raw.to_string(),
        },
        Kind::Date => crest_core::Date::parse(raw).map_or(raw.to_string(), |d| d.long()),
        _ => raw.to_string(),
    }
}

/// Every answer by step, to check before saving, with every problem of the whole episode.
fn summary_page(
    c: &crate::app::Ctx,
    programme: &str,
    values: &HashMap<String, String>,
    errors: &FieldMessages,
    confirm: bool,
) -> String {
    let errs: HashMap<String, String> = errors.iter().cloned().collect();
    let body = html! {
        (html::error_summary(&labelled(errors)))
        form method="post" action={ "/p/" (programme) "/episodes/new" } novalidate {
            (html::csrf_field(&c.session.csrf))
            input type="hidden" name=(STEP) value="summary";
            (carried(values, None))
            @for step in Step::ALL {
                h2 { (step.title()) }
                dl class="summary-list" {
                    @for f in step_fields(step) {
                        dt { (f.label) }
                        dd id={ "f-" (f.name) } {
                            (answer(f, values.get(f.name).map(String::as_str).unwrap_or("")))
                            @if let Some(e) = errs.get(f.name) {
                                br; span class="err" { (e) }
                            }
                        }
                    }
                }
                p {
                    button class="secondary" name=(GO) value={ "to:" (step.number()) } {
                        "Change " span class="visually-hidden" { "the answers about " } (step.title().to_lowercase())
                    }
                }
            }
            @if confirm {
                div class="field" {
                    input type="checkbox" id=(CONFIRM) name=(CONFIRM) value="yes";
                    " "
                    label for=(CONFIRM) style="display:inline" { "I have checked the values above and they are right" }
                }
            }
            p { button name=(GO) value="save" { "Save episode" } }
        }
    };
    page(
        "New episode: check your answers",
        c.nav(Some(programme)),
        body,
    )
}

fn with_status(body: String, status: StatusCode) -> Response {
    let mut r = html_page(body);
    *r.status_mut() = status;
    r
}

/// A step of a new episode answered: the next step, the one before, a step to change, the
/// summary, or the episode saved.
pub(crate) async fn answer_step(
    app: Arc<App>,
    staff: Staff,
    mut values: HashMap<String, String>,
) -> Result<Response, WebError> {
    let c = &staff.0;
    c.check_csrf(values.get("csrf").map(String::as_str))?;
    let programme = staff.1.code.clone();
    values.insert("programme_code".into(), programme.clone());
    let go = values.remove(GO).unwrap_or_default();
    let at = values
        .remove(STEP)
        .and_then(|s| s.parse::<usize>().ok())
        .and_then(|n| Step::ALL.get(n.wrapping_sub(1)).copied());
    let today = (app.today)();
    let step_at = |n: usize| Step::ALL.get(n.wrapping_sub(1)).copied();
    match (go.as_str(), at) {
        ("back", Some(step)) => {
            let to = step_at(step.number() - 1).unwrap_or(step);
            Ok(html_page(step_page(c, &programme, to, &values, &[])))
        }
        ("next", Some(step)) => {
            // Every problem of this step's own answers at once.
            let errors: FieldMessages = step_fields(step)
                .filter(|f| f.name != "programme_code")
                .filter_map(|f| {
                    let raw = values.get(f.name).map(String::as_str).unwrap_or("");
                    crest_core::validate::parse_field(f, raw, today)
                        .err()
                        .map(|e| {
                            (
                                f.name.to_string(),
                                crate::programme::episode_form::sentence(&e.0),
                            )
                        })
                })
                .collect();
            if !errors.is_empty() {
                return Ok(with_status(
                    step_page(c, &programme, step, &values, &errors),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ));
            }
            match step_at(step.number() + 1) {
                Some(next) => Ok(html_page(step_page(c, &programme, next, &values, &[]))),
                None => Ok(summary_or_problems(c, &programme, &values, today)),
            }
        }
        (to, _) if to.starts_with("to:") => {
            let step = to[3..]
                .parse::<usize>()
                .ok()
                .and_then(step_at)
                .unwrap_or(Step::Patient);
            Ok(html_page(step_page(c, &programme, step, &values, &[])))
        }
        ("save", _) => match validate(&values, &programme, today) {
            Ok((_, warnings))
                if !warnings.is_empty()
                    && values.get(CONFIRM).map(String::as_str) != Some("yes") =>
            {
                Ok(with_status(
                    summary_page(c, &programme, &values, &warnings, true),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ))
            }
            Ok(_) => save_episode(app, staff, None, values, EpisodeForm::Full).await,
            Err((mut errors, warnings)) => {
                let confirm = !warnings.is_empty();
                errors.extend(warnings);
                Ok(with_status(
                    summary_page(c, &programme, &values, &errors, confirm),
                    StatusCode::UNPROCESSABLE_ENTITY,
                ))
            }
        },
        _ => Ok(html_page(step_page(
            c,
            &programme,
            Step::Patient,
            &values,
            &[],
        ))),
    }
}

/// The summary, with the whole episode's problems (and values to confirm) already listed.
fn summary_or_problems(
    c: &crate::app::Ctx,
    programme: &str,
    values: &HashMap<String, String>,
    today: crest_core::Date,
) -> Response {
    match validate(values, programme, today) {
        Ok((_, warnings)) => {
            let confirm = !warnings.is_empty();
            html_page(summary_page(c, programme, values, &warnings, confirm))
        }
        Err((mut errors, warnings)) => {
            let confirm = !warnings.is_empty();
            errors.extend(warnings);
            html_page(summary_page(c, programme, values, &errors, confirm))
        }
    }
}
