//! Service changes: a dated change to a programme's, a region's or the nation's services
//! ("a second exercise class added"), recorded by the people who made it. SPC charts draw each
//! as a labelled line and work their limits out afresh from its month, and a before/after
//! comparison asks whether it made a difference.

use crate::{Date, Invalid};

/// The longest description kept: a chart labels the line with it.
pub const MAX_TEXT: usize = 200;

/// Whose services changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChangeScope {
    /// One programme, by code.
    Programme(String),
    /// The programmes of a region, by name.
    Region(String),
    /// Every programme.
    National,
}

impl ChangeScope {
    /// The kind as stored: `programme`, `region` or `national`.
    pub fn kind(&self) -> &'static str {
        match self {
            ChangeScope::Programme(_) => "programme",
            ChangeScope::Region(_) => "region",
            ChangeScope::National => "national",
        }
    }

    /// The programme's code or the region's name (empty for the nation).
    pub fn code(&self) -> &str {
        match self {
            ChangeScope::Programme(c) | ChangeScope::Region(c) => c,
            ChangeScope::National => "",
        }
    }

    /// The scope from its stored kind and code.
    pub fn from_stored(kind: &str, code: &str) -> Option<ChangeScope> {
        match kind {
            "programme" => Some(ChangeScope::Programme(code.to_string())),
            "region" => Some(ChangeScope::Region(code.to_string())),
            "national" => Some(ChangeScope::National),
            _ => None,
        }
    }
}

/// A service change as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceChange {
    /// Its number in the store (0 before it is stored).
    pub id: i64,
    /// Whose services changed.
    pub scope: ChangeScope,
    /// The day it took effect.
    pub date: Date,
    /// What changed, in the recorder's words.
    pub text: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// When (UTC, ISO 8601).
    pub recorded_at: String,
}

impl ServiceChange {
    /// A change to record, checked: a description of 1 to [`MAX_TEXT`] characters without
    /// control characters, and a programme code or region name where the scope needs one.
    pub fn new(
        scope: ChangeScope,
        date: Date,
        text: &str,
        recorded_by: &str,
        recorded_at: &str,
    ) -> Result<ServiceChange, Invalid> {
        let text = text.trim();
        if text.is_empty() {
            return Err("Say what changed, for example \"second exercise class added\".".into());
        }
        if text.chars().count() > MAX_TEXT {
            return Err(format!("Say what changed in at most {MAX_TEXT} characters.").into());
        }
        if text.chars().any(char::is_control) {
            return Err("Say what changed on one line.".into());
        }
        if scope != ChangeScope::National && scope.code().trim().is_empty() {
            return Err("Name the programme or region whose services changed.".into());
        }
        Ok(ServiceChange {
            id: 0,
            scope,
            date,
            text: text.to_string(),
            recorded_by: recorded_by.to_string(),
            recorded_at: recorded_at.to_string(),
        })
    }
}

impl ServiceChange {
    /// Whether a chart of `chart`'s programmes draws this change: one programme's chart draws
    /// its own changes, its region's (`region`, the programme's) and every programme's; a
    /// region's chart its own and every programme's; the nation's chart only every programme's.
    pub fn drawn_on(&self, chart: &ChangeScope, region: Option<&str>) -> bool {
        match (&self.scope, chart) {
            (ChangeScope::National, _) => true,
            (ChangeScope::Programme(a), ChangeScope::Programme(b)) => a == b,
            (ChangeScope::Region(a), ChangeScope::Programme(_)) => region == Some(a.as_str()),
            (ChangeScope::Region(a), ChangeScope::Region(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_needs_words_on_one_line_and_a_scope() {
        let d = Date::from_ymd(2024, 10, 1).unwrap();
        let p = || ChangeScope::Programme("P001".into());
        let ok = ServiceChange::new(p(), d, "  Second class added ", "lead", "t").unwrap();
        assert_eq!(ok.text, "Second class added");
        assert!(ServiceChange::new(p(), d, " ", "lead", "t").is_err());
        assert!(ServiceChange::new(p(), d, &"x".repeat(201), "lead", "t").is_err());
        assert!(ServiceChange::new(p(), d, "a\nb", "lead", "t").is_err());
        assert!(ServiceChange::new(ChangeScope::Region(" ".into()), d, "x", "c", "t").is_err());
        assert!(ServiceChange::new(ChangeScope::National, d, "x", "a", "t").is_ok());
        let north =
            ServiceChange::new(ChangeScope::Region("North".into()), d, "x", "c", "t").unwrap();
        assert!(north.drawn_on(&p(), Some("North")) && !north.drawn_on(&p(), Some("South")));
        assert!(north.drawn_on(&ChangeScope::Region("north".into()), None));
        assert!(!north.drawn_on(&ChangeScope::National, None));
        assert!(!ok.drawn_on(&ChangeScope::Programme("P002".into()), Some("North")));
        assert_eq!(
            ChangeScope::from_stored("region", "North"),
            Some(ChangeScope::Region("North".into()))
        );
    }
}
