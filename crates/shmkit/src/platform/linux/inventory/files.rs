//! Named POSIX objects: the files of `/dev/shm` (shared memory, and glibc's `sem.NAME`
//! semaphores) and of the mqueue file system, and a queue's attributes by name.

use crate::error::{Error, Result};
use crate::platform::errno;
use crate::platform::facts::{FileStat, MqAttr, PosixFile, PosixWhat, HEAD_LEN};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

const SHM_DIR: &str = "/dev/shm";

/// POSIX shared memory and named semaphores (`sem.NAME`) in `/dev/shm`.
pub(crate) fn posix_files() -> Result<Vec<PosixFile>> {
    let mut out = Vec::new();
    let dir = match std::fs::read_dir(SHM_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("opendir", SHM_DIR, &e)),
    };
    // Each segment is opened relative to the directory: a lookup of one name, not of the
    // whole path, for every file of a directory that may hold thousands.
    let dir_fd = rustix::fs::open(
        SHM_DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok();
    for entry in dir.flatten() {
        let Ok(meta) = entry.metadata() else { continue }; // removed meanwhile
        if !meta.is_file() {
            continue;
        }
        let raw = entry.file_name();
        let stat = FileStat::of(&meta);
        if let Some(sname) = raw.as_bytes().strip_prefix(b"sem.") {
            // glibc's sem_t on 64-bit Linux: a u64 whose low half is the value and whose high
            // half counts waiters, then padding to 32 bytes. Reading the file is a plain read:
            // no sem_open, no change to the semaphore.
            let mut value = None;
            if stat.size == 32 {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    if let Some(word) = bytes.get(..8).filter(|_| bytes.len() == 32) {
                        let word = u64::from_ne_bytes(word.try_into().expect("8 bytes"));
                        value = Some(((word & 0xffff_ffff) as u32, word >> 32));
                    }
                }
            }
            out.push(PosixFile {
                name: slash(sname),
                stat,
                what: PosixWhat::Sem(value),
            });
        } else {
            out.push(PosixFile {
                name: slash(raw.as_bytes()),
                stat,
                what: PosixWhat::Shm(dir_fd.as_ref().and_then(|d| head(d.as_fd(), &raw, &stat))),
            });
        }
    }
    Ok(out)
}

/// Nothing: `/dev/shm` shows every POSIX object, held or not.
pub(crate) fn posix_shm_note() -> Option<&'static str> {
    None
}

/// The first [`HEAD_LEN`] bytes of the segment file `name` in `dir`, which `stat` described:
/// `None` when it is shorter, cannot be opened by this user, or is no longer that file.
///
/// A plain `pread` of a read-only descriptor: no mapping (a peer's truncation cannot raise
/// SIGBUS here, and a hole reads as zeros without allocating a page), nothing written, and
/// only the access time changes, which no inventory field reads. The name may have been
/// replaced since the directory was read, hence `O_NOFOLLOW` (a symlink would lead out of
/// `/dev/shm`), `O_NONBLOCK` (opening a FIFO would wait for a writer) and the check that the
/// descriptor is still the regular file that was listed.
fn head(dir: BorrowedFd<'_>, name: &OsStr, stat: &FileStat) -> Option<[u8; HEAD_LEN]> {
    if stat.size < HEAD_LEN as u64 {
        return None;
    }
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || st.st_ino != stat.ino {
        return None;
    }
    let mut buf = [0u8; HEAD_LEN];
    let mut done = 0;
    while done < HEAD_LEN {
        match rustix::io::pread(&fd, &mut buf[done..], done as u64) {
            Ok(0) => return None, // truncated since the stat
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
    Some(buf)
}

/// `/NAME` from the bytes of a directory entry.
fn slash(name: &[u8]) -> OsString {
    let mut v = Vec::with_capacity(name.len() + 1);
    v.push(b'/');
    v.extend_from_slice(name);
    OsString::from_vec(v)
}

/// The directory of POSIX message queues: the mqueue file system's mount point, if one is
/// mounted.
pub(crate) fn mqueue_dir() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "mqueue").then(|| f[1].to_string())
    })
}

/// POSIX message queues, or `None` when no mqueue file system is mounted (the only place
/// Linux shows them; shmkit mounts nothing).
pub(crate) fn posix_mq() -> Result<Option<Vec<PosixFile>>> {
    let Some(mount) = mqueue_dir() else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&mount).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        // "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0": bytes queued.
        let qsize = std::fs::read_to_string(entry.path()).ok().and_then(|t| {
            t.split_whitespace()
                .find_map(|f| f.strip_prefix("QSIZE:")?.parse().ok())
        });
        out.push(PosixFile {
            name: slash(entry.file_name().as_bytes()),
            stat: FileStat::of(&meta),
            what: PosixWhat::Mq(qsize),
        });
    }
    Ok(Some(out))
}

/// Opens queue `name` read-only (no message is taken, nothing is created) and runs `f` on
/// the descriptor; `Ok(None)` if there is no such queue.
fn with_queue<T>(name: &OsStr, f: impl FnOnce(libc::mqd_t) -> T) -> Result<Option<T>> {
    let Ok(c) = std::ffi::CString::new(name.as_bytes()) else {
        return Ok(None);
    };
    // SAFETY: a valid C string; no O_CREAT, so no variadic arguments are read.
    let mqd = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if mqd < 0 {
        return match errno() {
            rustix::io::Errno::NOENT => Ok(None),
            e => Err(Error::os("mq_open", name.to_string_lossy(), e)),
        };
    }
    let out = f(mqd);
    // SAFETY: closes the descriptor we opened, once.
    unsafe { libc::mq_close(mqd) };
    Ok(Some(out))
}

fn getattr(mqd: libc::mqd_t) -> Option<MqAttr> {
    // SAFETY: mq_attr is plain data.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `mqd` is live; a valid out-pointer.
    let ok = unsafe { libc::mq_getattr(mqd, &mut attr) } == 0;
    ok.then_some(MqAttr {
        curmsgs: attr.mq_curmsgs as u64,
        maxmsg: attr.mq_maxmsg as u64,
        msgsize: attr.mq_msgsize as u64,
    })
}

/// One POSIX message queue by name, for when no mqueue file system is mounted: a queue
/// descriptor is a file descriptor whose `fstat` has the queue's mode, owner and times.
/// `None` if there is no such queue.
pub(crate) fn mq_stat(name: &OsStr) -> Result<Option<(FileStat, Option<MqAttr>)>> {
    let shown = name.to_string_lossy().into_owned();
    with_queue(name, |mqd| {
        // SAFETY: `mqd` is a file descriptor that stays open for this closure.
        let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(mqd) };
        let st = rustix::fs::fstat(fd).map_err(|e| Error::os("fstat", &shown, e))?;
        let stat = FileStat {
            size: 0,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            dev: st.st_dev,
            ino: st.st_ino,
            ctime: st.st_ctime,
            mtime: st.st_mtime,
        };
        Ok((stat, getattr(mqd)))
    })?
    .transpose()
}

/// A queue's messages, capacity and message size (`mq_getattr`): opens the queue read-only,
/// which takes no message and changes nothing, but needs read permission. `None` if it
/// cannot.
pub(crate) fn mq_attr(name: &OsStr) -> Option<MqAttr> {
    with_queue(name, getattr).ok().flatten().flatten()
}
