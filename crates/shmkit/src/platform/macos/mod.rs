//! macOS: inheritance through `minherit(2)` (the kernel's own `vm_inherit`, so no fork
//! handlers), limits from the `kern.sysv.*` sysctls, POSIX names of at most 31 bytes.
//!
//! The inventory reads the `kern.sysv.ipcs` sysctls and `proc_pidinfo`; POSIX shared memory
//! is seen only through the descriptors processes hold (see [`inventory`]).
//!
//! Not here yet, and absent from the crate on macOS: memfds, POSIX semaphores and message
//! queues, System V message queues and huge pages. `sync` waits with [`futex`]
//! (`os_sync_wait_on_address`, or `__ulock_wait`); its mutex tells a dead owner by
//! [`process_state`] (no kernel owner-died hand-off here).

mod fork;
pub(crate) mod futex;
pub(crate) mod inventory;
pub(crate) mod limits;

pub(crate) use fork::{ensure_fork_handlers, generation, set_inherit};

use super::{FsKind, Memory, ProcState, SemLimits, SysvShmLimits};
use rustix::fd::BorrowedFd;

/// The call behind `set_inherit`, for errors.
pub(crate) const INHERIT_CALL: &str = "minherit";

/// macOS refuses `fchmod` on a POSIX shm descriptor (`EINVAL`: it is no vnode), so the mode
/// given to `shm_open` is final and the umask applies to it. Succeeds only if the object got
/// exactly `mode`; else `ENOTSUP`, rather than leave an object more or less open than asked.
pub(crate) fn set_posix_mode(fd: BorrowedFd<'_>, mode: u32) -> Result<(), rustix::io::Errno> {
    let st = rustix::fs::fstat(fd)?;
    if crate::platform::mode_from_raw(st.st_mode) & 0o7777 == mode & 0o7777 {
        Ok(())
    } else {
        Err(rustix::io::Errno::NOTSUP)
    }
}

/// Sets `SO_NOSIGPIPE` on the socket, macOS's per-socket stand-in for `MSG_NOSIGNAL`, so
/// that a closed peer makes `sendmsg` fail with `EPIPE` instead of killing the process.
pub(crate) fn before_send(socket: BorrowedFd<'_>) {
    let _ = rustix::net::sockopt::set_socket_nosigpipe(socket, true);
}

/// No huge pages for `shmget` on macOS.
pub(crate) const SHM_HUGE: Option<i32> = None;

/// No huge pages for `mmap` of shared memory on macOS (superpages are for private memory).
pub(crate) const MAP_HUGE: Option<rustix::mm::MapFlags> = None;

/// Longest POSIX shm name after the leading `/`: the kernel's `PSHMNAMLEN` is 31 bytes,
/// counting the `/`.
pub(crate) const POSIX_NAME_MAX: usize = 30;

/// POSIX objects live in the kernel, in no directory.
pub(crate) const POSIX_SHM_DIR: Option<&str> = None;

/// POSIX objects have no path on macOS.
pub(crate) fn posix_shm_path(_name: &str) -> Option<String> {
    None
}

/// A numeric sysctl by name (`sysctlbyname(3)`), 32 or 64 bits wide.
pub(crate) fn sysctl_u64(name: &str) -> Option<u64> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 8];
    let mut len: libc::size_t = buf.len();
    // SAFETY: `buf` has `len` writable bytes; no new value is set (null, 0).
    let r = unsafe {
        libc::sysctlbyname(
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    match (r, len) {
        (0, 4) => Some(u64::from(u32::from_ne_bytes(buf[..4].try_into().ok()?))),
        (0, 8) => Some(u64::from_ne_bytes(buf)),
        _ => None,
    }
}

/// Sysctls are no files on macOS.
pub(crate) fn sysctl_path(_name: &str) -> Option<String> {
    None
}

/// The sysctl that holds a System V limit (`shmmax` → `kern.sysv.shmmax`).
pub(crate) fn sysv_sysctl(limit: &str) -> String {
    format!("kern.sysv.{limit}")
}

/// What a System V remedy adds on macOS: the kernel takes new `kern.sysv.*` values only
/// until System V is first used after boot, and `shmmni` (with `shmseg`) not at all after.
pub(crate) const SYSV_SYSCTL_NOTE: &str = "; macOS takes new kern.sysv values only until \
    System V is first used after boot (kern.sysv.shmmni and kern.sysv.shmseg never after it; \
    listing System V objects, as shmkit ls does, counts as a use): if sysctl refuses, put the \
    value in /etc/sysctl.conf and reboot";

/// The System V shared-memory limits that errors quote.
pub(crate) fn sysv_shm_limits() -> SysvShmLimits {
    SysvShmLimits {
        shmmax: sysctl_u64("kern.sysv.shmmax"),
        shmall_pages: sysctl_u64("kern.sysv.shmall"),
        shmmni: sysctl_u64("kern.sysv.shmmni"),
    }
}

/// The System V semaphore limits (`kern.sysv.sem*`; macOS has no SEMOPM sysctl).
pub(crate) fn sysv_sem_limits() -> SemLimits {
    SemLimits {
        semmsl: sysctl_u64("kern.sysv.semmsl"),
        semmns: sysctl_u64("kern.sysv.semmns"),
        semopm: None,
        semmni: sysctl_u64("kern.sysv.semmni"),
    }
}

/// The key in an `ipc_perm` (`_key` in Darwin's headers).
pub(crate) fn perm_key(perm: &libc::ipc_perm) -> i32 {
    perm._key
}

/// macOS has no tmpfs or hugetlbfs behind shared memory: every object is "other".
pub(crate) fn fs_kind(_fd: BorrowedFd<'_>) -> FsKind {
    FsKind::Other
}

/// This thread's id (`pthread_threadid_np`), truncated to the 32 bits the fork-safe lock keeps.
pub(crate) fn thread_id() -> u32 {
    let mut id = 0u64;
    // SAFETY: the current thread and a valid out-pointer.
    unsafe { libc::pthread_threadid_np(0 as libc::pthread_t, &mut id) };
    id as u32
}

/// Mappings of shared memory use the base page size on macOS.
pub(crate) fn mapping_page_size(_addr: usize) -> usize {
    rustix::param::page_size()
}

/// macOS cannot open the file behind a mapping by address.
pub(crate) fn mapped_file(_addr: usize) -> Option<rustix::fd::OwnedFd> {
    None
}

/// No huge pages for shared memory.
pub(crate) fn huge_pages() -> (u64, u64) {
    (0, 0)
}

/// The base page size: there are no huge pages for shared memory.
pub(crate) fn huge_page_size() -> usize {
    rustix::param::page_size()
}

/// RAM (`hw.memsize`) for an `ENOMEM` at creation; macOS swaps dynamically and has no
/// overcommit policy.
pub(crate) fn memory() -> Memory {
    Memory {
        ram_and_swap: sysctl_u64("hw.memsize").unwrap_or(0),
        overcommit: None,
    }
}

/// macOS has no `MSG_CMSG_CLOEXEC`: [`received_fd`] sets the flag instead.
pub(crate) const RECV_CLOEXEC: rustix::net::RecvFlags = rustix::net::RecvFlags::empty();

/// macOS has no `MSG_NOSIGNAL` (its equivalent is the socket option `SO_NOSIGPIPE`).
pub(crate) const SEND_NOSIGNAL: rustix::net::SendFlags = rustix::net::SendFlags::empty();

/// Makes a received fd close-on-exec (`fcntl(F_SETFD, FD_CLOEXEC)`).
pub(crate) fn received_fd(fd: BorrowedFd<'_>) {
    let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
}

/// Whether process `pid` runs, and since when: with the pid, the start time names one
/// process for its whole life, where a pid alone may be reused
/// (`proc_pidinfo(PROC_PIDTBSDINFO)`).
pub(crate) fn process_state(pid: i32) -> ProcState {
    if pid <= 0 {
        return ProcState::Gone;
    }
    // SAFETY: plain data, filled by proc_pidinfo.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a writable `proc_bsdinfo` of `size` bytes, the flavor's buffer type.
    let r =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size) };
    if r == size {
        if info.pbi_status == libc::SZOMB {
            return ProcState::Gone;
        }
        return ProcState::Running(
            info.pbi_start_tvsec
                .saturating_mul(1_000_000)
                .saturating_add(info.pbi_start_tvusec),
        );
    }
    // ESRCH: no such process (zombies included, which proc_pidinfo does not look up as far as
    // we know; kill(2) would call them alive). Otherwise refused or short: kill(pid, 0) tells a
    // dead process from one we may not look at.
    if r <= 0 && crate::platform::errno() == rustix::io::Errno::SRCH {
        return ProcState::Gone;
    }
    if crate::platform::process_alive(pid) {
        ProcState::Unknown
    } else {
        ProcState::Gone
    }
}
