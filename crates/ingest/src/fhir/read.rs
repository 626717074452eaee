//! Reading FHIR JSON files into compact facts, one resource at a time: a Bundle's entries are
//! streamed (the Bundle is never held whole) and NDJSON is read line by line. Each resource is
//! reduced at once to what the mapping uses, so memory grows with the resources crest maps,
//! never with the bytes of the file.

use super::facts::{add, digest, Facts};
use super::model::{Named, Resource};
use crate::ImportError;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bundle types crest reads.
const BUNDLE_TYPES: [&str; 3] = ["collection", "transaction", "searchset"];
/// Longest NDJSON line read: no resource crest maps comes near it.
const MAX_LINE_BYTES: usize = 1 << 20;

/// Whether a file holds JSON, to be read as FHIR (its first non-blank byte opens a JSON object
/// or array).
pub fn is_fhir(path: &Path) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut r = BufReader::new(f);
    let n = r.read(&mut head).unwrap_or(0);
    let head = head[..n]
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&head[..n]);
    // A JSON array is not FHIR either, but is said to be JSON rather than a spreadsheet.
    head.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
}

/// The files a path stands for: a folder's `.ndjson` and `.json` files (sorted), or the file.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, ImportError> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(ImportError::read(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("ndjson") || e.eq_ignore_ascii_case("json"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ImportError::File(format!(
            "the folder {} holds no .ndjson or .json files",
            path.display()
        )));
    }
    Ok(files)
}

/// One piece of reading: a whole Bundle, or a range of an NDJSON file's lines.
struct Unit {
    file: PathBuf,
    shown: String,
    bundle: bool,
    start: u64,
    end: u64,
}

/// NDJSON is read in pieces of about this many bytes, in parallel.
const PIECE_BYTES: u64 = 8 << 20;

/// Splits an NDJSON file into pieces that start at the beginning of a line.
fn pieces(file: &Path, shown: &str, len: u64) -> std::io::Result<Vec<Unit>> {
    let mut f = std::fs::File::open(file)?;
    let mut starts = vec![0u64];
    let mut at = PIECE_BYTES;
    while at < len {
        f.seek(SeekFrom::Start(at))?;
        let mut r = BufReader::new(&mut f);
        // The next line starts after the next line break.
        let mut skipped = 0u64;
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                skipped = len - at;
                break;
            }
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    skipped += i as u64 + 1;
                    break;
                }
                None => {
                    let n = buf.len();
                    skipped += n as u64;
                    r.consume(n);
                }
            }
        }
        let next = at + skipped;
        if next >= len {
            break;
        }
        starts.push(next);
        at = next + PIECE_BYTES;
    }
    Ok(starts
        .iter()
        .enumerate()
        .map(|(i, s)| Unit {
            file: file.to_path_buf(),
            shown: shown.to_string(),
            bundle: false,
            start: *s,
            end: starts.get(i + 1).copied().unwrap_or(len),
        })
        .collect())
}

/// Reads every file into one set of facts, NDJSON in pieces on every core. `progress` gets the
/// fraction of bytes read.
pub fn read_files(files: &[PathBuf], progress: &mut dyn FnMut(f64)) -> Result<Facts, ImportError> {
    let mut units = Vec::new();
    let mut total = 0u64;
    for file in files {
        let shown = file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let len = std::fs::metadata(file)
            .map_err(ImportError::read(file))?
            .len();
        total += len;
        let f = std::fs::File::open(file).map_err(ImportError::read(file))?;
        let mut r = BufReader::with_capacity(1 << 16, f);
        // A Bundle is one JSON document; NDJSON is one complete resource per line.
        let first = {
            let buf = r.fill_buf().map_err(ImportError::read(file))?;
            let end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
            let line = std::str::from_utf8(&buf[..end]).unwrap_or("").trim();
            serde_json::from_str::<Named>(line.trim_start_matches('\u{feff}'))
                .ok()
                .map(|n| n.resource_type.unwrap_or_default())
        };
        match first {
            Some(t) if t != "Bundle" => {
                units.extend(pieces(file, &shown, len).map_err(ImportError::read(file))?)
            }
            _ => units.push(Unit {
                file: file.clone(),
                shown,
                bundle: true,
                start: 0,
                end: len,
            }),
        }
    }
    let total = total.max(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(units.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let spare: std::sync::Mutex<Vec<Facts>> = std::sync::Mutex::new(Vec::new());
    let done = std::sync::atomic::AtomicU64::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Facts, ImportError>>>> =
        units.iter().map(|_| std::sync::Mutex::new(None)).collect();
    // Pieces are merged in file order as they finish (so the episodes come out in the same
    // order however many cores read them, and a piece's facts are held only until merged).
    let mut facts = Facts::default();
    // Room for what files this size usually hold (about 500 bytes a resource, one in eight a
    // patient), reserved once rather than grown (and copied) a doubling at a time; room not
    // used is address space, not memory.
    let guess = usize::try_from(total / 500).unwrap_or(0).min(1 << 26);
    facts.observations.reserve(guess);
    facts.refs.reserve(guess / 2);
    facts.patients.reserve(guess / 8);
    facts.conditions.reserve(guess / 8);
    facts.procedures.reserve(guess / 8);
    facts.referrals.reserve(guess / 8);
    facts.care.reserve(guess / 8);
    let mut failed: Option<ImportError> = None;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(unit) = units.get(i) else { break };
                    let room = spare.lock().ok().and_then(|mut s| s.pop());
                    let read = read_unit(unit, &done, room.unwrap_or_default());
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(read);
                    }
                })
            })
            .collect();
        let mut merged = 0;
        while merged < results.len() {
            // Whether every worker had finished is read before the piece is: a worker that
            // has finished has left its answer.
            let all_finished = workers.iter().all(|w| w.is_finished());
            let ready = results[merged].lock().ok().and_then(|mut s| s.take());
            match ready {
                Some(Ok(mut part)) => {
                    facts.merge(&mut part);
                    // The emptied piece keeps its room for the next: memory reused rather
                    // than freed and faulted in again (which costs more than the copying).
                    if let Ok(mut s) = spare.lock() {
                        s.push(part);
                    }
                    merged += 1;
                    continue;
                }
                Some(Err(e)) => {
                    failed.get_or_insert(e);
                    merged += 1;
                    continue;
                }
                None if all_finished => {
                    // A worker stopped without an answer for this piece (it panicked).
                    failed.get_or_insert(ImportError::File(
                        "a part of the FHIR files could not be read".into(),
                    ));
                    break;
                }
                None => {}
            }
            progress(done.load(std::sync::atomic::Ordering::Relaxed) as f64 / total as f64);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    progress(1.0);
    Ok(facts)
}

/// Reads one piece into `facts` (empty, perhaps with room left by an earlier piece).
fn read_unit(
    unit: &Unit,
    done: &std::sync::atomic::AtomicU64,
    mut facts: Facts,
) -> Result<Facts, ImportError> {
    // About 500 bytes a resource; room reserved at once rather than grown by doublings.
    let guess = usize::try_from((unit.end - unit.start) / 500).unwrap_or(0);
    facts.keys.reserve(guess);
    if facts.ref_ids.capacity() < guess / 2 {
        facts.ref_ids = hashbrown::HashTable::with_capacity(guess / 2);
    }
    facts.observations.reserve(guess / 2);
    let mut f = std::fs::File::open(&unit.file).map_err(ImportError::read(&unit.file))?;
    if unit.bundle {
        read_bundle(
            BufReader::with_capacity(1 << 16, f),
            &unit.shown,
            &mut facts,
        );
        done.fetch_add(unit.end, std::sync::atomic::Ordering::Relaxed);
    } else {
        f.seek(SeekFrom::Start(unit.start))
            .map_err(ImportError::read(&unit.file))?;
        let r = BufReader::with_capacity(1 << 20, f).take(unit.end - unit.start);
        read_ndjson(r, unit, &mut facts, done)?;
    }
    Ok(facts)
}

/// The number of the line at byte `offset` of a file (counted only for a message).
fn line_at(file: &Path, offset: u64) -> usize {
    let Ok(f) = std::fs::File::open(file) else {
        return 0;
    };
    let mut r = BufReader::new(f).take(offset);
    let mut n = 1;
    loop {
        let Ok(buf) = r.fill_buf() else { return n };
        if buf.is_empty() {
            return n;
        }
        n += memchr::memchr_iter(b'\n', buf).count();
        let len = buf.len();
        r.consume(len);
    }
}

fn read_ndjson(
    mut r: std::io::Take<BufReader<std::fs::File>>,
    unit: &Unit,
    facts: &mut Facts,
    done: &std::sync::atomic::AtomicU64,
) -> Result<(), ImportError> {
    let shown = unit.shown.as_str();
    let first = std::cell::OnceCell::new();
    let line_no = |n: usize| *first.get_or_init(|| line_at(&unit.file, unit.start)) + n - 1;
    // Lines are parsed where they lie in the reader's buffer; only a line that straddles two
    // fills is copied (into `carry`), and one longer than any resource is skipped unheld.
    let mut carry: Vec<u8> = Vec::new();
    let mut too_long = false;
    let mut n = 0usize;
    let mut read = 0usize;
    let one = |line: &[u8], n: usize, facts: &mut Facts| {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        add_raw(
            line,
            &|| format!("line {} of {shown}", line_no(n)),
            None,
            facts,
        );
    };
    loop {
        let buf = r.fill_buf().map_err(ImportError::read(&unit.file))?;
        if buf.is_empty() {
            if !carry.is_empty() || too_long {
                n += 1;
                if too_long {
                    facts.problem(long_line(line_no(n), shown));
                } else {
                    one(&carry, n, facts);
                }
            }
            break;
        }
        let len = buf.len();
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                n += 1;
                if too_long {
                    facts.problem(long_line(line_no(n), shown));
                    too_long = false;
                } else if carry.is_empty() {
                    one(&buf[..i], n, facts);
                } else {
                    carry.extend_from_slice(&buf[..i]);
                    one(&carry, n, facts);
                    carry.clear();
                }
                r.consume(i + 1);
                read += i + 1;
            }
            None => {
                if !too_long {
                    if carry.len() + len > MAX_LINE_BYTES {
                        too_long = true;
                        carry = Vec::new();
                    } else {
                        carry.extend_from_slice(buf);
                    }
                }
                r.consume(len);
                read += len;
            }
        }
        if read > 1 << 20 {
            done.fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
            read = 0;
        }
    }
    done.fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

fn long_line(n: usize, shown: &str) -> String {
    format!(
        "line {n} of {shown} is longer than {} MB; no resource crest reads is that long",
        MAX_LINE_BYTES >> 20
    )
}

/// Parses one resource's JSON and adds what it maps to.
/// `place` names where the resource is, for a message (only formatted when there is one).
fn add_raw(text: &[u8], place: &dyn Fn() -> String, full_url: Option<String>, facts: &mut Facts) {
    // The text is checked as UTF-8 once, whole: parsed from a `str`, serde_json then need not
    // check each string in it again (a tenth of the time reading takes).
    let parsed = match std::str::from_utf8(text) {
        Ok(t) => serde_json::from_str::<Resource>(t),
        Err(_) => serde_json::from_slice::<Resource>(text),
    };
    match parsed {
        Ok(res) => {
            if res.resource_type.is_empty() {
                facts.problem(format!("{} has no resourceType", place()));
                return;
            }
            let key: std::sync::Arc<str> = res.key().into();
            facts.keys.insert(digest(&key));
            if let Some(url) = full_url {
                facts.keys.insert(digest(&url));
                facts.urls.insert(url, key.to_string());
            }
            add(&res, key, facts);
        }
        Err(e) => {
            let named = serde_json::from_slice::<Named>(text).ok();
            let who = named
                .and_then(|n| {
                    Some(format!(
                        "{}/{}",
                        n.resource_type?,
                        n.id.map(|v| v.as_str().map_or(v.to_string(), str::to_string))
                            .unwrap_or_else(|| "?".into())
                    ))
                })
                .map(|k| format!(" ({k})"))
                .unwrap_or_default();
            let why = if e.is_syntax() || e.is_eof() {
                format!("is not valid JSON: {e}")
            } else {
                format!("is not a FHIR resource of the shape crest reads: {e}")
            };
            facts.problem(format!("{}{who} {why}", place()));
        }
    }
}

/// Streams a Bundle's entries.
fn read_bundle(r: BufReader<std::fs::File>, shown: &str, facts: &mut Facts) {
    let mut de = serde_json::Deserializer::from_reader(r);
    let mut kind: Option<String> = None;
    let mut rtype: Option<String> = None;
    let result = BundleSeed {
        facts,
        kind: &mut kind,
        rtype: &mut rtype,
        shown,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    if let Err(e) = result {
        facts.problem(if e.is_data() {
            format!("{shown} is JSON but not a FHIR Bundle ({e}); crest reads a Bundle (collection, transaction or searchset) or bulk-export NDJSON (one resource per line)")
        } else {
            format!("{shown} is not valid JSON: {e}")
        });
        return;
    }
    match rtype.as_deref() {
        Some("Bundle") => {}
        Some(other) => {
            return facts.problem(format!(
                "{shown} holds one {other} resource, not a Bundle; crest reads a Bundle (collection, transaction or searchset) or bulk-export NDJSON (one resource per line)"
            ))
        }
        None => return facts.problem(format!("{shown} is JSON but not FHIR: it has no resourceType")),
    }
    match kind.as_deref() {
        Some(k) if BUNDLE_TYPES.contains(&k) => {}
        Some(k) => facts.problem(format!(
            "{shown} is a Bundle of type '{k}'; crest reads Bundles of type collection, transaction or searchset"
        )),
        None => facts.problem(format!(
            "{shown} is a Bundle with no type; crest reads Bundles of type collection, transaction or searchset"
        )),
    }
}

struct BundleSeed<'a> {
    facts: &'a mut Facts,
    kind: &'a mut Option<String>,
    rtype: &'a mut Option<String>,
    shown: &'a str,
}

impl<'de> DeserializeSeed<'de> for BundleSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BundleSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a FHIR Bundle")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resourceType" => *self.rtype = Some(map.next_value()?),
                "type" => *self.kind = Some(map.next_value()?),
                "entry" => map.next_value_seed(Entries {
                    facts: self.facts,
                    shown: self.shown,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Entries<'a> {
    facts: &'a mut Facts,
    shown: &'a str,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    full_url: Option<String>,
    #[serde(default)]
    resource: Option<Box<serde_json::value::RawValue>>,
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of Bundle entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while let Some(entry) = seq.next_element::<Entry>()? {
            n += 1;
            if let Some(raw) = entry.resource {
                let shown = self.shown;
                add_raw(
                    raw.get().as_bytes(),
                    &|| format!("entry {n} of {shown}"),
                    entry.full_url,
                    self.facts,
                );
            }
        }
        Ok(())
    }
}
