//! POSIX named semaphores: `sem_open`, `sem_post`, `sem_wait`, `sem_timedwait`,
//! `sem_getvalue`, `sem_close`, `sem_unlink` (`sem_overview(7)`). On Linux they live in
//! `/dev/shm/sem.NAME`.
//!
//! Linux only: every wait is made of `sem_timedwait` slices, and macOS has no `sem_timedwait`.

use crate::error::{Error, ErrorKind, Result};
use crate::ownership::Ownership;
use crate::platform::errno as last_errno;
use crate::platform::maps::{self as registry, FAULTED, NO_SPACE, TRUNCATED};
use crate::posix::validate_name_for;
use rustix::fd::{AsRawFd, OwnedFd};
use rustix::io::Errno;
use std::ffi::CString;
use std::time::Duration;

/// A named semaphore, shared by every process that opens the name.
///
/// ```
/// use shmkit::posix_sem::NamedSemaphore;
/// let name = format!("/shmkit-doc-psem-{}", std::process::id());
/// let sem = NamedSemaphore::create(&name, 1)?; // removed when dropped
/// sem.wait()?;
/// assert_eq!(sem.value()?, 0);
/// sem.post()?;
/// let other = NamedSemaphore::open(&name)?;
/// assert!(other.try_wait()?);
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct NamedSemaphore {
    sem: *mut libc::sem_t,
    name: String,
    owner: Ownership,
    /// The C library's mapping of `/dev/shm/sem.NAME`, registered with the SIGBUS guard: a
    /// peer that truncates the file must not kill us on the next `sem_post`.
    guard: Option<Guard>,
}

struct Guard {
    slot: &'static registry::Slot,
    _fd: OwnedFd,
}

// SAFETY: a `sem_t` from sem_open is process-shared memory meant for concurrent use from any
// thread; every access goes through the thread-safe sem_* calls.
unsafe impl Send for NamedSemaphore {}
// SAFETY: as above.
unsafe impl Sync for NamedSemaphore {}

/// How to create or open a [`NamedSemaphore`]. Defaults: mode 0600, removed on drop by its
/// creator.
#[derive(Debug, Clone, Default)]
pub struct SemaphoreOptions {
    common: crate::options::Ipc,
}

impl SemaphoreOptions {
    crate::options::ipc_setters!("semaphore");

    /// `sem_open(O_CREAT | O_EXCL)`: creates `name` with `value`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`] for a name `sem_open` would refuse, `EEXIST` when the name
    /// is taken, `EINVAL` when `value` exceeds `SEM_VALUE_MAX`.
    #[doc(alias = "sem_open")]
    pub fn create(&self, name: &str, value: u32) -> Result<NamedSemaphore> {
        NamedSemaphore::open_with(
            name,
            libc::O_CREAT | libc::O_EXCL,
            self.common.mode,
            value,
            self.common.keep,
        )
    }

    /// `sem_open`: opens an existing `name`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`], `ENOENT` when there is no such semaphore, `EACCES`.
    #[doc(alias = "sem_open")]
    pub fn open(&self, name: &str) -> Result<NamedSemaphore> {
        NamedSemaphore::open_with(name, 0, 0, 0, true)
    }
}

impl NamedSemaphore {
    /// How to create or open a semaphore, beyond the defaults.
    pub fn options() -> SemaphoreOptions {
        SemaphoreOptions::default()
    }

    /// `sem_open`: creates `name` with `value`, exclusively (`O_CREAT | O_EXCL`), mode 0600;
    /// removed when dropped unless [`set_keep`](Self::set_keep).
    ///
    /// # Errors
    /// As [`SemaphoreOptions::create`].
    #[doc(alias = "sem_open")]
    pub fn create(name: &str, value: u32) -> Result<Self> {
        Self::options().create(name, value)
    }

    /// `sem_open`: opens an existing `name`.
    ///
    /// # Errors
    /// As [`SemaphoreOptions::open`].
    #[doc(alias = "sem_open")]
    pub fn open(name: &str) -> Result<Self> {
        Self::options().open(name)
    }

    fn open_with(name: &str, flags: i32, mode: u32, value: u32, keep: bool) -> Result<Self> {
        validate_name_for("sem_open", name)?;
        let c = CString::new(name).expect("validated: no NUL");
        // SAFETY: a valid C string; mode and value are passed as the variadic arguments
        // sem_open reads when O_CREAT is set.
        let sem = unsafe { libc::sem_open(c.as_ptr(), flags, mode as libc::c_uint, value) };
        if sem == libc::SEM_FAILED {
            let e = last_errno();
            let err = Error::os("sem_open", name, e);
            return Err(match e {
                Errno::EXIST => err.with_hint(
                    "open it instead (NamedSemaphore::open), or remove it first (sem_unlink)",
                ),
                Errno::NOENT => err.with_hint("create it first, or check the name"),
                Errno::INVAL if flags != 0 => {
                    err.with_hint("the value exceeds SEM_VALUE_MAX (2147483647)")
                }
                _ => err,
            });
        }
        Ok(NamedSemaphore {
            sem,
            guard: guard_for(sem, name),
            name: name.to_string(),
            owner: if flags & libc::O_CREAT != 0 {
                Ownership::created(keep)
            } else {
                Ownership::opened()
            },
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, op: &'static str, r: i32) -> Result<()> {
        if r == 0 {
            self.check_truncated(op)
        } else {
            let e = last_errno();
            self.check_truncated(op)?;
            Err(Error::os(op, self.name.clone(), e))
        }
    }

    /// Fails with [`ErrorKind::Truncated`] once an operation met a truncated
    /// `/dev/shm/sem.NAME` (the guard then put a private page in its place: the semaphore is
    /// no longer shared).
    fn check_truncated(&self, op: &'static str) -> Result<()> {
        match &self.guard {
            Some(g) if g.slot.state() & (TRUNCATED | NO_SPACE | FAULTED) != 0 => Err(Error::new(
                ErrorKind::Truncated,
                op,
                self.name.clone(),
                format!(
                    "another process truncated {} while it was open; the semaphore is no longer \
                     shared",
                    crate::platform::posix_sem_path(&self.name).unwrap_or_default()
                ),
            )
            .with_hint("remove the name and create the semaphore again")),
            _ => Ok(()),
        }
    }

    /// `sem_post`: adds one, waking a waiter.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`] once an operation met a truncated `/dev/shm/sem.NAME` (the
    /// semaphore is no longer shared); the OS error of `sem_post` (`EOVERFLOW` at the maximum).
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<()> {
        self.check_truncated("sem_post")?;
        // SAFETY: `sem` is a live semaphore from sem_open.
        self.check("sem_post", unsafe { libc::sem_post(self.sem) })
    }

    /// `sem_wait`, in `sem_timedwait` slices: takes one, sleeping until there is one (restarted
    /// after signals).
    ///
    /// The sleep is made of `sem_timedwait` slices of half a second, each followed by a look
    /// at the guard: a peer that truncates `/dev/shm/sem.NAME` leaves a waiter asleep on a page
    /// no post can reach, and this is how it finds out ([`ErrorKind::Truncated`]).
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`] once an operation met a truncated `/dev/shm/sem.NAME` (noticed
    /// within half a second by a sleeper); the OS error of `sem_timedwait`.
    #[doc(alias = "sem_wait")]
    pub fn wait(&self) -> Result<()> {
        self.wait_until(None).map(|_| ())
    }

    /// `sem_trywait`: takes one if there is one.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`] once an operation met a truncated `/dev/shm/sem.NAME`; the OS
    /// error of `sem_trywait` other than `EAGAIN` (which is `Ok(false)`).
    #[doc(alias = "sem_trywait")]
    pub fn try_wait(&self) -> Result<bool> {
        self.check_truncated("sem_trywait")?;
        // SAFETY: as above.
        if unsafe { libc::sem_trywait(self.sem) } == 0 {
            self.check_truncated("sem_trywait")?;
            return Ok(true);
        }
        let e = last_errno();
        self.check_truncated("sem_trywait")?;
        match e {
            Errno::AGAIN => Ok(false),
            e => Err(Error::os("sem_trywait", self.name.clone(), e)),
        }
    }

    /// `sem_timedwait`: takes one, sleeping at most `timeout`; `Ok(false)` if none came. A
    /// timeout the clock cannot express (`Duration::MAX`) waits forever, as `wait`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    #[doc(alias = "sem_timedwait")]
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_until(std::time::Instant::now().checked_add(timeout))
    }

    fn wait_until(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        use crate::platform::futex::SLICE;
        loop {
            self.check_truncated("sem_timedwait")?;
            let slice = match deadline {
                None => SLICE,
                Some(d) => d
                    .saturating_duration_since(std::time::Instant::now())
                    .min(SLICE),
            };
            let Some(ts) = crate::platform::realtime_after(slice) else {
                return Err(Error::os("sem_timedwait", self.name.clone(), Errno::INVAL));
            };
            // SAFETY: as above; `ts` is a valid timespec.
            if unsafe { libc::sem_timedwait(self.sem, &ts) } == 0 {
                self.check_truncated("sem_timedwait")?;
                return Ok(true);
            }
            let e = last_errno();
            self.check_truncated("sem_timedwait")?;
            match e {
                Errno::INTR => continue,
                Errno::TIMEDOUT => {
                    if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                        return Ok(false);
                    }
                }
                e => return Err(Error::os("sem_timedwait", self.name.clone(), e)),
            }
        }
    }

    /// `sem_getvalue`: the value now.
    ///
    /// # Errors
    /// [`ErrorKind::Truncated`] once an operation met a truncated `/dev/shm/sem.NAME`; the OS
    /// error of `sem_getvalue`.
    #[doc(alias = "sem_getvalue")]
    pub fn value(&self) -> Result<u32> {
        self.check_truncated("sem_getvalue")?;
        let mut v = 0;
        // SAFETY: as above; `v` is a valid out-pointer.
        self.check("sem_getvalue", unsafe {
            libc::sem_getvalue(self.sem, &mut v)
        })?;
        Ok(v.max(0) as u32)
    }

    /// `sem_unlink`: removes the name now; processes that have it open keep using it.
    ///
    /// # Errors
    /// As [`unlink_name`](Self::unlink_name) ([`ErrorKind::NotFound`] if it was removed already).
    #[doc(alias = "sem_unlink")]
    pub fn unlink(&self) -> Result<()> {
        Self::unlink_name(&self.name)?;
        self.owner.removed();
        Ok(())
    }

    /// `sem_unlink`: removes the semaphore called `name`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`] for a name `sem_open` would refuse, [`ErrorKind::NotFound`] if
    /// there is none, [`ErrorKind::PermissionDenied`] if this user may not remove it.
    #[doc(alias = "sem_unlink")]
    pub fn unlink_name(name: &str) -> Result<()> {
        validate_name_for("sem_unlink", name)?;
        unlink_os(name.as_ref()).map_err(|e| Error::os("sem_unlink", name, e))
    }
}

impl Drop for NamedSemaphore {
    fn drop(&mut self) {
        if self.owner.removes_on_drop() {
            let _ = Self::unlink_name(&self.name);
        }
        let sem = self.sem;
        // SAFETY: closes the mapping sem_open made, once.
        let close = || unsafe {
            libc::sem_close(sem);
        };
        match self.guard.take() {
            Some(g) => registry::unregister(g.slot, close),
            None => close(),
        }
    }
}

/// Registers glibc's mapping of the semaphore (one page, at offset 0 of the file) with the
/// SIGBUS guard, with a descriptor of the file for the guard's size check. `None` (no guard)
/// if the mapping is not where glibc puts it or the file cannot be opened.
fn guard_for(sem: *mut libc::sem_t, name: &str) -> Option<Guard> {
    let page = rustix::param::page_size();
    if (sem as usize) % page != 0 {
        return None;
    }
    let fd = rustix::fs::open(
        crate::platform::posix_sem_path(name)?,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    crate::platform::sigbus::install();
    let slot = registry::register(registry::NewSlot {
        start: sem as usize,
        len: page,
        page,
        writable: true,
        guard: true,
        fd: fd.as_raw_fd(),
    });
    Some(Guard { slot, _fd: fd })
}

impl std::fmt::Debug for NamedSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedSemaphore")
            .field("name", &self.name)
            .field("value", &self.value().ok())
            .finish()
    }
}

crate::ownership::owned!(NamedSemaphore, owner, "semaphore");

/// `sem_unlink` of any name (one made by another program): for removal by address.
pub(crate) fn unlink_os(name: &std::ffi::OsStr) -> std::result::Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(name.as_bytes()).map_err(|_| Errno::INVAL)?;
    // SAFETY: a valid C string.
    if unsafe { libc::sem_unlink(c.as_ptr()) } == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}
