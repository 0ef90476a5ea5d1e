//! How a side waits: spin first (the peer is usually a few hundred nanoseconds away), then
//! sleep on a futex. The spin budget adapts: it doubles when spinning found what it waited
//! for and halves when the wait had to sleep, so a side that waits long in vain stops burning
//! its CPU, and one whose peer answers at once keeps answering at once.

use super::wake::NAP;
use std::time::{Duration, Instant};

/// Polls a waiting side makes before it sleeps: at least, at first, at most.
const MIN: u32 = 16;
const FIRST: u32 = 1024;
const MAX: u32 = 1 << 15;
/// Polls before the spinning starts to yield the CPU between polls (the peer may be waiting
/// for it, on a machine with few CPUs).
const PURE: u32 = 64;

/// How a side waits for room or for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Poll until the timeout, never sleeping: the lowest latency, a CPU spent. No system
    /// call but a look at the peer's liveness (`/proc/PID/stat`) every 100 ms of a wait that
    /// lasts that long (as in every mode).
    Spin,
    /// Poll for a while (an adaptive budget), then sleep on a futex until woken.
    #[default]
    Adaptive,
    /// Sleep on a futex at once.
    Block,
}

/// Polls between two looks at the clock (and at the peer) while spinning.
pub(super) const LOOK_EVERY: u32 = 1024;
/// Rounds of a `try_` receive's loop (records skipped, or changed under it) before it says
/// "empty".
const ROUNDS: u32 = 4096;

/// The adaptive spin budget of one side.
#[derive(Debug)]
pub(super) struct Backoff {
    budget: u32,
}

impl Backoff {
    pub(super) fn new() -> Self {
        Backoff { budget: FIRST }
    }

    /// Polls before sleeping, under `wait`.
    pub(super) fn budget(&self, wait: Wait) -> u32 {
        match wait {
            Wait::Spin => u32::MAX,
            Wait::Adaptive => self.budget,
            Wait::Block => 0,
        }
    }

    /// The pause after poll number `i`: a spin-loop hint, or for `Adaptive` after a while a
    /// `sched_yield` (`Spin` never makes a system call).
    #[inline]
    pub(super) fn pause(i: u32, wait: Wait) {
        if i < PURE || wait == Wait::Spin {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }

    /// Spinning found what it waited for.
    pub(super) fn found(&mut self) {
        self.budget = (self.budget.saturating_mul(2)).min(MAX);
    }

    /// The wait had to sleep.
    pub(super) fn slept(&mut self) {
        self.budget = (self.budget / 2).max(MIN);
    }
}

/// When a waiting side last looked at its peer's liveness (a read of `/proc`).
pub(super) struct Looked(pub(super) Option<Instant>);

impl Looked {
    /// Whether to look now: once 100 ms of the wait have passed, then every 100 ms (so that
    /// a wait answered soon makes no system call for it, whatever its mode, and a dead peer
    /// is noticed within about 200 ms).
    pub(super) fn look(&mut self, now: Instant) -> bool {
        let since = *self.0.get_or_insert(now);
        if now.duration_since(since) >= NAP {
            self.0 = Some(now);
            true
        } else {
            false
        }
    }
}

/// When a wait with a timeout ends: fixed when the wait starts, not when the call does, so
/// that a call that finds room or a message at once never reads the clock (two clock reads
/// per round trip were a third of an 8-byte round trip's cost).
/// Not `Copy`: a copy handed to each round of a loop would start the wait again.
#[derive(Debug)]
pub(super) struct Deadline {
    timeout: Option<Duration>,
    at: Option<Option<Instant>>,
}

impl Deadline {
    /// A wait without a timeout.
    pub(super) fn never() -> Self {
        Deadline {
            timeout: None,
            at: None,
        }
    }

    /// A wait of at most `timeout` (one too long to count from now is none).
    pub(super) fn after(timeout: Duration) -> Self {
        Deadline {
            timeout: Some(timeout),
            at: None,
        }
    }

    /// The instant the wait ends, if it does: fixed at the first call.
    pub(super) fn at(&mut self) -> Option<Instant> {
        let timeout = self.timeout;
        *self
            .at
            .get_or_insert_with(|| timeout.and_then(|t| Instant::now().checked_add(t)))
    }

    /// Whether the wait is over at `now`.
    pub(super) fn passed(&mut self, now: Instant) -> bool {
        self.at().is_some_and(|d| now >= d)
    }

    /// Whether a polling wait, at poll `polls`, is over: at once for a zero timeout; then
    /// every 16 polls once the wait yields (a yield on a busy CPU may give away a whole time
    /// slice, so 1,024 of them must not stand between a timeout and its caller), every 256
    /// while it only spins. No clock is read in the first 64 polls of a wait with a timeout.
    pub(super) fn spun_out(&mut self, polls: u32, wait: Wait) -> bool {
        match self.timeout {
            None => false,
            Some(t) if t.is_zero() => true,
            Some(_) => {
                let every = if wait == Wait::Spin { 256 } else { 16 };
                polls >= PURE && polls % every == 0 && self.passed(Instant::now())
            }
        }
    }

    /// Whether round `rounds` of a receive's loop (each one a record that was not there, or
    /// one skipped) must stop: a peer that keeps changing what this side looks at cannot
    /// hold it past its timeout, nor a `try_` call for ever. `Some(true)`: the timeout
    /// passed; `Some(false)`: a `try_` call has looked long enough.
    pub(super) fn stop_round(&mut self, rounds: u32, wait: bool) -> Option<bool> {
        if rounds <= 1 {
            None
        } else if !wait && rounds > ROUNDS {
            Some(false)
        } else if rounds % 8 == 0 && self.passed(Instant::now()) {
            Some(true)
        } else {
            None
        }
    }
}
