//! A validated episode: one [`Value`] per column of [`crate::FIELDS`].

use crate::dataset::{Col, FIELDS};
use crate::date::Date;
use crate::value::Value;

/// One episode, every column of the dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    values: Vec<Value>,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            values: vec![Value::Null; FIELDS.len()],
        }
    }
}

impl Record {
    /// A record with every column empty.
    pub fn new() -> Record {
        Record::default()
    }

    /// The value of a column.
    pub fn get(&self, col: Col) -> &Value {
        &self.values[col as usize]
    }

    /// Sets a column.
    pub fn set(&mut self, col: Col, v: Value) {
        self.values[col as usize] = v;
    }

    /// All values in [`FIELDS`] order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Builds a record from values in [`FIELDS`] order; `None` if the count is wrong.
    pub fn from_values(values: Vec<Value>) -> Option<Record> {
        (values.len() == FIELDS.len()).then_some(Record { values })
    }

    /// Text of a text or code column.
    pub fn text(&self, col: Col) -> Option<&str> {
        match self.get(col) {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// A date column.
    pub fn date(&self, col: Col) -> Option<Date> {
        match self.get(col) {
            Value::Date(d) => Some(*d),
            _ => None,
        }
    }

    /// A numeric column as a decimal.
    pub fn num(&self, col: Col) -> Option<f64> {
        match self.get(col) {
            Value::Num(x) => Some(*x),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// Fills every empty column of `self` from `older`: a re-import never overwrites a known
    /// value with an empty one.
    pub fn fill_from(&mut self, older: &Record) {
        for (new, old) in self.values.iter_mut().zip(&older.values) {
            if new.is_null() {
                *new = old.clone();
            }
        }
    }
}
