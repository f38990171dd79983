//! Owner scoping: with an owner-id column, a tenant never sees another tenant's sessions.
mod common;

use chrono::Utc;
use serde_json::json;
use session_pool::adk::{AdkConfig, EventRecord, GetSessionConfig, SessionService};
use session_pool::prelude::*;
use session_pool::{Database, Error, Value};

fn event(id: &str, session: &str) -> EventRecord {
    EventRecord::new(id, session, "app", "u")
}

async fn tenants_are_isolated(db: Database) {
    let store = common::adk_store(
        &db,
        AdkConfig::default().owner_id_column("tenant_id BIGINT NOT NULL"),
    )
    .await;
    assert_eq!(store.owner_id_column_name(), Some("tenant_id"));
    let a = store.scoped(1).unwrap();
    let b = store.scoped(2).unwrap();
    let sa = a
        .create_session("sa", "app", "u", &json!({"t": "a"}), None)
        .await
        .unwrap();
    assert_eq!(sa.owner_id, Some(Value::Int(1)));
    b.create_session("sb", "app", "u", &json!({"t": "b"}), None)
        .await
        .unwrap();
    a.append_event(&event("ea", "sa")).await.unwrap();
    b.append_event(&event("eb", "sb")).await.unwrap();

    // Tenant A sees only its own.
    assert!(a.get_session("sb").await.unwrap().is_none());
    // Through the service too, whose read takes the session and its events in one
    // statement: another tenant's session comes back as none, with none of its events.
    let service_a = SessionService::new(a.clone());
    let every = GetSessionConfig::default();
    let recent = GetSessionConfig::default().num_recent_events(5);
    for config in [&every, &recent] {
        let got = service_a
            .get_session("app", "u", "sb", config)
            .await
            .unwrap();
        assert!(got.is_none(), "{got:?}");
        let own = service_a
            .get_session("app", "u", "sa", config)
            .await
            .unwrap();
        let own = own.expect("tenant A's own session");
        let ids: Vec<&str> = own.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["ea"]);
    }
    let listed: Vec<String> = a
        .list_sessions("app", None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ["sa"]);
    assert!(a.get_events("sb", None, None).await.unwrap().is_empty());
    let err = a.append_event(&event("x1", "sb")).await.unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err = a
        .update_session_state("sb", &json!({"t": "hacked"}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    let err = a
        .append_event_and_update_state(&event("x2", "sb"), &json!({}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    assert!(!a.delete_session("sb").await.unwrap());
    assert_eq!(
        a.delete_idle_sessions(Utc::now() + chrono::Duration::hours(1))
            .await
            .unwrap(),
        1
    );

    // B's session is untouched; A's is gone.
    let sb = b.get_session("sb").await.unwrap().unwrap();
    assert_eq!(sb.state, json!({"t": "b"}));
    assert_eq!(b.get_events("sb", None, None).await.unwrap().len(), 1);
    assert!(store.get_session("sa").await.unwrap().is_none());
    // The unscoped store sees every tenant.
    assert_eq!(store.list_sessions("app", None).await.unwrap().len(), 1);
}

async fn owner_arguments_are_checked(db: Database) {
    let store = common::adk_store(
        &db,
        AdkConfig::default().owner_id_column("tenant_id TEXT NOT NULL"),
    )
    .await;
    let a = store.scoped("acme").unwrap();
    let err = a
        .create_session("s", "app", "u", &json!({}), Some("globex".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(store.scoped(Value::Null).is_err());
    // The unscoped store may create for any owner.
    let s = store
        .create_session("s", "app", "u", &json!({}), Some("globex".into()))
        .await
        .unwrap();
    assert_eq!(s.owner_id, Some(Value::Text("globex".into())));
    assert!(a.get_session("s").await.unwrap().is_none());

    let plain = common::adk_store(&db, AdkConfig::default()).await;
    let err = plain.scoped(1).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

/// Scoped reads and writes of one tenant, and none of another's, whatever the owner type.
async fn isolated(
    store: &session_pool::adk::AdkStore,
    mine: impl Into<Value>,
    theirs: impl Into<Value>,
    expected_owner: impl Fn(&Value) -> bool,
) {
    let a = store.scoped(mine).unwrap();
    let b = store.scoped(theirs).unwrap();
    let sa = a
        .create_session("sa", "app", "u", &json!({"t": "a"}), None)
        .await
        .unwrap();
    assert!(
        sa.owner_id.as_ref().is_some_and(&expected_owner),
        "{:?}",
        sa.owner_id
    );
    b.create_session("sb", "app", "u", &json!({"t": "b"}), None)
        .await
        .unwrap();
    a.append_event(&event("ea", "sa")).await.unwrap();
    assert!(a.get_session("sb").await.unwrap().is_none());
    assert!(a.get_session("sa").await.unwrap().is_some());
    let listed: Vec<String> = a
        .list_sessions("app", None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, ["sa"]);
    assert_eq!(a.get_events("sa", None, None).await.unwrap().len(), 1);
    assert!(!a.delete_session("sb").await.unwrap());
    assert!(b.get_session("sb").await.unwrap().is_some());
}

async fn uuid_owners(db: Database) {
    let store = common::adk_store(
        &db,
        AdkConfig::default().owner_id_column("tenant_id UUID NOT NULL"),
    )
    .await;
    let (mine, theirs) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    // Given as a UUID or as its text, bound as a UUID.
    isolated(&store, mine, theirs.to_string(), |v| {
        matches!(v, Value::Uuid(u) if *u == mine)
            || matches!(v, Value::Text(t) if *t == mine.to_string())
    })
    .await;
    let err = store.scoped("not a uuid").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

async fn integer_owners_referencing_a_tenants_table(db: Database) {
    let tenants = common::unique("tenants");
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(
        &format!("CREATE TABLE {tenants} (id INTEGER PRIMARY KEY)"),
        &[],
    )
    .await
    .unwrap();
    s.execute_update(&format!("INSERT INTO {tenants} VALUES (7), (8)"), &[])
        .await
        .unwrap();
    let store = common::adk_store(
        &db,
        AdkConfig::default().owner_id_column(format!("tenant_id INTEGER REFERENCES {tenants}(id)")),
    )
    .await;
    isolated(&store, 7, "8", |v| matches!(v, Value::Int(7))).await;
    // An owner the tenants table lacks is refused by its foreign key.
    let err = store
        .create_session("x", "app", "u", &json!({}), Some(Value::Int(99)))
        .await
        .unwrap_err();
    assert!(!matches!(err, Error::InvalidArgument(_)), "{err}");
}

on_both!(
    tenants_are_isolated,
    owner_arguments_are_checked,
    uuid_owners,
    integer_owners_referencing_a_tenants_table,
);
