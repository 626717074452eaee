//! What the national store needs of a database beyond [`Db`]: receiving a submission, the one
//! operation whose fast path differs by back end (SQLite's plain inserts, PostgreSQL's binary
//! COPY). Everything else is written once in `national` over [`Db`].

use super::model::{Receipt, ReceiptItems, Received};
use crate::db::{in_transaction, Db, Lock};
use crate::{AccessEntry, Result};

/// A database the national store can live in.
pub(crate) trait NationalDb: Db {
    /// Stores a receipt inside the caller's transaction: this back end's fast path.
    fn store_receipt(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received>;

    /// Stores a receipt in one transaction (see `NationalStore::receive`).
    fn receive(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received> {
        in_transaction(self, Lock::Rows, |db| {
            db.store_receipt(r, items, received_at, log)
        })
    }
}
