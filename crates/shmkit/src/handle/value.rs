//! The [`Handle`] value: a descriptor and what it claims to be.

use super::{Access, EventFd, Kind, PidFd};
use crate::error::{Error, ErrorKind, Result};
use crate::{platform, Memfd, Seals};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::OFlags;

impl Access {
    pub(crate) fn of(fd: BorrowedFd<'_>) -> Result<Access> {
        let fl =
            rustix::fs::fcntl_getfl(fd).map_err(|e| Error::os("fcntl(F_GETFL)", "handle", e))?;
        Ok(if fl & OFlags::RWMODE == OFlags::RDONLY {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        })
    }
}

/// A descriptor to pass to another process, with its kind, size, access mode and seals.
///
/// What a received handle says was checked against the kernel by [`recv`](super::recv).
#[derive(Debug)]
pub struct Handle {
    pub(crate) kind: Kind,
    pub(crate) fd: OwnedFd,
    pub(crate) size: u64,
    pub(crate) access: Access,
    pub(crate) seals: Seals,
}

impl Handle {
    /// A handle to `m` with the access of its own fd (read-write for a memfd this process
    /// created): the receiver can write unless seals forbid it.
    ///
    /// # Errors
    /// The OS error of `fcntl(F_DUPFD_CLOEXEC)`, `fstat`, `F_GETFL` or `F_GET_SEALS`.
    pub fn memfd(m: &Memfd) -> Result<Handle> {
        Handle::describe(Kind::Memfd, dup(m.fd())?)
    }

    /// A handle to `m` that can only ever be mapped read-only, while this process keeps
    /// writing through its own mapping.
    ///
    /// Seals `m` with `F_SEAL_FUTURE_WRITE` (and `F_SEAL_SHRINK`, so that no holder can cut the
    /// pages from under a reader), once, and hands out a descriptor opened `O_RDONLY`. After
    /// the seal the kernel refuses `write(2)` and writable shared mappings of the memfd through
    /// every descriptor, one reopened `O_RDWR` through `/proc/self/fd` included; mappings
    /// that existed before it (this process's) keep working ([`write_attempts`] tries every
    /// way).
    ///
    /// What a receiver of the same uid can still do: reopen the memfd `O_RDWR` and add seals
    /// of its own (`F_SEAL_GROW`, `F_SEAL_SEAL`), so that this process can no longer grow it
    /// or seal it further; it cannot write. (A process of the same uid could as well
    /// `ptrace` this one, where the Yama setting allows it.) The memfd is made mode 0600, so a
    /// receiver of another uid cannot reopen it at all.
    ///
    /// [`write_attempts`]: super::write_attempts
    ///
    /// # Errors
    /// The OS error of `fcntl(F_ADD_SEALS)` (`EPERM` for a memfd sealed with `F_SEAL_SEAL`
    /// before), or of reopening the memfd through `/proc/self/fd`.
    #[doc(alias = "F_SEAL_FUTURE_WRITE")]
    pub fn memfd_read_only(m: &mut Memfd) -> Result<Handle> {
        let want = Seals::FUTURE_WRITE | Seals::SHRINK;
        if !m.seals()?.contains(want) {
            m.add_seals(want)?;
        }
        // A memfd is mode 0777: any holder of any fd could reopen it read-write through
        // /proc and add seals (GROW, SEAL) that the creator did not want. 0600 keeps that to
        // this user.
        rustix::fs::fchmod(m.fd(), rustix::fs::Mode::from_raw_mode(0o600))
            .map_err(|e| Error::os("fchmod", m.object(), e))?;
        let fd = platform::reopen(m.fd(), OFlags::RDONLY)
            .map_err(|e| Error::os("open(/proc/self/fd)", m.object(), e))?;
        Handle::describe(Kind::Memfd, fd)
    }

    /// A handle to the POSIX shared-memory segment `seg`, with the access of its fd.
    ///
    /// A read-only POSIX handle is no protection: a receiver with the same uid can reopen
    /// `/proc/self/fd/N` read-write. Use [`Handle::memfd_read_only`] for that.
    ///
    /// # Errors
    /// As [`Handle::memfd`].
    pub fn posix_shm(seg: &crate::PosixShm) -> Result<Handle> {
        Handle::describe(Kind::PosixShm, dup(seg.fd())?)
    }

    /// A handle to the eventfd `e` (the receiver can signal and wait on it).
    ///
    /// # Errors
    /// The OS error of `fcntl(F_DUPFD_CLOEXEC)`.
    pub fn eventfd(e: &EventFd) -> Result<Handle> {
        Handle::describe(Kind::EventFd, dup(e.fd())?)
    }

    /// A handle to the pidfd `p` (the receiver can watch that process end).
    ///
    /// # Errors
    /// The OS error of `fcntl(F_DUPFD_CLOEXEC)`.
    pub fn pidfd(p: &PidFd) -> Result<Handle> {
        Handle::describe(Kind::PidFd, dup(p.fd())?)
    }

    /// Describes `fd` as the kernel sees it.
    pub(crate) fn describe(kind: Kind, fd: OwnedFd) -> Result<Handle> {
        let (size, access, seals) = facts(kind, fd.as_fd())?;
        Ok(Handle {
            kind,
            fd,
            size,
            access,
            seals,
        })
    }

    /// Another handle to the same object (`F_DUPFD_CLOEXEC`).
    ///
    /// # Errors
    /// The OS error of `fcntl` (`EMFILE`).
    pub fn try_clone(&self) -> Result<Handle> {
        Ok(Handle {
            kind: self.kind,
            fd: dup(self.fd.as_fd())?,
            size: self.size,
            access: self.access,
            seals: self.seals,
        })
    }

    /// The inode of the object (0 if `fstat` fails).
    pub fn inode(&self) -> u64 {
        rustix::fs::fstat(&self.fd).map_or(0, |st| st.st_ino)
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The size of the object in bytes (0 for eventfds and pidfds).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The access mode of its descriptor.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The object's seals (memfds; a POSIX object reports `F_SEAL_SEAL`).
    pub fn seals(&self) -> Seals {
        self.seals
    }

    /// Whether no holder of the object can ever write it (a write seal is in force).
    pub fn is_write_sealed(&self) -> bool {
        self.seals.intersects(Seals::WRITE | Seals::FUTURE_WRITE)
    }

    /// Its descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Its descriptor, owned.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Maps a memfd handle: writable if its access and seals allow, read-only otherwise.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a handle of another kind; as
    /// [`Memfd::from_fd`](crate::Memfd::from_fd).
    pub fn into_memfd(self) -> Result<Memfd> {
        self.expect(Kind::Memfd)?;
        Memfd::from_fd(self.fd)
    }

    /// Maps a POSIX shared-memory handle, writable if its access allows.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a handle of another kind; the OS error of `mmap`.
    pub fn into_posix_shm(self) -> Result<crate::PosixShm> {
        self.expect(Kind::PosixShm)?;
        crate::PosixShm::from_received(self.fd, self.access == Access::ReadWrite)
    }

    /// The eventfd of an eventfd handle.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a handle of another kind.
    pub fn into_eventfd(self) -> Result<EventFd> {
        self.expect(Kind::EventFd)?;
        Ok(EventFd::from_fd(self.fd))
    }

    /// The pidfd of a pidfd handle.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a handle of another kind.
    pub fn into_pidfd(self) -> Result<PidFd> {
        self.expect(Kind::PidFd)?;
        Ok(PidFd::from_fd(self.fd))
    }

    fn expect(&self, kind: Kind) -> Result<()> {
        if self.kind == kind {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidArgument,
            "handle",
            self.kind.name(),
            format!("a {} handle, not a {kind}", self.kind),
        ))
    }

    /// Whether the kernel agrees with what this handle says: the fd's kind, size, access
    /// mode and seals. `Err` says what differs.
    pub(crate) fn verify(&self) -> std::result::Result<(), String> {
        let link = platform::fd_link(self.fd.as_fd()).unwrap_or_default();
        let link = link.as_encoded_bytes();
        let kind_ok = match self.kind {
            // The kernel names every memfd so (see `inventory::open_memfd`).
            Kind::Memfd => link.starts_with(b"/memfd:") && link.ends_with(b" (deleted)"),
            Kind::PosixShm => link.starts_with(b"/dev/shm/"),
            Kind::EventFd => link == b"anon_inode:[eventfd]",
            Kind::PidFd => link == b"anon_inode:[pidfd]",
        };
        if !kind_ok {
            return Err(format!(
                "said {}, but the fd is {}",
                self.kind,
                String::from_utf8_lossy(link)
            ));
        }
        let (size, access, seals) = facts(self.kind, self.fd.as_fd()).map_err(|e| e.to_string())?;
        if size != self.size {
            return Err(format!("said {} bytes, the object has {size}", self.size));
        }
        if access != self.access {
            return Err(format!("said {:?}, the fd is {access:?}", self.access));
        }
        if seals != self.seals {
            return Err(format!(
                "said seals {:?}, the object has {seals:?}",
                self.seals
            ));
        }
        Ok(())
    }
}

/// Size, access mode and seals of `fd` (`fstat`, `F_GETFL`, `F_GET_SEALS`).
pub(crate) fn facts(kind: Kind, fd: BorrowedFd<'_>) -> Result<(u64, Access, Seals)> {
    let (size, seals) = match kind {
        Kind::Memfd | Kind::PosixShm => {
            let st = rustix::fs::fstat(fd).map_err(|e| Error::os("fstat", "handle", e))?;
            let seals = rustix::fs::fcntl_get_seals(fd)
                .map_err(|e| Error::os("fcntl(F_GET_SEALS)", "handle", e))?;
            (st.st_size as u64, Seals::from_bits_retain(seals.bits()))
        }
        Kind::EventFd | Kind::PidFd => (0, Seals::empty()),
    };
    Ok((size, Access::of(fd)?, seals))
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
        .map_err(|e| Error::os("fcntl(F_DUPFD_CLOEXEC)", "handle", e))
}
