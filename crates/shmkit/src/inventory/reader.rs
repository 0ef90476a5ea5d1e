//! Reading an object's bytes without allocating its memory: what `shmkit cat` uses.
//!
//! Mapping an object and reading it faults every page in, and on tmpfs (POSIX shm, memfd,
//! System V) a read fault on a page that was never written allocates it: reading a sparse
//! 512 MiB object would make it use 512 MiB. `pread(2)` on the object's file reads a hole as
//! zeros without allocating, so POSIX and memfd objects are read through a descriptor.
//! A System V segment has no name in any file system: root reads it through
//! `/proc/self/map_files` (the segment's own file, again with `pread`); other users read the
//! pages `mincore(2)` reports as present and print the others as zeros, which is exact unless
//! some of the segment is swapped out (the `swap` column of `/proc/sysvipc/shm`): then the
//! absent pages are read through the mapping, and a page that was never written is allocated.

use super::Address;
use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use rustix::fd::OwnedFd;
use rustix::io::Errno;

/// An object opened read-only for copying its bytes out.
///
/// ```
/// use shmkit::inventory::{self, Address};
/// let seg = shmkit::PosixShm::create(&format!("/shmkit-doc-reader-{}", std::process::id()), 1 << 20)?;
/// seg.write_at(4096, b"hi")?;
/// let r = inventory::open_reader(&Address::PosixShm(seg.object().into()))?;
/// let mut buf = [1u8; 4];
/// r.read_at(4095, &mut buf)?; // a hole before, our bytes after: nothing is allocated
/// assert_eq!(&buf, b"\0hi\0");
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Reader {
    source: Source,
    len: u64,
    object: String,
}

enum Source {
    /// The object's file: `pread` reads holes as zeros.
    File(OwnedFd),
    /// A System V segment this user cannot reach through map_files.
    Sysv(crate::SysvShm),
}

/// Opens the object `addr` names for reading (`shmkit cat`). Semaphores and queues are not
/// memory and are refused; a missing object is [`ErrorKind::NotFound`].
///
/// # Errors
/// [`ErrorKind::NotFound`], [`ErrorKind::InvalidArgument`] for semaphores and queues, on macOS
/// [`ErrorKind::Unsupported`] for POSIX and System V objects, and the errors of opening the
/// object (`shm_open`, `shmget`, `shmat`, `/proc/PID/fd`, `fstat`).
pub fn open_reader(addr: &Address) -> Result<Reader> {
    super::check_memory(addr)?;
    let object = addr.to_string();
    let file = |fd: OwnedFd| -> Result<Reader> {
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::os("fstat", &object, e))?;
        Ok(Reader {
            source: Source::File(fd),
            len: st.st_size as u64,
            object: object.clone(),
        })
    };
    match addr {
        Address::PosixShm(name) => {
            let fd = rustix::shm::open(
                name.as_os_str(),
                rustix::shm::OFlags::RDONLY,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| Error::os("shm_open", &object, e))?;
            file(fd)
        }
        Address::Memfd { .. } | Address::MemfdMap { .. } => file(super::open_memfd(addr, false)?),
        Address::SysvShmId(_) | Address::SysvShmKey(_) => {
            let seg = super::open_sysv(addr, true)?;
            let len = seg.len() as u64;
            // The segment's own file, when this process may open map_files (CAP_SYS_ADMIN).
            if let Some(fd) = platform::mapped_file(seg.as_ptr() as usize) {
                return Ok(Reader {
                    source: Source::File(fd),
                    len,
                    object,
                });
            }
            Ok(Reader {
                source: Source::Sysv(seg),
                len,
                object,
            })
        }
        _ => unreachable!("check_memory refused every other kind"),
    }
}

impl Reader {
    /// The object's size in bytes when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the object is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Fills `buf` with the bytes at `offset`; holes read as zeros and are not allocated.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfBounds`] past [`len`](Self::len); [`ErrorKind::Truncated`] if the
    /// object shrank under the range since it was opened; the OS error of `pread`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                "read",
                &self.object,
                format!(
                    "{} bytes at offset {offset} run past the end ({} bytes)",
                    buf.len(),
                    self.len
                ),
            ));
        }
        match &self.source {
            Source::File(fd) => {
                let mut done = 0;
                while done < buf.len() {
                    match rustix::io::pread(fd, &mut buf[done..], offset + done as u64) {
                        Ok(0) => {
                            return Err(Error::new(
                                ErrorKind::Truncated,
                                "pread",
                                &self.object,
                                format!(
                                    "the object ends at byte {} now (it was {} bytes)",
                                    offset + done as u64,
                                    self.len
                                ),
                            ))
                        }
                        Ok(n) => done += n,
                        Err(Errno::INTR) => continue,
                        Err(e) => return Err(Error::os("pread", &self.object, e)),
                    }
                }
                Ok(())
            }
            Source::Sysv(seg) => read_present(seg, offset as usize, buf),
        }
    }
}

/// Copies the pages of `seg` that exist and zero-fills the others (see the module's text).
fn read_present(seg: &crate::SysvShm, offset: usize, buf: &mut [u8]) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let page = platform::page_size();
    let first = offset - offset % page;
    // One mincore call for the range; swapped pages look absent to it, so with any page of the
    // segment in swap (or its row unreadable) everything is read through the mapping.
    let present = match super::sysv_swap(seg.id()) {
        Some(0) => {
            platform::pages_present(seg.as_ptr() as usize + first, offset + buf.len() - first)
        }
        _ => None,
    };
    let Some(present) = present else {
        return seg.read_at(offset, buf);
    };
    let mut done = 0;
    while done < buf.len() {
        let at = offset + done;
        let index = (at - first) / page;
        let n = (at - at % page + page - at).min(buf.len() - done);
        let chunk = &mut buf[done..done + n];
        if present.get(index).copied().unwrap_or(true) {
            seg.read_at(at, chunk)?;
        } else {
            chunk.fill(0);
        }
        done += n;
    }
    Ok(())
}
