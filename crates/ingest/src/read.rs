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
    /// One sheet of a workbook. Its header row is read first, alone; the rest only when the
    /// first data row is asked for (after the caller has checked the header).
    Sheet {
        /// The workbook, read part by part from the file.
        book: Box<calamine::Xlsx<BufReader<File>>>,
        /// The sheet's name.
        name: String,
        /// The file as people name it, for messages.
        shown: String,
        /// Data rows after the header, once read.
        rows: Option<std::vec::IntoIter<(usize, Vec<String>)>>,
        /// Number of data rows, once read.
        total: usize,
        /// Cells read as empty for a reason worth a warning, by row: (column index, why).
        notes: std::collections::HashMap<usize, Vec<(usize, &'static str)>>,
    },
    /// Episodes assembled from FHIR JSON files (a Bundle, or bulk-export NDJSON).
    Fhir {
        /// The episodes.
        source: Box<crate::fhir::FhirSource>,
        /// Number of the last episode served (the FHIR import's "row").
        row: usize,
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
        if path.is_dir() || crate::fhir::is_fhir(path) {
            return Source::open_fhir(&[path.to_path_buf()], &mut |_| {});
        }
        let shown = path.display().to_string();
        let io = |source: std::io::Error| ImportError::Read {
            path: shown.clone(),
            source,
        };
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
        // Workbooks are zip (xlsx) containers; the older Excel format is OLE.
        if head.starts_with(b"PK\x03\x04") {
            return open_workbook(path, sheet);
        }
        if head.starts_with(b"\xD0\xCF\x11\xE0") {
            return Err(ImportError::File(format!(
                "{shown} is in the older Excel format (.xls); open it in Excel and save it as .xlsx or CSV UTF-8"
            )));
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

    /// Opens FHIR JSON files (or folders of them) as one source of episodes. Reading them is
    /// the first 70% of `progress`.
    pub fn open_fhir(
        paths: &[std::path::PathBuf],
        progress: &mut dyn FnMut(f64),
    ) -> Result<(Source, Vec<String>), ImportError> {
        let mut files = Vec::new();
        for p in paths {
            files.extend(crate::fhir::expand(p)?);
        }
        let source = crate::fhir::FhirSource::open(&files, &mut |f| progress(f * 0.7))?;
        Ok((
            Source::Fhir {
                source: Box::new(source),
                row: 0,
            },
            crate::fhir::assemble::header(),
        ))
    }

    /// Whether the rows are episodes assembled from FHIR.
    pub fn is_fhir(&self) -> bool {
        matches!(self, Source::Fhir { .. })
    }

    /// Warnings about the file as a whole (a FHIR file's ignored resources, say).
    pub fn file_notes(&self) -> Vec<String> {
        match self {
            Source::Fhir { source, .. } => source.notes().to_vec(),
            _ => Vec::new(),
        }
    }

    /// The programme of FHIR episodes whose files name none.
    pub fn set_default_programme(&mut self, p: Option<String>) {
        if let Source::Fhir { source, .. } = self {
            source.set_default_programme(p);
        }
    }

    /// Says a checked row's problems against where its cells came from (FHIR resources and
    /// elements); a spreadsheet's columns already say it.
    pub fn explain(&mut self, checked: &mut crest_core::validate::Checked) {
        if let Source::Fhir { source, .. } = self {
            source.explain(checked);
        }
    }

    /// Fraction of the file read so far (0–1).
    pub fn progress(&self) -> f64 {
        match self {
            Source::Fhir { source, .. } => 0.7 + 0.3 * source.progress(),
            Source::Csv { reader, size, .. } => {
                reader.position().byte() as f64 / (*size).max(1) as f64
            }
            Source::Sheet {
                rows: Some(rows),
                total,
                ..
            } => 1.0 - rows.len() as f64 / (*total).max(1) as f64,
            Source::Sheet { rows: None, .. } => 0.0,
        }
    }

    /// Cells of spreadsheet row `row` that were read as empty though the sheet has something
    /// there (a formula with no saved result, part of a merged cell): (column index, why).
    pub fn notes(&self, row: usize) -> &[(usize, &'static str)] {
        match self {
            Source::Sheet { notes, .. } => notes.get(&row).map_or(&[], Vec::as_slice),
            Source::Csv { .. } | Source::Fhir { .. } => &[],
        }
    }

    /// Reads the next data row into `cells` (reusing its strings), or `None` at the end.
    pub fn next_row(&mut self, cells: &mut Vec<String>) -> Option<RowResult> {
        match self {
            Source::Fhir { source, row } => {
                let next = source.next_row(cells)?;
                *row += 1;
                Some(next.map(|()| *row).map_err(|why| (*row, why.to_string())))
            }
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
                                Ok(s) if s.len() > MAX_CELL_BYTES => {
                                    return Some(Err((row, too_long(names.get(i), i))))
                                }
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
            Source::Sheet {
                book,
                name,
                shown,
                rows,
                total,
                notes,
            } => {
                if rows.is_none() {
                    match read_sheet(book, name, false) {
                        Ok((all, found)) => {
                            // The header row was read (and checked) already.
                            let data: Vec<_> = all.into_iter().skip(1).collect();
                            *total = data.len();
                            *notes = found;
                            *rows = Some(data.into_iter());
                        }
                        Err(m) => {
                            *rows = Some(Vec::new().into_iter());
                            return Some(Err((0, format!("{shown}: {m}"))));
                        }
                    }
                }
                rows.as_mut()?.next().map(|(row, mut v)| {
                    std::mem::swap(cells, &mut v);
                    Ok(row)
                })
            }
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

/// Longest cell read, in bytes: no field of the dataset comes near it, and a longer cell is
/// refused at read time rather than kept (an upload preview keeps what it read).
pub const MAX_CELL_BYTES: usize = 10_000;

/// The message for a cell over [`MAX_CELL_BYTES`].
fn too_long(name: Option<&String>, i: usize) -> String {
    let column = match name.map(|n| n.trim()).filter(|n| !n.is_empty()) {
        Some(n) => format!("column {n}"),
        None => format!("column {} (no heading)", i + 1),
    };
    format!("{column} holds more than {MAX_CELL_BYTES} characters; no field is that long, so check the file")
}

/// Rewrites a CSV file holding a cell over [`MAX_CELL_BYTES`] with each such cell cut to just
/// over the limit: read again, the same rows are refused for the same reason, but the file
/// kept for an upload's confirmation no longer holds the whole cell. Whether it rewrote
/// anything. Workbooks are left as they are (one with such a cell is refused whole).
pub fn clip_overlong_cells(path: &Path) -> Result<bool, ImportError> {
    use std::os::unix::fs::OpenOptionsExt;
    // FHIR JSON is not CSV: rewriting it as CSV would break it, and it is read resource by
    // resource with its own bound on a line.
    if crate::fhir::is_fhir(path) {
        return Ok(false);
    }
    let io = |source: std::io::Error| ImportError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut head = [0u8; 4];
    let mut f = File::open(path).map_err(io)?;
    let n = read_up_to(&mut f, &mut head).map_err(io)?;
    if head[..n].starts_with(b"PK") {
        return Ok(false);
    }
    let reader = || {
        File::open(path).map(|f| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(BufReader::with_capacity(1 << 16, f))
        })
    };
    let mut r = reader().map_err(io)?;
    let mut record = csv::ByteRecord::new();
    let mut long = false;
    while r.read_byte_record(&mut record).unwrap_or(false) {
        if record.iter().any(|c| c.len() > MAX_CELL_BYTES) {
            long = true;
            break;
        }
    }
    if !long {
        return Ok(false);
    }
    let clipped = path.with_extension("clipped");
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&clipped)
        .map_err(io)?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(out));
    let mut r = reader().map_err(io)?;
    let written = (|| -> Result<(), csv::Error> {
        while r.read_byte_record(&mut record)? {
            let cells: Vec<&[u8]> = record
                .iter()
                .map(|c| {
                    if c.len() <= MAX_CELL_BYTES {
                        return c;
                    }
                    // Just over the limit, ending on a character's boundary where the cell is
                    // text, so it is refused as too long (not as not UTF-8).
                    let mut end = MAX_CELL_BYTES + 1;
                    while end < c.len() && (c[end] & 0b1100_0000) == 0b1000_0000 {
                        end += 1;
                    }
                    &c[..end]
                })
                .collect();
            w.write_record(&cells)?;
        }
        w.flush()?;
        Ok(())
    })();
    drop(w);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&clipped);
        return Err(ImportError::csv("cannot rewrite the file")(e));
    }
    std::fs::rename(&clipped, path).map_err(io)?;
    Ok(true)
}

/// Largest part of a workbook unpacked, in bytes (a sheet's XML, say). Larger workbooks are
/// read as CSV, which streams.
const MAX_PART_BYTES: u64 = 64 << 20;
/// Largest shared-string table unpacked: it is held in memory while the sheet is read.
const MAX_SHARED_STRINGS_BYTES: u64 = 32 << 20;
/// Largest workbook unpacked, all parts together.
const MAX_UNPACKED_BYTES: u64 = 160 << 20;
/// Highest compression ratio of a part over 1 MB; spreadsheets pack far less tightly than
/// decompression bombs.
const MAX_RATIO: u64 = 100;
/// Most parts in one workbook.
const MAX_PARTS: usize = 5_000;
/// Most merged-cell warnings noted for one sheet.
const MAX_MERGED_NOTES: usize = 100_000;
/// Columns read; a cell further right refuses the file (the dataset has under 100 columns).
pub const MAX_COLUMNS: u32 = 1_000;

/// Checks a zip container before anything unpacks it: how many parts, their declared sizes and
/// ratios, and what each really unpacks to (declared sizes can lie), each read to a counter
/// and stopped just past its limit. Memory stays small whatever the file holds.
fn check_archive(path: &Path, shown: &str) -> Result<(), ImportError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        ImportError::File(format!("{shown} is not a readable XLSX file: {e}"))
    };
    let file = File::open(path).map_err(|e| unreadable(&e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| unreadable(&e))?;
    if zip.len() > MAX_PARTS {
        return Err(ImportError::File(format!(
            "{shown} has {} parts inside, more than a workbook of episodes needs ({MAX_PARTS}); save it as CSV UTF-8",
            zip.len()
        )));
    }
    let too_big = |part: &str| {
        ImportError::File(format!(
            "{shown} is too large to read as a workbook (its part {part} unpacks to more than crest reads from one workbook); save it as CSV UTF-8, which crest reads at any size"
        ))
    };
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(|e| unreadable(&e))?;
        let name =
            crest_core::validate::shown(&part.name().map(|n| n.into_owned()).unwrap_or_default());
        let cap = if name.ends_with("sharedStrings.xml") {
            MAX_SHARED_STRINGS_BYTES
        } else {
            MAX_PART_BYTES
        };
        let (declared, packed) = (part.size(), part.compressed_size().max(1));
        if declared > 1 << 20 && declared / packed > MAX_RATIO {
            return Err(ImportError::File(format!(
                "{shown} is not an ordinary workbook: its part {name} unpacks {} times larger than it is stored, as a decompression bomb does; it was not opened",
                declared / packed
            )));
        }
        if declared > cap {
            return Err(too_big(&name));
        }
        let real = std::io::copy(&mut (&mut part).take(cap + 1), &mut std::io::sink())
            .map_err(|e| unreadable(&e))?;
        if real > cap {
            return Err(too_big(&name));
        }
        total += real;
        if total > MAX_UNPACKED_BYTES {
            return Err(too_big(&name));
        }
    }
    Ok(())
}

fn open_workbook(path: &Path, sheet: Option<&str>) -> Result<(Source, Vec<String>), ImportError> {
    let shown = path.display().to_string();
    check_archive(path, &shown)?;
    let file = File::open(path).map_err(ImportError::read(path))?;
    let mut book: calamine::Xlsx<BufReader<File>> =
        calamine::Reader::new(BufReader::new(file)).map_err(|e| {
            ImportError::File(format!(
                "{shown} is not a readable XLSX file ({e}); save it from your spreadsheet as .xlsx or CSV UTF-8"
            ))
        })?;
    let names = book.sheet_names();
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
    // The header row alone: the caller checks it before the rest is read.
    let (first, _) = read_sheet(&mut book, &name, true)
        .map_err(|m| ImportError::File(format!("cannot read sheet '{name}' of {shown}: {m}")))?;
    let header = first
        .into_iter()
        .next()
        .map(|(_, h)| h)
        .ok_or_else(|| ImportError::File(format!("sheet '{name}' of {shown} is empty")))?;
    Ok((
        Source::Sheet {
            book: Box::new(book),
            name,
            shown,
            rows: None,
            total: 0,
            notes: Default::default(),
        },
        header,
    ))
}

/// Reads a sheet's rows as a stream of cells (only the first row with `header_only`): each
/// row with its spreadsheet number, cells at their column positions, and the cells read as
/// empty for a reason worth a warning. Never builds a grid the size of the sheet's extent, so
/// two cells far apart cost two cells.
#[allow(clippy::type_complexity)]
fn read_sheet(
    book: &mut calamine::Xlsx<BufReader<File>>,
    name: &str,
    header_only: bool,
) -> Result<
    (
        Vec<(usize, Vec<String>)>,
        std::collections::HashMap<usize, Vec<(usize, &'static str)>>,
    ),
    String,
> {
    let mut notes: std::collections::HashMap<usize, Vec<(usize, &'static str)>> =
        Default::default();
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    {
        let mut reader = book
            .worksheet_cells_reader(name)
            .map_err(|e| e.to_string())?;
        while let Some(cell) = reader
            .next_cell_with_formula_metadata()
            .map_err(|e| e.to_string())?
        {
            let (r, c) = cell.pos;
            let value = Data::from(cell.value);
            let text = cell_text(&value);
            let formula_without_result = cell.formula.is_some() && text.is_empty();
            if text.is_empty() && !formula_without_result {
                continue;
            }
            if c >= MAX_COLUMNS {
                return Err(format!(
                    "it has a cell in column {}, beyond the {MAX_COLUMNS} columns crest reads; delete what is right of the dataset's columns",
                    c + 1
                ));
            }
            let row = r as usize + 1;
            if rows.last().map(|(n, _)| *n) != Some(row) {
                if header_only && !rows.is_empty() {
                    break;
                }
                rows.push((row, Vec::new()));
            }
            if formula_without_result {
                notes.entry(row).or_default().push((
                    c as usize,
                    "a formula with no saved result was read as empty; open the file in Excel and save it, or paste values",
                ));
                continue;
            }
            if text.len() > MAX_CELL_BYTES {
                return Err(format!(
                    "row {row}: {}",
                    too_long(
                        rows.first().and_then(|(_, h)| h.get(c as usize)),
                        c as usize
                    )
                ));
            }
            if let Some((_, cells)) = rows.last_mut() {
                if cells.len() <= c as usize {
                    cells.resize(c as usize + 1, String::new());
                }
                cells[c as usize] = text;
            }
        }
    }
    if !header_only {
        // All but the first cell of a merged cell read as empty; only cells within the
        // columns read are noted, and a merged area over the whole sheet costs no more.
        let last_row = rows.last().map_or(0, |(n, _)| *n as u32);
        let mut noted = 0usize;
        if let Ok(merged) = book.merge_cells_by_sheet_name(name) {
            for d in merged {
                for r in d.start.0..=d.end.0.min(last_row) {
                    for c in d.start.1..=d.end.1.min(MAX_COLUMNS - 1) {
                        noted += 1;
                        if noted > MAX_MERGED_NOTES {
                            return Ok((rows, notes));
                        }
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
    Ok((rows, notes))
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
