//! A mapping of shared memory and the only ways shmkit lets safe code touch it.
//!
//! Another process can write these bytes at any moment, so safe code never gets a `&[u8]` or
//! `&mut [u8]` of them: the compiler would be entitled to assume they do not change. Instead:
//! copies in and out ([`Mapping::read_at`], [`Mapping::write_at`], [`Mapping::read`],
//! [`Mapping::write`]), atomics at aligned offsets, volatile typed [`View`]s of types that are
//! valid for every bit pattern, and raw pointers or slices behind `unsafe` with a contract.
//!
//! The bytes are treated like device memory: copies go through raw pointers only, so a racing
//! writer (in this or another process) can make a copy see a mix of old and new bytes, which is
//! harmless for plain bytes, but never a reference that the compiler believes is stable.

use crate::error::{Error, ErrorKind, Result};
use crate::registry::{self, Slot};
use crate::view::View;
use crate::{platform, sigbus, Inherit};
use rustix::mm;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// How a mapping is undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unmap {
    /// `munmap(2)`.
    Munmap,
    /// `shmdt(2)`: a System V attachment.
    Shmdt,
}

/// A region of shared memory mapped into this process.
///
/// Every segment type of shmkit dereferences to a `Mapping`, so these methods work on all of
/// them. Its length is the object's real size as the kernel reports it; no accessor touches a
/// byte past it.
///
/// ```
/// let seg = shmkit::AnonShared::new(4096)?;
/// seg.write_at(100, b"hello")?;
/// let mut buf = [0u8; 5];
/// seg.read_at(100, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// assert!(seg.write_at(4094, b"too long").is_err());
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// Bytes actually mapped (whole pages, or whole huge pages).
    map_len: usize,
    writable: bool,
    unmap: Unmap,
    /// The process that made the mapping: a copy of this value in a fork child must not undo
    /// what the child may no longer have (an `Inherit::None` mapping is absent there).
    pid: rustix::process::Pid,
    slot: &'static Slot,
    /// How the object is named in errors.
    object: String,
}

// SAFETY: a Mapping is a pointer to memory that is shared by design; all access goes through
// raw-pointer copies, atomics or volatile operations, none of which relies on thread
// confinement, and the registry slot is only touched through atomics and the registry lock.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` hands out no reference to the bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Wraps a fresh mapping.
    ///
    /// # Safety
    /// `ptr` must be the start of a mapping of `map_len` bytes that the caller owns and
    /// gives away, undone by `unmap`; `0 < len <= map_len`. `guard` asks for SIGBUS
    /// protection, for objects that another process can truncate.
    pub(crate) unsafe fn from_raw(
        ptr: *mut u8,
        len: usize,
        map_len: usize,
        writable: bool,
        unmap: Unmap,
        guard: bool,
        object: String,
    ) -> Self {
        if guard {
            sigbus::install();
        }
        let slot = registry::register(ptr as usize, map_len, writable, guard);
        Mapping {
            ptr: NonNull::new(ptr).expect("mmap never returns null on success"),
            len,
            map_len,
            writable,
            unmap,
            pid: rustix::process::getpid(),
            slot,
            object,
        }
    }

    /// Length in bytes: the size of the object.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is zero (never, for a mapping shmkit made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The first byte of the mapping. Obtaining it is safe; using it is `unsafe`, under the
    /// rules of the shared memory behind it (another process may write at any time).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// How the object is named in errors (`/name`, `shmid 7`, ...).
    pub fn object(&self) -> &str {
        &self.object
    }

    /// What a `fork` child gets of this mapping.
    pub fn inherit(&self) -> Inherit {
        Inherit::from_u8(self.slot.inherit.load(Ordering::Relaxed))
    }

    /// Chooses what a `fork` child gets of this mapping; see [`Inherit`].
    pub fn set_inherit(&self, mode: Inherit) -> Result<()> {
        platform::set_inherit(self.slot, mode).map_err(|e| Error::os("madvise", &self.object, e))
    }

    /// Whether another process truncated the object under this mapping; if so, the bytes past
    /// its new end were replaced by private zeroes and are no longer shared.
    pub fn was_truncated(&self) -> bool {
        self.slot.truncated.load(Ordering::Acquire)
    }

    /// Checks `offset..offset+len` against the mapping.
    fn range(&self, op: &'static str, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {
                // SAFETY: offset <= self.len, so the result is within or one past the mapping.
                Ok(unsafe { self.ptr.as_ptr().add(offset) })
            }
            _ => Err(Error::new(
                ErrorKind::OutOfBounds,
                op,
                &self.object,
                format!(
                    "bytes {offset}..{} are past the end of the segment ({} bytes)",
                    offset as u128 + len as u128,
                    self.len
                ),
            )),
        }
    }

    fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::ReadOnly,
                op,
                &self.object,
                "the mapping is read-only",
            ))
        }
    }

    fn check_truncated(&self, op: &'static str) -> Result<()> {
        if self.was_truncated() {
            Err(Error::new(
                ErrorKind::Truncated,
                op,
                &self.object,
                "another process truncated the object while it was mapped; bytes past its new \
                 end are no longer shared",
            )
            .with_hint("reopen the object to map its current size"))
        } else {
            Ok(())
        }
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the segment.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let src = self.range("read_at", offset, buf.len())?;
        // SAFETY: `range` checked that [src, src+len) is inside the live mapping; `buf` is
        // private memory that cannot overlap it. Racing writers yield arbitrary bytes, which
        // are valid u8s. A truncation by a peer is absorbed by the SIGBUS guard and reported.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        self.check_truncated("read_at")
    }

    /// Copies `data` into the segment at `offset`, or writes nothing if it does not fit.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check_writable("write_at")?;
        let dst = self.range("write_at", offset, data.len())?;
        // SAFETY: as in `read_at`, and the mapping is writable.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        self.check_truncated("write_at")
    }

    /// Copies the whole segment out into a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.len];
        self.read_at(0, &mut v)?;
        Ok(v)
    }

    /// Reads a `T` (any alignment) at `offset` by copy.
    ///
    /// ```
    /// let seg = shmkit::AnonShared::new(64)?;
    /// seg.write(3, &0xdead_beef_u32)?;
    /// assert_eq!(seg.read::<u32>(3)?, 0xdead_beef);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn read<T: FromBytes>(&self, offset: usize) -> Result<T> {
        let src = self.range("read", offset, std::mem::size_of::<T>())?;
        // SAFETY: in bounds (checked); T is valid for every bit pattern (FromBytes), so
        // whatever a peer wrote is a valid T; read_unaligned copies without a reference.
        let v = unsafe { std::ptr::read_unaligned(src as *const T) };
        self.check_truncated("read")?;
        Ok(v)
    }

    /// Writes a `T` (any alignment) at `offset` by copy.
    pub fn write<T: IntoBytes + Immutable>(&self, offset: usize, value: &T) -> Result<()> {
        self.write_at(offset, value.as_bytes())
    }

    fn atomic_ptr<A>(&self, op: &'static str, offset: usize) -> Result<*mut A> {
        self.check_writable(op)?;
        let p = self.range(op, offset, std::mem::size_of::<A>())?;
        if (p as usize) % std::mem::align_of::<A>() != 0 {
            return Err(Error::new(
                ErrorKind::Misaligned,
                op,
                &self.object,
                format!(
                    "offset {offset} is not a multiple of {}",
                    std::mem::align_of::<A>()
                ),
            ));
        }
        Ok(p as *mut A)
    }

    /// An `AtomicU32` at `offset` (a multiple of 4). Atomics are how processes that share
    /// memory agree on a value without a lock. Refused on a read-only mapping, where a store
    /// would fault.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let seg = shmkit::AnonShared::new(64)?;
    /// seg.atomic_u32(8)?.fetch_add(5, Ordering::SeqCst);
    /// assert_eq!(seg.atomic_u32(8)?.load(Ordering::SeqCst), 5);
    /// assert!(seg.atomic_u32(6).is_err()); // misaligned
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        let p = self.atomic_ptr::<AtomicU32>("atomic_u32", offset)?;
        // SAFETY: aligned, in bounds and writable (checked); AtomicU32 is valid for every bit
        // pattern and permits concurrent access from anywhere, including other processes
        // (lock-free atomics on the same physical memory); the reference lives no longer than
        // `&self`, which keeps the mapping alive.
        Ok(unsafe { &*p })
    }

    /// An `AtomicU64` at `offset` (a multiple of 8); see [`Mapping::atomic_u32`].
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        let p = self.atomic_ptr::<AtomicU64>("atomic_u64", offset)?;
        // SAFETY: as in `atomic_u32`.
        Ok(unsafe { &*p })
    }

    /// A typed, volatile view of a `T` at `offset`, aligned for `T`. `T` must be valid for every
    /// bit pattern (`FromBytes`) and have no padding (`IntoBytes`), because another process can
    /// write any bytes there and will read whatever we store.
    ///
    /// ```
    /// use zerocopy::{FromBytes, IntoBytes, Immutable, KnownLayout};
    /// #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
    /// #[repr(C)]
    /// struct Header { magic: u32, len: u32 }
    ///
    /// let seg = shmkit::AnonShared::new(4096)?;
    /// let h = seg.view::<Header>(0)?;
    /// h.store(Header { magic: 0x5348_4d4b, len: 12 })?;
    /// assert_eq!(h.load()?.len, 12);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn view<T: FromBytes + IntoBytes + Immutable>(&self, offset: usize) -> Result<View<'_, T>> {
        let p = self.range("view", offset, std::mem::size_of::<T>())?;
        if (p as usize) % std::mem::align_of::<T>() != 0 {
            return Err(Error::new(
                ErrorKind::Misaligned,
                "view",
                &self.object,
                format!(
                    "offset {offset} is not aligned to {}",
                    std::mem::align_of::<T>()
                ),
            ));
        }
        // SAFETY: in bounds and aligned (checked); the view borrows `self`.
        Ok(unsafe { View::new(self, p as *mut T) })
    }

    /// The bytes as a slice.
    ///
    /// # Safety
    /// While the slice lives, no process or thread may write the segment (for example, the
    /// peers have agreed through a lock or a seal that the data is frozen), and no peer may
    /// truncate the object.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: in bounds by construction; the caller guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes as a mutable slice.
    ///
    /// # Safety
    /// While the slice lives, no other process or thread may read or write the segment, no peer
    /// may truncate it, and the mapping must be writable.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: in bounds by construction; the caller guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Writes dirty pages of a file-backed mapping to the file (`msync(2)` with `MS_SYNC`).
    pub fn flush(&self) -> Result<()> {
        // SAFETY: the range is this live mapping.
        unsafe { mm::msync(self.ptr.as_ptr().cast(), self.len, mm::MsyncFlags::SYNC) }
            .map_err(|e| Error::os("msync", &self.object, e))
    }

    pub(crate) fn check_writable_for(&self, op: &'static str) -> Result<()> {
        self.check_writable(op)
    }

    pub(crate) fn check_truncated_for(&self, op: &'static str) -> Result<()> {
        self.check_truncated(op)
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("object", &self.object)
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("writable", &self.writable)
            .field("inherit", &self.inherit())
            .finish()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let here = rustix::process::getpid() == self.pid;
        let how = match (here, self.inherit()) {
            (true, _) | (false, Inherit::Share) => Some(self.unmap),
            // In a fork child, Copy and Zero mappings were replaced by private pages.
            (false, Inherit::Copy | Inherit::Zero) => Some(Unmap::Munmap),
            // In a fork child, a None mapping does not exist: unmapping its range could
            // destroy something else that was placed there since.
            (false, Inherit::None) => None,
        };
        let ptr = self.ptr.as_ptr();
        let map_len = self.map_len;
        registry::unregister(self.slot, || match how {
            // SAFETY: the mapping was made by shmkit for this value and is undone exactly
            // once; no reference into it outlives `self`.
            Some(Unmap::Munmap) => unsafe {
                let _ = mm::munmap(ptr.cast(), map_len);
            },
            // SAFETY: as above, for a System V attachment.
            Some(Unmap::Shmdt) => unsafe {
                libc::shmdt(ptr.cast());
            },
            None => {}
        });
    }
}
