//! A CR programme's own work, under `/p/{code}`: the patient list, episodes entered step by step or as one form, the patient summary and progress report, uploads, exports, the dashboard, the programme profile and national submissions.

pub(crate) mod dashboard;
pub(crate) mod episode_form;
pub(crate) mod episode_steps;
pub(crate) mod episodes;
pub(crate) mod exports;
pub(crate) mod over_time;
pub(crate) mod patient_summary;
pub(crate) mod patients;
pub(crate) mod profile;
pub(crate) mod progress_report;
pub(crate) mod submit;
pub(crate) mod upload;

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// Every route of this area.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(dashboard::routes())
        .merge(episodes::routes())
        .merge(exports::routes())
        .merge(over_time::routes())
        .merge(patients::routes())
        .merge(profile::routes())
        .merge(progress_report::routes())
        .merge(submit::routes())
        .merge(upload::routes())
}
