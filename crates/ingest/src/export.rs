//! Episode exports for a programme's own use (identifiable): CSV and XLSX with the import's
//! columns, so an exported file can be edited and imported again.

use crest_core::spreadsheet::safe_cell;
use crest_core::{Record, Value, FIELDS};
use rust_xlsxwriter::{Format, Workbook};

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing CSV failed.
    #[error("cannot write the export: {0}")]
    Csv(#[from] csv::Error),
    /// Writing the workbook failed.
    #[error("cannot write the export: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

impl<W> From<csv::IntoInnerError<W>> for ExportError {
    fn from(e: csv::IntoInnerError<W>) -> ExportError {
        ExportError::Csv(e.into_error().into())
    }
}

fn imported() -> impl Iterator<Item = &'static crest_core::Field> {
    FIELDS.iter().filter(|f| f.imported())
}

/// The episodes as CSV: the header row, then one row per episode (ISO dates). A text that a
/// spreadsheet would run as a formula is written as text (`crest_core::spreadsheet`); the
/// import reads it back as it was.
pub fn csv_bytes(records: &[Record]) -> Result<Vec<u8>, ExportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(imported().map(|f| f.name))?;
    for r in records {
        w.write_record(imported().map(|f| safe_cell(&r.get(f.col).to_text()).into_owned()))?;
    }
    Ok(w.into_inner()?)
}

/// Days from Excel's day 0 (1899-12-30) to 1970-01-01.
const EXCEL_EPOCH_OFFSET: f64 = 25_569.0;

/// The episodes as an XLSX workbook: an `episodes` sheet with dates as real date cells and
/// numbers as numbers; codes, identifiers and yes/no values as text (string cells, which a
/// spreadsheet never runs as formulas, whatever they start with); and the `notes` sheet saying
/// what each column means, in the dictionary's words.
pub fn xlsx_bytes(records: &[Record]) -> Result<Vec<u8>, ExportError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let sheet = wb.add_worksheet().set_name("episodes")?;
    for (i, f) in imported().enumerate() {
        let c = i as u16;
        sheet.write_string_with_format(0, c, f.name, &bold)?;
        sheet.set_column_width(c, (f.name.len() as f64 + 2.0).max(12.0))?;
    }
    for (row, r) in records.iter().enumerate() {
        let row = row as u32 + 1;
        for (i, f) in imported().enumerate() {
            let c = i as u16;
            match r.get(f.col) {
                Value::Null => {}
                Value::Date(d) => {
                    let serial = f64::from(d.days()) + EXCEL_EPOCH_OFFSET;
                    sheet.write_number_with_format(row, c, serial, &date)?;
                }
                Value::Int(n) => {
                    sheet.write_number(row, c, *n as f64)?;
                }
                Value::Num(x) => {
                    sheet.write_number(row, c, *x)?;
                }
                v => {
                    sheet.write_string(row, c, v.to_text())?;
                }
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    crate::template::add_notes_sheet(&mut wb)?;
    Ok(wb.save_to_buffer()?)
}

/// Any table as an XLSX workbook of one sheet: a bold header row, numbers as numbers and every
/// other cell as text (a string cell, which a spreadsheet never runs as a formula).
pub fn table_xlsx(
    sheet_name: &str,
    columns: &[String],
    rows: &[Vec<String>],
) -> Result<Vec<u8>, ExportError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let sheet = wb.add_worksheet().set_name(sheet_name)?;
    for (i, c) in columns.iter().enumerate() {
        sheet.write_string_with_format(0, i as u16, c, &bold)?;
        sheet.set_column_width(i as u16, (c.chars().count() as f64 + 2.0).max(10.0))?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match cell.parse::<f64>() {
                Ok(x) if x.is_finite() => sheet.write_number(r, c, x)?,
                _ => sheet.write_string(r, c, cell)?,
            };
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(wb.save_to_buffer()?)
}

/// Any table as CSV, spreadsheet formulas neutralised.
pub fn table_csv(columns: &[String], rows: &[Vec<String>]) -> Result<Vec<u8>, ExportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(columns)?;
    for r in rows {
        w.write_record(r.iter().map(|c| safe_cell(c).into_owned()))?;
    }
    Ok(w.into_inner()?)
}
