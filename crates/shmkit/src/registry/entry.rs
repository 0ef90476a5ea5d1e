//! What a registered name is, on both systems: its rules ([`NAME_MAX`], [`check_name`]), what
//! the registry tells of it ([`Info`], [`HandleInfo`]), what a look-up returns ([`Entry`]) and
//! how it is registered ([`RegisterOptions`]).

use crate::error::{Error, ErrorKind, Result};
use crate::handle::Handle;

/// Longest name, in bytes.
pub const NAME_MAX: usize = 255;

/// Whether `name` may be registered: 1 to [`NAME_MAX`] bytes, no control characters.
pub(crate) fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(format!(
            "a name has 1 to {NAME_MAX} bytes; this one has {}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a name has no control characters".into());
    }
    Ok(())
}

/// [`check_name`] as an error of `op`.
pub(crate) fn valid(name: &str, op: &'static str) -> Result<()> {
    check_name(name).map_err(|why| Error::new(ErrorKind::InvalidArgument, op, name, why))
}

/// A name as [`Client::lookup`](super::Client::lookup) returns it: what the registry knows,
/// and the handles.
#[derive(Debug)]
pub struct Entry {
    /// Who registered it, when, and what its handles are.
    pub info: Info,
    /// The handles. Linux: each checked against the kernel on receipt. macOS: send rights as
    /// described by their publisher, which the kernel checks when they are used (a memory
    /// entry smaller than it claims does not map).
    pub handles: Vec<Handle>,
}

/// How to register a name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegisterOptions {
    /// Keep the name after the registering process is gone (until it is unregistered or the
    /// registry stops). Default: the name goes with its process. Linux only: on macOS a
    /// bootstrap name lives as long as the process that holds its receive right, and
    /// registering a persistent name fails with [`ErrorKind::Unsupported`].
    pub persistent: bool,
}

/// What the registry knows of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The name.
    pub name: String,
    /// The pid of the process that registered it.
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// When it was registered, seconds since the epoch.
    pub since: u64,
    /// Whether it outlives its registering process.
    pub persistent: bool,
    /// Its handles: kind, size and inode of each.
    pub handles: Vec<HandleInfo>,
}

/// One handle of a registered name, as `list` shows it (the fds travel only with `lookup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleInfo {
    /// Its kind.
    pub kind: crate::handle::Kind,
    /// The object's size in bytes, as of the answer (a memfd may have grown since it was
    /// registered).
    pub size: u64,
    /// The device (`st_dev`) of the object's file: with the inode, how the inventory
    /// recognizes a memfd the registry hands out (hugetlb memfds are on another device).
    pub device: u64,
    /// The object's inode.
    pub inode: u64,
}
