//! Rows and result sets returned by queries and reads.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::value::{FromValue, Value};

/// One row of a result, with its column names.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// Names a column of a [`Row`]: by position (`usize`) or by name (`&str`).
pub trait ColumnIndex: std::fmt::Debug {
    /// The position of the column in `row`, or `None` if there is no such column.
    fn position(&self, row: &Row) -> Option<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, row: &Row) -> Option<usize> {
        (*self < row.values.len()).then_some(*self)
    }
}

impl ColumnIndex for &str {
    fn position(&self, row: &Row) -> Option<usize> {
        row.columns.iter().position(|c| c == self)
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { columns, values }
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Takes the values out of the row.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// The raw value of a column, if the column exists.
    pub fn value(&self, index: impl ColumnIndex) -> Option<&Value> {
        index.position(self).map(|i| &self.values[i])
    }

    /// Reads a column as `T`: `row.get::<i64>("id")` or `row.get::<String>(1)`.
    ///
    /// Fails with [`Error::ColumnNotFound`] if the column does not exist, and with
    /// [`Error::ColumnDecode`] (naming the column and both types) if its value does not
    /// convert to `T`.
    pub fn get<T: FromValue>(&self, index: impl ColumnIndex) -> Result<T> {
        let pos = self.position(&index)?;
        T::from_value(&self.values[pos]).map_err(|e| e.in_column(&self.columns[pos]))
    }

    /// Like [`get`](Row::get), but moves the value out of the row (leaving NULL behind), so
    /// text, bytes and JSON are not copied.
    pub fn take<T: FromValue>(&mut self, index: impl ColumnIndex) -> Result<T> {
        let pos = self.position(&index)?;
        T::from_owned(std::mem::replace(&mut self.values[pos], Value::Null))
            .map_err(|e| e.in_column(&self.columns[pos]))
    }

    fn position(&self, index: &impl ColumnIndex) -> Result<usize> {
        index.position(self).ok_or_else(|| Error::ColumnNotFound {
            column: format!("{index:?}"),
            available: self.columns.to_vec(),
        })
    }
}

/// A whole, collected result: column names and rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
}

impl ResultSet {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row came back.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The only row, or an error if there are none or several.
    pub fn one(self) -> Result<Row> {
        only(self.rows)
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<&Row> {
        self.rows.first()
    }
}

/// The only element of `rows` (rows of any kind), or an error if there are none or several.
pub(crate) fn only<T>(rows: Vec<T>) -> Result<T> {
    let n = rows.len();
    let mut rows = rows.into_iter();
    match (rows.next(), n) {
        (Some(row), 1) => Ok(row),
        (_, 0) => Err(Error::RowNotFound),
        (_, count) => Err(Error::TooManyRows { count }),
    }
}

impl IntoIterator for ResultSet {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_moves_the_value_out_and_leaves_null() {
        let json = serde_json::json!({"a": [1, 2]});
        let mut row = Row::new(
            Arc::from(vec!["s".to_owned(), "j".to_owned()]),
            vec![Value::Text("x".into()), Value::Json(json.clone())],
        );
        assert_eq!(row.take::<String>("s").unwrap(), "x");
        assert_eq!(row.take::<serde_json::Value>(1).unwrap(), json);
        assert_eq!(row.value(0), Some(&Value::Null));
        assert_eq!(row.take::<Option<String>>(0).unwrap(), None);
        assert!(row.take::<String>(0).is_err(), "NULL is not a String");
        assert!(row.take::<String>("missing").is_err());
    }
}
