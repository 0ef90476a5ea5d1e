//! Every IPC object on the machine, System V and POSIX alike, with who holds it.
//!
//! Listing has no side effects: nothing is opened, attached, `sem_open`ed or mounted. The
//! sources on Linux are `/proc/sysvipc/*`, `/dev/shm`, `/dev/mqueue` (if mounted) and, for
//! holders and memfds, `/proc/PID/maps` and `/proc/PID/fd`.
//!
//! ```
//! use shmkit::inventory::{self, Kind, ListOptions};
//! let seg = shmkit::SysvShm::create(shmkit::SysvKey::Private, 4096)?;
//! let all = inventory::list(&ListOptions { kinds: vec![Kind::SysvShm], holders: true })?;
//! let me = all.objects.iter().find(|o| o.id == Some(seg.id())).unwrap();
//! assert_eq!((me.size, me.nattch), (Some(4096), Some(1)));
//! assert!(me.holders.as_ref().unwrap().iter().any(|h| h.pid == std::process::id() as i32));
//! # Ok::<(), shmkit::Error>(())
//! ```

mod address;
mod remove;

pub use address::{parse_key, Address};
pub use remove::remove;

use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use std::fmt;
use std::str::FromStr;

/// The kinds of IPC object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// POSIX shared memory (`shm_open`).
    PosixShm,
    /// System V shared memory (`shmget`).
    SysvShm,
    /// Linux memfd (`memfd_create`).
    Memfd,
    /// System V semaphore set (`semget`).
    SysvSem,
    /// System V message queue (`msgget`).
    SysvMsg,
    /// POSIX named semaphore (`sem_open`).
    PosixSem,
    /// POSIX message queue (`mq_open`).
    PosixMq,
}

impl Kind {
    /// Every kind, in listing order.
    pub const ALL: [Kind; 7] = [
        Kind::PosixShm,
        Kind::SysvShm,
        Kind::Memfd,
        Kind::SysvSem,
        Kind::SysvMsg,
        Kind::PosixSem,
        Kind::PosixMq,
    ];

    /// The name used in listings and JSON (`posix-shm`, `sysv-shm`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::PosixShm => "posix-shm",
            Kind::SysvShm => "sysv-shm",
            Kind::Memfd => "memfd",
            Kind::SysvSem => "sysv-sem",
            Kind::SysvMsg => "sysv-msg",
            Kind::PosixSem => "posix-sem",
            Kind::PosixMq => "posix-mq",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown kind '{s}': use one of {}", names.join(", "))
            })
    }
}

/// A process that maps an object or holds an fd to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its pid.
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// Whether it has the object mapped.
    pub maps: bool,
    /// The fds through which it holds the object.
    pub fds: Vec<i32>,
}

/// One IPC object and what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// Its address.
    pub address: Address,
    /// Size in bytes (shared memory, and bytes queued for message queues).
    pub size: Option<u64>,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// System V key (0 for private and removed objects).
    pub key: Option<i32>,
    /// System V id.
    pub id: Option<i32>,
    /// System V creator pid.
    pub creator_pid: Option<i32>,
    /// System V last operating pid.
    pub last_pid: Option<i32>,
    /// System V shm attachments.
    pub nattch: Option<u64>,
    /// Last change, seconds since the epoch.
    pub ctime: Option<i64>,
    /// Last use (attach, detach, operation, message, change), seconds since the epoch.
    pub last_use: Option<i64>,
    /// Marked for removal (System V `IPC_RMID` with attachments left).
    pub marked_for_removal: bool,
    /// Inode (POSIX objects and memfds; the id for System V shm).
    pub inode: Option<u64>,
    /// Semaphores in a set.
    pub nsems: Option<u32>,
    /// Semaphore values (System V: `semctl(GETALL)`; POSIX: read from the object's bytes).
    pub values: Option<Vec<i64>>,
    /// Processes waiting on semaphores (System V: sum of `GETNCNT` and `GETZCNT`).
    pub waiters: Option<u64>,
    /// Messages queued.
    pub messages: Option<u64>,
    /// The memfd's name, the POSIX object's name in `/dev/shm`.
    pub name: Option<String>,
    /// Who maps or holds it; `None` when holders were not scanned.
    pub holders: Option<Vec<Holder>>,
}

impl Object {
    pub(crate) fn new(kind: Kind, address: Address) -> Self {
        Object {
            kind,
            address,
            size: None,
            mode: 0,
            uid: 0,
            gid: 0,
            key: None,
            id: None,
            creator_pid: None,
            last_pid: None,
            nattch: None,
            ctime: None,
            last_use: None,
            marked_for_removal: false,
            inode: None,
            nsems: None,
            values: None,
            waiters: None,
            messages: None,
            name: None,
            holders: None,
        }
    }

    /// Why nobody uses this object, if that is so.
    ///
    /// System V segments: no attachment and the creator is dead. POSIX segments and named
    /// semaphores: no process maps or holds them (needs a holder scan). Other kinds are never
    /// called orphans: a queue or a semaphore set can wait for its next user by design.
    pub fn orphan_reason(&self) -> Option<String> {
        match self.kind {
            Kind::SysvShm => {
                let cpid = self.creator_pid?;
                (self.nattch == Some(0)
                    && !self.marked_for_removal
                    && !platform::process_alive(cpid))
                .then(|| format!("no attachment and its creator (pid {cpid}) is gone"))
            }
            Kind::PosixShm | Kind::PosixSem => match &self.holders {
                Some(h) if h.is_empty() => Some("no process maps it or holds an fd to it".into()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// What to list.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// The kinds to list; empty means all.
    pub kinds: Vec<Kind>,
    /// Scan processes for holders (memfds are always found by such a scan).
    pub holders: bool,
}

/// The result of a listing.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The objects, ordered by kind then address.
    pub objects: Vec<Object>,
    /// Things the listing could not see, each a sentence (e.g. "POSIX message queues are not
    /// listed: no mqueue file system is mounted").
    pub notes: Vec<String>,
    /// Processes whose maps or fds could not be read (permission), as (pid, command):
    /// what they hold is not shown.
    pub unreadable_processes: Vec<(i32, String)>,
}

/// Lists IPC objects, without side effects.
pub fn list(opts: &ListOptions) -> Result<Listing> {
    let want = |k: Kind| opts.kinds.is_empty() || opts.kinds.contains(&k);
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    let scan = (opts.holders || want(Kind::Memfd)).then(platform::inventory::scan_holders);
    if want(Kind::PosixShm) || want(Kind::PosixSem) {
        let (shm, sem) = platform::inventory::posix_shm_dir()?;
        if want(Kind::PosixShm) {
            objects.extend(shm);
        }
        if want(Kind::PosixSem) {
            objects.extend(sem);
        }
    }
    if want(Kind::SysvShm) {
        objects.extend(platform::inventory::sysv_shm()?);
    }
    if want(Kind::Memfd) {
        objects.extend(scan.as_ref().expect("scanned for memfds").memfds());
    }
    if want(Kind::SysvSem) {
        objects.extend(platform::inventory::sysv_sem()?);
    }
    if want(Kind::SysvMsg) {
        objects.extend(platform::inventory::sysv_msg()?);
    }
    if want(Kind::PosixMq) {
        match platform::inventory::posix_mq()? {
            Some(mqs) => objects.extend(mqs),
            None => notes.push(
                "POSIX message queues are not listed: no mqueue file system is mounted \
                 (as root: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue)"
                    .into(),
            ),
        }
    }
    let mut unreadable = Vec::new();
    if let Some(scan) = &scan {
        unreadable = scan.unreadable.clone();
        if opts.holders {
            for o in &mut objects {
                o.holders = Some(scan.holders_of(o));
            }
        }
    }
    if !unreadable.is_empty() && opts.holders {
        let shown: Vec<String> = unreadable
            .iter()
            .take(5)
            .map(|(p, c)| format!("{p} {c}"))
            .collect();
        notes.push(format!(
            "{} processes could not be inspected ({}{}): what they hold is not shown",
            unreadable.len(),
            shown.join(", "),
            if unreadable.len() > 5 { ", ..." } else { "" }
        ));
    }
    objects.sort_by(|a, b| (a.kind, &a.address).cmp(&(b.kind, &b.address)));
    Ok(Listing {
        objects,
        notes,
        unreadable_processes: unreadable,
    })
}

/// Finds one object by address, with holders if asked.
pub fn find(addr: &Address, holders: bool) -> Result<Object> {
    let listing = list(&ListOptions {
        kinds: vec![addr.kind()],
        holders,
    })?;
    if let Some(o) = listing
        .objects
        .into_iter()
        .find(|o| matches_address(o, addr))
    {
        return Ok(o);
    }
    // Without an mqueue mount no queue is listed, but one named can still be looked up.
    if let Address::PosixMq(name) = addr {
        if let Some(o) = platform::inventory::posix_mq_by_name(name)? {
            return Ok(o);
        }
    }
    Err(not_found(addr))
}

/// Whether `o` is the object `addr` names (a key names the segment that has it; a memfd
/// address names the memfd held at that fd, even if listed under another holder's fd).
pub fn matches_address(o: &Object, addr: &Address) -> bool {
    match addr {
        Address::SysvShmKey(k) => o.kind == Kind::SysvShm && o.key == Some(*k),
        Address::SysvShmId(id) => o.kind == Kind::SysvShm && o.id == Some(*id),
        Address::Memfd { pid, fd } => {
            o.kind == Kind::Memfd
                && (o.address == *addr
                    || platform::inventory::fd_inode(*pid, *fd)
                        .is_some_and(|ino| Some(ino) == o.inode))
        }
        Address::MemfdMap { inode, .. } => o.kind == Kind::Memfd && o.inode == Some(*inode),
        _ => o.address == *addr,
    }
}

pub(crate) fn not_found(addr: &Address) -> Error {
    Error::os("find", addr.to_string(), rustix::io::Errno::NOENT).with_hint(match addr.kind() {
        Kind::PosixShm => "no such object in /dev/shm; `shmkit ls --kind posix-shm` lists them",
        Kind::SysvShm => "no such segment; `shmkit ls --kind sysv-shm` lists them",
        Kind::Memfd => {
            "that process holds no memfd at that fd; `shmkit ls --kind memfd` lists them"
        }
        Kind::SysvSem => "no such semaphore set; `shmkit ls --kind sysv-sem` lists them",
        Kind::SysvMsg => "no such message queue; `shmkit ls --kind sysv-msg` lists them",
        Kind::PosixSem => {
            "no such named semaphore in /dev/shm; `shmkit ls --kind posix-sem` lists them"
        }
        Kind::PosixMq => "no such queue in /dev/mqueue; `shmkit ls --kind posix-mq` lists them",
    })
}

/// Opens a shared-memory object named by `addr` for reading or writing: what `shmkit cat`
/// and `shmkit write` use. Semaphores and queues are not memory and are refused.
pub fn open_memory(
    addr: &Address,
    writable: bool,
) -> Result<Box<dyn std::ops::Deref<Target = crate::Mapping>>> {
    let ro = !writable;
    Ok(match addr {
        Address::PosixShm(name) => Box::new(crate::PosixShm::options().read_only(ro).open(name)?),
        Address::SysvShmId(id) => Box::new(crate::SysvShm::options().read_only(ro).open_id(*id)?),
        Address::SysvShmKey(k) => Box::new(
            crate::SysvShm::options()
                .read_only(ro)
                .open(crate::SysvKey::Key(*k))?,
        ),
        Address::Memfd { .. } | Address::MemfdMap { .. } => {
            let path = match addr {
                Address::Memfd { pid, fd } => format!("/proc/{pid}/fd/{fd}"),
                Address::MemfdMap { pid, inode } => {
                    platform::inventory::map_file(*pid, *inode).ok_or_else(|| not_found(addr))?
                }
                _ => unreachable!(),
            };
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(writable)
                .open(&path)
                .map_err(|e| {
                    let errno = rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO);
                    Error::os("open", addr.to_string(), errno)
                        .with_hint(format!("{path} must be a memfd of a live process that this user may inspect (map_files needs root)"))
                })?;
            let fd: rustix::fd::OwnedFd = file.into();
            let m = if writable {
                crate::Memfd::from_fd_writable(fd)?
            } else {
                crate::Memfd::from_fd(fd)?
            };
            Box::new(m)
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "open",
                other.to_string(),
                format!(
                "a {} is not shared memory; only /NAME, shm:, key: and memfd: objects have bytes",
                other.kind()
            ),
            ))
        }
    })
}
