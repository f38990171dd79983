//! Learns which columns key a table or an index, for `read` and mutations, and remembers it
//! per [`Database`](crate::Database).

use std::collections::HashMap;
use std::sync::Arc;

use crate::conn::{ExecResult, RawConnection};
use crate::dialect::Dialect;
use crate::error::Error;
use crate::ident::Ident;
use crate::value::Value;

type Key = (Ident, Option<Ident>);

/// Key columns per (table, index); `None` index means the primary key.
#[derive(Debug, Default)]
pub(crate) struct SchemaCache {
    map: parking_lot::Mutex<HashMap<Key, Arc<[Ident]>>>,
}

impl SchemaCache {
    pub(crate) fn clear(&self) {
        self.map.lock().clear();
    }

    /// The primary-key columns of `table`, or the columns of `index` on `table`, in order.
    pub(crate) async fn key_columns(
        &self,
        mut conn: RawConnection<'_>,
        table: &Ident,
        index: Option<&Ident>,
    ) -> ExecResult<Arc<[Ident]>> {
        let key = (table.clone(), index.cloned());
        if let Some(cols) = self.map.lock().get(&key) {
            return Ok(cols.clone());
        }
        let (sql, params) = lookup_sql(conn.dialect(), table, index);
        let rows = conn.reborrow().fetch_all(sql, &params).await?;
        let cols: Arc<[Ident]> = rows
            .rows
            .iter()
            .map(|r| r.get::<String>(0).and_then(|n| Ident::new(&n)))
            .collect::<Result<_, _>>()?;
        if cols.is_empty() {
            return Err(self.explain_empty(conn, table, index).await?.into());
        }
        self.map.lock().insert(key, cols.clone());
        Ok(cols)
    }

    /// Why no key column was found: the table or index is missing, or has no key.
    async fn explain_empty(
        &self,
        conn: RawConnection<'_>,
        table: &Ident,
        index: Option<&Ident>,
    ) -> ExecResult<Error> {
        let (sql, params): (&str, Vec<Value>) = match conn.dialect() {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => (
                "SELECT to_regclass($1) IS NOT NULL",
                vec![table.quoted().into()],
            ),
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => (
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1)",
                vec![table.as_str().into()],
            ),
        };
        let exists = conn.fetch_all(sql, &params).await?.one()?.get::<bool>(0)?;
        Ok(match (exists, index) {
            (false, _) => Error::NotFound(format!("table {table} does not exist")),
            (true, Some(index)) => Error::NotFound(format!("table {table} has no index {index}")),
            (true, None) => Error::InvalidArgument(format!(
                "table {table} has no primary key; add one or name an index"
            )),
        })
    }
}

fn lookup_sql(
    dialect: Dialect,
    table: &Ident,
    index: Option<&Ident>,
) -> (&'static str, Vec<Value>) {
    match (dialect, index) {
        #[cfg(feature = "postgres")]
        (Dialect::Postgres, None) => (
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            vec![table.quoted().into()],
        ),
        #[cfg(feature = "postgres")]
        (Dialect::Postgres, Some(index)) => (
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indexrelid = to_regclass($1) AND i.indrelid = to_regclass($2) \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            vec![index.quoted().into(), table.quoted().into()],
        ),
        #[cfg(feature = "sqlite")]
        (Dialect::Sqlite, None) => (
            "SELECT name FROM pragma_table_info($1) WHERE pk > 0 ORDER BY pk",
            vec![table.as_str().into()],
        ),
        #[cfg(feature = "sqlite")]
        (Dialect::Sqlite, Some(index)) => (
            "SELECT ii.name FROM pragma_index_info($1) AS ii \
             WHERE EXISTS (SELECT 1 FROM sqlite_master \
                           WHERE type = 'index' AND name = $1 AND tbl_name = $2) \
             ORDER BY ii.seqno",
            vec![index.as_str().into(), table.as_str().into()],
        ),
    }
}
