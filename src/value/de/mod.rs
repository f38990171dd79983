//! Rows into any `serde::Deserialize` type: a struct or map by column name, a tuple or
//! sequence by position, a newtype or single value from a one-column row.
//!
//! Each column is read with the type its target asks for, so a `NUMERIC` sum reads into
//! an `i64`, SQLite's `0`/`1` into a `bool`, and SQLite's JSON text into a nested struct.
//! `row.rs` reads a row as a struct, map, tuple or single value, `value.rs` one column as
//! what its field asks for, and `error.rs` says which column failed and why.

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::row::{ResultSet, Row};

mod error;
mod row;
mod value;

use error::DeError;
use row::RowDe;

impl Row {
    /// Decodes the row into `T`: a struct or map by column name, a tuple by position, or a
    /// single value when the row has one column.
    ///
    /// A missing field is [`Error::ColumnNotFound`]; a value that does not fit its field is
    /// [`Error::ColumnDecode`], naming the column and the types.
    ///
    /// ```
    /// # fn demo(row: session_pool::Row) -> session_pool::Result<()> {
    /// #[derive(serde::Deserialize)]
    /// struct Counter {
    ///     id: i64,
    ///     n: Option<i64>,
    /// }
    /// let counter: Counter = row.deserialize()?;
    /// let (id, n): (i64, Option<i64>) = row.deserialize()?;
    /// # Ok(()) }
    /// ```
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(RowDe { row: self }).map_err(DeError::into_error)
    }
}

impl ResultSet {
    /// Decodes every row into `T`; see [`Row::deserialize`].
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.rows.iter().map(Row::deserialize).collect()
    }

    /// Decodes the only row into `T`: [`Error::RowNotFound`] if there is none,
    /// [`Error::TooManyRows`] if there are several.
    pub fn deserialize_one<T: DeserializeOwned>(&self) -> Result<T> {
        match self.rows.as_slice() {
            [row] => row.deserialize(),
            [] => Err(Error::RowNotFound),
            rows => Err(Error::TooManyRows { count: rows.len() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde::Deserialize;

    use super::*;
    use crate::value::{Numeric, Value};

    fn row(columns: &[&str], values: Vec<Value>) -> Row {
        Row::new(
            Arc::from(columns.iter().map(|c| c.to_string()).collect::<Vec<_>>()),
            values,
        )
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        id: i64,
        name: Option<String>,
        active: bool,
        meta: Meta,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Meta {
        tags: Vec<String>,
    }

    #[test]
    fn structs_read_columns_by_name_with_sqlite_forms() {
        let r = row(
            &["name", "id", "active", "meta"],
            vec![
                Value::Null,
                Value::Int(7),
                Value::Int(1),
                Value::Text(r#"{"tags":["a"]}"#.into()),
            ],
        );
        let item: Item = r.deserialize().unwrap();
        assert_eq!(
            item,
            Item {
                id: 7,
                name: None,
                active: true,
                meta: Meta {
                    tags: vec!["a".into()]
                }
            }
        );
        let (name, id): (Option<String>, i64) = row(
            &["name", "id"],
            vec![Value::Text("x".into()), Value::Int(3)],
        )
        .deserialize()
        .unwrap();
        assert_eq!((name.as_deref(), id), (Some("x"), 3));
    }

    #[test]
    fn numerics_read_exactly_and_errors_name_the_column() {
        let sum = row(&["sum"], vec![Value::Numeric("42".parse().unwrap())]);
        assert_eq!(sum.deserialize::<i64>().unwrap(), 42);
        assert_eq!(sum.deserialize::<String>().unwrap(), "42");
        let big: Numeric = "123456789012345678901234567890".parse().unwrap();
        let r = row(&["n"], vec![Value::Numeric(big.clone())]);
        assert_eq!(
            r.deserialize::<i128>().unwrap(),
            123456789012345678901234567890
        );
        let err = r.deserialize::<(i64,)>().unwrap_err();
        match err {
            Error::ColumnDecode { column, .. } => assert_eq!(column, "n"),
            other => panic!("{other:?}"),
        }
        let err = row(&["id"], vec![Value::Int(1)])
            .deserialize::<Item>()
            .unwrap_err();
        match err {
            Error::ColumnNotFound { column, available } => {
                assert_eq!(column, "active", "a missing Option field is None");
                assert_eq!(available, vec!["id".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        let err = row(
            &["id", "name", "active", "meta"],
            vec![
                Value::Text("seven".into()),
                Value::Null,
                Value::Bool(true),
                Value::Json(serde_json::json!({"tags": []})),
            ],
        )
        .deserialize::<Item>()
        .unwrap_err();
        match err {
            Error::ColumnDecode {
                column,
                expected,
                found,
                ..
            } => {
                assert_eq!(column, "id");
                assert!(expected.contains("i64"), "{expected}");
                assert!(found.contains("seven"), "{found}");
            }
            other => panic!("{other:?}"),
        }
    }
}
