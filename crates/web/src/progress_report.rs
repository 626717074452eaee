//! The printable patient progress report: assessment 1 against assessment 2, in words a
//! patient and their GP read.

use crate::access::Staff;
use crate::html::page;
use crate::{html_page, App, WebError};
use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Col, FIELDS};
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
    // Each row: measure, assessment 1, assessment 2, change, what it means.
    let mut measures: Vec<[String; 5]> = Vec::new();
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
        measures.push([
            measure.replace('_', " "),
            or_dash(v1.to_text()),
            or_dash(v2.to_text()),
            change,
            meaning,
        ]);
    }
    let body = maud::html! {
        p {
            strong { (t(Col::GivenName)) " " (t(Col::FamilyName)) }
            ", NHS number " (t(Col::NhsNumber)) ", born " (t(Col::DateOfBirth))
            ". Programme: " (p.name) "."
        }
        p {
            "Referred " (t(Col::ReferralDate)) " after " (t(Col::InitiatingEvent).replace('_', " "))
            " (" (t(Col::Treatment)) "). Assessment 1: " (or_dash(t(Col::Assessment1Date)))
            ". Assessment 2: " (or_dash(t(Col::Assessment2Date))) "."
        }
        table {
            caption { "Your measures at the start and end of cardiac rehabilitation" }
            thead { tr {
                th scope="col" { "Measure" } th scope="col" { "Assessment 1" }
                th scope="col" { "Assessment 2" } th scope="col" { "Change" }
                th scope="col" { "What it means" }
            } }
            tbody {
                @for [measure, first, second, change, meaning] in &measures {
                    tr {
                        th scope="row" { (measure) }
                        td { (first) } td { (second) } td { (change) } td { (meaning) }
                    }
                }
            }
        }
        p class="hint" {
            "HADS: Hospital Anxiety and Depression Scale; 0–7 normal, 8–10 borderline, 11–21 abnormal. \
             Print this page for the patient and their GP."
        }
        p class="noprint" { button type="button" data-print { "Print" } }
        script src="/assets/print.js" {}
    };
    Ok(html_page(page(
        "Cardiac rehabilitation progress report",
        c.nav(Some(&p.code)),
        body,
    )))
}

pub(crate) fn or_dash(s: String) -> String {
    if s.is_empty() {
        "–".into()
    } else {
        s
    }
}
