//! Removing an IPC object by address, like `ipcrm` for every kind, and knowing beforehand
//! whether the removal is allowed.

use super::{Address, Kind, Object};
use crate::error::{Error, ErrorKind, Result};
use rustix::io::Errno;
use std::os::unix::fs::MetadataExt;

/// Removes the object `addr` names.
///
/// System V objects are removed with `IPC_RMID` (a shared-memory segment still attached
/// somewhere lives on, marked, until its last detach); POSIX objects are unlinked (processes
/// that have them open keep them until they close them). A memfd has no name to remove and is
/// refused.
///
/// # Errors
/// [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`] if this user may not remove it,
/// [`ErrorKind::InvalidArgument`] for a memfd; on macOS [`ErrorKind::Unsupported`] for System V
/// queues and POSIX semaphores and queues.
pub fn remove(addr: &Address) -> Result<()> {
    let fail = |op: &'static str| move |e: Errno| removal_error(addr, op, e);
    if let Some(name) = addr.posix_name() {
        use std::os::unix::ffi::OsStrExt;
        if name.as_bytes().contains(&0) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                "remove",
                addr.to_string(),
                "the name contains a NUL byte",
            ));
        }
    }
    match addr {
        Address::PosixShm(name) => crate::posix::unlink_os(name).map_err(fail("shm_unlink")),
        Address::SysvShmId(id) => crate::sysv::shm::remove_id(*id),
        Address::SysvShmKey(k) => {
            crate::sysv::shm::remove_id(crate::sysv::shm::id_of_key(*k).map_err(fail("shmget"))?)
        }
        Address::SysvSem(id) => crate::sysv::sem::rmid(*id).map_err(fail("semctl(IPC_RMID)")),
        #[cfg(target_os = "linux")]
        Address::SysvMsg(id) => crate::sysv::msg::rmid(*id).map_err(fail("msgctl(IPC_RMID)")),
        #[cfg(target_os = "linux")]
        Address::PosixSem(name) => crate::posix_sem::unlink_os(name).map_err(fail("sem_unlink")),
        #[cfg(target_os = "linux")]
        Address::PosixMq(name) => crate::posix_mq::unlink_os(name).map_err(fail("mq_unlink")),
        #[cfg(not(target_os = "linux"))]
        Address::SysvMsg(_) | Address::PosixSem(_) | Address::PosixMq(_) => Err(Error::new(
            ErrorKind::Unsupported,
            "remove",
            addr.to_string(),
            format!(
                "shmkit handles {} objects on Linux only so far",
                addr.kind()
            ),
        )),
        Address::Memfd { .. } | Address::MemfdMap { .. } => Err(no_name(addr)),
    }
}

fn no_name(addr: &Address) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        "remove",
        addr.to_string(),
        format!("a {} has no name to remove", Kind::Memfd),
    )
    .with_hint("it disappears when every process holding it closes it; stop or signal its holders")
}

fn removal_error(addr: &Address, op: &'static str, e: Errno) -> Error {
    let err = Error::os(op, addr.to_string(), e);
    match e {
        Errno::PERM | Errno::ACCESS => match addr.kind() {
            Kind::PosixShm | Kind::PosixSem | Kind::PosixMq => err.with_hint(sticky_hint(addr)),
            _ => err.with_hint("only the object's owner, its creator or root may remove it"),
        },
        Errno::NOENT | Errno::INVAL | Errno::IDRM => err
            .with_kind(ErrorKind::NotFound)
            .with_hint("it does not exist (any more)"),
        _ => err,
    }
}

/// The directory a POSIX object's name lives in, with its mode and owner.
fn posix_dir(kind: Kind) -> (String, u32, u32) {
    let dir = match kind {
        Kind::PosixMq => crate::platform::inventory::mqueue_dir(),
        _ => crate::platform::POSIX_SHM_DIR.map(str::to_string),
    };
    match dir.and_then(|d| std::fs::metadata(&d).ok().map(|m| (d, m))) {
        Some((d, m)) => (d, m.mode() & 0o7777, m.uid()),
        // The kernel's own mqueue mount, when none is visible: root-owned, mode 1777.
        None => ("the mqueue file system".into(), 0o1777, 0),
    }
}

fn sticky_hint(addr: &Address) -> String {
    let (dir, mode, _) = posix_dir(addr.kind());
    if mode & 0o1000 != 0 {
        sticky(&dir, mode)
    } else {
        write_needed(&dir, mode)
    }
}

fn sticky(dir: &str, mode: u32) -> String {
    format!(
        "{dir} is sticky (mode {mode:04o}): only the object's owner or root may remove it, \
         whatever the object's own mode"
    )
}

fn write_needed(dir: &str, mode: u32) -> String {
    format!("removing needs write permission on {dir} (mode {mode:04o})")
}

/// Whether this process may remove `o`, by the rules the kernel applies, without trying.
///
/// System V (`IPC_RMID`): the owner, the creator, or a process with `CAP_SYS_ADMIN`. POSIX
/// (unlink in `/dev/shm` or the mqueue file system): write and search permission on the
/// directory, and, as the directory is sticky, being the object's or the directory's owner,
/// or `CAP_FOWNER`. Root is taken to have the capabilities. The error is the one the removal
/// itself would give.
///
/// # Errors
/// [`ErrorKind::PermissionDenied`] (`EPERM`, or `EACCES` without write permission on the
/// directory), [`ErrorKind::InvalidArgument`] for a memfd.
///
/// ```
/// use shmkit::inventory::{self, Address};
/// let seg = shmkit::SysvShm::create(shmkit::SysvKey::Private, 4096)?;
/// let o = inventory::find(&Address::SysvShmId(seg.id()), false)?;
/// inventory::check_removable(&o)?; // our own segment
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn check_removable(o: &Object) -> Result<()> {
    let euid = rustix::process::geteuid();
    let me = euid.as_raw();
    let denied = |op: &'static str, hint: String| {
        Err(Error::os(op, o.address.to_string(), Errno::PERM).with_hint(hint))
    };
    // A channel is removed as the object it lives in (`shm_unlink` of its segment).
    match o.backing_kind() {
        Kind::Memfd => Err(no_name(&o.address)),
        _ if euid.is_root() => Ok(()),
        Kind::SysvShm | Kind::SysvSem | Kind::SysvMsg => {
            if me == o.uid || Some(me) == o.creator_uid {
                Ok(())
            } else {
                denied(
                    "IPC_RMID",
                    format!(
                        "only its owner (uid {}), its creator (uid {}) or root may remove it; \
                         this process is uid {me}",
                        o.uid,
                        o.creator_uid.map_or("?".into(), |u| u.to_string())
                    ),
                )
            }
        }
        // A backing kind is never Channel; were it, it would be the POSIX segment that
        // channels live in.
        kind @ (Kind::PosixShm | Kind::PosixSem | Kind::PosixMq | Kind::Channel) => {
            let op = match kind {
                Kind::PosixSem => "sem_unlink",
                Kind::PosixMq => "mq_unlink",
                _ => "shm_unlink",
            };
            let (dir, mode, dir_uid) = posix_dir(kind);
            let writable = if std::path::Path::new(&dir).is_absolute() {
                rustix::fs::access(
                    dir.as_str(),
                    rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
                )
                .is_ok()
            } else {
                mode & 0o003 == 0o003
            };
            if !writable {
                return Err(Error::os(op, o.address.to_string(), Errno::ACCESS)
                    .with_hint(write_needed(&dir, mode)));
            }
            if mode & 0o1000 != 0 && me != o.uid && me != dir_uid {
                return denied(
                    op,
                    format!(
                        "{}; the owner is uid {}, this process uid {me}",
                        sticky(&dir, mode),
                        o.uid
                    ),
                );
            }
            Ok(())
        }
    }
}
