//! The national store on SQLite: receiving a submission with plain inserts.

use super::backend::NationalDb;
use super::model::{national_fields, Receipt, ReceiptItem, ReceiptItems, Received};
use super::receipt;
use crate::db::{self, value_sql, Sqlite};
use crate::{AccessEntry, Result};

impl NationalDb for Sqlite {
    fn store_receipt(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received> {
        let db = self;
        let slot = receipt::slot(r);
        let insert = receipt::insert_episode();
        let (from, to) = (r.from.to_string(), r.to.to_string());
        let (n_eps, n_tomb) = (r.episodes as i64, r.tombstones as i64);
        let tx = &db.conn;
        if tx.query_row(receipt::SEEN, [&r.id], |x| x.get::<_, i64>(0))? > 0 {
            return Ok(Received::AlreadyReceived);
        }
        let current: Option<(String, String)> = {
            use rusqlite::OptionalExtension;
            tx.query_row(receipt::CURRENT, [&slot], |x| Ok((x.get(0)?, x.get(1)?)))
                .optional()?
        };
        // The programme's packed facts are stale from here on, so they are emptied first: the
        // row triggers count every changed episode on that row, and SQLite rewrites a row
        // whole, so counting beside a large packed blob made replacing quadratic (60,000
        // episodes: 98 s). They are packed again when next read.
        tx.execute(
            "UPDATE national_kpi_facts SET facts = x'', packed_changes = -1 WHERE programme_code = ?1",
            [&r.programme],
        )?;
        let mut replaced = 0;
        if let Some((old, created)) = current {
            if created > r.created_at {
                return Err(receipt::older(r, &created));
            }
            replaced = tx.execute(receipt::DROP_OLD, [&r.programme, &old])?;
            tx.execute(receipt::RETIRE, [&old])?;
        }
        tx.execute(
            receipt::SUBMISSION,
            rusqlite::params![
                r.id,
                r.programme,
                from,
                to,
                r.key_id,
                r.dataset_version,
                r.created_at,
                received_at,
                n_eps,
                n_tomb,
                slot
            ],
        )?;
        let (mut stored, mut tombstones, mut deleted) = (0, 0, 0);
        {
            let mut st = tx.prepare(&insert)?;
            let mut drop_one = tx.prepare(receipt::TOMBSTONE)?;
            for item in items() {
                match item? {
                    ReceiptItem::Tombstone(t) => {
                        tombstones += 1;
                        deleted += drop_one.execute([&r.programme, &t])?;
                    }
                    ReceiptItem::Episode(e) => {
                        stored += 1;
                        let mut p: Vec<rusqlite::types::ToSqlOutput> = vec![
                            rusqlite::types::ToSqlOutput::from(e.episode_key.as_str()),
                            rusqlite::types::ToSqlOutput::from(e.patient_key.as_str()),
                            rusqlite::types::ToSqlOutput::from(r.id.as_str()),
                        ];
                        p.extend(national_fields().map(|f| value_sql(e.record.get(f.col))));
                        // Delete then plain insert, not an upsert: an upsert makes
                        // SQLite journal every page each row touches (a statement
                        // journal), which doubled the cost of a large receipt.
                        drop_one.execute([&r.programme, &e.episode_key])?;
                        st.execute(rusqlite::params_from_iter(p.iter()))?;
                    }
                }
            }
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
