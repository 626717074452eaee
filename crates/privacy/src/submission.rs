//! National submissions (privacy.md, "Submission"): built by the local side for one programme
//! and period — opt-outs left out (fail closed), minimised to the agreement's approved tier N
//! and D fields, keyed pseudonyms, tombstones for withdrawn episodes, and a manifest with the
//! payload's SHA-256 — and received by the national side, which checks everything before it
//! stores anything and re-keys every pseudonym with its own key.
//!
//! The file is JSON lines: the manifest on the first line, then one line per episode
//! (`episode_key`, `patient_key` and the approved fields) or tombstone (`{"tombstone": key}`).
//! The checksum covers every byte after the first line.

use crate::keys::Key;
use crate::signing::{split_signed, PublicKey, SigningKey};
use crest_core::governance::Agreement;
use crest_core::{Col, Date, Invalid, Kind, Nation, Period, Record, Value, FIELDS};
use crest_store::national::{
    national_fields, NationalEpisode, Receipt, ReceiptItem, ReceiptItems, Received,
};
use crest_store::{NationalStore, Store};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{BufRead, Read};
use std::path::Path;

/// The format name in every manifest.
pub const FORMAT: &str = "crest-submission";

/// Default maximum age of a National Data Opt-out check result, in days.
pub const NDOO_MAX_AGE_DAYS: i32 = 30;

/// Which list a National Data Opt-out check result is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NdooList {
    /// The NHS numbers that may be used (everyone else is left out).
    MayUse,
    /// The NHS numbers that have opted out.
    OptedOut,
}

/// A loaded National Data Opt-out check result. Used at export time only: never stored on
/// patient records.
#[derive(Clone, Debug)]
pub struct NdooCheck {
    list: NdooList,
    numbers: HashSet<String>,
    /// The day of the check (the oldest `checked_on` in the file).
    pub checked_on: Date,
}

impl NdooCheck {
    /// Reads a check result: CSV with columns `nhs_number,checked_on` (ISO date).
    pub fn read(path: &Path, list: NdooList) -> Result<NdooCheck, SubmissionError> {
        let bytes = std::fs::read(path).map_err(|e| SubmissionError::read(path, e))?;
        NdooCheck::parse(&bytes, &path.display().to_string(), list)
    }

    /// Parses a check result's bytes; `source` names it in messages.
    pub fn parse(bytes: &[u8], source: &str, list: NdooList) -> Result<NdooCheck, SubmissionError> {
        let mut r = csv::Reader::from_reader(bytes);
        let csv_error = |e| SubmissionError::Csv {
            file: source.to_string(),
            source: e,
        };
        let headers = r.headers().map_err(csv_error)?.clone();
        let col =
            |name: &str| {
                headers.iter().position(|h| h.trim() == name).ok_or_else(|| {
                format!("{source}: the opt-out check result needs columns nhs_number,checked_on")
            })
            };
        let (n, c) = (col("nhs_number")?, col("checked_on")?);
        let (mut numbers, mut oldest) = (HashSet::new(), None::<Date>);
        for (i, row) in r.records().enumerate() {
            let row = row.map_err(|e| format!("{source}: row {}: {e}", i + 2))?;
            let digits: String = row
                .get(n)
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            if digits.len() != 10 {
                // The number itself is not repeated: this file holds identifiers.
                return Err(format!(
                    "{source}: row {}, column nhs_number: not a 10-digit NHS number",
                    i + 2
                )
                .into());
            }
            let day = row.get(c).unwrap_or("");
            let day = Date::parse_iso(day.trim()).map_err(|e| {
                format!(
                    "{source}: row {}, column checked_on, value '{day}': {}",
                    i + 2,
                    e.0
                )
            })?;
            oldest = Some(oldest.map_or(day, |o| o.min(day)));
            numbers.insert(digits);
        }
        let checked_on = oldest.ok_or_else(|| {
            format!("{source}: the opt-out check result has no rows, so it cannot date the check")
        })?;
        Ok(NdooCheck {
            list,
            numbers,
            checked_on,
        })
    }

    fn allows(&self, nhs_number: &str) -> bool {
        let digits: String = nhs_number.chars().filter(char::is_ascii_digit).collect();
        match self.list {
            NdooList::MayUse => self.numbers.contains(&digits),
            NdooList::OptedOut => !self.numbers.contains(&digits),
        }
    }
}

/// What to build.
pub struct BuildRequest<'a> {
    /// The programme.
    pub programme: &'a str,
    /// Referral period.
    pub period: Period,
    /// The submission key (pseudonyms only: every programme holds it).
    pub key: &'a Key,
    /// The programme's own signing key: proves which programme built the file.
    pub signing_key: &'a SigningKey,
    /// The National Data Opt-out check result, if loaded.
    pub ndoo: Option<&'a NdooCheck>,
    /// Oldest usable check result, in days.
    pub ndoo_max_age_days: i32,
    /// Today (agreement validity, check age).
    pub today: Date,
    /// Now, UTC ISO 8601 (the manifest's `created_at`).
    pub now: String,
}

/// A built submission.
#[derive(Debug)]
pub struct Built {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The manifest (also the file's first line).
    pub manifest: Json,
    /// Episode ids sent (to record as national).
    pub sent: Vec<String>,
    /// Episode ids sent before and now withdrawn (sent as tombstones).
    pub withdrawn: Vec<String>,
    /// Episodes in the period left out because the patient asked.
    pub left_out_own_request: usize,
    /// Episodes in the period left out by the National Data Opt-out.
    pub left_out_ndoo: usize,
}

/// Writes a non-null value as JSON.
fn write_json(out: &mut Vec<u8>, v: &Value) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = match v {
        Value::Null => out.write_all(b"null"),
        Value::Text(s) => serde_json::to_writer(&mut *out, s).map_err(std::io::Error::other),
        Value::Int(i) => write!(out, "{i}"),
        Value::Num(x) => serde_json::to_writer(&mut *out, x).map_err(std::io::Error::other),
        Value::Date(d) => write!(out, "\"{d}\""),
        Value::Bool(b) => write!(out, "{b}"),
    };
}

/// Builds a programme's submission for a period from the local store. Refuses (building
/// nothing) without an agreement in force, or, for an English programme whose agreement has no
/// exemption, without a recent enough National Data Opt-out check result.
pub fn build(store: &mut dyn Store, req: &BuildRequest) -> Result<Built, SubmissionError> {
    if req.signing_key.programme() != req.programme {
        return Err(format!(
            "the signing key is programme {}'s, so it cannot sign a submission for {}; use {}'s own signing key",
            req.signing_key.programme(),
            req.programme,
            req.programme
        ).into());
    }
    let programme = store
        .programmes()?
        .into_iter()
        .find(|p| p.code == req.programme)
        .ok_or_else(|| format!("programme {} is not registered here", req.programme))?;
    let agreement: Agreement = store
        .agreements()
        ?
        .into_iter()
        .find(|a| a.in_force(req.today))
        .ok_or_else(|| {
            format!(
                "no data sharing agreement is in force on {}: nothing may be submitted until an administrator records one",
                req.today
            )
        })?;
    let ndoo = if programme.nation == Nation::England && !agreement.opt_out_exempt {
        let check = req.ndoo.ok_or_else(|| {
            format!(
                "{} is in England, so the National Data Opt-out applies: attach the result of a National Data Opt-out check no older than {} days (agreement {} records no exemption)",
                programme.code, req.ndoo_max_age_days, agreement.id
            )
        })?;
        let age = req.today.days_since(check.checked_on);
        if age > req.ndoo_max_age_days {
            return Err(format!(
                "the National Data Opt-out check result is {age} days old (checked {}); load one no older than {} days",
                check.checked_on, req.ndoo_max_age_days
            ).into());
        }
        Some(check)
    } else {
        None
    };

    let fields: Vec<_> = national_fields()
        .filter(|f| f.col == Col::ProgrammeCode || agreement.allows(f.name))
        .collect();
    // One pass over the programme: the patients who asked to be left out (their request
    // covers all their episodes, so it is applied after the pass), every episode id with its
    // NHS number (for tombstones), and a line for every episode in the period.
    let mut own_request: HashSet<String> = HashSet::new();
    let mut ids: std::collections::HashMap<String, String> = Default::default();
    // Lines are written straight into one buffer; `spans` remembers each line's place.
    let mut raw: Vec<u8> = Vec::new();
    let mut spans: Vec<(String, String, std::ops::Range<usize>)> = Vec::new();
    let mut nd = 0;
    store.for_each_episode(&programme.code, &mut |r| {
        let nhs: String = r
            .text(Col::NhsNumber)
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let id = r.text(Col::EpisodeId).unwrap_or("").to_string();
        if r.get(Col::NationalOptOut) == &Value::Bool(true) {
            own_request.insert(nhs.clone());
        }
        ids.insert(id.clone(), nhs.clone());
        if !r
            .date(Col::ReferralDate)
            .is_some_and(|d| req.period.contains(d))
        {
            return Ok(());
        }
        if ndoo.is_some_and(|c| !c.allows(&nhs)) {
            nd += 1;
            return Ok(());
        }
        let start = raw.len();
        let line = &mut raw;
        line.extend_from_slice(b"{\"episode_key\":\"");
        line.extend_from_slice(req.key.episode_key(&programme.code, &id).as_bytes());
        line.extend_from_slice(b"\",\"patient_key\":\"");
        // A stored NHS number passed validation; one that no longer parses is not sent.
        let Ok(nhs_number) = crest_core::NhsNumber::parse(&nhs) else {
            return Ok(());
        };
        line.extend_from_slice(req.key.patient_key(&nhs_number).as_bytes());
        line.push(b'"');
        for f in &fields {
            let v = r.get(f.col);
            if v.is_null() {
                continue;
            }
            line.extend_from_slice(b",\"");
            line.extend_from_slice(f.name.as_bytes());
            line.extend_from_slice(b"\":");
            write_json(line, v);
        }
        line.extend_from_slice(b"}\n");
        let end = raw.len();
        spans.push((id, nhs, start..end));
        Ok(())
    })?;
    let (mut sent, mut own) = (Vec::new(), 0);
    let mut kept: Vec<std::ops::Range<usize>> = Vec::with_capacity(spans.len());
    for (id, nhs, span) in spans {
        if own_request.contains(&nhs) {
            own += 1;
        } else {
            kept.push(span);
            sent.push(id);
        }
    }
    // Tombstones: sent before, and now deleted or opted out.
    let mut tombstones = Vec::new();
    let mut withdrawn = Vec::new();
    for id in store.sent_episodes(&programme.code)? {
        let gone = match ids.get(&id) {
            None => true,
            Some(nhs) => own_request.contains(nhs) || ndoo.is_some_and(|c| !c.allows(nhs)),
        };
        if gone {
            let line = json!({ "tombstone": req.key.episode_key(&programme.code, &id) });
            tombstones.extend_from_slice(line.to_string().as_bytes());
            tombstones.push(b'\n');
            withdrawn.push(id);
        }
    }
    let mut sha = Sha256::new();
    for span in &kept {
        sha.update(&raw[span.clone()]);
    }
    sha.update(&tombstones);
    let payload_len: usize = kept.iter().map(|s| s.len()).sum::<usize>() + tombstones.len();
    let manifest = json!({
        "format": FORMAT,
        "dataset_version": crest_core::dataset::DATASET_VERSION,
        "programme_code": programme.code,
        "period": { "from": req.period.from.to_string(), "to": req.period.to.to_string() },
        "counts": {
            "episodes": sent.len(),
            "tombstones": withdrawn.len(),
            "left_out_own_request": own,
            "left_out_national_data_opt_out": nd,
        },
        "key_id": req.key.id(),
        "agreement": { "id": agreement.id, "legal_basis": agreement.legal_basis },
        "fields": fields.iter().map(|f| f.name).collect::<Vec<_>>(),
        "created_at": req.now,
        "sha256": hex::encode(sha.finalize()),
        "signed_by": req.signing_key.public_key().id(),
    });
    let head = req.signing_key.sign_manifest(&manifest.to_string());
    let mut bytes = Vec::with_capacity(head.len() + 1 + payload_len);
    bytes.extend_from_slice(head.as_bytes());
    bytes.push(b'\n');
    for span in kept {
        bytes.extend_from_slice(&raw[span]);
    }
    drop(raw);
    bytes.extend_from_slice(&tombstones);
    Ok(Built {
        bytes,
        manifest,
        sent,
        withdrawn,
        left_out_own_request: own,
        left_out_ndoo: nd,
    })
}

/// Checks a submission and stores it nationally, re-keyed with the national key. Any failed
/// check refuses the whole file with a message and stores nothing.
pub fn receive(
    national: &mut NationalStore,
    bytes: &[u8],
    submission_key: &Key,
    national_key: &Key,
    now: &str,
) -> Result<Received, SubmissionError> {
    receive_with_log(
        national,
        Source::Bytes(bytes),
        (submission_key, national_key),
        now,
        None,
    )
}

/// [`receive`], writing `log` (if given) in the receipt's own transaction when it stores.
fn receive_with_log(
    national: &mut NationalStore,
    source: Source,
    (submission_key, national_key): (&Key, &Key),
    now: &str,
    log: Option<&crest_store::AccessEntry>,
) -> Result<Received, SubmissionError> {
    let head = source.head()?;
    let head = head.as_slice();
    // Only the signed bytes are read: a member added after the signature counts for nothing.
    let (unsigned, signature) = split_signed(head).ok_or(
        "the submission is not signed by its programme: rebuild it with `crest submission build --signing-key FILE` \
         (the programme's own signing key, made by `crest keys new --signing`)",
    )?;
    let manifest: Json = serde_json::from_slice(&unsigned).map_err(SubmissionError::NotJson)?;
    let text = |k: &str| manifest.get(k).and_then(Json::as_str).unwrap_or("");
    if text("format") != FORMAT {
        return Err(
            "not a crest submission (the manifest's format is not crest-submission)".into(),
        );
    }
    if text("dataset_version") != crest_core::dataset::DATASET_VERSION {
        return Err(format!(
            "dataset version {} is not this store's version {}; rebuild the submission with a matching crest",
            text("dataset_version"),
            crest_core::dataset::DATASET_VERSION
        ).into());
    }
    let programme = text("programme_code").to_string();
    if !national.has_programme(&programme)? {
        return Err(format!(
            "programme {} is not registered in the national store; register it with `crest programmes import --national`",
            crest_core::validate::shown(&programme)
        ).into());
    }
    // Keys and dates are judged by the real day of receipt, whatever `now` records.
    let utc = crest_store::utc_now();
    let today = Date::parse_iso(utc.get(..10).unwrap_or(""))
        .map_err(|e| format!("the clock gives '{utc}', not a date: {}", e.0))?;
    check_signature(
        national,
        &programme,
        text("signed_by"),
        (&unsigned, &signature),
        today,
    )?;
    // Signed, so the manifest is the programme's own: now the payload must be what it signed.
    let sha = {
        let mut sha = Sha256::new();
        let mut reader = source.payload()?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = reader.read(&mut buf).map_err(SubmissionError::Unreadable)?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
        }
        hex::encode(sha.finalize())
    };
    if text("sha256") != sha {
        return Err(format!(
            "the checksum does not match: the manifest says {} but the payload is {sha}; the file was changed or cut short",
            text("sha256")
        ).into());
    }
    if text("key_id") != submission_key.id() {
        return Err(format!(
            "the submission was keyed with {} but the submission key held here is {}",
            text("key_id"),
            submission_key.id()
        )
        .into());
    }
    let date = |k: &str| {
        let s = manifest["period"][k].as_str().unwrap_or("");
        Date::parse_iso(s).map_err(|e| format!("manifest period {k} '{s}': {}", e.0))
    };
    let period = Period {
        from: date("from")?,
        to: date("to")?,
    };
    let created_at = text("created_at").to_string();
    let by_name: std::collections::HashMap<&str, &crest_core::Field> =
        national_fields().map(|f| (f.name, f)).collect();
    let count = |k: &str| {
        manifest["counts"][k]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("the manifest has no count of {k}"))
    };
    let receipt = Receipt {
        // The manifest line names the payload by its (checked) SHA-256 and carries the
        // programme, period and build time, so its own hash identifies the whole file without
        // hashing a 70 MB payload twice.
        id: hex::encode(Sha256::digest(head)),
        programme: programme.clone(),
        from: period.from,
        to: period.to,
        key_id: text("key_id").to_string(),
        dataset_version: text("dataset_version").to_string(),
        created_at,
        episodes: count("episodes")?,
        tombstones: count("tombstones")?,
    };
    // Lines are parsed and re-keyed on a second thread while the store writes the ones before
    // them, in batches through a short queue (so memory stays bounded). The store consumes them
    // inside its transaction: a bad line rolls everything back. If the store stops early, the
    // queue closes and the parser stops with it; if it reads the payload again, a new parser
    // starts from the first line.
    std::thread::scope(|scope| {
        let programme = programme.as_str();
        let by_name = &by_name;
        let mut items = || -> Box<ReceiptItems> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<ReceiptItem, Invalid>>>(4);
            let payload = source.payload();
            scope.spawn(move || {
                let mut batch = Vec::with_capacity(PARSE_BATCH);
                let mut reader = match payload {
                    Ok(r) => r,
                    Err(m) => {
                        let _ = tx.send(vec![Err(Invalid(m.to_string()))]);
                        return;
                    }
                };
                // Lines are read one at a time into one buffer, so memory does not grow with
                // the file; a line that cannot be read ends the payload with a refusal.
                let mut buf = Vec::new();
                let mut unreadable = None;
                let lines = std::iter::from_fn(|| {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf) {
                        Ok(0) => None,
                        Ok(_) => {
                            if buf.last() == Some(&b'\n') {
                                buf.pop();
                            }
                            Some(buf.clone())
                        }
                        Err(e) => {
                            unreadable = Some(format!("the submission could not be read: {e}"));
                            None
                        }
                    }
                })
                .enumerate()
                .filter(|(_, line)| !line.is_empty());
                // After the first refused line the rest are only checked, so the refusal
                // lists every problem (up to a limit) in one round, as an import does.
                let mut refused: Vec<String> = Vec::new();
                let mut more = 0usize;
                // Each episode once: a second line with the same key would replace the first
                // and be counted as stored twice.
                let mut seen: std::collections::HashMap<String, usize> = Default::default();
                for (i, line) in lines {
                    let mut item = parse_item(&line, i + 2, programme, by_name, national_key, today);
                    if let Ok(ReceiptItem::Episode(e)) = &item {
                        if let Some(first) = seen.insert(e.episode_key.clone(), i + 2) {
                            item = Err(format!(
                                "line {}: the same episode is on line {first} too; send each episode once",
                                i + 2
                            ).into());
                        }
                    }
                    match item {
                        Err(m) if refused.len() < MAX_REFUSALS => refused.push(m.0),
                        Err(_) => more += 1,
                        Ok(_) if !refused.is_empty() => {}
                        Ok(item) => {
                            batch.push(Ok(item));
                            if batch.len() == PARSE_BATCH {
                                let full =
                                    std::mem::replace(&mut batch, Vec::with_capacity(PARSE_BATCH));
                                if tx.send(full).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                }
                if let Some(m) = unreadable.take() {
                    refused.push(m);
                }
                if !refused.is_empty() {
                    let n = refused.len() + more;
                    let mut m = format!(
                        "{n} line(s) hold values the dataset does not allow; nothing was stored:\n"
                    );
                    m.push_str(&refused.join("\n"));
                    if more > 0 {
                        m.push_str(&format!("\n… and {more} more"));
                    }
                    batch = vec![Err(Invalid(m))];
                }
                let _ = tx.send(batch);
            });
            Box::new(rx.into_iter().flatten())
        };
        national
            .receive(&receipt, &mut items, now, log)
            .map_err(SubmissionError::from)
    })
}

/// Longest manifest line read.
const MAX_MANIFEST_BYTES: u64 = 64 << 10;

/// Where a received submission's bytes are: in memory, or in a file read as a stream.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// The whole file in memory.
    Bytes(&'a [u8]),
    /// A file on disk.
    File(&'a Path),
}

impl<'a> Source<'a> {
    /// The manifest line (without its line break).
    fn head(&self) -> Result<Vec<u8>, SubmissionError> {
        let (head, _) = self.split()?;
        Ok(head)
    }

    /// The payload: every byte after the manifest line, as a stream from its start.
    fn payload(&self) -> Result<Box<dyn std::io::BufRead + Send + 'a>, SubmissionError> {
        let (_, rest) = self.split()?;
        Ok(rest)
    }

    fn split(&self) -> Result<(Vec<u8>, Box<dyn std::io::BufRead + Send + 'a>), SubmissionError> {
        use std::io::BufRead;
        let no_manifest =
            || SubmissionError::Refused("not a crest submission: there is no manifest line".into());
        match *self {
            Source::Bytes(bytes) => {
                let split = bytes
                    .iter()
                    .position(|b| *b == b'\n')
                    .ok_or_else(no_manifest)?;
                Ok((bytes[..split].to_vec(), Box::new(&bytes[split + 1..])))
            }
            Source::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| SubmissionError::read(path, e))?;
                let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
                let mut head = Vec::new();
                (&mut reader)
                    .take(MAX_MANIFEST_BYTES + 1)
                    .read_until(b'\n', &mut head)
                    .map_err(|e| SubmissionError::read(path, e))?;
                if head.pop() != Some(b'\n') {
                    return Err(no_manifest());
                }
                Ok((head, Box::new(reader)))
            }
        }
    }
}

/// Refused lines listed in full in one refusal (the rest are counted).
const MAX_REFUSALS: usize = 50;

/// Payload lines parsed per batch handed from the parsing thread to the store.
const PARSE_BATCH: usize = 512;

/// One payload line: an episode or a tombstone, checked and re-keyed with the national key.
fn parse_item(
    line: &[u8],
    line_no: usize,
    programme: &str,
    by_name: &std::collections::HashMap<&str, &crest_core::Field>,
    national_key: &Key,
    today: Date,
) -> Result<ReceiptItem, Invalid> {
    let at = || format!("line {line_no}");
    let obj: Map<String, Json> =
        serde_json::from_slice(line).map_err(|e| format!("{}: not a JSON object ({e})", at()))?;
    if let Some(t) = obj.get("tombstone") {
        return Ok(ReceiptItem::Tombstone(national_key.rekey(pseudonym(
            t,
            &at(),
            "tombstone",
        )?)));
    }
    let mut record = Record::new();
    let (mut ek, mut pk) = (None, None);
    for (k, v) in &obj {
        match k.as_str() {
            "episode_key" => ek = Some(national_key.rekey(pseudonym(v, &at(), k)?)),
            "patient_key" => pk = Some(national_key.rekey(pseudonym(v, &at(), k)?)),
            name => {
                let f = by_name.get(name).ok_or_else(|| {
                    format!(
                        "{}: field '{name}' may not be held nationally; the submission is refused",
                        at()
                    )
                })?;
                let value = checked_value(f, v, today).map_err(|m| format!("{}, {m}", at()))?;
                record.set(f.col, value);
            }
        }
    }
    if let Some(first) = crest_core::validate::cross_check(&record).first() {
        return Err(format!("{}, {first}", at()).into());
    }
    if record.text(Col::ProgrammeCode) != Some(programme) {
        return Err(format!("{}: the episode is not from programme {programme}", at()).into());
    }
    for f in FIELDS
        .iter()
        .filter(|f| f.required && f.tier != crest_core::Tier::Local)
    {
        if record.get(f.col) == &Value::Null {
            return Err(format!("{}: required field {} is missing", at(), f.name).into());
        }
    }
    Ok(ReceiptItem::Episode(NationalEpisode {
        episode_key: ek.ok_or_else(|| format!("{}: no episode_key", at()))?,
        patient_key: pk.ok_or_else(|| format!("{}: no patient_key", at()))?,
        record,
    }))
}

/// [`receive`], with the outcome (stored, already received or refused, and why) appended to
/// the national store's access log as who received it.
pub fn receive_logged(
    national: &mut NationalStore,
    bytes: &[u8],
    keys: (&Key, &Key),
    who: (&str, &str),
    file_name: &str,
) -> Result<Received, SubmissionError> {
    receive_source_logged(national, Source::Bytes(bytes), keys, who, file_name)
}

/// [`receive_logged`] of a submission file, read as a stream (twice: once for its checksum,
/// once to store it), so memory does not grow with the file.
pub fn receive_file_logged(
    national: &mut NationalStore,
    path: &Path,
    keys: (&Key, &Key),
    who: (&str, &str),
    file_name: &str,
) -> Result<Received, SubmissionError> {
    receive_source_logged(national, Source::File(path), keys, who, file_name)
}

fn receive_source_logged(
    national: &mut NationalStore,
    source: Source,
    keys: (&Key, &Key),
    who: (&str, &str),
    file_name: &str,
) -> Result<Received, SubmissionError> {
    let now = crest_store::utc_now();
    let mut entry = crest_store::AccessEntry {
        at: now.clone(),
        username: who.0.to_string(),
        role: who.1.to_string(),
        programme: source
            .head()
            .ok()
            .and_then(|h| manifest_programme(&h))
            .unwrap_or_default(),
        action: "receipt".into(),
        target: file_name.to_string(),
        outcome: "ok".into(),
        detail: String::new(),
    };
    let result = receive_with_log(national, source, keys, &now, Some(&entry));
    // A stored receipt was logged in its own transaction; the rest changed nothing.
    match &result {
        Ok(Received::Stored { .. }) => return result,
        Ok(Received::AlreadyReceived) => {
            entry.detail = "already received; nothing changed".to_string();
        }
        Err(e) => {
            entry.outcome = "refused".into();
            entry.detail = e.to_string();
        }
    }
    national.log(&entry).map_err(SubmissionError::NotLogged)?;
    result
}

/// Why a submission could not be built or received; the message says what to do. Nothing
/// was built or stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    /// Refused for what the file or request holds (the message says what and how to mend it).
    #[error("{0}")]
    Refused(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The submission's bytes could not be read to the end.
    #[error("the submission could not be read: {0}")]
    Unreadable(#[source] std::io::Error),
    /// The opt-out check result is not readable CSV.
    #[error("{file}: {source}")]
    Csv {
        /// The file, as named in messages.
        file: String,
        /// Why.
        #[source]
        source: csv::Error,
    },
    /// The first line is not a JSON manifest.
    #[error("not a crest submission: the manifest is not JSON ({0})")]
    NotJson(#[source] serde_json::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crest_store::StoreError),
    /// A receipt could not be written to the national access log.
    #[error("the receipt could not be logged: {0}")]
    NotLogged(#[source] crest_store::StoreError),
}

impl SubmissionError {
    fn read(path: &Path, source: std::io::Error) -> SubmissionError {
        SubmissionError::Read {
            path: path.display().to_string(),
            source,
        }
    }

    /// The message for people.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl From<String> for SubmissionError {
    fn from(message: String) -> SubmissionError {
        SubmissionError::Refused(message)
    }
}

impl From<&str> for SubmissionError {
    fn from(message: &str) -> SubmissionError {
        SubmissionError::Refused(message.to_string())
    }
}

/// The programme a submission file's manifest names, reading its first line only.
pub fn manifest_programme_in(path: &Path) -> Option<String> {
    Source::File(path)
        .head()
        .ok()
        .and_then(|h| manifest_programme(&h))
}

/// The programme a submission's manifest names, if its first line is a manifest.
pub fn manifest_programme(bytes: &[u8]) -> Option<String> {
    bytes
        .split(|b| *b == b'\n')
        .next()
        .and_then(|h| serde_json::from_slice::<Json>(h).ok())
        .and_then(|m| m["programme_code"].as_str().map(str::to_string))
}

fn pseudonym<'a>(v: &'a Json, at: &str, what: &str) -> Result<&'a str, Invalid> {
    match v.as_str() {
        Some(s) if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(s)
        }
        _ => Err(format!("{at}: {what} is not a pseudonym (64 lower-case hex digits)").into()),
    }
}

/// A received value checked by the dictionary's own rule for its field (codes, ranges, dates,
/// lengths), exactly as an import checks a cell; the message names the field and the value.
fn checked_value(f: &crest_core::Field, v: &Json, today: Date) -> Result<Value, Invalid> {
    let raw = match (f.kind, v) {
        (_, Json::Null) => return Ok(Value::Null),
        (Kind::Bool, Json::Bool(b)) => b.to_string(),
        (Kind::Int { .. } | Kind::Decimal { .. }, Json::Number(n)) => n.to_string(),
        (Kind::Bool | Kind::Int { .. } | Kind::Decimal { .. }, _) => {
            return Err(format!("field {}: the value has the wrong type", f.name).into())
        }
        (_, Json::String(s)) => s.clone(),
        _ => return Err(format!("field {}: the value has the wrong type", f.name).into()),
    };
    let shown = crest_core::validate::shown(&raw);
    match crest_core::validate::parse_field(f, &raw, today) {
        Ok((value, _warning)) => Ok(value),
        Err(m) => Err(format!(
            "field {}, value '{shown}': {}",
            f.name,
            if shown != raw {
                m.0.replace(&raw, &shown)
            } else {
                m.0
            }
        )
        .into()),
    }
}

/// Checks a manifest's signature against the programme's registered signing keys: the key it
/// names must be that programme's, in force today and not revoked, and must verify the
/// unsigned manifest (which carries the payload's SHA-256).
fn check_signature(
    national: &mut NationalStore,
    programme: &str,
    signed_by: &str,
    (unsigned, signature): (&[u8], &str),
    today: Date,
) -> Result<(), SubmissionError> {
    let keys = national.signing_keys(Some(programme))?;
    if keys.is_empty() {
        return Err(format!(
            "programme {programme} has no signing key registered nationally, so no file can prove it came from {programme}; \
             register its public key with `crest programmes keys add`"
        ).into());
    }
    let refused = || {
        format!(
            "the signature does not verify against programme {programme}'s registered signing keys: \
             the file was not built by {programme}, or was changed after it was signed"
        )
    };
    let key = keys
        .iter()
        .find(|k| k.key_id == signed_by)
        .ok_or_else(refused)?;
    if let Some(at) = &key.revoked_at {
        return Err(format!(
            "the submission is signed with key {} of programme {programme}, which was revoked on {}; \
             sign it with a current key",
            key.key_id,
            at.get(..10).unwrap_or(at)
        ).into());
    }
    if !key.in_force(today) {
        return Err(format!(
            "the submission is signed with key {} of programme {programme}, which is not in force on {today} \
             (valid {} to {}); sign it with a current key",
            key.key_id,
            key.valid_from,
            key.valid_to.map_or("open".to_string(), |d| d.to_string())
        ).into());
    }
    let public = PublicKey::parse(&key.public_key).map_err(|e| SubmissionError::Refused(e.0))?;
    if public.id() != key.key_id || !public.verifies(unsigned, signature) {
        return Err(refused().into());
    }
    Ok(())
}
