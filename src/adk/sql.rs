//! The ADK store's statement texts, apart from its API: one function per statement, given
//! the store's tables and the placeholders its parameters were bound to. The store caches
//! each text per [`Stmt`] shape, so these run once per shape and store.

use std::fmt::Write as _;

use super::config::Tables;
use super::record::{
    EVENT_COLUMNS, EVENT_OWN_COLUMNS, Form, event_id_expr, event_select, event_values,
    insert_columns, select_list,
};
use crate::support::Placeholder;

/// The shape of a statement's text: everything that changes it, placeholder numbers
/// included (with the store's table names, which are fixed per store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Stmt {
    Create {
        postgres: bool,
        owner: bool,
    },
    /// PostgreSQL: the create that also merges the app's and the user's deltas.
    CreateScoped {
        owner: bool,
        app: bool,
        user: bool,
    },
    Get {
        scoped: bool,
        /// With the app's and the user's state (ADK's scopes).
        scopes: bool,
    },
    Update {
        postgres: bool,
        scoped: bool,
    },
    Delete {
        scoped: bool,
    },
    DeleteFor {
        scoped: bool,
    },
    List {
        user: bool,
        scoped: bool,
        after: bool,
        limit: bool,
        scopes: bool,
    },
    Append {
        postgres: bool,
        scoped: bool,
        form: Form,
    },
    AppendUpdate {
        postgres: bool,
        scoped: bool,
        cas: bool,
        /// PostgreSQL: also merges an app / a user delta, in the same statement.
        app: bool,
        user: bool,
        form: Form,
        /// Reads back only the new update time.
        version_only: bool,
        /// PostgreSQL: how many events the statement inserts after the first.
        more: usize,
    },
    SqliteInsert {
        form: Form,
    },
    /// The service's read: session, scopes and events in one statement.
    Read {
        scoped: bool,
        after: bool,
        limit: bool,
        oldest: bool,
        form: Form,
    },
    Events {
        after: bool,
        scoped: bool,
        limit: bool,
        form: Form,
    },
}

/// The placeholders of a new state.
#[derive(Debug, Clone, Copy)]
pub(super) struct StateBinds {
    pub(super) state: Placeholder,
    /// SQLite's update time comes from the client's clock.
    pub(super) now: Option<Placeholder>,
}

/// ` AND owner = $n` for a scoped store.
pub(super) fn owner_filter(t: &Tables, owner: Option<Placeholder>) -> String {
    match (owner, &t.owner) {
        (Some(p), Some(column)) => format!(" AND {} = {p}", column.name),
        _ => String::new(),
    }
}

/// ` AND session_id IN (…)` keeping a scoped store's events to its owner's session `sid`;
/// nothing when the store is not scoped.
fn owned_session(t: &Tables, sid: Placeholder, owner: Option<Placeholder>) -> String {
    let owner = owner_filter(t, owner);
    if owner.is_empty() {
        return owner;
    }
    format!(
        " AND session_id IN (SELECT id FROM {} WHERE id = {sid}{owner})",
        t.sessions
    )
}

/// `state = …, update_time = …`: the update time always moves forward, even within one
/// microsecond, so it can serve as the session's version.
pub(super) fn set_state(set: StateBinds) -> String {
    let state = set.state;
    match set.now {
        None => format!(
            "state = {state}::jsonb, update_time = \
             GREATEST(CURRENT_TIMESTAMP, update_time + interval '1 microsecond')"
        ),
        // 1e-9 days is two steps of a REAL Julian day today (about 86 µs).
        Some(now) => format!("state = {state}, update_time = MAX({now}, update_time + 1e-9)"),
    }
}

/// The new session's row, returned.
pub(super) struct CreateBinds {
    pub(super) id: Placeholder,
    pub(super) app: Placeholder,
    pub(super) user: Placeholder,
    pub(super) state: Placeholder,
    pub(super) owner: Option<Placeholder>,
    /// SQLite: both times from the client's clock.
    pub(super) now: Option<Placeholder>,
}

pub(super) fn create(t: &Tables, b: &CreateBinds) -> String {
    let mut columns = String::from("id, app_name, user_id, state");
    let mut values = format!("{}, {}, {}, {}", b.id, b.app, b.user, b.state);
    if let (Some(column), Some(value)) = (&t.owner, b.owner) {
        columns += &format!(", {}", column.name);
        values += &format!(", {value}");
    }
    if let Some(now) = b.now {
        columns += ", create_time, update_time";
        values += &format!(", {now}, {now}");
    }
    format!(
        "INSERT INTO {} ({columns}) VALUES ({values}) RETURNING {}",
        t.sessions, t.session_columns
    )
}

/// PostgreSQL: a session's insert with its app's and its user's deltas (`app`, `user`, when
/// there are any) merged into their rows by the same statement, returning the session's
/// columns, then the app's and the user's state as they now are (NULL when there is no
/// row). An id in use fails the whole statement, so nothing is merged for it.
pub(super) fn create_scoped_pg(
    t: &Tables,
    b: &CreateBinds,
    app: Option<Placeholder>,
    user: Option<Placeholder>,
) -> String {
    use super::scopes::{Scope, upsert_pg};
    let mut with = format!("WITH s AS ({})", create(t, b));
    let mut state = |scope, delta: Option<Placeholder>, cte: &str, row: String| match delta {
        Some(delta) => {
            let upsert = upsert_pg(t, scope, b.app, b.user, delta, Some("s"));
            with += &format!(", {cte} AS ({upsert} RETURNING state)");
            format!("(SELECT state FROM {cte})")
        }
        None => format!("(SELECT state FROM {row})"),
    };
    let (a, u) = (&t.app_states, &t.user_states);
    let app_state = state(
        Scope::App,
        app,
        "a",
        format!("{a} WHERE {a}.app_name = s.app_name"),
    );
    let user_state = state(
        Scope::User,
        user,
        "u",
        format!("{u} WHERE {u}.app_name = s.app_name AND {u}.user_id = s.user_id"),
    );
    format!("{with} SELECT s.*, {app_state}, {user_state} FROM s")
}

/// A session by id; with `scopes`, its app's and user's state as two more columns.
pub(super) fn get(t: &Tables, id: Placeholder, owner: Option<Placeholder>, scopes: bool) -> String {
    format!(
        "SELECT {}{} FROM {} WHERE id = {id}{}",
        t.session_columns,
        scope_columns(t, scopes),
        t.sessions,
        owner_filter(t, owner)
    )
}

fn scope_columns(t: &Tables, scopes: bool) -> String {
    if scopes {
        super::scopes::state_columns(t)
    } else {
        String::new()
    }
}

/// A session of an app and user (the stale-session check after a missed update).
pub(super) fn get_for(
    t: &Tables,
    [id, app, user]: [Placeholder; 3],
    owner: Option<Placeholder>,
) -> String {
    format!(
        "SELECT {} FROM {} WHERE id = {id} AND app_name = {app} AND user_id = {user}{}",
        t.session_columns,
        t.sessions,
        owner_filter(t, owner)
    )
}

pub(super) fn update(
    t: &Tables,
    set: StateBinds,
    id: Placeholder,
    owner: Option<Placeholder>,
) -> String {
    format!(
        "UPDATE {} SET {} WHERE id = {id}{} RETURNING {}",
        t.sessions,
        set_state(set),
        owner_filter(t, owner),
        t.session_columns
    )
}

pub(super) fn delete(t: &Tables, id: Placeholder, owner: Option<Placeholder>) -> String {
    format!(
        "DELETE FROM {} WHERE id = {id}{}",
        t.sessions,
        owner_filter(t, owner)
    )
}

pub(super) fn delete_for(
    t: &Tables,
    [id, app, user]: [Placeholder; 3],
    owner: Option<Placeholder>,
) -> String {
    format!(
        "DELETE FROM {} WHERE id = {id} AND app_name = {app} AND user_id = {user}{}",
        t.sessions,
        owner_filter(t, owner)
    )
}

/// The service's read of a session.
pub(super) struct ReadBinds {
    pub(super) id: Placeholder,
    pub(super) owner: Option<Placeholder>,
    /// Events at or after this time (ADK's service is inclusive).
    pub(super) after: Option<Placeholder>,
    pub(super) limit: Option<Placeholder>,
    /// With a limit, the oldest events rather than the newest.
    pub(super) oldest: bool,
    /// The events table's form.
    pub(super) form: Form,
    pub(super) postgres: bool,
}

/// The service's read of a session, in one statement (so one snapshot): the session's
/// row with its app's and user's state, then its events in chronological order, each in a
/// row of its own. A row is the session's when its first column (the session's id) is not
/// NULL; the others are NULL on event rows, as the event columns are on the session's, so
/// nothing repeats per event. The session's row sorts first (its event timestamp is NULL).
/// A union rather than a join of the two: no window over the events to mark the first row,
/// and the server sends the session's columns once.
pub(super) fn session_with_events(t: &Tables, b: &ReadBinds) -> String {
    let (s, e) = (&t.sessions, &t.events);
    let mut filter = format!("session_id = {}", b.id);
    if let Some(after) = b.after {
        filter += &format!(" AND timestamp >= {after}");
    }
    // Another owner's session: no events either.
    filter += &owned_session(t, b.id, b.owner);
    let owner = owner_filter(t, b.owner);
    // The events' own columns: their session's id, app and user are the session's.
    let select = select_list(EVENT_OWN_COLUMNS, b.form, b.postgres, t.sessions.as_str());
    let events = match b.limit {
        None => format!("SELECT {select} FROM {e} WHERE {filter}"),
        Some(n) => {
            let dir = if b.oldest { "ASC" } else { "DESC" };
            format!(
                "SELECT {select} FROM {e} WHERE {filter} \
                 ORDER BY timestamp {dir}, id {dir} LIMIT {n}"
            )
        }
    };
    let mut head =
        format!("{s}.id, {s}.app_name, {s}.user_id, {s}.state, {s}.create_time, {s}.update_time");
    if let Some(column) = &t.owner {
        head += &format!(", {s}.{}", column.name);
    }
    head += &format!(
        ", (SELECT state FROM {a} WHERE {a}.app_name = {s}.app_name), \
         (SELECT state FROM {u} WHERE {u}.app_name = {s}.app_name \
         AND {u}.user_id = {s}.user_id)",
        a = t.app_states,
        u = t.user_states
    );
    let head_count = 8 + usize::from(t.owner.is_some());
    let event_names: Vec<&str> = EVENT_OWN_COLUMNS.split(',').map(str::trim).collect();
    let nulls = |n: usize| vec!["NULL"; n].join(", ");
    // Sorted by position (1-based): the event's timestamp, then its id.
    let position =
        |name: &str| head_count + 1 + event_names.iter().position(|c| *c == name).unwrap_or(0);
    format!(
        "SELECT {head}, {} FROM {s} WHERE {s}.id = {}{owner} \
         UNION ALL SELECT {}, ev.* FROM ({events}) AS ev \
         ORDER BY {} ASC NULLS FIRST, {} ASC NULLS FIRST",
        nulls(event_names.len()),
        b.id,
        nulls(head_count),
        position("timestamp"),
        position("id"),
    )
}

/// The placeholders of an append's app and user deltas (PostgreSQL).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ScopeDeltas {
    pub(super) app: Option<Placeholder>,
    pub(super) user: Option<Placeholder>,
}

/// A listing's filters and page.
pub(super) struct ListBinds {
    pub(super) app: Placeholder,
    pub(super) user: Option<Placeholder>,
    pub(super) owner: Option<Placeholder>,
    /// The cursor: update time and id of the last session seen.
    pub(super) after: Option<(Placeholder, Placeholder)>,
    pub(super) limit: Option<Placeholder>,
    /// With each session's app and user state.
    pub(super) scopes: bool,
}

pub(super) fn list(t: &Tables, b: &ListBinds) -> String {
    let mut sql = format!(
        "SELECT {}{} FROM {} WHERE app_name = {}",
        t.session_columns,
        scope_columns(t, b.scopes),
        t.sessions,
        b.app
    );
    if let Some(user) = b.user {
        sql += &format!(" AND user_id = {user}");
    }
    sql += &owner_filter(t, b.owner);
    if let Some((time, id)) = b.after {
        sql += &format!(" AND (update_time, id) < ({time}, {id})");
    }
    sql += " ORDER BY update_time DESC, id DESC";
    if let Some(limit) = b.limit {
        sql += &format!(" LIMIT {limit}");
    }
    sql
}

/// Inserts the event bound at `$1..` only if its session (`$2..$4`: id, app, user) exists,
/// so a missing one is a typed error, not a foreign-key one.
pub(super) fn append(t: &Tables, postgres: bool, owner: Option<Placeholder>, form: Form) -> String {
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} \
         WHERE id = $2 AND app_name = $3 AND user_id = $4{}{}",
        t.events,
        insert_columns(form),
        event_values(postgres, form),
        t.sessions,
        owner_filter(t, owner),
        no_duplicate(t, form, postgres)
    )
}

/// ` AND NOT EXISTS (…)`: session `$2` has no event with id `$1` at timestamp `$10` yet,
/// on a table whose ids live in the JSON (no unique index refuses a duplicate there);
/// empty otherwise. At the event's timestamp, so the session's index finds the rows to
/// look at: the same event appended again is refused, at the cost of one index probe,
/// where a search of all the session's events would read each one's JSON on every append.
fn no_duplicate(t: &Tables, form: Form, postgres: bool) -> String {
    if !form.id_in_json() {
        return String::new();
    }
    let (id, at) = if postgres {
        ("$1::text", "$10::timestamptz")
    } else {
        ("$1", "$10")
    };
    format!(
        " AND NOT EXISTS (SELECT 1 FROM {} WHERE session_id = $2 AND timestamp = {at} \
         AND {} = {id})",
        t.events,
        event_id_expr(form, postgres)
    )
}

/// Whether session `$1` has an event with id `$2` at timestamp `$3` (asked after a write
/// on a table whose ids live in the JSON matched nothing; see [`no_duplicate`]).
pub(super) fn event_exists(t: &Tables, form: Form, postgres: bool) -> String {
    let (id, at) = if postgres {
        ("$2::text", "$3::timestamptz")
    } else {
        ("$2", "$3")
    };
    format!(
        "SELECT 1 FROM {} WHERE session_id = $1 AND timestamp = {at} AND {} = {id}",
        t.events,
        event_id_expr(form, postgres)
    )
}

/// What [`append_update`] returns on PostgreSQL, and the events table's form.
#[derive(Debug, Clone, Copy)]
pub(super) struct Returning {
    /// Only `update_time`, not the session's columns.
    pub(super) version_only: bool,
    pub(super) form: Form,
}

/// The placeholders of [`append_update`]'s binds after the first event's (`$1…`).
pub(super) struct AppendBinds<'a> {
    pub(super) set: StateBinds,
    pub(super) cas: Option<Placeholder>,
    pub(super) owner: Option<Placeholder>,
    pub(super) deltas: ScopeDeltas,
    /// PostgreSQL: the first bind of each further event, whose values are bound as the
    /// first event's are.
    pub(super) more: &'a [Placeholder],
}

/// Updates the event's session (`$2..$4`) to the new state, optionally only at the expected
/// update time, and returns it; on PostgreSQL the event (and any further ones) is inserted
/// by the same statement, only when the update matched.
pub(super) fn append_update(
    t: &Tables,
    postgres: bool,
    binds: &AppendBinds<'_>,
    back: Returning,
) -> String {
    let AppendBinds {
        set,
        cas,
        owner,
        deltas,
        more,
    } = *binds;
    debug_assert!(
        postgres || more.is_empty(),
        "SQLite appends one event a statement"
    );
    let mut filter = String::from("id = $2 AND app_name = $3 AND user_id = $4");
    if let Some(cas) = cas {
        filter += &format!(" AND update_time = {cas}");
    }
    filter += &owner_filter(t, owner);
    let guard = no_duplicate(t, back.form, postgres);
    filter += &guard;
    for first in more {
        filter += &shifted(&guard, first.index() - 1);
    }
    // What the CTE keeps of the updated row is all the statement can return: only the
    // version when that is all that is asked (the event and the scopes need only a row).
    let returning = if postgres && back.version_only {
        "update_time"
    } else {
        t.session_columns.as_str()
    };
    let update = format!(
        "UPDATE {} SET {} WHERE {filter} RETURNING {returning}",
        t.sessions,
        set_state(set),
    );
    if postgres {
        // Data-modifying CTEs run to completion in one statement: the event is inserted
        // only when the update matched.
        // The app and user deltas, too, are merged only when the update matched.
        use super::scopes::{Scope, upsert_pg};
        let (app, user) = (Placeholder::nth(3), Placeholder::nth(4));
        let mut scoped = String::new();
        if let Some(delta) = deltas.app {
            let upsert = upsert_pg(t, Scope::App, app, user, delta, Some("s"));
            scoped += &format!(", a AS ({upsert} RETURNING 1)");
        }
        if let Some(delta) = deltas.user {
            // The app's row first, as every writer locks them (see `AFTER_APP`).
            let source = if deltas.app.is_some() {
                format!("s WHERE {}", super::scopes::AFTER_APP)
            } else {
                "s".to_owned()
            };
            let upsert = upsert_pg(t, Scope::User, app, user, delta, Some(&source));
            scoped += &format!(", u AS ({upsert} RETURNING 1)");
        }
        let out = if back.version_only {
            "update_time"
        } else {
            "*"
        };
        let (columns, values) = (insert_columns(back.form), event_values(true, back.form));
        // Further events: the same insert, each from its own binds (data-modifying CTEs
        // may write one table more than once).
        let mut inserts = String::new();
        for (k, first) in more.iter().enumerate() {
            let _ = write!(
                inserts,
                ", e{k} AS (INSERT INTO {} ({columns}) SELECT {} FROM s RETURNING 1)",
                t.events,
                shifted(&values, first.index() - 1)
            );
        }
        format!(
            "WITH s AS ({update}), e AS (INSERT INTO {} ({columns}) SELECT {values} \
             FROM s RETURNING 1){inserts}{scoped} SELECT {out} FROM s",
            t.events,
        )
    } else {
        update
    }
}

/// `sql` with each placeholder `$n` written `$(n + by)`: an event's values, built for its
/// binds at `$1…`, for the same binds further on. The texts given hold no `$` but their
/// placeholders' (no dollar quotes, no `$` in their literals).
fn shifted(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => {
                let _ = write!(out, "{}", n + by);
            }
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// SQLite's second statement of the atomic append: the event, in the same transaction.
pub(super) fn sqlite_insert(t: &Tables, form: Form) -> String {
    format!(
        "INSERT INTO {} ({}) SELECT {}",
        t.events,
        insert_columns(form),
        event_values(false, form)
    )
}

/// A session's events in chronological order; with a limit, the newest `limit` of them.
pub(super) fn events(
    t: &Tables,
    sid: Placeholder,
    after: Option<Placeholder>,
    owner: Option<Placeholder>,
    limit: Option<Placeholder>,
    form: Form,
    postgres: bool,
) -> String {
    let mut filter = format!("session_id = {sid}");
    if let Some(after) = after {
        filter += &format!(" AND timestamp > {after}");
    }
    filter += &owned_session(t, sid, owner);
    let e = &t.events;
    let select = event_select(form, postgres, t.sessions.as_str());
    match limit {
        None => format!(
            "SELECT {select} FROM {e} WHERE {filter} \
             ORDER BY timestamp ASC, id ASC"
        ),
        Some(n) => format!(
            "SELECT {EVENT_COLUMNS} FROM (SELECT {select} FROM {e} \
             WHERE {filter} ORDER BY timestamp DESC, id DESC LIMIT {n}) AS newest \
             ORDER BY timestamp ASC, id ASC"
        ),
    }
}

pub(super) fn delete_idle(t: &Tables, before: Placeholder, owner: Option<Placeholder>) -> String {
    format!(
        "DELETE FROM {} WHERE update_time < {before}{}",
        t.sessions,
        owner_filter(t, owner)
    )
}

#[cfg(test)]
mod tests {
    use super::shifted;

    #[test]
    fn placeholders_are_renumbered_and_nothing_else() {
        assert_eq!(
            shifted("$1::text, COALESCE($10, '')", 20),
            "$21::text, COALESCE($30, '')"
        );
        assert_eq!(shifted("f($18) || $2", 0), "f($18) || $2");
        // A `$` with no number after it stays as it is.
        assert_eq!(shifted("a $ b $x $3", 1), "a $ b $x $4");
        assert_eq!(shifted("", 5), "");
    }
}
