//! Opening an inventory object's memory by its address.

use super::{find, not_found, Address, Kind};
use crate::error::{Error, ErrorKind, Result};
use crate::AnySegment;

/// Refuses what has no bytes (semaphores, queues) and what does not exist, with the same
/// errors whatever the kind: shmctl says EINVAL for an id that names nothing, shm_open ENOENT.
/// (A memfd is looked up when it is opened through `/proc`.)
pub(crate) fn check_memory(addr: &Address) -> Result<()> {
    match addr.kind() {
        // (No address is of kind Channel: a channel is reached through what it lives in.)
        Kind::PosixShm | Kind::SysvShm | Kind::Channel => find(addr, false).map(|_| ()),
        Kind::Memfd => Ok(()),
        other => Err(Error::new(
            ErrorKind::InvalidArgument,
            "open",
            addr.to_string(),
            format!(
                "a {other} is not shared memory; only /NAME, shm:, key: and memfd: objects have bytes"
            ),
        )),
    }
}

/// Attaches the System V segment `addr` names (by id or key).
pub(crate) fn open_sysv(addr: &Address, read_only: bool) -> Result<crate::SysvShm> {
    let mut opts = crate::SysvShm::options();
    opts.read_only(read_only);
    match addr {
        Address::SysvShmId(id) => opts.open_id(*id),
        Address::SysvShmKey(k) => opts.open(crate::SysvKey::Key(*k)),
        _ => Err(not_found(addr)),
    }
}

/// Opens the memfd `addr` names through `/proc` (its fd, or its mapping's map_files entry).
pub(crate) fn open_memfd(addr: &Address, writable: bool) -> Result<rustix::fd::OwnedFd> {
    let path = match addr {
        Address::Memfd { pid, fd } => crate::platform::inventory::fd_path(*pid, *fd),
        Address::MemfdMap { pid, inode } => {
            crate::platform::inventory::map_file(*pid, *inode).ok_or_else(|| not_found(addr))?
        }
        _ => return Err(not_found(addr)),
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(writable)
        .open(&path)
        .map_err(|e| {
            let errno = rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO);
            let err = Error::os("open", addr.to_string(), errno);
            match errno {
                rustix::io::Errno::NOENT => err
                    .with_kind(ErrorKind::NotFound)
                    .with_hint("no such process or descriptor (any more)"),
                _ => err.with_hint(format!(
                    "{path} must be a memfd of a live process that this user may inspect \
                     (map_files needs root)"
                )),
            }
        })?;
    let fd: rustix::fd::OwnedFd = file.into();
    // The fd could be any file the process holds: only a memfd is this address's object.
    if !crate::platform::inventory::is_memfd(rustix::fd::AsFd::as_fd(&fd)) {
        return Err(not_found(addr));
    }
    Ok(fd)
}

/// Opens a shared-memory object named by `addr` for reading or writing: what `shmkit cat`
/// and `shmkit write` use. Semaphores and queues are not memory and are refused.
///
/// # Errors
/// [`ErrorKind::NotFound`] when nothing has the address, [`ErrorKind::InvalidArgument`] for
/// semaphores and queues, [`ErrorKind::Unsupported`] for a memfd on macOS, and
/// whatever opening the object returns (permission, ...).
pub fn open_memory(addr: &Address, writable: bool) -> Result<AnySegment> {
    let ro = !writable;
    check_memory(addr)?;
    Ok(match addr {
        Address::PosixShm(name) => {
            let text = name.to_str().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidName,
                    "open",
                    addr.to_string(),
                    "the name is not UTF-8: such an object can be read and removed, not mapped",
                )
            })?;
            crate::PosixShm::options().read_only(ro).open(text)?.into()
        }
        Address::SysvShmId(_) | Address::SysvShmKey(_) => open_sysv(addr, ro)?.into(),
        #[cfg(target_os = "linux")]
        Address::Memfd { .. } | Address::MemfdMap { .. } => {
            let fd = open_memfd(addr, writable)?;
            let m = if writable {
                crate::Memfd::from_fd_writable(fd)?
            } else {
                crate::Memfd::from_fd(fd)?
            };
            m.into()
        }
        #[cfg(not(target_os = "linux"))]
        Address::Memfd { .. } | Address::MemfdMap { .. } => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "open",
                addr.to_string(),
                "memfds exist on Linux only",
            ))
        }
        _ => unreachable!("check_memory refused every other kind"),
    })
}
