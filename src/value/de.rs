//! Rows into any `serde::Deserialize` type: a struct or map by column name, a tuple or
//! sequence by position, a newtype or single value from a one-column row.
//!
//! Each column is read with the type its target asks for, so a `NUMERIC` sum reads into
//! an `i64`, SQLite's `0`/`1` into a `bool`, and SQLite's JSON text into a nested struct.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use super::Value;
use crate::error::{Error, Result};
use crate::row::{ResultSet, Row};

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

/// A decoding failure, with the column it happened in once known.
#[derive(Debug)]
struct DeError {
    column: Option<String>,
    kind: DeErrorKind,
}

#[derive(Debug)]
enum DeErrorKind {
    Missing(String, Vec<String>),
    Mismatch {
        expected: String,
        found: String,
        message: String,
    },
    Other(String),
}

impl DeError {
    fn in_column(mut self, column: &str) -> Self {
        self.column.get_or_insert_with(|| column.to_owned());
        self
    }

    fn into_error(self) -> Error {
        let column = self.column.unwrap_or_else(|| "(row)".to_owned());
        match self.kind {
            DeErrorKind::Missing(field, available) => Error::ColumnNotFound {
                column: field,
                available,
            },
            DeErrorKind::Mismatch {
                expected,
                found,
                message,
            } => Error::ColumnDecode {
                column,
                expected,
                found,
                source: Some(message.into()),
            },
            DeErrorKind::Other(message) => Error::ColumnDecode {
                column,
                expected: "the field's type".into(),
                found: "a value that does not fit it".into(),
                source: Some(message.into()),
            },
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DeErrorKind::Missing(field, _) => write!(f, "missing column {field}"),
            DeErrorKind::Mismatch { message, .. } | DeErrorKind::Other(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            column: None,
            kind: DeErrorKind::Other(msg.to_string()),
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError {
            column: None,
            kind: DeErrorKind::Mismatch {
                expected: exp.to_string(),
                found: unexp.to_string(),
                message: format!("invalid type: {unexp}, expected {exp}"),
            },
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            column: None,
            kind: DeErrorKind::Missing(field.to_owned(), Vec::new()),
        }
    }
}

fn json_error(e: serde_json::Error) -> DeError {
    de::Error::custom(e)
}

/// `RowDe` methods that read a one-column row as that column's value.
macro_rules! single_value {
    ($($method:ident => $value_method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
            self.single()?.$value_method(v)
        }
    )*};
}

/// A row as a deserializer.
struct RowDe<'a> {
    row: &'a Row,
}

impl RowDe<'_> {
    /// The only column's value, for a row decoded as one value.
    fn single(&self) -> std::result::Result<ValueDe<'_>, DeError> {
        match self.row.values() {
            [value] => Ok(ValueDe {
                value,
                column: &self.row.columns()[0],
            }),
            values => Err(de::Error::custom(format!(
                "a row of {} columns cannot be read as a single value; read it into a struct \
                 or a tuple",
                values.len()
            ))),
        }
    }

    fn with_columns(&self, err: DeError) -> DeError {
        match err.kind {
            DeErrorKind::Missing(field, _) => DeError {
                column: err.column,
                kind: DeErrorKind::Missing(field, self.row.columns().to_vec()),
            },
            kind => DeError {
                column: err.column,
                kind,
            },
        }
    }
}

impl<'de> Deserializer<'de> for RowDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        let row = self.row;
        visitor
            .visit_map(Columns { row, next: 0 })
            .map_err(|e| self.with_columns(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        visitor.visit_seq(Positions {
            row: self.row,
            next: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_option<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.single()?.deserialize_option(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.single()?.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        identifier ignored_any unit unit_struct
    }

    // A one-column row read as a plain value.
    single_value! {
        deserialize_bool => deserialize_bool,
        deserialize_i8 => deserialize_i64,
        deserialize_i16 => deserialize_i64,
        deserialize_i32 => deserialize_i64,
        deserialize_i64 => deserialize_i64,
        deserialize_i128 => deserialize_i128,
        deserialize_u8 => deserialize_i64,
        deserialize_u16 => deserialize_i64,
        deserialize_u32 => deserialize_i64,
        deserialize_u64 => deserialize_u64,
        deserialize_u128 => deserialize_i128,
        deserialize_f32 => deserialize_f64,
        deserialize_f64 => deserialize_f64,
        deserialize_char => deserialize_str,
        deserialize_str => deserialize_str,
        deserialize_string => deserialize_str,
        deserialize_bytes => deserialize_bytes,
        deserialize_byte_buf => deserialize_bytes,
    }
}

/// A row's columns as a map: name, then value.
struct Columns<'a> {
    row: &'a Row,
    next: usize,
}

impl<'de> MapAccess<'de> for Columns<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, DeError> {
        let Some(name) = self.row.columns().get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(name.as_str().into_deserializer())
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> std::result::Result<V::Value, DeError> {
        let i = self.next;
        self.next += 1;
        let column = &self.row.columns()[i];
        let value = &self.row.values()[i];
        seed.deserialize(ValueDe { value, column })
            .map_err(|e| e.in_column(column))
    }
}

/// A row's values as a sequence, by position.
struct Positions<'a> {
    row: &'a Row,
    next: usize,
}

impl<'de> SeqAccess<'de> for Positions<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> std::result::Result<Option<T::Value>, DeError> {
        let i = self.next;
        let Some(value) = self.row.values().get(i) else {
            return Ok(None);
        };
        self.next += 1;
        let column = &self.row.columns()[i];
        seed.deserialize(ValueDe { value, column })
            .map(Some)
            .map_err(|e| e.in_column(column))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.row.values().len() - self.next)
    }
}

/// One column's value as a deserializer, reading it as its target asks.
struct ValueDe<'a> {
    value: &'a Value,
    column: &'a str,
}

impl ValueDe<'_> {
    fn mismatch(&self, expected: &str) -> DeError {
        DeError {
            column: Some(self.column.to_owned()),
            kind: DeErrorKind::Mismatch {
                expected: expected.to_owned(),
                found: self.value.kind().to_owned(),
                message: format!("a {} value is not {expected}", self.value.kind()),
            },
        }
    }

    /// SQLite keeps JSON as text: parse it when a structure is asked for.
    fn json(&self) -> Option<std::result::Result<serde_json::Value, DeError>> {
        match self.value {
            Value::Json(j) => Some(Ok(j.clone())),
            Value::Text(s) => Some(serde_json::from_str(s).map_err(json_error)),
            _ => None,
        }
    }
}

impl<'de> Deserializer<'de> for ValueDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Text(s) => visitor.visit_str(s),
            Value::Bytes(b) => visitor.visit_bytes(b),
            Value::Json(j) => j.clone().deserialize_any(visitor).map_err(json_error),
            Value::Timestamp(t) => visitor.visit_string(t.to_rfc3339()),
            // Exact: a decimal crate's type reads the text; numbers ask for themselves.
            Value::Numeric(n) => visitor.visit_str(n.as_str()),
            Value::Uuid(u) => visitor.visit_string(u.hyphenated().to_string()),
            Value::Date(d) => visitor.visit_string(d.to_string()),
            Value::Time(t) => visitor.visit_string(t.to_string()),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            Value::Json(serde_json::Value::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            // SQLite stores booleans as 0/1.
            Value::Int(0) => visitor.visit_bool(false),
            Value::Int(1) => visitor.visit_bool(true),
            _ => Err(self.mismatch("a boolean")),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Numeric(n) => match n.to_i64() {
                Some(i) => visitor.visit_i64(i),
                None => Err(self.mismatch("an integer")),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_u64<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Numeric(n) => match n.as_str().parse::<u64>() {
                Ok(u) => visitor.visit_u64(u),
                Err(_) => self.deserialize_i64(visitor),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_i128<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Numeric(n) => match n.as_str().parse::<i128>() {
                Ok(i) => visitor.visit_i128(i),
                Err(_) => Err(self.mismatch("a 128-bit integer")),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Numeric(n) => visitor.visit_f64(n.to_f64()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Json(serde_json::Value::String(s)) => visitor.visit_str(s),
            // A JSON document read into a String keeps its text.
            Value::Json(j) => visitor.visit_string(j.to_string()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Bytes(b) => visitor.visit_bytes(b),
            Value::Uuid(u) => visitor.visit_bytes(u.as_bytes()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.json() {
            Some(json) => json?.deserialize_map(visitor).map_err(json_error),
            None => Err(self.mismatch("a JSON object")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.json() {
            Some(json) => json?
                .deserialize_struct(name, fields, visitor)
                .map_err(json_error),
            None => Err(self.mismatch("a JSON object")),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(
        self,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.json() {
            Some(json) => json?.deserialize_seq(visitor).map_err(json_error),
            None => Err(self.mismatch("a JSON array")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        match self.value {
            Value::Text(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Json(j) => j
                .clone()
                .deserialize_enum(name, variants, visitor)
                .map_err(json_error),
            _ => Err(self.mismatch("an enum")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> std::result::Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_u64(v)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_u64(v)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_u64(v)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_i128(v)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_str(v)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
        self.deserialize_bytes(v)
    }
    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        v: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> std::result::Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    serde::forward_to_deserialize_any! {
        char unit unit_struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde::Deserialize;

    use super::*;
    use crate::value::Numeric;

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
