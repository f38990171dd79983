//! Which form the events table has, asked of the catalog on first use (and again after a
//! statement finds the tables changed, see [`AdkStore::relearning`]): the seed's,
//! SQLSpec 0.41's PostgreSQL layout (whose `long_running_tool_ids_json` is JSONB), or one
//! of SQLSpec's whole-event layouts (0.42 on: the event in `event_json` or `event_data`,
//! with the columns beside it that the release made; see [`Whole`]).

use std::sync::atomic::{AtomicU32, Ordering};

use super::AdkStore;
use crate::adk::record::{Form, Whole};
use crate::error::Result;
use crate::param::Param;
use crate::session::Context;

/// The events table's columns that tell the layouts apart.
#[derive(Debug, Default)]
struct Columns {
    /// `long_running_tool_ids_json` is JSONB (SQLSpec 0.41's PostgreSQL layout).
    jsonb_tool_ids: bool,
    /// The seed's `content` column.
    content: bool,
    /// The whole-event column of a later SQLSpec layout, if any.
    whole_event: Option<&'static str>,
    id: bool,
    app_name: bool,
    user_id: bool,
    author: bool,
}

/// The events table's form as the store last found it, shared with clones: learned from
/// the catalog on first use, and forgotten when a statement finds a table or column gone
/// (SQLSpec's migrations drop its tables and make them again in a later layout), so the
/// next call asks again. One atomic word, read on every call: no lock.
#[derive(Debug, Default)]
pub(crate) struct FormCell(AtomicU32);

// The word: 0 unknown; 1 the seed's columns; 2 JSONB tool ids; `WHOLE` plus one bit per
// feature of a whole-event table.
const COLUMNS: u32 = 1;
const JSONB_TOOL_IDS: u32 = 2;
const WHOLE: u32 = 0x10;
const EVENT_JSON: u32 = 1;
const ID: u32 = 2;
const OWNERS: u32 = 4;
const AUTHOR: u32 = 8;

impl FormCell {
    pub(crate) fn get(&self) -> Option<Form> {
        let word = self.0.load(Ordering::Acquire);
        let bit = |b: u32| word & b != 0;
        match word {
            0 => None,
            COLUMNS => Some(Form::Columns),
            JSONB_TOOL_IDS => Some(Form::JsonbToolIds),
            _ => Some(Form::Whole(Whole {
                column: if bit(EVENT_JSON) {
                    "event_json"
                } else {
                    "event_data"
                },
                id: bit(ID),
                owners: bit(OWNERS),
                author: bit(AUTHOR),
            })),
        }
    }

    fn set(&self, form: Form) {
        let word = match form {
            Form::Columns => COLUMNS,
            Form::JsonbToolIds => JSONB_TOOL_IDS,
            Form::Whole(w) => {
                let flag = |on: bool, b: u32| if on { b } else { 0 };
                WHOLE
                    | flag(w.column == "event_json", EVENT_JSON)
                    | flag(w.id, ID)
                    | flag(w.owners, OWNERS)
                    | flag(w.author, AUTHOR)
            }
        };
        self.0.store(word, Ordering::Release);
    }

    /// Forgets the form; true if one was known.
    fn forget(&self) -> bool {
        self.0.swap(0, Ordering::AcqRel) != 0
    }
}

impl AdkStore {
    /// Runs `call`, and once more when it failed on a table or column missing while a form
    /// was known: the tables changed under the store (a migration dropped and made them
    /// again, perhaps in another layout), so the form is forgotten and asked again. The
    /// failed statement wrote nothing, so the second run is safe for writes too.
    pub(super) async fn relearning<T, F>(&self, call: impl FnMut() -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let forget = || self.form.forget();
        crate::support::relearning(self.tables.events.as_str(), forget, call).await
    }

    /// The events table's form: asked of the catalog once (until the tables change), so
    /// tables either side created are read and written in their own form.
    pub(super) async fn form(&self, ctx: &mut impl Context, postgres: bool) -> Result<Form> {
        if let Some(known) = self.form.get() {
            return Ok(known);
        }
        // Boxed: asked once per store, its statement's state would otherwise enlarge every
        // caller's future (each move of which copies it).
        Box::pin(self.ask_layout(ctx, postgres)).await
    }

    async fn ask_layout(&self, ctx: &mut impl Context, postgres: bool) -> Result<Form> {
        let sql = if postgres {
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        } else {
            "SELECT name, type FROM pragma_table_info($1)"
        };
        let rows = ctx
            .exec()
            .await?
            .map_rows(sql, &[Param::Text(self.tables.events.as_str())], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })
            .await?;
        // No table yet: the seed's form, which `create_tables` would make; not cached.
        if rows.is_empty() {
            return Ok(Form::Columns);
        }
        let mut columns = Columns::default();
        for (name, kind) in &rows {
            match name.as_str() {
                "long_running_tool_ids_json" => {
                    columns.jsonb_tool_ids = kind.eq_ignore_ascii_case("jsonb");
                }
                "content" => columns.content = true,
                "event_data" => columns.whole_event = Some("event_data"),
                "event_json" => columns.whole_event = Some("event_json"),
                "id" => columns.id = true,
                "app_name" => columns.app_name = true,
                "user_id" => columns.user_id = true,
                "author" => columns.author = true,
                _ => {}
            }
        }
        let form = match (columns.whole_event, columns.content) {
            (Some(column), false) => Form::Whole(Whole {
                column,
                id: columns.id,
                owners: columns.app_name && columns.user_id,
                author: columns.author,
            }),
            _ if columns.jsonb_tool_ids => Form::JsonbToolIds,
            _ => Form::Columns,
        };
        tracing::debug!(target: "session_pool::adk", table = %self.tables.events, ?form,
            "events table layout");
        self.form.set(form);
        Ok(form)
    }
}
