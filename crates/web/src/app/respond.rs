//! Answers in common shapes: an HTML page, and downloads of tables and charts in every format.

use super::error::{html_headers, WebError};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// An HTML page response.
pub(crate) fn html_page(body: String) -> Response {
    (html_headers(), body).into_response()
}

pub(crate) fn download(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}

/// A chart downloaded as `svg` or `png` (anything else is 404), named `name.svg|png`, with its
/// title, axes and legend; `empty` says why when there is nothing to draw.
pub(crate) fn chart_download(
    chart: &maud::Markup,
    format: &str,
    name: &str,
    empty: &str,
) -> Result<Response, WebError> {
    let nothing = |_| WebError::BadRequest(empty.to_string());
    match format {
        "svg" => Ok(download(
            crest_report::svg::svg_file(chart)
                .map_err(nothing)?
                .into_bytes(),
            "image/svg+xml",
            &format!("{name}.svg"),
        )),
        "png" => Ok(download(
            crest_report::svg::svg_png(chart).map_err(nothing)?,
            "image/png",
            &format!("{name}.png"),
        )),
        _ => Err(WebError::NotFound),
    }
}

/// A table downloaded as `csv` or `xlsx` (anything else is 404), named `name.csv|xlsx`.
pub(crate) fn table_download(
    name: &str,
    format: &str,
    columns: &[String],
    rows: &[Vec<String>],
) -> Result<Response, WebError> {
    match format {
        "csv" => Ok(download(
            crest_ingest::export::table_csv(columns, rows).map_err(WebError::internal)?,
            "text/csv; charset=utf-8",
            &format!("{name}.csv"),
        )),
        "xlsx" => Ok(download(
            // A sheet name has at most 31 characters: the table's name without its period.
            crest_ingest::export::table_xlsx(
                &name
                    .split('-')
                    .next()
                    .unwrap_or("table")
                    .chars()
                    .take(31)
                    .collect::<String>(),
                columns,
                rows,
            )
            .map_err(WebError::internal)?,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            &format!("{name}.xlsx"),
        )),
        _ => Err(WebError::NotFound),
    }
}
