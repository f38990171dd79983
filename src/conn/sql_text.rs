//! SQL text for the driver: what the crate's statements are made of, and how each kind
//! moves into sqlx without a copy.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

#[cfg(feature = "postgres")]
use crate::param::AsParam;

/// SQL text for the driver. sqlx keeps its own copy of borrowed text; owned and shared text
/// (the stores' statements) and static text move in without a copy. Cloned for each
/// statement, which is run again if a schema change left its prepared form stale
/// (`session/exec.rs`): a copy of a pointer, or of a `String` the crate built for that
/// one statement.
pub(crate) trait IntoSql: Clone {
    fn into_sql(self) -> SqlStr;
    /// The text, for tracing.
    fn text(&self) -> &str;
    /// SQLite: whether the statement's result columns may come from a `*` that a schema
    /// change can widen or narrow (`sqlite::star_columns`). Only the callers' own text
    /// (`&str`) is looked at: the crate's statements name their columns.
    #[cfg(feature = "sqlite")]
    fn star_columns(&self) -> bool {
        false
    }
    /// PostgreSQL: whether `params` fit the types the text's first run was prepared with.
    #[cfg(feature = "postgres")]
    fn verdict(&self, params: &[impl AsParam]) -> crate::param_types::Verdict {
        crate::param_types::verdict(self.text(), params)
    }
}

impl IntoSql for &str {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(self).into_sql_str()
    }
    fn text(&self) -> &str {
        self
    }
    #[cfg(feature = "sqlite")]
    fn star_columns(&self) -> bool {
        super::sqlite::star_columns(self)
    }
}

impl IntoSql for &String {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(self.as_str()).into_sql_str()
    }
    fn text(&self) -> &str {
        self
    }
}

impl IntoSql for String {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(self).into_sql_str()
    }
    fn text(&self) -> &str {
        self
    }
}

/// A statement text built once and run many times (the stores' `SqlCache`), with what the
/// parameter check learned about it (`param_types::KnownTypes`).
#[derive(Debug)]
pub(crate) struct CachedSql {
    text: Arc<str>,
    #[cfg(feature = "postgres")]
    types: crate::param_types::KnownTypes,
}

impl From<String> for CachedSql {
    fn from(text: String) -> Self {
        CachedSql {
            text: text.into(),
            #[cfg(feature = "postgres")]
            types: Default::default(),
        }
    }
}

impl IntoSql for Arc<CachedSql> {
    fn into_sql(self) -> SqlStr {
        AssertSqlSafe(Arc::clone(&self.text)).into_sql_str()
    }
    fn text(&self) -> &str {
        &self.text
    }
    #[cfg(feature = "postgres")]
    fn verdict(&self, params: &[impl AsParam]) -> crate::param_types::Verdict {
        self.types.verdict(&self.text, params)
    }
}

impl IntoSql for SqlStr {
    fn into_sql(self) -> SqlStr {
        self
    }
    fn text(&self) -> &str {
        self.as_str()
    }
}

/// Static SQL, never copied.
pub(crate) fn fixed(sql: &'static str) -> SqlStr {
    sql.into_sql_str()
}
