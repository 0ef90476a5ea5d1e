//! Anonymous shared memory (`mmap(2)` with `MAP_SHARED | MAP_ANONYMOUS`): shared with `fork`
//! children and nobody else.

use crate::error::{Error, ErrorKind, Result};
use crate::mapping::{Mapping, Unmap};
use rustix::mm::{self, MapFlags, ProtFlags};

/// Anonymous shared memory, shared with the children this process forks.
///
/// The classic parent/child example: the child writes 10, the parent reads 10.
///
/// ```
/// use std::sync::atomic::Ordering;
/// let seg = shmkit::AnonShared::new(4096)?;
/// // SAFETY: the child only stores to an atomic and calls _exit.
/// match unsafe { libc::fork() } {
///     0 => {
///         seg.atomic_u32(0).unwrap().store(10, Ordering::SeqCst);
///         unsafe { libc::_exit(0) };
///     }
///     pid => unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0); },
/// }
/// assert_eq!(seg.atomic_u32(0)?.load(Ordering::SeqCst), 10);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct AnonShared {
    map: Mapping,
}

impl AnonShared {
    /// `mmap(2)` with `MAP_SHARED | MAP_ANONYMOUS`: maps `len` bytes of zeroed shared memory.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a zero `len`; the OS error of `mmap` (such as
    /// `ENOMEM`).
    #[doc(alias = "mmap")]
    pub fn new(len: usize) -> Result<AnonShared> {
        AnonShared::map(len, false)
    }

    /// `mmap(2)` with `MAP_HUGETLB`: like [`AnonShared::new`], backed by huge pages. Fails with a
    /// message that says so when the machine has none reserved. Linux only: macOS has no huge
    /// pages for shared memory (its superpages are for private memory).
    ///
    /// # Errors
    /// As [`AnonShared::new`]; `ENOMEM` ([`ErrorKind::Os`]) when no huge pages are free, with a
    /// hint that says how many are reserved.
    #[cfg(target_os = "linux")]
    #[doc(alias = "MAP_HUGETLB")]
    pub fn new_huge(len: usize) -> Result<AnonShared> {
        AnonShared::map(len, true)
    }

    fn map(len: usize, huge: bool) -> Result<AnonShared> {
        let object = "anonymous shared memory";
        if len == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "mmap",
                object,
                "length must be at least 1 byte",
            ));
        }
        let mut flags = MapFlags::SHARED;
        if let (true, Some(f)) = (huge, crate::platform::MAP_HUGE) {
            flags |= f;
        }
        // SAFETY: a new mapping at an address the kernel chooses; it aliases nothing.
        let p = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                flags,
            )
        }
        .map_err(|e| {
            let err = Error::os("mmap", object, e);
            if huge {
                err.with_hint(crate::error::hint::huge_pages())
            } else {
                err
            }
        })?;
        let unit = if huge {
            crate::platform::huge_page_size()
        } else {
            rustix::param::page_size()
        };
        // SAFETY: `p` is the start of the mapping just made, of `len` bytes rounded up to
        // whole (huge) pages; it is handed to the Mapping, which unmaps it.
        let map = unsafe {
            Mapping::from_raw(
                p.cast(),
                len,
                len.div_ceil(unit) * unit,
                unit,
                true,
                Unmap::Munmap,
                None,
                object.to_string(),
            )?
        };
        Ok(AnonShared { map })
    }
}

crate::segment::segment!(AnonShared, map);
