//! `read`: a SELECT built from a [`KeySet`] on a table's primary key or a named index.

use crate::conn::{ExecResult, RawConnection};
use crate::database::Database;
use crate::error::{Error, Result};
use crate::ident::{Ident, idents};
use crate::keyset::KeySet;
use crate::row::ResultSet;

/// A validated `read`, shared by sessions, snapshots and transactions.
pub(crate) struct ReadRequest {
    table: Ident,
    columns: Vec<Ident>,
    index: Option<Ident>,
}

impl ReadRequest {
    pub(crate) fn new<S: AsRef<str>>(
        table: &str,
        columns: &[S],
        index: Option<&str>,
    ) -> Result<Self> {
        let table = Ident::new(table)?;
        let columns = idents(columns)?;
        if columns.is_empty() {
            return Err(Error::invalid(format!("a read of {table} names no column")));
        }
        let index = index
            .filter(|i| !i.is_empty())
            .map(Ident::new)
            .transpose()?;
        Ok(ReadRequest {
            table,
            columns,
            index,
        })
    }

    pub(crate) async fn run(
        &self,
        mut conn: RawConnection<'_>,
        db: &Database,
        keyset: &KeySet,
        limit: usize,
    ) -> ExecResult<ResultSet> {
        let key = db
            .inner
            .schema
            .key_columns(conn.reborrow(), &self.table, self.index.as_ref())
            .await?;
        let (sql, params) = crate::sql::read(&self.table, &self.columns, keyset, &key, limit)?;
        conn.fetch_all(&sql, &params).await
    }
}
