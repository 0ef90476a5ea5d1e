//! One bare fd over a Unix socket (`SCM_RIGHTS`, `unix(7)`), with no header: the layer
//! under [`Handle`](super::Handle)s, and what a peer written in C speaks. The examples use a
//! memfd, so they run on Linux; the calls work on macOS too.

use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, SendAncillaryBuffer, SendAncillaryMessage,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;

/// `sendmsg(2)` with `SCM_RIGHTS`: sends `fd` with the bytes `payload` (at least one byte: a
/// stream socket cannot carry ancillary data alone).
///
/// A peer that closed its end makes this fail with `EPIPE`; on Linux no `SIGPIPE` is raised
/// (`MSG_NOSIGNAL`), on macOS the socket gets `SO_NOSIGPIPE`.
///
/// # Errors
/// The socket's errors, and [`ErrorKind::InvalidArgument`] for an empty payload.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use std::os::unix::net::UnixStream;
/// let (a, b) = UnixStream::pair().unwrap();
/// let m = shmkit::Memfd::create("doc-pass", 4096)?;
/// m.write_at(0, b"passed")?;
/// shmkit::handle::send_fd(&a, m.fd(), b"x")?;
/// let mut buf = [0u8; 1];
/// let (fd, n) = shmkit::handle::recv_fd(&b, &mut buf)?;
/// let got = shmkit::Memfd::from_fd(fd)?;
/// let mut out = [0u8; 6];
/// got.read_at(0, &mut out)?;
/// assert_eq!((&out, n), (b"passed", 1));
/// # }
/// # Ok::<(), shmkit::Error>(())
/// ```
#[doc(alias = "sendmsg")]
#[doc(alias = "SCM_RIGHTS")]
pub fn send_fd(socket: impl AsFd, fd: BorrowedFd<'_>, payload: &[u8]) -> Result<()> {
    if payload.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "sendmsg",
            "unix socket",
            "the payload must have at least one byte",
        ));
    }
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "sendmsg",
            "unix socket",
            "control buffer too small",
        ));
    }
    platform::before_send(socket.as_fd());
    let mut sent = 0;
    // The fd travels with the first byte; the rest of the payload follows without it.
    while sent < payload.len() {
        let n = rustix::net::sendmsg(
            &socket,
            &[IoSlice::new(&payload[sent..])],
            &mut control,
            platform::SEND_NOSIGNAL,
        )
        .map_err(|e| Error::os("sendmsg", "unix socket", e))?;
        control = SendAncillaryBuffer::default();
        sent += n;
    }
    Ok(())
}

/// `recvmsg(2)` with `SCM_RIGHTS`: receives one fd, close-on-exec, and up to `buf.len()`
/// payload bytes; returns the fd and how many bytes arrived.
///
/// On Linux the fd is close-on-exec from the moment it exists (`MSG_CMSG_CLOEXEC`); macOS has
/// no such flag, so there it is made close-on-exec right after `recvmsg` returns, and a thread
/// that runs `exec` in between would pass it on.
///
/// # Errors
/// The socket's errors, and [`ErrorKind::InvalidArgument`] when a message or the end of the
/// stream arrives without an fd.
#[doc(alias = "recvmsg")]
#[doc(alias = "SCM_RIGHTS")]
pub fn recv_fd(socket: impl AsFd, buf: &mut [u8]) -> Result<(OwnedFd, usize)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &socket,
        &mut [IoSliceMut::new(buf)],
        &mut control,
        platform::RECV_CLOEXEC,
    )
    .map_err(|e| Error::os("recvmsg", "unix socket", e))?;
    let mut received = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            // Keep the first; any extra fds are closed as the iterator drops them.
            for fd in fds {
                received.get_or_insert(fd);
            }
        }
    }
    match received {
        Some(fd) => {
            platform::received_fd(fd.as_fd());
            Ok((fd, msg.bytes))
        }
        None if msg.bytes == 0 => Err(Error::new(
            ErrorKind::InvalidArgument,
            "recvmsg",
            "unix socket",
            "the peer closed the connection without sending an fd",
        )),
        None => Err(Error::new(
            ErrorKind::InvalidArgument,
            "recvmsg",
            "unix socket",
            "a message arrived without an fd",
        )),
    }
}
