//! A counter in the kernel that processes signal and wait on (`eventfd(2)`): a cross-process
//! wake-up that `poll`, `epoll` and `select` see, unlike a futex.

use crate::error::{Error, ErrorKind, Result};
use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use std::time::{Duration, Instant};

/// An eventfd, non-blocking and close-on-exec.
///
/// ```
/// let e = shmkit::handle::EventFd::new()?;
/// e.signal()?;
/// e.signal()?;
/// assert_eq!(e.wait_timeout(std::time::Duration::ZERO)?, Some(2));
/// assert_eq!(e.wait_timeout(std::time::Duration::from_millis(1))?, None);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
    ///
    /// # Errors
    /// The OS error of `eventfd` (`EMFILE`).
    #[doc(alias = "eventfd")]
    pub fn new() -> Result<EventFd> {
        rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
            .map(|fd| EventFd { fd })
            .map_err(|e| Error::os("eventfd", "eventfd", e))
    }

    pub(crate) fn from_fd(fd: OwnedFd) -> EventFd {
        EventFd { fd }
    }

    /// Its descriptor, for `poll` or `epoll`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Adds 1 to the counter, waking a waiter.
    ///
    /// # Errors
    /// The OS error of `write(2)` (`EAGAIN` only when the counter is at its maximum).
    pub fn signal(&self) -> Result<()> {
        loop {
            match rustix::io::write(&self.fd, &1u64.to_ne_bytes()) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(Error::os("write", "eventfd", e)),
            }
        }
    }

    /// Waits until the counter is non-zero, at most `timeout` (`Duration::MAX`: forever), and
    /// takes it: `Some(count)` of the signals since the last wait, `None` on timeout.
    ///
    /// # Errors
    /// The OS error of `poll` or `read`; [`ErrorKind::InvalidArgument`] for an fd that is not
    /// an eventfd.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<u64>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let mut b = [0u8; 8];
            match rustix::io::read(&self.fd, &mut b) {
                Ok(8) => return Ok(Some(u64::from_ne_bytes(b))),
                Ok(n) => {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        "read",
                        "eventfd",
                        format!("read {n} bytes, not 8: not an eventfd"),
                    ))
                }
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(e) => return Err(Error::os("read", "eventfd", e)),
            }
            if !wait_readable(self.fd.as_fd(), deadline, "eventfd")? {
                return Ok(None);
            }
        }
    }
}

/// Polls `fd` for reading until `deadline` (`None`: forever); whether it became readable.
pub(crate) fn wait_readable(
    fd: BorrowedFd<'_>,
    deadline: Option<Instant>,
    what: &str,
) -> Result<bool> {
    loop {
        let left = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(l) => Some(l),
                None => return Ok(false),
            },
        };
        // Slices of at most a second: a far deadline needs no timespec that overflows.
        let slice = left.map_or(Duration::from_secs(1), |l| l.min(Duration::from_secs(1)));
        let ts = rustix::time::Timespec {
            tv_sec: slice.as_secs() as _,
            tv_nsec: slice.subsec_nanos() as _,
        };
        let mut fds = [PollFd::new(&fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(Errno::INTR) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            Ok(_) => return Ok(true),
            Err(e) => return Err(Error::os("poll", what, e)),
        }
    }
}
