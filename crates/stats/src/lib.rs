//! crest statistics and KPIs: pure functions over in-memory values, the same numbers whatever
//! store they came from.

pub mod aggregate;
pub mod ascertainment;
pub mod audit;
pub mod before_after;
pub mod disclosure;
pub mod funnel;
pub mod inequality;
pub mod kpis;
pub mod outcomes;
pub mod over_time;
pub mod pathway;
pub mod published;
pub mod spc;
pub mod summary;

pub use kpis::{compute, KpiReport, KpiTally, Period, Thresholds};
pub use summary::{median, quantile, wilson, Summary, Z95};
