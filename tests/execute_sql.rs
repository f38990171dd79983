//! execute_sql: parameters and values both ways, streaming, typed decoding, errors.
mod common;

use chrono::{TimeZone, Utc};
use futures_util::StreamExt;
use session_pool::prelude::*;
use session_pool::{Database, Error, ErrorKind, RawConnection, Value, params};

async fn values_round_trip(db: Database) {
    let t = common::unique("vals");
    let ddl = common::by_dialect(
        &db,
        "CREATE TABLE {t} (id INTEGER PRIMARY KEY, b BOOLEAN, i INTEGER, f REAL, s TEXT, \
         bytes BLOB, j TEXT, ts TEXT)",
        "CREATE TABLE {t} (id BIGINT PRIMARY KEY, b BOOLEAN, i INTEGER, f DOUBLE PRECISION, \
         s TEXT, bytes BYTEA, j JSONB, ts TIMESTAMPTZ)",
    )
    .replace("{t}", &t);
    let mut s = db.session();
    s.create().await.unwrap();
    s.execute_update(&ddl, &[]).await.unwrap();

    let ts = Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap()
        + chrono::Duration::microseconds(123_456);
    let json = serde_json::json!({"k": [1, 2, {"x": null}]});
    let insert = format!(
        "INSERT INTO {t} (id, b, i, f, s, bytes, j, ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    );
    let n = s
        .execute_update(
            &insert,
            &params![1, true, 42, 1.5, "héllo", vec![0u8, 255], json.clone(), ts],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    // NULLs of every column type bind untyped, so the server takes each column's type.
    let nulls = vec![
        Value::Int(2),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Null,
    ];
    s.execute_update(&insert, &nulls).await.unwrap();

    let rows = s
        .execute_sql(
            &format!("SELECT id, b, i, f, s, bytes, j, ts FROM {t} ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.columns, ["id", "b", "i", "f", "s", "bytes", "j", "ts"]);
    let r = &rows.rows[0];
    assert!(r.get::<bool>("b").unwrap());
    assert_eq!(r.get::<i64>("i").unwrap(), 42);
    assert_eq!(r.get::<f64>("f").unwrap(), 1.5);
    assert_eq!(r.get::<String>("s").unwrap(), "héllo");
    assert_eq!(r.get::<Vec<u8>>("bytes").unwrap(), vec![0u8, 255]);
    assert_eq!(r.get::<serde_json::Value>("j").unwrap(), json);
    assert_eq!(r.get::<chrono::DateTime<Utc>>("ts").unwrap(), ts);
    let null_row = &rows.rows[1];
    assert!(
        null_row.values()[1..].iter().all(Value::is_null),
        "{null_row:?}"
    );
    assert_eq!(null_row.get::<Option<i64>>("i").unwrap(), None);

    // Reading a value as the wrong type, or a missing column, is a typed error that names
    // the column (and the types).
    match r.get::<i64>("s") {
        Err(Error::ColumnDecode {
            column,
            expected,
            found,
            ..
        }) => assert_eq!((&*column, &*expected, &*found), ("s", "i64", "text")),
        other => panic!("{other:?}"),
    }
    match r.get::<i64>("nope") {
        Err(e @ Error::ColumnNotFound { .. }) => {
            assert_eq!(e.kind(), ErrorKind::Decode);
            assert!(e.to_string().contains("\"nope\""), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

async fn streams_rows(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    let sql = common::by_dialect(
        &db,
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < $1) SELECT x FROM n",
        "SELECT x::bigint FROM generate_series(1, $1::bigint) AS x",
    );
    let params = params![1000];
    let mut stream = s.execute_sql_stream(sql, &params);
    let mut sum = 0;
    let mut count = 0;
    while let Some(row) = stream.next().await {
        sum += row.unwrap().get::<i64>("x").unwrap();
        count += 1;
    }
    drop(stream);
    assert_eq!((count, sum), (1000, 500_500));

    // A stream dropped half way leaves the session usable.
    let mut stream = s.execute_sql_stream(sql, &params);
    stream.next().await.unwrap().unwrap();
    drop(stream);
    let one = s
        .execute_sql("SELECT 1 AS one", &[])
        .await
        .unwrap()
        .one()
        .unwrap();
    assert_eq!(one.get::<i64>("one").unwrap(), 1);

    // Errors come through the stream.
    let mut not_created = db.session();
    let first = not_created
        .execute_sql_stream("SELECT 1", &[])
        .next()
        .await
        .unwrap();
    assert!(matches!(first, Err(Error::NotCreated)));
}

async fn typed_decoding_through_sqlx(db: Database) {
    #[derive(sqlx::FromRow, Debug, PartialEq)]
    struct Pair {
        a: i64,
        b: String,
    }
    let mut s = db.session();
    s.create().await.unwrap();
    // sqlx's FromRow, with no matching on the backend.
    let sql = "SELECT CAST($1 AS BIGINT) AS a, 'seven' AS b";
    let pairs: Vec<Pair> = s.query_as(sql, &params![7]).await.unwrap();
    assert_eq!(
        pairs,
        vec![Pair {
            a: 7,
            b: "seven".into()
        }]
    );
    // A field the query does not return is a typed error, and the session stays usable.
    #[derive(sqlx::FromRow, Debug)]
    #[allow(dead_code)]
    struct Missing {
        c: i64,
    }
    match s.query_as::<Missing>(sql, &params![7]).await {
        Err(Error::ColumnNotFound { column, .. }) => assert_eq!(column, "c"),
        other => panic!("{other:?}"),
    }
    s.ping().await.unwrap();
    // The raw connection is still there for anything else sqlx does.
    let raw: i64 = match s.connection().await.unwrap() {
        RawConnection::Sqlite(c) => sqlx::query_scalar("SELECT 3").fetch_one(c).await.unwrap(),
        RawConnection::Postgres(c) => sqlx::query_scalar("SELECT 3::int8")
            .fetch_one(c)
            .await
            .unwrap(),
        // Through a transaction pooler: simple-protocol text, no prepared statement.
        RawConnection::PostgresPooled(c, _) => {
            use sqlx::Row;
            let row = sqlx::raw_sql("SELECT 3::int8").fetch_one(c).await.unwrap();
            row.get::<i64, _>(0)
        }
        _ => unreachable!(),
    };
    assert_eq!(raw, 3);
}

async fn errors_are_typed_and_keep_the_session(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    match s.execute_sql("SELEC nonsense", &[]).await {
        Err(e @ Error::Database { .. }) => assert!(e.code().is_some(), "{e}"),
        other => panic!("expected a database error, got {other:?}"),
    }
    // A failed statement does not break the session.
    assert!(!s.is_broken());
    s.ping().await.unwrap();
    let empty = s
        .execute_sql("SELECT 1 AS x WHERE 1 = 0", &[])
        .await
        .unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn unsupported_postgres_types_say_how_to_cast() {
    let Some(db) = common::postgres().await else {
        return;
    };
    let mut s = db.session();
    s.create().await.unwrap();
    match s.execute_sql("SELECT interval '1 day' AS n", &[]).await {
        Err(Error::Unsupported(msg)) => assert!(msg.contains("n::text"), "{msg}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let ok = s
        .execute_sql("SELECT (interval '1 day')::text AS n", &[])
        .await
        .unwrap();
    assert_eq!(ok.one().unwrap().get::<String>("n").unwrap(), "1 day");
}

/// One statement text run with parameters of other types each time: each value comes back
/// as itself (sqlx caches a PostgreSQL statement by its text, with its first parameter
/// types; before the fix a float came back as an integer and text failed with 08P01).
async fn one_text_with_parameters_of_other_types(db: Database) {
    let mut s = db.session();
    s.create().await.unwrap();
    let values = [
        Value::Int(1),
        Value::Float(1.5),
        Value::Text("x".into()),
        Value::Null,
        Value::Bool(true),
        Value::Bytes(vec![1, 2]),
        Value::Int(3),
    ];
    for v in values {
        let rs = s
            .execute_sql("SELECT $1 AS v", std::slice::from_ref(&v))
            .await
            .unwrap();
        let got = rs.rows[0].value(0).cloned().unwrap();
        // SQLite has no booleans: TRUE is 1.
        let want = match (&v, db.dialect()) {
            (Value::Bool(b), session_pool::Dialect::Sqlite) => Value::Int(*b as i64),
            _ => v.clone(),
        };
        assert_eq!(got, want, "{v:?}");
    }
}

on_both!(
    one_text_with_parameters_of_other_types,
    values_round_trip,
    streams_rows,
    typed_decoding_through_sqlx,
    errors_are_typed_and_keep_the_session
);
