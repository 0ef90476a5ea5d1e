//! Trying to write through a memory handle every way a receiver of the same uid could: the
//! proof that a read-only handle is read-only, as the kernel answers.

use super::{Handle, Kind};
use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::OFlags;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

/// One way of writing, and what the kernel said.
#[derive(Debug)]
pub struct Attempt {
    /// What was tried, e.g. `"mprotect(PROT_WRITE)"`.
    pub how: &'static str,
    /// The kernel's refusal; `None` when it allowed it.
    pub refused: Option<Error>,
    /// Whether the call was made: `write(2)` is not where the kernel would allow it (see
    /// [`write_attempts`]).
    pub tried: bool,
}

/// Tries to write to the memfd or POSIX segment of `h`: a writable shared mapping, a
/// read-only one made writable with `mprotect`, `write(2)`, and the same three through
/// `/proc/self/fd/N` reopened `O_RDWR`. For a handle from
/// [`Handle::memfd_read_only`](super::Handle::memfd_read_only) every attempt is refused.
///
/// Nothing is ever changed: mappings (of the object's first page) are unmapped unwritten,
/// and `write(2)` is made only where the kernel refuses it. Where a writable shared mapping
/// was allowed, `write(2)` is allowed for the same reasons (write access, no write seal) and
/// is reported so without being made ([`Attempt::tried`] false): a real write would race a
/// truncation by another holder and could grow the object back. It is made on hugetlbfs
/// (which has no `write(2)`: `EINVAL`, whatever the access) and through an `O_APPEND`
/// description under `F_SEAL_GROW` (`EPERM`). Shrinking is not tried, as it would cut data;
/// [`Handle::seals`] shows `F_SEAL_SHRINK`.
///
/// ```
/// let mut m = shmkit::Memfd::create("probe", 4096)?;
/// let ro = shmkit::handle::Handle::memfd_read_only(&mut m)?;
/// for a in shmkit::handle::write_attempts(&ro)? {
///     assert!(a.refused.is_some(), "{} was allowed", a.how);
/// }
/// # Ok::<(), shmkit::Error>(())
/// ```
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a handle that is not memory, or whose object is empty
/// (now, or by the time a byte is read back); the OS error of `fstat` or of a read-only
/// mapping (which every memory handle allows).
pub fn write_attempts(h: &Handle) -> Result<Vec<Attempt>> {
    let empty = |size: u64| {
        Error::new(
            ErrorKind::InvalidArgument,
            "write_attempts",
            "handle",
            format!(
                "a {} handle of {size} bytes is no memory to write",
                h.kind()
            ),
        )
    };
    if !matches!(h.kind(), Kind::Memfd | Kind::PosixShm) {
        return Err(empty(h.size()));
    }
    // The size now (the handle's is from when it was made), and the object's page size:
    // `st_blksize` is the huge page size on hugetlbfs, where a mapping's length must be a
    // multiple of it for `mprotect` and `munmap`.
    let st = rustix::fs::fstat(h.fd()).map_err(|e| Error::os("fstat", "handle", e))?;
    if st.st_size <= 0 {
        return Err(empty(0));
    }
    let len = usize::try_from(st.st_blksize)
        .ok()
        .filter(|n| n.is_power_of_two())
        .unwrap_or_else(crate::platform::page_size);
    let mut out = Vec::new();
    let fd = h.fd();
    tries(
        fd,
        len,
        [
            "mmap(PROT_WRITE, MAP_SHARED)",
            "mprotect(PROT_WRITE)",
            "write(2)",
        ],
        &mut out,
    )?;
    match platform::reopen(fd, OFlags::RDWR) {
        Err(e) => out.push(Attempt {
            how: "open(/proc/self/fd/N, O_RDWR)",
            refused: Some(Error::os("open", "/proc/self/fd/N", e)),
            tried: true,
        }),
        Ok(rw) => tries(
            rw.as_fd(),
            len,
            [
                "mmap(PROT_WRITE, MAP_SHARED) of an O_RDWR reopen",
                "mprotect(PROT_WRITE) of a mapping of an O_RDWR reopen",
                "write(2) through an O_RDWR reopen",
            ],
            &mut out,
        )?,
    }
    Ok(out)
}

/// The three attempts on `fd`, named `names`.
fn tries(
    fd: BorrowedFd<'_>,
    len: usize,
    names: [&'static str; 3],
    out: &mut Vec<Attempt>,
) -> Result<()> {
    let said = |how, r: std::result::Result<(), rustix::io::Errno>| Attempt {
        how,
        refused: r.err().map(|e| Error::os(how, "handle", e)),
        tried: true,
    };
    // SAFETY: a new mapping at an address the kernel picks; unmapped at once, never written.
    let rw = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            fd,
            0,
        )
    };
    let mapped_writable = rw.is_ok();
    out.push(said(
        names[0],
        rw.map(|p| {
            // SAFETY: the mapping just made, of `len` bytes, used by nothing.
            let _ = unsafe { rustix::mm::munmap(p, len) };
        }),
    ));
    // SAFETY: as above, read-only.
    let ro = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            len,
            ProtFlags::READ,
            MapFlags::SHARED,
            fd,
            0,
        )
    }
    .map_err(|e| Error::os("mmap(PROT_READ)", "handle", e))?;
    // SAFETY: `ro` is the mapping just made, of `len` bytes; made writable or not, nothing
    // writes through it, and it is unmapped next.
    let mp = unsafe { rustix::mm::mprotect(ro, len, MprotectFlags::READ | MprotectFlags::WRITE) };
    // SAFETY: as above.
    let _ = unsafe { rustix::mm::munmap(ro, len) };
    out.push(said(names[1], mp));
    // write(2) is made only where the kernel refuses it, so that the probe never writes
    // (a write races any truncation: it would grow an object emptied meanwhile). Where a
    // writable shared mapping was allowed, the kernel allows write(2) for the same reasons
    // (write access, no write seal): it is reported allowed, not made. Except on hugetlbfs,
    // which has no write(2), and through an O_APPEND description under F_SEAL_GROW (every
    // write there would grow the object): those are made, and refused.
    let flags =
        rustix::fs::fcntl_getfl(fd).map_err(|e| Error::os("fcntl(F_GETFL)", "handle", e))?;
    let grow_sealed =
        rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(rustix::fs::SealFlags::GROW));
    let refused = !mapped_writable
        || platform::fs_kind(fd) == platform::FsKind::Hugetlbfs
        || (flags.contains(OFlags::APPEND) && grow_sealed);
    if !refused {
        out.push(Attempt {
            how: names[2],
            refused: None,
            tried: false,
        });
        return Ok(());
    }
    // Were the kernel to allow it after all, the byte written is the one read there.
    let mut b = [0u8; 1];
    let n = rustix::io::pread(fd, &mut b, 0).map_err(|e| Error::os("pread", "handle", e))?;
    if n == 0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "write_attempts",
            "handle",
            "the object was emptied while it was probed",
        ));
    }
    out.push(said(names[2], rustix::io::pwrite(fd, &b, 0).map(|_| ())));
    Ok(())
}
