//! A decoding failure, and the crate's error it becomes.

use std::fmt;

use serde::de;

use crate::error::Error;

/// A decoding failure, with the column it happened in once known.
#[derive(Debug)]
pub(super) struct DeError {
    pub(super) column: Option<String>,
    pub(super) kind: DeErrorKind,
}

#[derive(Debug)]
pub(super) enum DeErrorKind {
    Missing(String, Vec<String>),
    Mismatch {
        expected: String,
        found: String,
        message: String,
    },
    Other(String),
}

impl DeError {
    pub(super) fn in_column(mut self, column: &str) -> Self {
        self.column.get_or_insert_with(|| column.to_owned());
        self
    }

    pub(super) fn into_error(self) -> Error {
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

pub(super) fn json_error(e: serde_json::Error) -> DeError {
    de::Error::custom(e)
}
