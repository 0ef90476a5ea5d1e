//! What the receiving side of a route makes of each message's number: the next one expected,
//! a gap (messages that never came), or one that came before (a duplicate or one out of
//! order, dropped). Kept per origin (bridge and route), for a bounded number of origins: a
//! hostile peer that invents origins evicts the one heard from longest ago, it does not grow
//! the table.

use super::wire::Origin;
use std::collections::HashMap;

/// The most origins remembered at once.
pub const ORIGINS: usize = 1024;

/// The largest jump taken as a gap: a number further past the last one from its origin is
/// not believed (a forged frame, or a broken peer) and the message is dropped as garbage, so
/// one frame cannot make every later real message look old, nor the gap count absurd. What a
/// route loses in flight (Zenoh's queues, a closed link) is far less.
pub const WINDOW: u64 = 1 << 20;

/// What a message's number says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next one (or the first heard from this origin).
    Next,
    /// Past the next one: `missed` messages never came.
    After {
        /// How many numbers were skipped.
        missed: u64,
    },
    /// At or before one already taken: drop it.
    Again,
    /// More than [`WINDOW`] past the last one: not believed, dropped (and not taken).
    Unbelievable,
}

#[derive(Default)]
pub struct Sequences {
    /// The last number taken from each origin, and when it was last heard (a count of
    /// messages).
    last: HashMap<Origin, (u64, u64)>,
    clock: u64,
}

impl Sequences {
    /// Takes message `seq` from `origin`.
    pub fn see(&mut self, origin: Origin, seq: u64) -> Seen {
        self.take(origin, seq, true)
    }

    /// Takes `origin`'s word that it has sent every message up to `seq`: the ones after the
    /// last taken never came ([`Seen::After`]); [`Seen::Next`] when none is missing.
    pub fn sent_up_to(&mut self, origin: Origin, seq: u64) -> Seen {
        self.take(origin, seq, false)
    }

    fn take(&mut self, origin: Origin, seq: u64, message: bool) -> Seen {
        self.clock += 1;
        let clock = self.clock;
        if let Some((last, heard)) = self.last.get_mut(&origin) {
            *heard = clock;
            if seq <= *last {
                return if message { Seen::Again } else { Seen::Next };
            }
            if seq - *last > WINDOW {
                return Seen::Unbelievable;
            }
            // A message is one of the numbers past the last; "sent up to" is none of them.
            let missed = seq - *last - u64::from(message);
            *last = seq;
            return if missed == 0 {
                Seen::Next
            } else {
                Seen::After { missed }
            };
        }
        if self.last.len() >= ORIGINS {
            if let Some(oldest) = self.last.iter().min_by_key(|(_, v)| v.1).map(|(k, _)| *k) {
                self.last.remove(&oldest);
            }
        }
        // The first word heard from an origin starts its count: what it sent before this
        // side listened was sent to nobody, not lost.
        self.last.insert(origin, (seq, clock));
        Seen::Next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(route: u32) -> Origin {
        Origin {
            bridge: [1; 16],
            route,
        }
    }

    #[test]
    fn gaps_duplicates_and_first_messages() {
        let mut s = Sequences::default();
        assert_eq!(s.see(o(0), 5), Seen::Next);
        assert_eq!(s.see(o(0), 6), Seen::Next);
        assert_eq!(s.see(o(0), 9), Seen::After { missed: 2 });
        assert_eq!(s.see(o(0), 9), Seen::Again);
        assert_eq!(s.see(o(0), 7), Seen::Again);
        assert_eq!(s.see(o(0), 10), Seen::Next);
        // Another route of the same bridge counts apart.
        assert_eq!(s.see(o(1), 0), Seen::Next);
        assert_eq!(s.see(o(1), 1), Seen::Next);
        // A jump past the window is not believed, and not taken.
        assert_eq!(s.see(o(1), 2 + WINDOW), Seen::Unbelievable);
        assert_eq!(s.see(o(1), 2), Seen::Next);
        assert_eq!(s.see(o(1), 2 + WINDOW), Seen::After { missed: WINDOW - 1 });
        // u64::MAX does not overflow.
        assert_eq!(s.see(o(2), u64::MAX), Seen::Next);
        assert_eq!(s.see(o(2), u64::MAX), Seen::Again);
    }

    #[test]
    fn sent_up_to_counts_what_never_came_once() {
        let mut s = Sequences::default();
        // Heard first: starts the count, as a first message does.
        assert_eq!(s.sent_up_to(o(0), 4), Seen::Next);
        assert_eq!(s.see(o(0), 5), Seen::Next);
        assert_eq!(s.sent_up_to(o(0), 5), Seen::Next);
        // 6, 7 and 8 were sent and never came.
        assert_eq!(s.sent_up_to(o(0), 8), Seen::After { missed: 3 });
        assert_eq!(s.sent_up_to(o(0), 8), Seen::Next);
        // Late ones are not taken again, nor counted twice.
        assert_eq!(s.see(o(0), 7), Seen::Again);
        assert_eq!(s.see(o(0), 9), Seen::Next);
        assert_eq!(s.sent_up_to(o(0), 3), Seen::Next);
        assert_eq!(s.sent_up_to(o(0), 10 + WINDOW), Seen::Unbelievable);
        assert_eq!(s.see(o(0), 10), Seen::Next);
        assert_eq!(s.sent_up_to(o(1), u64::MAX), Seen::Next);
        assert_eq!(s.sent_up_to(o(1), u64::MAX), Seen::Next);
    }

    #[test]
    fn invented_origins_evict_the_oldest_and_stay_bounded() {
        let mut s = Sequences::default();
        s.see(o(u32::MAX), 0);
        for r in 0..(3 * ORIGINS as u32) {
            s.see(o(r), 0);
            assert!(s.last.len() <= ORIGINS);
        }
        // The first origin was evicted long ago: it starts again.
        assert_eq!(s.see(o(u32::MAX), 100), Seen::Next);
    }
}
