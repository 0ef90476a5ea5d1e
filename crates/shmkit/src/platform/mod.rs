//! The floor of the crate: every call, path, file and structure field that differs between
//! operating systems lives below here, and nothing here uses the crate above it but the error
//! type. It reports raw facts (rows, numbers, descriptors); the segment types, the inventory
//! and the limits build their own values from them, and hint text lives with the errors.
//!
//! # Layout
//!
//! - shared by every OS: [`maps`] (the table of live mappings that the fork and SIGBUS
//!   handlers read), [`sigbus`] (surviving a peer's truncation), [`copy`] (race-free copies
//!   of shared bytes), [`Inherit`], [`facts`] (the row types below) and `unix` (POSIX calls
//!   that are the same everywhere: `errno`, `kill(pid, 0)`, `mincore`, ...);
//! - one module per OS, `linux` and `macos`, re-exported here item by item.
//!
//! # The contract: what an OS module provides
//!
//! Mappings and fork:
//! - `ensure_fork_handlers()`: registers whatever must run at `fork` (Linux: the
//!   `pthread_atfork` handlers that rebuild `Copy`/`Zero` mappings; macOS: nothing, the kernel
//!   does it);
//! - `set_inherit(slot, Inherit) -> Result<(), Errno>` (`madvise` / `minherit`, named by
//!   `INHERIT_CALL`; `ENOTSUP` for a mode the OS cannot give);
//! - `thread_id() -> u32`, `mapping_page_size(addr)`, `mapped_file(addr)` (an fd of the file
//!   behind a mapping, where the OS can give one), `MAP_HUGE` and `SHM_HUGE` (the huge-page
//!   flags, `None` where there are none), `huge_pages()`, `huge_page_size()`, `memory()`;
//! - `fs_kind(fd)`: the file system an object is on ([`FsKind`]), callable from a signal
//!   handler.
//!
//! Names and limits:
//! - `POSIX_NAME_MAX`, `POSIX_SHM_DIR`, `posix_shm_path(name)` (`None` where objects have no
//!   path), `set_posix_mode(fd, mode)` (the exact mode of a new POSIX object);
//! - `sysctl_path(name)` (the file behind a sysctl, where there is one), `sysv_sysctl(limit)`
//!   (the sysctl behind a System V limit), `SYSV_SYSCTL_NOTE` (what a remedy that raises
//!   one must add: when the OS takes new values), `sysv_shm_limits()`, `sysv_sem_limits()`,
//!   `limits::read()` (every IPC limit as [`facts::LimitFact`]s).
//!
//! System V structures:
//! - `perm_key(&ipc_perm)`.
//!
//! Descriptor passing:
//! - `RECV_CLOEXEC`, `SEND_NOSIGNAL`, `received_fd(fd)` (what makes a received fd
//!   close-on-exec where `MSG_CMSG_CLOEXEC` does not exist), `before_send(socket)` (what
//!   keeps a closed peer from raising `SIGPIPE` where `MSG_NOSIGNAL` does not exist).
//!
//! Inventory (`inventory::*`): `sysv_shm()`, `sysv_sem()`, `sysv_msg()` (rows),
//! `posix_files()` (each POSIX segment with its first `facts::HEAD_LEN` bytes, read with
//! `pread` where this user may), `posix_mq()`, `mqueue_dir()`, `mq_stat(name)`, `mq_attr(name)`,
//! `scan_holders()`, `fd_path(pid, fd)`, `is_memfd(fd)`, `map_file(pid, inode)`,
//! `fd_inode(pid, fd)`, `posix_shm_note()` (what a listing of POSIX shared memory cannot see,
//! where the OS hides some of it). An OS that cannot list a kind returns [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) and
//! says why.
//!
//! Waiting on shared words: `futex` (`wait`, `wake`, `Woken`, `SLICE`: the waits under `sync`
//! and `channel`); Linux adds the PI lock calls and `tid` (the `sync` mutex), macOS waits with
//! `os_sync_wait_on_address` or, before 14.4, the private `__ulock_wait`.
//!
//! Process liveness: `process_state(pid)` ([`ProcState`]: running, with what tells it from a
//! later process with its pid; gone; unknown), on both OSes (Linux: the start time in
//! `/proc/PID/stat`, for the channels' claims; macOS: the unique process id of
//! `proc_pidinfo(PROC_PIDUNIQIDENTIFIERINFO)`, for the `sync` mutex's owner record).
//!
//! Linux only, and so gated where they are used: `memfd_name`, `fd_link`, `reopen` (`/proc/self/fd`), `msg_cbytes`,
//! `semtimedop`, `posix_sem_path`, `sysctl_u64`, `process_start` (a process's start time, to
//! tell a reused pid), `fork_count` (forks this process is the child of) (the callers are memfds, POSIX semaphores and queues, System V queues,
//! `channel`: Linux-only modules).
//!
//! A new OS adds a module here that provides every item above; the compiler lists what is
//! missing, since the re-exports below name each one.

pub(crate) mod copy;
pub(crate) mod facts;
mod inherit;
pub(crate) mod maps;
pub(crate) mod sigbus;
mod slice;
mod unix;

pub use inherit::Inherit;
#[cfg(target_os = "linux")]
pub(crate) use unix::realtime_after;
pub(crate) use unix::{
    errno, group_name, mode_from_raw, mode_to_raw, page_size, pages_present, process_alive,
    uid_by_name, user_name,
};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as os;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as os;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!("shmkit supports Linux and macOS; a port adds a module under src/platform/");

#[cfg(target_os = "macos")]
pub(crate) use os::generation;
#[cfg(target_os = "macos")]
pub(crate) use os::process_state;
pub(crate) use os::{
    before_send, ensure_fork_handlers, fs_kind, futex, huge_page_size, huge_pages, inventory,
    limits, mapped_file, mapping_page_size, memory, perm_key, posix_shm_path, received_fd,
    set_inherit, set_posix_mode, sysctl_path, sysv_sem_limits, sysv_shm_limits, sysv_sysctl,
    thread_id, INHERIT_CALL, MAP_HUGE, POSIX_NAME_MAX, POSIX_SHM_DIR, RECV_CLOEXEC, SEND_NOSIGNAL,
    SHM_HUGE, SYSV_SYSCTL_NOTE,
};
#[cfg(target_os = "linux")]
pub(crate) use os::{
    fd_link, fork_count, memfd_name, msg_cbytes, posix_sem_path, process_start, process_state,
    reopen, semtimedop, sysctl_u64,
};

/// The file system an object lives on, as far as shmkit cares. (macOS has only `Other`.)
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsKind {
    /// Memory-backed (`/dev/shm`, memfds): a full one fails page allocation.
    Tmpfs,
    /// Huge-page backed: mappings come in huge pages.
    Hugetlbfs,
    /// The POSIX message queue file system.
    Mqueue,
    /// Anything else.
    Other,
}

/// Whether a process runs, and which one: with the pid, the value in `Running` names one
/// process for its whole life, where a pid alone may be reused (`process_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcState {
    /// It runs; the value tells it from another process that had or will have its pid, in the
    /// OS's own terms: on Linux its start time, clock ticks since boot (`/proc/PID/stat` field
    /// 22); on macOS the kernel's 64-bit unique process id (`p_uniqueid`, one per process
    /// created since boot, never reused). Compared only with values of this OS.
    Running(u64),
    /// No such process, or it is dead and not reaped yet (a zombie).
    Gone,
    /// It exists, or may, but could not be told (out of file descriptors, `/proc` not
    /// mounted; `proc_pidinfo` refused, e.g. by a sandbox): not dead.
    Unknown,
}

/// The System V shared-memory limits that errors quote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SysvShmLimits {
    pub shmmax: Option<u64>,
    pub shmall_pages: Option<u64>,
    pub shmmni: Option<u64>,
}

/// The System V semaphore limits (macOS has no `semopm`, and nothing reads it there).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct SemLimits {
    pub semmsl: Option<u64>,
    pub semmns: Option<u64>,
    pub semopm: Option<u64>,
    pub semmni: Option<u64>,
}

/// What an `ENOMEM` at creation is measured against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memory {
    /// RAM and swap together, in bytes.
    pub ram_and_swap: u64,
    /// The overcommit policy (`vm.overcommit_memory`), where there is one.
    pub overcommit: Option<u64>,
}
