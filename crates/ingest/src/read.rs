//! Reading spreadsheet rows from CSV (streamed) and XLSX (via calamine), with spreadsheet row
//! numbers (header = row 1) and Excel date cells turned into dates.

use crate::ImportError;
use calamine::{Data, Reader};
use crest_core::Date;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// One data row's spreadsheet row number (its cells are in the caller's buffer), or why it
/// could not be read.
pub type RowResult = Result<usize, (usize, String)>;

/// A source of rows from one file.
pub enum Source {
    /// A CSV file, read as a stream.
    Csv {
        /// The reader.
        reader: csv::Reader<BufReader<File>>,
        /// Reused record buffer.
        record: csv::ByteRecord,
        /// File size in bytes, for progress.
        size: u64,
        /// The header's column names, to name a column in a message.
        names: Vec<String>,
        /// Spreadsheet row number of the last record read (the header is row 1). Counted by
        /// records, not lines: a quoted cell may hold line breaks, and a spreadsheet shows it
        /// in one row.
        row: usize,
    },
    /// One sheet of a workbook, held in memory.
    Sheet {
        /// Data rows after the header.
        rows: std::vec::IntoIter<(usize, Vec<String>)>,
        /// Number of data rows.
        total: usize,
        /// Cells read as empty for a reason worth a warning, by row: (column index, why).
        notes: std::collections::HashMap<usize, Vec<(usize, &'static str)>>,
    },
}

/// Magic numbers of files that are certainly not spreadsheets.
fn sniff(head: &[u8]) -> Option<&'static str> {
    const KNOWN: &[(&[u8], &str)] = &[
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"SQLite format 3", "a SQLite database"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| head.starts_with(m))
        .map(|(_, what)| *what)
}

impl Source {
    /// Opens a file as CSV or as a workbook (by content, not only by extension) and reads its
    /// header row. `sheet` picks a workbook sheet by name (default: the first).
    pub fn open(path: &Path, sheet: Option<&str>) -> Result<(Source, Vec<String>), ImportError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| ImportError::File(format!("cannot read {shown}: {e}"));
        let mut file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut head = [0u8; 4096];
        let n = read_up_to(&mut file, &mut head).map_err(io)?;
        let head = &head[..n];
        if n == 0 {
            return Err(ImportError::File(format!(
                "{shown} is empty: it needs a header row and one row per episode"
            )));
        }
        // Workbooks are zip (xlsx, ods) or OLE (xls) containers.
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"\xD0\xCF\x11\xE0") {
            return open_workbook(path, sheet);
        }
        if let Some(what) = sniff(head) {
            return Err(ImportError::File(format!(
                "{shown} is {what}, not a CSV or XLSX file"
            )));
        }
        if head.iter().filter(|b| **b == 0).count() > 0 {
            return Err(ImportError::File(format!(
                "{shown} is not a CSV or XLSX file (it contains binary data); save it from your spreadsheet as CSV UTF-8 or .xlsx"
            )));
        }
        if sheet.is_some() {
            return Err(ImportError::File(format!(
                "--sheet applies to workbooks, but {shown} is a CSV file"
            )));
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 16, file));
        let mut record = csv::ByteRecord::new();
        let header = match reader.read_byte_record(&mut record) {
            Ok(true) => decode(&record).map_err(|_| {
                ImportError::File(format!(
                    "the header row of {shown} is not UTF-8 text; in Excel use Save As → CSV UTF-8"
                ))
            })?,
            Ok(false) => return Err(ImportError::File(format!("{shown} is empty"))),
            Err(e) => {
                return Err(ImportError::File(format!(
                    "{shown} is not a readable CSV file: {e}"
                )))
            }
        };
        Ok((
            Source::Csv {
                reader,
                record,
                size,
                names: header.clone(),
                row: 1,
            },
            header,
        ))
    }

    /// Fraction of the file read so far (0–1).
    pub fn progress(&self) -> f64 {
        match self {
            Source::Csv { reader, size, .. } => {
                reader.position().byte() as f64 / (*size).max(1) as f64
            }
            Source::Sheet { rows, total, .. } => 1.0 - rows.len() as f64 / (*total).max(1) as f64,
        }
    }

    /// Cells of spreadsheet row `row` that were read as empty though the sheet has something
    /// there (a formula with no saved result, part of a merged cell): (column index, why).
    pub fn notes(&self, row: usize) -> &[(usize, &'static str)] {
        match self {
            Source::Sheet { notes, .. } => notes.get(&row).map_or(&[], Vec::as_slice),
            Source::Csv { .. } => &[],
        }
    }

    /// Reads the next data row into `cells` (reusing its strings), or `None` at the end.
    pub fn next_row(&mut self, cells: &mut Vec<String>) -> Option<RowResult> {
        match self {
            Source::Csv {
                reader,
                record,
                row,
                names,
                ..
            } => {
                *row += 1;
                let row = *row;
                match reader.read_byte_record(record) {
                    Ok(false) => None,
                    Ok(true) => {
                        cells.resize_with(record.len(), String::new);
                        cells.truncate(record.len());
                        for (i, (cell, bytes)) in cells.iter_mut().zip(record.iter()).enumerate() {
                            cell.clear();
                            match std::str::from_utf8(bytes) {
                                // A cell crest wrote as text (`safe_cell`) reads back as it was.
                                Ok(s) => cell.push_str(crest_core::spreadsheet::unguard_cell(s)),
                                Err(_) => {
                                    return Some(Err((
                                        row,
                                        match names.get(i).map(|n| n.trim()).filter(|n| !n.is_empty()) {
                                            Some(name) => format!("column {name} contains characters that are not UTF-8 text; save the file as CSV UTF-8"),
                                            None => format!("column {} (no heading) contains characters that are not UTF-8 text; save the file as CSV UTF-8", i + 1),
                                        },
                                    )))
                                }
                            }
                        }
                        Some(Ok(row))
                    }
                    Err(e) => Some(Err((
                        row,
                        format!("this row could not be read as CSV: {e}"),
                    ))),
                }
            }
            Source::Sheet { rows, .. } => rows.next().map(|(row, mut v)| {
                std::mem::swap(cells, &mut v);
                Ok(row)
            }),
        }
    }
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Decodes a CSV record, or gives the index of the first cell that is not UTF-8.
fn decode(r: &csv::ByteRecord) -> Result<Vec<String>, usize> {
    r.iter()
        .enumerate()
        .map(|(i, b)| std::str::from_utf8(b).map(str::to_string).map_err(|_| i))
        .collect()
}

fn open_workbook(path: &Path, sheet: Option<&str>) -> Result<(Source, Vec<String>), ImportError> {
    let shown = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| ImportError::File(format!("cannot read {shown}: {e}")))?;
    let mut wb =
        calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).map_err(|e| {
            ImportError::File(format!("{shown} is not a readable CSV or XLSX file: {e}"))
        })?;
    let names = wb.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(s))
            .cloned()
            .ok_or_else(|| {
                ImportError::File(format!(
                    "{shown} has no sheet '{s}'; its sheets are: {}",
                    names.join(", ")
                ))
            })?,
        None => names
            .first()
            .cloned()
            .ok_or_else(|| ImportError::File(format!("{shown} has no sheets")))?,
    };
    let range = wb
        .worksheet_range(&name)
        .map_err(|e| ImportError::File(format!("cannot read sheet '{name}' of {shown}: {e}")))?;
    // Cells a user sees but calamine reads as empty: formulas never calculated and saved (a
    // file written by a program, not Excel), and all but the first cell of a merged cell.
    let mut notes: std::collections::HashMap<usize, Vec<(usize, &'static str)>> =
        Default::default();
    if let Ok(formulas) = wb.worksheet_formula(&name) {
        for (r, c, f) in formulas.used_cells() {
            let (r, c) = (
                r + formulas.start().map_or(0, |s| s.0 as usize),
                c + formulas.start().map_or(0, |s| s.1 as usize),
            );
            let empty = match range.get_value((r as u32, c as u32)) {
                None | Some(Data::Empty) => true,
                Some(Data::String(s)) => s.is_empty(),
                _ => false,
            };
            if !f.is_empty() && empty {
                notes.entry(r + 1).or_default().push((
                    c,
                    "a formula with no saved result was read as empty; open the file in Excel and save it, or paste values",
                ));
            }
        }
    }
    if let calamine::Sheets::Xlsx(x) = &mut wb {
        if let Ok(merged) = x.merge_cells_by_sheet_name(&name) {
            for d in merged {
                for r in d.start.0..=d.end.0 {
                    for c in d.start.1..=d.end.1 {
                        if (r, c) != d.start {
                            notes.entry(r as usize + 1).or_default().push((
                                c as usize,
                                "part of a merged cell, read as empty; unmerge the cells and fill each one",
                            ));
                        }
                    }
                }
            }
        }
    }
    let first_row = range.start().map_or(0, |(r, _)| r as usize);
    let first_col = range.start().map_or(0, |(_, c)| c as usize);
    let mut rows = range.rows().enumerate().map(|(i, cells)| {
        // Cells left of the used range are empty; keep column positions as the sheet has them.
        let mut v = vec![String::new(); first_col];
        v.extend(cells.iter().map(cell_text));
        (first_row + i + 1, v)
    });
    let header = rows
        .next()
        .map(|(_, h)| h)
        .ok_or_else(|| ImportError::File(format!("sheet '{name}' of {shown} is empty")))?;
    let data: Vec<(usize, Vec<String>)> = rows.collect();
    let total = data.len();
    Ok((
        Source::Sheet {
            rows: data.into_iter(),
            total,
            notes,
        },
        header,
    ))
}

/// A workbook cell as the text a user would have typed: dates as ISO, whole numbers without
/// a decimal point, errors as Excel shows them.
fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => Date::from_excel_serial(dt.as_f64())
            .map_or_else(|| dt.as_f64().to_string(), |d| d.to_string()),
        Data::DateTimeIso(s) => s.get(..10).unwrap_or(s).to_string(),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => e.to_string(),
    }
}
