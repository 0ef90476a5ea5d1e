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
//! | [`Mutex`] | 32 bytes | a priority-inheriting lock that reports its owner's death |
//! | [`Condvar`] | 16 bytes | notify one / all, used with a [`Mutex`] |
//! | [`Event`] | 16 bytes | a manual-reset flag that wakes every waiter |
//! | [`init_once`] | 16 bytes | create-or-open: one process initializes, the others wait |
//!
//! All words are atomics, so whatever a buggy or hostile peer writes there can make a wait
//! return early, late or with an error, but cannot make this process touch memory outside
//! the mapping: no pointer, index or length is ever read from the block.
//!
//! Linux only: the waits are futexes (`futex(2)`, a Linux system call), process-shared; nothing
//! enters the kernel while there is no contention.

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

/// A deadline `timeout` from now; `None` (wait forever) if it is too far to represent.
pub(crate) fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
