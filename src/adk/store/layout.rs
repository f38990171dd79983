//! Which form the events table has, asked of the catalog once per store: the seed's,
//! SQLSpec 0.41's PostgreSQL layout (whose `long_running_tool_ids_json` is JSONB), or
//! SQLSpec 0.51's and later, the whole event in `event_data`. SQLSpec 0.42–0.50's
//! `event_json` layout, whose events have no id column, is refused with a typed error
//! instead of failing statement by statement on missing columns.

use super::AdkStore;
use crate::adk::record::Form;
use crate::error::{Error, Result};
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
}

impl AdkStore {
    /// The events table's form: asked of the catalog once, so tables either side created
    /// are read and written in their own form. SQLSpec 0.42–0.50's `event_json` layout is
    /// [`Error::Unsupported`].
    pub(super) async fn form(&self, ctx: &mut impl Context, postgres: bool) -> Result<Form> {
        if let Some(known) = self.form.get() {
            return Ok(*known);
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
                _ => {}
            }
        }
        let form = match (columns.whole_event, columns.content) {
            (Some("event_data"), false) => Form::EventData,
            (Some(column), false) => {
                return Err(Error::Unsupported(format!(
                    "the events table {} keeps each event whole in a JSON column `{column}` \
                     without an id column (the layout of SQLSpec 0.42 to 0.50); this store \
                     reads and writes the seed's layout (SQLSpec 0.41 and earlier) and \
                     SQLSpec 0.51's `event_data` one. Migrate the table with a later SQLSpec, \
                     or point AdkConfig::session_table and events_table at other tables",
                    self.tables.events
                )));
            }
            _ if columns.jsonb_tool_ids => Form::JsonbToolIds,
            _ => Form::Columns,
        };
        let _ = self.form.set(form);
        Ok(form)
    }
}
