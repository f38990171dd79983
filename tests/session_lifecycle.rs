//! Session create / exists / delete / ping / names, on both backends.
mod common;

use session_pool::prelude::*;
use session_pool::{Database, Error, SessionOptions};

async fn lifecycle(db: Database) {
    let mut s = db.session_with(SessionOptions::default().label("team", "agents"));
    assert_eq!(s.labels().get("team").map(String::as_str), Some("agents"));
    assert!(s.database_role().is_none());

    // Before create: exists is false, the rest says "not created".
    assert!(!s.exists().await.unwrap());
    assert!(matches!(s.ping().await, Err(Error::NotCreated)));
    assert!(matches!(s.name(), Err(Error::NotCreated)));
    assert!(matches!(s.delete().await, Err(Error::NotCreated)));
    assert!(matches!(
        s.execute_sql("SELECT 1", &[]).await,
        Err(Error::NotCreated)
    ));
    assert!(s.session_id().is_none());

    s.create().await.unwrap();
    let id = s.session_id().unwrap().to_owned();
    assert_eq!(s.name().unwrap(), format!("{}/sessions/{id}", db.name()));
    assert!(s.exists().await.unwrap());
    s.ping().await.unwrap();
    assert!(matches!(
        s.create().await,
        Err(Error::AlreadyCreated { .. })
    ));
    assert_eq!(
        s.session_id().unwrap(),
        id,
        "a failed create changes nothing"
    );

    let before = s.last_used().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.ping().await.unwrap();
    assert!(
        s.last_used().unwrap() > before,
        "last use moves on each operation"
    );

    s.delete().await.unwrap();
    assert!(!s.exists().await.unwrap());
    assert!(matches!(s.ping().await, Err(Error::NotCreated)));

    // Two sessions get different ids.
    let mut a = db.session();
    let mut b = db.session();
    a.create().await.unwrap();
    b.create().await.unwrap();
    assert_ne!(a.session_id(), b.session_id());
}

async fn backend_pid_matches_the_server(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    match db.dialect() {
        session_pool::Dialect::Postgres => {
            let pid = s
                .execute_sql("SELECT pg_backend_pid()", &[])
                .await
                .unwrap()
                .one()
                .unwrap();
            assert_eq!(Some(pid.get::<i32>(0).unwrap()), s.backend_pid());
        }
        _ => assert_eq!(s.backend_pid(), None),
    }
}

on_both!(lifecycle, backend_pid_matches_the_server);
