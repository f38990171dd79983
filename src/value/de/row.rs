//! A row as a deserializer: a struct or map by column name, a tuple or sequence by
//! position, a single value from a one-column row.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::error::{DeError, DeErrorKind};
use super::value::ValueDe;
use crate::row::Row;

/// `RowDe` methods that read a one-column row as that column's value.
macro_rules! single_value {
    ($($method:ident => $value_method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> std::result::Result<V::Value, DeError> {
            self.single()?.$value_method(v)
        }
    )*};
}

/// A row as a deserializer.
pub(super) struct RowDe<'a> {
    pub(super) row: &'a Row,
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
