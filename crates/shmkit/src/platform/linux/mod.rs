//! Linux: inheritance through `madvise` and fork handlers, limits and inventory from `/proc`.

mod fork;
pub(crate) mod futex;
pub(crate) mod inventory;
pub(crate) mod limits;

pub(crate) use fork::{ensure_fork_handlers, set_inherit};

/// The `CLOCK_REALTIME` time `after` from now, as the absolute timeouts of `sem_timedwait`,
/// `mq_timedreceive` and `FUTEX_LOCK_PI` want it.
///
/// `None` when the time cannot be expressed (`Duration::MAX`, or past what `time_t` holds):
/// such a timeout means "wait forever", the same on every primitive and OS object.
pub(crate) fn realtime_after(after: std::time::Duration) -> Option<libc::timespec> {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .checked_add(after)?;
    Some(libc::timespec {
        tv_sec: libc::time_t::try_from(at.as_secs()).ok()?,
        tv_nsec: at.subsec_nanos() as libc::c_long,
    })
}

/// The page size of the mapping that starts at `addr` (`KernelPageSize` in
/// `/proc/self/smaps`): the huge page size for `SHM_HUGETLB` segments, whose attachments must be
/// handled in whole huge pages.
pub(crate) fn mapping_page_size(addr: usize) -> usize {
    let small = rustix::param::page_size();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return small;
    };
    let head = format!("{addr:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
    lines.next();
    lines
        .take_while(|l| !l.contains('-') || l.contains(':'))
        .find_map(|l| l.strip_prefix("KernelPageSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(small, |kib| (kib * 1024).max(small))
}

/// `/proc/sys/kernel/sem`: SEMMSL, SEMMNS, SEMOPM, SEMMNI (empty if unreadable).
pub(crate) fn kernel_sem() -> Vec<u64> {
    std::fs::read_to_string("/proc/sys/kernel/sem")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect()
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

/// Where glibc keeps POSIX shared memory and named semaphores.
pub(crate) const POSIX_SHM_DIR: &str = "/dev/shm";

/// Where a POSIX shm object shows in the file system, for hints.
pub(crate) fn posix_shm_path(name: &str) -> String {
    format!("/dev/shm{name}")
}

/// Whether a process exists (`kill(pid, 0)`: `EPERM` means it exists but is not ours).
pub(crate) fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        // 0 and negatives name process groups or everyone in kill(2), never one process.
        return false;
    }
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

/// The size of a page.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// The file behind this process's mapping that starts at `addr`, opened read-only through
/// `/proc/self/map_files` (which needs `CAP_SYS_ADMIN`; `None` without it). For a System V
/// segment it is the segment's own shmem file, which `pread` reads without allocating.
pub(crate) fn mapped_file(addr: usize) -> Option<rustix::fd::OwnedFd> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let head = format!("{addr:x}-");
    let range = maps
        .lines()
        .find(|l| l.starts_with(&head))?
        .split(' ')
        .next()?
        .to_string();
    rustix::fs::open(
        format!("/proc/self/map_files/{range}").as_str(),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
}

/// Which pages of `len` bytes from `addr` (page-aligned, mapped by this process) are in
/// memory (`mincore(2)`): for a shared mapping, whether the object has the page at all, mapped
/// here or not; a swapped-out page counts as absent. `None` if mincore fails.
pub(crate) fn pages_present(addr: usize, len: usize) -> Option<Vec<bool>> {
    let page = page_size();
    let pages = len.div_ceil(page);
    let mut vec = vec![0u8; pages];
    // SAFETY: `addr` is page-aligned and the range is mapped by the caller; mincore writes one
    // byte per page into `vec`, which has that many.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, len, vec.as_mut_ptr()) };
    (r == 0).then(|| vec.iter().map(|b| b & 1 != 0).collect())
}

/// Bytes of System V segment `id` in swap (the `swap` column of `/proc/sysvipc/shm`).
pub(crate) fn swapped_sysv_bytes(id: i32) -> Option<u64> {
    inventory::sysv_shm_column(id, "swap")
}
