//! The router, assembled from each area's own `routes()` with the layers every request passes
//! through, and serving it.

use super::context::current_page;
use super::middleware::{error_pages, not_found, print_js, request_log, security_headers};
use super::{sign_in, uploads, App};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

/// The app's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(sign_in::routes())
        .merge(crate::programme::routes())
        .merge(crate::national::routes())
        .merge(crate::region::routes())
        .merge(crate::research::routes())
        .merge(crate::account::routes())
        .merge(crate::admin::routes())
        .merge(crate::api::routes())
        .merge(super::ops::routes())
        .route("/assets/print.js", get(print_js))
        .fallback(not_found)
        .with_state(app.clone())
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            error_pages,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::from_fn(current_page))
        .route_layer(axum::middleware::from_fn_with_state(app, request_log))
}

/// Serves the app until interrupted. Uploads left unconfirmed are removed once an hour old.
pub async fn serve(app: Arc<App>, addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The national dashboard's reports are computed while the server starts answering (a
    // plain thread: the PostgreSQL client must not run inside tokio's runtime).
    let warm = app.clone();
    std::thread::spawn(move || warm.warm_national_reports());
    let sweeper = app.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            let app = sweeper.clone();
            // A plain thread: the PostgreSQL client must not run inside tokio's runtime.
            let swept = std::thread::spawn(move || app.sweep_uploads(uploads::MAX_AGE)).join();
            if let Ok(Err(e)) = swept {
                tracing::error!(%e, "sweeping uploads");
            }
        }
    });
    axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
