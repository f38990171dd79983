//! One column's value as a deserializer, read as its target asks.

use serde::de::{Deserializer, IntoDeserializer, Visitor};

use super::error::{DeError, DeErrorKind, json_error};
use crate::value::Value;

/// One column's value as a deserializer, reading it as its target asks.
pub(super) struct ValueDe<'a> {
    pub(super) value: &'a Value,
    pub(super) column: &'a str,
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
