//! macOS IPC limits: the `kern.sysv.*` sysctls (set at boot from `/etc/sysctl.conf`, or by
//! `sysctl -w` before the first System V call).

use super::sysctl_u64;
use crate::error::Result;
use crate::platform::facts::LimitFact as Limit;

/// Every System V limit macOS reports. POSIX objects have no limit macOS exposes.
pub(crate) fn read() -> Result<Vec<Limit>> {
    let page = rustix::param::page_size() as u64;
    let k = |name: &'static str, unit, meaning| {
        let sysctl = format!("kern.sysv.{name}");
        Limit {
            name,
            value: sysctl_u64(&sysctl),
            unit,
            unit_bytes: (unit == "pages").then_some(page),
            meaning,
            change: format!(
                "sysctl -w {sysctl}=VALUE (as root, before any System V object exists; \
                 persist it in /etc/sysctl.conf)"
            ),
            source: format!("sysctl {sysctl}"),
            usage: None,
        }
    };
    Ok(vec![
        k("shmmax", "bytes", "largest System V shared-memory segment"),
        k("shmall", "pages", "all System V shared memory together"),
        k(
            "shmmni",
            "segments",
            "number of System V shared-memory segments",
        ),
        k("shmmin", "bytes", "smallest System V shared-memory segment"),
        k(
            "shmseg",
            "segments",
            "System V segments one process may attach",
        ),
        k("semmsl", "semaphores", "semaphores in one System V set"),
        k("semmns", "semaphores", "System V semaphores in all sets"),
        k("semmni", "sets", "number of System V semaphore sets"),
        k(
            "semume",
            "undo entries",
            "SEM_UNDO entries one process may have",
        ),
    ])
}
