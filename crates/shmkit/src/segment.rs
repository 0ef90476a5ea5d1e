//! Any kind of segment as one value, and what every segment type has: it dereferences to the
//! [`Mapping`] that it owns.

use crate::Mapping;

/// A segment of any kind, for code that opens objects by address and does not care which
/// kind it got (the inventory's [`open_memory`](crate::inventory::open_memory)). Dereferences
/// to its [`Mapping`]; dropping it drops the segment (removing the object if this value
/// created it).
///
/// ```
/// let seg: shmkit::AnySegment = shmkit::AnonShared::new(4096)?.into();
/// seg.write_at(0, b"any")?;
/// assert!(matches!(seg, shmkit::AnySegment::Anon(_)));
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AnySegment {
    /// Anonymous shared memory.
    Anon(crate::AnonShared),
    /// A POSIX shared-memory object.
    Posix(crate::PosixShm),
    /// A System V segment.
    Sysv(crate::SysvShm),
    /// A memfd (Linux only).
    #[cfg(target_os = "linux")]
    Memfd(crate::Memfd),
    /// A file mapped shared.
    File(crate::FileSegment),
    /// Mach memory (macOS only).
    #[cfg(target_os = "macos")]
    Mach(crate::mach::MachMemory),
}

impl std::ops::Deref for AnySegment {
    type Target = Mapping;
    fn deref(&self) -> &Mapping {
        match self {
            AnySegment::Anon(s) => s,
            AnySegment::Posix(s) => s,
            AnySegment::Sysv(s) => s,
            #[cfg(target_os = "linux")]
            AnySegment::Memfd(s) => s,
            AnySegment::File(s) => s,
            #[cfg(target_os = "macos")]
            AnySegment::Mach(s) => s,
        }
    }
}

/// `Deref<Target = Mapping>`, `AsRef<Mapping>` and the conversion into [`AnySegment`] for a
/// segment type whose mapping is in `$field`.
macro_rules! segment {
    ($t:ident, $field:ident) => {
        impl std::ops::Deref for $t {
            type Target = crate::Mapping;
            fn deref(&self) -> &crate::Mapping {
                &self.$field
            }
        }

        impl AsRef<crate::Mapping> for $t {
            fn as_ref(&self) -> &crate::Mapping {
                &self.$field
            }
        }

        impl From<$t> for crate::AnySegment {
            fn from(s: $t) -> Self {
                crate::segment::variant!($t, s)
            }
        }
    };
}
pub(crate) use segment;

/// The [`AnySegment`] variant of each segment type.
macro_rules! variant {
    (AnonShared, $s:ident) => {
        crate::AnySegment::Anon($s)
    };
    (MachMemory, $s:ident) => {
        crate::AnySegment::Mach($s)
    };
    (PosixShm, $s:ident) => {
        crate::AnySegment::Posix($s)
    };
    (SysvShm, $s:ident) => {
        crate::AnySegment::Sysv($s)
    };
    (Memfd, $s:ident) => {
        crate::AnySegment::Memfd($s)
    };
    (FileSegment, $s:ident) => {
        crate::AnySegment::File($s)
    };
}
pub(crate) use variant;
