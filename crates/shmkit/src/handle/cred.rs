//! Who is at the other end of a Unix socket.

use crate::error::{Error, Result};
use rustix::fd::AsFd;

/// A process's credentials as the kernel vouches for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// Its pid (in the receiver's pid namespace).
    pub pid: i32,
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
}

/// `SO_PEERCRED`: who connected this socket (or made the pair), as of `connect(2)`.
///
/// # Errors
/// The OS error of `getsockopt` (`ENOTCONN`, `ENOTSOCK`).
#[doc(alias = "SO_PEERCRED")]
pub fn peer_credentials(socket: impl AsFd) -> Result<Credentials> {
    let c = rustix::net::sockopt::socket_peercred(socket)
        .map_err(|e| Error::os("getsockopt(SO_PEERCRED)", "unix socket", e))?;
    Ok(Credentials {
        pid: c.pid.as_raw_nonzero().get(),
        uid: c.uid.as_raw(),
        gid: c.gid.as_raw(),
    })
}

/// `SO_PASSCRED`: from now on every message received on `socket` carries its sender's
/// credentials (`SCM_CREDENTIALS`, in [`Received::sender`](super::Received::sender)), which
/// says who sent one message where a connection may be shared.
///
/// # Errors
/// The OS error of `setsockopt`.
#[doc(alias = "SO_PASSCRED")]
#[doc(alias = "SCM_CREDENTIALS")]
pub fn pass_credentials(socket: impl AsFd) -> Result<()> {
    rustix::net::sockopt::set_socket_passcred(socket, true)
        .map_err(|e| Error::os("setsockopt(SO_PASSCRED)", "unix socket", e))
}
