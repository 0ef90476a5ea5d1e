//! Who is at the other end of a Unix socket.

use crate::error::{Error, Result};
use rustix::fd::{AsFd, AsRawFd};

/// A process's credentials as the kernel vouches for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Its pid in the receiver's pid namespace; 0 for a process of another pid namespace that
    /// this one cannot see.
    pub pid: i32,
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
}

/// `SO_PEERCRED`: who connected this socket (or made the pair), as of `connect(2)`.
///
/// (Read with libc rather than rustix, whose credential type cannot hold the pid 0 that the
/// kernel reports for a peer in another pid namespace.)
///
/// # Errors
/// The OS error of `getsockopt` (`ENOTCONN`, `ENOTSOCK`).
#[doc(alias = "SO_PEERCRED")]
pub fn peer_credentials(socket: impl AsFd) -> Result<Credentials> {
    let mut c = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED writes a `struct ucred` of `len` bytes into `c`.
    let r = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(Error::os(
            "getsockopt(SO_PEERCRED)",
            "unix socket",
            crate::platform::errno(),
        ));
    }
    Ok(Credentials {
        pid: c.pid,
        uid: c.uid,
        gid: c.gid,
    })
}

/// `SO_PASSCRED`: from now on every message received on `socket` carries its sender's
/// credentials (`SCM_CREDENTIALS`, in [`Received::sender`](super::Received::sender)): who sent
/// one message, where a connection may be shared (a socket passed on to another process).
///
/// # Errors
/// The OS error of `setsockopt`.
#[doc(alias = "SO_PASSCRED")]
#[doc(alias = "SCM_CREDENTIALS")]
pub fn pass_credentials(socket: impl AsFd) -> Result<()> {
    rustix::net::sockopt::set_socket_passcred(socket, true)
        .map_err(|e| Error::os("setsockopt(SO_PASSCRED)", "unix socket", e))
}

/// `SO_PEERGROUPS` from `<asm-generic/socket.h>`: libc does not bind it. (SPARC, PA-RISC and
/// Alpha number it otherwise; shmkit does not build for them.)
const SO_PEERGROUPS: libc::c_int = 59;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
compile_error!("SO_PEERGROUPS is 0x3d on SPARC");

/// `SO_PEERGROUPS` (Linux 4.13): the supplementary groups of whoever connected this socket,
/// as of `connect(2)` (`SO_PEERCRED` gives only the primary group).
///
/// # Errors
/// The OS error of `getsockopt` (`ENODATA` for a socket whose peer left no credentials,
/// `ENOPROTOOPT` before Linux 4.13).
#[doc(alias = "SO_PEERGROUPS")]
pub fn peer_groups(socket: impl AsFd) -> Result<Vec<u32>> {
    // NGROUPS_MAX is 65,536: start small, grow to what the kernel says it needs (ERANGE sets
    // `len` to the size needed).
    let mut groups: Vec<u32> = vec![0; 64];
    loop {
        let mut len = (groups.len() * 4) as libc::socklen_t;
        // SAFETY: SO_PEERGROUPS writes at most `len` bytes of gid_t (u32) into `groups`, and
        // sets `len` to the bytes written (or needed, with ERANGE).
        let r = unsafe {
            libc::getsockopt(
                socket.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / 4;
        if r == 0 {
            groups.truncate(n.min(groups.len()));
            return Ok(groups);
        }
        let e = crate::platform::errno();
        if e == rustix::io::Errno::RANGE && n > groups.len() && n <= 65_536 {
            groups.resize(n, 0);
            continue;
        }
        return Err(Error::os("getsockopt(SO_PEERGROUPS)", "unix socket", e));
    }
}
