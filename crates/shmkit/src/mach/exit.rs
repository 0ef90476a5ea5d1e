//! Knowing that a peer process exited, on macOS: kqueue's `EVFILT_PROC` with `NOTE_EXIT`
//! (`kqueue(2)`), which names the process as it is when the watch starts, so a pid reused
//! later is not mistaken for it. The Mach way for a port's holder is
//! [`SendRight::is_dead`](super::SendRight::is_dead).

use crate::error::{Error, Result};
use rustix::event::kqueue::{self, Event, EventFilter, EventFlags, ProcessEvents};
use rustix::fd::OwnedFd;
use std::time::Duration;

/// A watch on one process's exit.
///
/// ```
/// # #[cfg(target_os = "macos")] {
/// let mut child = std::process::Command::new("/usr/bin/true").spawn().unwrap();
/// let watch = shmkit::mach::ProcessExit::watch(child.id() as i32);
/// child.wait().unwrap();
/// // Either the watch started before the exit and saw it, or the process was gone already.
/// match watch {
///     Ok(w) => assert!(w.wait_timeout(std::time::Duration::from_secs(5))?),
///     Err(e) => assert_eq!(e.kind(), shmkit::ErrorKind::NotFound),
/// }
/// # }
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct ProcessExit {
    kq: OwnedFd,
    pid: i32,
}

impl ProcessExit {
    /// Starts watching `pid`.
    ///
    /// # Errors
    /// `ESRCH` ([`ErrorKind::NotFound`](crate::ErrorKind::NotFound)) when no such process
    /// exists (it exited already); the OS error of `kqueue` or `kevent`.
    pub fn watch(pid: i32) -> Result<ProcessExit> {
        let object = || format!("pid {pid}");
        let kq = kqueue::kqueue().map_err(|e| Error::os("kqueue", object(), e))?;
        let _ = rustix::io::fcntl_setfd(&kq, rustix::io::FdFlags::CLOEXEC);
        let p = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| Error::os("kevent(EVFILT_PROC)", object(), rustix::io::Errno::SRCH))?;
        let ev = Event::new(
            EventFilter::Proc {
                pid: p,
                flags: ProcessEvents::EXIT,
            },
            EventFlags::ADD | EventFlags::ONESHOT,
            std::ptr::null_mut(),
        );
        let mut none: Vec<Event> = Vec::new();
        // SAFETY: the change names a process, no file descriptor.
        unsafe { kqueue::kevent(&kq, &[ev], &mut none, Some(Duration::ZERO)) }.map_err(|e| {
            let err = Error::os("kevent(EVFILT_PROC)", object(), e);
            if e == rustix::io::Errno::SRCH {
                err.with_kind(crate::ErrorKind::NotFound)
            } else {
                err
            }
        })?;
        Ok(ProcessExit { kq, pid })
    }

    /// The pid watched.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits at most `timeout` (any `Duration`, `MAX` included: the kernel takes at most
    /// 10^8 s per call, so longer waits are several) for the exit: `true` when it happened.
    /// The exit is reported once: a later call waits again, and returns `false` at its
    /// timeout.
    ///
    /// # Errors
    /// The OS error of `kevent`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        const MOST: Duration = Duration::from_secs(100_000_000);
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(std::time::Instant::now()),
                None => MOST,
            };
            let mut got: Vec<Event> = Vec::with_capacity(1);
            // SAFETY: the registered event names a process, no file descriptor.
            let r = unsafe {
                kqueue::kevent(
                    &self.kq,
                    &[],
                    rustix::buffer::spare_capacity(&mut got),
                    Some(left.min(MOST)),
                )
            };
            match r {
                Ok(_) if !got.is_empty() => return Ok(true),
                Ok(_) if left <= MOST => return Ok(false),
                Ok(_) | Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::os("kevent", format!("pid {}", self.pid), e)),
            }
        }
    }
}
