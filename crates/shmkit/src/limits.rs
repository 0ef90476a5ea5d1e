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
    /// Where the value comes from (a file, a constant of the kernel).
    pub source: String,
    /// What is in use now against it, in the same unit, where that can be measured.
    pub usage: Option<u64>,
    /// The value in bytes, for limits counted in pages.
    pub bytes: Option<u64>,
    /// How to change it.
    pub change: String,
}

/// Reads every IPC limit of this machine.
pub fn read() -> Result<Vec<Limit>> {
    crate::platform::limits::read()
}
