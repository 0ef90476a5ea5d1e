//! Mach semaphores (`semaphore_create(3)`): kernel counting semaphores named by a port, so a
//! send right to one is all another process needs to signal or wait on it.

use super::{kern, SendRight};
use crate::error::{Error, ErrorKind, Result};
use mach2::kern_return::{KERN_ABORTED, KERN_OPERATION_TIMED_OUT, KERN_SUCCESS};
use mach2::port::MACH_PORT_NULL;
use mach2::traps::mach_task_self;
use std::time::{Duration, Instant};

/// Which waiter a signal wakes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `SYNC_POLICY_FIFO`: the longest waiting first.
    Fifo,
    /// `SYNC_POLICY_LIFO`: the latest waiter first.
    Lifo,
}

/// A Mach semaphore. Dies with the task that created it: then every wait and signal, in
/// every process that holds it, fails with `KERN_TERMINATED`
/// ([`ErrorKind::PeerGone`]), and a waiter blocked at that moment wakes with that error,
/// never hangs. macOS only.
///
/// ```
/// # #[cfg(target_os = "macos")] {
/// use shmkit::mach::{MachSemaphore, Policy};
/// use std::time::Duration;
/// let sem = MachSemaphore::new(Policy::Fifo, 0)?;
/// sem.signal()?;
/// assert!(sem.wait_timeout(Duration::from_millis(10))?);   // the signal was counted
/// assert!(!sem.wait_timeout(Duration::from_millis(10))?);  // nothing more
/// # }
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct MachSemaphore {
    right: SendRight,
    /// Made by this task: destroyed on drop (`semaphore_destroy`), not just released.
    owner: bool,
}

impl MachSemaphore {
    /// `semaphore_create` in this task, with `value` initial signals.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a `value` over `i32::MAX`; the Mach error
    /// (`KERN_RESOURCE_SHORTAGE` past the task's semaphore limit).
    #[doc(alias = "semaphore_create")]
    pub fn new(policy: Policy, value: u32) -> Result<MachSemaphore> {
        let value = i32::try_from(value).map_err(|_| {
            Error::new(
                ErrorKind::InvalidArgument,
                "semaphore_create",
                "a Mach semaphore",
                format!("initial value {value} exceeds {}", i32::MAX),
            )
        })?;
        let policy = match policy {
            Policy::Fifo => mach2::sync_policy::SYNC_POLICY_FIFO,
            Policy::Lifo => mach2::sync_policy::SYNC_POLICY_LIFO,
        };
        let mut port = MACH_PORT_NULL;
        // SAFETY: a valid out-pointer; the policy is one the kernel knows.
        let kr = unsafe {
            mach2::semaphore::semaphore_create(mach_task_self(), &mut port, policy, value)
        };
        kern::check("semaphore_create", || "a Mach semaphore".into(), kr)?;
        Ok(MachSemaphore {
            // SAFETY: the semaphore's port right was just made for us.
            right: unsafe { SendRight::from_raw(port) },
            owner: true,
        })
    }

    /// A semaphore reached through a send right received from elsewhere. Whether the right
    /// names a semaphore at all is checked by the kernel at each call (`KERN_INVALID_ARGUMENT`
    /// otherwise).
    pub fn from_send_right(right: SendRight) -> MachSemaphore {
        MachSemaphore {
            right,
            owner: false,
        }
    }

    /// The send right, to pass on.
    pub fn send_right(&self) -> &SendRight {
        &self.right
    }

    fn object(&self) -> String {
        format!("Mach semaphore {:#x}", self.right.as_raw())
    }

    /// Adds a signal: wakes one waiter, or is counted for the next wait.
    ///
    /// # Errors
    /// `KERN_TERMINATED` ([`ErrorKind::PeerGone`]) once its creator is gone; in a fork child.
    #[doc(alias = "semaphore_signal")]
    pub fn signal(&self) -> Result<()> {
        let port = self.right.here("semaphore_signal")?;
        // SAFETY: a port name of this task; the kernel checks it is a semaphore.
        let kr = unsafe { mach2::semaphore::semaphore_signal(port) };
        kern::check("semaphore_signal", || self.object(), kr)
    }

    /// Wakes every thread waiting now (`semaphore_signal_all`); counts nothing if none waits.
    ///
    /// # Errors
    /// As [`signal`](Self::signal).
    #[doc(alias = "semaphore_signal_all")]
    pub fn signal_all(&self) -> Result<()> {
        let port = self.right.here("semaphore_signal_all")?;
        // SAFETY: as in `signal`.
        let kr = unsafe { semaphore_signal_all(port) };
        kern::check("semaphore_signal_all", || self.object(), kr)
    }

    /// Waits for a signal, for as long as it takes. An interrupted wait (`KERN_ABORTED`)
    /// waits again.
    ///
    /// # Errors
    /// `KERN_TERMINATED` ([`ErrorKind::PeerGone`]) when its creator exits, also during the
    /// wait; in a fork child.
    #[doc(alias = "semaphore_wait")]
    pub fn wait(&self) -> Result<()> {
        let port = self.right.here("semaphore_wait")?;
        loop {
            // SAFETY: as in `signal`.
            match unsafe { mach2::semaphore::semaphore_wait(port) } {
                KERN_SUCCESS => return Ok(()),
                KERN_ABORTED => continue,
                kr => return Err(kern::error("semaphore_wait", self.object(), kr)),
            }
        }
    }

    /// Waits at most `timeout` for a signal: `Ok(true)` if one was taken, `Ok(false)` at the
    /// deadline. Any `Duration` works, `Duration::MAX` included (a `mach_timespec_t` holds
    /// 2^32 − 1 seconds: longer waits are made of several).
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    #[doc(alias = "semaphore_timedwait")]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        let port = self.right.here("semaphore_timedwait")?;
        let deadline = Instant::now().checked_add(timeout);
        let mut left = timeout;
        loop {
            let ts = mach2::clock_types::mach_timespec_t {
                tv_sec: u32::try_from(left.as_secs()).unwrap_or(u32::MAX),
                tv_nsec: left.subsec_nanos() as i32,
            };
            // SAFETY: as in `signal`.
            match unsafe { mach2::semaphore::semaphore_timedwait(port, ts) } {
                KERN_SUCCESS => return Ok(true),
                KERN_ABORTED | KERN_OPERATION_TIMED_OUT => {}
                kr => return Err(kern::error("semaphore_timedwait", self.object(), kr)),
            }
            // Timed out (or interrupted): done only if the whole timeout has passed.
            left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(l) if !l.is_zero() => l,
                    _ => return Ok(false),
                },
                // A deadline past what Instant holds: centuries; keep waiting.
                None => Duration::MAX,
            };
        }
    }
}

impl Drop for MachSemaphore {
    fn drop(&mut self) {
        if !self.owner {
            return; // the SendRight releases its reference
        }
        if let Ok(port) = self.right.here("semaphore_destroy") {
            // The call's semaphore argument is a MOVE_SEND (`semaphore_consume_ref_t` in
            // `mach/task.defs`): the right is consumed whatever the result, so the SendRight
            // must not release it again.
            let port_owned = std::mem::replace(&mut self.right, null_right()).into_raw();
            debug_assert_eq!(port, port_owned);
            // SAFETY: a semaphore this task made; destroying it wakes its waiters, here and
            // in other tasks, with KERN_TERMINATED.
            unsafe { mach2::semaphore::semaphore_destroy(mach_task_self(), port_owned) };
        }
    }
}

/// A `SendRight` that owns nothing (`MACH_PORT_NULL` is never released).
fn null_right() -> SendRight {
    // SAFETY: MACH_PORT_NULL carries no reference; SendRight's drop skips it.
    unsafe { SendRight::from_raw(MACH_PORT_NULL) }
}

unsafe extern "C" {
    /// `semaphore_signal_all(3)` (`mach/semaphore.h`); not in `mach2`.
    fn semaphore_signal_all(
        semaphore: mach2::mach_types::semaphore_t,
    ) -> mach2::kern_return::kern_return_t;
}
