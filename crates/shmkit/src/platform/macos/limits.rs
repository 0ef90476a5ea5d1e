//! macOS IPC limits: the `kern.sysv.*` sysctls (set at boot from `/etc/sysctl.conf`, or by
//! `sysctl -w` before the first System V call).

use super::sysctl_u64;
use crate::error::Result;
use crate::platform::facts::{sysv_limit, LimitFact as Limit};

/// Every System V limit macOS reports. POSIX objects have no limit macOS exposes.
pub(crate) fn read() -> Result<Vec<Limit>> {
    let page = rustix::param::page_size() as u64;
    let k = |name: &'static str| {
        let (unit, meaning) = sysv_limit(name);
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
    Ok([
        "shmmax", "shmall", "shmmni", "shmmin", "shmseg", "semmsl", "semmns", "semmni", "semume",
    ]
    .into_iter()
    .map(k)
    .collect())
}
