//! The national store on PostgreSQL.

use super::backend::{NationalDb, Param, RowRef};
use super::model::{national_fields, Receipt, ReceiptItem, ReceiptItems, Received};
use super::receipt;
use crate::{AccessEntry, ChainEntry, Result, StoreError};
use postgres::types::{ToSql, Type};

/// A national store in a PostgreSQL database.
pub(crate) struct PgNational {
    client: postgres::Client,
}

impl PgNational {
    /// Connects to `url`.
    pub(crate) fn open(url: &str) -> Result<PgNational> {
        Ok(PgNational {
            client: postgres::Client::connect(url, postgres::NoTls)?,
        })
    }
}

fn pg(sql: &str) -> String {
    crate::accounts::sql::pg(sql)
}

fn params<'a>(p: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    p.iter()
        .map(|p| match p {
            Param::Text(t) => t as &(dyn ToSql + Sync),
            Param::Int(n) => n as &(dyn ToSql + Sync),
            Param::Blob(b) => b as &(dyn ToSql + Sync),
        })
        .collect()
}

impl RowRef for postgres::Row {
    fn text(&self, i: usize) -> Result<Option<&str>> {
        Ok(self.try_get(i)?)
    }

    fn int(&self, i: usize) -> Result<Option<i64>> {
        let t = self.columns()[i].type_();
        Ok(if *t == Type::INT4 {
            self.try_get::<_, Option<i32>>(i)?.map(i64::from)
        } else if *t == Type::INT2 {
            self.try_get::<_, Option<i16>>(i)?.map(i64::from)
        } else {
            self.try_get(i)?
        })
    }

    fn real(&self, i: usize) -> Result<Option<f64>> {
        let t = self.columns()[i].type_();
        Ok(if *t == Type::FLOAT4 {
            self.try_get::<_, Option<f32>>(i)?.map(f64::from)
        } else if *t == Type::FLOAT8 {
            self.try_get(i)?
        } else {
            self.int(i)?.map(|n| n as f64)
        })
    }

    fn flag(&self, i: usize) -> Result<Option<bool>> {
        if *self.columns()[i].type_() == Type::BOOL {
            Ok(self.try_get(i)?)
        } else {
            Ok(self.int(i)?.map(|n| n != 0))
        }
    }

    fn blob(&self, i: usize) -> Result<Option<&[u8]>> {
        Ok(self.try_get(i)?)
    }
}

impl NationalDb for PgNational {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn has_table(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .client
            .query_one(
                "SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
                &[&name],
            )?
            .get(0))
    }

    fn columns(&mut self) -> Result<Vec<String>> {
        Ok(self
            .client
            .query(
                "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = current_schema()",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn each(
        &mut self,
        sql: &str,
        p: &[Param],
        row: &mut dyn FnMut(&dyn RowRef) -> Result<()>,
    ) -> Result<()> {
        // Rows stream from the server one at a time (a million-row extract never sits in
        // memory), rather than `query`, which collects them all first.
        use postgres::fallible_iterator::FallibleIterator;
        let mut rows = self
            .client
            .query_raw(pg(sql).as_str(), params(p).iter().copied())?;
        while let Some(r) = rows.next()? {
            row(&r)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, p: &[Param]) -> Result<usize> {
        Ok(self.client.execute(pg(sql).as_str(), &params(p))? as usize)
    }

    fn transaction(
        &mut self,
        work: &mut dyn FnMut(&mut dyn NationalDb) -> Result<()>,
    ) -> Result<()> {
        self.client.batch_execute("BEGIN")?;
        match work(self) {
            Ok(()) => Ok(self.client.batch_execute("COMMIT")?),
            Err(e) => {
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    fn append_log(&mut self, e: &AccessEntry) -> Result<()> {
        crate::pg::append_log(&mut self.client, e)
    }

    fn read_chain(&mut self, after: i64, limit: usize) -> Result<Vec<ChainEntry>> {
        crate::pg::read_chain(&mut self.client, after, limit)
    }

    fn migrate(&mut self) -> Result<usize> {
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(421338)", &[])?;
        tx.execute(crate::migrations::NATIONAL_TABLE, &[])?;
        let v: i64 = tx
            .query_one(
                "SELECT coalesce(max(version), 0)::BIGINT FROM crest_national_migrations",
                &[],
            )?
            .get(0);
        let mut applied = 0;
        for m in crate::migrations::NATIONAL_POSTGRES.iter().skip(v as usize) {
            tx.batch_execute(m.sql)?;
            tx.execute(
                "INSERT INTO crest_national_migrations (version) VALUES ($1)",
                &[&(m.version as i64)],
            )?;
            applied += 1;
        }
        tx.commit()?;
        Ok(applied)
    }

    fn receive(
        &mut self,
        r: &Receipt,
        items: &mut dyn FnMut() -> Box<ReceiptItems>,
        received_at: &str,
        log: Option<&AccessEntry>,
    ) -> Result<Received> {
        let slot = receipt::slot(r);
        let (from, to) = (r.from.to_string(), r.to.to_string());
        let (n_eps, n_tomb) = (r.episodes as i64, r.tombstones as i64);
        let c = &mut self.client;
        let mut tx = c.transaction()?;
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
            let mut attempt = tx.savepoint("direct")?;
            match copy_items(&mut attempt, "national_episodes", &mut *items(), &r.id) {
                Ok(copied) => {
                    attempt.commit()?;
                    Some(copied)
                }
                Err(StoreError::Postgres(e))
                    if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
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
                let copied = copy_items(&mut tx, "national_staging", &mut *items(), &r.id)?;
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
            crate::pg::write_log(&mut tx, &e)?;
        }
        tx.commit()?;
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
    tx: &mut postgres::Transaction,
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
    let mut rows = crate::pg::BinaryRows::new();
    // The server stopping the copy (a value it will not take) is a refusal of the file, not
    // unreadable stored data.
    let io = |e: std::io::Error| {
        StoreError::Refused(format!(
            "the national store would not take the episodes ({e}); nothing was stored"
        ))
    };
    for item in items {
        match item.map_err(StoreError::Refused)? {
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
