//! The inventory on macOS: not built yet. System V objects are listed through the
//! `kern.sysv.ipcs.*` sysctls and holders through `proc_pidinfo`, and POSIX shared memory
//! cannot be listed at all on macOS; until that port, every listing says it is unsupported
//! instead of showing an empty (and so wrongly reassuring) machine.

use crate::error::{Error, ErrorKind, Result};
use crate::platform::facts::{
    FileStat, HolderScan, MqAttr, PosixFile, SysvMsgRow, SysvSemRow, SysvShmRow,
};
use rustix::fd::BorrowedFd;
use std::ffi::OsStr;

fn unsupported<T>(what: &str) -> Result<T> {
    Err(Error::new(
        ErrorKind::Unsupported,
        "list",
        what,
        "the inventory is not implemented on macOS yet (System V objects are listed through \
         the kern.sysv.ipcs sysctls, which are not read yet; POSIX objects cannot be listed \
         on macOS at all)",
    ))
}

pub(crate) fn sysv_shm() -> Result<Vec<SysvShmRow>> {
    unsupported("System V shared memory")
}

pub(crate) fn sysv_sem() -> Result<Vec<SysvSemRow>> {
    unsupported("System V semaphores")
}

pub(crate) fn sysv_msg() -> Result<Vec<SysvMsgRow>> {
    unsupported("System V message queues")
}

pub(crate) fn posix_files() -> Result<Vec<PosixFile>> {
    unsupported("POSIX shared memory")
}

pub(crate) fn posix_mq() -> Result<Option<Vec<PosixFile>>> {
    unsupported("POSIX message queues")
}

pub(crate) fn mqueue_dir() -> Option<String> {
    None
}

pub(crate) fn mq_stat(_name: &OsStr) -> Result<Option<(FileStat, Option<MqAttr>)>> {
    Ok(None)
}

pub(crate) fn mq_attr(_name: &OsStr) -> Option<MqAttr> {
    None
}

pub(crate) fn scan_holders() -> Result<HolderScan> {
    unsupported("holders")
}

pub(crate) fn is_memfd(_fd: BorrowedFd<'_>) -> bool {
    false
}

pub(crate) fn map_file(_pid: i32, _inode: u64) -> Option<String> {
    None
}

pub(crate) fn fd_inode(_pid: i32, _fd: i32) -> Option<u64> {
    None
}

pub(crate) fn fd_path(pid: i32, fd: i32) -> String {
    format!("fd {fd} of pid {pid}")
}
