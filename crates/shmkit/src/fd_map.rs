//! Mapping an fd-backed object (POSIX shm, memfd, file) and reading its `fstat` figures.

use crate::error::{Error, ErrorKind, Result};
use crate::mapping::{Mapping, Unmap};
use crate::platform;
use rustix::fd::AsFd;
use rustix::mm::{self, MapFlags, ProtFlags};

/// What `fstat(2)` says of a shared object: the figures `shm_reader` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectStat {
    /// `st_size`: the object's size in bytes.
    pub size: u64,
    /// `st_blocks`: 512-byte blocks actually allocated (pages touched so far).
    pub blocks: u64,
    /// `st_blksize`: the preferred I/O block size (the page size on tmpfs).
    pub block_size: u64,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Inode number.
    pub inode: u64,
    /// Last change of the data, seconds since the epoch.
    pub mtime: i64,
    /// Last change of the inode, seconds since the epoch.
    pub ctime: i64,
}

pub(crate) fn object_stat(fd: impl AsFd, object: &str) -> Result<ObjectStat> {
    let st = rustix::fs::fstat(fd).map_err(|e| Error::os("fstat", object, e))?;
    Ok(ObjectStat {
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        block_size: st.st_blksize as u64,
        mode: platform::mode_from_raw(st.st_mode) & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        inode: st.st_ino,
        mtime: st.st_mtime as i64,
        ctime: st.st_ctime as i64,
    })
}

/// Checks the size the kernel reports against what the caller needs, and turns it into a
/// mapping length.
pub(crate) fn usable_size(
    size: u64,
    min_size: usize,
    op: &'static str,
    object: &str,
) -> Result<usize> {
    let size = usize::try_from(size).map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgument,
            op,
            object,
            format!("size {size} does not fit in memory"),
        )
    })?;
    if size == 0 {
        return Err(Error::new(
            ErrorKind::TooSmall,
            op,
            object,
            "the object is empty (size 0)",
        )
        .with_hint("its creator may not have set its size yet; retry, or create it with a size"));
    }
    if size < min_size {
        return Err(Error::new(
            ErrorKind::TooSmall,
            op,
            object,
            format!("the object has {size} bytes, fewer than the {min_size} asked for"),
        ));
    }
    Ok(size)
}

/// The page size of mappings of `fd`: on hugetlbfs (`MFD_HUGETLB` memfds, files under
/// `/dev/hugepages`) the huge page size, which `st_blksize` reports there.
fn fd_page_size(fd: rustix::fd::BorrowedFd<'_>) -> usize {
    let small = rustix::param::page_size();
    if platform::fs_kind(fd) != platform::FsKind::Hugetlbfs {
        return small;
    }
    rustix::fs::fstat(fd).map_or(small, |st| {
        usize::try_from(st.st_blksize).unwrap_or(small).max(small)
    })
}

/// `mmap(2)` of `len` bytes of `fd`, `MAP_SHARED`.
pub(crate) fn map_fd(
    fd: impl AsFd,
    len: usize,
    writable: bool,
    guard: bool,
    object: &str,
) -> Result<Mapping> {
    map_fd_with(fd, len, writable, guard, object, MapFlags::SHARED)
}

/// `mmap(2)` of `len` bytes of `fd` with the given sharing flag.
pub(crate) fn map_fd_with(
    fd: impl AsFd,
    len: usize,
    writable: bool,
    guard: bool,
    object: &str,
    sharing: MapFlags,
) -> Result<Mapping> {
    let prot = if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    };
    let fd = fd.as_fd();
    // SAFETY: a new mapping at an address the kernel chooses; it aliases nothing of ours.
    let p = unsafe { mm::mmap(std::ptr::null_mut(), len, prot, sharing, fd, 0) }
        .map_err(|e| Error::os("mmap", object, e))?;
    let page = fd_page_size(fd);
    // SAFETY: `p` is the start of the `len`-byte mapping just made, handed to the Mapping.
    unsafe {
        Mapping::from_raw(
            p.cast(),
            len,
            len.div_ceil(page) * page,
            page,
            writable,
            Unmap::Munmap,
            guard.then_some(fd),
            object.to_string(),
        )
    }
}
