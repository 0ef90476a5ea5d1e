//! System V IPC (`sysvipc(7)`): shared memory, semaphore sets and message queues, all named by
//! a [`SysvKey`] and reached by an id.
//!
//! Segments are [`SysvShm`] (re-exported at the crate root); semaphore sets are in [`sem`],
//! message queues in [`msg`]. The System V message queue calls are Linux only for now (the
//! `libc` crate has no binding for them on macOS).
//!
#![cfg_attr(not(target_os = "linux"), doc = "[`msg`]: crate::sysv")]

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

/// What System V semaphore sets and queues share, with the same meaning on both: `open`,
/// `open_id`, `id`, `stat`, `remove`, and a `Drop` that removes the object if this value
/// created it. `$t` has fields `id` and `owner`; its module has `stat_id` and `rmid`. `$get` and
/// `$ctl` name the C calls (`semget`, `semctl`), for the first lines and the aliases.
macro_rules! sysv_object {
    ($t:ident, $what:literal, $ipcs:literal, $opts:ident, $stat:ident, $removed:literal, $get:literal, $ctl:literal) => {
        impl $t {
            #[doc = concat!("`", $get, "`: opens the ", $what, " under `key`.\n\n# Errors\nAs [`", stringify!($opts), "::open`].")]
            #[doc(alias = $get)]
            pub fn open(key: SysvKey) -> Result<Self> {
                Self::options().open(key)
            }

            #[doc = concat!("Opens the ", $what, " with this id (as `", $ipcs, "` shows it).\n\n# Errors\nAs [`", stringify!($opts), "::open_id`].")]
            pub fn open_id(id: i32) -> Result<Self> {
                Self::options().open_id(id)
            }

            #[doc = concat!("The ", $what, "'s id.")]
            pub fn id(&self) -> i32 {
                self.id
            }

            #[doc = concat!("`", $ctl, "(IPC_STAT)`: what the kernel says of the ", $what, " now (a [`", stringify!($stat), "`]).")]
            ///
            /// # Errors
            /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) once it was removed,
            /// `EACCES` without read permission.
            #[doc(alias = $ctl)]
            pub fn stat(&self) -> Result<$stat> {
                stat_id(self.id)
            }

            #[doc = concat!("`", $ctl, "(IPC_RMID)`: ", $removed, "\n\n# Errors\n`EPERM` unless this user is its owner, its creator or root.")]
            #[doc(alias = $ctl)]
            pub fn remove(&self) -> Result<()> {
                remove_id(self.id)?;
                self.owner.removed();
                Ok(())
            }
        }

        impl Drop for $t {
            fn drop(&mut self) {
                if self.owner.removes_on_drop() {
                    let _ = rmid(self.id);
                }
            }
        }
    };
}
pub(crate) use sysv_object;

/// Runs a System V call that may wait (`msgsnd`, `semop`, `semtimedop`), again after each
/// signal that interrupted it: `Ok(true)` when it succeeded, `Ok(false)` when it would have
/// waited with `IPC_NOWAIT` or its timeout ran out (`EAGAIN`), the errno otherwise.
pub(crate) fn restarting(
    mut call: impl FnMut() -> i32,
) -> std::result::Result<bool, rustix::io::Errno> {
    use rustix::io::Errno;
    loop {
        if call() == 0 {
            return Ok(true);
        }
        match crate::platform::errno() {
            Errno::INTR => continue,
            Errno::AGAIN => return Ok(false),
            e => return Err(e),
        }
    }
}
