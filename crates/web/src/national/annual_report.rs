//! The annual report on the web for national analysts: choose the period and the funnel
//! limits, read the report at once as a web page, or download it as a PDF printed by headless
//! Chromium (the same report `crest report annual` writes).

use crate::app::access::Analyst;
use crate::app::{html_page, App, WebError};
use crate::html::page;
use crate::national::dashboard::{chosen_period, method_choice, Filters};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/national/report", get(choose))
        .route("/national/report.html", get(as_html))
        .route("/national/report.pdf", get(as_pdf))
}

/// The report's address for a period and method, with `ending` (`.html` or `.pdf`).
fn address(ending: &str, period: crest_core::Period, method: &str) -> String {
    format!(
        "/national/report{ending}?from={}&to={}&method={method}",
        period.from, period.to
    )
}

/// `GET /national/report`: the period and method, and the two ways to read the report.
async fn choose(
    State(app): State<Arc<App>>,
    Analyst(c): Analyst,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let period = chosen_period(&app, &f)?;
    let method = f.method()?;
    let body = maud::html! {
        (crate::html::period_form(period.from, period.to, method_choice(method)))
        p {
            "The annual report for patients referred " (period.long()) ". Funnel limits: "
            (method.label().to_lowercase()) ". Every figure in it has passed disclosure \
             control, as it is published."
        }
        ul {
            li { a href=(address(".html", period, method.code())) { "Read the report as a web page" } }
            li {
                a href=(address(".pdf", period, method.code())) data-wait="pdf-wait" download {
                    "Download the report as a PDF"
                }
                " "
                span class="hint" { "Printing takes up to a minute." }
            }
        }
        div id="pdf-wait" role="status" hidden {
            p { "Printing the PDF. Your browser saves it when it is ready; you can keep working in another tab." }
            progress aria-label="Printing the PDF" {}
        }
        script src="/assets/print.js" {}
    };
    Ok(html_page(page(
        "National audit: annual report",
        c.nav(None),
        body,
    )))
}

/// Builds the annual report of the chosen period from the national store.
async fn report(
    app: &Arc<App>,
    f: &Filters,
) -> Result<crest_report::annual::AnnualReport, WebError> {
    let period = chosen_period(app, f)?;
    let method = f.method()?;
    let today = (app.today)();
    app.national(move |n| {
        crest_report::annual::annual(n, period, today, method).map_err(WebError::internal)
    })
    .await
}

/// `GET /national/report.html`: the report as one web page.
async fn as_html(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let r = report(&app, &f).await?;
    Ok(html_page(r.html()))
}

/// `GET /national/report.pdf`: the report printed to PDF, in a private scratch folder only
/// while it prints.
async fn as_pdf(
    State(app): State<Arc<App>>,
    Analyst(_c): Analyst,
    Query(f): Query<Filters>,
) -> Result<Response, WebError> {
    let r = report(&app, &f).await?;
    let name = format!("annual-report-{}-{}.pdf", r.period.from, r.period.to);
    let file = app
        .uploads
        .join(format!("report-{}.pdf", crate::app::auth::token()));
    let pdf = tokio::task::spawn_blocking(move || {
        let printed = r
            .pdf(&file)
            .map_err(WebError::internal)
            .and_then(|_| std::fs::read(&file).map_err(WebError::internal));
        let _ = std::fs::remove_file(&file);
        printed
    })
    .await
    .map_err(WebError::internal)??;
    Ok(crate::app::download(pdf, "application/pdf", &name))
}
