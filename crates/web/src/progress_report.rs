//! The printable patient progress report: assessment 1 against assessment 2, in words a
//! patient and their GP read.

use crate::access::Staff;
use crate::html::{esc, page};
use crate::{html_page, App, WebError};
use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Col, FIELDS};
use std::fmt::Write;
use std::sync::Arc;

use crate::episode_form::*;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/p/{code}/episodes/{id}/report", get(report))
}

/// HADS anxiety or depression band (Zigmond & Snaith).
pub(crate) fn hads_band(score: f64) -> &'static str {
    if score <= 7.0 {
        "normal (0–7)"
    } else if score <= 10.0 {
        "borderline (8–10)"
    } else {
        "suggests anxiety or depression that needs attention (11–21)"
    }
}

pub(crate) async fn report(
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

pub(crate) fn or_dash(s: String) -> String {
    if s.is_empty() {
        "–".into()
    } else {
        s
    }
}
