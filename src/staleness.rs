//! Spanner's timestamp bounds for reads, as PostgreSQL replicas can serve them, and the
//! commit tokens that make reads see earlier writes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// How fresh a read must be (Spanner's `TimestampBound`): what lets it go to a replica.
///
/// A [`Database`](crate::Database) with replicas
/// ([`DatabaseOptions::replica`](crate::DatabaseOptions::replica)) sends a bounded read to
/// a replica whose data is fresh enough, and to the primary otherwise. Writes, and
/// [`Strong`](Staleness::Strong) reads, always go to the primary.
///
/// | Spanner | here |
/// |---|---|
/// | `strong=True` | [`Staleness::Strong`] |
/// | `max_staleness=d` | [`Staleness::Max`]`(d)` |
/// | `exact_staleness=d` | [`Staleness::Exact`]`(d)`, approximated |
/// | `min_read_timestamp=t` | [`Staleness::AtLeast`]`(token)`, with a [`CommitToken`] |
///
/// A replica's staleness is estimated on the replica: zero when it has replayed all the
/// WAL it received, plus the time since it last heard from the primary; otherwise the time
/// since the commit it last replayed. A replica checked `s` ago with staleness `x` is
/// taken to be at most `x + s` stale, so repeated reads check it at most once per bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Staleness {
    /// The latest committed data: the primary.
    #[default]
    Strong,
    /// Data at most this old: a replica at most this far behind, else the primary.
    Max(Duration),
    /// Data about this old. PostgreSQL cannot read as of a past time, so this is
    /// approximated as [`Max`](Staleness::Max): a replica at most this far behind (its data
    /// may be newer than asked), else the primary.
    Exact(Duration),
    /// Data that includes the write that returned this token (read-your-writes): a
    /// replica that has replayed past it, else the primary.
    AtLeast(CommitToken),
}

/// A position in the primary's write-ahead log, at or after a commit: a read
/// [`Staleness::AtLeast`] this token sees that commit. Get one after a write with
/// [`Session::commit_token`](crate::Session::commit_token) (or the stores'
/// `commit_token`). It prints and parses as PostgreSQL writes an LSN (`16/B374D848`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitToken(pub(crate) u64);

impl CommitToken {
    /// The log sequence number.
    pub fn lsn(self) -> u64 {
        self.0
    }
}

impl fmt::Display for CommitToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

impl FromStr for CommitToken {
    type Err = Error;

    /// Parses PostgreSQL's `pg_lsn` text (`16/B374D848`).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "{s:?} is not a log sequence number (like 16/B374D848)"
            ))
        };
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(CommitToken((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// What a replica's check found, and when.
#[cfg(feature = "postgres")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaState {
    /// Estimated staleness at `at`.
    pub(crate) staleness: Duration,
    /// The WAL it had replayed at `at` (it only grows).
    pub(crate) replayed: u64,
    /// Still a standby (a promoted one is a primary of its own timeline).
    pub(crate) in_recovery: bool,
    pub(crate) at: std::time::Instant,
}

#[cfg(feature = "postgres")]
impl ReplicaState {
    /// Whether this replica serves a read with `bound`, as of now: `None` when the last
    /// check cannot tell and the replica must be checked again.
    pub(crate) fn serves(&self, bound: Staleness) -> Option<bool> {
        if !self.in_recovery {
            // Promoted: no longer following the primary this database writes to.
            return Some(false);
        }
        match bound {
            Staleness::Strong => Some(false),
            Staleness::Max(d) | Staleness::Exact(d) => {
                let now = self.staleness.saturating_add(self.at.elapsed());
                if now <= d { Some(true) } else { None }
            }
            Staleness::AtLeast(t) => {
                if self.replayed >= t.0 {
                    Some(true)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_print_and_parse_as_lsns() {
        let t: CommitToken = "16/B374D848".parse().unwrap();
        assert_eq!(t.lsn(), 0x16_B374_D848);
        assert_eq!(t.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<CommitToken>().unwrap().lsn(), 0);
        for bad in ["", "16", "x/1", "1/", "1/2/3", "100000000/0"] {
            assert!(bad.parse::<CommitToken>().is_err(), "{bad}");
        }
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn a_checked_replica_serves_while_its_bound_holds() {
        let state = ReplicaState {
            staleness: Duration::from_millis(100),
            replayed: 50,
            in_recovery: true,
            at: std::time::Instant::now(),
        };
        assert_eq!(
            state.serves(Staleness::Max(Duration::from_secs(5))),
            Some(true)
        );
        assert_eq!(
            state.serves(Staleness::Max(Duration::from_millis(10))),
            None
        );
        assert_eq!(
            state.serves(Staleness::AtLeast(CommitToken(50))),
            Some(true)
        );
        assert_eq!(state.serves(Staleness::AtLeast(CommitToken(51))), None);
        assert_eq!(state.serves(Staleness::Strong), Some(false));
        let promoted = ReplicaState {
            in_recovery: false,
            ..state
        };
        assert_eq!(
            promoted.serves(Staleness::Max(Duration::from_secs(5))),
            Some(false)
        );
    }
}
