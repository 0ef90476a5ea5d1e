//! A condition variable in shared memory, used with [`Mutex`](super::Mutex).

use super::block::{magic, Block};
use super::mutex::{Locked, MutexGuard};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::futex::{self, Woken};
use crate::Mapping;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

const MAGIC: u32 = magic(b"shkC");

/// Waits for a change that another process makes under a [`Mutex`](super::Mutex).
///
/// Layout (16 bytes, `#[repr(C)]`, little-endian `u32`s): magic `"shkC"`, version, `seq`
/// (bumped by every notify), `waiters`.
///
/// As with every condition variable, a wait may return without a notify (and a notify may
/// wake more than one): check the condition in a loop.
///
/// ```
/// use shmkit::{AnonShared, sync::{Condvar, Mutex}};
/// use std::time::Duration;
/// let seg = AnonShared::new(4096)?;
/// let m = Mutex::init(&seg, 0)?;
/// let cv = Condvar::init(&seg, 32)?;
/// let guard = m.lock()?.guard();
/// // Nobody notifies here: the wait times out and gives the lock back.
/// let (locked, timed_out) = cv.wait_timeout(guard, Duration::from_millis(10))?;
/// assert!(timed_out && !locked.owner_died());
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Condvar<'a> {
    seq: &'a AtomicU32,
    waiters: &'a AtomicU32,
    map: &'a Mapping,
}

impl<'a> Condvar<'a> {
    /// Bytes a condition variable occupies.
    pub const SIZE: usize = 16;

    /// Builds one at `offset` (a multiple of 8) of `map`, overwriting what was there.
    ///
    /// # Errors
    /// As [`Mutex::init`](super::Mutex::init).
    pub fn init(map: &'a Mapping, offset: usize) -> Result<Self> {
        let b = Block::<4>::build(map, offset, "condvar", MAGIC, 0, &[])?;
        Ok(Condvar {
            seq: b.words[2],
            waiters: b.words[3],
            map,
        })
    }

    /// The one another process built at `offset`.
    ///
    /// # Errors
    /// As [`Mutex::open`](super::Mutex::open), for a condvar block.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let (b, _) = Block::<4>::open(map, offset, "condvar", MAGIC)?;
        Ok(Condvar {
            seq: b.words[2],
            waiters: b.words[3],
            map,
        })
    }

    /// Unlocks `guard`'s mutex, sleeps until notified, and locks it again. Relocking reports
    /// an owner's death like [`Mutex::lock`](super::Mutex::lock).
    ///
    /// # Errors
    /// As [`wait_until`](Self::wait_until).
    pub fn wait<'m, 'b>(&self, guard: MutexGuard<'m, 'b>) -> Result<Locked<'m, 'b>> {
        self.wait_until(guard, None).map(|(l, _)| l)
    }

    /// As [`wait`](Self::wait), at most `timeout`; the flag says whether it timed out.
    ///
    /// # Errors
    /// As [`wait_until`](Self::wait_until).
    pub fn wait_timeout<'m, 'b>(
        &self,
        guard: MutexGuard<'m, 'b>,
        timeout: Duration,
    ) -> Result<(Locked<'m, 'b>, bool)> {
        self.wait_until(guard, super::deadline(timeout))
    }

    /// As [`wait`](Self::wait), until `deadline` at the latest.
    ///
    /// The whole call, relocking included, ends by the deadline (plus scheduling delays):
    /// if the mutex cannot be taken back in time (a peer holds it, or wrote a live thread's id
    /// into it), the call fails with [`ErrorKind::TimedOut`](crate::ErrorKind::TimedOut) and
    /// the mutex is not held.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`] (also noticed while asleep), those of relocking (as
    /// [`Mutex::lock`](super::Mutex::lock)), and [`ErrorKind::TimedOut`] as said above.
    pub fn wait_until<'m, 'b>(
        &self,
        guard: MutexGuard<'m, 'b>,
        deadline: Option<Instant>,
    ) -> Result<(Locked<'m, 'b>, bool)> {
        self.map.check_state_for("condvar wait")?;
        // `seq` is read while the mutex is held: a notifier changes the condition under the
        // mutex and then bumps `seq`, so either we read the bumped value (and the futex wait
        // returns at once because it differs) or the bump comes after we sleep and wakes us.
        let seen = self.seq.load(SeqCst);
        self.waiters.fetch_add(1, SeqCst);
        let mutex = guard.mutex();
        drop(guard);
        let timed_out = loop {
            if futex::wait(self.seq, seen, deadline) == Woken::TimedOut {
                break self.seq.load(SeqCst) == seen;
            }
            // Woken, or a slice of a long wait ended: a changed `seq` is a notify; an
            // unchanged one is a spurious wake-up, which we may return but need not.
            if self.seq.load(SeqCst) != seen || self.map.check_state_for("condvar wait").is_err() {
                break false;
            }
        };
        self.waiters.fetch_sub(1, SeqCst);
        self.map.check_state_for("condvar wait")?;
        match mutex.lock_until(deadline)? {
            Some(locked) => Ok((locked, timed_out)),
            None => Err(Error::new(
                ErrorKind::TimedOut,
                "condvar wait",
                self.map.object(),
                "the mutex could not be locked again before the deadline; it is not held",
            )),
        }
    }

    /// Wakes one waiter.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn notify_one(&self) -> Result<()> {
        self.notify(1)
    }

    /// Wakes every waiter.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn notify_all(&self) -> Result<()> {
        self.notify(i32::MAX as u32)
    }

    fn notify(&self, n: u32) -> Result<()> {
        self.map.touch("condvar notify", || {
            self.seq.fetch_add(1, SeqCst);
            if self.waiters.load(SeqCst) > 0 {
                futex::wake(self.seq, n);
            }
        })
    }
}
