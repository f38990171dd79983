//! Which form the events table has, asked of the catalog once per store: the seed's,
//! SQLSpec 0.41's PostgreSQL layout (whose `long_running_tool_ids_json` is JSONB), or one
//! of SQLSpec's whole-event layouts (0.42 on: the event in `event_json` or `event_data`,
//! with the columns beside it that the release made; see [`Whole`]).

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

impl AdkStore {
    /// The events table's form: asked of the catalog once, so tables either side created
    /// are read and written in their own form.
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
        let _ = self.form.set(form);
        Ok(form)
    }
}
