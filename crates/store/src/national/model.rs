//! What the national store holds and answers with: received episodes, submissions, receipts,
//! outlier cases, API tokens, and the facts the national analyses read.

use crate::{Result, StoreError};
use crest_core::{Date, Field, Kind, Record, Tier, Value, FIELDS};

/// The dictionary fields the national store holds: tier N and the derived (D) ones.
pub fn national_fields() -> impl Iterator<Item = &'static Field> + Clone {
    FIELDS.iter().filter(|f| f.tier != Tier::Local)
}

/// One received episode: its national keys and its minimised record (local fields empty).
#[derive(Clone, Debug, PartialEq)]
pub struct NationalEpisode {
    /// HMAC(national key, submitted episode key).
    pub episode_key: String,
    /// HMAC(national key, submitted patient key): the same patient in any programme.
    pub patient_key: String,
    /// The tier N and D values; tier L fields are always empty.
    pub record: Record,
}

/// A submission as the national store keeps it (its payload already re-keyed).
#[derive(Clone, Debug)]
pub struct Receipt {
    /// SHA-256 of the manifest line (which holds the payload's checked SHA-256, the programme,
    /// period and build time): the submission's identity, so a fresh build is a new submission
    /// even when its payload is byte for byte an older one's.
    pub id: String,
    /// Programme it came from.
    pub programme: String,
    /// Referral period it covers.
    pub from: Date,
    /// End of the period.
    pub to: Date,
    /// Submission key id.
    pub key_id: String,
    /// Dataset version.
    pub dataset_version: String,
    /// When the programme built it (UTC, ISO 8601).
    pub created_at: String,
    /// Episodes it carries (the manifest's count; the stream must match it).
    pub episodes: usize,
    /// Tombstones it carries.
    pub tombstones: usize,
}

/// One item of a submission's payload, already re-keyed.
#[derive(Clone, Debug)]
pub enum ReceiptItem {
    /// An episode to store.
    Episode(NationalEpisode),
    /// An episode key to delete.
    Tombstone(String),
}

/// What receiving did.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// Stored; `replaced` episodes of an older submission for the same programme and period
    /// were removed first, and `deleted` episodes by tombstone.
    Stored {
        /// Episodes stored.
        episodes: usize,
        /// Episodes of the older submission for the same programme and period, replaced.
        replaced: usize,
        /// Episodes removed by tombstones.
        deleted: usize,
    },
    /// This exact submission was received before; nothing changed.
    AlreadyReceived,
}

/// The same patient (patient key) with the same initiating event date in more than one
/// programme: reported, and counted once nationally.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossProgrammeDuplicate {
    /// National patient key.
    pub patient_key: String,
    /// The initiating event date.
    pub event_date: String,
    /// The programmes, in code order.
    pub programmes: Vec<String>,
}

/// What the inequality analyses need of one national episode.
#[derive(Clone, Debug, PartialEq)]
pub struct EquityFact {
    /// Programme code.
    pub programme: String,
    /// The referral date.
    pub referred: crest_core::Date,
    /// `male`, `female`, … or `None`.
    pub sex: Option<String>,
    /// Age at the event.
    pub age: Option<i64>,
    /// NHS ethnic category letter.
    pub ethnicity: Option<String>,
    /// IMD quintile (1 = most deprived).
    pub imd_quintile: Option<i64>,
    /// Priority group.
    pub group: crest_core::PriorityGroup,
    /// Started core CR.
    pub started: bool,
}

/// For each numeric measure (its assessment 1 field), the (A1, A2) value pairs.
pub type OutcomePairs = Vec<(&'static Field, Vec<(f64, f64)>)>;

/// A submission the national store holds.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldSubmission {
    /// Its identity: the SHA-256 of its manifest line (of the payload alone for submissions
    /// received before national migration 6).
    pub sha256: String,
    /// Programme.
    pub programme: String,
    /// Period start (ISO).
    pub from: String,
    /// Period end (ISO).
    pub to: String,
    /// Submission key id.
    pub key_id: String,
    /// Episodes it carried.
    pub episodes: i64,
    /// Whether it is the current one for its programme and period.
    pub current: bool,
}

/// The national store's schema version: the number of national migrations.
pub const NATIONAL_SCHEMA_VERSION: usize = crate::migrations::NATIONAL_SQLITE.len();

/// The stages of an outlier case, in order.
pub const CASE_STAGES: [&str; 4] = ["open", "contacted", "response_received", "closed"];

/// An outlier case: a programme outside a funnel's limits for a KPI and period.
#[derive(Clone, Debug, PartialEq)]
pub struct OutlierCase {
    /// `programme|kpi|from|to`.
    pub id: String,
    /// Programme.
    pub programme: String,
    /// KPI key (`uptake`, `assessment1`, …).
    pub kpi: String,
    /// Period start (ISO).
    pub from: String,
    /// Period end (ISO).
    pub to: String,
    /// `alert` or `alarm`.
    pub level: String,
    /// `low` or `high`.
    pub direction: String,
    /// What was found, e.g. `12/40 = 30.0% (pooled 55.0%)`.
    pub finding: String,
    /// The current stage (see [`CASE_STAGES`]).
    pub status: String,
    /// When it was opened.
    pub opened_at: String,
}

/// One dated entry of a case's history.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseNote {
    /// When.
    pub at: String,
    /// Who.
    pub username: String,
    /// The stage after this entry.
    pub status: String,
    /// What was done or said.
    pub note: String,
}

/// Hex digits of a token's hash that name it in `crest tokens list` and `revoke`.
pub(crate) const TOKEN_ID_LEN: usize = 12;

/// An API token as `crest tokens list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiToken {
    /// The first 12 hex digits of the token's SHA-256: names it without revealing it.
    pub id: String,
    /// The programme it sends for.
    pub programme: String,
    /// When it was made.
    pub created_at: String,
    /// When it stops working.
    pub expires_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// What an API token presented to the API may do.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenAccess {
    /// Send the named programme's submissions.
    Valid(String),
    /// Nothing: it expired (the programme it was for).
    Expired(String),
    /// Nothing: it was revoked (the programme it was for).
    Revoked(String),
    /// Nothing: no such token.
    Unknown,
}

/// A receipt's payload: episodes and tombstones in file order, or the first error.
pub type ReceiptItems = dyn Iterator<Item = std::result::Result<ReceiptItem, crest_core::Invalid>>;

/// A date column's text as a date value; other text as text.
pub(crate) fn text_value(f: &Field, t: &str) -> Result<Value> {
    Ok(match f.kind {
        Kind::Date => Value::Date(
            Date::parse_iso(t).map_err(|e| StoreError::Corrupt(format!("{}: {}", f.name, e.0)))?,
        ),
        _ => Value::Text(t.to_string()),
    })
}

/// A programme's public signing key as the national store registers it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgrammeSigningKey {
    /// The key's public id (`sig-…`).
    pub key_id: String,
    /// The programme whose submissions it signs.
    pub programme: String,
    /// The public key (`ed25519:` and 64 hex digits).
    pub public_key: String,
    /// First day it is accepted.
    pub valid_from: Date,
    /// Last day it is accepted, if it has one.
    pub valid_to: Option<Date>,
    /// When it was registered (UTC, ISO 8601).
    pub added_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

impl ProgrammeSigningKey {
    /// Whether it may sign on `day`: not revoked and within its validity.
    pub fn in_force(&self, day: Date) -> bool {
        self.revoked_at.is_none()
            && self.valid_from <= day
            && self.valid_to.is_none_or(|to| day <= to)
    }
}
