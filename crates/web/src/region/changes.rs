//! Commissioners record service changes to their regions ("a community programme for the most
//! deprived quintile started"); the charts over time of the region's programmes draw them.

use crate::app::access::Commissioner;
use crate::app::{App, WebError};
use crate::over_time::{ChangeAnswers, ChangeForm};
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use crest_core::changes::ChangeScope;
use std::sync::Arc;

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route("/region/changes", post(record_change))
}

/// The form: a change to one of the commissioner's regions.
pub(crate) fn change_form(regions: &[String]) -> ChangeForm {
    ChangeForm {
        action: "/region/changes".into(),
        scopes: regions
            .iter()
            .map(|r| (r.clone(), format!("the region {r}")))
            .collect(),
        back: "/region".into(),
    }
}

async fn record_change(
    State(app): State<Arc<App>>,
    Commissioner(c): Commissioner,
    axum::Form(sent): axum::Form<ChangeAnswers>,
) -> Result<Response, WebError> {
    let regions = c.user.regions.clone();
    // One region needs no question: it is the one.
    let only = (regions.len() == 1).then(|| regions[0].clone());
    let nav = c.nav(None);
    change_form(&regions)
        .record(&app, &c, nav, sent, |s| {
            only.clone()
                .or_else(|| regions.iter().find(|r| r.as_str() == s).cloned())
                .map(ChangeScope::Region)
        })
        .await
}
