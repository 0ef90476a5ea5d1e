//! The operating-system layer: everything that differs between kernels lives below here.
//!
//! A port adds one module with the same functions (`set_inherit`, `limits`, `huge_pages`,
//! ...). Linux is the only one so far; on macOS `set_inherit` maps to `minherit`, the limits
//! to `kern.sysv.*` sysctls, and memfd is absent.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("shmkit supports Linux for now; the macOS port (minherit, kern.sysv.*) is planned");
