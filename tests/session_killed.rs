//! A session whose server backend was killed (`pg_terminate_backend`) reads as gone.
mod common;

use session_pool::Error;
use session_pool::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backend_is_session_not_found() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut admin = db.session();
    admin.create().await.unwrap();

    // exists() notices, and the session is marked broken.
    let mut s = db.session();
    s.create().await.unwrap();
    kill(&mut admin, s.backend_pid().unwrap()).await;
    assert!(!s.exists().await.unwrap());
    assert!(s.is_broken());
    assert!(matches!(s.ping().await, Err(Error::SessionNotFound { .. })));
    assert!(matches!(
        s.execute_sql("SELECT 1", &[]).await,
        Err(Error::SessionNotFound { .. })
    ));
    assert!(matches!(
        s.delete().await,
        Err(Error::SessionNotFound { .. })
    ));

    // ping() and execute_sql() report it themselves.
    for op in ["ping", "execute_sql"] {
        let mut s = db.session();
        s.create().await.unwrap();
        kill(&mut admin, s.backend_pid().unwrap()).await;
        let res = match op {
            "ping" => s.ping().await,
            _ => s.execute_sql("SELECT 1", &[]).await.map(|_| ()),
        };
        match res {
            Err(Error::SessionNotFound { name, .. }) => assert_eq!(name, s.name().unwrap()),
            other => panic!("{op}: expected SessionNotFound, got {other:?}"),
        }
        assert!(s.is_broken());
    }

    // delete() of a killed session is "not found", and leaves the session deleted.
    let mut s = db.session();
    s.create().await.unwrap();
    kill(&mut admin, s.backend_pid().unwrap()).await;
    assert!(matches!(
        s.delete().await,
        Err(Error::SessionNotFound { .. })
    ));
    assert!(!s.is_created());

    // A transaction on a killed session fails the same way.
    let mut s = db.session();
    s.create().await.unwrap();
    kill(&mut admin, s.backend_pid().unwrap()).await;
    let res = s
        .run_in_transaction(async |tx| tx.execute_update("SELECT 1", &[]).await)
        .await;
    assert!(matches!(res, Err(Error::SessionNotFound { .. })), "{res:?}");
}

async fn kill(admin: &mut session_pool::Session, pid: i32) {
    common::kill_backends(admin, &[pid]).await;
}
