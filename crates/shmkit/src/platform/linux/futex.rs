//! Waiting on a 32-bit word in shared memory: Linux futexes (`futex(2)`), the process-shared
//! kind (no `FUTEX_PRIVATE_FLAG`), so that the kernel keys the wait queue on the physical page
//! and a waiter in one process is woken by a store-and-wake in another.
//!
//! The macOS port puts `os_sync_wait_on_address` (`OS_SYNC_WAIT_ON_ADDRESS_SHARED`) here, and
//! emulates the PI calls with a `SYNC_POLICY_FIFO` lock word (no priority inheritance there).

use rustix::io::Errno;
use rustix::thread::futex::{self, Flags};
use std::cell::Cell;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

pub(crate) use rustix::thread::futex::{OWNER_DIED, WAITERS};

/// Bits of a PI futex word that hold the owner's thread id.
pub(crate) const TID_MASK: u32 = 0x3fff_ffff;

/// Why a wait returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Woken {
    /// Woken, or the word was not `expected` when the kernel looked, or a signal: recheck.
    Recheck,
    /// The deadline passed.
    TimedOut,
}

fn relative(deadline: Option<Instant>) -> Option<Option<rustix::thread::futex::Timespec>> {
    match deadline {
        None => Some(None),
        Some(d) => {
            let left = d.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            Some(Some(rustix::thread::futex::Timespec {
                tv_sec: left.as_secs() as _,
                tv_nsec: left.subsec_nanos() as _,
            }))
        }
    }
}

/// `FUTEX_WAIT`: sleeps while `*word == expected`, until woken or `deadline`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Woken {
    let Some(timeout) = relative(deadline) else {
        return Woken::TimedOut;
    };
    match futex::wait(word, Flags::empty(), expected, timeout.as_ref()) {
        Err(Errno::TIMEDOUT) => Woken::TimedOut,
        // EAGAIN: the word changed before we slept; EINTR: a signal. Both mean look again.
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
    /// Any other refusal (`EDEADLK`: we own it already; `EINVAL`: the word is inconsistent).
    Failed(Errno),
}

/// `FUTEX_LOCK_PI`: blocks until the kernel hands us the lock word, with priority inheritance.
/// Its timeout is absolute on `CLOCK_REALTIME`.
pub(crate) fn lock_pi(word: &AtomicU32, deadline: Option<Instant>) -> PiLock {
    loop {
        let abs = match deadline {
            None => None,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return trylock_pi(word);
                }
                let at = super::realtime_after(left);
                Some(rustix::thread::futex::Timespec {
                    tv_sec: at.tv_sec,
                    tv_nsec: at.tv_nsec,
                })
            }
        };
        return match futex::lock_pi(word, Flags::empty(), abs.as_ref()) {
            Ok(()) => PiLock::Acquired,
            Err(Errno::SRCH) => PiLock::OwnerGone,
            Err(Errno::TIMEDOUT) => PiLock::TimedOut,
            // EAGAIN: the owner is exiting right now; EINTR cannot happen (the kernel restarts)
            // but costs nothing to handle.
            Err(Errno::AGAIN | Errno::INTR) => {
                std::thread::yield_now();
                continue;
            }
            Err(e) => PiLock::Failed(e),
        };
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
    TID.with(|t| {
        static ATFORK: std::sync::Once = std::sync::Once::new();
        ATFORK.call_once(|| {
            // SAFETY: `forget_tid` is an `extern "C" fn()` that lives for the whole program.
            unsafe { libc::pthread_atfork(None, None, Some(forget_tid)) };
        });
        let v = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        t.set(v);
        v
    })
}

/// Fork child handler: the only thread of the child is the one that forked, and its cached id
/// is the parent's.
extern "C" fn forget_tid() {
    let _ = TID.try_with(|t| t.set(0));
}
