//! The import templates (CSV and XLSX), generated from the dataset dictionary.

use crest_core::FIELDS;
use rust_xlsxwriter::{DataValidation, Format, Workbook};
use std::path::Path;

/// The CSV template's second row starts with this; the importer skips such a row.
pub const NOTES_PREFIX: &str = "NOTE:";

fn imported() -> impl Iterator<Item = &'static crest_core::Field> {
    FIELDS.iter().filter(|f| f.imported())
}

fn note(f: &crest_core::Field) -> String {
    format!(
        "{}: {}. {}. {}",
        f.label,
        if f.required { "required" } else { "optional" },
        values(f),
        f.help
    )
}

/// The accepted values of a column, codes with the words for them.
fn values(f: &crest_core::Field) -> String {
    match f.kind {
        crest_core::Kind::Code(codes) | crest_core::Kind::CodeList(codes) => {
            let list = codes
                .iter()
                .map(|c| format!("{} = {}", c.code, c.label))
                .collect::<Vec<_>>()
                .join("; ");
            if matches!(f.kind, crest_core::Kind::CodeList(_)) {
                format!("several, separated by ';', from: {list}")
            } else {
                format!("one of: {list}")
            }
        }
        _ => f.kind.describe(),
    }
}

/// The CSV template: the header row and a notes row explaining each column.
pub fn csv_template() -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(imported().map(|f| f.name))?;
    w.write_record(imported().enumerate().map(|(i, f)| {
        if i == 0 {
            format!("{NOTES_PREFIX} {}", note(f))
        } else {
            note(f)
        }
    }))?;
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The XLSX template: an `episodes` sheet with the header row (date columns formatted as
/// dates) and a `notes` sheet explaining each column.
pub fn xlsx_template() -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let sheet = wb.add_worksheet().set_name("episodes")?;
    for (i, f) in imported().enumerate() {
        let c = i as u16;
        sheet.write_string_with_format(0, c, f.name, &bold)?;
        sheet.set_column_width(c, (f.name.len() as f64 + 2.0).max(12.0))?;
        if f.kind == crest_core::Kind::Date {
            sheet.set_column_format(c, &date)?;
        }
        // A drop-down of the codes (with the words in its prompt) on every coded column.
        if let crest_core::Kind::Code(codes) = f.kind {
            let list: Vec<&str> = codes.iter().map(|c| c.code).collect();
            let prompt: String = codes
                .iter()
                .map(|c| format!("{} = {}", c.code, c.label))
                .collect::<Vec<_>>()
                .join("\n");
            let mut rule = DataValidation::new()
                .allow_list_strings(&list)?
                .set_error_title("Not one of the codes")?
                .set_error_message(format!(
                    "Choose one of the codes in the list for {}.",
                    f.label
                ))?;
            // Excel limits a prompt to 255 characters; long lists are in the notes sheet.
            if prompt.chars().count() <= 255 {
                rule = rule.set_input_message(&prompt)?;
            }
            sheet.add_data_validation(1, c, 1_048_575, c, &rule)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    add_notes_sheet(&mut wb)?;
    wb.save_to_buffer()
}

/// Adds the `notes` sheet: each column's name, the question it answers, whether it is
/// required, where it may travel, its values (codes with their words) and a hint. The template
/// and the XLSX export both carry it.
pub fn add_notes_sheet(wb: &mut Workbook) -> Result<(), rust_xlsxwriter::XlsxError> {
    let bold = Format::new().set_bold();
    let notes = wb.add_worksheet().set_name("notes")?;
    for (c, h) in ["column", "label", "required", "tier", "values", "notes"]
        .iter()
        .enumerate()
    {
        notes.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (i, f) in imported().enumerate() {
        let r = i as u32 + 1;
        notes.write_string(r, 0, f.name)?;
        notes.write_string(r, 1, f.label)?;
        notes.write_string(r, 2, if f.required { "yes" } else { "no" })?;
        notes.write_string(r, 3, f.tier.letter())?;
        notes.write_string(r, 4, values(f))?;
        notes.write_string(r, 5, f.help)?;
    }
    notes.set_column_width(0, 24)?;
    notes.set_column_width(1, 40)?;
    notes.set_column_width(4, 60)?;
    notes.set_column_width(5, 80)?;
    Ok(())
}

/// Writes the template named by `path`'s extension (`.csv` or `.xlsx`).
pub fn write_template(path: &Path) -> Result<(), crate::ImportError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bytes = match ext.as_str() {
        "csv" => csv_template().map_err(crate::ImportError::csv("cannot write the template"))?,
        "xlsx" => xlsx_template().map_err(crate::ImportError::xlsx("cannot write the template"))?,
        _ => {
            return Err(crate::ImportError::File(format!(
                "the template file must end in .csv or .xlsx, not '{}'",
                path.display()
            )))
        }
    };
    std::fs::write(path, bytes).map_err(crate::ImportError::write(path))
}
