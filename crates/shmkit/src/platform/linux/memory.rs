//! Facts about memory: huge pages and commit limits (`/proc/meminfo`), and this process's
//! own mappings (`/proc/self/smaps`, `/proc/self/maps`, `/proc/self/map_files`).

use crate::platform::Memory;

fn meminfo_kib(info: &str, field: &str) -> Option<u64> {
    info.lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
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

/// The default huge page size (`Hugepagesize` in `/proc/meminfo`), 2 MiB if unknown.
pub(crate) fn huge_page_size() -> usize {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo_kib(&info, "Hugepagesize:").map_or(2 << 20, |kib| kib as usize * 1024)
}

/// RAM and swap, and the overcommit policy, for an `ENOMEM` at creation.
pub(crate) fn memory() -> Memory {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Memory {
        ram_and_swap: (meminfo_kib(&info, "MemTotal:").unwrap_or(0)
            + meminfo_kib(&info, "SwapTotal:").unwrap_or(0))
            * 1024,
        overcommit: super::sysctl_u64("vm.overcommit_memory"),
    }
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
