//! What every OS's wait on a shared word has in common: sleeps come in slices, and why a
//! wait returned.

use std::time::{Duration, Instant};

/// The longest a single sleep lasts. A wait that is longer is made of sleeps this long, each
/// followed by a look at the shared words, so that a waiter notices within this bound what no
/// wake-up can tell it: the object was truncated under it (a futex on a page that no longer
/// exists cannot be woken), a peer scribbled the word. It costs an idle waiter two wake-ups a
/// second and a notifier nothing.
pub(crate) const SLICE: Duration = Duration::from_millis(500);

/// Why a wait returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// Woken, or the word was not `expected` when the kernel looked, or a signal, or a slice of
    /// a long wait ended: recheck.
    Recheck,
    /// The deadline passed.
    TimedOut,
}

/// The next sleep: until `deadline`, at most [`SLICE`]; `None` if the deadline has passed.
pub(crate) fn next_sleep(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(SLICE),
        Some(d) => {
            let left = d.checked_duration_since(Instant::now())?;
            (!left.is_zero()).then(|| left.min(SLICE))
        }
    }
}
