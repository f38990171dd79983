//! A migration under running sessions: a column added to (or dropped from) a table that
//! sessions read with `SELECT *`. On PostgreSQL each session's prepared form of the
//! statement goes stale ("cached plan must not change result type", `0A000`), and before
//! this was handled every later run of it on that session failed, until the session was
//! replaced: after a migration, every pooled session failed its `SELECT *` for good. Now
//! the session prepares its statements anew and runs the statement again; inside a
//! transaction, which the error aborts, it is a retryable `Error::Aborted`, so
//! `run_in_transaction` goes through too.
mod common;

use futures_util::StreamExt;
use session_pool::prelude::*;
use session_pool::{Database, Dialect, Error, params};

async fn table(db: &Database) -> String {
    let t = common::unique("schema");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v TEXT)"),
        &[],
    )
    .await
    .unwrap();
    s.execute_update(&format!("INSERT INTO {t} VALUES (1, 'a')"), &[])
        .await
        .unwrap();
    t
}

/// Runs `ddl` from a session of its own, as a migration would.
async fn migrate(db: &Database, ddl: &str) {
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(ddl, &[]).await.unwrap();
}

/// The columns `SELECT *` of table `t` returns on `s`.
async fn columns(s: &mut impl ReadContext, t: &str) -> Result<Vec<String>, Error> {
    let rs = s
        .execute_sql(&format!("SELECT * FROM {t} WHERE id = $1"), &params![1])
        .await?;
    Ok(rs.columns.to_vec())
}

/// Every pooled session has the statement prepared; a column is added, then one dropped:
/// each session reads the new columns at once.
async fn pooled_sessions_read_through_columns_added_and_dropped(db: Database) {
    let t = table(&db).await;
    let pool = common::fixed_pool(&db, 2).await;
    let (mut a, mut b) = (pool.session().await.unwrap(), pool.session().await.unwrap());
    for s in [&mut a, &mut b] {
        for _ in 0..2 {
            assert_eq!(columns(&mut **s, &t).await.unwrap(), ["id", "v"]);
        }
    }
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN w BIGINT")).await;
    for s in [&mut a, &mut b] {
        assert_eq!(columns(&mut **s, &t).await.unwrap(), ["id", "v", "w"]);
        assert_eq!(columns(&mut **s, &t).await.unwrap(), ["id", "v", "w"]);
    }
    migrate(&db, &format!("ALTER TABLE {t} DROP COLUMN v")).await;
    for s in [&mut a, &mut b] {
        assert_eq!(columns(&mut **s, &t).await.unwrap(), ["id", "w"]);
    }
    // A write whose `RETURNING *` counts as a `*`: its count is its own.
    let n = a
        .execute_update(
            &format!("UPDATE {t} SET w = 1 WHERE id = 1 RETURNING *"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = a
        .execute_update(
            &format!("UPDATE {t} SET w = 2 WHERE id = 2 RETURNING *"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 0, "no row 2: the refresh's stale count must not show");
    // A stream too.
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN y BIGINT")).await;
    {
        let sql = format!("SELECT * FROM {t}");
        let mut rows = a.execute_sql_stream(&sql, &[]);
        let row = rows.next().await.expect("a row").unwrap();
        assert_eq!(row.columns(), ["id", "w", "y"]);
    }
    // `query_as` goes through too.
    #[derive(sqlx::FromRow)]
    struct Rec {
        id: i64,
    }
    let recs: Vec<Rec> = a
        .query_as(&format!("SELECT * FROM {t}"), &[])
        .await
        .unwrap();
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN x TEXT")).await;
    let recs2: Vec<Rec> = a
        .query_as(&format!("SELECT * FROM {t}"), &[])
        .await
        .unwrap();
    assert_eq!((recs[0].id, recs2[0].id), (1, 1));
    assert_eq!(pool.stats().replaced, 0, "{:?}", pool.stats());
}

/// Inside a transaction the stale statement aborts it: a retryable `Error::Aborted` on
/// PostgreSQL (SQLite prepares again by itself), and `run_in_transaction` retries it to
/// success.
async fn in_a_transaction_it_is_a_retryable_abort(db: Database) {
    let t = table(&db).await;
    let mut s = db.session();
    s.create().await.unwrap();
    assert_eq!(columns(&mut s, &t).await.unwrap(), ["id", "v"]);
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN w BIGINT")).await;
    let mut tx = s.transaction().await.unwrap();
    let res = columns(&mut tx, &t).await;
    match db.dialect() {
        Dialect::Postgres => {
            let err = res.expect_err("the prepared statement was stale");
            assert!(err.is_aborted(), "{err}");
            assert_eq!(err.code(), Some("0A000"), "{err}");
            drop(tx);
        }
        _ => {
            assert_eq!(res.unwrap(), ["id", "v", "w"]);
            tx.commit().await.unwrap();
        }
    }
    // Prepared again, then stale again.
    assert_eq!(columns(&mut s, &t).await.unwrap(), ["id", "v", "w"]);
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN x TEXT")).await;
    let done = s
        .run_in_transaction_detailed(Default::default(), async |tx| {
            let cols = columns(tx, &t).await?;
            tx.execute_update(&format!("UPDATE {t} SET w = 5 WHERE id = 1"), &[])
                .await?;
            Ok::<_, Error>(cols)
        })
        .await
        .unwrap();
    assert_eq!(done.value, ["id", "v", "w", "x"]);
    let expected_attempts = if db.dialect() == Dialect::Postgres {
        2
    } else {
        1
    };
    assert_eq!(done.attempts, expected_attempts);

    // A function that handles the stale statement's error itself and returns `Ok`: the
    // transaction is aborted all the same, the commit says so, and it is retried.
    assert_eq!(columns(&mut s, &t).await.unwrap(), ["id", "v", "w", "x"]);
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN y TEXT")).await;
    let done = s
        .run_in_transaction_detailed(Default::default(), async |tx| {
            Ok::<_, Error>(columns(tx, &t).await.unwrap_or_default())
        })
        .await
        .unwrap();
    assert_eq!(done.value, ["id", "v", "w", "x", "y"]);
    assert_eq!(done.attempts, expected_attempts);
}

/// The first rows of a stream whose statement a migration left stale: the stream is run
/// again before its first row, on the session that met it, and the other session of the
/// pool, told, prepares anew before its stream. Then the same inside a transaction, where
/// the stale statement aborts it: the stream's first item is the retryable abort.
async fn a_stream_goes_through_a_column_added(db: Database) {
    let t = table(&db).await;
    migrate(&db, &format!("INSERT INTO {t} VALUES (2, 'b')")).await;
    let pool = common::fixed_pool(&db, 2).await;
    let (mut a, mut b) = (pool.session().await.unwrap(), pool.session().await.unwrap());
    let sql = format!("SELECT * FROM {t} ORDER BY id");
    async fn stream(s: &mut impl ReadContext, sql: &str) -> Result<Vec<Vec<String>>, Error> {
        let mut rows = s.execute_sql_stream(sql, &[]);
        let mut seen = Vec::new();
        while let Some(row) = rows.next().await {
            let row = row?;
            seen.push(row.columns().to_vec());
        }
        Ok(seen)
    }
    for s in [&mut a, &mut b] {
        for _ in 0..2 {
            assert_eq!(
                stream(&mut **s, &sql).await.unwrap(),
                [["id", "v"], ["id", "v"]]
            );
        }
    }
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN w BIGINT")).await;
    let wide = [["id", "v", "w"], ["id", "v", "w"]];
    for s in [&mut a, &mut b] {
        assert_eq!(stream(&mut **s, &sql).await.unwrap(), wide);
        assert_eq!(stream(&mut **s, &sql).await.unwrap(), wide);
    }
    assert_eq!(pool.stats().replaced, 0, "{:?}", pool.stats());

    // In a transaction: no run again, a retryable abort as the first item.
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN x BIGINT")).await;
    let mut tx = a.transaction().await.unwrap();
    match stream(&mut tx, &sql).await {
        Err(e) if db.dialect() == Dialect::Postgres => {
            assert!(matches!(e, Error::Aborted { .. }), "{e:?}");
            assert!(e.is_aborted(), "{e:?}");
            tx.rollback().await.unwrap();
        }
        res => {
            assert_eq!(db.dialect(), Dialect::Sqlite, "{res:?}");
            assert_eq!(res.unwrap().len(), 2);
            tx.commit().await.unwrap();
        }
    }
    let wider = [["id", "v", "w", "x"], ["id", "v", "w", "x"]];
    assert_eq!(stream(&mut *a, &sql).await.unwrap(), wider);
}

on_both!(
    pooled_sessions_read_through_columns_added_and_dropped,
    in_a_transaction_it_is_a_retryable_abort,
    a_stream_goes_through_a_column_added,
);

/// An items store on tables of its own over a pool of two sessions, and its items table.
async fn items_store(db: &Database) -> (session_pool::items::ItemsStore, String) {
    let messages = common::unique("ag_m");
    let config = session_pool::items::ItemsConfig::default()
        .sessions_table(common::unique("ag_s"))
        .messages_table(&messages);
    let pool = common::fixed_pool(db, 2).await;
    let store = session_pool::items::ItemsStore::new(pool, config).unwrap();
    store.create_tables().await.unwrap();
    (store, messages)
}

/// The migration both items-store tests go through: `message_data` TEXT to VARCHAR.
async fn retype_message_data(db: &Database, messages: &str) {
    let ddl = format!("ALTER TABLE {messages} ALTER COLUMN message_data TYPE VARCHAR");
    migrate(db, &ddl).await;
}

/// The stores' reads too: a migration changes the type of a column the items store
/// reads (`message_data`, TEXT to VARCHAR), under sessions that have its read prepared;
/// every read after it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_reads_go_through_a_column_retyped() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let (store, messages) = items_store(&db).await;
    let conversation = store.session("c1").unwrap();
    conversation
        .add_items(&[serde_json::json!({"role": "user", "content": "hi"})])
        .await
        .unwrap();
    // Run on both sessions at once, so each has the read prepared.
    let (a, b) = tokio::join!(conversation.get_items(None), conversation.get_items(None));
    assert_eq!((a.unwrap().len(), b.unwrap().len()), (1, 1));
    retype_message_data(&db, &messages).await;
    for _ in 0..4 {
        let (a, b) = tokio::join!(conversation.get_items(None), conversation.get_items(None));
        assert_eq!((a.unwrap().len(), b.unwrap().len()), (1, 1));
    }
}

/// And its writes that return a row: `pop_item` (a `DELETE … RETURNING message_data`) on
/// sessions that have it prepared, after `message_data` is retyped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stores_writes_go_through_a_column_retyped() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let (store, messages) = items_store(&db).await;
    let conversation = store.session("c1").unwrap();
    let items: Vec<_> = (0..10)
        .map(|i| serde_json::json!({"role": "user", "content": i}))
        .collect();
    conversation.add_items(&items).await.unwrap();
    let (a, b) = tokio::join!(conversation.pop_item(), conversation.pop_item());
    assert!(a.unwrap().is_some() && b.unwrap().is_some());
    retype_message_data(&db, &messages).await;
    for _ in 0..4 {
        let (a, b) = tokio::join!(conversation.pop_item(), conversation.pop_item());
        assert!(a.unwrap().is_some() && b.unwrap().is_some());
    }
    assert!(conversation.get_items(None).await.unwrap().is_empty());
}

/// One session meeting the migration tells the others: their statement caches are cleared
/// before their next statement, so a transaction on another session that had the
/// statement prepared, open already or begun after, is not aborted by it (before, every
/// session's first run of it after the migration failed, and inside a transaction that
/// aborted the transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_meeting_a_migration_spares_the_others_transactions() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let t = table(&db).await;
    let pool = common::fixed_pool(&db, 3).await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let mut s = pool.session().await.unwrap();
        assert_eq!(columns(&mut *s, &t).await.unwrap(), ["id", "v"]);
        sessions.push(s);
    }
    migrate(&db, &format!("ALTER TABLE {t} ADD COLUMN w BIGINT")).await;
    let (first, rest) = sessions.split_first_mut().unwrap();
    let (second, third) = rest.split_at_mut(1);
    // One transaction is already open when the first session meets the stale statement.
    let mut open = second[0].transaction().await.unwrap();
    open.execute_sql("SELECT 1", &[]).await.unwrap();
    // The first meets it (and runs the statement again, prepared anew) ...
    assert_eq!(columns(&mut **first, &t).await.unwrap(), ["id", "v", "w"]);
    // ... the others' transactions go through: the one open, and one begun after.
    let mut later = third[0].transaction().await.unwrap();
    for tx in [&mut open, &mut later] {
        assert_eq!(columns(tx, &t).await.unwrap(), ["id", "v", "w"]);
    }
    open.execute_update(&format!("UPDATE {t} SET w = 1 WHERE id = 1"), &[])
        .await
        .unwrap();
    open.commit().await.unwrap();
    later.commit().await.unwrap();
    drop(sessions);
    assert_eq!(pool.stats().replaced, 0, "{:?}", pool.stats());
}

/// The ADK service's create with `app:` and `user:` keys, whose insert returns the
/// session's columns: after a migration retypes one (`app_name` VARCHAR to TEXT) under
/// sessions that have it prepared, every create succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_create_goes_through_a_column_retyped() {
    use session_pool::adk::{AdkConfig, AdkStore, SessionService};
    let Some(db) = common::postgres().await else {
        return;
    };
    let sessions = common::unique("scope_s");
    let config = AdkConfig::default()
        .session_table(&sessions)
        .events_table(common::unique("scope_e"))
        .app_state_table(common::unique("scope_a"))
        .user_state_table(common::unique("scope_u"));
    let store = AdkStore::new(common::fixed_pool(&db, 2).await, config).unwrap();
    store.create_tables().await.unwrap();
    let svc = SessionService::new(store);
    let state = || {
        let v = serde_json::json!({"app:theme": "dark", "user:lang": "fr", "step": 1});
        Some(v.as_object().unwrap().clone())
    };
    let create = |id: String| {
        let svc = &svc;
        async move { svc.create_session("app", "u1", state(), Some(&id)).await }
    };
    let (a, b) = tokio::join!(create("s1".into()), create("s2".into()));
    a.unwrap();
    b.unwrap();
    migrate(
        &db,
        &format!("ALTER TABLE {sessions} ALTER COLUMN app_name TYPE TEXT"),
    )
    .await;
    for round in 0..3 {
        let (a, b) = tokio::join!(create(format!("r{round}a")), create(format!("r{round}b")));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.state["app:theme"], "dark");
        assert_eq!(b.state["user:lang"], "fr");
    }
    let listed = svc.list_sessions("app", Some("u1")).await.unwrap();
    assert_eq!(listed.len(), 8);
}
