//! Who holds each end of a channel: a claim word per end, so that a second producer of an
//! SPSC channel is refused, and a waiting side can tell a peer that died from one that is
//! merely slow (its pid and start time, so that a reused pid does not pass for the peer).

use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use crate::Mapping;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const HELD: u32 = 1;
const CLOSED: u32 = 2;

/// One end's claim words in the mapping.
pub(super) struct Claim<'a> {
    pid: &'a AtomicU32,
    state: &'a AtomicU32,
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
fn valid_pid(word: u32) -> Option<i32> {
    (1..=1 << 22).contains(&word).then_some(word as i32)
}

impl<'a> Claim<'a> {
    /// The claim words at `offset` (an `EndpointLayout`).
    pub(super) fn at(map: &'a Mapping, offset: usize) -> Result<Self> {
        Ok(Claim {
            pid: map.atomic_u32(offset)?,
            state: map.atomic_u32(offset + 4)?,
            start: map.atomic_u64(offset + 8)?,
        })
    }

    /// Whether process `pid` that claimed with start time `start` is alive: a start time of
    /// 0 (being claimed) is taken on trust while the pid exists.
    fn alive(pid: i32, start: u64) -> bool {
        match platform::process_start(pid) {
            Some(s) => start == 0 || s == start,
            None => false,
        }
    }

    /// What the other side sees of this end now.
    pub(super) fn holder(&self) -> Holder {
        let state = self.state.load(Ordering::Acquire);
        let pid = self.pid.load(Ordering::Acquire);
        match (state, valid_pid(pid)) {
            (CLOSED, _) => Holder::Closed,
            (HELD, Some(pid)) if Self::alive(pid, self.start.load(Ordering::Acquire)) => {
                Holder::Alive(pid)
            }
            (HELD, Some(pid)) => Holder::Dead(pid),
            // Held by a pid that names no process: a peer wrote garbage, or it is being
            // claimed (the pid comes first); either way nobody is there to wait for.
            (HELD, None) => Holder::Dead(0),
            _ => Holder::Never,
        }
    }

    /// Takes this end for this process: free, let go of, or its holder dead.
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`] when a live process holds it.
    pub(super) fn claim(&self, map: &Mapping, what: &'static str) -> Result<()> {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let my_start = platform::process_start(me).unwrap_or(0);
        loop {
            let pid = self.pid.load(Ordering::Acquire);
            if let Some(p) = valid_pid(pid) {
                let held = self.state.load(Ordering::Acquire) == HELD;
                if held && Self::alive(p, self.start.load(Ordering::Acquire)) {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        what,
                        map.object(),
                        format!("pid {p} holds this end of the channel"),
                    )
                    .with_hint("a channel has one producer and one consumer: wait for it to let go, or make another channel"));
                }
            }
            // The pid word is the lock: whoever swaps it from what it saw owns the end.
            if self
                .pid
                .compare_exchange(pid, me as u32, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.start.store(my_start, Ordering::Relaxed);
                // Release: the other side that reads HELD sees the pid and start time.
                self.state.store(HELD, Ordering::Release);
                return Ok(());
            }
        }
    }

    /// Lets go of this end (the other side then sees it closed).
    pub(super) fn release(&self) {
        self.state.store(CLOSED, Ordering::Release);
    }
}
