//! The store's calls on openai-agents' `AdvancedSQLiteSession` tables (SQLite only; the
//! statements and the SDK's rules are in [`structure`]). Each write runs
//! in the caller's `BEGIN IMMEDIATE` transaction, so no other writer comes between its
//! statements.

use serde_json::Value;

use super::schema::Tables;
use super::sql::{self, Row};
use super::structure::{self, Meta};
use crate::error::{Error, Result};
use crate::param::Param;
use crate::session::Context;
use crate::transaction::Transaction;
use crate::value::FromValue;

/// Asks the catalog whether the structure tables are there, and remembers a yes.
pub(super) async fn probe(c: &mut impl Context, t: &Tables) -> Result<bool> {
    let sql = format!("SELECT {}", t.structure.probe());
    let rows = c
        .exec()
        .await?
        .map_rows(sql, &[] as &[Param], |r| {
            Ok(bool::from_owned(r.value(0)?).unwrap_or(false))
        })
        .await?;
    let seen = rows.first().copied().unwrap_or(false);
    if seen {
        t.structure.set();
    }
    Ok(seen)
}

/// Branch `branch`'s newest `limit` rows (all when `None`), oldest first.
pub(super) async fn get_rows(
    c: &mut impl Context,
    t: &Tables,
    id: &str,
    branch: &str,
    limit: Option<usize>,
) -> Result<Vec<Row>> {
    let mut params = vec![Param::Text(id), Param::Text(branch)];
    if let Some(n) = limit {
        params.push(Param::Int(i64::try_from(n).unwrap_or(i64::MAX)));
    }
    let mut rows = c
        .exec()
        .await?
        .map_rows(
            structure::get_items(t, limit.is_some()),
            &params,
            sql::row_of,
        )
        .await?;
    if limit.is_some() {
        rows.reverse();
    }
    Ok(rows)
}

/// The items (`texts`, their structure rows from `metas`) after the parent upsert, as the
/// SDK's `add_items`: sequence numbers go on from the conversation's last, and each user
/// message starts a turn.
pub(super) async fn add(
    tx: &mut Transaction<'_>,
    t: &Tables,
    id: &str,
    branch: &str,
    texts: &[String],
    metas: &[Meta],
) -> Result<()> {
    let numbers = tx
        .exec()
        .await?
        .map_rows(
            structure::NUMBERS,
            &[Param::Text(id), Param::Text(branch)],
            |r| {
                Ok((
                    i64::from_owned(r.value(0)?)?,
                    i64::from_owned(r.value(1)?)?,
                    i64::from_owned(r.value(2)?)?,
                ))
            },
        )
        .await?;
    let (sequence, turn, branch_turn) = numbers.first().copied().unwrap_or((0, 0, 0));
    let insert = structure::add_item(t);
    let mut users = 0;
    for (n, (text, meta)) in (1..).zip(texts.iter().zip(metas)) {
        let message = tx
            .exec()
            .await?
            .map_rows(&insert, &[Param::Text(id), Param::Text(text)], |r| {
                Ok(i64::from_owned(r.value(0)?)?)
            })
            .await?;
        let message = message.first().copied().ok_or(Error::RowNotFound)?;
        if meta.user {
            users += 1;
        }
        let tool = meta.tool_name.as_deref().map_or(Param::Null, Param::Text);
        tx.exec()
            .await?
            .execute(
                structure::INSERT,
                &[
                    Param::Text(id),
                    Param::Int(message),
                    Param::Text(branch),
                    Param::Text(&meta.message_type),
                    Param::Int(sequence + n),
                    Param::Int(turn + users),
                    Param::Int(branch_turn + users),
                    tool,
                ],
            )
            .await?;
    }
    Ok(())
}

/// As the SDK's `pop_item`, in one transaction: removes branch `branch`'s newest structure
/// row, then its message unless another branch shares it, and the turn's usage once the
/// turn is empty. A structure row whose message is gone is passed over.
pub(super) async fn pop(
    session: &mut crate::Session,
    t: &Tables,
    id: &str,
    branch: &str,
) -> Result<Option<Row>> {
    let (text_sql, drop_sql) = (structure::message_text(t), structure::drop_unreferenced(t));
    loop {
        let mut tx = session.transaction().await?;
        reserve(&mut tx, id).await?;
        let claimed = tx
            .exec()
            .await?
            .map_rows(
                structure::POP,
                &[Param::Text(id), Param::Text(branch)],
                |r| {
                    Ok((
                        i64::from_owned(r.value(0)?)?,
                        Option::<i64>::from_owned(r.value(1)?)?,
                    ))
                },
            )
            .await?;
        let Some(&(message, turn)) = claimed.first() else {
            tx.commit().await?;
            return Ok(None);
        };
        let text = tx
            .exec()
            .await?
            .map_rows(&text_sql, &[Param::Int(message)], |r| {
                Ok(String::from_owned(r.value(0)?))
            })
            .await?;
        tx.exec()
            .await?
            .execute(&drop_sql, &[Param::Int(message)])
            .await?;
        if let Some(turn) = turn {
            tx.exec()
                .await?
                .execute(
                    structure::DROP_EMPTY_TURN,
                    &[Param::Text(id), Param::Text(branch), Param::Int(turn)],
                )
                .await?;
        }
        tx.commit().await?;
        if let Some(text) = text.into_iter().next() {
            return Ok(Some((Some(message), text)));
        }
    }
}

/// As the SDK's `clear_session`: the conversation on every branch, its structure and usage
/// rows, and one more clear generation.
pub(super) async fn clear(tx: &mut Transaction<'_>, t: &Tables, id: &str) -> Result<()> {
    reserve(tx, id).await?;
    tx.exec()
        .await?
        .execute(structure::GENERATIONS_TABLE, &[] as &[Param])
        .await?;
    for statement in structure::clear(t) {
        tx.exec()
            .await?
            .execute(statement, &[Param::Text(id)])
            .await?;
    }
    Ok(())
}

/// The SDK's classification of each item: from the items, or from their text.
pub(super) fn metas(items: Option<&[Value]>, texts: &[String]) -> Vec<Meta> {
    match items {
        Some(items) => items.iter().map(Meta::of).collect(),
        // Raw items were checked to be JSON; one that is not (a custom codec's text) is
        // classified as the SDK classifies a non-object.
        None => texts
            .iter()
            .map(|text| Meta::of(&serde_json::from_str(text).unwrap_or(Value::Null)))
            .collect(),
    }
}

async fn reserve(tx: &mut Transaction<'_>, id: &str) -> Result<()> {
    tx.exec()
        .await?
        .execute(structure::RESERVATIONS_TABLE, &[] as &[Param])
        .await?;
    tx.exec()
        .await?
        .execute(structure::RESERVE, &[Param::Text(id)])
        .await?;
    Ok(())
}
