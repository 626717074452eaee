//! crest core: the episode dataset defined once, its domain types and validation.
//!
//! Pure: no I/O, no clock (callers pass "today"), no database. Everything that reads or checks
//! an episode, in any crate, goes through here.

pub mod changes;
pub mod checks;
pub mod dataset;
pub mod date;
pub mod episode;
pub mod expected;
pub mod governance;
pub mod programme;
pub mod record;
pub mod spreadsheet;
pub mod validate;
pub mod value;

pub use checks::NhsNumber;
pub use dataset::{
    field_by_name, Code, Col, Field, Kind, Section, Step, Tier, FIELDS, FIELD_COUNT,
};
pub use date::Date;
pub use episode::{age_band, ethnic_group, KpiEpisode, Period, PriorityGroup};
pub use programme::{Nation, Programme};
pub use record::Record;
pub use validate::{check_row, Checked, Header, HeaderError, Issue};
pub use value::Value;

/// A value that does not pass a check; the message says what is wrong and how to put it right.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(message: String) -> Invalid {
        Invalid(message)
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Invalid {
        Invalid(message.to_string())
    }
}
