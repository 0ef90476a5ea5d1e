//! What the receiving side of a route makes of each message's number: the next one expected,
//! a gap (messages that never came), one that came before (a duplicate or one out of order,
//! dropped), or one counted as a gap that came after all (late, taken). Kept per origin
//! (bridge and route), for a bounded number of origins: a hostile peer that invents origins
//! evicts the one heard from longest ago, it does not grow the table.
//!
//! Two numbers per origin: the last message taken, which orders messages (anything at or
//! before it is dropped), and the last number accounted for (taken, or counted as a gap
//! because the origin said it had sent it). Only messages move the first, so a "sent up to"
//! frame, forged or not, never makes a real message look old: at worst it inflates the gap
//! count until the messages it claimed lost arrive late.

use super::wire::Origin;
use std::collections::HashMap;

/// The most origins remembered at once.
pub const ORIGINS: usize = 1024;

/// The largest jump believed at once: a number further past the last one accounted for (or
/// further behind the last taken) is not believed from one frame (a forged frame, or a
/// broken peer) and is dropped as garbage; the next frame from the same origin that goes on
/// from it (the next number, or the same "sent up to" again) confirms it, and the count
/// jumps: a real route that lost more than this many messages, or started over, resumes.
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
    /// A message counted as a gap before (its origin said it had sent it) that came after
    /// all: taken, and one gap less.
    Late,
    /// At or before one already taken: drop it.
    Again,
    /// Too far from the last one to believe from one frame: dropped (and not taken).
    Unbelievable,
}

struct State {
    /// The last message taken.
    last: u64,
    /// The last number accounted for: taken, or counted as a gap.
    counted: u64,
    /// A jump not believed yet: the number of the frame that made it, and whether it was a
    /// message.
    suspect: Option<(u64, bool)>,
    /// When it was last heard from (a count of frames).
    heard: u64,
}

#[derive(Default)]
pub struct Sequences {
    last: HashMap<Origin, State>,
    clock: u64,
}

impl Sequences {
    /// Takes message `seq` from `origin`.
    pub fn see(&mut self, origin: Origin, seq: u64) -> Seen {
        self.clock += 1;
        let clock = self.clock;
        let Some(st) = self.last.get_mut(&origin) else {
            self.insert(origin, seq);
            return Seen::Next;
        };
        st.heard = clock;
        let ahead = seq > st.counted && seq - st.counted > WINDOW;
        let behind = seq < st.last && st.last - seq > WINDOW;
        if ahead || behind {
            // Believed when it goes on from the last unbelieved message.
            if st.suspect != Some((seq.wrapping_sub(1), true)) || seq == 0 {
                st.suspect = Some((seq, true));
                return Seen::Unbelievable;
            }
            st.suspect = None;
            if behind {
                // The origin started over (or its last number was a forgery): go on from here.
                st.last = seq;
                st.counted = seq;
                return Seen::Next;
            }
        }
        st.suspect = None;
        if seq <= st.last {
            return Seen::Again;
        }
        st.last = seq;
        if seq <= st.counted {
            return Seen::Late;
        }
        let missed = seq - st.counted - 1;
        st.counted = seq;
        if missed == 0 {
            Seen::Next
        } else {
            Seen::After { missed }
        }
    }

    /// Takes `origin`'s word that it has sent every message up to `seq`: the ones after the
    /// last accounted for never came ([`Seen::After`]); [`Seen::Next`] when none is missing.
    /// The word of an origin never heard from is not taken (it says nothing of messages this
    /// side expects, and must not evict one that it does).
    pub fn sent_up_to(&mut self, origin: Origin, seq: u64) -> Seen {
        self.clock += 1;
        let clock = self.clock;
        let Some(st) = self.last.get_mut(&origin) else {
            return Seen::Next;
        };
        st.heard = clock;
        if seq <= st.counted {
            return Seen::Next;
        }
        if seq - st.counted > WINDOW && st.suspect != Some((seq, false)) {
            // Believed when said again (an idle route says it every 100 ms).
            st.suspect = Some((seq, false));
            return Seen::Unbelievable;
        }
        st.suspect = None;
        let missed = seq - st.counted;
        st.counted = seq;
        Seen::After { missed }
    }

    fn insert(&mut self, origin: Origin, seq: u64) {
        if self.last.len() >= ORIGINS {
            if let Some(oldest) = self
                .last
                .iter()
                .min_by_key(|(_, v)| v.heard)
                .map(|(k, _)| *k)
            {
                self.last.remove(&oldest);
            }
        }
        // The first message heard from an origin starts its count: what it sent before this
        // side listened was sent to nobody, not lost.
        self.last.insert(
            origin,
            State {
                last: seq,
                counted: seq,
                suspect: None,
                heard: self.clock,
            },
        );
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
        // Further still, twice in a row: a route that lost that many resumes, the first
        // message after the jump dropped (and counted in the gap).
        let far = 3 + 3 * WINDOW;
        assert_eq!(s.see(o(1), far), Seen::Unbelievable);
        assert_eq!(
            s.see(o(1), far + 1),
            Seen::After {
                missed: 2 * WINDOW + 1
            }
        );
        assert_eq!(s.see(o(1), far + 2), Seen::Next);
        // Far behind, twice in a row: the origin started over.
        assert_eq!(s.see(o(1), 10), Seen::Unbelievable);
        assert_eq!(s.see(o(1), 11), Seen::Next);
        assert_eq!(s.see(o(1), 12), Seen::Next);
        // u64::MAX does not overflow.
        assert_eq!(s.see(o(2), u64::MAX), Seen::Next);
        assert_eq!(s.see(o(2), u64::MAX), Seen::Again);
    }

    #[test]
    fn sent_up_to_counts_what_never_came_once() {
        let mut s = Sequences::default();
        // From an origin never heard from: not taken.
        assert_eq!(s.sent_up_to(o(0), 4), Seen::Next);
        assert!(s.last.is_empty());
        assert_eq!(s.see(o(0), 5), Seen::Next);
        assert_eq!(s.sent_up_to(o(0), 5), Seen::Next);
        // 6, 7 and 8 were sent and never came.
        assert_eq!(s.sent_up_to(o(0), 8), Seen::After { missed: 3 });
        assert_eq!(s.sent_up_to(o(0), 8), Seen::Next);
        // One of them came after all: taken, one gap less; one before it no more.
        assert_eq!(s.see(o(0), 7), Seen::Late);
        assert_eq!(s.see(o(0), 6), Seen::Again);
        assert_eq!(s.see(o(0), 9), Seen::Next);
        assert_eq!(s.sent_up_to(o(0), 3), Seen::Next);
        // Past the window: believed when said again.
        assert_eq!(s.sent_up_to(o(0), 10 + WINDOW), Seen::Unbelievable);
        assert_eq!(s.see(o(0), 10), Seen::Next);
        assert_eq!(s.sent_up_to(o(0), 11 + WINDOW), Seen::Unbelievable);
        assert_eq!(
            s.sent_up_to(o(0), 11 + WINDOW),
            Seen::After { missed: WINDOW + 1 }
        );
        // u64::MAX does not overflow.
        assert_eq!(s.see(o(1), 0), Seen::Next);
        assert_eq!(s.sent_up_to(o(1), u64::MAX), Seen::Unbelievable);
        assert_eq!(
            s.sent_up_to(o(1), u64::MAX),
            Seen::After { missed: u64::MAX }
        );
        assert_eq!(s.see(o(1), u64::MAX), Seen::Late);
    }

    /// A forged "sent up to" far ahead of a real route, said as often as the forger likes,
    /// never stops the route's real messages: they come late, each one gap less.
    #[test]
    fn a_forged_sent_up_to_never_silences_the_real_messages() {
        let mut s = Sequences::default();
        assert_eq!(s.see(o(0), 0), Seen::Next);
        for _ in 0..3 {
            s.sent_up_to(o(0), WINDOW);
        }
        for m in 1..=20 {
            assert_eq!(s.see(o(0), m), Seen::Late, "message {m}");
        }
        // Invented origins that only say "sent up to" take no place (they cannot evict the
        // real one), then u64::MAX for the real one: its messages still come.
        for r in 1..=(2 * ORIGINS as u32) {
            s.sent_up_to(o(r), 5);
        }
        assert_eq!(s.last.len(), 1);
        s.sent_up_to(o(0), u64::MAX);
        s.sent_up_to(o(0), u64::MAX);
        assert_eq!(s.see(o(0), 21), Seen::Late);
        // A forged message far ahead is dropped, and the real route goes on.
        assert_eq!(s.see(o(2), 0), Seen::Next);
        assert_eq!(s.see(o(2), u64::MAX - 5), Seen::Unbelievable);
        assert_eq!(s.see(o(2), 1), Seen::Next);
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
