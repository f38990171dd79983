//! The items store's DDL, as the SDK's SQLAlchemy models create it on each backend, in
//! the same form: keys as table constraints, since SQLAlchemy's SQLite reflection (and so
//! Alembic's autogenerate) reads `ON DELETE CASCADE` only from a table-level foreign key.

use crate::ident::Ident;

/// The store's validated table and index names.
#[derive(Debug)]
pub(super) struct Tables {
    pub(super) sessions: Ident,
    pub(super) messages: Ident,
    pub(super) index: Ident,
    /// Whether `AdvancedSQLiteSession`'s tables were seen beside these.
    pub(super) structure: super::structure::Presence,
}

/// The statements `create_tables` runs, in order; each is idempotent. `index` is the SDK's
/// index on the items' `(session_id, id)` (openai-agents 0.25 and later), made only with
/// a new items table, as the SDK's `create_all` makes it: `None` for a table already there,
/// which keeps the indexes it has.
pub(crate) fn ddl(
    sessions: &Ident,
    messages: &Ident,
    index: Option<&Ident>,
    postgres: bool,
) -> Vec<String> {
    let id = if postgres {
        "id SERIAL NOT NULL PRIMARY KEY"
    } else {
        "id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT"
    };
    let ts = if postgres {
        "TIMESTAMP WITHOUT TIME ZONE"
    } else {
        "TIMESTAMP"
    };
    let mut ddl = vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {sessions} (
    session_id VARCHAR NOT NULL,
    created_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,
    PRIMARY KEY (session_id)
)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {messages} (
    {id},
    session_id VARCHAR NOT NULL,
    message_data TEXT NOT NULL,
    created_at {ts} DEFAULT CURRENT_TIMESTAMP NOT NULL,
    FOREIGN KEY (session_id) REFERENCES {sessions} (session_id) ON DELETE CASCADE
)"
        ),
    ];
    if let Some(index) = index {
        ddl.push(format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {messages} (session_id, id)"
        ));
    }
    ddl
}
