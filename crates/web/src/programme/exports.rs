//! The programme's episodes downloaded as CSV, XLSX or a FHIR R4 Bundle (logged).

use crate::app::access::Staff;
use crate::app::{App, WebError};
use crate::programme::patients::{list_dates, ListQuery};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use crest_store::EpisodeQuery;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/p/{code}/export.csv",
            get(export_csv).post(export_csv_listed),
        )
        .route(
            "/p/{code}/export.xlsx",
            get(export_xlsx).post(export_xlsx_listed),
        )
        .route(
            "/p/{code}/export.json",
            get(export_fhir).post(export_fhir_listed),
        )
}

/// The file formats of an export.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Xlsx,
    /// A FHIR R4 collection Bundle, which `crest import` and the upload read back.
    Fhir,
}

pub(crate) async fn export_fhir(
    State(app): State<Arc<App>>,
    staff: Staff,
) -> Result<Response, WebError> {
    export(app, staff, EpisodeQuery::everything(), Format::Fhir).await
}

/// The episodes the patient list shows, as a FHIR Bundle.
pub(crate) async fn export_fhir_listed(
    State(app): State<Arc<App>>,
    staff: Staff,
    Form(q): Form<ListQuery>,
) -> Result<Response, WebError> {
    export_listed(app, staff, q, Format::Fhir).await
}

pub(crate) async fn export_csv(
    State(app): State<Arc<App>>,
    staff: Staff,
) -> Result<Response, WebError> {
    export(app, staff, EpisodeQuery::everything(), Format::Csv).await
}

pub(crate) async fn export_xlsx(
    State(app): State<Arc<App>>,
    staff: Staff,
) -> Result<Response, WebError> {
    export(app, staff, EpisodeQuery::everything(), Format::Xlsx).await
}

/// The episodes the patient list shows (its search, filters and order), as CSV.
pub(crate) async fn export_csv_listed(
    State(app): State<Arc<App>>,
    staff: Staff,
    Form(q): Form<ListQuery>,
) -> Result<Response, WebError> {
    export_listed(app, staff, q, Format::Csv).await
}

/// The episodes the patient list shows, as XLSX.
pub(crate) async fn export_xlsx_listed(
    State(app): State<Arc<App>>,
    staff: Staff,
    Form(q): Form<ListQuery>,
) -> Result<Response, WebError> {
    export_listed(app, staff, q, Format::Xlsx).await
}

async fn export_listed(
    app: Arc<App>,
    staff: Staff,
    q: ListQuery,
    format: Format,
) -> Result<Response, WebError> {
    staff.0.check_csrf(q.csrf())?;
    let (from, to, problems) = list_dates(&q);
    if let Some(problem) = problems.into_iter().next() {
        return Err(WebError::BadRequest(problem));
    }
    export(app, staff, q.episodes(from, to), format).await
}

/// The programme's episodes matching `query` as CSV or XLSX (with the import's columns) or
/// FHIR; logged.
pub(crate) async fn export(
    app: Arc<App>,
    Staff(c, p): Staff,
    query: EpisodeQuery,
    format: Format,
) -> Result<Response, WebError> {
    let ext = match format {
        Format::Csv => "csv",
        Format::Xlsx => "xlsx",
        Format::Fhir => "fhir.json",
    };
    let name = format!("{}-episodes.{ext}", p.code);
    let mut entry = c.entry(&p.code, "export", &name);
    let pc = p.code.clone();
    let bytes = app
        .db(move |s, _| {
            let rows = s.find_episodes(&pc, &query)?;
            let bytes = match format {
                Format::Xlsx => {
                    crest_ingest::export::xlsx_bytes(&rows).map_err(WebError::internal)?
                }
                Format::Csv => {
                    crest_ingest::export::csv_bytes(&rows).map_err(WebError::internal)?
                }
                Format::Fhir => {
                    let mut out = Vec::new();
                    crest_ingest::fhir::write::bundle(&rows, &mut out)
                        .map_err(WebError::internal)?;
                    out
                }
            };
            entry.detail = format!("{} episodes", rows.len());
            s.log(&entry)?;
            Ok(bytes)
        })
        .await?;
    let mime = match format {
        Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Fhir => "application/fhir+json",
    };
    Ok(crate::app::download(bytes, mime, &name))
}
