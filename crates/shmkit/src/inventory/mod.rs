//! Every IPC object on the machine, System V and POSIX alike, with who holds it.
//!
//! Listing has no side effects: nothing is mapped, attached, `sem_open`ed, written or
//! mounted. The sources on Linux are `/proc/sysvipc/*`, `/dev/shm`, `/dev/mqueue` (if mounted)
//! and, for holders and memfds, `/proc/PID/maps` and `/proc/PID/fd`. The only bytes read are
//! those of named semaphores (their value) and the first 16 of each POSIX segment, with
//! `pread` on a read-only descriptor: a segment whose first bytes are a ready channel header
//! is listed as a [`Kind::Channel`], whose [`Object::channel`] says which flavor and what it
//! lives in.
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
mod open;
mod reader;
mod remove;
mod sources;

pub use address::{parse_key, Address};
pub use open::open_memory;
pub(crate) use open::{check_memory, open_memfd, open_sysv};
pub use reader::{open_reader, Reader};
pub use remove::{check_removable, remove};
pub(crate) use sources::{posix_mq_count, sysv_swap};

use crate::error::{Error, ErrorKind, Result};
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
    #[cfg_attr(not(target_os = "linux"), doc = "[`crate::channel`]: crate::inventory")]
    /// A message channel ([`crate::channel`]), found at offset 0 of shared memory of another
    /// kind: [`Object::channel`] names its flavor and that backing kind, through which it is
    /// opened and removed. Only POSIX segments are looked into (see [`list`]).
    Channel,
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
    pub const ALL: [Kind; 8] = [
        Kind::PosixShm,
        Kind::SysvShm,
        Kind::Memfd,
        Kind::Channel,
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
            Kind::Channel => "channel",
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
    /// Its command name (`/proc/PID/comm`; any bytes the process chose, shown lossily where
    /// they are not UTF-8).
    pub command: String,
    /// Whether it has the object mapped.
    pub maps: bool,
    /// The fds through which it holds the object.
    pub fds: Vec<i32>,
}

/// What the inventory knows of a channel: read from its header, without claiming an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    #[cfg_attr(
        target_os = "linux",
        doc = "[`Flavor::name`]: crate::channel::Flavor::name"
    )]
    #[cfg_attr(not(target_os = "linux"), doc = "[`Flavor::name`]: crate::inventory")]
    /// Its flavor's name, as [`Flavor::name`] gives it: `spsc`,
    /// `broadcast` or `mpsc`. (A name, not the `Flavor`, so that `Object` is the same type
    /// on every OS, channels or not.)
    pub flavor: String,
    /// The kind of object the channel lives in ([`Kind::PosixShm`]): what its address names,
    /// and the kind whose rules open, remove and judge it.
    pub backing: Kind,
}

/// One IPC object and what is known about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its kind. A channel is [`Kind::Channel`], whatever it lives in: see
    /// [`Object::backing_kind`].
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
    /// System V creator's user (`ipcs -c`: it may remove the object as the owner can).
    pub creator_uid: Option<u32>,
    /// System V creator's group.
    pub creator_gid: Option<u32>,
    /// System V creator pid.
    pub creator_pid: Option<i32>,
    /// System V last operating pid (shm: last attach or detach; msg: last send).
    pub last_pid: Option<i32>,
    /// System V message queue: the last receiver's pid.
    pub receive_pid: Option<i32>,
    /// System V shm: last attach, seconds since the epoch (`None`: never).
    pub attach_time: Option<i64>,
    /// System V shm: last detach.
    pub detach_time: Option<i64>,
    /// System V semaphore set: last `semop`.
    pub op_time: Option<i64>,
    /// System V message queue: last send.
    pub send_time: Option<i64>,
    /// System V message queue: last receive.
    pub receive_time: Option<i64>,
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
    /// The device of the object's file system (`st_dev`; POSIX objects and memfds, when its
    /// file could be read).
    pub device: Option<u64>,
    /// Semaphores in a set.
    pub nsems: Option<u32>,
    /// Semaphore values (System V: `semctl(GETALL)`; POSIX: read from the object's bytes).
    pub values: Option<Vec<i64>>,
    /// Processes waiting on semaphores (System V: sum of `GETNCNT` and `GETZCNT`).
    pub waiters: Option<u64>,
    /// Messages queued.
    pub messages: Option<u64>,
    /// POSIX message queue: capacity in messages (known to [`find`], not to listings).
    pub max_messages: Option<u64>,
    /// POSIX message queue: the largest message in bytes (as `max_messages`).
    pub message_size: Option<u64>,
    /// The memfd's name, the POSIX object's name in `/dev/shm` (shown lossily if it is not
    /// UTF-8: the address has the exact bytes).
    pub name: Option<String>,
    /// Who maps or holds it; `None` when holders were not scanned, or cannot be seen for
    /// this kind (System V semaphore sets and message queues are used through no fd or map).
    pub holders: Option<Vec<Holder>>,
    /// When holders were scanned: how many processes could not be inspected (another
    /// user's, without root). Any of them may hold the object unseen.
    pub uninspected: usize,
    /// A memfd that this user's registry hands out: the name it is registered under (when
    /// the registry runs; see [`crate::registry`]).
    pub registered: Option<String>,
    /// A channel's flavor and backing kind; `Some` exactly when `kind` is [`Kind::Channel`].
    pub channel: Option<ChannelInfo>,
}

/// Whether anybody uses an object, as far as can be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Orphan {
    /// Something uses it, or the kind is never an orphan by itself, or nothing was asked
    /// that could tell (a POSIX object listed without a holder scan).
    No,
    /// Nobody uses it: the reason.
    Yes(String),
    /// No process that was inspected uses it, but some could not be inspected: why it is
    /// not known.
    Unknown(String),
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
            creator_uid: None,
            creator_gid: None,
            creator_pid: None,
            last_pid: None,
            receive_pid: None,
            attach_time: None,
            detach_time: None,
            op_time: None,
            send_time: None,
            receive_time: None,
            nattch: None,
            ctime: None,
            last_use: None,
            marked_for_removal: false,
            inode: None,
            device: None,
            nsems: None,
            values: None,
            waiters: None,
            messages: None,
            max_messages: None,
            message_size: None,
            name: None,
            holders: None,
            uninspected: 0,
            registered: None,
            channel: None,
        }
    }

    /// The kind of object it is underneath: its own kind, or for a channel the kind of
    /// object the channel lives in. Opening, removing, finding holders and calling it an
    /// orphan all go by this kind.
    pub fn backing_kind(&self) -> Kind {
        self.channel.as_ref().map_or(self.kind, |c| c.backing)
    }

    /// Whether nobody uses this object.
    ///
    /// System V segments: no attachment (the kernel counts them, whoever attached) and the
    /// creator is dead. POSIX segments and named semaphores: no process maps or holds them —
    /// known only after a holder scan that inspected every process: a process this user may
    /// not inspect could hold it (root can open anything), so with any such process the
    /// answer is [`Orphan::Unknown`]. A channel is judged as its backing kind (a channel
    /// nobody holds is as unused as the segment it is in). Other kinds are never called
    /// orphans: a queue or a semaphore set can wait for its next user by design.
    pub fn orphan(&self) -> Orphan {
        self.orphan_given(self.uninspected)
    }

    /// [`Object::orphan`] as if the processes that could not be inspected held nothing: the
    /// caller vouches for them (`shmkit gc --ignore-uninspected`).
    pub fn orphan_vouching(&self) -> Orphan {
        self.orphan_given(0)
    }

    fn orphan_given(&self, uninspected: usize) -> Orphan {
        match self.backing_kind() {
            Kind::SysvShm => match self.creator_pid {
                Some(cpid)
                    if self.nattch == Some(0)
                        && !self.marked_for_removal
                        && !sources::alive(cpid) =>
                {
                    Orphan::Yes(format!(
                        "no attachment and its creator (pid {cpid}) is gone"
                    ))
                }
                _ => Orphan::No,
            },
            Kind::PosixShm | Kind::PosixSem => match &self.holders {
                Some(h) if h.is_empty() && uninspected == 0 => {
                    Orphan::Yes("no process maps it or holds an fd to it".into())
                }
                Some(h) if h.is_empty() => Orphan::Unknown(format!(
                    "no inspected process holds it, but {} could not be inspected{}",
                    crate::size::count(uninspected as u64, "process", "processes"),
                    if rustix::process::geteuid().is_root() {
                        ""
                    } else {
                        " (run as root to see them)"
                    }
                )),
                _ => Orphan::No,
            },
            _ => Orphan::No,
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
///
/// [`Kind::PosixShm`] and [`Kind::Channel`] split the POSIX segments between them: a segment
/// whose first 16 bytes are a ready channel header is a channel, every other one (shorter,
/// not a channel, or unreadable to this user: a channel in another user's mode-0600 segment
/// is listed as `posix-shm`) is plain shared memory. Memfds are never listed as channels: the
/// holder scan does not open other processes' descriptors to read them.
///
/// On macOS, POSIX shared memory is seen only through the descriptors processes hold: an
/// object nobody holds open by a descriptor is not listed, and [`Listing::notes`] says so.
///
/// # Errors
/// On Linux, the OS error if a `/proc/sysvipc` table or `/dev/shm` cannot be read; on macOS,
/// the OS error if a `kern.sysv.ipcs` sysctl or the process list cannot be read.
pub fn list(opts: &ListOptions) -> Result<Listing> {
    let want = |k: Kind| opts.kinds.is_empty() || opts.kinds.contains(&k);
    let mut objects = Vec::new();
    let mut notes = Vec::new();
    let scan = (opts.holders || want(Kind::Memfd))
        .then(crate::platform::inventory::scan_holders)
        .transpose()?;
    if want(Kind::PosixShm) || want(Kind::Channel) || want(Kind::PosixSem) {
        let (shm, sem) = sources::posix_files()?;
        objects.extend(shm.into_iter().filter(|o| want(o.kind)));
        if want(Kind::PosixSem) {
            objects.extend(sem);
        }
        if let Some(note) = crate::platform::inventory::posix_shm_note() {
            notes.push(note.into());
        }
    }
    if want(Kind::SysvShm) {
        objects.extend(sources::sysv_shm()?);
    }
    if want(Kind::Memfd) {
        objects.extend(sources::memfds(scan.as_ref().expect("scanned for memfds")));
    }
    if want(Kind::SysvSem) {
        objects.extend(sources::sysv_sem()?);
    }
    if want(Kind::SysvMsg) {
        objects.extend(sources::sysv_msg()?);
    }
    if want(Kind::PosixMq) {
        match sources::posix_mq()? {
            Some(mqs) => objects.extend(mqs),
            None => notes.push(
                "POSIX message queues are not listed: no mqueue file system is mounted \
                 (as root: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue)"
                    .into(),
            ),
        }
    }
    if want(Kind::Memfd) {
        sources::registered_names(&mut objects);
    }
    let mut unreadable = Vec::new();
    if let Some(scan) = &scan {
        unreadable = scan.unreadable.clone();
        if opts.holders {
            for o in &mut objects {
                o.holders = sources::holders_of(scan, o);
                o.uninspected = unreadable.len();
            }
        }
    }
    if !unreadable.is_empty() && opts.holders {
        notes.push(uninspected_note(unreadable.len()));
    }
    objects.sort_by(|a, b| (a.kind, &a.address).cmp(&(b.kind, &b.address)));
    Ok(Listing {
        objects,
        notes,
        unreadable_processes: unreadable,
    })
}

/// The one-line note that a listing with holders could not see everything.
pub fn uninspected_note(n: usize) -> String {
    format!(
        "{} could not be inspected{}: what {} hold is not shown, and no POSIX object is called \
         an orphan",
        crate::size::count(n as u64, "process", "processes"),
        if rustix::process::geteuid().is_root() {
            ""
        } else {
            " (another user's; root sees all)"
        },
        if n == 1 { "it may" } else { "they may" }
    )
}

/// Finds one object by address, with holders if asked. A POSIX message queue also gets its
/// capacity and message size (read with `mq_getattr` on a read-only descriptor, when this
/// user may read the queue).
///
/// # Errors
/// As [`list`]; [`ErrorKind::NotFound`] if nothing has the address; for a POSIX queue looked up
/// by name without an mqueue mount, the OS error of `mq_open` (other than `ENOENT`) or `fstat`.
pub fn find(addr: &Address, holders: bool) -> Result<Object> {
    // An address names where an object lives: what is at /NAME may be a channel. (A memfd
    // is never listed as one: no need to read every segment's header to find it.)
    let mut kinds = vec![addr.kind()];
    if addr.kind() == Kind::PosixShm {
        kinds.push(Kind::Channel);
    }
    let listing = list(&ListOptions { kinds, holders })?;
    if let Some(mut o) = listing
        .objects
        .into_iter()
        .find(|o| matches_address(o, addr))
    {
        if o.kind == Kind::PosixMq {
            sources::mq_attr(&mut o);
        }
        return Ok(o);
    }
    // Without an mqueue mount no queue is listed, but one named can still be looked up.
    if let Address::PosixMq(name) = addr {
        if let Some(mut o) = sources::posix_mq_by_name(name)? {
            if holders {
                let scan = crate::platform::inventory::scan_holders()?;
                o.holders = sources::holders_of(&scan, &o);
                o.uninspected = scan.unreadable.len();
            }
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
            o.backing_kind() == Kind::Memfd
                && (o.address == *addr
                    || crate::platform::inventory::fd_inode(*pid, *fd)
                        .is_some_and(|ino| Some(ino) == o.inode))
        }
        Address::MemfdMap { inode, .. } => {
            o.backing_kind() == Kind::Memfd && o.inode == Some(*inode)
        }
        _ => o.address == *addr,
    }
}

/// The error for an address that names nothing: the same for every kind, of kind
/// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound).
pub(crate) fn not_found(addr: &Address) -> Error {
    Error::new(
        ErrorKind::NotFound,
        "find",
        addr.to_string(),
        format!("no such object (no {} has this address)", addr.kind()),
    )
}
