//! Linux: inheritance through `madvise` and fork handlers, limits and inventory from `/proc`.

pub(crate) mod futex;
pub(crate) mod inventory;
pub(crate) mod limits;

use crate::registry::{self, Slot};
use crate::Inherit;
use rustix::io::Errno;
use rustix::mm::{self, Advice, MapFlags, ProtFlags};
use std::sync::atomic::Ordering;
use std::sync::Once;

/// Sets what `fork` gives a child of the mapping registered in `slot`
/// (`madvise(2)`: `MADV_DOFORK`, `MADV_DONTFORK`).
pub(crate) fn set_inherit(slot: &'static Slot, mode: Inherit) -> Result<(), Errno> {
    static ATFORK: Once = Once::new();
    ATFORK.call_once(|| {
        // SAFETY: the three handlers are `extern "C" fn()` that live for the whole program.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
    let start = slot.start.load(Ordering::Acquire);
    let len = slot.len.load(Ordering::Relaxed);
    let advice = match mode {
        Inherit::Share => Advice::LinuxDoFork,
        // Copy and Zero are rebuilt in the child by `child` below; the shared pages themselves
        // must not be duplicated into it.
        Inherit::Copy | Inherit::None | Inherit::Zero => Advice::LinuxDontFork,
    };
    registry::lock();
    // SAFETY: [start, start+len) is a live mapping owned by the caller's `Mapping`; these
    // advices change only what fork does with it.
    let r = unsafe { mm::madvise(start as *mut _, len, advice) };
    if r.is_ok() {
        slot.inherit.store(mode.to_u8(), Ordering::Relaxed);
    }
    registry::unlock();
    r
}

// The fork handlers. `prepare` runs in the parent just before fork and holds the registry
// lock until `parent` or `child` runs, so no mapping is added, removed or re-moded while the
// address space is being duplicated.

extern "C" fn prepare() {
    registry::lock();
    registry::for_each_slot(|s| {
        let start = s.start.load(Ordering::Acquire);
        if start == 0 || Inherit::from_u8(s.inherit.load(Ordering::Relaxed)) != Inherit::Copy {
            return;
        }
        let len = s.len.load(Ordering::Relaxed);
        // SAFETY: a fresh private anonymous mapping of `len` bytes; on success we copy the
        // live shared mapping [start, start+len) into it (a fault past a truncated end is
        // absorbed by the SIGBUS guard). The child inherits this private copy copy-on-write.
        unsafe {
            if let Ok(p) = mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            ) {
                std::ptr::copy_nonoverlapping(start as *const u8, p as *mut u8, len);
                s.snapshot.store(p as usize, Ordering::Relaxed);
            }
        }
    });
}

extern "C" fn parent() {
    registry::for_each_slot(|s| {
        let snap = s.snapshot.swap(0, Ordering::Relaxed);
        if snap != 0 {
            // SAFETY: `snap` is the private snapshot `prepare` mapped; nothing else uses it.
            let _ = unsafe { mm::munmap(snap as *mut _, s.len.load(Ordering::Relaxed)) };
        }
    });
    registry::unlock();
}

extern "C" fn child() {
    // Runs in the child before fork() returns to the caller, single-threaded. Only system
    // calls here: the child may be about to do nothing but `_exit`.
    registry::for_each_slot(|s| {
        let start = s.start.load(Ordering::Acquire);
        if start == 0 {
            return;
        }
        let len = s.len.load(Ordering::Relaxed);
        let prot = if s.writable.load(Ordering::Relaxed) {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        match Inherit::from_u8(s.inherit.load(Ordering::Relaxed)) {
            Inherit::Copy => {
                let snap = s.snapshot.swap(0, Ordering::Relaxed);
                if snap != 0 {
                    // SAFETY: moves the child's copy of the snapshot to the address where the
                    // (MADV_DONTFORK, hence absent) shared mapping was.
                    unsafe {
                        let _ = mm::mremap_fixed(
                            snap as *mut _,
                            len,
                            len,
                            mm::MremapFlags::MAYMOVE,
                            start as *mut _,
                        );
                        let _ = mm::mprotect(start as *mut _, len, mprotect_flags(prot));
                    }
                }
            }
            Inherit::Zero => {
                // SAFETY: the range is free in the child (MADV_DONTFORK); fresh zero pages.
                unsafe {
                    let _ = mm::mmap_anonymous(
                        start as *mut _,
                        len,
                        prot,
                        MapFlags::PRIVATE | MapFlags::FIXED,
                    );
                }
            }
            Inherit::Share | Inherit::None => {}
        }
        // The child's mappings are private now (or absent): nothing to guard against.
        s.guard.store(false, Ordering::Relaxed);
    });
    registry::unlock();
}

fn mprotect_flags(p: ProtFlags) -> mm::MprotectFlags {
    mm::MprotectFlags::from_bits_truncate(p.bits())
}

/// The `CLOCK_REALTIME` time `after` from now, as the absolute timeouts of `sem_timedwait`,
/// `mq_timedreceive` and `FUTEX_LOCK_PI` want it.
pub(crate) fn realtime_after(after: std::time::Duration) -> libc::timespec {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        + after;
    libc::timespec {
        tv_sec: at.as_secs() as libc::time_t,
        tv_nsec: at.subsec_nanos() as libc::c_long,
    }
}

/// Reads a number from a `/proc/sys` file.
pub(crate) fn proc_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The System V shared-memory limits that errors quote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SysvShmLimits {
    pub shmmax: Option<u64>,
    pub shmall_pages: Option<u64>,
    pub shmmni: Option<u64>,
}

pub(crate) fn sysv_shm_limits() -> SysvShmLimits {
    SysvShmLimits {
        shmmax: proc_u64("/proc/sys/kernel/shmmax"),
        shmall_pages: proc_u64("/proc/sys/kernel/shmall"),
        shmmni: proc_u64("/proc/sys/kernel/shmmni"),
    }
}

/// How to raise a System V limit, for error messages.
pub(crate) fn sysctl_hint(name: &str) -> String {
    format!("raise it with `sysctl -w kernel.{name}=VALUE` (as root)")
}

/// `HugePages_Total` and `HugePages_Free` of `/proc/meminfo`.
pub(crate) fn huge_pages() -> (u64, u64) {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |k: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("HugePages_Total:"), field("HugePages_Free:"))
}

/// The remedy for a failed huge-page mapping.
pub(crate) fn huge_pages_hint() -> String {
    let (total, free) = huge_pages();
    if total == 0 {
        "this machine has no huge pages configured (HugePages_Total is 0 in /proc/meminfo); \
         reserve some with `sysctl -w vm.nr_hugepages=N` (as root)"
            .to_string()
    } else {
        format!(
            "{free} of {total} huge pages are free (/proc/meminfo); the size must be a multiple \
             of the huge page size; reserve more with `sysctl -w vm.nr_hugepages=N`"
        )
    }
}

/// The remedy when the kernel refuses to commit memory for a new segment (`ENOMEM`).
pub(crate) fn memory_commit_hint(size: u64) -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |field: &str| -> Option<u64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    let ram_and_swap = kib("MemTotal:").unwrap_or(0) + kib("SwapTotal:").unwrap_or(0);
    let policy = proc_u64("/proc/sys/vm/overcommit_memory").map_or("?".into(), |v| v.to_string());
    format!(
        "the kernel would not commit {} to the segment; this machine has {} of RAM and swap \
         (vm.overcommit_memory = {policy}); ask for less",
        crate::size::human(size),
        crate::size::human(ram_and_swap * 1024)
    )
}

/// Longest POSIX shm name after the leading `/`. The kernel allows a 255-byte file name in
/// `/dev/shm`, but glibc's `shm_open` refuses names of 254 bytes or more (it counts the NUL
/// against `NAME_MAX`), so longer names could not be opened by C or Python peers.
pub(crate) const POSIX_NAME_MAX: usize = 253;

/// Where a POSIX shm object shows in the file system, for hints.
pub(crate) fn posix_shm_path(name: &str) -> String {
    format!("/dev/shm{name}")
}

/// Whether a process exists (`kill(pid, 0)`: `EPERM` means it exists but is not ours).
pub(crate) fn process_alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}
