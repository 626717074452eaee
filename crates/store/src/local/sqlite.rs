//! What the local store does differently on SQLite: an episode's values bound one by one to a
//! cached prepared statement (collecting them first was a measurable share of a bulk load,
//! and dates are rendered on the stack), the episode indexes a bulk load drops, and the
//! rollback journal a first import is written with.

use super::LocalDb;
use crate::db::Sqlite;
use crate::{schema, Result};
use crest_core::{Record, Value, FIELD_COUNT};
use rusqlite::types::{ToSqlOutput, ValueRef};

impl LocalDb for Sqlite {
    fn write_episode(&mut self, sql: &str, rec: &Record, key: Option<[&str; 2]>) -> Result<()> {
        let mut st = self.conn.prepare_cached(sql)?;
        for (i, v) in rec.values().iter().enumerate() {
            match v {
                Value::Date(d) => st.raw_bind_parameter(
                    i + 1,
                    ToSqlOutput::Borrowed(ValueRef::Text(&d.iso_bytes())),
                )?,
                Value::Null => st.raw_bind_parameter(i + 1, rusqlite::types::Null)?,
                Value::Text(t) => st.raw_bind_parameter(i + 1, t.as_str())?,
                Value::Int(x) => st.raw_bind_parameter(i + 1, x)?,
                Value::Num(x) => st.raw_bind_parameter(i + 1, x)?,
                Value::Bool(b) => st.raw_bind_parameter(i + 1, b)?,
            }
        }
        if let Some([programme, episode]) = key {
            st.raw_bind_parameter(FIELD_COUNT + 1, programme)?;
            st.raw_bind_parameter(FIELD_COUNT + 2, episode)?;
        }
        st.raw_execute()?;
        Ok(())
    }

    fn bulk_indexes(&self) -> &'static [(&'static str, &'static str)] {
        &schema::BULK_INDEXES
    }

    /// A bulk load into an empty table is written with a rollback journal rather than the
    /// write-ahead log: the log would hold every new page and then copy it into the file (for
    /// ten million episodes, gigabytes written twice, a fifth of the load's time), while a
    /// rollback journal need not hold a page that lies past the end of the file when the
    /// transaction starts, so the new pages are written once, and just as durably. SQLite
    /// leaves the log only when no other connection has the file open, and says so; otherwise
    /// the load goes through the log as any import does. Meanwhile other connections wait
    /// for the load, as they would for any writer's commit.
    fn bulk_start(&mut self) -> bool {
        self.journal("DELETE")
    }

    fn bulk_end(&mut self) {
        // If this fails the file stays in rollback mode until the next connection opens it,
        // which switches it back (every connection asks for the log as it opens).
        let _ = self.journal("WAL");
    }
}

impl Sqlite {
    /// Switches the journal mode without waiting for other connections; whether it is now `mode`.
    fn journal(&mut self, mode: &str) -> bool {
        if self.conn.busy_timeout(std::time::Duration::ZERO).is_err() {
            return false;
        }
        let now: Option<String> = self
            .conn
            .query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0))
            .ok();
        let _ = self.conn.busy_timeout(crate::db::BUSY_WAIT);
        now.is_some_and(|m| m.eq_ignore_ascii_case(mode))
    }
}
