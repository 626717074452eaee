//! What the local store does differently on SQLite: an episode's values bound one by one to a
//! cached prepared statement (collecting them first was a measurable share of a bulk load,
//! and dates are rendered on the stack), and the episode indexes a bulk load drops.

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
}
