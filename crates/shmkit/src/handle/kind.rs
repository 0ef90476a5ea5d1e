//! What a handle is and how it may be used: the part of a handle's description that both
//! operating systems share (the objects differ: descriptors on Linux, send rights on macOS).

/// What a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A memfd (`memfd_create`). Linux only.
    #[cfg(target_os = "linux")]
    Memfd,
    /// A POSIX shared-memory object (`shm_open`). Linux only (as a handle).
    #[cfg(target_os = "linux")]
    PosixShm,
    /// An eventfd (`eventfd(2)`): a counter to signal and wait on. Linux only.
    #[cfg(target_os = "linux")]
    EventFd,
    /// A pidfd (`pidfd_open(2)`): readable once its process has exited. Linux only.
    #[cfg(target_os = "linux")]
    PidFd,
    /// A Mach memory entry (`mach_make_memory_entry_64`). macOS only.
    #[cfg(target_os = "macos")]
    MachMemory,
    /// A Mach semaphore (`semaphore_create`). macOS only.
    #[cfg(target_os = "macos")]
    MachSemaphore,
    /// Any other Mach send right. macOS only.
    #[cfg(target_os = "macos")]
    MachPort,
}

impl Kind {
    /// The code of the kind on the wire (the registry's `info`; on macOS also the handle
    /// records of a message). Codes are per OS: a handle never leaves its machine.
    pub(crate) fn code(self) -> u8 {
        match self {
            #[cfg(target_os = "linux")]
            Kind::Memfd => 1,
            #[cfg(target_os = "linux")]
            Kind::PosixShm => 2,
            #[cfg(target_os = "linux")]
            Kind::EventFd => 3,
            #[cfg(target_os = "linux")]
            Kind::PidFd => 4,
            #[cfg(target_os = "macos")]
            Kind::MachMemory => 1,
            #[cfg(target_os = "macos")]
            Kind::MachSemaphore => 2,
            #[cfg(target_os = "macos")]
            Kind::MachPort => 3,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            #[cfg(target_os = "linux")]
            1 => Kind::Memfd,
            #[cfg(target_os = "linux")]
            2 => Kind::PosixShm,
            #[cfg(target_os = "linux")]
            3 => Kind::EventFd,
            #[cfg(target_os = "linux")]
            4 => Kind::PidFd,
            #[cfg(target_os = "macos")]
            1 => Kind::MachMemory,
            #[cfg(target_os = "macos")]
            2 => Kind::MachSemaphore,
            #[cfg(target_os = "macos")]
            3 => Kind::MachPort,
            _ => return None,
        })
    }

    /// The lowercase name (`memfd`, `posix-shm`, `eventfd`, `pidfd`; `mach-memory`,
    /// `mach-semaphore`, `mach-port`).
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            Kind::Memfd => "memfd",
            #[cfg(target_os = "linux")]
            Kind::PosixShm => "posix-shm",
            #[cfg(target_os = "linux")]
            Kind::EventFd => "eventfd",
            #[cfg(target_os = "linux")]
            Kind::PidFd => "pidfd",
            #[cfg(target_os = "macos")]
            Kind::MachMemory => "mach-memory",
            #[cfg(target_os = "macos")]
            Kind::MachSemaphore => "mach-semaphore",
            #[cfg(target_os = "macos")]
            Kind::MachPort => "mach-port",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How a handle may be used: on Linux the access mode of its descriptor, on macOS whether a
/// memory entry may be mapped writable (semaphores and ports are `ReadWrite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `O_RDONLY`; a read-only memory entry.
    ReadOnly,
    /// `O_RDWR`; a writable memory entry.
    ReadWrite,
}
