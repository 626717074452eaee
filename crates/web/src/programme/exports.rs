//! The programme's episodes downloaded as CSV or XLSX (logged).

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
}

pub(crate) async fn export_csv(
    State(app): State<Arc<App>>,
    staff: Staff,
) -> Result<Response, WebError> {
    export(app, staff, EpisodeQuery::everything(), false).await
}

pub(crate) async fn export_xlsx(
    State(app): State<Arc<App>>,
    staff: Staff,
) -> Result<Response, WebError> {
    export(app, staff, EpisodeQuery::everything(), true).await
}

/// The episodes the patient list shows (its search, filters and order), as CSV.
pub(crate) async fn export_csv_listed(
    State(app): State<Arc<App>>,
    staff: Staff,
    Form(q): Form<ListQuery>,
) -> Result<Response, WebError> {
    export_listed(app, staff, q, false).await
}

/// The episodes the patient list shows, as XLSX.
pub(crate) async fn export_xlsx_listed(
    State(app): State<Arc<App>>,
    staff: Staff,
    Form(q): Form<ListQuery>,
) -> Result<Response, WebError> {
    export_listed(app, staff, q, true).await
}

async fn export_listed(
    app: Arc<App>,
    staff: Staff,
    q: ListQuery,
    xlsx: bool,
) -> Result<Response, WebError> {
    staff.0.check_csrf(q.csrf())?;
    let (from, to, problems) = list_dates(&q);
    if let Some(problem) = problems.into_iter().next() {
        return Err(WebError::BadRequest(problem));
    }
    export(app, staff, q.episodes(from, to), xlsx).await
}

/// The programme's episodes matching `query` as CSV or XLSX, with the import's columns;
/// logged.
pub(crate) async fn export(
    app: Arc<App>,
    Staff(c, p): Staff,
    query: EpisodeQuery,
    xlsx: bool,
) -> Result<Response, WebError> {
    let name = format!("{}-episodes.{}", p.code, if xlsx { "xlsx" } else { "csv" });
    let mut entry = c.entry(&p.code, "export", &name);
    let pc = p.code.clone();
    let bytes = app
        .db(move |s, _| {
            let rows = s.find_episodes(&pc, &query)?;
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
    Ok(crate::app::download(bytes, mime, &name))
}
