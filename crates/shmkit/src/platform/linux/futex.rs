//! Waiting on a 32-bit word in shared memory: Linux futexes (`futex(2)`), the process-shared
//! kind (no `FUTEX_PRIVATE_FLAG`), so that the kernel keys the wait queue on the physical page
//! and a waiter in one process is woken by a store-and-wake in another.
//!
//! The macOS module of the same name keeps `wait`, `wake`, `Woken` and `SLICE` (on
//! `os_sync_wait_on_address`, or `__ulock_wait`); the PI calls and `tid` have no counterpart
//! there.

use rustix::io::Errno;
use rustix::thread::futex::{self, Flags, Timespec};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub(crate) use rustix::thread::futex::{OWNER_DIED, WAITERS};

/// Bits of a PI futex word that hold the owner's thread id.
pub(crate) const TID_MASK: u32 = 0x3fff_ffff;

use super::super::slice::next_sleep;
pub(crate) use super::super::slice::{Woken, SLICE};

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as _,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// `FUTEX_WAIT`: sleeps while `*word == expected`, until woken or `deadline` (at most
/// [`SLICE`] at a time).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Woken {
    let Some(sleep) = next_sleep(deadline) else {
        return Woken::TimedOut;
    };
    match futex::wait(word, Flags::empty(), expected, Some(&timespec(sleep))) {
        Err(Errno::TIMEDOUT) if deadline.is_some_and(|d| Instant::now() >= d) => Woken::TimedOut,
        // EAGAIN: the word changed before we slept; EINTR: a signal; a slice ended; EFAULT:
        // the page is gone (the caller's next access notices). All mean look again.
        _ => Woken::Recheck,
    }
}

/// `FUTEX_WAKE`: wakes up to `n` waiters; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    futex::wake(word, Flags::empty(), n).unwrap_or(0)
}

/// What `FUTEX_LOCK_PI` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PiLock {
    /// The kernel made us the owner (the word holds our tid, maybe with `WAITERS`).
    Acquired,
    /// The word names a thread that no longer exists and was not released: the owner died.
    /// The kernel left the word alone; the caller may take it over.
    OwnerGone,
    /// The deadline passed.
    TimedOut,
    /// A slice of a long wait ended, or the owner is exiting: look at the word again.
    Recheck,
    /// Any other refusal (`EDEADLK`: we own it already; `EINVAL`: the word is inconsistent;
    /// `EFAULT`: the page is gone).
    Failed(Errno),
}

/// Whether `FUTEX_LOCK_PI2` is missing (kernels before 5.14).
static NO_LOCK_PI2: AtomicBool = AtomicBool::new(false);

/// `FUTEX_LOCK_PI2` (`FUTEX_LOCK_PI` before Linux 5.14): blocks until the kernel hands us the
/// lock word, with priority inheritance, until `deadline` and at most [`SLICE`]. `LOCK_PI2`
/// takes its timeout on `CLOCK_MONOTONIC`, so a step of the wall clock does not stretch or cut
/// the wait; `LOCK_PI` only knows `CLOCK_REALTIME`, and the slices bound the damage there.
pub(crate) fn lock_pi(word: &AtomicU32, deadline: Option<Instant>) -> PiLock {
    let Some(sleep) = next_sleep(deadline) else {
        return trylock_pi(word);
    };
    let r = if !NO_LOCK_PI2.load(Ordering::Relaxed) {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let at = Duration::new(now.tv_sec as u64, now.tv_nsec as u32) + sleep;
        match futex::lock_pi2(word, Flags::empty(), Some(&timespec(at))) {
            Err(Errno::NOSYS) => {
                NO_LOCK_PI2.store(true, Ordering::Relaxed);
                return PiLock::Recheck;
            }
            r => r,
        }
    } else {
        match crate::platform::realtime_after(sleep) {
            Some(at) => futex::lock_pi(
                word,
                Flags::empty(),
                Some(&Timespec {
                    tv_sec: at.tv_sec,
                    tv_nsec: at.tv_nsec,
                }),
            ),
            None => futex::lock_pi(word, Flags::empty(), None),
        }
    };
    match r {
        Ok(()) => PiLock::Acquired,
        Err(Errno::SRCH) => PiLock::OwnerGone,
        Err(Errno::TIMEDOUT) if deadline.is_some_and(|d| Instant::now() >= d) => PiLock::TimedOut,
        // TIMEDOUT before the deadline: a slice ended. EAGAIN: the owner is exiting right now;
        // EINTR cannot happen (the kernel restarts) but costs nothing to handle.
        Err(Errno::TIMEDOUT | Errno::AGAIN | Errno::INTR) => PiLock::Recheck,
        Err(e) => PiLock::Failed(e),
    }
}

/// `FUTEX_TRYLOCK_PI`: takes the lock word if it is free or its owner is dead, never sleeps;
/// `TimedOut` if it is held.
fn trylock_pi(word: &AtomicU32) -> PiLock {
    match futex::trylock_pi(word, Flags::empty()) {
        Ok(_) => PiLock::Acquired,
        Err(Errno::SRCH) => PiLock::OwnerGone,
        Err(Errno::AGAIN | Errno::BUSY | Errno::INTR) => PiLock::TimedOut,
        Err(e) => PiLock::Failed(e),
    }
}

/// `FUTEX_UNLOCK_PI`: releases a PI lock word that has waiters, handing it to the top one.
pub(crate) fn unlock_pi(word: &AtomicU32) -> Result<(), Errno> {
    futex::unlock_pi(word, Flags::empty())
}

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

/// This thread's id, as a PI futex word holds it. Cached per thread; the cache is cleared in a
/// fork child (which is a new thread with a new id) by [`forget_tid`].
#[inline]
pub(crate) fn tid() -> u32 {
    let v = TID.with(|t| t.get());
    if v != 0 {
        return v;
    }
    tid_slow()
}

#[cold]
fn tid_slow() -> u32 {
    // Before anything is cached: a fork from now on runs the child handler that forgets it.
    super::ensure_fork_handlers();
    let v = super::thread_id();
    TID.with(|t| t.set(v));
    v
}

/// Fork child handler: the only thread of the child is the one that forked, and its cached id
/// is the parent's.
pub(crate) fn forget_tid() {
    let _ = TID.try_with(|t| t.set(0));
}
