//! Remedies that several errors share, written from the facts the platform layer reports.

use crate::platform;
use crate::size::human;

/// How to raise the System V limit `limit` (`shmmax`, `shmall`, ...).
pub(crate) fn raise_sysv(limit: &str) -> String {
    format!(
        "raise it with `sysctl -w {}=VALUE` (as root){}",
        platform::sysv_sysctl(limit),
        platform::SYSV_SYSCTL_NOTE
    )
}

/// The remedy for a failed huge-page mapping, from how many the machine reserves.
pub(crate) fn huge_pages() -> String {
    let (total, free) = platform::huge_pages();
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
pub(crate) fn memory_commit(size: u64) -> String {
    let m = platform::memory();
    let policy = m
        .overcommit
        .map_or(String::new(), |v| format!(" (vm.overcommit_memory = {v})"));
    format!(
        "the kernel would not commit {} to the segment; this machine has {} of RAM and \
         swap{policy}; ask for less",
        human(size),
        human(m.ram_and_swap)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sysv_remedy_names_the_sysctl_and_on_macos_when_it_can_change() {
        let h = super::raise_sysv("shmmax");
        assert!(h.contains(&crate::platform::sysv_sysctl("shmmax")), "{h}");
        #[cfg(target_os = "macos")]
        assert!(
            h.contains("/etc/sysctl.conf") && h.contains("shmmni"),
            "{h}"
        );
        #[cfg(target_os = "linux")]
        assert!(!h.contains("sysctl.conf"), "{h}");
    }
}
