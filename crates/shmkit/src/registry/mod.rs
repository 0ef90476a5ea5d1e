//! A name service for handles, the Linux counterpart of the Mach bootstrap server: a process
//! registers a name with [`Handle`](crate::handle::Handle)s (a memfd, an eventfd, ...), an
//! unrelated process looks the name up and gets the handles, checked against the kernel.
//! Nothing is in a global namespace: the names live in a [`Server`] on a Unix socket that only
//! its user can reach (the directory is mode 0700), and the handles are file descriptors.
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
//! Linux only.

mod client;
mod policy;
mod protocol;
mod server;

pub use client::{wait_for, Client, Entry, RegisterOptions};
pub use policy::{Policy, Rule};
pub use protocol::{HandleInfo, Info, NAME_MAX};
pub use server::{Bounds, Server};

use crate::error::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};

/// This user's registry socket: `$XDG_RUNTIME_DIR/shmkit/registry.sock`, or
/// `/tmp/shmkit-UID/registry.sock` where `XDG_RUNTIME_DIR` is not set (or is not absolute).
///
/// # Errors
/// None today; `Result` so that a lookup that can fail (a missing home) can be added.
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
/// Returns whether it made the directory.
pub(crate) fn prepare_dir(dir: &Path) -> Result<bool> {
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
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "bind",
            &shown,
            format!(
                "the socket's directory must be a directory of uid {me} (or root) that no one \
                 else may write; it is {} mode {:04o} of uid {}",
                if m.is_dir() {
                    "a directory"
                } else {
                    "not a directory"
                },
                m.mode() & 0o7777,
                m.uid()
            ),
        )
        .with_hint(format!("chmod go-w {shown}, or choose another socket path")));
    }
    Ok(false)
}
