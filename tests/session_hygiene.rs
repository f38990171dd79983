//! Reset on release: what one checkout leaves on a session (settings, temporary tables,
//! advisory locks) is gone for the next, and the pool's role is still in force; without
//! it, that state survives, as documented.
mod common;

use session_pool::prelude::*;
use session_pool::{Database, Dialect, Error, FixedSizePool, PoolOptions, SessionOptions, params};

async fn one_session_pool(db: &Database, options: PoolOptions) -> FixedSizePool {
    FixedSizePool::builder()
        .size(1)
        .pool(options)
        .build(db)
        .await
        .unwrap()
}

async fn temp_table_exists(s: &mut session_pool::SessionCheckout, db: &Database) -> bool {
    let sql = common::by_dialect(
        db,
        "SELECT count(*) AS n FROM temp.sqlite_master WHERE name = 'hygiene_tmp'",
        "SELECT count(*) AS n FROM pg_class WHERE relname = 'hygiene_tmp' \
         AND relpersistence = 't' AND pg_table_is_visible(oid)",
    );
    let rs = s.execute_sql(sql, &[]).await.unwrap();
    rs.one().unwrap().get::<i64>("n").unwrap() > 0
}

async fn leave_state_behind(pool: &FixedSizePool, db: &Database) {
    let mut s = pool.session().await.unwrap();
    s.execute_update("CREATE TEMP TABLE hygiene_tmp (x INT)", &[])
        .await
        .unwrap();
    if db.dialect() == Dialect::Postgres {
        s.execute_update("SET application_name = 'left-behind'", &[])
            .await
            .unwrap();
        s.execute_sql("SELECT pg_advisory_lock(4242)", &[])
            .await
            .unwrap();
    }
}

async fn reset_on_release_clears_what_a_checkout_left(db: Database) {
    let pool = one_session_pool(&db, PoolOptions::default().reset_on_release(true)).await;
    leave_state_behind(&pool, &db).await;
    let mut s = pool.session().await.unwrap();
    assert!(
        !temp_table_exists(&mut s, &db).await,
        "the temporary table is gone"
    );
    if db.dialect() == Dialect::Postgres {
        let rs = s.execute_sql("SHOW application_name", &[]).await.unwrap();
        let name = rs.one().unwrap().get::<String>("application_name").unwrap();
        assert_ne!(name, "left-behind");
        let rs = s
            .execute_sql(
                "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
                 AND pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            rs.one().unwrap().get::<i64>("n").unwrap(),
            0,
            "advisory lock released"
        );
    }
    // The session still works, and the reset ran once per release, not per statement.
    s.execute_update("CREATE TEMP TABLE hygiene_tmp (x INT)", &[])
        .await
        .unwrap();
    assert!(temp_table_exists(&mut s, &db).await);
}

async fn without_reset_state_survives_a_checkout(db: Database) {
    let pool = one_session_pool(&db, PoolOptions::default()).await;
    leave_state_behind(&pool, &db).await;
    let mut s = pool.session().await.unwrap();
    assert!(
        temp_table_exists(&mut s, &db).await,
        "documented: temp tables survive"
    );
}

on_both!(
    reset_on_release_clears_what_a_checkout_left,
    without_reset_state_survives_a_checkout,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_role_and_statement_timeout_are_applied_again() {
    let Some(mut admin) = common::pg_admin().await else {
        return;
    };
    let role = common::unique("hygiene_role");
    admin
        .execute_update(&format!("CREATE ROLE {role}"), &[])
        .await
        .unwrap();
    let db = session_pool::DatabaseOptions::new(common::pg_url().unwrap())
        .statement_timeout(std::time::Duration::from_millis(1500))
        .open()
        .await
        .unwrap();
    let pool = one_session_pool(
        &db,
        PoolOptions::default()
            .reset_on_release(true)
            .session(SessionOptions::default().database_role(&role)),
    )
    .await;
    {
        let mut s = pool.session().await.unwrap();
        s.execute_update("RESET ROLE", &[]).await.unwrap();
        s.execute_update("SET statement_timeout = 0", &[])
            .await
            .unwrap();
    }
    let mut s = pool.session().await.unwrap();
    let rs = s
        .execute_sql(
            "SELECT current_user::text AS u, current_setting('statement_timeout') AS t",
            &[],
        )
        .await
        .unwrap();
    let row = rs.one().unwrap();
    assert_eq!(row.get::<String>("u").unwrap(), role);
    assert_eq!(row.get::<String>("t").unwrap(), "1500ms");
}

/// A LISTEN left on a pooled session: the next NOTIFY arrives while a later checkout's
/// statement runs, which sqlx 0.9.0 reads as a protocol error. That statement fails with
/// an error saying so, the session is given up (its LISTEN with it), and the pool's next
/// checkouts work whatever is notified. With reset on release (`UNLISTEN *`) nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_left_on_a_session_fails_one_statement_and_goes() {
    let Some(db) = common::postgres().await else {
        return;
    };
    // A pooler left undeclared is found by the first session.
    db.session().create().await.unwrap();
    if db.transaction_pooler() {
        return; // the pooler ends LISTEN with the transaction's server connection
    }
    let channel = common::unique("hygiene_ch");
    let select = "SELECT $1::int8 AS n";
    let notify = async || {
        let mut other = db.session();
        other.create().await.unwrap();
        let sql = format!("NOTIFY {channel}, 'x'");
        other.execute_update(&sql, &[]).await.unwrap();
        // Delivered to the idle listener at once; give the bytes time to arrive.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for reset in [false, true] {
        let pool = one_session_pool(&db, PoolOptions::default().reset_on_release(reset)).await;
        {
            let mut s = pool.session().await.unwrap();
            s.execute_update(&format!("LISTEN {channel}"), &[])
                .await
                .unwrap();
            // Prepared and cached: the next run is Bind and Execute only.
            s.execute_sql(select, &params![1i64]).await.unwrap();
        }
        notify().await;
        let run = async |n: i64| {
            let mut s = pool.session().await.unwrap();
            s.execute_sql(select, &params![n]).await
        };
        if reset {
            run(2).await.unwrap();
        } else {
            // Once the notification is there, exactly one statement fails.
            let mut waits = 0;
            loop {
                match run(2).await {
                    Ok(_) if waits < 50 => {
                        waits += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(Error::Unsupported(m)) => break assert!(m.contains("LISTEN"), "{m}"),
                    other => panic!("no notification failed a statement: {other:?}"),
                }
            }
        }
        notify().await;
        let n = run(3)
            .await
            .unwrap()
            .one()
            .unwrap()
            .get::<i64>("n")
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            pool.stats().replaced,
            u64::from(!reset),
            "{:?}",
            pool.stats()
        );
    }
}
