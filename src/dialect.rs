//! `Dialect`: which SQL a database speaks. A leaf module, so that the connection, schema and
//! database modules can all name it without depending on one another.

/// The SQL dialect behind a [`Database`](crate::Database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// Embedded SQLite (a file, or an in-memory database shared by this process).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite,
    /// A PostgreSQL server, or anything that speaks its protocol.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres,
}

impl Dialect {
    /// True for PostgreSQL.
    pub fn is_postgres(self) -> bool {
        #[cfg(feature = "postgres")]
        {
            matches!(self, Dialect::Postgres)
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = self;
            false
        }
    }
}
