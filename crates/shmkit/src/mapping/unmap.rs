//! Undoing a mapping: in the process that made it, and in a fork child, where what is there
//! depends on the mapping's inheritance.

use super::Mapping;
use crate::platform::maps::{self as registry, ABSENT};
use crate::Inherit;
use rustix::mm;

/// How a mapping is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmap {
    /// `munmap(2)`.
    Munmap,
    /// `shmdt(2)`: a System V attachment.
    Shmdt,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let here = rustix::process::getpid() == self.pid;
        let how = if self.slot.state() & ABSENT != 0 {
            // Not mapped in this fork child: unmapping the range could destroy something else
            // that was placed there since.
            None
        } else {
            match (here, self.inherit()) {
                (true, _) | (false, Inherit::Share) => Some(self.unmap),
                // In a fork child, Copy and Zero mappings were replaced by private pages.
                (false, Inherit::Copy | Inherit::Zero) => Some(Unmap::Munmap),
                (false, Inherit::None) => None,
            }
        };
        let ptr = self.ptr.as_ptr();
        let map_len = self.map_len;
        registry::unregister(self.slot, || {
            if let Some(how) = how {
                // SAFETY: the mapping was made by shmkit for this value and is undone exactly
                // once; no reference into it outlives `self`.
                unsafe { unmap_raw(how, ptr, map_len) };
            }
        });
        // The slot is free; the descriptor it named can go.
        drop(self.fd.take());
    }
}

/// Undoes a mapping: `munmap(2)` or `shmdt(2)`.
///
/// # Safety
/// `ptr..ptr+map_len` is a mapping (or System V attachment) that the caller owns, that nothing
/// refers to any more, and that is undone only this once.
pub(super) unsafe fn unmap_raw(how: Unmap, ptr: *mut u8, map_len: usize) {
    match how {
        // SAFETY: the caller's contract.
        Unmap::Munmap => unsafe {
            let _ = mm::munmap(ptr.cast(), map_len);
        },
        // SAFETY: the caller's contract, for a System V attachment.
        Unmap::Shmdt => unsafe {
            libc::shmdt(ptr.cast());
        },
    }
}
