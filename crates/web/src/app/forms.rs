//! Forms as posted: every value of every name, in order, and reading them.

/// A form as posted: every value of every name, in order.
pub(crate) type Posted = Vec<(String, String)>;

/// The first value posted under `name`, trimmed (empty when there is none).
pub(crate) fn one(form: &Posted, name: &str) -> String {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn all(form: &Posted, name: &str) -> Vec<String> {
    form.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}
