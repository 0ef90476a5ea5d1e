//! A process as a file descriptor (`pidfd_open(2)`): readable once the process has exited,
//! so a peer's death can be waited for with `poll` and cannot be confused with a reused pid.

use super::eventfd::wait_readable;
use crate::error::{Error, Result};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::process::{Pid, PidfdFlags};
use std::time::{Duration, Instant};

/// A pidfd.
///
/// ```
/// let me = shmkit::handle::PidFd::open(std::process::id() as i32)?;
/// assert!(!me.wait_exit(std::time::Duration::from_millis(1))?); // still alive
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
}

impl PidFd {
    /// `pidfd_open(pid, 0)` (Linux 5.3).
    ///
    /// # Errors
    /// `ESRCH` ([`ErrorKind::Os`](crate::ErrorKind::Os)) when there is no such process;
    /// `EINVAL` for a pid that is not positive.
    #[doc(alias = "pidfd_open")]
    pub fn open(pid: i32) -> Result<PidFd> {
        let p = Pid::from_raw(pid).ok_or_else(|| {
            Error::os("pidfd_open", format!("pid {pid}"), rustix::io::Errno::INVAL)
        })?;
        rustix::process::pidfd_open(p, PidfdFlags::empty())
            .map(|fd| PidFd { fd })
            .map_err(|e| Error::os("pidfd_open", format!("pid {pid}"), e))
    }

    pub(crate) fn from_fd(fd: OwnedFd) -> PidFd {
        PidFd { fd }
    }

    /// Its descriptor, for `poll` or `epoll`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Waits at most `timeout` for the process to exit: whether it has.
    ///
    /// # Errors
    /// The OS error of `poll`.
    pub fn wait_exit(&self, timeout: Duration) -> Result<bool> {
        wait_readable(
            self.fd.as_fd(),
            Instant::now().checked_add(timeout),
            "pidfd",
        )
    }
}
