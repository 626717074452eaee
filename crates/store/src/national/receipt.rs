//! What receiving a submission means, on either back end: the submission's slot (programme
//! and period), the statements, and the messages for a payload that does not match its
//! manifest or is older than what is held.

use super::model::{national_fields, Receipt};
use crate::{AccessEntry, StoreError};

/// The `sha256` column holds the receipt's identity (`Receipt::id`).
pub(crate) const SEEN: &str = "SELECT count(*) FROM national_submissions WHERE sha256 = ?1";
pub(crate) const CURRENT: &str =
    "SELECT sha256, created_at FROM national_submissions WHERE current_for = ?1";
pub(crate) const DROP_OLD: &str =
    "DELETE FROM national_episodes WHERE programme_code = ?1 AND submission = ?2";
pub(crate) const RETIRE: &str =
    "UPDATE national_submissions SET current_for = NULL WHERE sha256 = ?1";
/// Keys are matched only within the submission's own programme.
pub(crate) const TOMBSTONE: &str =
    "DELETE FROM national_episodes WHERE programme_code = ?1 AND episode_key = ?2";
pub(crate) const SUBMISSION: &str = "INSERT INTO national_submissions (sha256, programme_code, period_from, period_to, key_id, \
    dataset_version, created_at, received_at, episodes, tombstones, current_for) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// The programme and period a submission is current for.
pub(crate) fn slot(r: &Receipt) -> String {
    format!("{}|{}|{}", r.programme, r.from, r.to)
}

/// `INSERT` of one national episode (SQLite placeholders).
pub(crate) fn insert_episode() -> String {
    format!(
        "INSERT INTO national_episodes (episode_key, patient_key, submission, {}) VALUES (?1, ?2, ?3, {})",
        national_fields().map(|f| f.name).collect::<Vec<_>>().join(", "),
        (0..national_fields().count()).map(|i| format!("?{}", i + 4)).collect::<Vec<_>>().join(", "),
    )
}

/// The payload does not hold what the manifest says.
pub(crate) fn mismatch(r: &Receipt, e: usize, t: usize) -> StoreError {
    StoreError::Refused(format!(
        "the manifest says {} episode(s) and {} tombstone(s) but the payload has {e} and {t}",
        r.episodes, r.tombstones
    ))
}

/// A newer submission for the slot is already held.
pub(crate) fn older(r: &Receipt, created: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "a newer submission for {} {}..{} (built {created}) is already held; this one was built {} and would replace it",
        r.programme, r.from, r.to, r.created_at
    ))
}

/// The access-log entry of a stored receipt, from the caller's template.
pub(crate) fn entry(
    log: Option<&AccessEntry>,
    received_at: &str,
    (stored, replaced, deleted): (usize, usize, usize),
) -> Option<AccessEntry> {
    log.map(|e| AccessEntry {
        at: received_at.to_string(),
        outcome: "ok".into(),
        detail: format!("{stored} stored, {replaced} replaced, {deleted} deleted by tombstones"),
        ..e.clone()
    })
}
