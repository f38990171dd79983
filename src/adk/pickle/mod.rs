//! A data-only reader and writer for the pickles ADK's Python stores keep in `actions`.
//!
//! SQLSpec's converters store `pickle.dumps(event.actions)`: a pydantic `EventActions`
//! built with `NEWOBJ` and filled by `BUILD` with pydantic's state dict. [`read()`] runs the
//! pickle machine over a closed set of opcodes and builds symbolic objects: a class is a
//! name, never imported, and nothing is called. The result is turned into JSON: a pydantic
//! model as the fields it had set (and its extra fields), an enum as its value, a set as a
//! list. [`write()`](mod@write) emits `EventActions.model_validate({...})` for SQLSpec's stores, so
//! fields a later ADK adds take their defaults, or, for google-adk's legacy tables, whose
//! restricted unpickler resolves classes only, the model's own state as `pickle.dumps`
//! writes it.
//!
//! Accepted opcodes are those protocols 2 to 5 use for these models; the protocol 0/1 text
//! opcodes, persistent ids, extension codes and out-of-band buffers are refused.

mod read;
mod write;

pub(crate) use read::read;
pub(crate) use write::{write_model_validate, write_pydantic_state};

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pickle at byte {offset}: {reason}")]
pub(crate) struct PickleError {
    /// Where in the input the reader stopped.
    pub(crate) offset: usize,
    /// What went wrong there.
    pub(crate) reason: String,
}
