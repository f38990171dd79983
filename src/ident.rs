//! Validated SQL identifiers: the only way a table, column or index name reaches SQL.

use std::fmt;

use crate::error::{Error, Result};

/// Longest identifier accepted (PostgreSQL's `NAMEDATALEN - 1`).
pub const MAX_IDENT_LEN: usize = 63;

/// A table, column or index name that matches `^[A-Za-z_][A-Za-z0-9_]*$` and is at most
/// [`MAX_IDENT_LEN`] characters.
///
/// It is always written to SQL double-quoted, so it is case-sensitive: a PostgreSQL table
/// created as `CREATE TABLE Users` is named `users`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    /// Validates `name`; anything else is [`Error::InvalidArgument`], never SQL.
    pub fn new(name: &str) -> Result<Self> {
        validate(name, "identifier")?;
        Ok(Ident(name.to_owned()))
    }

    /// The bare name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as it is written in SQL: `"name"`.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// Checks that `name` is a plain identifier; `what` names it in the error.
pub fn validate(name: &str, what: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_start = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(format!(
            "{what} {name:?} is not a valid identifier: use letters, digits and `_`, \
             starting with a letter or `_`"
        )));
    }
    if name.len() > MAX_IDENT_LEN {
        return Err(Error::invalid(format!(
            "{what} {name:?} is {} characters long; the limit is {MAX_IDENT_LEN}",
            name.len()
        )));
    }
    Ok(())
}

/// Validates a list of column names.
pub(crate) fn idents<S: AsRef<str>>(names: &[S]) -> Result<Vec<Ident>> {
    names.iter().map(|n| Ident::new(n.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_only() {
        for ok in ["a", "_x", "Users_2", &"a".repeat(63)] {
            assert!(Ident::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a b",
            "a\"b",
            "t; DROP TABLE t",
            "é",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(Ident::new(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
        assert_eq!(Ident::new("Abc").unwrap().quoted(), "\"Abc\"");
    }
}
