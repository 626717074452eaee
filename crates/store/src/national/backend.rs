//! What the national store needs of a database beyond [`Db`]: receiving a submission, the one
//! operation whose fast path differs by back end (SQLite's plain inserts, PostgreSQL's binary
//! COPY). Everything else is written once in `national` over [`Db`].

use super::model::{Receipt, ReceiptItems, Received};
use crate::db::Db;
use crate::{AccessEntry, Result};

/// A database the national store can live in.
pub(crate) trait NationalDb: Db {
    /// Stores a receipt in one transaction (see `NationalStore::receive`).
    fn receive(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received>;
}
