//! POSIX shared memory: `shm_open`, `ftruncate`, `mmap`, `shm_unlink` (`shm_overview(7)`).

use crate::error::{Error, ErrorKind, Result};
use crate::fd_map::{self, ObjectStat};
use crate::ownership::Ownership;
use crate::{platform, Mapping};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::shm;

/// A POSIX shared-memory object, mapped.
///
/// Named like `/name`; on Linux it lives as a file in `/dev/shm`. The creator removes it when
/// this value is dropped (unless [`PosixShm::set_keep`] asked otherwise); an opener never does.
///
/// ```
/// use shmkit::PosixShm;
/// let name = format!("/shmkit-doc-posix-{}", std::process::id());
/// let a = PosixShm::create(&name, 4096)?;          // exclusive, mode 0600
/// a.write_at(0, b"hello")?;
/// let b = PosixShm::open(&name)?;                  // maps the real size
/// assert_eq!(b.len(), 4096);
/// let mut buf = [0; 5];
/// b.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// drop(a);                                         // the creator unlinks it
/// assert!(PosixShm::open(&name).is_err());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct PosixShm {
    map: Mapping,
    fd: OwnedFd,
    name: String,
    own: Ownership,
}

/// How to create or open a [`PosixShm`]. Defaults: mode 0600, read-write, removed on drop by
/// its creator, any size accepted on open.
#[derive(Debug, Clone, Default)]
pub struct PosixOptions {
    common: crate::options::Common,
}

impl PosixOptions {
    crate::options::common_setters!("object", "`O_RDONLY`, `PROT_READ`");

    /// `shm_open(O_CREAT | O_EXCL)`, `ftruncate`, `mmap`: creates a new object of `size` bytes
    /// and maps it; fails with `EEXIST` if the name is taken.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`] (see [`validate_name`]); [`ErrorKind::InvalidArgument`] for
    /// size 0 or a mode above 0777; [`ErrorKind::AlreadyExists`] if the name is taken; the OS
    /// error of `shm_open`, `ftruncate`, `mmap`, ... (a later step's failure removes the object).
    #[doc(alias = "shm_open")]
    pub fn create(&self, name: &str, size: usize) -> Result<PosixShm> {
        validate_name(name)?;
        if size == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "shm_open",
                name,
                "size must be at least 1 byte",
            ));
        }
        if self.common.mode > 0o777 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "shm_open",
                name,
                format!(
                    "mode {:o} is not a permission mode (0 to 0777)",
                    self.common.mode
                ),
            ));
        }
        let fd = shm::open(
            name,
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::from_raw_mode(platform::mode_to_raw(self.common.mode)),
        )
        .map_err(|e| open_error(name, e))?;
        // From here on the object exists: remove it again if any later step fails.
        let made = (|| {
            // The umask may have cleared bits of the mode asked for: set it exactly.
            platform::set_posix_mode(fd.as_fd(), self.common.mode).map_err(|e| {
                let err = Error::os("fchmod", name, e);
                if e == Errno::NOTSUP {
                    err.with_kind(ErrorKind::Unsupported).with_hint(format!(
                        "this OS cannot change a POSIX object's mode after shm_open, and the \
                         umask removed bits of {:04o}; create it under a umask that keeps them",
                        self.common.mode
                    ))
                } else {
                    err
                }
            })?;
            rustix::fs::ftruncate(&fd, size as u64).map_err(|e| Error::os("ftruncate", name, e))?;
            let st = fd_map::object_stat(&fd, name)?;
            let len = fd_map::usable_size(st.size, size, "shm_open", name)?;
            let map = fd_map::map_fd(&fd, len, !self.common.read_only, true, name)?;
            Ok(map)
        })();
        match made {
            Ok(map) => Ok(PosixShm {
                map,
                fd,
                name: name.to_string(),
                own: Ownership::created(self.common.keep),
            }),
            Err(e) => {
                let _ = shm::unlink(name);
                Err(e)
            }
        }
    }

    /// `shm_open`, `fstat`, `mmap`: opens an existing object and maps all of it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`] (see [`validate_name`]), [`ErrorKind::NotFound`],
    /// [`ErrorKind::PermissionDenied`] if its mode refuses this user, [`ErrorKind::TooSmall`] if
    /// it is empty or below [`min_size`](Self::min_size); the OS error of `shm_open`, `fstat` or
    /// `mmap` otherwise.
    #[doc(alias = "shm_open")]
    pub fn open(&self, name: &str) -> Result<PosixShm> {
        validate_name(name)?;
        let flags = if self.common.read_only {
            shm::OFlags::RDONLY
        } else {
            shm::OFlags::RDWR
        };
        let fd = shm::open(name, flags, Mode::empty()).map_err(|e| open_error(name, e))?;
        let st = fd_map::object_stat(&fd, name)?;
        let len = fd_map::usable_size(st.size, self.common.min_size, "shm_open", name)?;
        let map = fd_map::map_fd(&fd, len, !self.common.read_only, true, name)?;
        Ok(PosixShm {
            map,
            fd,
            name: name.to_string(),
            own: Ownership::opened(),
        })
    }

    /// Creates the object, or opens it if it exists (then it must have at least `size` bytes).
    /// [`PosixShm::is_owner`] tells which happened.
    ///
    /// # Errors
    /// As [`create`](Self::create) and [`open`](Self::open) (an existing object smaller than
    /// `size` is [`ErrorKind::TooSmall`]); [`ErrorKind::NotFound`] if, 8 times over, the object
    /// was removed between the attempt to create it and the attempt to open it.
    pub fn create_or_open(&self, name: &str, size: usize) -> Result<PosixShm> {
        let mut open = self.clone();
        open.common.min_size = open.common.min_size.max(size);
        // A peer may remove the object between our EEXIST and our open: try again then.
        let mut last = None;
        for _ in 0..8 {
            match self.create(name, size) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => match open.open(name) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => last = Some(e),
                    r => return r,
                },
                r => return r,
            }
        }
        Err(last.expect("the loop ran"))
    }
}

impl PosixShm {
    /// Options for creating or opening.
    pub fn options() -> PosixOptions {
        PosixOptions::default()
    }

    /// `shm_open(O_CREAT | O_EXCL)`, `ftruncate`, `mmap`: creates a new object of `size` bytes,
    /// mode 0600, and maps it; fails if the name exists.
    ///
    /// # Errors
    /// As [`PosixOptions::create`].
    #[doc(alias = "shm_open")]
    #[doc(alias = "ftruncate")]
    pub fn create(name: &str, size: usize) -> Result<PosixShm> {
        PosixOptions::default().create(name, size)
    }

    /// `shm_open`, `fstat`, `mmap`: opens an existing object read-write and maps its whole size.
    ///
    /// # Errors
    /// As [`PosixOptions::open`].
    #[doc(alias = "shm_open")]
    pub fn open(name: &str) -> Result<PosixShm> {
        PosixOptions::default().open(name)
    }

    /// `shm_unlink(3)`: removes the object called `name`. Processes that have it mapped keep
    /// their mappings.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`] for a name [`validate_name`] refuses, [`ErrorKind::NotFound`] if
    /// there is no such object, [`ErrorKind::PermissionDenied`] if this user may not remove it.
    #[doc(alias = "shm_unlink")]
    pub fn unlink_name(name: &str) -> Result<()> {
        validate_name(name)?;
        unlink_os(name.as_ref()).map_err(|e| open_error(name, e).with_op("shm_unlink"))
    }

    /// The object's name, with its leading `/`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `fstat(2)`: the object's size, blocks, block size, mode and owner now.
    ///
    /// # Errors
    /// The OS error of `fstat`.
    #[doc(alias = "fstat")]
    pub fn stat(&self) -> Result<ObjectStat> {
        fd_map::object_stat(&self.fd, &self.name)
    }

    /// A segment whose fd another process passed: mapped writable if `writable`, never
    /// removed by this value. Its name is the file's, as the kernel shows the fd.
    #[cfg(target_os = "linux")]
    pub(crate) fn from_received(fd: OwnedFd, writable: bool) -> Result<PosixShm> {
        let name = platform::fd_link(fd.as_fd())
            .and_then(|l| l.to_str()?.strip_prefix("/dev/shm").map(str::to_string))
            .unwrap_or_else(|| "(received)".to_string());
        let st = fd_map::object_stat(&fd, &name)?;
        let len = fd_map::usable_size(st.size, 0, "mmap", &name)?;
        let map = fd_map::map_fd(&fd, len, writable, true, &name)?;
        Ok(PosixShm {
            map,
            fd,
            name,
            own: Ownership::opened(),
        })
    }

    /// The object's file descriptor (close-on-exec), e.g. for passing to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `shm_unlink(3)`: removes the name now. The mapping stays valid until drop.
    ///
    /// # Errors
    /// As [`PosixShm::unlink_name`] ([`ErrorKind::NotFound`] if the name was removed already).
    #[doc(alias = "shm_unlink")]
    pub fn unlink(&self) -> Result<()> {
        PosixShm::unlink_name(&self.name)?;
        self.own.removed();
        Ok(())
    }
}

crate::segment::segment!(PosixShm, map);

impl Drop for PosixShm {
    fn drop(&mut self) {
        if self.own.removes_on_drop() {
            let _ = shm::unlink(self.name.as_str());
        }
    }
}

/// Checks a name the way the OS will, but with a message that says what is wrong.
///
/// # Errors
/// [`ErrorKind::InvalidName`] for a name without its leading `/`, empty after it, with another
/// `/`, a NUL, `.` or `..`, longer than the OS allows (`ENAMETOOLONG`), or starting with `/sem.`.
///
/// ```
/// assert!(shmkit::posix::validate_name("/ok-name").is_ok());
/// assert!(shmkit::posix::validate_name("no-slash").is_err());
/// assert!(shmkit::posix::validate_name("/a/b").is_err());
/// // glibc keeps the named semaphore /x in /dev/shm as sem.x: not a segment name.
/// assert!(shmkit::posix::validate_name("/sem.x").is_err());
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    validate_name_for("shm_open", name)?;
    if let Some(sem) = name.strip_prefix("/sem.") {
        return Err(Error::new(
            ErrorKind::InvalidName,
            "shm_open",
            name,
            if sem.is_empty() {
                "names starting with /sem. are where glibc keeps named semaphores (sem.NAME is \
                 the semaphore /NAME)"
                    .to_string()
            } else {
                format!(
                    "names starting with /sem. are where glibc keeps named semaphores (this one \
                     is the semaphore /{sem}); a segment of that name would overwrite its bytes"
                )
            },
        )
        .with_hint(if sem.is_empty() {
            "choose another name".to_string()
        } else {
            format!(
                "choose another name, or open the semaphore as a semaphore (NamedSemaphore::open(\"/{sem}\"))"
            )
        }));
    }
    Ok(())
}

/// The same rules for the other POSIX IPC names (`sem_open`, `mq_open`).
pub(crate) fn validate_name_for(op: &'static str, name: &str) -> Result<()> {
    let bad = |why: String| Err(Error::new(ErrorKind::InvalidName, op, name, why));
    let Some(rest) = name.strip_prefix('/') else {
        return bad("a POSIX IPC name must start with '/'".into());
    };
    if rest.is_empty() {
        return bad("the name is empty after its leading '/'".into());
    }
    if rest.contains('/') {
        return bad("a POSIX IPC name has no '/' after the first character".into());
    }
    if rest.contains('\0') {
        return bad("the name contains a NUL byte".into());
    }
    if rest == "." || rest == ".." {
        return bad("'.' and '..' are not object names".into());
    }
    if rest.len() > platform::POSIX_NAME_MAX {
        return Err(Error::os(op, name, Errno::NAMETOOLONG).with_hint(format!(
            "the name has {} bytes after its '/'; the limit is {}",
            rest.len(),
            platform::POSIX_NAME_MAX
        )));
    }
    Ok(())
}

/// An error from `shm_open`/`shm_unlink`, with the remedy for the usual causes.
fn open_error(name: &str, e: Errno) -> Error {
    let err = Error::os("shm_open", name, e);
    let path = platform::posix_shm_path(name);
    match e {
        Errno::EXIST => err.with_hint(match &path {
            Some(p) => format!(
                "open it instead (PosixShm::open), or remove it first (PosixShm::unlink_name; it is {p})"
            ),
            None => "open it instead (PosixShm::open), or remove it first (PosixShm::unlink_name)"
                .to_string(),
        }),
        Errno::NOENT => err.with_hint("create it first, or check the name"),
        Errno::ACCESS | Errno::PERM => match path.map(std::fs::metadata) {
            Some(Ok(m)) => {
                use std::os::unix::fs::MetadataExt;
                err.with_hint(format!(
                    "the object is mode {:04o}, owned by uid {} gid {}; this process is uid {}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    rustix::process::geteuid().as_raw()
                ))
            }
            _ => err,
        },
        Errno::NAMETOOLONG => err.with_hint(format!(
            "names are limited to {} bytes after the '/'",
            platform::POSIX_NAME_MAX
        )),
        _ => err,
    }
}

crate::ownership::owned!(PosixShm, own, "object");

/// `shm_unlink` of any name, even one that `validate_name` would refuse (an object made by
/// another program): for removal by address.
pub(crate) fn unlink_os(name: &std::ffi::OsStr) -> std::result::Result<(), Errno> {
    shm::unlink(name)
}
