//! Numbers and words as published pages and reports write them: counts with thousands
//! separators, percentages, numbers without trailing zeros, groups by their labels, and
//! messages as sentences. Files keep plain digits and codes.

/// A group of an uptake breakdown as people read it: a sex code by its label ("Female"); the
/// other groupings are already words. Downloads keep the codes.
pub fn group_words(group: &str) -> std::borrow::Cow<'_, str> {
    match crest_core::Col::Sex.field().code_label(group) {
        Some(label) => label.into(),
        None if group == "not known" => "Not known".into(),
        None => group.into(),
    }
}

/// A number as a page shows it: no trailing zeros (27.5, 80), thousands separators from
/// 1,000 (1,500; 12,345.5). Files keep `format_num`'s plain digits.
pub fn number(x: f64) -> String {
    let plain = crest_core::value::format_num(x);
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", plain.as_str()),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, format!(".{f}")),
        None => (digits, String::new()),
    };
    match whole.parse::<u64>() {
        Ok(n) => format!("{sign}{}{fraction}", thousands(n)),
        Err(_) => plain,
    }
}

/// A published count as a page shows it: 1,875; a suppressed `*` or any other text stays.
pub fn count_words(cell: &str) -> String {
    cell.parse::<u64>().map_or(cell.to_string(), thousands)
}

/// A whole number with thousands separators, as pages write counts: 92,441; 1,105.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A library's message as a sentence on a page: a capital first (a message that starts with
/// a code or a file name, such as `programmes.csv`, stays as it is).
pub fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f)
            if f.is_lowercase()
                && !s
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .contains(['.', '_']) =>
        {
            f.to_uppercase().chain(c).collect()
        }
        _ => s.to_string(),
    }
}

/// A proportion as a percentage with one decimal, or a dash.
pub fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_on_pages_carry_thousands_separators() {
        assert_eq!(number(1500.0), "1,500");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(12345.5), "12,345.5");
        assert_eq!(number(-1234.25), "-1,234.25");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(thousands(92441), "92,441");
        assert_eq!(thousands(1105), "1,105");
        assert_eq!(thousands(100), "100");
    }

    #[test]
    fn messages_start_with_a_capital_unless_they_start_with_a_name() {
        assert_eq!(
            capitalised("no data sharing agreement"),
            "No data sharing agreement"
        );
        assert_eq!(
            capitalised("programmes.csv is not"),
            "programmes.csv is not"
        );
        assert_eq!(
            capitalised("core_start_date is needed"),
            "core_start_date is needed"
        );
        assert_eq!(capitalised(""), "");
    }
}
