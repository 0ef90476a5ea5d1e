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

/// An error from a control call on an id (`shmctl`, `semctl`, `msgctl` with `IPC_STAT` or
/// `IPC_RMID`): there `EINVAL` means no object has the id, so it is
/// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
pub(crate) fn id_error(
    op: &'static str,
    object: impl Into<String>,
    e: rustix::io::Errno,
) -> crate::Error {
    let err = crate::Error::os(op, object, e);
    if e == rustix::io::Errno::INVAL {
        err.with_kind(crate::ErrorKind::NotFound)
    } else {
        err
    }
}
