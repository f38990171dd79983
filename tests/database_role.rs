//! database_role: PostgreSQL `SET ROLE` (safely quoted); SQLite says it is unsupported.
mod common;

use session_pool::prelude::*;
use session_pool::{Error, SessionOptions};

#[tokio::test]
async fn postgres_session_assumes_the_role() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut admin = db.session();
    admin.create().await.unwrap();
    // A name that needs quoting: upper case, a space and a double quote.
    let role = format!("Reader \"{}\"", common::unique("r"));
    let quoted = format!("\"{}\"", role.replace('"', "\"\""));
    admin
        .execute_update(&format!("CREATE ROLE {quoted}"), &[])
        .await
        .unwrap();
    admin
        .execute_update(&format!("GRANT {quoted} TO CURRENT_USER"), &[])
        .await
        .unwrap();

    let mut s = db.session_with(SessionOptions::default().database_role(role.clone()));
    assert_eq!(s.database_role(), Some(role.as_str()));
    s.create().await.unwrap();
    let who = s
        .execute_sql("SELECT current_user::text AS u", &[])
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(who.get::<String>("u").unwrap(), role);

    // A role that does not exist fails create() with the server's error.
    let mut bad = db.session_with(SessionOptions::default().database_role("no_such_role_xyz"));
    assert!(matches!(bad.create().await, Err(Error::Database { .. })));
    assert!(!bad.is_created());

    // An injection attempt is just a (missing) role name.
    let mut evil =
        db.session_with(SessionOptions::default().database_role("x\"; DROP TABLE t; --"));
    assert!(evil.create().await.is_err());
    assert!(matches!(
        db.session_with(SessionOptions::default().database_role(""))
            .create()
            .await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn sqlite_has_no_roles() {
    let (db, _dir) = common::sqlite().await;
    let mut s = db.session_with(SessionOptions::default().database_role("reader"));
    match s.create().await {
        Err(Error::Unsupported(msg)) => assert!(msg.contains("database_role")),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(!s.is_created());
    // Without a role it works.
    db.session().create().await.unwrap();
}
