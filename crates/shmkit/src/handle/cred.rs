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
