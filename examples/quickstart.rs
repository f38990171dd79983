//! Quickstart: a session on embedded SQLite (or `DATABASE_URL`), a table, a batch, a
//! transaction with abort-retry, a key-set read and a snapshot.
//!
//! ```sh
//! cargo run --example quickstart                      # SQLite file in the temp directory
//! DATABASE_URL=postgres://… cargo run --example quickstart
//! ```

use session_pool::prelude::*;
use session_pool::{Database, KeyRange, KeySet, Result, params};

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join("session-pool-quickstart.db");
        format!("sqlite://{}", path.display())
    });
    let db = Database::open(&url).await?;
    println!("database  {}", db.name());

    let mut session = db.session();
    session.create().await?;
    println!("session   {}", session.name()?);

    session
        .execute_update("DROP TABLE IF EXISTS quickstart_accounts", &[])
        .await?;
    session
        .execute_update(
            "CREATE TABLE quickstart_accounts (
                id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT NOT NULL)",
            &[],
        )
        .await?;
    println!("table     quickstart_accounts created");

    // A batch: mutations applied atomically.
    let mut batch = session.batch()?;
    batch.insert(
        "quickstart_accounts",
        &["id", "owner", "balance"],
        vec![
            params![1, "ada", 100],
            params![2, "brian", 50],
            params![3, "chen", 75],
        ],
    )?;
    let committed = batch.commit().await?;
    println!("batch     3 accounts inserted, committed at {committed}");

    // A transaction, retried if the database aborts it.
    let moved = session
        .run_in_transaction(async |tx| {
            let from = tx
                .execute_sql(
                    "SELECT balance FROM quickstart_accounts WHERE id = $1",
                    &params![1],
                )
                .await?
                .one()?
                .get::<i64>("balance")?;
            let amount = 25.min(from);
            tx.execute_update(
                "UPDATE quickstart_accounts SET balance = balance - $1 WHERE id = $2",
                &params![amount, 1],
            )
            .await?;
            tx.execute_update(
                "UPDATE quickstart_accounts SET balance = balance + $1 WHERE id = $2",
                &params![amount, 2],
            )
            .await?;
            Ok::<_, session_pool::Error>(amount)
        })
        .await?;
    println!("txn       moved {moved} from ada to brian");

    // A key-set read: key 3, plus the range [1, 2].
    let keyset = KeySet::keys([[3]]).with_range(KeyRange::closed_closed([1], [2]));
    let rows = session
        .read(
            "quickstart_accounts",
            &["id", "owner", "balance"],
            &keyset,
            None,
            0,
        )
        .await?;
    for row in &rows.rows {
        println!(
            "read      id={} owner={} balance={}",
            row.get::<i64>("id")?,
            row.get::<String>("owner")?,
            row.get::<i64>("balance")?
        );
    }

    // A snapshot: two reads of one consistent state.
    let mut snapshot = session.snapshot().await?;
    let total = snapshot
        .execute_sql(
            "SELECT CAST(SUM(balance) AS BIGINT) AS total FROM quickstart_accounts",
            &[],
        )
        .await?
        .one()?
        .get::<i64>("total")?;
    let count = snapshot
        .read("quickstart_accounts", &["id"], &KeySet::all(), None, 0)
        .await?
        .len();
    snapshot.close().await?;
    println!("snapshot  {count} accounts holding {total} in total");
    assert_eq!(total, 225, "transfers keep the total");

    session.delete().await?;
    println!("session   deleted");
    Ok(())
}
