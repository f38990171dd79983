//! Key sets: which rows a `read` or a `delete` mutation touches.

use crate::value::Value;

/// One end of a [`KeyRange`]: a key or a key prefix, included or excluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// The end includes rows whose key (prefix) equals this one.
    Closed(Vec<Value>),
    /// The end excludes rows whose key (prefix) equals this one.
    Open(Vec<Value>),
    /// No limit on this side.
    Unbounded,
}

/// A range of keys, as Spanner's `KeyRange`: each end is a full key or a prefix of one.
///
/// A prefix compares only the leading key columns, so `KeyRange::closed_closed([1], [1])`
/// selects every row whose first key column is 1.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRange {
    /// The lower end.
    pub start: Bound,
    /// The upper end.
    pub end: Bound,
}

fn key<I: IntoIterator<Item = V>, V: Into<Value>>(values: I) -> Vec<Value> {
    values.into_iter().map(Into::into).collect()
}

impl KeyRange {
    /// `[start, end]`.
    pub fn closed_closed<A, B, V, W>(start: A, end: B) -> Self
    where
        A: IntoIterator<Item = V>,
        B: IntoIterator<Item = W>,
        V: Into<Value>,
        W: Into<Value>,
    {
        KeyRange {
            start: Bound::Closed(key(start)),
            end: Bound::Closed(key(end)),
        }
    }

    /// `[start, end)`.
    pub fn closed_open<A, B, V, W>(start: A, end: B) -> Self
    where
        A: IntoIterator<Item = V>,
        B: IntoIterator<Item = W>,
        V: Into<Value>,
        W: Into<Value>,
    {
        KeyRange {
            start: Bound::Closed(key(start)),
            end: Bound::Open(key(end)),
        }
    }

    /// `(start, end]`.
    pub fn open_closed<A, B, V, W>(start: A, end: B) -> Self
    where
        A: IntoIterator<Item = V>,
        B: IntoIterator<Item = W>,
        V: Into<Value>,
        W: Into<Value>,
    {
        KeyRange {
            start: Bound::Open(key(start)),
            end: Bound::Closed(key(end)),
        }
    }

    /// `(start, end)`.
    pub fn open_open<A, B, V, W>(start: A, end: B) -> Self
    where
        A: IntoIterator<Item = V>,
        B: IntoIterator<Item = W>,
        V: Into<Value>,
        W: Into<Value>,
    {
        KeyRange {
            start: Bound::Open(key(start)),
            end: Bound::Open(key(end)),
        }
    }

    /// Any range from two bounds.
    pub fn new(start: Bound, end: Bound) -> Self {
        KeyRange { start, end }
    }
}

/// Which rows to read or delete: listed keys, key ranges, or the whole table.
///
/// A key is the list of values of the primary key columns (or of the index columns when a
/// read names an index), in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeySet {
    /// Whole keys.
    pub keys: Vec<Vec<Value>>,
    /// Key ranges.
    pub ranges: Vec<KeyRange>,
    /// Every row; `keys` and `ranges` are then ignored.
    pub all: bool,
}

impl KeySet {
    /// Every row of the table.
    pub fn all() -> Self {
        KeySet {
            all: true,
            ..KeySet::default()
        }
    }

    /// No row at all.
    pub fn empty() -> Self {
        KeySet::default()
    }

    /// The rows with these keys.
    pub fn keys<K, I, V>(keys: K) -> Self
    where
        K: IntoIterator<Item = I>,
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        KeySet {
            keys: keys.into_iter().map(key).collect(),
            ..KeySet::default()
        }
    }

    /// The rows in these ranges.
    pub fn ranges(ranges: impl IntoIterator<Item = KeyRange>) -> Self {
        KeySet {
            ranges: ranges.into_iter().collect(),
            ..KeySet::default()
        }
    }

    /// Adds a key.
    #[must_use]
    pub fn with_key<V: Into<Value>>(mut self, k: impl IntoIterator<Item = V>) -> Self {
        self.keys.push(key(k));
        self
    }

    /// Adds a range.
    #[must_use]
    pub fn with_range(mut self, range: KeyRange) -> Self {
        self.ranges.push(range);
        self
    }
}
