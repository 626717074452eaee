//! Expected patients, kept the same way in a local and in the national store: a file's rows
//! are added or replaced by area, quarter and condition, so loading a file again changes
//! nothing and a corrected file replaces what it corrects.

use crate::db::{all, in_transaction, Db, Lock, Param};
use crate::{Result, StoreError};
use crest_core::expected::{Area, Condition, Expected, Quarter};
use std::collections::HashMap;

/// What loading an expected-patients file did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpectedLoad {
    /// Rows new to the store.
    pub added: usize,
    /// Rows whose count changed.
    pub changed: usize,
    /// Rows already there with the same count.
    pub unchanged: usize,
}

const ALL: &str = "SELECT area_kind, area, quarter, condition, expected FROM expected_patients \
    ORDER BY area_kind, area, quarter, condition";
const OF: &str = "SELECT area_kind, area, quarter, condition, expected FROM expected_patients \
    WHERE area_kind = ?1 AND area = ?2 ORDER BY quarter, condition";
const PUT: &str =
    "INSERT INTO expected_patients (area_kind, area, quarter, condition, expected, loaded_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (area_kind, area, quarter, condition) \
    DO UPDATE SET expected = excluded.expected, loaded_at = excluded.loaded_at";

/// Every expected-patients row of the store.
pub(crate) fn read<D: Db + ?Sized>(db: &mut D) -> Result<Vec<Expected>> {
    rows_of(db, ALL, &[])
}

/// The expected-patients rows of one area (a programme's dashboard reads only its own).
pub(crate) fn read_of<D: Db + ?Sized>(db: &mut D, area: &Area) -> Result<Vec<Expected>> {
    rows_of(
        db,
        OF,
        &[Param::Text(area.kind()), Param::Text(area.name())],
    )
}

fn rows_of<D: Db + ?Sized>(db: &mut D, sql: &str, params: &[Param]) -> Result<Vec<Expected>> {
    let rows = all(db, sql, params, |r| {
        Ok((
            r.string(0)?,
            r.string(1)?,
            r.string(2)?,
            r.string(3)?,
            r.number(4)?,
        ))
    })?;
    rows.into_iter()
        .map(|(kind, area, quarter, condition, n)| {
            let bad = |what: &str| StoreError::Corrupt(format!("expected patients: {what}"));
            Ok(Expected {
                area: Area::from_stored(&kind, &area).ok_or_else(|| bad("area kind"))?,
                quarter: Quarter::parse(&quarter).map_err(|_| bad("quarter"))?,
                condition: Condition::parse(&condition).map_err(|_| bad("condition"))?,
                count: u32::try_from(n).map_err(|_| bad("count"))?,
            })
        })
        .collect()
}

/// Adds or replaces `rows` in one transaction.
pub(crate) fn load<D: Db + ?Sized>(
    db: &mut D,
    rows: &[Expected],
    at: &str,
) -> Result<ExpectedLoad> {
    in_transaction(db, Lock::Rows, |db| {
        let held: HashMap<(Area, Quarter, Condition), u32> = read(db)?
            .into_iter()
            .map(|e| ((e.area, e.quarter, e.condition), e.count))
            .collect();
        let mut out = ExpectedLoad::default();
        for e in rows {
            match held.get(&(e.area.clone(), e.quarter, e.condition)) {
                Some(n) if *n == e.count => {
                    out.unchanged += 1;
                    continue;
                }
                Some(_) => out.changed += 1,
                None => out.added += 1,
            }
            let quarter = e.quarter.to_string();
            db.execute(
                PUT,
                &[
                    Param::Text(e.area.kind()),
                    Param::Text(e.area.name()),
                    Param::Text(&quarter),
                    Param::Text(e.condition.code()),
                    Param::Int(i64::from(e.count)),
                    Param::Text(at),
                ],
            )?;
        }
        Ok(out)
    })
}
