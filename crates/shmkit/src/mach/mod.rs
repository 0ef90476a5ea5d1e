//! Mach on macOS: memory entries, semaphores, names through the bootstrap server, and the
//! rights that carry them between processes. macOS only.
//!
//! The article this project grew from, in shmkit's terms: memory prepared with
//! `mach_vm_allocate` ([`MachMemory::allocate`]), an entry made of it, a FIFO semaphore
//! ([`MachSemaphore`]), both named through bootstrap ([`bootstrap::Service`]); a forked
//! child looks them up ([`bootstrap::look_up`]), maps the entry ([`MemoryEntry::map`]),
//! writes and signals. `shmkit tour` runs it.
//!
//! Rights are per task: a `fork` child has a new port namespace (only the bootstrap, host
//! and exception ports, and those of `mach_ports_register`, come along). Every value here
//! refuses to be used in a child of the process that made it
//! ([`ErrorKind::NotInherited`](crate::ErrorKind::NotInherited)) and releases nothing when
//! dropped there: a child looks its objects up again.
//!
//! ```
//! # #[cfg(target_os = "macos")] {
//! use shmkit::mach::{bootstrap, Handle, MachMemory, MachSemaphore, Policy};
//! use std::time::Duration;
//! let mem = MachMemory::new(4096)?;
//! mem.write_at(0, b"published")?;
//! let sem = MachSemaphore::new(Policy::Fifo, 0)?;
//! let name = bootstrap::unique_name("com.example.doc");
//! let service = bootstrap::Service::publish(
//!     &name,
//!     vec![
//!         Handle::Memory(mem.entry().try_clone()?),
//!         Handle::Semaphore(shmkit::mach::MachSemaphore::from_send_right(
//!             sem.send_right().try_clone()?,
//!         )),
//!     ],
//!     b"v1",
//! )?;
//!
//! // Any process of this login session (here: this one) finds the name.
//! let got = bootstrap::look_up(&name, Duration::from_secs(5))?;
//! assert_eq!(got.payload, b"v1");
//! let mut it = got.handles.into_iter();
//! let theirs = it.next().unwrap().into_memory()?.map()?;
//! let mut buf = [0u8; 9];
//! theirs.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"published");
//! it.next().unwrap().into_semaphore()?.signal()?;
//! assert!(sem.wait_timeout(Duration::from_secs(1))?);
//! drop(service);
//! # }
//! # Ok::<(), shmkit::Error>(())
//! ```

pub mod bootstrap;
mod exit;
mod ffi;
mod handle;
mod kern;
mod memory;
mod message;
mod port;
mod semaphore;

pub use exit::ProcessExit;
/// The most rights (handles) one message carries.
pub const MAX_HANDLES: usize = message::MAX_RIGHTS;
pub use handle::Handle;
pub use memory::{MachMemory, MemoryEntry};
pub use message::Sender;
pub use port::SendRight;
pub use semaphore::{MachSemaphore, Policy};
