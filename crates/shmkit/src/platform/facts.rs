//! The raw facts an OS module reports: rows of its tables, as the OS states them. The
//! inventory and the limits build their own values from these; nothing here is interpreted
//! beyond parsing.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

/// Ownership and permissions of a System V object (`struct ipc_perm`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Perm {
    pub key: Option<i32>,
    /// All mode bits, including the kernel's state bits above 0o777 (`SHM_DEST`, ...).
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub cuid: Option<u32>,
    pub cgid: Option<u32>,
}

/// A System V shared-memory segment (`/proc/sysvipc/shm`, `struct shmid_ds`). Times are
/// seconds since the epoch, 0 for never.
#[derive(Debug, Clone, Default)]
pub(crate) struct SysvShmRow {
    pub id: i32,
    pub perm: Perm,
    pub size: Option<u64>,
    pub cpid: Option<i32>,
    pub lpid: Option<i32>,
    pub nattch: Option<u64>,
    pub atime: Option<i64>,
    pub dtime: Option<i64>,
    pub ctime: Option<i64>,
    /// Bytes of the segment in swap.
    pub swap: Option<u64>,
}

/// A System V semaphore set (`struct semid_ds`).
#[derive(Debug, Clone, Default)]
pub(crate) struct SysvSemRow {
    pub id: i32,
    pub perm: Perm,
    pub nsems: u32,
    pub otime: Option<i64>,
    pub ctime: Option<i64>,
}

/// A System V message queue (`struct msqid_ds`).
#[derive(Debug, Clone, Default)]
pub(crate) struct SysvMsgRow {
    pub id: i32,
    pub perm: Perm,
    pub cbytes: Option<u64>,
    pub qnum: Option<u64>,
    pub lspid: Option<i32>,
    pub lrpid: Option<i32>,
    pub stime: Option<i64>,
    pub rtime: Option<i64>,
    pub ctime: Option<i64>,
}

/// What `stat` says of a file-like object (POSIX shm, semaphore, queue, memfd).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FileStat {
    pub size: u64,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The device of its file system (`st_dev`).
    pub dev: u64,
    pub ino: u64,
    pub ctime: i64,
    pub mtime: i64,
}

impl FileStat {
    /// From `std`'s metadata (the Linux inventory reads files; macOS has none to read).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            size: meta.size(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            dev: meta.dev(),
            ino: meta.ino(),
            ctime: meta.ctime(),
            mtime: meta.mtime(),
        }
    }
}

/// How many leading bytes of a POSIX segment an OS module reads for the inventory: a
/// channel's `init_once` header (state word, pid, tag, version) and the shape that follows
/// it (capacity, or slots and places), so that a segment too short for the channel its
/// header announces is not listed as one.
pub(crate) const HEAD_LEN: usize = 32;

/// A named POSIX object seen in the file system.
#[derive(Debug, Clone)]
pub(crate) struct PosixFile {
    /// `/NAME`, the exact bytes.
    pub name: OsString,
    pub stat: FileStat,
    pub what: PosixWhat,
}

/// Which kind of POSIX object a file is, with what its bytes say. (macOS lists shared memory
/// only, without its bytes.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) enum PosixWhat {
    /// Shared memory: its first [`HEAD_LEN`] bytes when they could be read (the inventory
    /// tells a channel by them).
    Shm(Option<[u8; HEAD_LEN]>),
    /// A named semaphore: its value and waiters when its `sem_t` could be read.
    Sem(Option<(u32, u64)>),
    /// A message queue: the bytes queued.
    Mq(Option<u64>),
}

/// `mq_getattr` of a queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MqAttr {
    pub curmsgs: u64,
    pub maxmsg: u64,
    pub msgsize: u64,
}

/// An object a process holds, as the process tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum HeldKey {
    /// A file in the POSIX shm directory (shm or semaphore), by inode.
    ShmFs(u64),
    /// A System V segment, by id.
    Sysv(i32),
    /// A memfd, by inode.
    Memfd(u64),
    /// A POSIX message queue, by inode.
    Mq(u64),
}

/// How one process holds one object.
#[derive(Debug, Default, Clone)]
pub(crate) struct Holding {
    pub maps: bool,
    /// Sorted.
    pub fds: Vec<i32>,
}

/// A memfd seen in a process's maps or fds.
#[derive(Debug, Clone)]
pub(crate) struct MemfdSeen {
    pub name: String,
    /// The first (pid, fd) seen holding it.
    pub first_fd: Option<(i32, i32)>,
    /// The first process seen mapping it (or holding it), and the range (`start-end`) of that
    /// mapping (empty if only held by fd).
    pub first_map: (i32, String),
    /// Its stat, through an fd or a mapped file, when it could be read.
    pub stat: Option<FileStat>,
}

/// One pass over every process's maps and fds.
#[derive(Debug, Default)]
pub(crate) struct HolderScan {
    pub held: HashMap<HeldKey, BTreeMap<i32, Holding>>,
    pub memfds: BTreeMap<u64, MemfdSeen>,
    /// Command names of the processes that hold something.
    pub comm: HashMap<i32, String>,
    /// (pid, command) of processes whose maps or fds could not be read (kernel threads,
    /// which hold no objects, are not counted).
    pub unreadable: Vec<(i32, String)>,
}

/// One limit as the OS states it; the crate's `limits` adds how much is in use.
#[derive(Debug, Clone)]
pub(crate) struct LimitFact {
    pub name: &'static str,
    pub value: Option<u64>,
    pub unit: &'static str,
    /// Bytes per unit, when the unit is not bytes but converts (pages).
    pub unit_bytes: Option<u64>,
    pub meaning: &'static str,
    pub source: String,
    /// How much is in use, when the OS itself says (a file system's fill).
    pub usage: Option<u64>,
    pub change: String,
}

/// What each System V limit counts and limits, the same on every OS that has it.
const SYSV_LIMITS: &[(&str, &str, &str)] = &[
    ("shmmax", "bytes", "largest System V shared-memory segment"),
    ("shmall", "pages", "all System V shared memory together"),
    (
        "shmmni",
        "segments",
        "number of System V shared-memory segments",
    ),
    ("shmmin", "bytes", "smallest System V shared-memory segment"),
    (
        "shmseg",
        "segments",
        "System V segments one process may attach",
    ),
    ("msgmax", "bytes", "largest System V message"),
    (
        "msgmnb",
        "bytes",
        "bytes one System V message queue may hold",
    ),
    ("msgmni", "queues", "number of System V message queues"),
    ("semmsl", "semaphores", "semaphores in one System V set"),
    ("semmns", "semaphores", "System V semaphores in all sets"),
    ("semopm", "operations", "operations in one semop call"),
    ("semmni", "sets", "number of System V semaphore sets"),
    (
        "semume",
        "undo entries",
        "SEM_UNDO entries one process may have",
    ),
];

/// The unit and meaning of System V limit `name` (`("?", "?")` for a name not in the table,
/// which a test rules out).
pub(crate) fn sysv_limit(name: &str) -> (&'static str, &'static str) {
    SYSV_LIMITS
        .iter()
        .find(|l| l.0 == name)
        .map_or(("?", "?"), |l| (l.1, l.2))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_limit_the_os_modules_name_is_described() {
        for l in crate::platform::limits::read().unwrap() {
            assert_ne!(l.unit, "?", "{}", l.name);
            assert_ne!(l.meaning, "?", "{}", l.name);
        }
    }
}
