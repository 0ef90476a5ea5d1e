//! A name service for handles: a process registers a name with
//! [`Handle`](crate::handle::Handle)s, an unrelated process looks the name up and gets the
//! handles. One client API on both systems ([`Client::connect_default`], `register`,
//! `lookup`, `wait_for`, `unregister`, `list`, `reconnect`, with [`Entry`], [`Info`] and
//! [`RegisterOptions`]); what serves the names differs.
//!
//! **Linux**: the names live in a [`Server`] (`shmkit registry`) on a Unix socket that only
//! its user can reach (the directory is mode 0700), and the handles are file descriptors,
//! checked against the kernel on receipt.
//!
//! - Access: clients of the registry's own uid are admitted; others only by a [`Rule`] of
//!   its [`Policy`] (uids or gids, per name prefix). Root is not special.
//! - Lifetimes: a name goes when the process that registered it closes its connection (it
//!   exits, or is killed), unless registered persistent; a name is re-registered only by the
//!   same user, from the same connection or after its process is gone. A registry that stops
//!   starts empty again; [`Client::reconnect`] registers a client's names again.
//! - Bounds ([`Bounds`]): names, connections, handles per name, frame size, and the time a
//!   client may take to finish a frame. A client that sends garbage, a truncated or oversize
//!   frame or fds where none belong gets its connection closed; the others are served on.
//!
//! The wire format is in `protocol.rs`, on top of the handle messages of [`crate::handle`].
//! Only Linux has `Client::connect(path)`, the free [`wait_for`] and the server side.
//!
//! **macOS**: the bootstrap server (launchd) is the registry, and the handles are Mach send
//! rights ([`crate::mach::Handle`]). A name is checked in by the registering process, which
//! answers look-ups of this user's processes; the kernel's audit token tells a looker who
//! answered, and one of another user is refused. A name goes with its process, or when
//! unregistered by it: persistent names are absent there (`Unsupported`), and only the
//! registering process unregisters a name. Bootstrap cannot list names, so registrations
//! leave markers in the user's temporary directory, which `list` reads.
//!
//! ```
//! # #[cfg(target_os = "linux")]
//! # fn main() -> shmkit::Result<()> {
//! use shmkit::handle::Handle;
//! use shmkit::registry::{Client, RegisterOptions, Server};
//! let dir = std::env::temp_dir().join(format!("shmkit-doc-reg-{}", std::process::id()));
//! let sock = dir.join("registry.sock");
//! # let _ = std::fs::remove_dir_all(&dir);
//! std::fs::create_dir(&dir).unwrap();
//! let server = Server::bind(&sock)?;
//! std::thread::spawn(move || server.run(|_| {}));
//!
//! let mut m = shmkit::Memfd::create("doc-registry", 4096)?;
//! m.write_at(0, b"registered")?;
//! let mut reg = Client::connect(&sock)?;
//! reg.register("doc/frames", &[&Handle::memfd_read_only(&mut m)?], RegisterOptions::default())?;
//!
//! let mut other = Client::connect(&sock)?;
//! let entry = other.lookup("doc/frames")?;
//! assert_eq!(entry.info.pid, std::process::id() as i32);
//! let seg = entry.handles.into_iter().next().unwrap().into_memfd()?;
//! let mut buf = [0u8; 10];
//! seg.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"registered");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok(())
//! # }
//! # #[cfg(target_os = "macos")]
//! # fn main() -> shmkit::Result<()> {
//! use shmkit::handle::Handle;
//! use shmkit::mach::MachMemory;
//! use shmkit::registry::{Client, RegisterOptions};
//! let name = format!("doc/frames/{}", std::process::id());
//! let m = MachMemory::new(4096)?;
//! m.write_at(0, b"registered")?;
//! let mut reg = Client::connect_default()?;
//! reg.register(&name, &[&Handle::memory_read_only(&m)?], RegisterOptions::default())?;
//!
//! let mut other = Client::connect_default()?;
//! let entry = other.lookup(&name)?;
//! assert_eq!(entry.info.pid, std::process::id() as i32);
//! let seg = entry.handles.into_iter().next().unwrap().into_mapped()?;
//! let mut buf = [0u8; 10];
//! seg.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"registered");
//! # Ok(())
//! # }
//! ```
#![cfg_attr(
    not(target_os = "macos"),
    doc = "[`crate::mach::Handle`]: crate::handle::Handle"
)]
#![cfg_attr(not(target_os = "linux"), doc = "[`Server`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`Rule`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`Policy`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`Bounds`]: self")]
#![cfg_attr(not(target_os = "linux"), doc = "[`wait_for`]: self")]

#[cfg(target_os = "macos")]
mod bootstrap;
#[cfg(target_os = "linux")]
mod client;
mod codec;
mod entry;
#[cfg(target_os = "macos")]
mod index;
#[cfg(target_os = "linux")]
mod policy;
#[cfg(target_os = "linux")]
mod protocol;
#[cfg(target_os = "linux")]
mod server;

#[cfg(target_os = "macos")]
pub use bootstrap::Client;
#[cfg(target_os = "linux")]
pub use client::{wait_for, Client};
pub use entry::{Entry, HandleInfo, Info, RegisterOptions, NAME_MAX};
#[cfg(target_os = "linux")]
pub use policy::{Policy, Rule};
#[cfg(target_os = "linux")]
pub use server::{Bounds, Server};

use crate::error::{Error, ErrorKind, Result};
use std::path::Path;
#[cfg(target_os = "linux")]
use std::path::PathBuf;

/// This user's registry socket (Linux): `$XDG_RUNTIME_DIR/shmkit/registry.sock`, or
/// `/tmp/shmkit-UID/registry.sock` where `XDG_RUNTIME_DIR` is not set (or is not absolute).
///
/// # Errors
/// None today; `Result` so that a lookup that can fail (a missing home) can be added.
#[cfg(target_os = "linux")]
pub fn default_socket() -> Result<PathBuf> {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d.join("shmkit"),
        _ => PathBuf::from(format!(
            "/tmp/shmkit-{}",
            rustix::process::geteuid().as_raw()
        )),
    };
    Ok(dir.join("registry.sock"))
}

/// Makes `dir` (mode 0700) if missing; refuses an existing one that is not this user's (or
/// root's) or that others may write, since whoever may write it can replace the socket.
/// (Others may enter a directory made for a shared registry: the socket's mode and the
/// policy decide who connects.)
///
/// `use_` names what the directory is for and what else the user can do, for the error:
/// [`DirUse::Socket`] or [`DirUse::Markers`].
///
/// Returns whether it made the directory.
pub(crate) fn prepare_dir(dir: &Path, use_: DirUse) -> Result<bool> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let shown = dir.display().to_string();
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("mkdir", &shown, &e))?;
        return Ok(true);
    }
    let m = std::fs::symlink_metadata(dir).map_err(|e| Error::io("stat", &shown, &e))?;
    let me = rustix::process::geteuid().as_raw();
    if !m.is_dir() || (m.uid() != me && m.uid() != 0) || m.mode() & 0o022 != 0 {
        let (op, what, or_else) = match use_ {
            DirUse::Socket => (
                "bind",
                "the socket's directory",
                "choose another socket path",
            ),
            DirUse::Markers => (
                "registry markers",
                "the directory of the registry's markers",
                "remove it (it holds only markers, made again as needed)",
            ),
        };
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            op,
            &shown,
            format!(
                "{what} must be a directory of uid {me} (or root) that no one else may write; it \
                 is {} mode {:04o} of uid {}",
                if m.is_dir() {
                    "a directory"
                } else {
                    "not a directory"
                },
                m.mode() & 0o7777,
                m.uid()
            ),
        )
        .with_hint(format!("chmod go-w {shown}, or {or_else}")));
    }
    Ok(false)
}

/// What a directory that [`prepare_dir`] checks is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirUse {
    /// A registry's socket (Linux).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Socket,
    /// The markers that `list` reads (macOS).
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    Markers,
}
