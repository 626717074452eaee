//! The national audit's analysts, under `/national`: submissions received, the national dashboard (with case ascertainment), a programme's page, inequalities, outliers, data quality and the annual report.

pub(crate) mod annual_report;
pub(crate) mod ascertainment;
pub(crate) mod dashboard;
pub(crate) mod inequalities;
pub(crate) mod outliers;
pub(crate) mod over_time;
pub(crate) mod programme_page;
pub(crate) mod quality;
pub(crate) mod receive;

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// Every route of this area.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .merge(annual_report::routes())
        .merge(ascertainment::routes())
        .merge(dashboard::routes())
        .merge(inequalities::routes())
        .merge(outliers::routes())
        .merge(over_time::routes())
        .merge(programme_page::routes())
        .merge(quality::routes())
        .merge(receive::routes())
}
