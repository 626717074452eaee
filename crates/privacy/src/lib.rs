//! The privacy boundary between the local (identifiable) and national (pseudonymised) stores
//! (privacy.md): the only way data moves from one to the other is a submission built here, by
//! leaving out opt-outs (the patient's own request and the National Data Opt-out), keeping only
//! approved fields and replacing identifiers with keyed pseudonyms; and received here, checked
//! and re-keyed before the national store holds any of it.

pub mod generalise;
pub mod keys;
pub mod research;
pub mod signing;
pub mod submission;

pub use keys::Key;
pub use signing::{PublicKey, SigningKey, SigningKeys};
