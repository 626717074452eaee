//! Administrators: user accounts, data sharing agreements and the national figures shown to programmes.

pub(crate) mod agreements;
pub(crate) mod national_figures;
pub(crate) mod users;

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// Every route of this area.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(agreements::routes())
        .merge(national_figures::routes())
        .merge(users::routes())
}
