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
        "normal"
    } else if score <= 10.0 {
        "borderline"
    } else {
        "needs attention"
    }
}

pub(crate) async fn report(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath((_code, id)): UrlPath<(String, String)>,
) -> Result<Response, WebError> {
    let rec = load(&app, &c, &p.code, &id, "view report").await?;
    let t = |col| rec.get(col).to_text();
    // Every value in the dictionary's words: codes as labels, dates as "3 March 2025".
    let shown = |col: Col| {
        let v = rec.get(col);
        if v.is_null() {
            "–".to_string()
        } else {
            col.field().display(v)
        }
    };
    // Each row: measure, assessment 1, assessment 2, change.
    let mut measures: Vec<[String; 4]> = Vec::new();
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
            (Some(x), Some(y)) => {
                let d = y - x;
                let text = crest_core::record::format_num(d.abs());
                if d > 0.0 {
                    format!("up {text}")
                } else if d < 0.0 {
                    format!("down {text}")
                } else {
                    "no change".into()
                }
            }
            _ => "–".into(),
        };
        // A HADS score is shown with what it means.
        let value = |f: &crest_core::Field, v: &crest_core::Value| match num(v) {
            Some(s) if measure.starts_with("hads") => {
                format!("{} ({})", crest_core::record::format_num(s), hads_band(s))
            }
            _ if v.is_null() => "–".to_string(),
            _ => f.display(v),
        };
        measures.push([a1.label.to_string(), value(a1, v1), value(a2, v2), change]);
    }
    let body = maud::html! {
        p {
            strong { (t(Col::GivenName)) " " (t(Col::FamilyName)) }
            ", NHS number " (t(Col::NhsNumber)) ", born " (shown(Col::DateOfBirth))
            ". Programme: " (p.name) "."
        }
        p {
            "Referred on " (shown(Col::ReferralDate)) " after " (shown(Col::InitiatingEvent))
            " (" (shown(Col::Treatment)) "). Assessment 1: " (shown(Col::Assessment1Date))
            ". Assessment 2: " (shown(Col::Assessment2Date)) "."
        }
        table tabindex="0" {
            caption { "Your measures at the start and end of cardiac rehabilitation" }
            thead { tr {
                th scope="col" { "Measure" } th scope="col" { "At the start (assessment 1)" }
                th scope="col" { "At the end (assessment 2)" } th scope="col" { "Change" }
            } }
            tbody {
                @for [measure, first, second, change] in &measures {
                    tr {
                        th scope="row" { (measure) }
                        td { (first) } td { (second) } td { (change) }
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
