//! Which form the events table has, asked of the catalog once per store: the seed's, or
//! SQLSpec 0.41's PostgreSQL layout (whose `long_running_tool_ids_json` is JSONB). The
//! whole-event layouts of later SQLSpec releases (one JSON column per event: `event_json`
//! in 0.42–0.50, `event_data` from 0.51) are refused with a typed error instead of
//! failing statement by statement on missing columns.

use super::AdkStore;
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
    /// Whether the events table has SQLSpec's PostgreSQL layout, whose
    /// `long_running_tool_ids_json` is JSONB (the seed's is TEXT): asked of the catalog
    /// once, so tables either side created are read and written in their own form. An
    /// events table in a whole-event layout is [`Error::Unsupported`].
    pub(super) async fn jsonb_tool_ids(
        &self,
        ctx: &mut impl Context,
        postgres: bool,
    ) -> Result<bool> {
        if let Some(known) = self.jsonb_tool_ids.get() {
            return Ok(*known);
        }
        // Boxed: asked once per store, its statement's state would otherwise enlarge every
        // caller's future (each move of which copies it).
        Box::pin(self.ask_layout(ctx, postgres)).await
    }

    /// Refuses an existing events table this store cannot read or write (before
    /// `create_tables` adds anything beside it).
    pub(super) async fn check_layout(&self, ctx: &mut impl Context, postgres: bool) -> Result<()> {
        self.jsonb_tool_ids(ctx, postgres).await.map(|_| ())
    }

    async fn ask_layout(&self, ctx: &mut impl Context, postgres: bool) -> Result<bool> {
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
            return Ok(false);
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
        if let (Some(column), false) = (columns.whole_event, columns.content) {
            let release = if column == "event_data" {
                "SQLSpec 0.51 and later"
            } else {
                "SQLSpec 0.42 to 0.50"
            };
            return Err(Error::Unsupported(format!(
                "the events table {} keeps each event whole in a JSON column `{column}` (the \
                 layout of {release}); this store reads and writes the seed's layout, one \
                 column per event field, as SQLSpec 0.41 and earlier create it. Point \
                 AdkConfig::session_table and events_table at tables of that layout (or \
                 new names, for create_tables to make)",
                self.tables.events
            )));
        }
        let _ = self.jsonb_tool_ids.set(columns.jsonb_tool_ids);
        Ok(columns.jsonb_tool_ids)
    }
}
