//! Patients and episodes: the searchable list, the episode form generated from the dataset
//! dictionary, the progress report, upload with preview, export and the programme profile.

use crate::access::Staff;
use crate::html::{self, esc, page, url_encode};
use crate::{html_page, App, Code, WebError};
use axum::extract::{Multipart, Path as UrlPath, Query, State};
use axum::handler::Handler;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use crest_core::{check_row, Col, Header, PriorityGroup, Programme, Record, FIELDS};
use crest_store::{EpisodeQuery, Role};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/p/{code}/episodes", get(list).post(search))
        .route("/p/{code}/episodes/new", get(new_form).post(save_new))
        .route("/p/{code}/episodes/{id}", get(show).post(save))
        .route(
            "/p/{code}/episodes/{id}/assessment1",
            get(show_assessment1).post(save_assessment1),
        )
        .route(
            "/p/{code}/episodes/{id}/assessment2",
            get(show_assessment2).post(save_assessment2),
        )
        .route("/p/{code}/episodes/{id}/report", get(report))
        .route(
            "/p/{code}/upload",
            get(upload_form)
                .post(upload.layer(axum::extract::DefaultBodyLimit::max(crate::UPLOAD_LIMIT))),
        )
        .route("/p/{code}/upload/confirm", post(confirm))
        .route("/p/{code}/upload/cancel", post(cancel))
        .route("/p/{code}/upload/{token}/errors.csv", get(upload_errors))
        .route("/p/{code}/export.csv", get(export_csv))
        .route("/p/{code}/export.xlsx", get(export_xlsx))
        .route("/p/{code}/profile", get(profile).post(save_profile))
}

#[derive(serde::Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    pathway: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// The form's CSRF token (searches are posted).
    #[serde(default)]
    csrf: Option<String>,
}

fn code_options(col: Col, selected: &str) -> String {
    let mut s = String::from("<option value=\"\">any</option>");
    if let crest_core::Kind::Code(codes) = col.field().kind {
        for c in codes {
            let sel = if *c == selected { " selected" } else { "" };
            let _ = write!(s, "<option{sel}>{}</option>", esc(c));
        }
    }
    s
}

async fn list(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Query(q): Query<ListQuery>,
) -> Result<Response, WebError> {
    list_page(app, c, p, q).await
}

/// The search form posts, so an NHS number or name searched for never lands in the address
/// bar, the browser's history or a server's access log.
async fn search(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    Form(q): Form<ListQuery>,
) -> Result<Response, WebError> {
    c.check_csrf(q.csrf.as_deref())?;
    list_page(app, c, p, q).await
}

async fn list_page(
    app: Arc<App>,
    c: crate::Ctx,
    p: Programme,
    q: ListQuery,
) -> Result<Response, WebError> {
    let mut problems = Vec::new();
    let mut date = |s: &str, what: &str| {
        if s.trim().is_empty() {
            return None;
        }
        crest_core::Date::parse(s.trim())
            .map_err(|e| problems.push(format!("{what}: {e}")))
            .ok()
    };
    let query = EpisodeQuery {
        text: q.q.clone(),
        status: q.status.clone(),
        pathway: q.pathway.clone(),
        from: date(&q.from, "Referred from"),
        to: date(&q.to, "Referred to"),
        limit: 200,
    };
    let pc = p.code.clone();
    let rows = app
        .db(move |s, _| Ok(s.find_episodes(&pc, &query)?))
        .await?;
    let mut body = String::new();
    for m in &problems {
        let _ = write!(
            body,
            "<div class=\"summary\" role=\"alert\">{}</div>",
            esc(m)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/p/{}/episodes\" role=\"search\">{}<label for=\"q\">NHS number, name, hospital number or episode id</label>\
         <input id=\"q\" name=\"q\" value=\"{}\"> <label for=\"status\">Status</label><select id=\"status\" name=\"status\">{}</select>\
         <label for=\"pathway\">Initiating event</label><select id=\"pathway\" name=\"pathway\">{}</select>\
         <label for=\"from\">Referred from</label><input id=\"from\" name=\"from\" value=\"{}\">\
         <label for=\"to\">Referred to</label><input id=\"to\" name=\"to\" value=\"{}\"> <button>Search</button></form>",
        esc(&p.code),
        html::csrf_field(&c.session.csrf),
        esc(&q.q),
        code_options(Col::Status, &q.status),
        code_options(Col::InitiatingEvent, &q.pathway),
        esc(&q.from),
        esc(&q.to)
    );
    let _ = write!(
        body,
        "<p>{} episode(s){}.</p><table><caption>Episodes of {}</caption><thead><tr><th scope=\"col\">Episode</th><th scope=\"col\">NHS number</th>\
         <th scope=\"col\">Name</th><th scope=\"col\">Referred</th><th scope=\"col\">Event</th><th scope=\"col\">Status</th></tr></thead><tbody>",
        rows.len(),
        if rows.len() == 200 { " (the first 200; narrow the search)" } else { "" },
        esc(&p.name)
    );
    for r in &rows {
        let t = |col| r.get(col).to_text();
        let id = t(Col::EpisodeId);
        let _ = write!(
            body,
            "<tr><td><a href=\"/p/{}/episodes/{}\">{}</a></td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.code),
            url_encode(&id),
            esc(&id),
            esc(&t(Col::NhsNumber)),
            esc(&t(Col::GivenName)),
            esc(&t(Col::FamilyName)),
            esc(&t(Col::ReferralDate)),
            esc(&t(Col::InitiatingEvent)),
            esc(&t(Col::Status))
        );
    }
    body.push_str("</tbody></table>");
    let mut entry = c.entry(&p.code, "search", "episode list");
    entry.detail = format!("{} result(s)", rows.len());
    app.db(move |s, _| Ok(s.log(&entry)?)).await?;
    Ok(html_page(page(
        &format!("Patients – {}", p.name),
        &c.nav(Some(&p.code)),
        &body,
    )))
}

fn record_values(r: &Record) -> HashMap<String, String> {
    FIELDS
        .iter()
        .map(|f| (f.name.to_string(), r.get(f.col).to_text()))
        .collect()
}

/// Which form of an episode: the whole record, or the quick form for one assessment.
#[derive(Clone, Copy, PartialEq)]
enum EpisodeForm {
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

    /// The form's address; the episode id is percent-encoded (ids such as `SL/1` or `Q?1`).
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
fn episode_page(
    c: &crate::Ctx,
    programme: &str,
    id: Option<&str>,
    values: &HashMap<String, String>,
    errors: &[(String, String)],
    saved: bool,
    form: EpisodeForm,
    confirm: bool,
) -> String {
    let errs: HashMap<String, String> = errors.iter().cloned().collect();
    let mut readonly = vec!["programme_code"];
    if id.is_some() {
        readonly.push("episode_id");
    }
    let action = esc(&form.path(programme, id));
    let mut body = html::error_summary(errors);
    if saved {
        body.push_str("<div class=\"ok\" role=\"status\">Saved.</div>");
    }
    if let Some(id) = id {
        let links: Vec<String> = [
            EpisodeForm::Full,
            EpisodeForm::Assessment(1),
            EpisodeForm::Assessment(2),
        ]
        .into_iter()
        .filter(|f| *f != form)
        .map(|f| {
            let label = match f {
                EpisodeForm::Full => "Whole episode".to_string(),
                EpisodeForm::Assessment(n) => format!("Assessment {n}"),
            };
            format!(
                "<a href=\"{}\">{label}</a>",
                esc(&f.path(programme, Some(id)))
            )
        })
        .collect();
        let _ = write!(
            body,
            "<p>{} · <a href=\"/p/{}/episodes/{}/report\">Patient progress report</a></p>",
            links.join(" · "),
            esc(programme),
            url_encode(id)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{action}\" novalidate>{}{}{}<p><button>Save {}</button></p></form>",
        html::csrf_field(&c.session.csrf),
        html::fields_form(values, &errs, &|f| form.shows(f), &readonly),
        if confirm {
            format!(
                "<div class=\"field\"><input type=\"checkbox\" id=\"{CONFIRM}\" name=\"{CONFIRM}\" value=\"yes\"> \
                 <label for=\"{CONFIRM}\" style=\"display:inline\">I have checked the values above and they are right</label></div>"
            )
        } else {
            String::new()
        },
        match form {
            EpisodeForm::Full => "episode".to_string(),
            EpisodeForm::Assessment(n) => format!("assessment {n}"),
        }
    );
    let title = match (form, id) {
        (EpisodeForm::Assessment(n), Some(id)) => format!("Assessment {n} – episode {id}"),
        (_, Some(id)) => format!("Episode {id}"),
        (_, None) => "New episode".to_string(),
    };
    page(&title, &c.nav(Some(programme)), &body)
}

async fn new_form(
    State(_app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
) -> Result<Response, WebError> {
    let values = HashMap::from([("programme_code".to_string(), p.code.clone())]);
    Ok(html_page(episode_page(
        &c,
        &p.code,
        None,
        &values,
        &[],
        false,
        EpisodeForm::Full,
        false,
    )))
}

async fn show(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    show_form(app, staff, id, q, EpisodeForm::Full).await
}

async fn show_assessment1(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    show_form(app, staff, id, q, EpisodeForm::Assessment(1)).await
}

async fn show_assessment2(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    show_form(app, staff, id, q, EpisodeForm::Assessment(2)).await
}

async fn show_form(
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
async fn load(
    app: &Arc<App>,
    c: &crate::Ctx,
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
/// the URL, never from the form.
fn validate(
    form: &HashMap<String, String>,
    programme: &str,
    today: crest_core::Date,
) -> Result<(Record, FieldMessages), FieldMessages> {
    let fields: Vec<&crest_core::Field> = FIELDS.iter().filter(|f| f.imported()).collect();
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    let header = Header::parse(&names).map_err(|e| vec![(String::new(), e.to_string())])?;
    let cells: Vec<String> = fields
        .iter()
        .map(|f| match f.col {
            Col::ProgrammeCode => programme.to_string(),
            _ => form.get(f.name).cloned().unwrap_or_default(),
        })
        .collect();
    let checked = check_row(&header, &cells, today);
    match checked.record {
        Some(r) if checked.errors.is_empty() => Ok((
            r,
            checked
                .warnings
                .into_iter()
                .map(|i| (i.column, format!("Please check: {}", i.message)))
                .collect(),
        )),
        _ => Err(checked
            .errors
            .into_iter()
            .map(|i| (i.column, i.message))
            .collect()),
    }
}

/// Messages by field name: problems, or warnings to confirm.
type FieldMessages = Vec<(String, String)>;

/// The form field that confirms values the checks flagged as unusual.
const CONFIRM: &str = "confirm_warnings";

/// A BMI that crest derived is derived again when weight or height change: left as it was, it
/// would no longer match them and the save would be refused.
fn rederive_bmi(form: &mut HashMap<String, String>, stored: &Record) {
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

fn form_map(form: Vec<(String, String)>) -> HashMap<String, String> {
    form.into_iter().collect()
}

async fn save_new(
    State(app): State<Arc<App>>,
    staff: Staff,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    save_episode(app, staff, None, form_map(form), EpisodeForm::Full).await
}

async fn save(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    save_episode(app, staff, Some(id), form_map(form), EpisodeForm::Full).await
}

async fn save_assessment1(
    State(app): State<Arc<App>>,
    staff: Staff,
    UrlPath((_, id)): UrlPath<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let which = EpisodeForm::Assessment(1);
    save_episode(app, staff, Some(id), form_map(form), which).await
}

async fn save_assessment2(
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
async fn save_episode(
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
        Err(errors) => {
            return Ok(invalid(&c, &p.code, id.as_deref(), &form, &errors, which));
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
                    format!("episode_id {episode_id} already exists in this programme; open it from the patient list to change it"),
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
            let to = format!("{}?saved=1", which.path(&p.code, Some(&id)));
            Ok(Redirect::to(&to).into_response())
        }
        Err(errors) => Ok(invalid(&c, &p.code, id.as_deref(), &form, &errors, which)),
    }
}

/// The form again, with what the user typed and why it was refused.
fn invalid(
    c: &crate::Ctx,
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
fn probable_duplicate(
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
fn changes(old: &Record, new: &Record) -> String {
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

/// HADS anxiety or depression band (Zigmond & Snaith).
fn hads_band(score: f64) -> &'static str {
    if score <= 7.0 {
        "normal (0–7)"
    } else if score <= 10.0 {
        "borderline (8–10)"
    } else {
        "suggests anxiety or depression that needs attention (11–21)"
    }
}

async fn report(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath((_code, id)): UrlPath<(String, String)>,
) -> Result<Response, WebError> {
    let rec = load(&app, &c, &p.code, &id, "view report").await?;
    let t = |col| rec.get(col).to_text();
    let mut body = format!(
        "<p><strong>{} {}</strong>, NHS number {}, born {}. Programme: {}.</p>\
         <p>Referred {} after {} ({}). Assessment 1: {}. Assessment 2: {}.</p>\
         <table><caption>Your measures at the start and end of cardiac rehabilitation</caption><thead><tr>\
         <th scope=\"col\">Measure</th><th scope=\"col\">Assessment 1</th><th scope=\"col\">Assessment 2</th><th scope=\"col\">Change</th><th scope=\"col\">What it means</th></tr></thead><tbody>",
        esc(&t(Col::GivenName)),
        esc(&t(Col::FamilyName)),
        esc(&t(Col::NhsNumber)),
        esc(&t(Col::DateOfBirth)),
        esc(&p.name),
        esc(&t(Col::ReferralDate)),
        esc(&t(Col::InitiatingEvent).replace('_', " ")),
        esc(&t(Col::Treatment)),
        esc(&or_dash(t(Col::Assessment1Date))),
        esc(&or_dash(t(Col::Assessment2Date))),
    );
    for a1 in FIELDS.iter().filter(|f| f.assessment() == Some(1)) {
        let measure = &a1.name[3..];
        let Some(a2) = FIELDS
            .iter()
            .find(|f| f.assessment() == Some(2) && &f.name[3..] == measure)
        else {
            continue;
        };
        let (v1, v2) = (rec.get(a1.col), rec.get(a2.col));
        if v1.is_null() && v2.is_null() {
            continue;
        }
        let num = |v: &crest_core::Value| match v {
            crest_core::Value::Int(i) => Some(*i as f64),
            crest_core::Value::Num(x) => Some(*x),
            _ => None,
        };
        let change = match (num(v1), num(v2)) {
            (Some(x), Some(y)) => format!(
                "{:+}",
                crest_core::record::format_num(y - x)
                    .parse::<f64>()
                    .unwrap_or(y - x)
            ),
            _ => "–".into(),
        };
        let meaning = if measure.starts_with("hads") {
            num(v2)
                .or(num(v1))
                .map(|s| format!("HADS {}", hads_band(s)))
                .unwrap_or_default()
        } else {
            a1.help.to_string()
        };
        let _ = write!(
            body,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&measure.replace('_', " ")),
            esc(&or_dash(v1.to_text())),
            esc(&or_dash(v2.to_text())),
            esc(&change),
            esc(&meaning)
        );
    }
    body.push_str("</tbody></table><p class=\"hint\">HADS: Hospital Anxiety and Depression Scale; 0–7 normal, 8–10 borderline, 11–21 abnormal. \
        Print this page for the patient and their GP.</p><p class=\"noprint\"><button type=\"button\" data-print>Print</button></p><script src=\"/assets/print.js\"></script>");
    Ok(html_page(page(
        "Cardiac rehabilitation progress report",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

fn or_dash(s: String) -> String {
    if s.is_empty() {
        "–".into()
    } else {
        s
    }
}

async fn upload_form(
    State(_app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
) -> Result<Response, WebError> {
    let body = format!(
        "<p>Upload a CSV or XLSX file of episodes for {}. You will see what would be stored, and every rejected row, before anything changes.</p>\
         <form method=\"post\" enctype=\"multipart/form-data\">{}<label for=\"file\">File</label><input id=\"file\" type=\"file\" name=\"file\" accept=\".csv,.xlsx\" required>\
         <p><button>Check file</button></p></form><p>Templates: <a href=\"/template.csv\">CSV</a> · <a href=\"/template.xlsx\">XLSX</a></p>",
        esc(&p.name),
        html::csrf_field(&c.session.csrf)
    );
    Ok(html_page(page(
        "Upload episodes",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

/// Reads an upload form: the CSRF field, and the file written to `path` (mode 0600) chunk by
/// chunk. Returns the CSRF value, the file's name and its size.
async fn receive_upload_file(
    multipart: &mut Multipart,
    path: &std::path::Path,
) -> Result<(Option<String>, String, u64), WebError> {
    use std::io::Write;
    let bad = |e| crate::form_error(e, crate::UPLOAD_LIMIT);
    let (mut csrf, mut name, mut size) = (None, String::new(), 0u64);
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok(),
            Some("file") => {
                name = field.file_name().unwrap_or("upload").to_string();
                let mut file = std::io::BufWriter::new(
                    crate::uploads::create_private(path).map_err(WebError::internal)?,
                );
                while let Some(chunk) = field.chunk().await.map_err(bad)? {
                    size += chunk.len() as u64;
                    file.write_all(&chunk).map_err(WebError::internal)?;
                }
                file.flush().map_err(WebError::internal)?;
            }
            _ => {}
        }
    }
    Ok((csrf, name, size))
}

fn upload_path(app: &App, programme: &str, token: &str) -> Option<std::path::PathBuf> {
    // Tokens are our own hex; anything else is refused before it touches a path.
    (token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| app.uploads.join(format!("{programme}-{token}")))
}

async fn upload(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    crate::uploads::sweep(&app.uploads, crate::uploads::MAX_AGE);
    let token = crate::auth::token();
    let path = upload_path(&app, &p.code, &token).ok_or(WebError::NotFound)?;
    // The file is streamed to a private file as it arrives, never held whole in memory.
    let received = receive_upload_file(&mut multipart, &path).await;
    let (csrf, name, size) = match received {
        Ok(r) => r,
        Err(e) => {
            crate::uploads::discard(&path);
            return Err(e);
        }
    };
    if let Err(e) = c.check_csrf(csrf.as_deref()) {
        crate::uploads::discard(&path);
        return Err(e);
    }
    if size == 0 {
        crate::uploads::discard(&path);
        return Err(WebError::BadRequest("Choose a file to upload.".into()));
    }
    let summary = match run_import(&app, &c, &p.code, &path, &name, true).await {
        Ok(s) => s,
        Err(e) => {
            // A refused file is not kept.
            crate::uploads::discard(&path);
            return Err(e);
        }
    };
    let mut body = preview(&summary, &name);
    if summary.rows > summary.rejected {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/p/{}/upload/confirm\">{}<input type=\"hidden\" name=\"token\" value=\"{token}\">\
             <input type=\"hidden\" name=\"name\" value=\"{}\"><p><button>Store the {} valid row(s)</button></p></form>",
            esc(&p.code),
            html::csrf_field(&c.session.csrf),
            esc(&name),
            summary.rows - summary.rejected
        );
    }
    if summary.rejected > 0 {
        let _ = write!(
            body,
            "<p><a href=\"/p/{}/upload/{token}/errors.csv\">Download the rejected rows (CSV)</a></p>",
            esc(&p.code)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/p/{}/upload/cancel\">{}<input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <p><button class=\"secondary\">Cancel this upload</button></p></form>\
         <p class=\"hint\">The file is kept for an hour at most, until you store or cancel it.</p>",
        esc(&p.code),
        html::csrf_field(&c.session.csrf)
    );
    if summary.rows == summary.rejected {
        // Nothing to confirm: only the rejected-rows file is kept, for the hour.
        let _ = std::fs::remove_file(&path);
    }
    Ok(html_page(page(
        "Check upload",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

fn preview(s: &crest_ingest::ImportSummary, name: &str) -> String {
    let mut body = format!(
        "<p><strong>{}</strong>: {} row(s): {} new, {} changed, {} unchanged, <strong>{} rejected</strong>.</p>",
        esc(name),
        s.rows,
        s.imported,
        s.updated,
        s.unchanged,
        s.rejected
    );
    for w in &s.header_warnings {
        let _ = write!(body, "<p>Warning: {}</p>", esc(w));
    }
    if !s.errors.is_empty() {
        body.push_str("<table><caption>Rejected rows</caption><thead><tr><th scope=\"col\">Row</th><th scope=\"col\">Column</th><th scope=\"col\">Value</th><th scope=\"col\">Reason</th></tr></thead><tbody>");
        for e in &s.errors {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.row,
                esc(&e.issue.column),
                esc(&e.issue.value),
                esc(&e.issue.message)
            );
        }
        body.push_str("</tbody></table>");
    }
    if !s.warnings.is_empty() {
        let _ = write!(
            body,
            "<p>{} warning(s) (stored, but please check):</p><ul>",
            s.warning_count
        );
        for w in s.warnings.iter().take(50) {
            let _ = write!(
                body,
                "<li>row {}, {}: {}</li>",
                w.row,
                esc(&w.issue.column),
                esc(&w.issue.message)
            );
        }
        body.push_str("</ul>");
    }
    body
}

/// The command line's import, restricted to the programme of the page.
async fn run_import(
    app: &Arc<App>,
    c: &crate::Ctx,
    programme: &str,
    path: &std::path::Path,
    name: &str,
    dry_run: bool,
) -> Result<crest_ingest::ImportSummary, WebError> {
    let mut entry = c.entry(
        programme,
        if dry_run { "check upload" } else { "import" },
        name,
    );
    let (path, programme) = (path.to_path_buf(), programme.to_string());
    app.db(move |s, app| {
        let mut opts = crest_ingest::ImportOptions::new((app.today)());
        opts.dry_run = dry_run;
        opts.skip_invalid = !dry_run;
        opts.only_programme = Some(programme);
        if !dry_run {
            opts.log = Some(entry.clone());
        }
        let errors_path = crate::uploads::errors_file(&path);
        let file = crate::uploads::create_private(&errors_path).map_err(WebError::internal)?;
        let mut w = csv::Writer::from_writer(Box::new(file) as Box<dyn std::io::Write>);
        let result = crest_ingest::import_file(s, &path, &opts, Some(&mut w), &mut |_| {});
        match result {
            Ok(sum) => {
                if !sum.committed {
                    // A check, or nothing to store: logged on its own.
                    entry.detail = sum.counts();
                    s.log(&entry)?;
                }
                Ok(sum)
            }
            Err(crest_ingest::ImportError::Store(e)) => Err(WebError::internal(e)),
            Err(e) => Err(WebError::BadRequest(format!(
                "The file was refused and nothing was stored: {e}"
            ))),
        }
    })
    .await
}

#[derive(serde::Deserialize)]
struct CancelForm {
    csrf: Option<String>,
    token: String,
}

/// Cancels an upload waiting for confirmation: the file and its rejected rows are removed.
async fn cancel(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    Form(f): Form<CancelForm>,
) -> Result<Response, WebError> {
    c.check_csrf(f.csrf.as_deref())?;
    let path = upload_path(&app, &p.code, &f.token).ok_or(WebError::NotFound)?;
    crate::uploads::discard(&path);
    let body = format!(
        "<div class=\"ok\" role=\"status\">Upload cancelled; nothing was stored and the file was removed.</div>\
         <p><a href=\"/p/{}/upload\">Upload another file</a></p>",
        esc(&p.code)
    );
    Ok(html_page(page(
        "Upload cancelled",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    csrf: Option<String>,
    token: String,
    #[serde(default)]
    name: String,
}

async fn confirm(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath(_code): Code,
    Form(f): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    c.check_csrf(f.csrf.as_deref())?;
    let path = upload_path(&app, &p.code, &f.token).ok_or(WebError::NotFound)?;
    if !crate::uploads::waiting(&path) {
        crate::uploads::discard(&path);
        return Err(WebError::BadRequest(
            "This upload is no longer waiting: uploads are kept for an hour until stored or cancelled. Upload the file again."
                .into(),
        ));
    }
    let summary = run_import(&app, &c, &p.code, &path, &f.name, false).await;
    crate::uploads::discard(&path);
    let summary = summary?;
    let body = format!(
        "<div class=\"ok\" role=\"status\">Stored: {} new, {} changed, {} unchanged; {} rejected row(s) were not stored.</div>\
         <p><a href=\"/p/{}/episodes\">See the patients</a></p>",
        summary.imported,
        summary.updated,
        summary.unchanged,
        summary.rejected,
        esc(&p.code)
    );
    Ok(html_page(page(
        "Upload stored",
        &c.nav(Some(&p.code)),
        &body,
    )))
}

async fn upload_errors(
    State(app): State<Arc<App>>,
    Staff(_c, p): Staff,
    UrlPath((_code, token)): UrlPath<(String, String)>,
) -> Result<Response, WebError> {
    let path = upload_path(&app, &p.code, &token).ok_or(WebError::NotFound)?;
    let errors = crate::uploads::errors_file(&path);
    if !crate::uploads::waiting(&errors) {
        crate::uploads::discard(&path);
        return Err(WebError::NotFound);
    }
    let bytes = std::fs::read(errors).map_err(|_| WebError::NotFound)?;
    Ok(crate::download(
        bytes,
        "text/csv; charset=utf-8",
        "rejected-rows.csv",
    ))
}

async fn export_csv(State(app): State<Arc<App>>, staff: Staff) -> Result<Response, WebError> {
    export(app, staff, false).await
}

async fn export_xlsx(State(app): State<Arc<App>>, staff: Staff) -> Result<Response, WebError> {
    export(app, staff, true).await
}

/// The programme's episodes as CSV or XLSX, with the import's columns; logged.
async fn export(app: Arc<App>, Staff(c, p): Staff, xlsx: bool) -> Result<Response, WebError> {
    let name = format!("{}-episodes.{}", p.code, if xlsx { "xlsx" } else { "csv" });
    let mut entry = c.entry(&p.code, "export", &name);
    let pc = p.code.clone();
    let bytes = app
        .db(move |s, _| {
            let q = EpisodeQuery {
                limit: usize::MAX,
                ..Default::default()
            };
            let rows = s.find_episodes(&pc, &q)?;
            let bytes = if xlsx {
                crest_ingest::export::xlsx_bytes(&rows)
            } else {
                crest_ingest::export::csv_bytes(&rows)
            }
            .map_err(WebError::internal)?;
            entry.detail = format!("{} episodes", rows.len());
            s.log(&entry)?;
            Ok(bytes)
        })
        .await?;
    let mime = if xlsx {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else {
        "text/csv; charset=utf-8"
    };
    Ok(crate::download(bytes, mime, &name))
}

async fn profile(State(_app): State<Arc<App>>, Staff(c, p): Staff) -> Result<Response, WebError> {
    Ok(html_page(profile_page(&c, &p, false)))
}

fn profile_page(c: &crate::Ctx, p: &crest_core::Programme, saved: bool) -> String {
    let lead = c.user.role == Role::ProgrammeLead;
    let dis = if lead { "" } else { " disabled" };
    let mut body = String::new();
    if saved {
        body.push_str("<div class=\"ok\" role=\"status\">Profile saved.</div>");
    }
    if !lead {
        body.push_str("<p>Only the programme lead can change the profile.</p>");
    }
    let _ = write!(body, "<form method=\"post\">{}<fieldset><legend>Staffing return: professions in the team (KPI 1)</legend>", html::csrf_field(&c.session.csrf));
    let has = p.professions.clone().unwrap_or_default();
    for (i, prof) in crest_core::programme::PROFESSIONS.iter().enumerate() {
        let chk = if has.iter().any(|h| h == prof) {
            " checked"
        } else {
            ""
        };
        let _ = write!(body, "<div><input type=\"checkbox\" id=\"prof{i}\" name=\"profession\" value=\"{prof}\"{chk}{dis}> <label for=\"prof{i}\" style=\"display:inline\">{}</label></div>", prof.replace('_', " "));
    }
    body.push_str("</fieldset><fieldset><legend>Priority groups offered (KPI 2)</legend>");
    let offers = p.offers.clone().unwrap_or_default();
    for (i, g) in PriorityGroup::OFFERED.iter().enumerate() {
        let chk = if offers.contains(g) { " checked" } else { "" };
        let _ = write!(body, "<div><input type=\"checkbox\" id=\"grp{i}\" name=\"offer\" value=\"{}\"{chk}{dis}> <label for=\"grp{i}\" style=\"display:inline\">{}</label></div>", g.code(), g.code().replace('_', " "));
    }
    body.push_str("</fieldset>");
    if lead {
        body.push_str("<p><button>Save profile</button></p>");
    }
    body.push_str("</form>");
    page(
        &format!("Profile – {}", p.name),
        &c.nav(Some(&p.code)),
        &body,
    )
}

async fn save_profile(
    State(app): State<Arc<App>>,
    Staff(c, mut p): Staff,
    UrlPath(_code): Code,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let get = |k: &str| {
        form.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    c.check_csrf(get("csrf").first().map(String::as_str))?;
    if c.user.role != Role::ProgrammeLead {
        return Err(WebError::NotFound);
    }
    let professions: Vec<String> = get("profession")
        .into_iter()
        .filter(|v| crest_core::programme::PROFESSIONS.contains(&v.as_str()))
        .collect();
    let offers: Vec<PriorityGroup> = get("offer")
        .iter()
        .filter_map(|v| PriorityGroup::parse(v))
        .collect();
    let mut entry = c.entry(&p.code, "change profile", &p.code);
    entry.detail = format!(
        "professions: {}; offers: {}",
        professions.join(";"),
        offers
            .iter()
            .map(|g| g.code())
            .collect::<Vec<_>>()
            .join(";")
    );
    p.professions = (!professions.is_empty()).then_some(professions);
    p.offers = (!offers.is_empty()).then_some(offers);
    let saved = p.clone();
    app.db(move |s, _| {
        // Logged first: a change may never be stored without its entry.
        s.log(&entry)?;
        s.upsert_programmes(&[saved])?;
        Ok(())
    })
    .await?;
    Ok(html_page(profile_page(&c, &p, true)))
}
