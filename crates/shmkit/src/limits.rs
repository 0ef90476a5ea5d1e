//! The kernel's IPC limits: value, meaning, where it was read, current use, how to change it.
//!
//! ```
//! let limits = shmkit::limits::read()?;
//! let shmmni = limits.iter().find(|l| l.name == "shmmni").unwrap();
//! assert!(shmmni.value.unwrap() > 0);
//! assert!(shmmni.usage.is_some());
//! # Ok::<(), shmkit::Error>(())
//! ```

use crate::error::Result;
use crate::inventory::{self, Kind, ListOptions};

/// One limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// Its name (`shmmax`, `shmall`, `msgmnb`, ...).
    pub name: &'static str,
    /// The value, if it could be read.
    pub value: Option<u64>,
    /// What the value counts: `bytes`, `pages`, `segments`, ...
    pub unit: &'static str,
    /// What it limits.
    pub meaning: &'static str,
    /// Where the value comes from (a file, a sysctl, a constant of the kernel).
    pub source: String,
    /// What is in use now against it, in the same unit, where that can be measured.
    pub usage: Option<u64>,
    /// The value in bytes, for limits counted in pages.
    pub bytes: Option<u64>,
    /// How to change it.
    pub change: String,
}

/// Reads every IPC limit of this machine, with what the objects that exist now use of it.
///
/// # Errors
/// When the System V tables cannot be read (see [`inventory::list`]).
pub fn read() -> Result<Vec<Limit>> {
    let facts = crate::platform::limits::read()?;
    // Where the OS cannot list its objects (macOS, for now), the limits come without usage.
    let (objects, listed) = match inventory::list(&ListOptions {
        kinds: vec![Kind::SysvShm, Kind::SysvSem, Kind::SysvMsg],
        holders: false,
    }) {
        Ok(listing) => (listing.objects, true),
        Err(e) if e.kind() == crate::ErrorKind::Unsupported => (Vec::new(), false),
        Err(e) => return Err(e),
    };
    let of = |k: Kind| objects.iter().filter(move |o| o.kind == k);
    let shm: Vec<u64> = of(Kind::SysvShm).filter_map(|o| o.size).collect();
    let sems: Vec<u64> = of(Kind::SysvSem)
        .filter_map(|o| o.nsems.map(u64::from))
        .collect();
    let msg: Vec<u64> = of(Kind::SysvMsg).filter_map(|o| o.size).collect();
    let page = crate::platform::page_size() as u64;
    // POSIX queues are counted only where the OS lists them (an mqueue mount on Linux).
    let queues = || inventory::posix_mq_count().ok().flatten();
    Ok(facts
        .into_iter()
        .map(|f| {
            let measured = match f.name {
                "shmmax" => shm.iter().copied().max(),
                "shmall" => Some(shm.iter().map(|s| s.div_ceil(page)).sum()),
                "shmmni" => Some(shm.len() as u64),
                "shmmin" => shm.iter().copied().min(),
                "msgmnb" => msg.iter().copied().max(),
                "msgmni" => Some(msg.len() as u64),
                "semmsl" => sems.iter().copied().max(),
                "semmns" => Some(sems.iter().sum()),
                "semmni" => Some(sems.len() as u64),
                "queues_max" => queues(),
                _ => None,
            };
            let measured = measured.filter(|_| listed);
            Limit {
                name: f.name,
                value: f.value,
                unit: f.unit,
                meaning: f.meaning,
                source: f.source,
                usage: f.usage.or(measured),
                bytes: f
                    .unit_bytes
                    .and_then(|b| f.value.map(|v| v.saturating_mul(b))),
                change: f.change,
            }
        })
        .collect())
}
