//! Who may call a handler, stated in its signature: each extractor signs the request in and
//! checks the role (and, for programme pages, the programme in the address) before the
//! handler runs. Anything not allowed answers 404, exactly as for a page that does not exist.

use crate::app::{ctx_of, scoped_of, App, Ctx, WebError};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use crest_core::Programme;
use crest_store::Role;
use std::sync::Arc;

/// Any signed-in user.
pub(crate) struct SignedIn(pub Ctx);

/// A national analyst, on a server that has the national side.
pub(crate) struct Analyst(pub Ctx);

/// An administrator.
pub(crate) struct Admin(pub Ctx);

/// Someone who reads national aggregates (an analyst, a commissioner or a researcher), on a
/// server that has the national side.
pub(crate) struct Planner(pub Ctx);

/// A commissioner, on a server that has the national side.
pub(crate) struct Commissioner(pub Ctx);

/// A researcher, on a server that has the national side.
pub(crate) struct Researcher(pub Ctx);

/// The signed-in user if their role is one of `roles` and this server has the national side;
/// otherwise 404.
async fn national_role(parts: &Parts, app: &Arc<App>, roles: &[Role]) -> Result<Ctx, WebError> {
    let c = ctx_of(app, parts).await?;
    if !roles.contains(&c.user.role) || app.national_db.get().is_none() {
        return Err(WebError::NotFound);
    }
    Ok(c)
}

impl FromRequestParts<Arc<App>> for Planner {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WebError> {
        let roles = [Role::NationalAnalyst, Role::Commissioner, Role::Researcher];
        national_role(parts, app, &roles).await.map(Planner)
    }
}

impl FromRequestParts<Arc<App>> for Commissioner {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WebError> {
        national_role(parts, app, &[Role::Commissioner])
            .await
            .map(Commissioner)
    }
}

impl FromRequestParts<Arc<App>> for Researcher {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WebError> {
        national_role(parts, app, &[Role::Researcher])
            .await
            .map(Researcher)
    }
}

/// Staff or lead of the programme in the address (`/p/{code}/…`), with that programme.
pub(crate) struct Staff(pub Ctx, pub Programme);

impl FromRequestParts<Arc<App>> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WebError> {
        ctx_of(app, parts).await.map(SignedIn)
    }
}

impl FromRequestParts<Arc<App>> for Analyst {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WebError> {
        national_role(parts, app, &[Role::NationalAnalyst])
            .await
            .map(Analyst)
    }
}

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WebError> {
        let c = ctx_of(app, parts).await?;
        if c.user.role != Role::Admin {
            return Err(WebError::NotFound);
        }
        Ok(Admin(c))
    }
}

impl FromRequestParts<Arc<App>> for Staff {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, WebError> {
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|_| WebError::NotFound)?;
        let code = params
            .iter()
            .find(|(k, _)| *k == "code")
            .map(|(_, v)| v.to_string())
            .ok_or(WebError::NotFound)?;
        let (c, p) = scoped_of(app, parts, &code).await?;
        Ok(Staff(c, p))
    }
}
