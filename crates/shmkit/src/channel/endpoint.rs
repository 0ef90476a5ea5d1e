//! Who holds each end of a channel: a claim word per end, so that a second producer of an
//! SPSC channel is refused, and a waiting side can tell a peer that died from one that is
//! merely slow (its pid and start time, so that a reused pid does not pass for the peer).

use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use crate::Mapping;
use std::sync::atomic::{AtomicU64, Ordering};

const HELD: u32 = 1;
const CLOSED: u32 = 2;

/// One end's claim in the mapping: `pid: u32` and `state: u32` read and written together as
/// one little-endian word (so that no moment shows a pid without its state), then the start
/// time.
pub(super) struct Claim<'a> {
    word: &'a AtomicU64,
    start: &'a AtomicU64,
}

/// Who holds one end of a channel, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// Nobody has held it yet.
    Never,
    /// A live process (this pid) holds it.
    Alive(i32),
    /// It was let go of (its holder dropped it).
    Closed,
    /// Its holder (this pid; 0 for a pid word that names no process) died holding it.
    Dead(i32),
}

/// A pid word from shared memory as a pid that can name a process (1 to 2²², the kernel's
/// ceiling), so that garbage never reaches a system call as 0 or -1.
pub(super) fn valid_pid(word: u32) -> Option<i32> {
    (1..=1 << 22).contains(&word).then_some(word as i32)
}

fn split(w: u64) -> (u32, u32) {
    (w as u32, (w >> 32) as u32)
}

fn join(pid: u32, state: u32) -> u64 {
    u64::from(pid) | (u64::from(state) << 32)
}

impl<'a> Claim<'a> {
    /// The claim at `offset` (an `EndpointLayout`, at a multiple of 8).
    pub(super) fn at(map: &'a Mapping, offset: usize) -> Result<Self> {
        Ok(Claim {
            word: map.atomic_u64(offset)?,
            start: map.atomic_u64(offset + 8)?,
        })
    }

    /// Whether process `pid` that claimed with start time `start` is alive: a start time of
    /// 0 (being claimed: the start time follows the claim) is taken on trust while the pid
    /// exists.
    pub(super) fn alive(pid: i32, start: u64) -> bool {
        match platform::process_start(pid) {
            Some(s) => start == 0 || s == start,
            None => false,
        }
    }

    /// What the other side sees of this end now.
    pub(super) fn holder(&self) -> Holder {
        let (pid, state) = split(self.word.load(Ordering::Acquire));
        match (state, valid_pid(pid)) {
            (CLOSED, _) => Holder::Closed,
            (HELD, Some(pid)) if Self::alive(pid, self.start.load(Ordering::Acquire)) => {
                Holder::Alive(pid)
            }
            (HELD, Some(pid)) => Holder::Dead(pid),
            // Held by a pid that names no process: a peer wrote garbage; nobody is there.
            (HELD, None) => Holder::Dead(0),
            _ => Holder::Never,
        }
    }

    /// Whether its holder let go of it (one load: no look at `/proc`).
    pub(super) fn is_closed(&self) -> bool {
        split(self.word.load(Ordering::Acquire)).1 == CLOSED
    }

    /// Takes this end for this process: never held, let go of, or its holder dead. Returns
    /// the fork count at the claim (see `platform::fork_count`).
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`] when a live process holds it.
    pub(super) fn claim(&self, map: &Mapping, what: &'static str) -> Result<u32> {
        platform::ensure_fork_handlers();
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let my_start = platform::process_start(me).unwrap_or(0);
        loop {
            let seen = self.word.load(Ordering::Acquire);
            let (pid, state) = split(seen);
            if state == HELD {
                if let Some(p) = valid_pid(pid) {
                    if Self::alive(p, self.start.load(Ordering::Acquire)) {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            what,
                            map.object(),
                            format!("pid {p} holds this end of the channel"),
                        )
                        .with_hint(
                            "a channel has one producer and one consumer: wait for it to let go, \
                             or make another channel",
                        ));
                    }
                }
            }
            // One CAS of pid and state together: whoever swaps the word it saw owns the end,
            // and no moment shows a new pid as not held.
            if self
                .word
                .compare_exchange(
                    seen,
                    join(me as u32, HELD),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                // Relaxed: 0 until then means "trust the pid", which is right meanwhile.
                self.start.store(my_start, Ordering::Relaxed);
                return Ok(platform::fork_count());
            }
        }
    }

    /// Lets go of this end (the other side then sees it closed), if this process holds it.
    pub(super) fn release(&self) {
        let me = rustix::process::getpid().as_raw_nonzero().get() as u32;
        let held = join(me, HELD);
        // SeqCst: pairs with a parked peer's flag, which the caller then reads.
        let _ =
            self.word
                .compare_exchange(held, join(me, CLOSED), Ordering::SeqCst, Ordering::Relaxed);
    }
}

/// The error of an end used in a fork child: it belongs to the parent.
pub(super) fn forked(map: &Mapping, op: &'static str) -> Error {
    Error::new(
        ErrorKind::NotInherited,
        op,
        map.object(),
        "this process is a fork child: the channel's end belongs to the parent that opened it",
    )
    .with_hint("open the end in the child (its parent must let go of it first)")
}
