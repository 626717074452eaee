//! One typed cell of an episode: what a validated field holds, and how it reads back as text.

use crate::date::Date;

/// A typed cell value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Empty or unknown.
    Null,
    /// Text, codes (canonical spelling) and `;`-joined code lists.
    Text(String),
    /// Whole number.
    Int(i64),
    /// Decimal number.
    Num(f64),
    /// Calendar date.
    Date(Date),
    /// Yes/no.
    Bool(bool),
}

impl Value {
    /// Whether the value is empty/unknown.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a user would type it in a file (empty for `Null`).
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Text(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Num(x) => format_num(*x),
            Value::Date(d) => d.to_string(),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// Formats a decimal without trailing zeros (`27.5`, `80`).
pub fn format_num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}
