//! System V IPC (`sysvipc(7)`): shared memory, semaphore sets and message queues, all named by
//! a [`SysvKey`] and reached by an id.
//!
//! Segments are [`SysvShm`] (re-exported at the crate root); semaphore sets are in [`sem`],
//! message queues in [`msg`]. The System V message queue calls are Linux only for now (the
//! `libc` crate has no binding for them on macOS).

mod key;
#[cfg(target_os = "linux")]
pub mod msg;
pub mod sem;
pub mod shm;

pub use key::SysvKey;
pub use shm::{SysvOptions, SysvShm, SysvStat};
