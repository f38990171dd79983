//! How items become the text stored in `message_data`, and back: the SDK's
//! `_serialize_item` / `_deserialize_item` hooks.

use crate::error::{Error, Result};

/// Turns items into stored text and back (the SDK's `_serialize_item` and
/// `_deserialize_item`, which a subclass overrides). Set one with
/// [`ItemsStore::with_codec`](super::ItemsStore::with_codec); the default is
/// [`JsonCodec`].
pub trait ItemCodec: Send + Sync + std::fmt::Debug {
    /// The text to store for `item`.
    fn serialize(&self, item: &serde_json::Value) -> Result<String>;
    /// The item stored as `text`; an error skips the row with a warning (`get_items`), or
    /// removes it and pops the next (`pop_item`).
    fn deserialize(&self, text: &str) -> Result<serde_json::Value>;
}

/// Compact JSON, as the SDK's default `json.dumps` / `json.loads` (without spaces).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl ItemCodec for JsonCodec {
    fn serialize(&self, item: &serde_json::Value) -> Result<String> {
        Ok(item.to_string())
    }

    fn deserialize(&self, text: &str) -> Result<serde_json::Value> {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("not JSON: {e}")))
    }
}
