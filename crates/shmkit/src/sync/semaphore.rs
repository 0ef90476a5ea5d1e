//! A counting semaphore in shared memory.

use super::block::{magic, Block};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::futex::{self, Woken};
use crate::Mapping;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

const MAGIC: u32 = magic(b"shkS");
/// Polls before sleeping in `wait` (each a `spin_loop` hint: tens of nanoseconds).
const SPIN: u32 = 100;
/// The largest value, as POSIX's `SEM_VALUE_MAX` on Linux.
const MAX: u32 = i32::MAX as u32;

/// Who gets a unit that is posted while processes sleep in `wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WakePolicy {
    /// Whoever takes it first: a woken sleeper, or a process that arrives in `wait` at that
    /// moment (the cheapest; what `sem_t` does).
    #[default]
    Any,
    /// The unit is handed to a sleeper, and the kernel wakes sleepers of equal priority in the
    /// order they went to sleep: Mach's `SYNC_POLICY_FIFO`. A process arriving in `wait`
    /// finds no free unit while others sleep; only [`Semaphore::try_wait`], which never
    /// queues, may take a handed-off unit first.
    Fifo,
}

/// A counting semaphore that processes sharing a segment use together.
///
/// Layout (32 bytes, `#[repr(C)]`, little-endian `u32`s): magic `"shkS"`, version | policy
/// << 16 (policy 0 = any, 1 = FIFO), `value` (free units), `waiters` (processes inside
/// `wait`), `grants` (units handed to sleepers, FIFO only), 12 reserved bytes (zero).
///
/// `post` and an uncontended `wait` are one atomic operation each; the kernel is entered
/// only to sleep and to wake a sleeper. Every operation checks the mapping before and after it
/// touches the block ([`Mapping::check`]): in a fork child that did not inherit the mapping,
/// or once a peer truncated the object, it fails instead of working on memory nobody shares.
/// A sleeping `wait` looks every half second.
///
/// ```
/// use shmkit::{AnonShared, sync::{Semaphore, WakePolicy}};
/// let seg = AnonShared::new(4096)?;
/// let sem = Semaphore::init(&seg, 0, 1, WakePolicy::Any)?;
/// sem.wait()?;
/// assert!(!sem.try_wait()?);
/// sem.post()?;
/// // A peer that maps the same segment opens it where it was put:
/// let same = Semaphore::open(&seg, 0)?;
/// assert_eq!(same.value()?, 1);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Semaphore<'a> {
    value: &'a AtomicU32,
    waiters: &'a AtomicU32,
    grants: &'a AtomicU32,
    policy: WakePolicy,
    spin: u32,
    map: &'a Mapping,
}

impl<'a> Semaphore<'a> {
    /// Bytes a semaphore occupies.
    pub const SIZE: usize = 32;

    /// Builds a semaphore with `value` free units at `offset` (a multiple of 8) of `map`,
    /// overwriting what was there. Do this once, before any other process opens it (see
    /// [`init_once`](super::init_once) to have exactly one process of many do it).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a `value` above 2³¹ − 1;
    /// [`ErrorKind::Misaligned`] unless `offset` is a multiple of 8, [`ErrorKind::OutOfBounds`]
    /// if the block does not fit, [`ErrorKind::ReadOnly`] on a read-only mapping, and the errors
    /// of [`Mapping::check`].
    pub fn init(map: &'a Mapping, offset: usize, value: u32, policy: WakePolicy) -> Result<Self> {
        if value > MAX {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "semaphore init",
                map.object(),
                format!("initial value {value} exceeds the maximum {MAX}"),
            ));
        }
        let fifo = (policy == WakePolicy::Fifo) as u32;
        let b = Block::<8>::build(map, offset, "semaphore", MAGIC, fifo, &[value])?;
        Ok(Self::from_block(map, &b, policy))
    }

    /// The semaphore another process built at `offset`; fails with
    /// [`ErrorKind::BadLayout`] if there is none.
    ///
    /// # Errors
    /// As [`Semaphore::init`]; [`ErrorKind::BadLayout`] if no semaphore block of this layout
    /// version is at `offset`.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let (b, policy) = Block::<8>::open(map, offset, "semaphore", MAGIC)?;
        let policy = match policy {
            0 => WakePolicy::Any,
            _ => WakePolicy::Fifo,
        };
        Ok(Self::from_block(map, &b, policy))
    }

    fn from_block(map: &'a Mapping, b: &Block<'a, 8>, policy: WakePolicy) -> Self {
        Semaphore {
            value: b.words[2],
            waiters: b.words[3],
            grants: b.words[4],
            policy,
            spin: SPIN,
            map,
        }
    }

    /// How many times `wait` polls for a unit before it sleeps (default 100, each a
    /// `spin_loop` hint of tens of nanoseconds). 0 sleeps at once: for waits that are long
    /// anyway, or machines with fewer cores than busy processes.
    pub fn with_spin(mut self, polls: u32) -> Self {
        self.spin = polls;
        self
    }

    /// The wake policy it was built with.
    pub fn policy(&self) -> WakePolicy {
        self.policy
    }

    /// Free units now (FIFO: including units handed to sleepers that have not taken them).
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn value(&self) -> Result<u32> {
        self.map.touch("semaphore value", || {
            self.value
                .load(SeqCst)
                .saturating_add(self.grants.load(SeqCst))
        })
    }

    /// Processes in `wait` now (a process killed while waiting stays counted; that costs
    /// later posts a wake-up call each, nothing more).
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn waiters(&self) -> Result<u32> {
        self.map
            .touch("semaphore waiters", || self.waiters.load(SeqCst))
    }

    /// Releases a unit, waking one sleeper if there is one. Fails (`EOVERFLOW`, as
    /// `sem_post`) at the maximum value, 2³¹ − 1.
    ///
    /// # Errors
    /// `EOVERFLOW` ([`ErrorKind::Os`]) at the maximum value; the errors of [`Mapping::check`].
    pub fn post(&self) -> Result<()> {
        self.map.check_state_for("sem post")?;
        self.post_unchecked()?;
        // A truncation met by the post above made it land on a private page: say so.
        self.map.check_state_for("sem post")
    }

    fn post_unchecked(&self) -> Result<()> {
        // The orderings are SeqCst because `post` and `wait` form a Dekker pair: post stores
        // `value` then loads `waiters`, wait stores `waiters` then loads `value`. In a single
        // total order at least one of them sees the other's store, so either the waiter finds
        // the unit or the poster wakes the waiter: no lost wake-up.
        if self.policy == WakePolicy::Fifo && self.waiters.load(SeqCst) > 0 {
            return self.grant();
        }
        self.bump(self.value)?;
        if self.waiters.load(SeqCst) > 0 {
            match self.policy {
                WakePolicy::Any => {
                    futex::wake(self.value, 1);
                }
                // A sleeper arrived between our two loads of `waiters`. It may have seen the
                // unit in `value` and taken it, or gone to sleep on `grants`: move the unit
                // there if it is still free, so the sleeper is woken.
                WakePolicy::Fifo => {
                    if take(self.value) {
                        return self.grant();
                    }
                }
            }
        }
        Ok(())
    }

    fn grant(&self) -> Result<()> {
        self.bump(self.grants)?;
        futex::wake(self.grants, 1);
        Ok(())
    }

    /// Adds a unit to `word` unless the semaphore would pass its maximum.
    fn bump(&self, word: &AtomicU32) -> Result<()> {
        // `then`, not `then_some`: `v + 1` must not be evaluated for v = u32::MAX, which a
        // peer can store (it would panic in a debug build).
        word.fetch_update(SeqCst, SeqCst, |v| (v < MAX).then(|| v + 1))
            .map(|_| ())
            .map_err(|_| {
                Error::os("sem post", self.map.object(), rustix::io::Errno::OVERFLOW)
                    .with_hint(format!("the semaphore is at its maximum value {MAX}"))
            })
    }

    /// Takes a unit if one is free, without waiting.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn try_wait(&self) -> Result<bool> {
        self.map.touch("sem try_wait", || self.take_any())
    }

    fn take_any(&self) -> bool {
        take(self.value) || (self.policy == WakePolicy::Fifo && take(self.grants))
    }

    /// Takes a unit, sleeping until one is posted.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`], also noticed while asleep (within half a second).
    pub fn wait(&self) -> Result<()> {
        self.wait_until(None).map(|_| ())
    }

    /// Takes a unit, sleeping at most `timeout`; `Ok(false)` if none came in time.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`], also noticed while asleep (within half a second).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_until(super::deadline(timeout))
    }

    /// Takes a unit, sleeping until `deadline` at the latest; `Ok(false)` if none came.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`], also noticed while asleep (within half a second).
    pub fn wait_until(&self, deadline: Option<Instant>) -> Result<bool> {
        self.map.check_state_for("sem wait")?;
        // Fast path: no sleepers to be fair to, and a free unit.
        if (self.policy == WakePolicy::Any || self.waiters.load(SeqCst) == 0) && take(self.value) {
            self.map.check_state_for("sem wait")?;
            return Ok(true);
        }
        // Counted as a waiter from here, so a post that comes while we spin below also wakes
        // (finding nobody asleep, which is cheap): measured, that keeps the round trip of a
        // cross-process ping-pong at the raw futex's (see benches/sync.rs).
        self.waiters.fetch_add(1, SeqCst);
        let word = match self.policy {
            WakePolicy::Any => self.value,
            WakePolicy::Fifo => self.grants,
        };
        let mut spins = 0;
        let got = loop {
            if self.policy == WakePolicy::Fifo && take(self.grants) {
                break true;
            }
            if take(self.value) {
                break true;
            }
            // A post often comes within microseconds (a peer answering): watch for it a
            // little before paying for a sleep and a wake-up.
            if spins < self.spin {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            if futex::wait(word, 0, deadline) == Woken::TimedOut {
                // A unit may have come with the deadline; take it rather than leave it.
                break self.take_any();
            }
            if self.map.check_state_for("sem wait").is_err() {
                break false;
            }
        };
        self.waiters.fetch_sub(1, SeqCst);
        self.map.check_state_for("sem wait")?;
        Ok(got)
    }
}

/// Decrements `word` if it is positive.
#[inline]
fn take(word: &AtomicU32) -> bool {
    word.fetch_update(SeqCst, SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

impl std::fmt::Debug for Semaphore<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value().ok())
            .field("waiters", &self.waiters().ok())
            .field("policy", &self.policy)
            .finish()
    }
}
