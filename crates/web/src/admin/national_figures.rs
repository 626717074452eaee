//! The national audit's latest published figures on a programme's server that has no national
//! store: an administrator loads `programmes.csv` and `funnels.csv` (as `crest report annual
//! --tables` writes them, or `crest figures load` on the command line), and each lead's
//! dashboard then shows them beside the programme's own figures.

use crate::app::access::Admin;
use crate::app::{html_page, App, WebError};
use crate::html::{csrf_field, error_summary, page};
use axum::extract::{Multipart, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_report::figures::{self, Figures};
use maud::{html, Markup};
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route(
        "/admin/national-figures",
        get(show).post(load.layer(axum::extract::DefaultBodyLimit::max(
            crate::app::OPT_OUT_FILE_LIMIT,
        ))),
    )
}

/// The published figures this server holds, if an administrator loaded them.
pub(crate) fn held(s: &mut dyn crest_store::Store) -> Result<Option<Figures>, WebError> {
    figures::held(s).map_err(WebError::internal)
}

fn form_page(
    c: &crate::app::Ctx,
    held: Option<&Figures>,
    error: Option<&str>,
    notice: Option<Markup>,
) -> String {
    let errors: Vec<(String, String)> = error
        .map(|e| vec![("programmes".to_string(), e.to_string())])
        .unwrap_or_default();
    let body = html! {
        (error_summary(&errors))
        @if let Some(n) = notice { div class="ok" role="status" { (n) } }
        p {
            "Programme leads see these beside their own figures when this server has no national \
             store: the national audit's latest published programmes.csv and funnels.csv, as its \
             annual report publishes them."
        }
        @match held {
            Some(f) => p { "Now loaded: " strong { (f.period) } ", " (f.programmes.len()) " programmes." },
            None => p { "None are loaded yet." },
        }
        form method="post" enctype="multipart/form-data" {
            (csrf_field(&c.session.csrf))
            label for="period" { "Which period they are for" }
            div class="hint" { "As the report names it, for example 1 April 2024 to 31 March 2025" }
            input id="period" name="period" required;
            label for="f-programmes" { "programmes.csv" }
            input id="f-programmes" type="file" name="programmes" accept=".csv" required;
            label for="funnels" { "funnels.csv" }
            input id="funnels" type="file" name="funnels" accept=".csv" required;
            p { button { "Load the figures" } }
        }
    };
    page("National figures", c.nav(None), body)
}

async fn show(State(app): State<Arc<App>>, Admin(c): Admin) -> Result<Response, WebError> {
    let figures = app.db(|s, _| held(s)).await?;
    Ok(html_page(form_page(&c, figures.as_ref(), None, None)))
}

async fn load(
    State(app): State<Arc<App>>,
    Admin(c): Admin,
    mut multipart: Multipart,
) -> Result<Response, WebError> {
    let bad = |e| crate::app::form_error(e, crate::app::OPT_OUT_FILE_LIMIT);
    let (mut csrf, mut period, mut programmes, mut funnels) =
        (None, String::new(), Vec::new(), Vec::new());
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.ok(),
            Some("period") => period = field.text().await.map_err(bad)?,
            Some("programmes") => programmes = field.bytes().await.map_err(bad)?.to_vec(),
            Some("funnels") => funnels = field.bytes().await.map_err(bad)?.to_vec(),
            _ => {}
        }
    }
    c.check_csrf(csrf.as_deref())?;
    let mut entry = c.entry("", "load national figures", period.trim());
    let loaded = app
        .db(move |s, _| {
            let out = figures::save(s, &period, &programmes, &funnels);
            if let Ok(f) = &out {
                entry.detail = format!(
                    "{} programmes, {} funnel points",
                    f.programmes.len(),
                    f.funnels.len()
                );
                s.log(&entry)?;
            }
            Ok(out)
        })
        .await?;
    let figures = match loaded {
        Ok(f) => f,
        Err(e) => {
            let m = crate::html::capitalised(&e.to_string());
            let held = app.db(|s, _| held(s)).await?;
            let mut r = html_page(form_page(&c, held.as_ref(), Some(&m), None));
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(r);
        }
    };
    let notice =
        html! { "Loaded: " (figures.period) ", " (figures.programmes.len()) " programmes." };
    Ok(html_page(form_page(&c, Some(&figures), None, Some(notice))))
}

/// The programme beside the published national figures, with the funnel plot of `key`.
pub(crate) fn markup(
    f: &Figures,
    code: &str,
    (key, title): (&str, &str),
    chooser: Markup,
) -> Markup {
    let mine = f.programmes.iter().find(|p| p.code == code);
    let keys: Vec<String> = f
        .programmes
        .first()
        .map(|p| p.kpis.iter().map(|k| k.0.clone()).collect())
        .unwrap_or_default();
    let meeting = |key: &str| {
        let flags = f.programmes.iter().filter_map(|p| p.kpi(key)).map(|k| k.1);
        let (met, assessable) = flags.fold((0, 0), |(m, a), flag| match flag {
            "yes" => (m + 1, a + 1),
            "no" => (m, a + 1),
            _ => (m, a),
        });
        format!("{met} of {assessable}")
    };
    let rows: Vec<&figures::FunnelRow> = f.funnels.iter().filter(|r| r.kpi == key).collect();
    let plot = match f.fit(key) {
        None => html! { p { (title) ": not in the published figures." } },
        Some(fit) => {
            let cell = |c: Option<u64>| c.map_or("*".to_string(), |c| c.to_string());
            let dots: Vec<crest_report::charts::Dot> = rows
                .iter()
                .map(|r| crest_report::charts::Dot {
                    code: r.code.clone(),
                    at: match r.counts {
                        (Some(k), Some(n)) if n > 0 => Some((k, n)),
                        _ => None,
                    },
                    position: r.position.unwrap_or(crest_stats::funnel::Position::Within),
                    shown: format!(
                        "{}/{}",
                        crate::html::count_words(&cell(r.counts.0)),
                        crate::html::count_words(&cell(r.counts.1))
                    ),
                })
                .collect();
            crest_report::charts::draw_funnel(&crest_report::charts::FunnelChart {
                id: &format!("pf-{key}"),
                title,
                fit: &fit,
                programmes: rows.len(),
                dots: &dots,
                note: "Published figures: the centre line is pooled from the rounded counts; levels are the audit's, from exact counts.",
                selected: Some(code),
                outliers_href: None,
            })
        }
    };
    html! {
        h2 { "Against the national picture" }
        p class="hint" {
            "The national audit's published figures for " (f.period) ", loaded by your administrator. \
             They are what your programme submitted then: patients who asked to be left out, and \
             those covered by the National Data Opt-out, were never sent, and changes since reach \
             the audit with your next submission. Counts are rounded to the nearest 5; 1 to 7 is *."
        }
        table tabindex="0" {
            caption { "Each KPI: your programme as published, and how many programmes meet it" }
            thead { tr {
                th scope="col" { "KPI" } th scope="col" { "Your programme (published)" }
                th scope="col" { "Standard met" } th scope="col" { "Programmes meeting the standard" }
            } }
            tbody {
                @for key in &keys {
                    @let k = mine.and_then(|m| m.kpi(key));
                    tr {
                        th scope="row" { (crest_stats::kpis::kpi_label(key)) }
                        td { (k.map_or("not published".to_string(), |k| crest_stats::kpis::kpi_shown(key, k.0))) }
                        td { (k.map_or("–", |k| k.1)) }
                        td { (meeting(key)) }
                    }
                }
            }
        }
        @if let Some(m) = mine { p { "Your published grade: " strong { (m.grade) } "." } }
        h3 id="national-funnel" { "Where your programme sits on the published funnel plots" }
        (chooser)
        (plot)
    }
}
