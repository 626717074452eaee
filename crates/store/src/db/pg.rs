//! PostgreSQL for both stores, for production and multi-user set-ups.

use super::{Db, Lock, Param, RowRef};
use crate::Result;
use postgres::types::{ToSql, Type};

/// A PostgreSQL database, connected.
pub struct Postgres {
    pub(crate) client: postgres::Client,
    /// Statements prepared on this connection, by their SQL as written (`?N`).
    pub(crate) statements: std::collections::HashMap<String, postgres::Statement>,
}

impl Postgres {
    /// Connects to a `postgres://` URL.
    pub(crate) fn connect(url: &str) -> Result<Postgres> {
        Ok(Postgres {
            client: postgres::Client::connect(url, postgres::NoTls)?,
            statements: Default::default(),
        })
    }
}

/// A query written with `?N` placeholders, in PostgreSQL's `$N`.
pub(crate) fn placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

/// A parameter as PostgreSQL takes it.
fn sql<'a>(p: &'a Param<'a>) -> &'a (dyn ToSql + Sync) {
    match p {
        Param::Text(t) => t,
        Param::Int(n) => n,
        Param::Bool(b) => b,
        Param::Blob(b) => b,
    }
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

impl Db for Postgres {
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
            .query_raw(placeholders(sql).as_str(), p.iter().map(self::sql))?;
        while let Some(r) = rows.next()? {
            row(&r)?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &str, p: &[Param]) -> Result<usize> {
        let refs: Vec<&(dyn ToSql + Sync)> = p.iter().map(self::sql).collect();
        Ok(self.client.execute(placeholders(sql).as_str(), &refs)? as usize)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    fn begin(&mut self, lock: Lock) -> Result<()> {
        self.client.batch_execute("BEGIN")?;
        if let Lock::Key(key) = lock {
            if let Err(e) = self
                .client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            {
                self.rollback();
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        Ok(self.client.batch_execute("COMMIT")?)
    }

    fn rollback(&mut self) {
        let _ = self.client.batch_execute("ROLLBACK");
    }
}
