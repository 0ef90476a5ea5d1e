//! Synchronization that lives inside a shared segment and survives a crashed peer.
//!
//! Every primitive here is a small `#[repr(C)]` block of 32-bit words placed at an offset of
//! any [`Mapping`](crate::Mapping) (POSIX, System V, memfd, anonymous or file-backed), used by
//! every process that maps it. [`layout`] gives each block as a `#[repr(C)]` struct. A block
//! starts with a magic word and a layout version, which
//! `open` checks, so a C program or a later shmkit can interoperate or refuse cleanly
//! ([`ErrorKind::BadLayout`](crate::ErrorKind::BadLayout)). Offsets must be multiples of 8.
//!
//! | type | block | what |
//! |---|---|---|
//! | [`Semaphore`] | 32 bytes | counting; optional FIFO hand-off ([`WakePolicy::Fifo`]) |
//! | [`Mutex`] | 32 bytes | a lock that reports its owner's death (priority-inheriting on Linux) |
//! | [`Condvar`] | 16 bytes | notify one / all, used with a [`Mutex`] |
//! | [`Event`] | 16 bytes | a manual-reset flag that wakes every waiter |
//! | [`init_once`] | 16 bytes | create-or-open: one process initializes, the others wait |
//!
//! All words are atomics, so whatever a buggy or hostile peer writes there can make a wait
//! return early, late or with an error, but cannot make this process touch memory outside
//! the mapping: no pointer, index or length is ever read from the block.
//!
//! The waits enter the kernel only to sleep and to wake a sleeper, on a process-shared word:
//! on Linux a futex (`futex(2)`); on macOS `os_sync_wait_on_address` with
//! `OS_SYNC_WAIT_ON_ADDRESS_SHARED` (macOS 14.4 and later, found at run time), else the private
//! `__ulock_wait` with `UL_COMPARE_AND_WAIT_SHARED` (macOS 10.15 and later); the environment
//! variable `SHMKIT_FORCE_ULOCK=1` picks the latter. [`wait_backend`] says which one runs.
//!
//! The [`Mutex`] is a PI futex on Linux, whose owner's death the kernel reports to the next
//! locker. macOS has no such hand-off: there the lock word names the owner's pid and a
//! generation that every acquisition advances, an owner record (that word, the kernel's unique
//! process id, the thread) sits beside it, and waiters check every 20 ms that the owner still
//! runs (see [`Mutex`]).

mod block;
mod condvar;
mod event;
mod init;
pub mod layout;
mod mutex;
mod semaphore;

pub use condvar::Condvar;
pub use event::Event;
pub use init::{init_once, InitOutcome};
pub use mutex::{Locked, Mutex, MutexGuard};
pub use semaphore::{Semaphore, WakePolicy};

use std::time::{Duration, Instant};

/// The call that waits on a shared word in this process: `"futex"` on Linux;
/// `"os_sync_wait_on_address"` or `"__ulock_wait"` on macOS (the latter before macOS 14.4, or
/// when `SHMKIT_FORCE_ULOCK=1` was set when the first wait or wake of the process ran).
pub fn wait_backend() -> &'static str {
    #[cfg(target_os = "linux")]
    return "futex";
    #[cfg(target_os = "macos")]
    return crate::platform::futex::backend();
}

/// A deadline `timeout` from now; `None` (wait forever) if it is too far to represent.
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
