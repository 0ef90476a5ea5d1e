//! A condition variable in shared memory, used with [`Mutex`](super::Mutex).

use super::block::{magic, Block};
use super::mutex::{Locked, MutexGuard};
use crate::error::Result;
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
}

impl<'a> Condvar<'a> {
    /// Bytes a condition variable occupies.
    pub const SIZE: usize = 16;

    /// Builds one at `offset` (a multiple of 8) of `map`, overwriting what was there.
    pub fn init(map: &'a Mapping, offset: usize) -> Result<Self> {
        let b = Block::<4>::build(map, offset, "condvar", MAGIC, 0, &[])?;
        Ok(Condvar {
            seq: b.words[2],
            waiters: b.words[3],
        })
    }

    /// The one another process built at `offset`.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let (b, _) = Block::<4>::open(map, offset, "condvar", MAGIC)?;
        Ok(Condvar {
            seq: b.words[2],
            waiters: b.words[3],
        })
    }

    /// Unlocks `guard`'s mutex, sleeps until notified, and locks it again. Relocking reports
    /// an owner's death like [`Mutex::lock`](super::Mutex::lock).
    pub fn wait<'m, 'b>(&self, guard: MutexGuard<'m, 'b>) -> Result<Locked<'m, 'b>> {
        self.wait_until(guard, None).map(|(l, _)| l)
    }

    /// As [`wait`](Self::wait), at most `timeout`; the flag says whether it timed out.
    pub fn wait_timeout<'m, 'b>(
        &self,
        guard: MutexGuard<'m, 'b>,
        timeout: Duration,
    ) -> Result<(Locked<'m, 'b>, bool)> {
        self.wait_until(guard, super::deadline(timeout))
    }

    /// As [`wait`](Self::wait), until `deadline` at the latest.
    pub fn wait_until<'m, 'b>(
        &self,
        guard: MutexGuard<'m, 'b>,
        deadline: Option<Instant>,
    ) -> Result<(Locked<'m, 'b>, bool)> {
        // `seq` is read while the mutex is held: a notifier changes the condition under the
        // mutex and then bumps `seq`, so either we read the bumped value (and the futex wait
        // returns at once because it differs) or the bump comes after we sleep and wakes us.
        let seen = self.seq.load(SeqCst);
        self.waiters.fetch_add(1, SeqCst);
        let mutex = guard.mutex();
        drop(guard);
        let woken = futex::wait(self.seq, seen, deadline);
        self.waiters.fetch_sub(1, SeqCst);
        let timed_out = woken == Woken::TimedOut && self.seq.load(SeqCst) == seen;
        Ok((mutex.lock()?, timed_out))
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.seq.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            futex::wake(self.seq, 1);
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.seq.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            futex::wake(self.seq, i32::MAX as u32);
        }
    }
}
