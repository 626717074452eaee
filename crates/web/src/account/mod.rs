//! What every user does for their own account: personal API tokens, password and security code.

pub(crate) mod password;
pub(crate) mod security_code;
pub(crate) mod tokens;

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// Every route of this area.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(password::routes())
        .merge(security_code::routes())
        .merge(tokens::routes())
}
