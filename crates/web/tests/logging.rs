//! The server's log: one line per request, by route, with no identifiers. Its own test
//! binary, because the log subscriber it installs is for the whole process.
#![allow(clippy::unwrap_used)]

use axum::http::StatusCode;
use common::http::{get, login};
use common::{rt, setup, LogBuffer};
use crest_store::testing::databases;
use tower::ServiceExt;

mod common;

/// Every answer carries a request id; the server's log has a line per request with that id
/// and the route's pattern, never the path (episode ids) or a search term.
#[test]
fn requests_are_logged_by_route_with_an_id_and_no_identifiers() {
    let db = &databases()[0];
    let app = setup(db);
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The whole process logs here: a subscriber set for one thread only misses lines when
    // another thread registered the log's call sites first (tracing caches their interest).
    tracing::subscriber::set_global_default(subscriber).unwrap();
    rt().block_on(async {
        let (cookie, _) = login(&app, "staff").await;
        let r = crest_web::router(app.clone())
            .oneshot(get("/p/P001/episodes/E1?q=9434765919", &cookie))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 16);
        let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains(&id))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            line.contains("/p/{code}/episodes/{id}") && line.contains("status=200"),
            "{line}"
        );
        assert!(
            !log.contains("9434765919") && !log.contains("/p/P001/episodes/E1"),
            "{log}"
        );
    });
}
