//! The one trait the national store needs of a database, with a SQLite and a PostgreSQL
//! implementation (`national::sqlite`, `national::pg`). Queries are written once, with `?N`
//! placeholders, and read through [`RowRef`], which borrows each cell without copying it; only
//! migrating and receiving (SQLite's plain inserts, PostgreSQL's binary COPY) differ by back end.

use super::model::{Receipt, ReceiptItems, Received};
use crate::{AccessEntry, ChainEntry, Result};

/// A query parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Param<'a> {
    /// Text.
    Text(&'a str),
    /// A whole number.
    Int(i64),
    /// Bytes.
    Blob(&'a [u8]),
}

/// One row of a result, read cell by cell (column numbers from 0).
pub(crate) trait RowRef {
    /// A text cell (`None` for NULL).
    fn text(&self, i: usize) -> Result<Option<&str>>;
    /// A whole-number cell.
    fn int(&self, i: usize) -> Result<Option<i64>>;
    /// A decimal cell.
    fn real(&self, i: usize) -> Result<Option<f64>>;
    /// A yes/no cell (a boolean, or a number where 0 is no).
    fn flag(&self, i: usize) -> Result<Option<bool>>;
    /// A bytes cell (`None` for NULL).
    fn blob(&self, i: usize) -> Result<Option<&[u8]>>;

    /// A text cell that must be there.
    fn string(&self, i: usize) -> Result<String> {
        Ok(self.text(i)?.unwrap_or_default().to_string())
    }
}

/// What the national store needs of a database.
pub(crate) trait NationalDb: Send {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Whether the table exists.
    fn has_table(&mut self, name: &str) -> Result<bool>;
    /// Every column of every table as `table.column`.
    fn columns(&mut self) -> Result<Vec<String>>;
    /// Runs a query and hands each row to `row`.
    fn each(
        &mut self,
        sql: &str,
        params: &[Param],
        row: &mut dyn FnMut(&dyn RowRef) -> Result<()>,
    ) -> Result<()>;
    /// Before (`true`) and after (`false`) a scan that reads every row once: a database that
    /// caches pages may hold less meanwhile, since the scan will not read them again.
    fn scanning(&mut self, _on: bool) -> Result<()> {
        Ok(())
    }
    /// Runs a statement; the number of rows it changed.
    fn execute(&mut self, sql: &str, params: &[Param]) -> Result<usize>;
    /// Runs `work` in one transaction: committed if it succeeds, rolled back if not.
    fn transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn NationalDb) -> Result<()>,
    ) -> Result<()>;
    /// Appends to the hash-chained access log (in a transaction of its own).
    fn append_log(&mut self, e: &AccessEntry) -> Result<()>;
    /// The access log's chain from sequence `after + 1`.
    fn read_chain(&mut self, after: i64, limit: usize) -> Result<Vec<ChainEntry>>;
    /// Applies the national migrations not yet applied; how many.
    fn migrate(&mut self) -> Result<usize>;
    /// Stores a receipt in one transaction (see `NationalStore::receive`).
    fn receive(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received>;
}

/// The first row's cells read by `read`, if there is a row.
pub(crate) fn first<T>(
    db: &mut dyn NationalDb,
    sql: &str,
    params: &[Param],
    mut read: impl FnMut(&dyn RowRef) -> Result<T>,
) -> Result<Option<T>> {
    let mut out = None;
    db.each(sql, params, &mut |r| {
        if out.is_none() {
            out = Some(read(r)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Every row read by `read`.
pub(crate) fn all<T>(
    db: &mut dyn NationalDb,
    sql: &str,
    params: &[Param],
    mut read: impl FnMut(&dyn RowRef) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    db.each(sql, params, &mut |r| {
        out.push(read(r)?);
        Ok(())
    })?;
    Ok(out)
}
