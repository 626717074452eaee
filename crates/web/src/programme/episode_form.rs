//! The episode form generated from the dataset dictionary, the quick assessment forms, and
//! saving them by the import's own rules (warnings confirmed, derived values derived again).

use crate::app::access::Staff;
use crate::app::{html_page, App, WebError};
use crate::html::{self, page, url_encode};
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use crest_core::{check_row, Col, Header, Record, FIELDS};
use crest_store::EpisodeQuery;
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn record_values(r: &Record) -> HashMap<String, String> {
    FIELDS
        .iter()
        .map(|f| (f.name.to_string(), r.get(f.col).to_text()))
        .collect()
}

/// Which form of an episode: the whole record, or the quick form for one assessment.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum EpisodeForm {
    Full,
    Assessment(u8),
}

impl EpisodeForm {
    /// Whether a field is on this form. The quick forms hold the assessment's date and
    /// measures, and the status (and for assessment 2 the end of core CR), which change with it.
    fn shows(self, f: &crest_core::Field) -> bool {
        match self {
            EpisodeForm::Full => true,
            EpisodeForm::Assessment(n) => {
                f.assessment() == Some(n)
                    || f.col == Col::Status
                    || (n == 1 && f.col == Col::Assessment1Date)
                    || (n == 2 && matches!(f.col, Col::Assessment2Date | Col::CoreEndDate))
            }
        }
    }

    /// Where the form is shown: the whole episode's form is a step away from the summary.
    fn page_path(self, programme: &str, id: &str) -> String {
        match self {
            EpisodeForm::Full => format!("/p/{programme}/episodes/{}/edit", url_encode(id)),
            _ => self.path(programme, Some(id)),
        }
    }

    /// Where the form is sent; the episode id is percent-encoded (ids such as `SL/1` or `Q?1`).
    fn path(self, programme: &str, id: Option<&str>) -> String {
        let id = id.map(url_encode);
        match (self, id) {
            (EpisodeForm::Full, None) => format!("/p/{programme}/episodes/new"),
            (EpisodeForm::Full, Some(id)) => format!("/p/{programme}/episodes/{id}"),
            (EpisodeForm::Assessment(n), id) => {
                format!(
                    "/p/{programme}/episodes/{}/assessment{n}",
                    id.unwrap_or_default()
                )
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn episode_page(
    c: &crate::app::Ctx,
    programme: &str,
    id: Option<&str>,
    values: &HashMap<String, String>,
    errors: &[(String, String)],
    saved: bool,
    form: EpisodeForm,
    confirm: bool,
) -> String {
    // A field with a problem and a value to confirm shows the problem.
    let mut errs: HashMap<String, String> = HashMap::new();
    for (field, message) in errors {
        errs.entry(field.clone()).or_insert_with(|| message.clone());
    }
    let mut readonly = vec!["programme_code"];
    if id.is_some() {
        readonly.push("episode_id");
    }
    let others = [
        EpisodeForm::Full,
        EpisodeForm::Assessment(1),
        EpisodeForm::Assessment(2),
    ]
    .into_iter()
    .filter(|f| *f != form);
    let label = |f: EpisodeForm| match f {
        EpisodeForm::Full => "Whole episode".to_string(),
        EpisodeForm::Assessment(n) => format!("Assessment {n}"),
    };
    // The summary names each field by its label, as the page shows it.
    let body = maud::html! {
        (html::error_summary(&labelled(errors)))
        @if saved {
            div class="ok" role="status" { "Saved." }
        }
        @if let Some(id) = id {
            p {
                a href={ "/p/" (programme) "/episodes/" (url_encode(id)) } { "Summary" } " · "
                @for f in others {
                    a href=(f.page_path(programme, id)) { (label(f)) } " · "
                }
                a href={ "/p/" (programme) "/episodes/" (url_encode(id)) "/report" } { "Patient progress report" }
            }
        }
        form method="post" action=(form.path(programme, id)) novalidate {
            (html::csrf_field(&c.session.csrf))
            (html::fields_form(values, &errs, &|f| form.shows(f), &readonly))
            @if confirm {
                div class="field" {
                    input type="checkbox" id=(CONFIRM) name=(CONFIRM) value="yes";
                    " "
                    label for=(CONFIRM) style="display:inline" { "I have checked the values above and they are right" }
                }
            }
            p {
                button {
                    "Save "
                    @match form {
                        EpisodeForm::Full => "episode",
                        EpisodeForm::Assessment(n) => { "assessment " (n) },
                    }
                }
            }
        }
    };
    let title = match (form, id) {
        (EpisodeForm::Assessment(n), Some(id)) => format!("Assessment {n} – episode {id}"),
        (_, Some(id)) => format!("Episode {id}"),
        (_, None) => "New episode".to_string(),
    };
    page(&title, c.nav(Some(programme)), body)
}

pub(crate) async fn show(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    show_form(app, staff, id, q, EpisodeForm::Full).await
}

pub(crate) async fn show_assessment1(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    show_form(app, staff, id, q, EpisodeForm::Assessment(1)).await
}

pub(crate) async fn show_assessment2(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    show_form(app, staff, id, q, EpisodeForm::Assessment(2)).await
}

pub(crate) async fn show_form(
    app: Arc<App>,
    Staff(c, p): Staff,
    id: String,
    q: HashMap<String, String>,
    form: EpisodeForm,
) -> Result<Response, WebError> {
    let rec = load(&app, &c, &p.code, &id, "view").await?;
    Ok(html_page(episode_page(
        &c,
        &p.code,
        Some(&id),
        &record_values(&rec),
        &[],
        q.contains_key("saved"),
        form,
        false,
    )))
}

/// Loads one episode of the programme and logs the view; 404 if there is none.
pub(crate) async fn load(
    app: &Arc<App>,
    c: &crate::app::Ctx,
    programme: &str,
    id: &str,
    action: &str,
) -> Result<Record, WebError> {
    let entry = c.entry(programme, action, id);
    let (p, i) = (programme.to_string(), id.to_string());
    app.db(move |s, _| {
        let rec = s.episode(&p, &i)?.ok_or(WebError::NotFound)?;
        s.log(&entry)?;
        Ok(rec)
    })
    .await
}

/// Validates a submitted episode with the import's rules. The programme always comes from
/// the URL, never from the form. A refused episode comes back with its problems followed by
/// the values to confirm, so the user hears about both in one round.
pub(crate) fn validate(
    form: &HashMap<String, String>,
    programme: &str,
    today: crest_core::Date,
) -> Result<(Record, FieldMessages), (FieldMessages, FieldMessages)> {
    let fields: Vec<&crest_core::Field> = FIELDS.iter().filter(|f| f.imported()).collect();
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let header =
        Header::parse(&names).map_err(|e| (vec![(String::new(), e.to_string())], Vec::new()))?;
    let cells: Vec<String> = fields
        .iter()
        .map(|f| match f.col {
            Col::ProgrammeCode => programme.to_string(),
            _ => form.get(f.name).cloned().unwrap_or_default(),
        })
        .collect();
    let checked = check_row(&header, &cells, today);
    let warnings: FieldMessages = checked
        .warnings
        .into_iter()
        .map(|i| (i.column, format!("Please check: {}", in_words(&i.message))))
        .collect();
    match checked.record {
        Some(r) if checked.errors.is_empty() => Ok((r, warnings)),
        _ => Err((
            checked
                .errors
                .into_iter()
                .map(|i| (i.column, sentence(&i.message)))
                .collect(),
            warnings,
        )),
    }
}

/// A validation message of a file's row on a page: columns and codes a person types into a
/// file stay as they are, in `<code>` ("(column `initiating_event`)", "Heart attack (STEMI)
/// (`mi_stemi`)"); any other column name reads as its label and dates as "1 February 2025".
pub(crate) fn reason(message: &str) -> maud::Markup {
    let is_code = |t: &str| {
        FIELDS.iter().any(|f| match f.kind {
            crest_core::Kind::Code(codes) | crest_core::Kind::CodeList(codes) => {
                codes.iter().any(|c| c.code == t)
            }
            _ => false,
        })
    };
    let mut pieces: Vec<(bool, String)> = Vec::new();
    let mut text = String::new();
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        text.push_str(&rest[..start]);
        let tail = &rest[start..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let token = &tail[..len];
        let column = text.ends_with("column ") && FIELDS.iter().any(|f| f.name == token);
        let code = text.ends_with('(') && tail[len..].starts_with(')') && is_code(token);
        // A value as the file has it, quoted by the message: 'heart_attack'.
        let quoted = text.ends_with('\'') && tail[len..].starts_with('\'');
        if column || code || quoted {
            pieces.push((false, in_words(&std::mem::take(&mut text))));
            pieces.push((true, token.to_string()));
        } else {
            text.push_str(token);
        }
        rest = &tail[len..];
    }
    text.push_str(rest);
    pieces.push((false, in_words(&text)));
    maud::html! {
        @for (code, piece) in &pieces {
            @if *code { code { (piece) } } @else { (piece) }
        }
    }
}

/// A validation message as a form shows it: the import's messages name columns (the headings
/// of a file), a form names its questions, so each column name becomes its label.
pub(crate) fn in_words(message: &str) -> String {
    let mut out = message.to_string();
    // "status" reads as a plain word already; its question would not.
    let mut fields: Vec<&crest_core::Field> =
        FIELDS.iter().filter(|f| f.col != Col::Status).collect();
    // Longest first, so `a1_hads_anxiety` is not half-replaced by a shorter name.
    fields.sort_by_key(|f| std::cmp::Reverse(f.name.len()));
    for f in fields {
        let mut label = f.label.to_string();
        // "Date of the event" reads "date of the event" mid-sentence; "NHS number" stays.
        if label.chars().nth(1).is_some_and(char::is_lowercase) {
            label = label[..1].to_lowercase() + &label[1..];
        }
        let mut from = 0;
        while let Some(i) = out[from..].find(f.name).map(|i| i + from) {
            let end = i + f.name.len();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if word(out[..i].chars().last()) || word(out[end..].chars().next()) {
                from = end;
                continue;
            }
            out.replace_range(i..end, &label);
            from = i + label.len();
        }
    }
    // Dates as people read them: 2025-02-01 becomes 1 February 2025.
    let mut from = 0;
    while let Some(i) = out[from..].char_indices().map(|(i, _)| i + from).find(|i| {
        out.get(*i..*i + 10)
            .is_some_and(|d| crest_core::Date::parse_iso(d).is_ok())
    }) {
        let long = out
            .get(i..i + 10)
            .and_then(|d| crest_core::Date::parse_iso(d).ok())
            .map(|d| d.long())
            .unwrap_or_default();
        out.replace_range(i..i + 10, &long);
        from = i + long.len();
    }
    out
}

/// A message that stands on its own beside its field: in words, starting with a capital.
pub(crate) fn sentence(message: &str) -> String {
    let out = in_words(message);
    match out.chars().next() {
        Some(c) if c.is_lowercase() => c.to_uppercase().collect::<String>() + &out[c.len_utf8()..],
        _ => out,
    }
}

/// Problems named by their field's label, as the form shows it, for the error summary.
pub(crate) fn labelled(errors: &[(String, String)]) -> Vec<(String, String)> {
    errors
        .iter()
        .map(|(field, message)| match crest_core::field_by_name(field) {
            Some(f) => (field.clone(), format!("{}: {message}", f.label)),
            None => (field.clone(), message.clone()),
        })
        .collect()
}

/// Messages by field name: problems, or warnings to confirm.
pub(crate) type FieldMessages = Vec<(String, String)>;

/// The form field that confirms values the checks flagged as unusual.
pub(crate) const CONFIRM: &str = "confirm_warnings";

/// A BMI that crest derived is derived again when weight or height change: left as it was, it
/// would no longer match them and the save would be refused.
pub(crate) fn rederive_bmi(form: &mut HashMap<String, String>, stored: &Record) {
    for (w, h, b) in [
        (Col::A1WeightKg, Col::A1HeightCm, Col::A1Bmi),
        (Col::A2WeightKg, Col::A2HeightCm, Col::A2Bmi),
    ] {
        let (Some(weight), Some(height), Some(bmi)) = (stored.num(w), stored.num(h), stored.num(b))
        else {
            continue;
        };
        let derived = (weight / (height / 100.0).powi(2) * 10.0).round() / 10.0;
        let text = |c: Col| stored.get(c).to_text();
        let posted = |c: Col| {
            form.get(c.name())
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let measures_changed = posted(w) != text(w) || posted(h) != text(h);
        if (bmi - derived).abs() < 0.05 && measures_changed && posted(b) == text(b) {
            form.insert(b.name().to_string(), String::new());
        }
    }
}

pub(crate) fn form_map(form: Vec<(String, String)>) -> HashMap<String, String> {
    html::form_values(form)
}

pub(crate) async fn save(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    save_episode(app, staff, Some(id), form_map(form), EpisodeForm::Full).await
}

pub(crate) async fn save_assessment1(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let which = EpisodeForm::Assessment(1);
    save_episode(app, staff, Some(id), form_map(form), which).await
}

pub(crate) async fn save_assessment2(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let which = EpisodeForm::Assessment(2);
    save_episode(app, staff, Some(id), form_map(form), which).await
}

/// Saves a submitted form. A quick assessment form carries only its own fields: the rest of
/// the episode comes from the stored record, and the whole is validated as one row.
pub(crate) async fn save_episode(
    app: Arc<App>,
    Staff(c, p): Staff,
    id: Option<String>,
    mut form: HashMap<String, String>,
    which: EpisodeForm,
) -> Result<Response, WebError> {
    c.check_csrf(form.get("csrf").map(String::as_str))?;
    if let Some(id) = &id {
        let (pc, i) = (p.code.clone(), id.clone());
        let stored = app
            .db(move |s, _| s.episode(&pc, &i)?.ok_or(WebError::NotFound))
            .await?;
        if let EpisodeForm::Assessment(_) = which {
            let mut values = record_values(&stored);
            for f in FIELDS.iter().filter(|f| which.shows(f)) {
                values.insert(f.name.to_string(), form.remove(f.name).unwrap_or_default());
            }
            values.insert("csrf".into(), form.get("csrf").cloned().unwrap_or_default());
            if let Some(v) = form.get(CONFIRM) {
                values.insert(CONFIRM.into(), v.clone());
            }
            form = values;
        }
        rederive_bmi(&mut form, &stored);
    }
    if let Some(id) = &id {
        form.insert("episode_id".into(), id.clone());
    }
    form.insert("programme_code".into(), p.code.clone());
    let rec = match validate(&form, &p.code, (app.today)()) {
        // The upload's warnings, confirmed here as there: shown once, saved when confirmed.
        Ok((_, warnings))
            if !warnings.is_empty() && form.get(CONFIRM).map(String::as_str) != Some("yes") =>
        {
            let mut r = html_page(episode_page(
                &c,
                &p.code,
                id.as_deref(),
                &form,
                &warnings,
                false,
                which,
                true,
            ));
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(r);
        }
        Ok((r, _)) => r,
        Err((mut errors, warnings)) => {
            let confirm = !warnings.is_empty();
            errors.extend(warnings);
            let mut r = html_page(episode_page(
                &c,
                &p.code,
                id.as_deref(),
                &form,
                &errors,
                false,
                which,
                confirm,
            ));
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(r);
        }
    };
    let episode_id = rec.text(Col::EpisodeId).unwrap_or_default().to_string();
    let mut entry = c.entry(
        &p.code,
        if id.is_some() { "change" } else { "create" },
        &episode_id,
    );
    let is_new = id.is_none();
    let pc = p.code.clone();
    let outcome = app
        .db(move |s, _| {
            let old = s.episode(&pc, &episode_id)?;
            if is_new && old.is_some() {
                return Ok(Err(vec![(
                    "episode_id".to_string(),
                    format!("Episode ID {episode_id} is already used in this programme: open that episode from the patient list to change it, or give this one another ID"),
                )]));
            }
            if let Some(dup) = probable_duplicate(s, &rec)? {
                return Ok(Err(vec![("episode_id".to_string(), dup)]));
            }
            let mut tx = s.begin()?;
            match &old {
                Some(old) => {
                    entry.detail = changes(old, &rec);
                    tx.update(&rec)?
                }
                None => tx.insert(&rec)?,
            }
            tx.log(&entry)?;
            tx.commit()?;
            Ok(Ok(episode_id))
        })
        .await?;
    match outcome {
        Ok(id) => {
            // Saved: back to the patient's summary, which shows what is due next.
            let to = format!("/p/{}/episodes/{}?saved=1", p.code, url_encode(&id));
            Ok(Redirect::to(&to).into_response())
        }
        Err(errors) => Ok(invalid(&c, &p.code, id.as_deref(), &form, &errors, which)),
    }
}

/// The form again, with what the user typed and why it was refused.
pub(crate) fn invalid(
    c: &crate::app::Ctx,
    programme: &str,
    id: Option<&str>,
    form: &HashMap<String, String>,
    errors: &[(String, String)],
    which: EpisodeForm,
) -> Response {
    let mut r = html_page(episode_page(
        c, programme, id, form, errors, false, which, false,
    ));
    *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    r
}

/// Another episode of the programme with the same NHS number and event date, as the import
/// rejects it.
pub(crate) fn probable_duplicate(
    s: &mut dyn crest_store::Store,
    rec: &Record,
) -> Result<Option<String>, WebError> {
    let (Some(programme), Some(id), Some(nhs), Some(event)) = (
        rec.text(Col::ProgrammeCode),
        rec.text(Col::EpisodeId),
        rec.text(Col::NhsNumber),
        rec.date(Col::EventDate),
    ) else {
        return Ok(None);
    };
    let q = EpisodeQuery {
        text: nhs.to_string(),
        limit: 1000,
        ..Default::default()
    };
    Ok(s.find_episodes(programme, &q)?
        .into_iter()
        .find(|r| {
            r.text(Col::NhsNumber) == Some(nhs)
                && r.date(Col::EventDate) == Some(event)
                && r.text(Col::EpisodeId) != Some(id)
        })
        .map(|r| {
            format!(
                "probable duplicate: episode {} has the same NHS number and event date",
                r.text(Col::EpisodeId).unwrap_or_default()
            )
        }))
}

/// The fields a change touched, old → new. Identifiers are named, not copied into the log.
pub(crate) fn changes(old: &Record, new: &Record) -> String {
    FIELDS
        .iter()
        .filter(|f| old.get(f.col) != new.get(f.col))
        .map(|f| {
            if f.tier == crest_core::Tier::Local {
                format!("{}: changed", f.name)
            } else {
                format!(
                    "{}: '{}' → '{}'",
                    f.name,
                    old.get(f.col).to_text(),
                    new.get(f.col).to_text()
                )
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod words_tests {
    use super::in_words;

    /// A form names its questions, not the file's columns, and writes dates for people.
    #[test]
    fn messages_name_questions_and_write_dates_for_people() {
        assert_eq!(
            in_words("is before event_date (2025-02-01); referral cannot come before the event"),
            "is before date of the event (1 February 2025); referral cannot come before the event"
        );
        assert_eq!(
            in_words("status is 'completed', so core_start_date is required"),
            "status is 'completed', so date core rehabilitation started is required"
        );
        assert_eq!(
            in_words("a measure from assessment 1 needs assessment1_date"),
            "a measure from assessment 1 needs date of assessment 1"
        );
        // A name inside a longer word is left alone; NHS keeps its capitals.
        assert_eq!(
            in_words("nhs_number_x and nhs_number"),
            "nhs_number_x and NHS number"
        );
        // Beside its field a message is a sentence of its own.
        assert_eq!(
            super::sentence("must be a whole number, not 4.5"),
            "Must be a whole number, not 4.5"
        );
        assert_eq!(
            super::sentence("'x' is not a number"),
            "'x' is not a number"
        );
    }
}
