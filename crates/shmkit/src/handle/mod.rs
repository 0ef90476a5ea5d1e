//! Handles: what one process gives another over a Unix socket so that both reach the same
//! object, with no name in any global namespace.
//!
//! A [`Handle`] is a file descriptor with a typed description: a memfd or a POSIX shared
//! memory segment, an [`EventFd`] (a wake-up that `poll` and `epoll` see, which a futex is
//! not), or a [`PidFd`] (to learn that a peer died). [`send`] puts several handles and a
//! payload in one message; [`recv`] checks each handle it got against the kernel (`fstat`
//! size, `F_GETFL` access mode, `F_GET_SEALS`, the kind of file) and refuses a message whose
//! header lies, whose control data was truncated (`MSG_CTRUNC`), or that carries more or fewer
//! fds than it says; every fd received is closed on every error path.
//!
//! [`Handle::memfd_read_only`] makes a handle that can only ever be mapped read-only, whatever
//! the receiver does: the memfd is sealed with `F_SEAL_FUTURE_WRITE`, so the kernel refuses
//! writes and writable shared mappings through every fd, also one reopened `O_RDWR` through
//! `/proc/self/fd`, while the creator keeps writing through the mapping it already has.
//!
//! [`peer_credentials`] says who is at the other end of a connection (`SO_PEERCRED`);
//! [`Received::sender`] who sent one message (`SCM_CREDENTIALS`, after
//! [`pass_credentials`]). Both are read with libc: rustix's credential type cannot hold the
//! pid 0 that the kernel reports for a process of another pid namespace.
//!
//! Linux only, except [`send_fd`] and [`recv_fd`] (one bare fd), which work on macOS too,
//! and [`Kind`], [`Access`] and [`MAX_HANDLES`]. On macOS, `Handle` is
//! [`crate::mach::Handle`] (a send right: a memory entry, a semaphore or a port, with the same
//! `kind`, `size`, `access` and `try_clone`), so that [`crate::registry`] has one API there
//! too; it travels in Mach messages, not over sockets.
//!
//! ```
//! use shmkit::handle::{self, EventFd, Handle};
//! use std::os::unix::net::UnixStream;
//! let (a, b) = UnixStream::pair().unwrap();
//! let mut m = shmkit::Memfd::create("doc-handle", 4096)?;
//! m.write_at(0, b"for your eyes only")?;
//! let wake = EventFd::new()?;
//! handle::send(&a, &[&Handle::memfd_read_only(&mut m)?, &Handle::eventfd(&wake)?], b"hi")?;
//!
//! let got = handle::recv(&b)?;
//! assert_eq!(got.payload, b"hi");
//! let mut it = got.handles.into_iter();
//! let seg = it.next().unwrap().into_memfd()?;
//! assert!(!seg.is_writable());
//! let mut text = [0u8; 18];
//! seg.read_at(0, &mut text)?;
//! assert_eq!(&text, b"for your eyes only");
//! let their_wake = it.next().unwrap().into_eventfd()?;
//! their_wake.signal()?;
//! assert_eq!(wake.wait_timeout(std::time::Duration::from_secs(1))?, Some(1));
//! # Ok::<(), shmkit::Error>(())
//! ```
#![cfg_attr(not(target_os = "macos"), doc = "[`crate::mach::Handle`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`EventFd`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`PidFd`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`send`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`recv`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`Handle::memfd_read_only`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`peer_credentials`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`Received::sender`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`pass_credentials`]: self")]

mod fd;
mod kind;
pub use fd::{recv_fd, send_fd};
pub use kind::{Access, Kind};

#[cfg(target_os = "linux")]
mod cred;
#[cfg(target_os = "linux")]
mod eventfd;
#[cfg(target_os = "linux")]
pub(crate) mod passing;
#[cfg(target_os = "linux")]
mod pidfd;
#[cfg(target_os = "linux")]
mod probe;
#[cfg(target_os = "linux")]
mod wire;

#[cfg(target_os = "linux")]
pub use cred::{pass_credentials, peer_credentials, peer_groups, Credentials};
#[cfg(target_os = "linux")]
pub use eventfd::EventFd;
#[cfg(target_os = "linux")]
pub use passing::{recv, recv_with, send, Limits, Received};
#[cfg(target_os = "linux")]
pub use pidfd::PidFd;
#[cfg(target_os = "linux")]
pub use probe::{write_attempts, Attempt};
#[cfg(target_os = "linux")]
pub use wire::MAX_HANDLES;

#[cfg(target_os = "linux")]
mod value;
#[cfg(target_os = "linux")]
pub use value::Handle;

/// On macOS a handle is a send right: [`crate::mach::Handle`].
#[cfg(target_os = "macos")]
pub use crate::mach::Handle;
/// The most handles one message carries (and one registered name holds).
#[cfg(target_os = "macos")]
pub const MAX_HANDLES: usize = crate::mach::MAX_HANDLES;
