//! The printable patient progress report: assessment 1 against assessment 2, in words a
//! patient and their GP read.

use crate::app::access::Staff;
use crate::app::{html_page, App, WebError};
use crate::html::page;
use axum::extract::{Path as UrlPath, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_core::{Col, FIELDS};
use std::sync::Arc;

use crate::programme::episode_form::*;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/p/{code}/episodes/{id}/report", get(report))
        .route("/p/{code}/episodes/{id}/report.pdf", get(report_pdf))
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
    Ok(html_page(report_page(&c, &p, &id, &rec)))
}

/// The report as a one-page A4 PDF, printed by headless Chromium from the same page (the
/// annual report's renderer). The page is written to a private scratch file only while it
/// prints.
pub(crate) async fn report_pdf(
    State(app): State<Arc<App>>,
    Staff(c, p): Staff,
    UrlPath((_code, id)): UrlPath<(String, String)>,
) -> Result<Response, WebError> {
    let rec = load(&app, &c, &p.code, &id, "download report").await?;
    let html = report_page(&c, &p, &id, &rec);
    let base = app
        .uploads
        .join(format!("{}-{}", p.code, crate::app::auth::token()));
    let (html_file, pdf_file) = (base.with_extension("html"), base.with_extension("pdf"));
    let pdf = tokio::task::spawn_blocking(move || {
        let printed = crate::app::uploads::write_private(&html_file, html.as_bytes())
            .map_err(WebError::internal)
            .and_then(|()| {
                crest_report::print::print_pdf(&html_file, &pdf_file).map_err(WebError::internal)
            })
            .and_then(|()| std::fs::read(&pdf_file).map_err(WebError::internal));
        let _ = std::fs::remove_file(&html_file);
        let _ = std::fs::remove_file(&pdf_file);
        printed
    })
    .await
    .map_err(WebError::internal)??;
    Ok(crate::app::download(
        pdf,
        "application/pdf",
        "progress-report.pdf",
    ))
}

fn report_page(
    c: &crate::app::Ctx,
    p: &crest_core::Programme,
    id: &str,
    rec: &crest_core::Record,
) -> String {
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
    let measures = measures(rec);
    // A small chart of each measure taken as a number.
    let charts: Vec<_> = measures
        .iter()
        .filter(|m| m.first.is_some() || m.second.is_some())
        .map(|m| {
            crest_report::charts::change_chart(&format!("c-{}", m.key), m.label, m.first, m.second)
        })
        .collect();
    let body = maud::html! {
        p {
            strong { (t(Col::GivenName)) " " (t(Col::FamilyName)) }
            ", NHS number " (t(Col::NhsNumber)) ", born " (shown(Col::DateOfBirth))
            ". Programme: " (p.name) "."
        }
        p {
            "Referred on " (shown(Col::ReferralDate)) ". What led to the referral: "
            (shown(Col::InitiatingEvent)) "; treatment: " (shown(Col::Treatment)) "."
        }
        p {
            "Assessment 1: " (shown(Col::Assessment1Date)) ". Assessment 2: "
            (shown(Col::Assessment2Date)) "."
        }
        @if measures.is_empty() {
            p { "No measures are recorded yet. They appear here once assessment 1 or 2 is entered." }
        } @else {
            (measures_table(
                "Your measures at the start and end of cardiac rehabilitation",
                ["At the start (assessment 1)", "At the end (assessment 2)"],
                &measures,
            ))
            div class="small-charts" { @for chart in &charts { (chart) } }
        }
        p class="hint" {
            "HADS: Hospital Anxiety and Depression Scale; 0–7 normal, 8–10 borderline, 11–21 abnormal. \
             Print this page for the patient and their GP."
        }
        p class="noprint" {
            button type="button" data-print { "Print" } " "
            a href={ "/p/" (p.code) "/episodes/" (crate::html::url_encode(id)) "/report.pdf" } { "Download as PDF" }
        }
        script src="/assets/print.js" {}
    };
    page(
        "Cardiac rehabilitation progress report",
        c.nav(Some(&p.code)),
        body,
    )
}

/// The measures at both assessments and their change, as a table under `caption` with the
/// two assessments' headings.
pub(crate) fn measures_table(
    caption: &str,
    headings: [&str; 2],
    measures: &[Measure],
) -> maud::Markup {
    maud::html! {
        table tabindex="0" {
            caption { (caption) }
            thead { tr {
                th scope="col" { "Measure" } th scope="col" { (headings[0]) }
                th scope="col" { (headings[1]) } th scope="col" { "Change" }
            } }
            tbody {
                @for m in measures {
                    tr {
                        th scope="row" { (m.label) }
                        td { (m.shown[0]) } td { (m.shown[1]) } td { (m.change) }
                    }
                }
            }
        }
    }
}

/// One measure at both assessments, as the progress report and the patient summary show it.
pub(crate) struct Measure {
    /// The measure's name without its assessment (`weight_kg`).
    pub key: &'static str,
    /// Its label.
    pub label: &'static str,
    /// Its values as numbers, where they are.
    pub first: Option<f64>,
    pub second: Option<f64>,
    /// Both values in words ("–" when not recorded; a HADS score with its band).
    pub shown: [String; 2],
    /// "up 3", "down 1.5", "no change" or "–".
    pub change: String,
}

/// Every measure recorded at assessment 1 or 2, in the dataset's order.
pub(crate) fn measures(rec: &crest_core::Record) -> Vec<Measure> {
    let num = |v: &crest_core::Value| match v {
        crest_core::Value::Int(i) => Some(*i as f64),
        crest_core::Value::Num(x) => Some(*x),
        _ => None,
    };
    let mut out = Vec::new();
    for a1 in FIELDS.iter().filter(|f| f.assessment() == Some(1)) {
        let key = &a1.name[3..];
        let Some(a2) = FIELDS
            .iter()
            .find(|f| f.assessment() == Some(2) && &f.name[3..] == key)
        else {
            continue;
        };
        let (v1, v2) = (rec.get(a1.col), rec.get(a2.col));
        if v1.is_null() && v2.is_null() {
            continue;
        }
        let change = match (num(v1), num(v2)) {
            (Some(x), Some(y)) => {
                let d = y - x;
                let text = crest_core::value::format_num(d.abs());
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
            Some(s) if key.starts_with("hads") => {
                format!("{} ({})", crest_core::value::format_num(s), hads_band(s))
            }
            _ if v.is_null() => "–".to_string(),
            _ => f.display(v),
        };
        out.push(Measure {
            key,
            label: a1.label,
            first: num(v1),
            second: num(v2),
            shown: [value(a1, v1), value(a2, v2)],
            change,
        });
    }
    out
}
