//! The access log's hash chain (privacy.md, "Governance"): each entry carries a sequence
//! number, the hash of the entry before it and its own hash over both and every field, so an
//! edited, deleted or inserted entry breaks the chain at a place [`verify`] names. Appends are
//! serialised by the back end (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory lock) so the
//! chain never forks.

use crate::{AccessEntry, Result};
use sha2::{Digest, Sha256};

/// The previous-hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Index created once the legacy entries have their sequence numbers.
pub(crate) const SEQ_INDEX: &str =
    "CREATE UNIQUE INDEX IF NOT EXISTS access_log_seq ON access_log (seq)";

/// SHA-256 (lower-case hex) of an entry chained to `prev`. Every field is length-prefixed, so
/// no two different entries serialise alike.
pub fn entry_hash(prev: &str, seq: i64, e: &AccessEntry) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(seq.to_be_bytes());
    for field in [
        &e.at,
        &e.username,
        &e.role,
        &e.programme,
        &e.action,
        &e.target,
        &e.outcome,
        &e.detail,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One stored entry with its chain fields.
#[derive(Clone, Debug)]
pub struct ChainEntry {
    /// 1, 2, 3, … in the order written.
    pub seq: i64,
    /// The hash of entry `seq − 1` ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
    /// The entry.
    pub entry: AccessEntry,
}

/// What `crest audit verify` found.
#[derive(Clone, Debug, PartialEq)]
pub struct LogCheck {
    /// Entries checked.
    pub entries: u64,
    /// The last entry's hash (keep it: a truncated log shows as a different head).
    pub head: String,
    /// The first break in the chain, in words, or `None` when the log is intact.
    pub broken: Option<String>,
}

/// Checks the chain, reading it in pages of `(after_seq, limit)`.
pub fn verify(mut read: impl FnMut(i64, usize) -> Result<Vec<ChainEntry>>) -> Result<LogCheck> {
    const PAGE: usize = 10_000;
    let (mut expected_seq, mut prev, mut entries) = (1_i64, GENESIS.to_string(), 0_u64);
    loop {
        let page = read(expected_seq - 1, PAGE)?;
        let done = page.len() < PAGE;
        for c in page {
            let broken = if c.seq != expected_seq {
                Some(format!(
                    "entry {expected_seq} is missing (deleted?): the next entry is {} ({} {} by {})",
                    c.seq, c.entry.at, c.entry.action, c.entry.username
                ))
            } else if c.prev_hash != prev {
                Some(format!(
                    "entry {} ({}) does not follow entry {}: an entry before it was changed or replaced",
                    c.seq,
                    c.entry.at,
                    c.seq - 1
                ))
            } else if entry_hash(&prev, c.seq, &c.entry) != c.hash {
                Some(format!(
                    "entry {} ({} {} by {}) was edited after it was written",
                    c.seq, c.entry.at, c.entry.action, c.entry.username
                ))
            } else {
                None
            };
            if broken.is_some() {
                return Ok(LogCheck {
                    entries,
                    head: prev,
                    broken,
                });
            }
            entries += 1;
            expected_seq += 1;
            prev = c.hash;
        }
        if done {
            return Ok(LogCheck {
                entries,
                head: prev,
                broken: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail: &str) -> AccessEntry {
        AccessEntry {
            at: "2025-01-01T00:00:00Z".into(),
            username: "u".into(),
            role: "programme_staff".into(),
            programme: "P001".into(),
            action: "view".into(),
            target: "E1".into(),
            outcome: "ok".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn hashes_are_sha256_hex_and_depend_on_every_part() {
        let h = entry_hash(GENESIS, 1, &entry(""));
        assert_eq!(h.len(), 64);
        assert!(h
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(h, entry_hash(GENESIS, 2, &entry("")));
        assert_ne!(h, entry_hash(&"1".repeat(64), 1, &entry("")));
        assert_ne!(h, entry_hash(GENESIS, 1, &entry("x")));
        // Moving a character between fields changes the hash (length prefixes).
        let mut a = entry("");
        a.target = "E1x".into();
        let mut b = entry("x");
        b.target = "E1".into();
        assert_ne!(entry_hash(GENESIS, 1, &a), entry_hash(GENESIS, 1, &b));
    }
}
