//! Commissioners and network leads, under `/region`: their region's programmes, disclosure-controlled.

pub(crate) mod before_after;
pub(crate) mod changes;
pub(crate) mod over_time;
pub(crate) mod page;

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// Every route of this area.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(page::routes())
        .merge(changes::routes())
        .merge(over_time::routes())
}
