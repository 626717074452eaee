//! Research and planning: approved projects and their extracts, and the published aggregates that analysts, commissioners and researchers query.

pub(crate) mod aggregates;
pub(crate) mod projects;

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// Every route of this area.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(aggregates::routes())
        .merge(projects::routes())
}
