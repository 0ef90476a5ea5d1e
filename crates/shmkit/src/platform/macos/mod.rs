//! macOS: inheritance through `minherit(2)` (the kernel's own `vm_inherit`, so no fork
//! handlers), limits from the `kern.sysv.*` sysctls, POSIX names of at most 31 bytes.
//!
//! The inventory reads the `kern.sysv.ipcs` sysctls and `proc_pidinfo`; POSIX shared memory
//! is seen only through the descriptors processes hold (see [`inventory`]).
//!
//! Not here yet, and absent from the crate on macOS: memfds, POSIX semaphores and message
//! queues, System V message queues and huge pages. `sync` waits with [`futex`]
//! (`os_sync_wait_on_address`, or `__ulock_wait`); its mutex tells a dead owner by
//! [`process_state`] (the kernel's unique process id; no kernel owner-died hand-off here).

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

/// `proc_pidinfo` flavor 17, from xnu's `bsd/sys/proc_info_private.h` (older releases:
/// `bsd/sys/proc_info.h` under `PRIVATE`); not in the SDK's headers nor in `libc`.
const PROC_PIDUNIQIDENTIFIERINFO: libc::c_int = 17;

/// `struct proc_uniqidentifierinfo`, as xnu declares it. Releases differ in the names and
/// splits of the words after `p_idversion` (`p_reserve2` as a `uint32_t`, then two `uint64_t`
/// reserves; or `p_orig_ppidversion`, then two); the size (56) and the offset of `p_uniqueid`
/// (16), the only field read, are the same in all of them.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types, dead_code)]
struct proc_uniqidentifierinfo {
    /// The main executable's UUID.
    p_uuid: [u8; 16],
    /// The process's 64-bit unique id: `++nextuniqueid` under the process-list lock at fork
    /// (`forkproc`, bsd/kern/kern_fork.c), so never reused until reboot.
    p_uniqueid: u64,
    p_puniqueid: u64,
    p_idversion: i32,
    p_orig_ppidversion: i32,
    p_reserve2: u64,
    p_reserve3: u64,
}

// `proc_pidinfo()` refuses a buffer smaller than its struct (`if (buffersize < size) return
// ENOMEM;`) and reports what it copied out (`*retval = sizeof(struct proc_uniqidentifierinfo);`):
// a kernel whose struct had another size fails every call here (ENOMEM, or a count that is not
// 56), which the fallback takes for "unknown", never misreads one.
const _: () = {
    assert!(std::mem::size_of::<proc_uniqidentifierinfo>() == 56);
    assert!(std::mem::offset_of!(proc_uniqidentifierinfo, p_uniqueid) == 16);
};

/// Whether process `pid` runs, and which one it is: [`ProcState::Running`] carries the
/// kernel's 64-bit unique process id, which with the pid names one process for its whole
/// life (a reused pid comes with another id), from
/// `proc_pidinfo(PROC_PIDUNIQIDENTIFIERINFO)`.
///
/// That flavor is readable for any user's process, where `PROC_PIDTBSDINFO` is refused (EPERM)
/// for another user's. In xnu's `proc_pidinfo()` (bsd/kern/proc_info.c,
/// apple-oss-distributions/xnu at 0f4c859e951fba394238ab619495c4e1d54d0f34):
///
/// ```c
/// /* Certain operations don't require privileges */
/// switch (flavor) {
/// case PROC_PIDT_SHORTBSDINFO:
/// case PROC_PIDUNIQIDENTIFIERINFO:
/// case PROC_PIDPATHINFO:
/// case PROC_PIDCOALITIONINFO:
/// case PROC_PIDPLATFORMINFO:
///         check_same_user = NO_CHECK_SAME_USER;
/// ```
///
/// and `proc_security_policy()` compares the caller's uid with the target's only when
/// `check_same_user` is set; what is left is the MAC hook (`mac_proc_check_proc_info`: a
/// sandbox may still refuse), which lands in the fallback below.
///
/// With `arg` 0, `findzomb` stays 0 and only `proc_find()` looks the pid up; its
/// `proc_ref_locked()` (bsd/kern/kern_proc.c) refuses a process that is a zombie, exiting
/// (`P_LIST_EXITED`) or still being created (`P_LIST_INCREATE`) (and, in older releases, one
/// whose references are being drained for exit or exec), and each of those fails with ESRCH,
/// "gone" here: none of them runs the program that took a lock any more, or yet.
pub(crate) fn process_state(pid: i32) -> ProcState {
    if pid <= 0 {
        return ProcState::Gone;
    }
    // SAFETY: plain integers and bytes, for which all zeros is a value.
    let mut info: proc_uniqidentifierinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<proc_uniqidentifierinfo>() as libc::c_int;
    // SAFETY: `info` is a writable `proc_uniqidentifierinfo` of `size` bytes, the flavor's
    // buffer type (checked against xnu's layout above); the kernel writes at most `size` bytes.
    let r = unsafe {
        libc::proc_pidinfo(
            pid,
            PROC_PIDUNIQIDENTIFIERINFO,
            0,
            (&raw mut info).cast(),
            size,
        )
    };
    if r == size {
        return ProcState::Running(info.p_uniqueid);
    }
    // ESRCH: no such process (or a zombie, an exiting one: see above). Otherwise refused (a
    // sandbox) or short: kill(pid, 0) tells a dead process from one we may not look at, and
    // a live one is never called dead.
    if r <= 0 && crate::platform::errno() == rustix::io::Errno::SRCH {
        return ProcState::Gone;
    }
    if crate::platform::process_alive(pid) {
        ProcState::Unknown
    } else {
        ProcState::Gone
    }
}
