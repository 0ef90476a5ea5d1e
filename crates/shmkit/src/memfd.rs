//! Linux memfd: anonymous shared memory reachable only through its fd, with seals
//! (`memfd_create(2)`, `fcntl(2)` `F_ADD_SEALS`).

use crate::error::{Error, ErrorKind, Result};
use crate::fd_map::{self, ObjectStat};
use crate::{Inherit, Mapping};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::io::Errno;
use rustix::mm::MapFlags;

bitflags::bitflags! {
    /// Seals of a memfd: promises the kernel enforces on everyone who holds the fd.
    ///
    /// Linux only, as memfds are.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Seals: u32 {
        /// `F_SEAL_SEAL`: no further seals can be added.
        const SEAL = SealFlags::SEAL.bits();
        /// `F_SEAL_SHRINK`: the size can no longer decrease.
        const SHRINK = SealFlags::SHRINK.bits();
        /// `F_SEAL_GROW`: the size can no longer increase.
        const GROW = SealFlags::GROW.bits();
        /// `F_SEAL_WRITE`: the contents can no longer change (no writes, no writable
        /// shared mappings). Needs every writable mapping gone first.
        const WRITE = SealFlags::WRITE.bits();
        /// `F_SEAL_FUTURE_WRITE`: existing writable mappings keep working; new writes and new
        /// writable mappings are refused (Linux 5.1).
        const FUTURE_WRITE = SealFlags::FUTURE_WRITE.bits();
    }
}

/// Longest memfd name: the kernel prefixes `memfd:` and keeps the result under `NAME_MAX`.
const MEMFD_NAME_MAX: usize = 249;

/// A memfd, mapped.
///
/// It has no name in any namespace: other processes reach it only through its fd, inherited
/// or passed over a Unix socket ([`crate::handle`]). It disappears when the last fd and the
/// last mapping are gone, so dropping the creator's value is its removal.
///
/// Linux only: `memfd_create` and seals are Linux system calls.
///
/// ```
/// use shmkit::{Memfd, Seals};
/// let mut m = Memfd::create("doc", 4096)?;
/// m.write_at(0, b"frozen")?;
/// m.add_seals(Seals::SHRINK | Seals::GROW | Seals::WRITE)?;  // remaps read-only
/// assert!(m.write_at(0, b"x").is_err());
/// assert!(m.seals()?.contains(Seals::WRITE));
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Memfd {
    map: Mapping,
    fd: OwnedFd,
    name: String,
}

impl Memfd {
    /// `memfd_create(2)` with `MFD_ALLOW_SEALING | MFD_CLOEXEC`, `ftruncate`, `mmap`: creates a
    /// memfd of `size` bytes that allows sealing, close-on-exec, and maps it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`] for a name with a NUL byte or over 249 bytes,
    /// [`ErrorKind::InvalidArgument`] for size 0, or the OS error of `memfd_create`, `ftruncate`,
    /// `fstat` or `mmap`.
    #[doc(alias = "memfd_create")]
    pub fn create(name: &str, size: usize) -> Result<Memfd> {
        Memfd::create_with(name, size, false)
    }

    /// `memfd_create(2)` with `MFD_HUGETLB`: like [`Memfd::create`], backed by huge pages; `size`
    /// must be a multiple of the huge page size.
    ///
    /// # Errors
    /// As [`Memfd::create`]; an error of `memfd_create` (`EINVAL`), `ftruncate` or `mmap` carries
    /// a hint that says how many huge pages the machine reserves and has free.
    #[doc(alias = "MFD_HUGETLB")]
    pub fn create_huge(name: &str, size: usize) -> Result<Memfd> {
        Memfd::create_with(name, size, true)
    }

    fn create_with(name: &str, size: usize, huge: bool) -> Result<Memfd> {
        let object = format!("memfd {name}");
        validate_name(name, &object)?;
        if size == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "memfd_create",
                object,
                "size must be at least 1 byte",
            ));
        }
        let mut flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
        if huge {
            flags |= MemfdFlags::HUGETLB;
        }
        let fd = rustix::fs::memfd_create(name, flags).map_err(|e| {
            let err = Error::os("memfd_create", &object, e);
            if huge && e == Errno::INVAL {
                err.with_hint(crate::error::hint::huge_pages())
            } else {
                err
            }
        })?;
        rustix::fs::ftruncate(&fd, size as u64).map_err(|e| {
            let err = Error::os("ftruncate", &object, e);
            if huge {
                err.with_hint(crate::error::hint::huge_pages())
            } else {
                err
            }
        })?;
        let len = fd_map::usable_size(
            fd_map::object_stat(&fd, &object)?.size,
            size,
            "memfd_create",
            &object,
        )?;
        let map = fd_map::map_fd(&fd, len, true, true, &object).map_err(|e| {
            if huge {
                e.with_hint(crate::error::hint::huge_pages())
            } else {
                e
            }
        })?;
        Ok(Memfd {
            map,
            fd,
            name: name.to_string(),
        })
    }

    /// Maps a memfd received from elsewhere, writable if its seals and access mode allow,
    /// read-only otherwise.
    ///
    /// # Errors
    /// The OS error of `fcntl(F_GET_SEALS)` for an fd that is not a memfd (`EINVAL`), or of
    /// `fcntl(F_GETFL)`, `fstat` or `mmap`; [`ErrorKind::TooSmall`] for an empty memfd.
    pub fn from_fd(fd: OwnedFd) -> Result<Memfd> {
        let writable = Self::can_write(&fd)?;
        Self::map_received(fd, writable)
    }

    /// Maps a received memfd writable, or fails the way the kernel does (`EPERM` for a memfd
    /// sealed against writes, `EACCES` for an fd opened read-only).
    ///
    /// # Errors
    /// As [`Memfd::from_fd`]; from `mmap`, [`ErrorKind::PermissionDenied`] for a memfd sealed
    /// against writes (`EPERM`) or an fd opened read-only (`EACCES`).
    pub fn from_fd_writable(fd: OwnedFd) -> Result<Memfd> {
        Self::map_received(fd, true)
    }

    fn can_write(fd: &OwnedFd) -> Result<bool> {
        let seals = rustix::fs::fcntl_get_seals(fd)
            .map_err(|e| Error::os("fcntl(F_GET_SEALS)", "memfd", e))?;
        let mode =
            rustix::fs::fcntl_getfl(fd).map_err(|e| Error::os("fcntl(F_GETFL)", "memfd", e))?;
        let rw = mode & rustix::fs::OFlags::RWMODE == rustix::fs::OFlags::RDWR;
        Ok(rw && !seals.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE))
    }

    fn map_received(fd: OwnedFd, writable: bool) -> Result<Memfd> {
        let name = fd_name(&fd);
        let object = format!("memfd {name}");
        let seals = rustix::fs::fcntl_get_seals(&fd).map_err(|e| {
            Error::os("fcntl(F_GET_SEALS)", &object, e).with_hint("the fd is not a memfd")
        })?;
        let size = fd_map::object_stat(&fd, &object)?.size;
        let len = fd_map::usable_size(size, 0, "mmap", &object)?;
        let guard = !seals.contains(SealFlags::SHRINK);
        let map = fd_map::map_fd(&fd, len, writable, guard, &object)?;
        Ok(Memfd { map, fd, name })
    }

    /// The name given at creation (shown as `/memfd:NAME` in `/proc/PID/fd`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fd, to pass to another process.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `fstat(2)`: the memfd's size, blocks, mode and owner now.
    ///
    /// # Errors
    /// The OS error of `fstat`.
    #[doc(alias = "fstat")]
    pub fn stat(&self) -> Result<ObjectStat> {
        fd_map::object_stat(&self.fd, self.map.object())
    }

    /// `fcntl(F_GET_SEALS)`: the seals in force.
    ///
    /// # Errors
    /// The OS error of `fcntl`.
    #[doc(alias = "fcntl")]
    #[doc(alias = "F_GET_SEALS")]
    pub fn seals(&self) -> Result<Seals> {
        rustix::fs::fcntl_get_seals(&self.fd)
            .map(|s| Seals::from_bits_truncate(s.bits()))
            .map_err(|e| Error::os("fcntl(F_GET_SEALS)", self.map.object(), e))
    }

    /// `fcntl(F_ADD_SEALS)`: adds seals.
    ///
    /// Sealing `WRITE` needs every shared mapping that could become writable gone, this
    /// process's own included (since Linux 6.7 even a read-only `MAP_SHARED` mapping of a
    /// read-write fd counts). So while the seal is added the bytes stay visible through a
    /// private read-only mapping, and afterwards they are mapped shared and read-only. If the
    /// kernel refuses (`EBUSY`: a writable mapping exists in another process), the previous
    /// mapping is restored.
    ///
    /// # Errors
    /// `EBUSY` ([`ErrorKind::Os`]) for `WRITE` while a writable mapping exists; `EPERM`
    /// ([`ErrorKind::PermissionDenied`]) once `SEAL` is in force or without `MFD_ALLOW_SEALING`;
    /// the OS error of `fcntl`, or of `mmap` or `madvise` if remapping fails.
    #[doc(alias = "fcntl")]
    #[doc(alias = "F_ADD_SEALS")]
    pub fn add_seals(&mut self, seals: Seals) -> Result<()> {
        let object = self.map.object().to_string();
        let raw = SealFlags::from_bits_retain(seals.bits());
        let add = |fd: &OwnedFd| {
            rustix::fs::fcntl_add_seals(fd, raw).map_err(|e| {
                let err = Error::os("fcntl(F_ADD_SEALS)", &object, e);
                match e {
                    Errno::BUSY => err.with_hint("a writable mapping of this memfd exists (perhaps in another process); unmap it first"),
                    Errno::PERM => err.with_hint("the memfd is sealed with F_SEAL_SEAL, or was created without MFD_ALLOW_SEALING"),
                    _ => err,
                }
            })
        };
        if !seals.contains(Seals::WRITE) {
            return add(&self.fd);
        }
        let len = self.map.len();
        let was_writable = self.map.is_writable();
        // The new mappings keep what fork gives a child of this one.
        let inherit = self.map.inherit();
        let guard = !self.seals()?.union(seals).contains(Seals::SHRINK);
        let remap = |fd: &OwnedFd, writable: bool, sharing: MapFlags| -> Result<Mapping> {
            let map = fd_map::map_fd_with(fd, len, writable, guard, &object, sharing)?;
            if inherit != Inherit::Share {
                map.set_inherit(inherit)?;
            }
            Ok(map)
        };
        // Assigning drops the shared mapping once the private one is in place.
        self.map = remap(&self.fd, false, MapFlags::PRIVATE)?;
        match add(&self.fd) {
            Ok(()) => {
                self.map = remap(&self.fd, false, MapFlags::SHARED)?;
                Ok(())
            }
            Err(e) => {
                self.map = remap(&self.fd, was_writable, MapFlags::SHARED)?;
                Err(e)
            }
        }
    }
}

crate::segment::segment!(Memfd, map);

fn validate_name(name: &str, object: &str) -> Result<()> {
    if name.contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidName,
            "memfd_create",
            object,
            "the name contains a NUL byte",
        ));
    }
    if name.len() > MEMFD_NAME_MAX {
        return Err(Error::os("memfd_create", object, Errno::INVAL)
            .with_kind(ErrorKind::InvalidName)
            .with_hint(format!(
                "memfd names are limited to {MEMFD_NAME_MAX} bytes; this one has {}",
                name.len()
            )));
    }
    Ok(())
}

/// The memfd's name as the kernel shows it.
fn fd_name(fd: &OwnedFd) -> String {
    crate::platform::memfd_name(fd.as_fd()).unwrap_or_else(|| "(received)".to_string())
}
