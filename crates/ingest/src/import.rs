//! The atomic, idempotent import of one file of episodes into a store. The command line, the
//! web upload and the API all call [`import_file`].
//!
//! One transaction per file: without `skip_invalid`, a file with any rejected row changes
//! nothing. Rows are streamed, so memory stays flat whatever the file size, apart from the
//! keys needed to spot duplicates.

use crate::hash::Fx;
use crate::read::Source;
use crate::ImportError;
use crest_core::spreadsheet::safe_cell;
use crest_core::validate::cross_check;
use crest_core::{check_row, Col, Date, Header, Issue, Record};
use crest_store::{ImportTx, Store};
use hashbrown::hash_map::EntryRef;
use hashbrown::HashTable;
use std::collections::HashSet;
use std::hash::Hasher;
use std::io::Write;
use std::path::Path;

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Validate and report, store nothing.
    pub dry_run: bool,
    /// Store the valid rows even when some are rejected.
    pub skip_invalid: bool,
    /// Accept probable duplicates (same NHS number and event date under another id).
    pub allow_duplicates: bool,
    /// Workbook sheet to read (default: the first).
    pub sheet: Option<String>,
    /// No date may be after this.
    pub today: Date,
    /// How many row problems to keep in memory for display (all go to the errors file).
    pub keep_issues: usize,
    /// Accept only rows of this programme (a programme's own upload page).
    pub only_programme: Option<String>,
    /// Where every warning goes as CSV (`row,column,value,reason`), when wanted.
    pub warnings_file: Option<std::path::PathBuf>,
    /// The programme of FHIR episodes whose files do not name one (else the programme of the
    /// upload page, else the store's only programme).
    pub programme: Option<String>,
    /// The access-log entry of a stored import (its detail becomes the counts); written in the
    /// import's own transaction, so the rows are never stored without it.
    pub log: Option<crest_store::AccessEntry>,
}

impl ImportOptions {
    /// Defaults: all-or-nothing, first sheet, keep 1,000 problems for display.
    pub fn new(today: Date) -> ImportOptions {
        ImportOptions {
            dry_run: false,
            skip_invalid: false,
            allow_duplicates: false,
            sheet: None,
            today,
            keep_issues: 1000,
            only_programme: None,
            warnings_file: None,
            programme: None,
            log: None,
        }
    }
}

/// A problem with one cell of one row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowIssue {
    /// Spreadsheet row number (header = 1).
    pub row: usize,
    /// Column, value and reason.
    pub issue: Issue,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Data rows in the file (blank rows and the template's notes row are not rows).
    pub rows: usize,
    /// New episodes.
    pub imported: usize,
    /// Changed episodes.
    pub updated: usize,
    /// Episodes already stored exactly so.
    pub unchanged: usize,
    /// Rows rejected.
    pub rejected: usize,
    /// Blank rows ignored.
    pub blank: usize,
    /// Rejection reasons (the first `keep_issues`; every one goes to the errors writer).
    pub errors: Vec<RowIssue>,
    /// Number of rejection reasons in all.
    pub error_count: usize,
    /// Warnings that did not reject their row (the first `keep_issues`).
    pub warnings: Vec<RowIssue>,
    /// Number of warnings in all.
    pub warning_count: usize,
    /// Warnings by column (by dataset field, see [`summary_column`]): how many, and the first
    /// one (for a summary on the terminal).
    pub warnings_by_column: std::collections::BTreeMap<String, (usize, RowIssue)>,
    /// Warnings about the columns.
    pub header_warnings: Vec<String>,
    /// Whether the changes were committed.
    pub committed: bool,
    /// The rows were episodes assembled from FHIR resources (numbered in the order assembled).
    pub fhir: bool,
}

impl ImportSummary {
    /// The counts in one line, for the access log: `3 rows: 1 new, 0 updated, 1 unchanged, 1 rejected`.
    pub fn counts(&self) -> String {
        format!(
            "{} rows: {} new, {} updated, {} unchanged, {} rejected",
            self.rows, self.imported, self.updated, self.unchanged, self.rejected
        )
    }
}

/// What is known of one episode id during an import.
struct Seen {
    /// The episode id is `Known::ids[id_start..id_start + id_len]`.
    id_start: u32,
    id_len: u16,
    /// Stored before this import.
    stored: bool,
    /// Row of this file that carried it (0: none).
    row: u32,
    /// NHS number (ten digits fit a u64: no string per episode).
    nhs: u64,
    /// Event date.
    event: Date,
}

/// What is known of each programme's episodes during an import, by programme code.
type Programmes = hashbrown::HashMap<String, Known, std::hash::BuildHasherDefault<Fx>>;

/// What is known of one programme's episodes during an import: just enough to spot
/// duplicates. Ids live in one string and the two indexes hold only positions, so memory
/// grows by about 50 bytes per episode, never by whole rows.
#[derive(Default)]
struct Known {
    ids: String,
    seen: Vec<Seen>,
    /// Positions in `seen`, by episode id.
    by_id: HashTable<u32>,
    /// Positions in `seen`, by (NHS number, event date): the first episode with that pair.
    by_event: HashTable<u32>,
}

fn hash_id(id: &str) -> u64 {
    let mut h = Fx::default();
    h.write(id.as_bytes());
    h.finish()
}

fn hash_event(nhs: u64, event: Date) -> u64 {
    let mut h = Fx::default();
    h.add(nhs);
    h.add(event.days() as u64);
    h.finish()
}

impl Known {
    fn id(&self, s: &Seen) -> &str {
        let start = s.id_start as usize;
        &self.ids[start..start + usize::from(s.id_len)]
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.by_id
            .find(hash_id(id), |&i| self.id(&self.seen[i as usize]) == id)
            .map(|&i| i as usize)
    }

    /// The id of the first episode with this NHS number and event date.
    fn with_event(&self, nhs: u64, event: Date) -> Option<&str> {
        self.by_event
            .find(hash_event(nhs, event), |&i| {
                let s = &self.seen[i as usize];
                (s.nhs, s.event) == (nhs, event)
            })
            .map(|&i| self.id(&self.seen[i as usize]))
    }

    /// Records an episode id (new, or again with a possibly changed NHS number or event date).
    fn record(&mut self, id: &str, nhs: u64, event: Date, stored: bool, row: u32) {
        let i = match self.find(id) {
            Some(i) => {
                let old = (self.seen[i].nhs, self.seen[i].event);
                if old != (nhs, event) {
                    if let Ok(e) = self
                        .by_event
                        .find_entry(hash_event(old.0, old.1), |&j| j as usize == i)
                    {
                        e.remove();
                    }
                }
                let s = &mut self.seen[i];
                (s.nhs, s.event, s.stored, s.row) = (nhs, event, stored, row);
                i
            }
            None => {
                let i = self.seen.len();
                self.seen.push(Seen {
                    id_start: self.ids.len() as u32,
                    id_len: id.len().min(usize::from(u16::MAX)) as u16,
                    stored,
                    row,
                    nhs,
                    event,
                });
                self.ids.push_str(id);
                let seen = &self.seen;
                self.by_id.insert_unique(hash_id(id), i as u32, |&j| {
                    let s = &seen[j as usize];
                    let start = s.id_start as usize;
                    hash_id(&self.ids[start..start + usize::from(s.id_len)])
                });
                i
            }
        };
        if self.with_event(nhs, event).is_none() {
            let seen = &self.seen;
            self.by_event
                .insert_unique(hash_event(nhs, event), i as u32, |&j| {
                    let s = &seen[j as usize];
                    hash_event(s.nhs, s.event)
                });
        }
    }
}

fn nhs_key(nhs: &str) -> u64 {
    nhs.parse().unwrap_or(u64::MAX)
}

/// Errors go to the errors writer as CSV: `row,column,value,reason`.
pub type ErrorSink<'a> = Option<&'a mut csv::Writer<Box<dyn Write>>>;

/// Imports one file into `store`. `progress` is called now and then with the fraction read.
pub fn import_file(
    store: &mut dyn Store,
    path: &Path,
    opts: &ImportOptions,
    errors_out: ErrorSink<'_>,
    progress: &mut dyn FnMut(f64),
) -> Result<ImportSummary, ImportError> {
    import_files(store, &[path.to_path_buf()], opts, errors_out, progress)
}

/// Imports files that together make one import: one CSV or XLSX file, or FHIR JSON files
/// (bulk-export NDJSON, one file per resource type, or folders of them) read as one.
pub fn import_files(
    store: &mut dyn Store,
    paths: &[std::path::PathBuf],
    opts: &ImportOptions,
    mut errors_out: ErrorSink<'_>,
    progress: &mut dyn FnMut(f64),
) -> Result<ImportSummary, ImportError> {
    let path = paths
        .first()
        .ok_or_else(|| ImportError::File("no file to import".into()))?;
    let fhir = paths.len() > 1 || path.is_dir() || crate::fhir::is_fhir(path);
    let (mut source, header_cells) = if fhir {
        Source::open_fhir(paths, progress)?
    } else {
        Source::open(path, opts.sheet.as_deref())?
    };
    let header = Header::parse(&header_cells)?;
    let programmes = store.programmes()?;
    let registered: HashSet<String> = programmes.iter().map(|p| p.code.clone()).collect();
    let only = (programmes.len() == 1).then(|| programmes[0].code.clone());
    source.set_default_programme(
        opts.programme
            .clone()
            .or_else(|| opts.only_programme.clone())
            .or(only),
    );
    let mut sum = ImportSummary {
        header_warnings: header.warnings(),
        fhir,
        ..Default::default()
    };
    sum.header_warnings.extend(source.file_notes());
    let mut warnings_out = match &opts.warnings_file {
        Some(p) => {
            let f = std::fs::File::create(p).map_err(ImportError::write(p))?;
            let mut w = csv::Writer::from_writer(std::io::BufWriter::new(f));
            w.write_record(["row", "column", "value", "reason"])
                .map_err(ImportError::errors_file)?;
            Some(w)
        }
        None => None,
    };
    let mut tx = store.begin()?;
    let mut known = Programmes::default();
    if let Some(w) = errors_out.as_deref_mut() {
        w.write_record(["row", "column", "value", "reason"])
            .map_err(ImportError::errors_file)?;
    }
    // Reading and validating (pure) runs on a second thread while this one writes to the
    // store; the bounded channel keeps memory flat.
    std::thread::scope(|scope| -> Result<(), ImportError> {
        let (send, batches) = std::sync::mpsc::sync_channel::<(Vec<Parsed>, f64)>(8);
        // Batches stored go back to the validating thread to be freed there: this thread,
        // the store's writer, is the busier of the two.
        let (spent, spent_batches) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(8);
        let header = &header;
        let names = &header_cells;
        scope.spawn(move || read_and_check(source, header, names, opts.today, send, spent_batches));
        for (mut batch, fraction) in batches {
            progress(fraction);
            for parsed in batch.iter_mut() {
                let outcome = match parsed {
                    Parsed::Blank => {
                        sum.blank += 1;
                        continue;
                    }
                    Parsed::Unreadable(row, reason) => Err((
                        *row,
                        vec![Issue {
                            column: String::new(),
                            value: String::new(),
                            message: std::mem::take(reason),
                        }],
                    )),
                    Parsed::Checked(row, checked) => {
                        let row = *row;
                        for w in &checked.warnings {
                            let e = sum
                                .warnings_by_column
                                .entry(summary_column(&w.column).to_string())
                                .or_insert_with(|| {
                                    (
                                        0,
                                        RowIssue {
                                            row,
                                            issue: w.clone(),
                                        },
                                    )
                                });
                            e.0 += 1;
                            if let Some(f) = warnings_out.as_mut() {
                                f.write_record([
                                    row.to_string().as_str(),
                                    &safe_cell(&w.column),
                                    &safe_cell(&w.value),
                                    &safe_cell(&w.message),
                                ])
                                .map_err(ImportError::errors_file)?;
                            }
                        }
                        keep(
                            &mut sum.warnings,
                            &mut sum.warning_count,
                            opts.keep_issues,
                            row,
                            std::mem::take(&mut checked.warnings),
                        );
                        match checked.record.as_mut() {
                            None => Err((row, std::mem::take(&mut checked.errors))),
                            Some(rec) => store_row(
                                tx.as_mut(),
                                rec,
                                row,
                                &registered,
                                &mut known,
                                opts,
                                &mut sum,
                            )?
                            .map_err(|e| (row, e)),
                        }
                    }
                };
                sum.rows += 1;
                if let Err((row, errs)) = outcome {
                    sum.rejected += 1;
                    if let Some(w) = errors_out.as_deref_mut() {
                        for e in &errs {
                            w.write_record([
                                row.to_string().as_str(),
                                &safe_cell(&e.column),
                                &safe_cell(&e.value),
                                &safe_cell(&e.message),
                            ])
                            .map_err(ImportError::errors_file)?;
                        }
                    }
                    keep(
                        &mut sum.errors,
                        &mut sum.error_count,
                        opts.keep_issues,
                        row,
                        errs,
                    );
                }
            }
            // Once the validating thread has finished, the rest are freed here.
            let _ = spent.try_send(batch);
        }
        Ok(())
    })?;
    progress(1.0);
    if sum.rows == 0 && fhir {
        return Err(ImportError::File(format!(
            "the FHIR file holds no episodes: an episode starts with a Condition crest maps to an initiating event (see `crest fhir mapping`){}",
            if sum.header_warnings.is_empty() {
                String::new()
            } else {
                format!(". {}", sum.header_warnings.join(". "))
            }
        )));
    }
    if sum.rows == 0 {
        return Err(ImportError::File(format!(
            "{} has a header row but no episode rows; add one row per episode under the headings",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        )));
    }
    if let Some(mut w) = warnings_out {
        w.flush().map_err(|source| ImportError::Write {
            path: "the warnings file".into(),
            source,
        })?;
    }
    if let Some(w) = errors_out {
        w.flush().map_err(|source| ImportError::Write {
            path: "the errors file".into(),
            source,
        })?;
    }
    if !opts.dry_run && (sum.rejected == 0 || opts.skip_invalid) {
        if let Some(entry) = &opts.log {
            let mut entry = entry.clone();
            entry.detail = sum.counts();
            tx.log(&entry)?;
        }
        tx.commit()?;
        sum.committed = true;
    }
    Ok(sum)
}

/// The column a warning is counted under in the summary by column: its dataset field. A
/// warning from a FHIR import names the resource first ("Observation/o1 valueQuantity
/// (a1_weight_kg)"); counted as it is, every resource would be a column of its own.
pub fn summary_column(column: &str) -> &str {
    column
        .strip_suffix(')')
        .and_then(|c| c.rsplit_once(" ("))
        .map(|(_, field)| field)
        .filter(|field| crest_core::dataset::field_by_name(field).is_some())
        .unwrap_or(column)
}

/// A row as the validating thread hands it over.
enum Parsed {
    /// A blank row or the template's notes row: not an episode.
    Blank,
    /// A row that could not be read (e.g. not UTF-8).
    Unreadable(usize, String),
    /// A row checked against the dataset.
    Checked(usize, crest_core::Checked),
}

/// Reads and checks rows in batches until the file ends or the receiver goes away.
fn read_and_check(
    mut source: Source,
    header: &Header,
    names: &[String],
    today: Date,
    send: std::sync::mpsc::SyncSender<(Vec<Parsed>, f64)>,
    spent: std::sync::mpsc::Receiver<Vec<Parsed>>,
) {
    const BATCH: usize = 512;
    let mut cells: Vec<String> = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let column = |i: usize| match names.get(i).map(|n| n.trim()).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => format!("column {} (no heading)", i + 1),
    };
    while let Some(next) = source.next_row(&mut cells) {
        batch.push(match next {
            Err((row, reason)) => Parsed::Unreadable(row, reason),
            Ok(_) if cells.iter().all(|c| c.trim().is_empty()) || is_notes_row(&cells) => {
                Parsed::Blank
            }
            Ok(row) => {
                let mut checked = check_row(header, &cells, today);
                source.explain(&mut checked);
                // What the file holds but the import cannot use is said, never dropped quietly.
                for (i, cell) in cells.iter().enumerate().skip(names.len()) {
                    if !cell.trim().is_empty() {
                        checked.warnings.push(Issue {
                            column: format!("column {} (no heading)", i + 1),
                            value: crest_core::validate::shown(cell),
                            message: "a value beyond the last heading was ignored; give the column a heading or remove the value".into(),
                        });
                    }
                }
                for (i, why) in source.notes(row) {
                    checked.warnings.push(Issue {
                        column: column(*i),
                        value: String::new(),
                        message: (*why).to_string(),
                    });
                }
                Parsed::Checked(row, checked)
            }
        });
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if send.send((full, source.progress())).is_err() {
                return;
            }
            // Freed here, where there is time to spare.
            while let Ok(done) = spent.try_recv() {
                drop(done);
            }
        }
    }
    let _ = send.send((batch, 1.0));
}

fn keep(into: &mut Vec<RowIssue>, count: &mut usize, cap: usize, row: usize, issues: Vec<Issue>) {
    *count += issues.len();
    for issue in issues {
        if into.len() < cap {
            into.push(RowIssue { row, issue });
        }
    }
}

/// The second row of a crest CSV template explains each column; it is not an episode.
fn is_notes_row(cells: &[String]) -> bool {
    cells
        .first()
        .is_some_and(|c| c.starts_with(crate::template::NOTES_PREFIX))
}

fn err(col: Col, value: &str, message: String) -> Vec<Issue> {
    vec![Issue {
        column: col.name().to_string(),
        value: value.to_string(),
        message,
    }]
}

/// Stores one valid row, or says why it cannot be stored. Outer `Err` is a store failure.
#[allow(clippy::too_many_arguments)]
fn store_row(
    tx: &mut dyn ImportTx,
    rec: &mut Record,
    row: usize,
    registered: &HashSet<String>,
    known: &mut Programmes,
    opts: &ImportOptions,
    sum: &mut ImportSummary,
) -> Result<Result<(), Vec<Issue>>, ImportError> {
    let programme = rec.text(Col::ProgrammeCode).unwrap_or_default().to_string();
    let id = rec.text(Col::EpisodeId).unwrap_or_default().to_string();
    let nhs = nhs_key(rec.text(Col::NhsNumber).unwrap_or_default());
    let Some(event) = rec.date(Col::EventDate) else {
        return Ok(Err(err(
            Col::EventDate,
            "",
            "event_date is required".into(),
        )));
    };
    if let Some(only) = opts.only_programme.as_deref().filter(|o| *o != programme) {
        return Ok(Err(err(
            Col::ProgrammeCode,
            &programme,
            format!("this upload is for programme {only}; rows of programme {programme} belong in that programme's own upload"),
        )));
    }
    if !registered.contains(&programme) {
        return Ok(Err(err(
            Col::ProgrammeCode,
            &programme,
            format!(
                "programme {programme} is not registered in this store; register it first with \
                 `crest programmes import programmes.csv` (columns programme_code,name,nation,region,professions,offers)"
            ),
        )));
    }
    // By reference: the code becomes a String only when the programme is first seen.
    let k = match known.entry_ref(programme.as_str()) {
        EntryRef::Occupied(e) => e.into_mut(),
        EntryRef::Vacant(v) => {
            let mut k = Known::default();
            for s in tx.keys(&programme)? {
                k.record(&s.episode_id, nhs_key(&s.nhs_number), s.event_date, true, 0);
            }
            v.insert(k)
        }
    };
    let seen = k.find(&id).map(|i| &k.seen[i]);
    if let Some(first) = seen.map(|s| s.row).filter(|r| *r > 0) {
        return Ok(Err(err(
            Col::EpisodeId,
            &id,
            format!("episode_id {id} of programme {programme} already appears in row {first} of this file"),
        )));
    }
    let stored = seen.is_some_and(|s| s.stored);
    if let Some(other) = k.with_event(nhs, event).filter(|other| *other != id) {
        if !opts.allow_duplicates {
            return Ok(Err(err(
                Col::EpisodeId,
                &id,
                format!(
                    "probable duplicate: episode {other} has the same NHS number and event date as episode {id}; \
                     correct one of them, or import with --allow-duplicates if both are real"
                ),
            )));
        }
    }
    if stored {
        let Some(old) = tx.get(&programme, &id)? else {
            return Err(ImportError::File(format!(
                "episode {id} vanished during the import"
            )));
        };
        rec.fill_from(&old);
        if *rec == old {
            sum.unchanged += 1;
        } else {
            let problems = cross_check(rec);
            if !problems.is_empty() {
                return Ok(Err(problems
                    .into_iter()
                    .map(|mut p| {
                        p.message =
                            format!("{} (after merging with the stored episode)", p.message);
                        p
                    })
                    .collect()));
            }
            // A dry run checks everything but writes nothing.
            if !opts.dry_run {
                tx.update(rec)?;
            }
            sum.updated += 1;
        }
    } else {
        if !opts.dry_run {
            tx.insert(rec)?;
        }
        sum.imported += 1;
    }
    // Keep the duplicate index current when an update changes NHS number or event date.
    let nhs = nhs_key(rec.text(Col::NhsNumber).unwrap_or_default());
    let event = rec.date(Col::EventDate).unwrap_or(event);
    k.record(
        &id,
        nhs,
        event,
        stored,
        u32::try_from(row).unwrap_or(u32::MAX),
    );
    Ok(Ok(()))
}
