//! `AdkConfig`: table names and the optional owner-id column, validated into `Tables`.

use super::codec::ActionsCodec;
use crate::error::{Error, Result};
use crate::ident::{Ident, MAX_IDENT_LEN};
use crate::value::Value;

/// Where the ADK store keeps its data (SQLSpec's `extension_config["adk"]`).
///
/// Table names must match `^[A-Za-z_][A-Za-z0-9_]*$` and be at most 63 characters; they are
/// written quoted, so they are case-sensitive (keep them lower case to share tables with the
/// Python stores). Index names are derived from them as in the seed: `idx_{table}_app_user`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct AdkConfig {
    pub(crate) session_table: String,
    pub(crate) events_table: String,
    pub(crate) app_state_table: String,
    pub(crate) user_state_table: String,
    pub(crate) owner_id_column: Option<String>,
    pub(crate) actions_codec: ActionsCodec,
    pub(crate) portable_ddl: bool,
}

impl Default for AdkConfig {
    fn default() -> Self {
        AdkConfig {
            session_table: "adk_sessions".into(),
            events_table: "adk_events".into(),
            app_state_table: "adk_app_states".into(),
            user_state_table: "adk_user_states".into(),
            owner_id_column: None,
            actions_codec: ActionsCodec::Json,
            portable_ddl: false,
        }
    }
}

impl AdkConfig {
    /// The sessions table (default `adk_sessions`).
    pub fn session_table(mut self, name: impl Into<String>) -> Self {
        self.session_table = name.into();
        self
    }

    /// The events table (default `adk_events`).
    pub fn events_table(mut self, name: impl Into<String>) -> Self {
        self.events_table = name.into();
        self
    }

    /// The table of app-wide state, ADK's `app:` keys (default `adk_app_states`; ADK's
    /// `DatabaseSessionService` calls it `app_states`). One row per app, written only when
    /// a state delta holds `app:` keys.
    pub fn app_state_table(mut self, name: impl Into<String>) -> Self {
        self.app_state_table = name.into();
        self
    }

    /// The table of user-wide state, ADK's `user:` keys (default `adk_user_states`; ADK's
    /// `DatabaseSessionService` calls it `user_states`). One row per app and user, written
    /// only when a state delta holds `user:` keys.
    pub fn user_state_table(mut self, name: impl Into<String>) -> Self {
        self.user_state_table = name.into();
        self
    }

    /// The format the [`SessionService`](super::SessionService) writes event actions in
    /// (default [`ActionsCodec::Json`]). Choose [`ActionsCodec::Pickle`] when Python's
    /// SQLSpec stores share the tables: they can only read pickles. Reads take either. (On
    /// SQLSpec 0.42's and later whole-event tables actions are JSON, and `Pickle` is
    /// refused.)
    pub fn actions_codec(mut self, codec: ActionsCodec) -> Self {
        self.actions_codec = codec;
        self
    }

    /// DDL for PostgreSQL-compatible engines that refuse parts of the seed's (default
    /// off): [`create_tables`](super::AdkStore::create_tables) then leaves out
    /// `WITH (fillfactor = 80)` and the partial GIN index on `state` (CockroachDB,
    /// YugabyteDB and Spanner's PGAdapter refuse or ignore them), and runs each statement on
    /// its own instead of in one transaction under an advisory lock (Spanner runs no DDL in
    /// transactions, and not every engine has advisory locks). Columns, keys, the other
    /// indexes and the cascading foreign key are the same, so the stores' queries are too.
    /// SQLite's layout is the same either way. See the README's scaling section.
    pub fn portable_ddl(mut self, on: bool) -> Self {
        self.portable_ddl = on;
        self
    }

    /// Adds an owner-id column to the sessions table, given as its DDL, for example
    /// `tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE`.
    ///
    /// The first word is the column's name (a validated identifier); the rest is written into
    /// `CREATE TABLE` as it is, so it must come from the application, never from its users.
    /// A store [scoped](super::AdkStore::scoped) to an owner only sees that owner's sessions.
    ///
    /// Owner values are bound as the column's declared type: `UUID` (a `uuid::Uuid`, or its
    /// text), the integer types (an integer, or its text), the text types (any of them, as
    /// text); other types take the value as given.
    pub fn owner_id_column(mut self, ddl: impl Into<String>) -> Self {
        self.owner_id_column = Some(ddl.into());
        self
    }
}

/// The owner-id column: its name and the rest of its DDL.
#[derive(Debug, Clone)]
pub(crate) struct OwnerColumn {
    pub(crate) name: Ident,
    pub(crate) definition: String,
    /// What its declared type takes, so owner values are bound as that type.
    pub(crate) kind: OwnerKind,
}

/// The kind of value an owner-id column holds, from its declared SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OwnerKind {
    Uuid,
    Integer,
    Text,
    /// Any other type: values are bound as they are given.
    Other,
}

impl OwnerKind {
    /// The kind of the type a column definition starts with (`UUID`, `BIGINT NOT NULL`,
    /// `VARCHAR(64) …`, `INTEGER REFERENCES tenants(id)`).
    fn of(definition: &str) -> OwnerKind {
        let ty = definition
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match ty.as_str() {
            "UUID" => OwnerKind::Uuid,
            "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "INT2" | "INT4" | "INT8" | "SERIAL"
            | "BIGSERIAL" | "SMALLSERIAL" => OwnerKind::Integer,
            "TEXT" | "VARCHAR" | "CHAR" | "CHARACTER" | "CITEXT" | "NAME" => OwnerKind::Text,
            _ => OwnerKind::Other,
        }
    }

    /// `value` as this kind, for binding: a UUID or integer given as text is parsed, an
    /// integer or UUID for a text column is written as text. A value that cannot be one is
    /// [`Error::InvalidArgument`].
    pub(crate) fn coerce(self, value: Value) -> Result<Value> {
        let wrong = |v: &Value| {
            Error::invalid(format!(
                "owner id {v:?} does not fit the owner-id column's type ({self:?})"
            ))
        };
        Ok(match (self, value) {
            (OwnerKind::Uuid, Value::Text(s)) => match uuid::Uuid::parse_str(&s) {
                Ok(u) => Value::Uuid(u),
                Err(_) => return Err(wrong(&Value::Text(s))),
            },
            (OwnerKind::Uuid, v @ Value::Uuid(_)) => v,
            (OwnerKind::Integer, Value::Text(s)) => match s.trim().parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => return Err(wrong(&Value::Text(s))),
            },
            (OwnerKind::Integer, v @ Value::Int(_)) => v,
            (OwnerKind::Text, Value::Int(i)) => Value::Text(i.to_string()),
            (OwnerKind::Text, Value::Uuid(u)) => Value::Text(u.hyphenated().to_string()),
            (OwnerKind::Text, v @ Value::Text(_)) => v,
            (OwnerKind::Other, v) => v,
            (_, v) => return Err(wrong(&v)),
        })
    }
}

/// Validated names, ready to write into SQL.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub(crate) sessions: Ident,
    pub(crate) events: Ident,
    pub(crate) app_states: Ident,
    pub(crate) user_states: Ident,
    pub(crate) owner: Option<OwnerColumn>,
    pub(crate) idx_app_user: Ident,
    pub(crate) idx_update_time: Ident,
    pub(crate) idx_state: Ident,
    pub(crate) idx_events_session: Ident,
    /// `id, app_name, …, update_time[, owner]`: what every session query returns.
    pub(crate) session_columns: String,
}

const SESSION_COLUMNS: [&str; 6] = [
    "id",
    "app_name",
    "user_id",
    "state",
    "create_time",
    "update_time",
];

impl Tables {
    pub(crate) fn new(config: &AdkConfig) -> Result<Tables> {
        let sessions = named("session_table", &config.session_table)?;
        let events = named("events_table", &config.events_table)?;
        let app_states = named("app_state_table", &config.app_state_table)?;
        let user_states = named("user_state_table", &config.user_state_table)?;
        let all = [
            ("session_table", &sessions),
            ("events_table", &events),
            ("app_state_table", &app_states),
            ("user_state_table", &user_states),
        ];
        for (i, (what, a)) in all.iter().enumerate() {
            if let Some((other, _)) = all[i + 1..].iter().find(|(_, b)| b == a) {
                return Err(Error::invalid(format!(
                    "{what} and {other} are both {a}; the four tables must differ"
                )));
            }
        }
        let owner = config
            .owner_id_column
            .as_deref()
            .map(parse_owner)
            .transpose()?;
        let mut session_columns = SESSION_COLUMNS.join(", ");
        if let Some(o) = &owner {
            session_columns += &format!(", {}", o.name);
        }
        let tables = Tables {
            session_columns,
            idx_app_user: index(&sessions, "app_user"),
            idx_update_time: index(&sessions, "update_time"),
            idx_state: index(&sessions, "state"),
            idx_events_session: index(&events, "session"),
            sessions,
            events,
            app_states,
            user_states,
            owner,
        };
        let idx = [
            &tables.idx_app_user,
            &tables.idx_update_time,
            &tables.idx_state,
            &tables.idx_events_session,
        ];
        for (i, a) in idx.iter().enumerate() {
            if idx[i + 1..].contains(a) {
                return Err(Error::invalid(format!(
                    "the table names are too long: two index names both truncate to {a} \
                     (PostgreSQL keeps {MAX_IDENT_LEN} characters); use shorter table names"
                )));
            }
        }
        Ok(tables)
    }
}

fn named(what: &str, name: &str) -> Result<Ident> {
    crate::ident::validate(name, what)?;
    Ident::new(name)
}

/// `idx_{table}_{suffix}`, cut to 63 characters as PostgreSQL would cut it.
fn index(table: &Ident, suffix: &str) -> Ident {
    let mut name = format!("idx_{}_{suffix}", table.as_str());
    name.truncate(MAX_IDENT_LEN);
    Ident::new(&name).expect("built from a valid identifier")
}

fn parse_owner(ddl: &str) -> Result<OwnerColumn> {
    let ddl = ddl.trim();
    let (name, definition) = ddl.split_once(char::is_whitespace).unwrap_or((ddl, ""));
    let name = named("owner_id_column name", name)?;
    let definition = definition.trim();
    if definition.is_empty() {
        return Err(Error::invalid(format!(
            "owner_id_column {ddl:?} has no type: write it as a column definition, \
             for example `tenant_id BIGINT NOT NULL`"
        )));
    }
    if definition.contains(';') || definition.contains("--") || definition.contains("/*") {
        return Err(Error::invalid(format!(
            "owner_id_column {ddl:?} must be one column definition, without `;` or comments"
        )));
    }
    if SESSION_COLUMNS.contains(&name.as_str().to_ascii_lowercase().as_str()) {
        return Err(Error::invalid(format!(
            "owner_id_column {name} clashes with a column of the sessions table"
        )));
    }
    Ok(OwnerColumn {
        name,
        kind: OwnerKind::of(definition),
        definition: definition.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_seed() {
        let t = Tables::new(&AdkConfig::default()).unwrap();
        assert_eq!(t.sessions.as_str(), "adk_sessions");
        assert_eq!(t.idx_app_user.as_str(), "idx_adk_sessions_app_user");
        assert_eq!(t.idx_events_session.as_str(), "idx_adk_events_session");
        assert!(t.owner.is_none());
    }

    #[test]
    fn bad_names_are_errors() {
        for bad in [
            "",
            "1abc",
            "adk sessions",
            "x;DROP TABLE y",
            "a\"b",
            &"a".repeat(64),
        ] {
            let err = Tables::new(&AdkConfig::default().session_table(bad)).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "{bad}: {err}");
        }
        assert!(Tables::new(&AdkConfig::default().events_table("adk_sessions")).is_err());
        assert!(Tables::new(&AdkConfig::default().user_state_table("adk_app_states")).is_err());
        assert!(Tables::new(&AdkConfig::default().app_state_table("x y")).is_err());
        // 63 characters are valid, but every index name would truncate to the same prefix.
        let long = "s".repeat(63);
        assert!(Tables::new(&AdkConfig::default().session_table(long)).is_err());
    }

    #[test]
    fn owner_column_is_parsed_and_checked() {
        let t =
            Tables::new(&AdkConfig::default().owner_id_column(
                "tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE",
            ))
            .unwrap();
        let owner = t.owner.unwrap();
        assert_eq!(owner.name.as_str(), "tenant_id");
        assert!(owner.definition.starts_with("BIGINT NOT NULL"));
        assert_eq!(owner.kind, OwnerKind::Integer);
        for (ddl, kind) in [
            ("t UUID NOT NULL", OwnerKind::Uuid),
            ("t INTEGER REFERENCES tenants(id)", OwnerKind::Integer),
            ("t VARCHAR(64)", OwnerKind::Text),
            ("t NUMERIC(10, 0)", OwnerKind::Other),
        ] {
            let t = Tables::new(&AdkConfig::default().owner_id_column(ddl)).unwrap();
            assert_eq!(t.owner.unwrap().kind, kind, "{ddl}");
        }
        let u = "6f1c2f7e-8b7a-4f7e-9d1e-0a1b2c3d4e5f";
        assert!(matches!(
            OwnerKind::Uuid.coerce(Value::Text(u.into())),
            Ok(Value::Uuid(_))
        ));
        assert!(OwnerKind::Uuid.coerce(Value::Text("nope".into())).is_err());
        assert!(OwnerKind::Uuid.coerce(Value::Int(3)).is_err());
        assert!(matches!(
            OwnerKind::Integer.coerce(Value::Text("42".into())),
            Ok(Value::Int(42))
        ));
        assert!(matches!(
            OwnerKind::Text.coerce(Value::Int(7)),
            Ok(Value::Text(s)) if s == "7"
        ));
        for bad in [
            "tenant_id",
            "tenant-id INT",
            "state JSONB",
            "t INT; DROP TABLE x",
            "t INT -- x",
        ] {
            assert!(
                Tables::new(&AdkConfig::default().owner_id_column(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
