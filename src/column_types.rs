//! Which columns of a PostgreSQL result were already found to hold the types the stores
//! read them as, so a column's type is checked once per result rather than once per row.
//!
//! sqlx's `try_get` checks the column's type against the Rust type on every call: for a
//! `String` it builds six type descriptions and compares each, which costs as much as
//! decoding the value. Every row of a result has the same columns, so the answer for a
//! (column, type) pair holds for the whole result: it is asked once, and later rows decode
//! with `try_get_unchecked`. The outcome is the same as checking every row: nothing is
//! decoded unchecked that was not found compatible, and a mismatch still goes through
//! `try_get` and its typed error.

use std::any::TypeId;
use std::cell::Cell;

use sqlx::postgres::{PgRow, PgTypeInfo};
use sqlx::{Column, Row, TypeInfo};

/// Columns remembered; a result wider than this checks its further columns on every row.
const COLUMNS: usize = 32;

/// The (column, type) pairs of one result found compatible so far.
#[derive(Debug)]
pub(crate) struct CheckedColumns {
    /// The address of the result's column list: rows of another description (another
    /// result) start afresh.
    of: Cell<usize>,
    types: [Cell<Option<TypeId>>; COLUMNS],
}

impl Default for CheckedColumns {
    fn default() -> Self {
        CheckedColumns {
            of: Cell::new(0),
            types: std::array::from_fn(|_| Cell::new(None)),
        }
    }
}

impl CheckedColumns {
    /// Called before each row is read: a row of another description than the last
    /// forgets what was found.
    pub(crate) fn enter(&self, row: &PgRow) {
        // Only compared, never read through: the rows the caller holds keep it alive.
        let of = row.columns().as_ptr() as usize;
        if self.of.get() != of {
            self.of.set(of);
            self.types.iter().for_each(|t| t.set(None));
        }
    }

    /// Whether column `i` of `row` (just [entered](CheckedColumns::enter)) may be decoded
    /// as the type `id` names without sqlx's check: `compatible` (that type's
    /// `sqlx::Type::compatible`) is asked the first time, as `try_get` would ask it, and
    /// its yes is remembered for the rest of the result.
    #[inline]
    pub(crate) fn known(
        &self,
        row: &PgRow,
        i: usize,
        id: TypeId,
        compatible: impl FnOnce(&PgTypeInfo) -> bool,
    ) -> bool {
        match self.types.get(i) {
            Some(slot) if slot.get() == Some(id) => true,
            Some(slot) => Self::check(row, i, slot, id, compatible),
            None => false,
        }
    }

    #[cold]
    fn check(
        row: &PgRow,
        i: usize,
        slot: &Cell<Option<TypeId>>,
        id: TypeId,
        compatible: impl FnOnce(&PgTypeInfo) -> bool,
    ) -> bool {
        let Some(column) = row.columns().get(i) else {
            return false;
        };
        let ty = column.type_info();
        // `try_get` skips the check for a column of no known type; so does this.
        let fits = ty.is_null() || compatible(ty);
        if fits {
            slot.set(Some(id));
        }
        fits
    }
}
