//! crest's web app for CR programmes: login, the episode list and forms, upload with preview,
//! the dashboard, patient progress reports, the programme profile and exports.
//!
//! Handlers are thin: validation is `crest_core::check_row`, uploads are
//! `crest_ingest::import_file`, KPIs are `crest_stats::kpis::compute`, exactly as on the
//! command line. Every query is scoped to the signed-in user's programmes; another programme's
//! pages answer 404, as if they did not exist.

//!
//! The crate is arranged by who uses it: `app` (state, errors, sign-in, the router assembled
//! from each area's `routes()`), `programme` (a CR team's patients, episodes, uploads,
//! dashboard, reports and submissions), `national` (the audit's analysts), `region`
//! (commissioners), `research` (projects and aggregates), `account` (a user's own tokens,
//! password and security code), `admin` (accounts, agreements, figures) and `api` (the JSON
//! API for other systems).

mod account;
mod admin;
mod api;
mod app;
mod ascertainment;
mod before_after;
pub mod html;
mod national;
mod over_time;
mod programme;
mod region;
mod research;
mod uptake;

pub use account::tokens::{new_personal_token, token_hash};
pub use api::openapi;
pub use app::ops::MetricsAccess;
pub use app::uploads;
pub use app::{
    router, serve, App, RequestId, StartError, WebError, OPT_OUT_FILE_LIMIT, SUBMISSION_LIMIT,
    UPLOAD_LIMIT,
};
pub use crest_store::users::{add_user, hash_password, new_password};
pub use programme::upload::read_upload_form;
