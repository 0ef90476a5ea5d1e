//! Removing an IPC object by address, like `ipcrm` for every kind.

use super::{Address, Kind};
use crate::error::{Error, ErrorKind, Result};
use crate::sysv::last_errno;
use std::ffi::CString;

/// Removes the object `addr` names.
///
/// System V objects are removed with `IPC_RMID` (a shared-memory segment still attached
/// somewhere lives on, marked, until its last detach); POSIX objects are unlinked (processes
/// that have them open keep them until they close them). A memfd has no name to remove and is
/// refused.
pub fn remove(addr: &Address) -> Result<()> {
    let obj = addr.to_string();
    let check = |r: libc::c_int, op: &'static str| {
        if r < 0 {
            let e = last_errno();
            let err = Error::os(op, &obj, e);
            Err(match e {
                rustix::io::Errno::PERM | rustix::io::Errno::ACCESS => {
                    err.with_hint("only the object's owner, its creator or root may remove it")
                }
                rustix::io::Errno::NOENT | rustix::io::Errno::INVAL | rustix::io::Errno::IDRM => {
                    err.with_hint("it does not exist (any more)")
                }
                _ => err,
            })
        } else {
            Ok(())
        }
    };
    let cname = |n: &str| {
        CString::new(n).map_err(|_| {
            Error::new(
                ErrorKind::InvalidName,
                "remove",
                &obj,
                "the name contains a NUL byte",
            )
        })
    };
    match addr {
        Address::PosixShm(name) => crate::PosixShm::unlink_name(name),
        Address::SysvShmId(id) => crate::sysv::remove_id(*id),
        Address::SysvShmKey(k) => {
            // SAFETY: shmget takes plain integers.
            let id = unsafe { libc::shmget(*k, 0, 0) };
            check(id, "shmget")?;
            crate::sysv::remove_id(id)
        }
        // SAFETY: IPC_RMID takes no argument beyond the id.
        Address::SysvSem(id) => check(
            unsafe { libc::semctl(*id, 0, libc::IPC_RMID) },
            "semctl(IPC_RMID)",
        ),
        // SAFETY: IPC_RMID takes no buffer.
        Address::SysvMsg(id) => check(
            unsafe { libc::msgctl(*id, libc::IPC_RMID, std::ptr::null_mut()) },
            "msgctl(IPC_RMID)",
        ),
        Address::PosixSem(name) => {
            let c = cname(name)?;
            // SAFETY: a valid NUL-terminated name.
            check(unsafe { libc::sem_unlink(c.as_ptr()) }, "sem_unlink")
        }
        Address::PosixMq(name) => {
            let c = cname(name)?;
            // SAFETY: a valid NUL-terminated name.
            check(unsafe { libc::mq_unlink(c.as_ptr()) }, "mq_unlink")
        }
        Address::Memfd { .. } | Address::MemfdMap { .. } => Err(Error::new(
            ErrorKind::InvalidArgument,
            "remove",
            &obj,
            format!("a {} has no name to remove", Kind::Memfd),
        )
        .with_hint(
            "it disappears when every process holding it closes it; stop or signal its holders",
        )),
    }
}
