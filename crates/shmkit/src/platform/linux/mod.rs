//! Linux: inheritance through `madvise` and fork handlers, futexes, and every fact from
//! `/proc`, `/sys` and `statfs`.

mod fork;
pub(crate) mod futex;
pub(crate) mod inventory;
pub(crate) mod limits;
mod memory;
pub(crate) mod sysv;

pub(crate) use fork::{ensure_fork_handlers, fork_count, set_inherit};
pub(crate) use memory::{huge_page_size, huge_pages, mapped_file, mapping_page_size, memory};
pub(crate) use sysv::{msg_cbytes, perm_key, semtimedop};

use super::{FsKind, ProcState, SemLimits, SysvShmLimits};
use rustix::fd::BorrowedFd;

/// The call behind `set_inherit`, for errors.
pub(crate) const INHERIT_CALL: &str = "madvise";

/// Sets the exact permission bits of a POSIX object just created (`fchmod(2)`), whatever the
/// umask took from the mode given to `shm_open`.
pub(crate) fn set_posix_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<(), rustix::io::Errno> {
    rustix::fs::fchmod(fd, rustix::fs::Mode::from_raw_mode(mode & 0o7777))
}

/// Nothing to do before `sendmsg`: [`SEND_NOSIGNAL`] keeps `SIGPIPE` away.
pub(crate) fn before_send(_socket: BorrowedFd<'_>) {}

/// `shmget` flag that backs a segment with huge pages.
pub(crate) const SHM_HUGE: Option<i32> = Some(libc::SHM_HUGETLB);

/// `mmap` flag that backs an anonymous mapping with huge pages.
pub(crate) const MAP_HUGE: Option<rustix::mm::MapFlags> = Some(rustix::mm::MapFlags::HUGETLB);

/// Longest POSIX shm name after the leading `/`. The kernel allows a 255-byte file name in
/// `/dev/shm`, but glibc's `shm_open` refuses names of 254 bytes or more (it counts the NUL
/// against `NAME_MAX`), so longer names could not be opened by C or Python peers.
pub(crate) const POSIX_NAME_MAX: usize = 253;

/// Where glibc keeps POSIX shared memory and named semaphores (`sem.NAME`).
pub(crate) const POSIX_SHM_DIR: Option<&str> = Some("/dev/shm");

/// Where a POSIX shm object shows in the file system.
pub(crate) fn posix_shm_path(name: &str) -> Option<String> {
    Some(format!("/dev/shm{name}"))
}

/// Where glibc keeps the named semaphore `/NAME`.
pub(crate) fn posix_sem_path(name: &str) -> Option<String> {
    Some(format!("/dev/shm/sem.{}", name.trim_start_matches('/')))
}

/// A sysctl by its dotted name (`kernel.shmmax`), read from `/proc/sys/kernel/shmmax`.
pub(crate) fn sysctl_u64(name: &str) -> Option<u64> {
    sysctl_file(name)?.trim().parse().ok()
}

/// The file that holds sysctl `name` (`kernel.sem` → `/proc/sys/kernel/sem`).
pub(crate) fn sysctl_path(name: &str) -> Option<String> {
    (!name.contains('/') && !name.contains(".."))
        .then(|| format!("/proc/sys/{}", name.replace('.', "/")))
}

fn sysctl_file(name: &str) -> Option<String> {
    if name.contains('/') || name.contains("..") {
        return None;
    }
    std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/"))).ok()
}

/// Nothing to add to a System V remedy: Linux takes new limits at any time.
pub(crate) const SYSV_SYSCTL_NOTE: &str = "";

/// The sysctl that holds a System V limit (`shmmax` → `kernel.shmmax`).
pub(crate) fn sysv_sysctl(limit: &str) -> String {
    match limit {
        "semmsl" | "semmns" | "semopm" | "semmni" => "kernel.sem".to_string(),
        _ => format!("kernel.{limit}"),
    }
}

/// The System V shared-memory limits that errors quote.
pub(crate) fn sysv_shm_limits() -> SysvShmLimits {
    SysvShmLimits {
        shmmax: sysctl_u64("kernel.shmmax"),
        shmall_pages: sysctl_u64("kernel.shmall"),
        shmmni: sysctl_u64("kernel.shmmni"),
    }
}

/// `kernel.sem`: SEMMSL, SEMMNS, SEMOPM, SEMMNI, in that order, in one file.
pub(crate) fn sysv_sem_limits() -> SemLimits {
    let v: Vec<u64> = sysctl_file("kernel.sem")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    SemLimits {
        semmsl: v.first().copied(),
        semmns: v.get(1).copied(),
        semopm: v.get(2).copied(),
        semmni: v.get(3).copied(),
    }
}

/// The file system `fd` is on, by its `statfs` magic. A plain system call: safe in a signal
/// handler.
// f_type is i64 on x86_64 but another width elsewhere.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn fs_kind(fd: BorrowedFd<'_>) -> FsKind {
    rustix::fs::fstatfs(fd).map_or(FsKind::Other, |s| magic(s.f_type as i64))
}

/// The file system `path` is on.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn fs_kind_path(path: &std::path::Path) -> FsKind {
    rustix::fs::statfs(path).map_or(FsKind::Other, |s| magic(s.f_type as i64))
}

fn magic(f_type: i64) -> FsKind {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
    const MQUEUE_MAGIC: i64 = 0x1980_0202;
    match f_type & 0xffff_ffff {
        TMPFS_MAGIC => FsKind::Tmpfs,
        HUGETLBFS_MAGIC => FsKind::Hugetlbfs,
        MQUEUE_MAGIC => FsKind::Mqueue,
        _ => FsKind::Other,
    }
}

/// This thread's id (`gettid(2)`), as PI futex words and the fork-safe lock hold it.
pub(crate) fn thread_id() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// `recvmsg` flags that make every received fd close-on-exec atomically.
pub(crate) const RECV_CLOEXEC: rustix::net::RecvFlags = rustix::net::RecvFlags::CMSG_CLOEXEC;

/// `sendmsg` flags that turn a closed peer into `EPIPE` instead of a `SIGPIPE`.
pub(crate) const SEND_NOSIGNAL: rustix::net::SendFlags = rustix::net::SendFlags::NOSIGNAL;

/// Makes a received fd close-on-exec: nothing to do, [`RECV_CLOEXEC`] did it.
pub(crate) fn received_fd(_fd: BorrowedFd<'_>) {}

/// The name a memfd was created with, as the kernel shows it in `/proc/self/fd`
/// (`/memfd:NAME (deleted)`); `None` if `fd` is not one.
pub(crate) fn memfd_name(fd: BorrowedFd<'_>) -> Option<String> {
    use rustix::fd::AsRawFd;
    let p = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let s = p.to_string_lossy();
    let s = s.strip_prefix("/memfd:")?;
    Some(s.strip_suffix(" (deleted)").unwrap_or(s).to_string())
}

/// What the kernel shows `fd` as in `/proc/self/fd` (`anon_inode:[eventfd]`, `/memfd:x
/// (deleted)`, a path).
pub(crate) fn fd_link(fd: BorrowedFd<'_>) -> Option<std::ffi::OsString> {
    use rustix::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()
        .map(|p| p.into_os_string())
}

/// Opens the file behind `fd` anew (`/proc/self/fd/N`), with its own access mode: a new open
/// file description, not a `dup`.
pub(crate) fn reopen(
    fd: BorrowedFd<'_>,
    flags: rustix::fs::OFlags,
) -> Result<rustix::fd::OwnedFd, rustix::io::Errno> {
    use rustix::fd::AsRawFd;
    rustix::fs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
        flags | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
}

/// Whether process `pid` runs, and since when: with the pid, the start time names one
/// process for its whole life, where a pid alone may be reused. Only "no such file" (or a
/// zombie) is `Gone`: a failure to look is not a death.
pub(crate) fn process_state(pid: i32) -> ProcState {
    if pid <= 0 {
        return ProcState::Gone;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ESRCH) =>
        {
            ProcState::Gone
        }
        Err(_) => ProcState::Unknown,
        Ok(stat) => match parse_start(&stat) {
            Some(Some(start)) => ProcState::Running(start),
            Some(None) => ProcState::Gone,
            None => ProcState::Unknown,
        },
    }
}

/// The start time of process `pid`, or `None` if it is gone or cannot be told.
pub(crate) fn process_start(pid: i32) -> Option<u64> {
    match process_state(pid) {
        ProcState::Running(start) => Some(start),
        ProcState::Gone | ProcState::Unknown => None,
    }
}

/// The start time in a `/proc/PID/stat` line: `Some(None)` for a zombie, `None` for a line
/// that cannot be parsed.
fn parse_start(stat: &str) -> Option<Option<u64>> {
    // The command name (field 2) is in parentheses and may hold anything, ')' included.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return Some(None);
    }
    // Field 3 was the state; field 22 is 19 further.
    fields.nth(18)?.parse().ok().map(Some)
}
