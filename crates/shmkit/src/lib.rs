//! Shared memory between processes, done right.
//!
//! shmkit puts every kind of shared memory that Linux offers behind one API:
//!
//! | type              | what                                   | reached by            |
//! |-------------------|----------------------------------------|-----------------------|
//! | [`AnonShared`]    | `MAP_SHARED \| MAP_ANONYMOUS`          | `fork` children       |
//! | [`PosixShm`]      | `shm_open` / `ftruncate` / `mmap`      | a name, `/name`       |
//! | [`SysvShm`]       | `shmget` / `shmat`                     | a key or an id        |
//! | [`Memfd`]         | `memfd_create`, with seals             | its fd, passed around |
//! | [`FileSegment`]   | a regular file, `MAP_SHARED`           | a path                |
//!
//! All of them dereference to [`Mapping`], which offers bounds-checked copies, atomics and
//! typed volatile views, never a safe `&[u8]` of memory that another process can change;
//! [`Mapping::set_inherit`] chooses what a `fork` child gets ([`Inherit`]). Creators remove
//! their objects when dropped; openers never do. Creation is exclusive and mode 0600 unless
//! asked otherwise.
//!
//! [`sync`] puts semaphores, a mutex that reports its owner's death, condition variables,
//! events and create-or-open initialization inside any segment; [`posix_sem`], [`posix_mq`],
//! [`sysv::sem`] and [`sysv::msg`] wrap the operating system's own semaphores and queues.
//!
//! Linux is the first platform; on macOS the crate builds with anonymous, POSIX, System V and
//! file segments, fork inheritance (`Share`, `Copy`, `None`), System V semaphores and [`sync`]
//! (its mutex detects a dead owner by polling an owner record there), and adds [`mach`]:
//! Mach memory entries, semaphores and bootstrap names. Items marked "Linux
//! only" in their documentation (memfds, POSIX semaphores and queues, System V message queues,
//! huge pages) are absent elsewhere.
//!
//! ```
//! use shmkit::PosixShm;
//! let name = format!("/shmkit-doc-lib-{}", std::process::id());
//! let writer = PosixShm::create(&name, 4096)?;
//! writer.write_at(0, b"hello from shmkit")?;
//!
//! // Any other process (here: the same one) opens it by name.
//! let reader = PosixShm::options().read_only(true).open(&name)?;
//! let mut buf = [0u8; 17];
//! reader.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello from shmkit");
//! # Ok::<(), shmkit::Error>(())
//! ```
#![cfg_attr(not(target_os = "macos"), doc = "[`mach`]: crate")]
#![cfg_attr(not(target_os = "linux"), doc = "[`Memfd`]: crate")]
#![cfg_attr(not(target_os = "linux"), doc = "[`posix_sem`]: crate")]
#![cfg_attr(not(target_os = "linux"), doc = "[`posix_mq`]: crate")]
#![cfg_attr(not(target_os = "linux"), doc = "[`sysv::msg`]: crate::sysv")]
#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]

mod anon;
#[cfg(all(feature = "bridge", target_os = "linux"))]
pub mod bridge;
#[cfg(target_os = "linux")]
pub mod channel;
mod error;
mod fd_map;
mod file;
pub mod handle;
pub mod inventory;
pub mod limits;
#[cfg(target_os = "macos")]
pub mod mach;
mod mapping;
#[cfg(target_os = "linux")]
mod memfd;
mod options;
mod ownership;
mod platform;
pub mod posix;
#[cfg(target_os = "linux")]
pub mod posix_mq;
#[cfg(target_os = "linux")]
pub mod posix_sem;
pub mod registry;
mod segment;
pub mod size;
pub mod sync;
pub mod sysv;
pub mod users;
mod view;

pub use anon::AnonShared;
pub use error::{Error, ErrorKind, Result};
pub use fd_map::ObjectStat;
pub use file::{FileOptions, FileSegment};
pub use mapping::Mapping;
#[cfg(target_os = "linux")]
pub use memfd::{Memfd, Seals};
pub use platform::Inherit;
pub use posix::{PosixOptions, PosixShm};
pub use segment::AnySegment;
pub use sysv::{SysvKey, SysvOptions, SysvShm, SysvStat};
pub use view::View;

/// The README's example is compiled and run as a doctest, so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
