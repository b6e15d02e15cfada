//! How far a read replica is behind its primary, in the unit a bound is configured in.

use std::fmt;
use std::time::Duration;

/// A replica's lag (or a bound on it): blocks behind the primary's head, or time behind the
/// primary's last commit. See `PostgresReplica` (feature `postgres`) for how each is
/// measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lag {
    /// Blocks the replica's head is below the primary's head.
    Blocks(u64),
    /// Time between the primary's last commit the replica has replayed and the replica's
    /// snapshot (zero when it has replayed everything it received from a live stream).
    Time(Duration),
}

impl fmt::Display for Lag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocks(1) => write!(f, "1 block"),
            Self::Blocks(n) => write!(f, "{n} blocks"),
            Self::Time(t) => write!(f, "{:.3} s", t.as_secs_f64()),
        }
    }
}
