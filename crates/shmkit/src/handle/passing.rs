//! Sending and receiving handle messages ([`super::wire`]), and checking what arrives.

use super::cred::Credentials;
use super::wire::{self, Head, Record, HEAD, MAX_HANDLES, RECORD};
use super::Handle;
use crate::error::{Error, ErrorKind, Result};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use std::io::IoSlice;
use std::mem::MaybeUninit;

/// What a receiver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most handles in one message (at most [`MAX_HANDLES`]).
    pub handles: usize,
    /// Largest payload in bytes.
    pub payload: usize,
}

impl Default for Limits {
    /// [`MAX_HANDLES`] handles and 64 KiB of payload.
    fn default() -> Self {
        Limits {
            handles: MAX_HANDLES,
            payload: 64 << 10,
        }
    }
}

/// One message received.
#[derive(Debug)]
pub struct Received {
    /// The handles, in the order they were sent, each checked against the kernel.
    pub handles: Vec<Handle>,
    /// The payload.
    pub payload: Vec<u8>,
    /// Who sent it (`SCM_CREDENTIALS`), when the receiving socket passes credentials
    /// ([`pass_credentials`](super::pass_credentials)); the pid is 0 for a sender in a pid
    /// namespace the receiver cannot see.
    pub sender: Option<Credentials>,
}

fn bad(detail: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        "recvmsg",
        "handle message",
        detail,
    )
}

/// Sends `handles` and `payload` as one message (`sendmsg(2)` with `SCM_RIGHTS`).
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for more than [`MAX_HANDLES`] handles or a payload over 4
/// GiB; the socket's errors (`EPIPE` when the peer is gone: no `SIGPIPE` is raised).
#[doc(alias = "sendmsg")]
#[doc(alias = "SCM_RIGHTS")]
pub fn send(socket: impl AsFd, handles: &[&Handle], payload: &[u8]) -> Result<()> {
    if handles.len() > MAX_HANDLES || u32::try_from(payload.len()).is_err() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "sendmsg",
            "handle message",
            format!(
                "{} handles and {} bytes: at most {MAX_HANDLES} handles and 4 GiB",
                handles.len(),
                payload.len()
            ),
        ));
    }
    // What the objects are now, not what they were when the handles were made: a memfd may
    // have grown or been sealed since, and the receiver checks against the kernel.
    let records = handles
        .iter()
        .map(|h| {
            let (size, access, seals) = super::value::facts(h.kind, h.fd.as_fd())?;
            Ok(Record {
                kind: h.kind,
                access,
                seals,
                size,
            })
        })
        .collect::<Result<Vec<Record>>>()?;
    let bytes = wire::encode(&records, payload);
    let fds: Vec<_> = handles.iter().map(|h| h.fd.as_fd()).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_HANDLES))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "sendmsg",
            "handle message",
            "control buffer too small",
        ));
    }
    let mut sent = 0;
    // The fds travel with the first byte; the rest follows without them.
    while sent < bytes.len() {
        match rustix::net::sendmsg(
            &socket,
            &[IoSlice::new(&bytes[sent..])],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => {
                sent += n;
                control = SendAncillaryBuffer::default();
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::os("sendmsg", "handle message", e)),
        }
    }
    Ok(())
}

/// Receives one message with the default [`Limits`]: see [`recv_with`].
///
/// # Errors
/// As [`recv_with`].
pub fn recv(socket: impl AsFd) -> Result<Received> {
    recv_with(socket, Limits::default())
}

/// Receives one message (`recvmsg(2)`), blocking until it is whole, and checks every handle
/// against the kernel: the kind of file, the size (`fstat`), the access mode (`F_GETFL`) and
/// the seals (`F_GET_SEALS`) must be what the record says.
///
/// Reads exactly one message, never into the next. Every fd received is closed when it
/// returns an error.
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a message that is not well formed (magic, version),
/// that exceeds `limits`, whose control data was truncated (`MSG_CTRUNC`: more fds than
/// fit), that carries more or fewer fds than records or fds after its first bytes, or whose
/// handle records lie; `ECONNRESET` when the peer closed the connection (before any byte:
/// cleanly; within a message: in the middle); the socket's errors.
#[doc(alias = "recvmsg")]
pub fn recv_with(socket: impl AsFd, limits: Limits) -> Result<Received> {
    let mut reader = Reader::new(limits);
    loop {
        match reader.read_from(socket.as_fd())? {
            Step::More => continue,
            Step::WouldBlock => {
                return Err(Error::os("recvmsg", "handle message", Errno::AGAIN)
                    .with_kind(ErrorKind::TimedOut)
                    .with_hint("nothing arrived within the socket's receive timeout"))
            }
            Step::Done(r) => return Ok(r),
            Step::Closed => {
                let detail = if reader.started() {
                    "the peer closed the connection in the middle of a message"
                } else {
                    "the peer closed the connection"
                };
                return Err(Error::os("recvmsg", "handle message", Errno::CONNRESET)
                    .with_kind(ErrorKind::Os)
                    .with_hint(detail));
            }
        }
    }
}

/// What one read did.
#[derive(Debug)]
pub(crate) enum Step {
    /// More bytes are needed.
    More,
    /// Nothing to read now: a non-blocking socket would block, or a blocking one's receive
    /// timeout (`SO_RCVTIMEO`) ran out.
    WouldBlock,
    /// A whole message.
    Done(Received),
    /// The peer closed the connection (`recvmsg` returned 0).
    Closed,
}

/// A message being assembled from reads that take exactly what it still lacks, so that a
/// reader never consumes bytes or fds of the next message. Blocking and non-blocking sockets
/// alike (a non-blocking read that would block is [`Step::More`]).
#[derive(Debug)]
pub(crate) struct Reader {
    limits: Limits,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
    head: Option<Head>,
    sender: Option<Credentials>,
}

impl Reader {
    pub(crate) fn new(limits: Limits) -> Self {
        Reader {
            limits: Limits {
                handles: limits.handles.min(MAX_HANDLES),
                payload: limits.payload,
            },
            buf: Vec::new(),
            fds: Vec::new(),
            head: None,
            sender: None,
        }
    }

    /// Whether part of a message has arrived.
    pub(crate) fn started(&self) -> bool {
        !self.buf.is_empty()
    }

    /// How many bytes of the current message have arrived.
    pub(crate) fn received(&self) -> usize {
        self.buf.len()
    }

    fn wanted(&self) -> usize {
        match self.head {
            None => HEAD - self.buf.len(),
            Some(h) => HEAD + RECORD * h.count + h.payload - self.buf.len(),
        }
    }

    /// One `recvmsg` of what the message still lacks.
    pub(crate) fn read_from(&mut self, socket: rustix::fd::BorrowedFd<'_>) -> Result<Step> {
        let want = self.wanted();
        let start = self.buf.len();
        self.buf.resize(start + want, 0);
        let r = recv_raw(socket, &mut self.buf[start..]);
        let msg = match r {
            Ok(m) => m,
            Err(Errno::INTR) => {
                self.buf.truncate(start);
                return Ok(Step::More);
            }
            Err(Errno::AGAIN) => {
                self.buf.truncate(start);
                return Ok(Step::WouldBlock);
            }
            Err(e) => return Err(Error::os("recvmsg", "handle message", e)),
        };
        // The fds are owned from here on: they close if anything below fails.
        let fds = msg.fds;
        self.buf.truncate(start + msg.bytes);
        if msg.ctrunc {
            return Err(bad(format!(
                "the control data was truncated (MSG_CTRUNC): more fds were sent than the {} \
                 a message may carry, or this process is out of fds (RLIMIT_NOFILE)",
                MAX_HANDLES
            )));
        }
        if msg.bytes == 0 {
            return Ok(Step::Closed);
        }
        if !fds.is_empty() && start != 0 {
            return Err(bad("fds arrived after the first bytes of a message"));
        }
        if start == 0 {
            self.sender = msg.sender;
        }
        self.fds.extend(fds);
        self.advance()
    }

    fn advance(&mut self) -> Result<Step> {
        if self.head.is_none() && self.buf.len() == HEAD {
            let head = wire::head(
                self.buf[..HEAD].try_into().expect("HEAD bytes"),
                self.limits.payload,
            )
            .map_err(bad)?;
            if head.count > self.limits.handles {
                return Err(bad(format!(
                    "{} handles, more than the {} this receiver takes",
                    head.count, self.limits.handles
                )));
            }
            if self.fds.len() != head.count {
                return Err(bad(format!(
                    "the message says {} handles and carries {} fds",
                    head.count,
                    self.fds.len()
                )));
            }
            self.head = Some(head);
        }
        if self.head.is_none() || self.wanted() > 0 {
            return Ok(Step::More);
        }
        let head = self.head.take().expect("checked");
        let buf = std::mem::take(&mut self.buf);
        let fds = std::mem::take(&mut self.fds);
        let mut handles = Vec::with_capacity(head.count);
        for (i, fd) in fds.into_iter().enumerate() {
            let at = HEAD + RECORD * i;
            let r = wire::record(&buf[at..at + RECORD]).map_err(bad)?;
            let h = Handle {
                kind: r.kind,
                fd,
                size: r.size,
                access: r.access,
                seals: r.seals,
            };
            h.verify()
                .map_err(|why| bad(format!("handle {i} ({}): {why}", r.kind)))?;
            handles.push(h);
        }
        Ok(Step::Done(Received {
            handles,
            payload: buf[HEAD + RECORD * head.count..].to_vec(),
            sender: self.sender.take(),
        }))
    }
}

/// What one `recvmsg` brought.
struct Raw {
    bytes: usize,
    fds: Vec<OwnedFd>,
    sender: Option<Credentials>,
    ctrunc: bool,
}

/// `recvmsg(2)` with room for [`MAX_HANDLES`] fds and one `SCM_CREDENTIALS`, every fd
/// received close-on-exec and owned at once.
///
/// Written with libc, not rustix: rustix parses `SCM_CREDENTIALS` into a type whose pid cannot
/// be 0, and the kernel puts 0 there for a sender of another pid namespace.
fn recv_raw(socket: rustix::fd::BorrowedFd<'_>, buf: &mut [u8]) -> std::result::Result<Raw, Errno> {
    use rustix::fd::{AsRawFd, FromRawFd};
    let fd_bytes = (MAX_HANDLES * std::mem::size_of::<libc::c_int>()) as libc::c_uint;
    let cred_bytes = std::mem::size_of::<libc::ucred>() as libc::c_uint;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes) + libc::CMSG_SPACE(cred_bytes) } as usize;
    // u64s, so that the buffer has the alignment of a cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = (control.len() * 8) as _;
    // SAFETY: a valid msghdr whose iovec and control buffer are ours and writable.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(crate::platform::errno());
    }
    let mut out = Raw {
        bytes: n as usize,
        fds: Vec::new(),
        sender: None,
        ctrunc: msg.msg_flags & libc::MSG_CTRUNC != 0,
    };
    // SAFETY: the kernel filled `msg_controllen` bytes of our control buffer with well-formed
    // cmsghdrs; CMSG_FIRSTHDR/NXTHDR stay inside it, and the data of each is read unaligned,
    // within its cmsg_len.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    let n = len / std::mem::size_of::<libc::c_int>();
                    for i in 0..n {
                        let raw: libc::c_int =
                            std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                        // Each is a new fd the kernel installed for us.
                        out.fds.push(OwnedFd::from_raw_fd(raw));
                    }
                }
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) if len >= cred_bytes as usize => {
                    let u: libc::ucred = std::ptr::read_unaligned(data.cast());
                    out.sender = Some(Credentials {
                        pid: u.pid,
                        uid: u.uid,
                        gid: u.gid,
                    });
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(out)
}
