//! The programme's episodes downloaded as CSV or XLSX (logged).

use crate::access::Staff;
use crate::{App, WebError};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use crest_store::EpisodeQuery;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/p/{code}/export.csv", get(export_csv))
        .route("/p/{code}/export.xlsx", get(export_xlsx))
}

pub(crate) async fn export_csv(
    State(app): State<Arc<App>>,
    staff: Staff,
) -> Result<Response, WebError> {
    export(app, staff, false).await
}

pub(crate) async fn export_xlsx(
    State(app): State<Arc<App>>,
    staff: Staff,
) -> Result<Response, WebError> {
    export(app, staff, true).await
}

/// The programme's episodes as CSV or XLSX, with the import's columns; logged.
pub(crate) async fn export(
    app: Arc<App>,
    Staff(c, p): Staff,
    xlsx: bool,
) -> Result<Response, WebError> {
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
