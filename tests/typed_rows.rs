//! Typed rows: NUMERIC, UUID, DATE and TIME values, and rows decoded into serde types, on
//! both backends.
mod common;

use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;
use session_pool::prelude::*;
use session_pool::{Database, Error, Numeric, Value, params};
use uuid::Uuid;

async fn numeric_uuid_date_time_round_trip(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    let t = common::unique("typed");
    let ddl = common::by_dialect(
        &db,
        "CREATE TABLE {t} (id INTEGER PRIMARY KEY, n BIGINT, d NUMERIC, u TEXT, day TEXT, at TEXT)",
        "CREATE TABLE {t} (id INTEGER PRIMARY KEY, n BIGINT, d NUMERIC, u UUID, day DATE, at TIME)",
    )
    .replace("{t}", &t);
    s.execute_update(&ddl, &[]).await.unwrap();
    let big: Numeric = "123456789012345678901234567890.000000001".parse().unwrap();
    let u = Uuid::new_v4();
    let day = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
    let at = NaiveTime::from_hms_micro_opt(13, 14, 15, 161718).unwrap();
    for (id, n) in [(1, i64::MAX / 2), (2, i64::MAX / 2), (3, 7)] {
        s.execute_update(
            &format!("INSERT INTO {t} VALUES ($1, $2, $3, $4, $5, $6)"),
            &params![id, n, big.clone(), u, day, at],
        )
        .await
        .unwrap();
    }
    let row = s
        .execute_sql(&format!("SELECT d, u, day, at FROM {t} WHERE id = 1"), &[])
        .await
        .unwrap()
        .one()
        .unwrap();
    if db.dialect().is_postgres() {
        // Every digit of the NUMERIC survives; the types come back as themselves.
        assert_eq!(row.value("d"), Some(&Value::Numeric(big.clone())));
        assert_eq!(row.value("u"), Some(&Value::Uuid(u)));
        assert_eq!(row.value("day"), Some(&Value::Date(day)));
        assert_eq!(row.value("at"), Some(&Value::Time(at)));
    }
    assert_eq!(row.get::<Uuid>("u").unwrap(), u);
    assert_eq!(row.get::<NaiveDate>("day").unwrap(), day);
    assert_eq!(row.get::<NaiveTime>("at").unwrap(), at);
    assert_eq!(row.get::<String>("u").unwrap(), u.hyphenated().to_string());

    if db.dialect().is_postgres() {
        // SUM over BIGINT is NUMERIC: it reads as an exact number, beyond i64 too.
        let sum = s
            .execute_sql(&format!("SELECT SUM(n) AS total FROM {t}"), &[])
            .await
            .unwrap()
            .one()
            .unwrap();
        let expected = (i64::MAX / 2) as i128 * 2 + 7;
        assert_eq!(
            sum.get::<Numeric>("total").unwrap().as_str(),
            expected.to_string()
        );
        assert_eq!(sum.deserialize::<i128>().unwrap(), expected);
        match sum.get::<i64>("total") {
            Err(Error::ColumnDecode { column, .. }) => assert_eq!(column, "total"),
            other => panic!("a sum beyond i64 is not an i64: {other:?}"),
        }
        let small = s
            .execute_sql(&format!("SELECT SUM(n) FROM {t} WHERE id = 3"), &[])
            .await
            .unwrap()
            .one()
            .unwrap();
        assert_eq!(small.get::<i64>(0).unwrap(), 7);
        let generated = s
            .execute_sql("SELECT gen_random_uuid() AS id", &[])
            .await
            .unwrap()
            .one()
            .unwrap();
        assert_eq!(generated.get::<Uuid>("id").unwrap().get_version_num(), 4);
        // A NUMERIC parameter is compared exactly.
        let found = s
            .execute_sql(
                &format!("SELECT id FROM {t} WHERE d = $1 ORDER BY id"),
                &params![big],
            )
            .await
            .unwrap();
        assert_eq!(found.len(), 3);
    }
}

#[derive(Debug, Deserialize, PartialEq)]
struct Account {
    id: i64,
    owner: String,
    active: bool,
    balance: Option<f64>,
    profile: Profile,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Profile {
    tier: String,
    tags: Vec<String>,
}

async fn rows_decode_into_serde_types(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    let t = common::unique("accounts");
    let ddl = common::by_dialect(
        &db,
        "CREATE TABLE {t} (id INTEGER PRIMARY KEY, owner TEXT, active BOOLEAN, balance REAL, profile TEXT)",
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, owner TEXT, active BOOLEAN, balance FLOAT8, profile JSONB)",
    )
    .replace("{t}", &t);
    s.execute_update(&ddl, &[]).await.unwrap();
    let profile = serde_json::json!({"tier": "gold", "tags": ["a", "b"]});
    s.execute_update(
        &format!("INSERT INTO {t} VALUES (1, 'ada', $1, 12.5, $2), (2, 'bob', $3, NULL, $2)"),
        &params![true, profile.clone(), false],
    )
    .await
    .unwrap();
    let rows = s
        .execute_sql(&format!("SELECT * FROM {t} ORDER BY id"), &[])
        .await
        .unwrap();
    let accounts: Vec<Account> = rows.deserialize().unwrap();
    assert_eq!(accounts.len(), 2);
    assert_eq!(
        accounts[0],
        Account {
            id: 1,
            owner: "ada".into(),
            active: true,
            balance: Some(12.5),
            profile: Profile {
                tier: "gold".into(),
                tags: vec!["a".into(), "b".into()]
            }
        }
    );
    assert_eq!(accounts[1].balance, None);
    assert!(!accounts[1].active);
    // Tuples by position, and a single row.
    let (id, owner): (i64, String) = rows.rows[1].deserialize().unwrap();
    assert_eq!((id, owner.as_str()), (2, "bob"));
    let one = s
        .execute_sql(&format!("SELECT owner FROM {t} WHERE id = 1"), &[])
        .await
        .unwrap();
    assert_eq!(one.deserialize_one::<String>().unwrap(), "ada");
    assert!(matches!(
        rows.deserialize_one::<Account>(),
        Err(Error::TooManyRows { count: 2 })
    ));
    let none = s
        .execute_sql(&format!("SELECT owner FROM {t} WHERE id = 9"), &[])
        .await
        .unwrap();
    assert!(matches!(none.one(), Err(Error::RowNotFound)));
    // A value that does not fit its field names the column and the types.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        owner: i64,
    }
    match rows.deserialize::<Wrong>() {
        Err(Error::ColumnDecode {
            column,
            expected,
            found,
            ..
        }) => {
            assert_eq!(column, "owner");
            assert!(expected.contains("i64"), "{expected}");
            assert!(found.contains("ada"), "{found}");
        }
        other => panic!("{other:?}"),
    }
}

on_both!(
    numeric_uuid_date_time_round_trip,
    rows_decode_into_serde_types
);
