//! What the local store does differently on PostgreSQL: an episode's values as parameters
//! typed by their columns (so an empty value is NULL of the column's type), through a
//! statement prepared once per connection.

use super::LocalDb;
use crate::db::Postgres;
use crate::Result;
use crest_core::{Kind, Record, Value, FIELDS};
use postgres::types::ToSql;

/// One value as a typed parameter for its field's column.
fn param(f: &crest_core::Field, v: &Value) -> Box<dyn ToSql + Sync> {
    match (f.kind, v) {
        (Kind::Int { .. }, Value::Int(i)) => Box::new(Some(*i)),
        (Kind::Int { .. }, _) => Box::new(None::<i64>),
        (Kind::Decimal { .. }, Value::Num(x)) => Box::new(Some(*x)),
        (Kind::Decimal { .. }, _) => Box::new(None::<f64>),
        (Kind::Bool, Value::Bool(b)) => Box::new(Some(*b)),
        (Kind::Bool, _) => Box::new(None::<bool>),
        (_, Value::Null) => Box::new(None::<String>),
        (_, v) => Box::new(Some(v.to_text())),
    }
}

impl LocalDb for Postgres {
    fn write_episode(&mut self, sql: &str, rec: &Record, key: Option<[&str; 2]>) -> Result<()> {
        // Looked up by the statement as written: translating its placeholders for every row
        // would copy a statement of every column each time.
        let st = match self.statements.get(sql) {
            Some(st) => st.clone(),
            None => {
                let st = self.client.prepare(&crate::db::pg_placeholders(sql))?;
                self.statements.insert(sql.to_string(), st.clone());
                st
            }
        };
        let mut p: Vec<Box<dyn ToSql + Sync>> = FIELDS
            .iter()
            .zip(rec.values())
            .map(|(f, v)| param(f, v))
            .collect();
        if let Some([programme, episode]) = key {
            p.push(Box::new(programme.to_string()));
            p.push(Box::new(episode.to_string()));
        }
        let refs: Vec<&(dyn ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
        self.client.execute(&st, &refs)?;
        Ok(())
    }
}
