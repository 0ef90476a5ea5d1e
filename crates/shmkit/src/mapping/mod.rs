//! A mapping of shared memory and the only ways shmkit lets safe code touch it.
//!
//! Another process can write these bytes at any moment, so safe code never gets a `&[u8]` or
//! `&mut [u8]` of them: the compiler would be entitled to assume they do not change. Instead:
//! copies in and out ([`Mapping::read_at`], [`Mapping::write_at`], [`Mapping::read`],
//! [`Mapping::write`]), atomics at aligned offsets, volatile typed [`View`]s of types that are
//! valid for every bit pattern, and raw pointers or slices behind `unsafe` with a contract.
//!
//! The copies are byte-wise atomic (see `copy.rs`): a racing writer, in this or another
//! process, can make a copy see a mix of old and new words, which is harmless for plain bytes,
//! and never a data race in the sense of Rust's memory model.
//!
//! # What can make a mapping unusable, and when it is noticed
//!
//! Every accessor checks the mapping's state before it touches memory and again after, and
//! fails from then on with:
//! - [`ErrorKind::NotInherited`] in a `fork` child that did not get the mapping
//!   ([`Inherit::None`], or a `Copy`/`Zero` replacement that could not be made): checked
//!   before, so the address is never touched;
//! - [`ErrorKind::Truncated`] once an access hit a page past the end of an object that a peer
//!   truncated, [`ErrorKind::NoSpace`] once a page could not be allocated because the file
//!   system is full, [`ErrorKind::Fault`] for other failures of the kernel to provide a page:
//!   the access that met the fault reports it (the fault is handled synchronously, in that very
//!   access), and every later one does too.
//!
//! A truncation is noticed only by an access to a page past the new end; until one happens
//! (in this process), accesses below the end keep working on the shared memory. An
//! `&AtomicU32` from [`Mapping::atomic_u32`] has no way to report an error: an operation
//! through it that meets a truncation completes on a private zero page. Call
//! [`Mapping::check`] after a series of such operations, or use the [`sync`](crate::sync)
//! primitives, which check after every operation.

use crate::error::{Error, ErrorKind, Result};
use crate::platform::maps::{self as registry, Slot, ABSENT, NO_SPACE, TRUNCATED};
use crate::platform::{self, copy, sigbus, Inherit};
use crate::view::View;
use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::mm;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use zerocopy::{FromBytes, Immutable, IntoBytes};

mod unmap;
use unmap::unmap_raw;
pub(crate) use unmap::Unmap;

/// A region of shared memory mapped into this process.
///
/// Every segment type of shmkit dereferences to a `Mapping`, so these methods work on all of
/// them. Its length is the object's real size as the kernel reports it; no accessor touches a
/// byte past it. Dropping it undoes the mapping (`munmap(2)`, or `shmdt(2)` for a System V
/// attachment).
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
#[doc(alias = "munmap")]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// Bytes actually mapped (whole pages, or whole huge pages).
    map_len: usize,
    writable: bool,
    unmap: Unmap,
    /// The process that made the mapping: a copy of this value in a fork child undoes the
    /// child's private replacement (`Copy`, `Zero`), not what the parent made.
    pid: rustix::process::Pid,
    slot: &'static Slot,
    /// A descriptor of the object, for the SIGBUS handler to tell a truncation from a full
    /// file system (guarded mappings only). Closed after the slot is freed.
    fd: Option<OwnedFd>,
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
    /// gives away, undone by `unmap`; `0 < len <= map_len`; `page` is its page size (the huge
    /// page size for hugetlb) and divides `map_len`. `guard`, a descriptor of the object, asks
    /// for SIGBUS protection, for objects that another process can truncate.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn from_raw(
        ptr: *mut u8,
        len: usize,
        map_len: usize,
        page: usize,
        writable: bool,
        unmap: Unmap,
        guard: Option<BorrowedFd<'_>>,
        object: String,
    ) -> Result<Self> {
        let fd = match guard {
            Some(fd) => match rustix::io::fcntl_dupfd_cloexec(fd, 3) {
                Ok(dup) => Some(dup),
                Err(e) => {
                    // SAFETY: the caller gave us this mapping; nothing else refers to it yet.
                    unsafe { unmap_raw(unmap, ptr, map_len) };
                    return Err(Error::os("fcntl(F_DUPFD_CLOEXEC)", &object, e)
                        .with_hint("the process is out of file descriptors (ulimit -n)"));
                }
            },
            None => None,
        };
        if fd.is_some() {
            sigbus::install();
        }
        let slot = registry::register(registry::NewSlot {
            start: ptr as usize,
            len: map_len,
            page,
            writable,
            guard: fd.is_some(),
            fd: fd.as_ref().map_or(-1, |f| f.as_raw_fd()),
        });
        Ok(Mapping {
            ptr: NonNull::new(ptr).expect("mmap never returns null on success"),
            len,
            map_len,
            writable,
            unmap,
            pid: rustix::process::getpid(),
            slot,
            fd,
            object,
        })
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
    /// rules of the shared memory behind it (another process may write at any time), and only
    /// while [`check`](Self::check) succeeds (in a fork child that did not inherit the
    /// mapping, something else may live at this address).
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

    /// `madvise(2)` (Linux) or `minherit(2)` (macOS): chooses what a `fork` child gets of this
    /// mapping; see [`Inherit`].
    ///
    /// # Errors
    /// [`ErrorKind::NotInherited`] in a `fork` child that did not get the mapping; the OS error
    /// of `madvise` or `minherit`; on macOS [`ErrorKind::Unsupported`] for [`Inherit::Zero`].
    #[doc(alias = "madvise")]
    #[doc(alias = "minherit")]
    pub fn set_inherit(&self, mode: Inherit) -> Result<()> {
        self.check_present("set_inherit")?;
        platform::set_inherit(self.slot, mode).map_err(|e| {
            let err = Error::os(platform::INHERIT_CALL, &self.object, e);
            if e == rustix::io::Errno::NOTSUP {
                err.with_kind(ErrorKind::Unsupported).with_hint(format!(
                    "this OS cannot give a fork child {mode} of shared memory; use \
                     Inherit::None and map fresh memory in the child"
                ))
            } else {
                err
            }
        })
    }

    /// Whether another process truncated the object under this mapping (and an access here met
    /// the new end); if so, the bytes past its new end were replaced by private zeroes and are
    /// no longer shared.
    pub fn was_truncated(&self) -> bool {
        self.slot.state() & TRUNCATED != 0
    }

    /// Whether the mapping can still be used: `Err` with [`ErrorKind::NotInherited`],
    /// [`ErrorKind::Truncated`], [`ErrorKind::NoSpace`] or [`ErrorKind::Fault`] once it cannot
    /// (see the module documentation for when each is noticed). Every accessor does this
    /// check; call it yourself after a series of operations through an `&AtomicU32`.
    ///
    /// # Errors
    /// [`ErrorKind::NotInherited`] in a `fork` child that did not get the mapping;
    /// [`ErrorKind::Truncated`], [`ErrorKind::NoSpace`] or [`ErrorKind::Fault`] once an access
    /// met a fault.
    ///
    /// ```
    /// let seg = shmkit::AnonShared::new(4096)?;
    /// seg.atomic_u32(0)?.store(7, std::sync::atomic::Ordering::Relaxed);
    /// seg.check()?;
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn check(&self) -> Result<()> {
        self.check_state("check")
    }

    /// Checks `offset..offset+len` against the mapping. Inlined, with the error built out of
    /// line, like every check on the accessors' path: the channels call these per message.
    #[inline]
    fn range(&self, op: &'static str, offset: usize, len: usize) -> Result<*mut u8> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {
                // SAFETY: offset <= self.len, so the result is within or one past the mapping.
                Ok(unsafe { self.ptr.as_ptr().add(offset) })
            }
            _ => Err(self.out_of_bounds(op, offset, len)),
        }
    }

    #[cold]
    #[inline(never)]
    fn out_of_bounds(&self, op: &'static str, offset: usize, len: usize) -> Error {
        Error::new(
            ErrorKind::OutOfBounds,
            op,
            &self.object,
            format!(
                "bytes {offset}..{} are past the end of the segment ({} bytes)",
                offset as u128 + len as u128,
                self.len
            ),
        )
    }

    #[inline]
    fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(self.read_only(op))
        }
    }

    #[cold]
    #[inline(never)]
    fn read_only(&self, op: &'static str) -> Error {
        Error::new(
            ErrorKind::ReadOnly,
            op,
            &self.object,
            "the mapping is read-only",
        )
    }

    /// Runs `f`, which touches the mapping's memory, between two state checks: the first keeps
    /// it from touching a mapping that is absent here or already damaged, the second reports a
    /// fault that `f` itself met. What every accessor and sync primitive does.
    #[inline]
    pub(crate) fn touch<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_state(op)?;
        let v = f();
        self.check_state(op)?;
        Ok(v)
    }

    /// Fails if the mapping is absent in this process or was damaged by a fault.
    #[inline]
    fn check_state(&self, op: &'static str) -> Result<()> {
        match self.slot.state() {
            0 => Ok(()),
            state => Err(self.state_error(op, state)),
        }
    }

    /// Fails only if the mapping is absent in this process (its address must not be touched).
    fn check_present(&self, op: &'static str) -> Result<()> {
        match self.slot.state() & ABSENT {
            0 => Ok(()),
            state => Err(self.state_error(op, state)),
        }
    }

    #[cold]
    #[inline(never)]
    fn state_error(&self, op: &'static str, state: u32) -> Error {
        if state & ABSENT != 0 {
            return Error::new(
                ErrorKind::NotInherited,
                op,
                &self.object,
                format!(
                    "this process is a fork child and did not inherit the mapping (inheritance \
                     `{}`)",
                    self.inherit()
                ),
            )
            .with_hint("open the object again here, or set Inherit::Share before forking");
        }
        if state & TRUNCATED != 0 {
            return Error::new(
                ErrorKind::Truncated,
                op,
                &self.object,
                "another process truncated the object while it was mapped; bytes past its new \
                 end are no longer shared",
            )
            .with_hint("reopen the object to map its current size");
        }
        if state & NO_SPACE != 0 {
            let space = self
                .fd
                .as_ref()
                .and_then(|fd| rustix::fs::fstatfs(fd).ok())
                .map(|fs| {
                    let block = fs.f_bsize as u64;
                    format!(
                        " ({} in all, {} free)",
                        crate::size::human(fs.f_blocks * block),
                        crate::size::human(fs.f_bavail * block)
                    )
                })
                .unwrap_or_default();
            return Error::os("page fault", &self.object, rustix::io::Errno::NOSPC)
                .with_kind(ErrorKind::NoSpace)
                .with_hint(format!(
                    "the tmpfs that holds the object is full{space}: a page could not be \
                     allocated, and this mapping no longer shares it; free space there or \
                     mount it larger (`mount -o remount,size=SIZE /dev/shm`, Docker's \
                     `--shm-size`), then reopen the object"
                ));
        }
        Error::os("page fault", &self.object, rustix::io::Errno::IO)
            .with_kind(ErrorKind::Fault)
            .with_hint(
                "the kernel could not provide a page of the object (an I/O error, or the huge \
                 page pool is exhausted: see HugePages_Free in /proc/meminfo); this mapping no \
                 longer shares that page; reopen the object",
            )
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the segment.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfBounds`] if `offset + buf.len()` is past the end; the errors of
    /// [`Mapping::check`], checked before and after the copy.
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let src = self.range("read_at", offset, buf.len())?;
        // SAFETY: `range` checked that [src, src+len) is inside the mapping and `touch` that
        // it is mapped here; `buf` is private memory that cannot overlap it. Racing writers
        // are read atomically. A truncation by a peer is absorbed by the SIGBUS guard and
        // reported by `touch`.
        self.touch("read_at", || unsafe {
            copy::load(src, buf.as_mut_ptr(), buf.len())
        })
    }

    /// Copies `data` into the segment at `offset`, or writes nothing if it does not fit.
    ///
    /// # Errors
    /// [`ErrorKind::ReadOnly`] on a read-only mapping; otherwise as [`Mapping::read_at`].
    #[inline]
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        self.check_writable("write_at")?;
        let dst = self.range("write_at", offset, data.len())?;
        // SAFETY: as in `read_at`, and the mapping is writable.
        self.touch("write_at", || unsafe {
            copy::store(data.as_ptr(), dst, data.len())
        })
    }

    /// Copies the whole segment out into a new vector.
    ///
    /// # Errors
    /// As [`Mapping::check`] (the copy is never out of bounds).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.len];
        self.read_at(0, &mut v)?;
        Ok(v)
    }

    /// Reads a `T` (any alignment) at `offset` by copy.
    ///
    /// # Errors
    /// As [`Mapping::read_at`], for the `size_of::<T>()` bytes at `offset`.
    ///
    /// ```
    /// let seg = shmkit::AnonShared::new(64)?;
    /// seg.write(3, &0xdead_beef_u32)?;
    /// assert_eq!(seg.read::<u32>(3)?, 0xdead_beef);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn read<T: FromBytes>(&self, offset: usize) -> Result<T> {
        let src = self.range("read", offset, std::mem::size_of::<T>())?;
        let mut v = std::mem::MaybeUninit::<T>::uninit();
        // SAFETY: in bounds and mapped (checked by `touch`); `v` is private and
        // size_of::<T>() bytes.
        self.touch("read", || unsafe {
            copy::load(src, v.as_mut_ptr().cast(), std::mem::size_of::<T>())
        })?;
        // SAFETY: every byte was written, and T is valid for every bit pattern (FromBytes).
        Ok(unsafe { v.assume_init() })
    }

    /// Writes a `T` (any alignment) at `offset` by copy.
    ///
    /// # Errors
    /// As [`Mapping::write_at`], for the `size_of::<T>()` bytes at `offset`.
    pub fn write<T: IntoBytes + Immutable>(&self, offset: usize, value: &T) -> Result<()> {
        self.write_at(offset, value.as_bytes())
    }

    #[inline]
    fn atomic_ptr<A>(&self, op: &'static str, offset: usize) -> Result<*mut A> {
        self.check_writable(op)?;
        let p = self.range(op, offset, std::mem::size_of::<A>())?;
        self.check_state(op)?;
        if (p as usize) % std::mem::align_of::<A>() != 0 {
            return Err(self.misaligned(op, offset, std::mem::align_of::<A>()));
        }
        Ok(p as *mut A)
    }

    #[cold]
    #[inline(never)]
    fn misaligned(&self, op: &'static str, offset: usize, align: usize) -> Error {
        Error::new(
            ErrorKind::Misaligned,
            op,
            &self.object,
            format!("offset {offset} is not a multiple of {align}"),
        )
    }

    /// An `AtomicU32` at `offset` (a multiple of 4). Atomics are how processes that share
    /// memory agree on a value without a lock. Refused on a read-only mapping, where a store
    /// would fault, and on a mapping that [`check`](Self::check) refuses. The reference cannot
    /// report a truncation that happens later: see the module documentation.
    ///
    /// # Errors
    /// [`ErrorKind::ReadOnly`] on a read-only mapping, [`ErrorKind::OutOfBounds`] past the end,
    /// [`ErrorKind::Misaligned`] for an offset that is not a multiple of 4, and the errors of
    /// [`Mapping::check`].
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// let seg = shmkit::AnonShared::new(64)?;
    /// seg.atomic_u32(8)?.fetch_add(5, Ordering::SeqCst);
    /// assert_eq!(seg.atomic_u32(8)?.load(Ordering::SeqCst), 5);
    /// assert!(seg.atomic_u32(6).is_err()); // misaligned
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    #[inline]
    pub fn atomic_u32(&self, offset: usize) -> Result<&AtomicU32> {
        let p = self.atomic_ptr::<AtomicU32>("atomic_u32", offset)?;
        // SAFETY: aligned, in bounds and writable (checked); AtomicU32 is valid for every bit
        // pattern and permits concurrent access from anywhere, including other processes
        // (lock-free atomics on the same physical memory); the reference lives no longer than
        // `&self`, which keeps the mapping alive.
        Ok(unsafe { &*p })
    }

    /// An `AtomicU64` at `offset` (a multiple of 8); see [`Mapping::atomic_u32`].
    ///
    /// # Errors
    /// As [`Mapping::atomic_u32`], for an offset that must be a multiple of 8.
    #[inline]
    pub fn atomic_u64(&self, offset: usize) -> Result<&AtomicU64> {
        let p = self.atomic_ptr::<AtomicU64>("atomic_u64", offset)?;
        // SAFETY: as in `atomic_u32`.
        Ok(unsafe { &*p })
    }

    /// A typed, volatile view of a `T` at `offset`, aligned for `T`. `T` must be valid for every
    /// bit pattern (`FromBytes`) and have no padding (`IntoBytes`), because another process can
    /// write any bytes there and will read whatever we store.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfBounds`] past the end, [`ErrorKind::Misaligned`] for an offset not
    /// aligned for `T`, [`ErrorKind::NotInherited`] in a `fork` child that did not get the
    /// mapping. (The view's [`load`](View::load) and [`store`](View::store) check the rest.)
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
        self.check_present("view")?;
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
    /// peers have agreed through a lock or a seal that the data is frozen), no peer may
    /// truncate the object, and [`check`](Self::check) must have succeeded (in a fork child
    /// that did not inherit the mapping, the address belongs to something else).
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: in bounds by construction; the caller guarantees no concurrent writes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes as a mutable slice.
    ///
    /// # Safety
    /// While the slice lives, nothing else may read or write the segment: no other process or
    /// thread, and no other reference, pointer, view or accessor of this thread either (not
    /// even `read_at` on this very `Mapping`); no peer may truncate it; the mapping must be
    /// writable and [`check`](Self::check) must have succeeded.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [u8] {
        // SAFETY: in bounds by construction; the caller guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// `msync(2)` with `MS_SYNC`: writes dirty pages of a file-backed mapping to the file.
    ///
    /// # Errors
    /// [`ErrorKind::NotInherited`] in a `fork` child that did not get the mapping; the OS error
    /// of `msync`.
    #[doc(alias = "msync")]
    pub fn flush(&self) -> Result<()> {
        self.check_present("msync")?;
        // SAFETY: the range is this live mapping, present in this process (checked).
        unsafe { mm::msync(self.ptr.as_ptr().cast(), self.len, mm::MsyncFlags::SYNC) }
            .map_err(|e| Error::os("msync", &self.object, e))
    }

    pub(crate) fn check_writable_for(&self, op: &'static str) -> Result<()> {
        self.check_writable(op)
    }

    pub(crate) fn check_state_for(&self, op: &'static str) -> Result<()> {
        self.check_state(op)
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
