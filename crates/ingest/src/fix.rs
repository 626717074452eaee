//! "Rows to fix": the rows of an uploaded file that were rejected, exactly as the file held
//! them (every column, in its own format), with a last column saying what is wrong with each.
//! The user corrects that file and uploads it again; crest does not read the problems column.

use crate::read::Source;
use crate::ImportError;
use crest_core::validate::PROBLEMS_COLUMN;
use std::collections::BTreeMap;
use std::path::Path;

/// The rows to fix, and whether they are a workbook (else CSV).
pub struct RowsToFix {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Written as XLSX (the upload was a workbook) rather than CSV.
    pub xlsx: bool,
    /// How many rows it holds.
    pub rows: usize,
}

/// The rejected rows of the file at `path`, given the import's errors file
/// (`row,column,value,reason`, as [`crate::import_file`] writes it). A FHIR file's rejected
/// episodes come back as CSV rows with crest's columns; `programme` fills in the programme of
/// episodes whose files name none (as the import did).
pub fn rows_to_fix(
    path: &Path,
    errors_csv: &[u8],
    programme: Option<&str>,
) -> Result<RowsToFix, ImportError> {
    let mut problems: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut reader = csv::Reader::from_reader(errors_csv);
    for record in reader.records() {
        let record = record.map_err(ImportError::csv("the errors file cannot be read"))?;
        let Some(row) = record.get(0).and_then(|r| r.parse::<usize>().ok()) else {
            continue;
        };
        let (column, reason) = (record.get(1).unwrap_or(""), record.get(3).unwrap_or(""));
        problems.entry(row).or_default().push(if column.is_empty() {
            reason.to_string()
        } else {
            format!("{column}: {reason}")
        });
    }
    let (mut source, header) = Source::open(path, None)?;
    source.set_default_programme(programme.map(str::to_string));
    let xlsx = matches!(source, Source::Sheet { .. });
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut cells = Vec::new();
    while let Some(next) = source.next_row(&mut cells) {
        let (row, row_cells) = match next {
            Ok(row) => (row, cells.clone()),
            // A row that could not be read at all keeps its place, with its reason.
            Err((row, _)) => (row, Vec::new()),
        };
        if let Some(found) = problems.get(&row) {
            let mut line: Vec<String> = row_cells;
            line.resize(header.len(), String::new());
            line.push(found.join("; "));
            out.push(line);
        }
    }
    let mut head: Vec<String> = header
        .iter()
        .filter(|h| !h.trim().eq_ignore_ascii_case(PROBLEMS_COLUMN))
        .cloned()
        .collect();
    // An upload of an earlier "rows to fix" file: its old problems column gives way to the new.
    if let Some(old) = header
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(PROBLEMS_COLUMN))
    {
        for line in &mut out {
            line.remove(old);
        }
    }
    head.push(PROBLEMS_COLUMN.to_string());
    let rows = out.len();
    let bytes = if xlsx {
        workbook(&head, &out)?
    } else {
        let mut w = csv::Writer::from_writer(Vec::new());
        let e = ImportError::csv("the rows to fix cannot be written");
        w.write_record(&head).map_err(e)?;
        for line in &out {
            w.write_record(
                line.iter()
                    .map(|c| crest_core::spreadsheet::safe_cell(c).into_owned()),
            )
            .map_err(e)?;
        }
        w.into_inner()
            .map_err(|x| e(csv::Error::from(x.into_error())))?
    };
    Ok(RowsToFix { bytes, xlsx, rows })
}

/// The rows as one sheet of text cells (never formulas), the problems column wide and red.
fn workbook(head: &[String], lines: &[Vec<String>]) -> Result<Vec<u8>, ImportError> {
    use rust_xlsxwriter::{Format, Workbook};
    let e = ImportError::xlsx("the rows to fix cannot be written");
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let problem = Format::new().set_font_color("#B10E1E").set_text_wrap();
    let sheet = wb.add_worksheet().set_name("episodes").map_err(e)?;
    for (c, h) in head.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, h, &bold)
            .map_err(e)?;
    }
    let last = head.len().saturating_sub(1) as u16;
    for (r, line) in lines.iter().enumerate() {
        for (c, cell) in line.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            if c == last {
                sheet
                    .write_string_with_format(r, c, cell, &problem)
                    .map_err(e)?;
            } else {
                sheet.write_string(r, c, cell).map_err(e)?;
            }
        }
    }
    sheet.set_column_width(last, 80).map_err(e)?;
    sheet.set_freeze_panes(1, 0).map_err(e)?;
    wb.save_to_buffer().map_err(e)
}
