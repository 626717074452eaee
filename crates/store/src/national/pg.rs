//! The national store on PostgreSQL: receiving a submission by binary COPY.

use super::backend::NationalDb;
use super::model::{national_fields, Receipt, ReceiptItem, ReceiptItems, Received};
use super::receipt;
use crate::db::{self, Postgres};
use crate::{AccessEntry, Result, StoreError};
use crest_core::{Kind, Value};

fn pg(sql: &str) -> String {
    db::pg_placeholders(sql)
}

impl NationalDb for Postgres {
    fn store_receipt(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received> {
        let db = self;
        let slot = receipt::slot(r);
        let (from, to) = (r.from.to_string(), r.to.to_string());
        let (n_eps, n_tomb) = (r.episodes as i64, r.tombstones as i64);
        let tx = &mut db.client;
        // One receipt per programme and period at a time.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1)::BIGINT)",
            &[&slot],
        )?;
        if tx
            .query_one(pg(receipt::SEEN).as_str(), &[&r.id])?
            .get::<_, i64>(0)
            > 0
        {
            return Ok(Received::AlreadyReceived);
        }
        let current = tx.query_opt(pg(receipt::CURRENT).as_str(), &[&slot])?;
        let mut replaced = 0;
        if let Some(row) = current {
            let (old, created): (String, String) = (row.get(0), row.get(1));
            if created > r.created_at {
                return Err(receipt::older(r, &created));
            }
            replaced = tx.execute(pg(receipt::DROP_OLD).as_str(), &[&r.programme, &old])? as usize;
            tx.execute(pg(receipt::RETIRE).as_str(), &[&old])?;
        }
        tx.execute(
            pg(receipt::SUBMISSION).as_str(),
            &[
                &r.id,
                &r.programme,
                &from,
                &to,
                &r.key_id,
                &r.dataset_version,
                &r.created_at,
                &received_at,
                &n_eps,
                &n_tomb,
                &slot,
            ],
        )?;
        // Episodes go in by binary COPY (one round trip, not one per row), straight
        // into the table. An episode already held under another submission (one that
        // moved period) makes that fail on the key; then the payload is read again
        // into a staging table and merged in one statement.
        let direct = {
            tx.batch_execute("SAVEPOINT direct")?;
            match copy_items(tx, "national_episodes", &mut *items(), &r.id) {
                Ok(copied) => {
                    tx.batch_execute("RELEASE SAVEPOINT direct")?;
                    Some(copied)
                }
                Err(StoreError::Postgres(e))
                    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT direct")?;
                    None
                }
                Err(e) => return Err(e),
            }
        };
        let (stored, dropped) = match direct {
            Some(copied) => copied,
            None => {
                tx.batch_execute(
                    "CREATE TEMP TABLE national_staging (LIKE national_episodes) ON COMMIT DROP",
                )?;
                let copied = copy_items(tx, "national_staging", &mut *items(), &r.id)?;
                let names: Vec<&str> = national_fields().map(|f| f.name).collect();
                tx.batch_execute(&format!(
                        "INSERT INTO national_episodes SELECT * FROM national_staging ON CONFLICT (programme_code, episode_key) DO UPDATE SET \
                         patient_key = excluded.patient_key, submission = excluded.submission, {}",
                        names
                            .iter()
                            .map(|n| format!("{n} = excluded.{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))?;
                copied
            }
        };
        let (tombstones, mut deleted) = (dropped.len(), 0);
        let drop_one = tx.prepare(&pg(receipt::TOMBSTONE))?;
        for t in &dropped {
            deleted += tx.execute(&drop_one, &[&r.programme, t])? as usize;
        }
        if (stored, tombstones) != (r.episodes, r.tombstones) {
            return Err(receipt::mismatch(r, stored, tombstones));
        }
        if let Some(e) = receipt::entry(log, received_at, (stored, replaced, deleted)) {
            db::write_log(db, &e)?;
        }
        Ok(Received::Stored {
            episodes: stored,
            replaced,
            deleted,
        })
    }
}

/// Binary COPY of a payload's episodes into `table`; returns the episodes counted and the
/// tombstones' keys (applied after the episodes).
fn copy_items(
    tx: &mut postgres::Client,
    table: &str,
    items: &mut ReceiptItems,
    submission: &str,
) -> Result<(usize, Vec<String>)> {
    use std::io::Write;
    let names: Vec<&str> = national_fields().map(|f| f.name).collect();
    let (mut stored, mut dropped) = (0, Vec::new());
    let mut sink = tx.copy_in(&format!(
        "COPY {table} (episode_key, patient_key, submission, {}) FROM STDIN BINARY",
        names.join(", ")
    ))?;
    let mut rows = BinaryRows::new();
    // The server stopping the copy (a value it will not take) is a refusal of the file, not
    // unreadable stored data.
    let io = |e: std::io::Error| {
        StoreError::Refused(format!(
            "the national store would not take the episodes ({e}); nothing was stored"
        ))
    };
    for item in items {
        match item? {
            ReceiptItem::Tombstone(t) => dropped.push(t),
            ReceiptItem::Episode(e) => {
                stored += 1;
                rows.row(3 + names.len());
                rows.text(&e.episode_key);
                rows.text(&e.patient_key);
                rows.text(submission);
                for f in national_fields() {
                    rows.value(f, e.record.get(f.col));
                }
                if rows.len() >= 1 << 20 {
                    sink.write_all(&rows.take()).map_err(io)?;
                }
            }
        }
    }
    rows.end();
    sink.write_all(&rows.take()).map_err(io)?;
    sink.finish()?;
    Ok((stored, dropped))
}

/// Rows in PostgreSQL's binary COPY format, encoded straight into one buffer. The generic
/// `ToSql` route boxes every value of every row, which on a large receipt cost more than the
/// server's own work. Column types follow `schema::column_type`: BIGINT, DOUBLE PRECISION,
/// BOOLEAN, and TEXT for everything else (dates as ISO text).
pub(crate) struct BinaryRows {
    buf: Vec<u8>,
}

impl BinaryRows {
    /// A buffer holding the format's header.
    pub(crate) fn new() -> BinaryRows {
        let mut buf = Vec::with_capacity(1 << 20);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        BinaryRows { buf }
    }

    /// Starts a row of `columns` values.
    pub(crate) fn row(&mut self, columns: usize) {
        // A table has at most 1,600 columns, so this never truncates.
        self.buf.extend_from_slice(&(columns as i16).to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        // Values here are short texts and numbers, far below 2 GiB.
        self.buf.extend_from_slice(&(b.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(b);
    }

    /// A text value.
    pub(crate) fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A dictionary field's value, typed as its column (a value of the wrong kind is NULL,
    /// as with [`param`]).
    pub(crate) fn value(&mut self, f: &crest_core::Field, v: &Value) {
        match (f.kind, v) {
            (Kind::Int { .. }, Value::Int(i)) => self.bytes(&i.to_be_bytes()),
            (Kind::Decimal { .. }, Value::Num(x)) => self.bytes(&x.to_bits().to_be_bytes()),
            (Kind::Bool, Value::Bool(b)) => self.bytes(&[u8::from(*b)]),
            (Kind::Int { .. } | Kind::Decimal { .. } | Kind::Bool, _) | (_, Value::Null) => {
                self.buf.extend_from_slice(&(-1i32).to_be_bytes())
            }
            (_, Value::Text(s)) => self.text(s),
            (_, v) => self.text(&v.to_text()),
        }
    }

    /// Bytes held so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Hands over the bytes held so far (to write to the server) and starts empty.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Ends the data with the format's trailer.
    pub(crate) fn end(&mut self) {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
    }
}
