//! Which form the events table has: the seed's, or SQLSpec 0.41.1's PostgreSQL layout
//! (whose `long_running_tool_ids_json` is JSONB), asked of the catalog once.

use super::AdkStore;
use crate::error::Result;
use crate::param::Param;
use crate::session::Context;

impl AdkStore {
    /// Whether the events table has SQLSpec's PostgreSQL layout, whose
    /// `long_running_tool_ids_json` is JSONB (the seed's is TEXT): asked of the catalog
    /// once, so tables either side created are read and written in their own form.
    pub(super) async fn jsonb_tool_ids(
        &self,
        ctx: &mut impl Context,
        postgres: bool,
    ) -> Result<bool> {
        if !postgres {
            return Ok(false);
        }
        if let Some(known) = self.jsonb_tool_ids.get() {
            return Ok(*known);
        }
        // Boxed: asked once per store, its statement's state would otherwise enlarge every
        // caller's future (each move of which copies it).
        Box::pin(self.ask_jsonb_tool_ids(ctx)).await
    }

    async fn ask_jsonb_tool_ids(&self, ctx: &mut impl Context) -> Result<bool> {
        let rows = ctx
            .exec()
            .await?
            .map_rows(
                "SELECT data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 AND column_name = 'long_running_tool_ids_json'",
                &[Param::Text(self.tables.events.as_str())],
                |r| r.get::<String>(0),
            )
            .await?;
        // No table yet: the seed's form, which `create_tables` would make; not cached.
        let Some(kind) = rows.first() else {
            return Ok(false);
        };
        let jsonb = kind.eq_ignore_ascii_case("jsonb");
        let _ = self.jsonb_tool_ids.set(jsonb);
        Ok(jsonb)
    }
}
