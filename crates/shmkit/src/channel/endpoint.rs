//! Who holds each end of a channel: a claim word per end, so that a second producer of an
//! SPSC channel is refused, and a waiting side can tell a peer that died from one that is
//! merely slow (its pid and start time, so that a reused pid does not pass for the peer).

use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use crate::Mapping;
use std::sync::atomic::{AtomicU64, Ordering};

const HELD: u32 = 1;
const CLOSED: u32 = 2;
/// Taken, its start time not written yet: the pid is trusted while it names a process.
const CLAIMING: u32 = 3;

/// One end's claim in the mapping: `pid: u32` and `state: u32` read and written together as
/// one little-endian word (so that no moment shows a pid without its state), then the start
/// time.
pub(super) struct Claim<'a> {
    word: &'a AtomicU64,
    start: &'a AtomicU64,
}

/// This process as a claim names it: its pid and start time, read once for a series of
/// claims (a channel's places).
struct Me {
    pid: i32,
    start: u64,
}

impl Me {
    fn now() -> Me {
        platform::ensure_fork_handlers();
        let pid = rustix::process::getpid().as_raw_nonzero().get();
        Me {
            pid,
            start: platform::process_start(pid).unwrap_or(0),
        }
    }
}

/// Takes the first of the places whose claims are at `offsets` that this process can have
/// (never held, let go of, or its holder dead): its index, its claim and the fork count at
/// the claim; `None` when live processes hold them all.
///
/// # Errors
/// The mapping's, for a place it does not hold.
pub(super) fn claim_first(
    map: &Mapping,
    offsets: impl Iterator<Item = usize>,
) -> Result<Option<(usize, Claim<'_>, u32)>> {
    let me = Me::now();
    for (i, at) in offsets.enumerate() {
        let place = Claim::at(map, at)?;
        if let Ok(forks) = place.try_claim(&me) {
            return Ok(Some((i, place, forks)));
        }
    }
    Ok(None)
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
        match platform::process_state(pid) {
            platform::ProcState::Running(s) => start == 0 || s == start,
            platform::ProcState::Gone => false,
            // Out of file descriptors, say: not knowing is not a death.
            platform::ProcState::Unknown => true,
        }
    }

    /// What the other side sees of this end now.
    pub(super) fn holder(&self) -> Holder {
        let (pid, state) = split(self.word.load(Ordering::Acquire));
        match (state, valid_pid(pid)) {
            (CLOSED, _) => Holder::Closed,
            (HELD | CLAIMING, Some(pid)) if Self::alive(pid, self.start_of(state)) => {
                Holder::Alive(pid)
            }
            (HELD | CLAIMING, Some(pid)) => Holder::Dead(pid),
            // Held by a pid that names no process: a peer wrote garbage; nobody is there.
            (HELD | CLAIMING, None) => Holder::Dead(0),
            _ => Holder::Never,
        }
    }

    /// The start time to check a holder in `state` against: none while it is being claimed
    /// (the word still holds the previous holder's).
    fn start_of(&self, state: u32) -> u64 {
        if state == CLAIMING {
            0
        } else {
            self.start.load(Ordering::Acquire)
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
        self.try_claim(&Me::now()).map_err(|p| {
            Error::new(
                ErrorKind::AlreadyExists,
                what,
                map.object(),
                format!("pid {p} holds this end of the channel"),
            )
            .with_hint(
                "a channel has one producer and one consumer: wait for it to let go, or make \
                 another channel",
            )
        })
    }

    /// As [`Claim::claim`] for `me`: the fork count at the claim, or the pid of the live
    /// process that holds the end.
    fn try_claim(&self, me: &Me) -> std::result::Result<u32, i32> {
        let (me, my_start) = (me.pid, me.start);
        loop {
            let seen = self.word.load(Ordering::Acquire);
            let (pid, state) = split(seen);
            if state == HELD || state == CLAIMING {
                if let Some(p) = valid_pid(pid) {
                    if Self::alive(p, self.start_of(state)) {
                        return Err(p);
                    }
                }
            }
            // One CAS of pid and state together: whoever swaps the word it saw owns the end,
            // and no moment shows a new pid as not held. "Claiming" until the start time is
            // written (the start word still holds the previous holder's meanwhile, which must
            // not make this live process look dead), then "held" (Release: with the start).
            if self
                .word
                .compare_exchange(
                    seen,
                    join(me as u32, CLAIMING),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                self.start.store(my_start, Ordering::Relaxed);
                self.word.store(join(me as u32, HELD), Ordering::Release);
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
