//! Linux sources of the inventory: `/proc/sysvipc/*`, `/dev/shm`, the mqueue file system, and
//! `/proc/PID/{maps,fd}` for holders. Reads only; opens, attaches and mounts nothing.

use crate::error::{Error, Result};
use crate::inventory::{Address, Holder, Kind, Object};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;

use super::POSIX_SHM_DIR as SHM_DIR;

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::os(
            "read",
            path,
            rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
        )
    })
}

/// A `/proc/sysvipc/*` table: its text, read once, and its column names.
struct SysvTable {
    text: String,
    columns: HashMap<String, usize>,
}

/// One row of a [`SysvTable`]: its cells, borrowed from the table's text.
struct Row<'a> {
    columns: &'a HashMap<String, usize>,
    cells: Vec<&'a str>,
}

impl Row<'_> {
    fn get(&self, col: &str) -> Option<&str> {
        self.cells.get(*self.columns.get(col)?).copied()
    }
}

impl SysvTable {
    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.text.lines().skip(1).map(|l| Row {
            columns: &self.columns,
            cells: l.split_whitespace().collect(),
        })
    }
}

/// Reads `/proc/sysvipc/TABLE`. Its rows are not copied into maps of strings: with thousands
/// of objects that copying was most of `shmkit ls`'s time.
fn sysvipc(table: &str) -> Result<SysvTable> {
    let text = read(&format!("/proc/sysvipc/{table}"))?;
    let columns = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .enumerate()
        .map(|(i, c)| (c.to_string(), i))
        .collect();
    Ok(SysvTable { text, columns })
}

/// One column of System V segment `id`'s row in `/proc/sysvipc/shm`.
pub(crate) fn sysv_shm_column(id: i32, col: &str) -> Option<u64> {
    let id = id.to_string();
    sysvipc("shm")
        .ok()?
        .rows()
        .find(|r| r.get("shmid") == Some(id.as_str()))
        .and_then(|r| num(&r, col))
}

fn num<T: std::str::FromStr>(row: &Row<'_>, col: &str) -> Option<T> {
    row.get(col)?.parse().ok()
}

/// Mode and ownership common to the three System V tables.
fn sysv_common(o: &mut Object, row: &Row<'_>) {
    let perms = row
        .get("perms")
        .and_then(|p| u32::from_str_radix(p, 8).ok())
        .unwrap_or(0);
    o.mode = perms & 0o777;
    o.uid = num(row, "uid").unwrap_or(0);
    o.gid = num(row, "gid").unwrap_or(0);
    o.creator_uid = num(row, "cuid");
    o.creator_gid = num(row, "cgid");
    o.key = num(row, "key");
    o.ctime = num(row, "ctime");
}

/// A System V time column: 0 means "never".
fn when(row: &Row<'_>, col: &str) -> Option<i64> {
    num::<i64>(row, col).filter(|t| *t != 0)
}

pub(crate) fn sysv_shm() -> Result<Vec<Object>> {
    Ok(sysvipc("shm")?
        .rows()
        .filter_map(|row| {
            let row = &row;
            let id: i32 = num(row, "shmid")?;
            let mut o = Object::new(Kind::SysvShm, Address::SysvShmId(id));
            sysv_common(&mut o, row);
            let perms = row
                .get("perms")
                .and_then(|p| u32::from_str_radix(p, 8).ok())
                .unwrap_or(0);
            o.marked_for_removal = perms & 0o1000 != 0;
            o.id = Some(id);
            o.inode = Some(id as u64);
            o.size = num(row, "size");
            o.creator_pid = num(row, "cpid");
            o.last_pid = num(row, "lpid");
            o.nattch = num(row, "nattch");
            o.attach_time = when(row, "atime");
            o.detach_time = when(row, "dtime");
            o.last_use = ["atime", "dtime", "ctime"]
                .iter()
                .filter_map(|c| num::<i64>(row, c))
                .max();
            Some(o)
        })
        .collect())
}

pub(crate) fn sysv_sem() -> Result<Vec<Object>> {
    Ok(sysvipc("sem")?
        .rows()
        .filter_map(|row| {
            let row = &row;
            let id: i32 = num(row, "semid")?;
            let mut o = Object::new(Kind::SysvSem, Address::SysvSem(id));
            sysv_common(&mut o, row);
            o.id = Some(id);
            let nsems: u32 = num(row, "nsems")?;
            o.nsems = Some(nsems);
            o.op_time = when(row, "otime");
            o.last_use = ["otime", "ctime"]
                .iter()
                .filter_map(|c| num::<i64>(row, c))
                .max();
            // GETALL, GETNCNT and GETZCNT only read; they need read permission, so values stay
            // unknown for sets this user may not read.
            // The number of sets read from /proc may be stale (the id removed and reused by a
            // larger set since): get_all_id sizes its buffer from the set as it is now.
            if let Ok(vals) = crate::sysv_sem::get_all_id(id) {
                let nsems = vals.len() as u32;
                o.nsems = Some(nsems);
                o.values = Some(vals.iter().map(|&v| v as i64).collect());
                let mut waiters = 0u64;
                for i in 0..nsems as i32 {
                    // SAFETY: GETNCNT/GETZCNT take no argument beyond the index.
                    let n = unsafe { libc::semctl(id, i, libc::GETNCNT) };
                    // SAFETY: as above.
                    let z = unsafe { libc::semctl(id, i, libc::GETZCNT) };
                    waiters += n.max(0) as u64 + z.max(0) as u64;
                }
                o.waiters = Some(waiters);
            }
            Some(o)
        })
        .collect())
}

pub(crate) fn sysv_msg() -> Result<Vec<Object>> {
    Ok(sysvipc("msg")?
        .rows()
        .filter_map(|row| {
            let row = &row;
            let id: i32 = num(row, "msqid")?;
            let mut o = Object::new(Kind::SysvMsg, Address::SysvMsg(id));
            sysv_common(&mut o, row);
            o.id = Some(id);
            o.size = num(row, "cbytes");
            o.messages = num(row, "qnum");
            o.last_pid = num(row, "lspid");
            o.receive_pid = num(row, "lrpid");
            o.send_time = when(row, "stime");
            o.receive_time = when(row, "rtime");
            o.last_use = ["stime", "rtime", "ctime"]
                .iter()
                .filter_map(|c| num::<i64>(row, c))
                .max();
            Some(o)
        })
        .collect())
}

fn file_object(kind: Kind, address: Address, meta: &std::fs::Metadata) -> Object {
    let mut o = Object::new(kind, address);
    o.size = Some(meta.size());
    o.mode = meta.mode() & 0o7777;
    o.uid = meta.uid();
    o.gid = meta.gid();
    o.inode = Some(meta.ino());
    o.ctime = Some(meta.ctime());
    o.last_use = Some(meta.ctime().max(meta.mtime()));
    o
}

/// POSIX shared memory and named semaphores (`sem.NAME`) in `/dev/shm`.
pub(crate) fn posix_shm_dir() -> Result<(Vec<Object>, Vec<Object>)> {
    let mut shm = Vec::new();
    let mut sem = Vec::new();
    let dir = match std::fs::read_dir(SHM_DIR) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((shm, sem)),
        Err(e) => {
            return Err(Error::os(
                "opendir",
                SHM_DIR,
                rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
            ))
        }
    };
    for entry in dir.flatten() {
        let Ok(meta) = entry.metadata() else { continue }; // removed meanwhile
        if !meta.is_file() {
            continue;
        }
        let raw = entry.file_name();
        let name = raw.to_string_lossy().into_owned();
        if let Some(sname) = raw.as_bytes().strip_prefix(b"sem.") {
            let mut o = file_object(Kind::PosixSem, Address::PosixSem(slash(sname)), &meta);
            o.name = Some(name.clone());
            o.size = None;
            // glibc's sem_t on 64-bit Linux: a u64 whose low half is the value and whose high
            // half counts waiters, then padding to 32 bytes. Reading the file is a plain read:
            // no sem_open, no change to the semaphore.
            if meta.size() == 32 {
                if let Ok(bytes) = std::fs::read(entry.path()) {
                    if bytes.len() == 32 {
                        let word = u64::from_ne_bytes(bytes[..8].try_into().expect("8 bytes"));
                        o.values = Some(vec![(word & 0xffff_ffff) as i64]);
                        o.waiters = Some(word >> 32);
                    }
                }
            }
            sem.push(o);
        } else {
            let mut o = file_object(
                Kind::PosixShm,
                Address::PosixShm(slash(raw.as_bytes())),
                &meta,
            );
            o.name = Some(name);
            shm.push(o);
        }
    }
    Ok((shm, sem))
}

/// `/NAME` from the bytes of a directory entry.
fn slash(name: &[u8]) -> OsString {
    let mut v = Vec::with_capacity(name.len() + 1);
    v.push(b'/');
    v.extend_from_slice(name);
    OsString::from_vec(v)
}

/// The mqueue file system's mount point, if one is mounted.
pub(crate) fn mqueue_mount() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 2 && f[2] == "mqueue").then(|| f[1].to_string())
    })
}

/// POSIX message queues, or `None` when no mqueue file system is mounted (the only place
/// Linux shows them; shmkit mounts nothing).
pub(crate) fn posix_mq() -> Result<Option<Vec<Object>>> {
    let Some(mount) = mqueue_mount() else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&mount).into_iter().flatten().flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let raw = entry.file_name();
        let name = raw.to_string_lossy().into_owned();
        let mut o = file_object(
            Kind::PosixMq,
            Address::PosixMq(slash(raw.as_bytes())),
            &meta,
        );
        o.name = Some(name);
        // "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0": bytes queued.
        o.size = std::fs::read_to_string(entry.path()).ok().and_then(|t| {
            t.split_whitespace()
                .find_map(|f| f.strip_prefix("QSIZE:")?.parse().ok())
        });
        out.push(o);
    }
    Ok(Some(out))
}

/// What a process holds: by object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum HeldKey {
    /// A file in /dev/shm (POSIX shm or semaphore), by inode.
    ShmFs(u64),
    /// A System V segment, by id.
    Sysv(i32),
    /// A memfd, by inode.
    Memfd(u64),
    /// A POSIX message queue, by inode.
    Mq(u64),
}

#[derive(Debug, Default, Clone)]
struct Holding {
    maps: bool,
    fds: Vec<i32>,
}

#[derive(Debug, Clone)]
struct MemfdSeen {
    name: String,
    first_fd: Option<(i32, i32)>,
    /// The first process seen mapping it, and the range (`start-end`) of that mapping.
    first_map: (i32, String),
    meta: Option<(u64, u32, u32, u32, i64)>, // size, mode, uid, gid, ctime
}

/// One pass over `/proc/PID/maps` and `/proc/PID/fd` for every process: linear in the number
/// of processes and their mappings and fds.
pub(crate) struct HolderScan {
    held: HashMap<HeldKey, BTreeMap<i32, Holding>>,
    memfds: BTreeMap<u64, MemfdSeen>,
    comm: HashMap<i32, String>,
    /// (pid, command) of processes whose maps or fds could not be read (kernel threads,
    /// which hold no objects, are not counted).
    pub unreadable: Vec<(i32, String)>,
}

/// Whether `pid` is a kernel thread (`PF_KTHREAD` in the flags of `/proc/PID/stat`): it has no
/// memory map and no fd table of its own, so it holds no IPC object.
fn kernel_thread(pid: i32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|st| {
            // The command may contain spaces and parentheses: fields resume after the last ')'.
            let rest = &st[st.rfind(')')? + 1..];
            rest.split_whitespace().nth(6)?.parse::<u64>().ok()
        })
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// Whether the file at `path` is on an mqueue file system.
fn on_mqueue(path: &std::path::Path) -> bool {
    const MQUEUE_MAGIC: i64 = 0x1980_0202;
    // f_type is i64 on x86_64 but another width elsewhere.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == MQUEUE_MAGIC)
}

pub(crate) fn scan_holders() -> HolderScan {
    let mut scan = HolderScan {
        held: HashMap::new(),
        memfds: BTreeMap::new(),
        comm: HashMap::new(),
        unreadable: Vec::new(),
    };
    let pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for pid in pids {
        let mut found = false;
        match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            Ok(maps) => {
                for line in maps.lines() {
                    if let Some((key, name)) = parse_maps_line(line) {
                        scan.held
                            .entry(key)
                            .or_default()
                            .entry(pid)
                            .or_default()
                            .maps = true;
                        if let (HeldKey::Memfd(ino), Some(name)) = (key, name) {
                            let range = line.split(' ').next().unwrap_or_default().to_string();
                            scan.memfds.entry(ino).or_insert(MemfdSeen {
                                name,
                                first_fd: None,
                                first_map: (pid, range),
                                meta: None,
                            });
                        }
                        found = true;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // exited
            Err(_) => {
                if !kernel_thread(pid) {
                    scan.unreadable.push((pid, comm(pid)));
                }
                continue;
            }
        }
        let fd_dir = format!("/proc/{pid}/fd");
        let fds = match std::fs::read_dir(&fd_dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // exited
            Err(_) => {
                if !kernel_thread(pid) {
                    scan.unreadable.push((pid, comm(pid)));
                }
                continue;
            }
        };
        for fd in fds.flatten() {
            let Some(n) = fd.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            let is_shm = t.starts_with("/dev/shm/");
            let memfd_name = t
                .strip_prefix("/memfd:")
                .map(|r| r.strip_suffix(" (deleted)").unwrap_or(r).to_string());
            // A queue descriptor links to `/NAME` on the kernel's internal mqueue mount: a
            // path with one '/', which a file at the root of a disk could also have, so the
            // file system says which it is.
            let t_bytes = target.as_os_str().as_bytes();
            let is_mq = !is_shm
                && memfd_name.is_none()
                && t_bytes.len() > 1
                && t_bytes[0] == b'/'
                && !t_bytes[1..].contains(&b'/')
                && on_mqueue(&fd.path());
            if !is_shm && memfd_name.is_none() && !is_mq {
                continue;
            }
            // stat through the link: the object's own inode, size and mode.
            let Ok(meta) = std::fs::metadata(fd.path()) else {
                continue;
            };
            let key = if is_shm {
                HeldKey::ShmFs(meta.ino())
            } else if is_mq {
                HeldKey::Mq(meta.ino())
            } else {
                HeldKey::Memfd(meta.ino())
            };
            scan.held
                .entry(key)
                .or_default()
                .entry(pid)
                .or_default()
                .fds
                .push(n);
            if let Some(name) = memfd_name {
                let seen = scan.memfds.entry(meta.ino()).or_insert(MemfdSeen {
                    name,
                    first_fd: None,
                    first_map: (pid, String::new()),
                    meta: None,
                });
                if seen.first_fd.is_none() {
                    seen.first_fd = Some((pid, n));
                }
                seen.meta = Some((
                    meta.size(),
                    meta.mode() & 0o7777,
                    meta.uid(),
                    meta.gid(),
                    meta.ctime(),
                ));
            }
            found = true;
        }
        if found {
            scan.comm.insert(pid, comm(pid));
        }
    }
    for h in scan.held.values_mut() {
        for holding in h.values_mut() {
            holding.fds.sort_unstable();
        }
    }
    scan
}

/// The command name (`/proc/PID/comm`): any bytes a process set with `PR_SET_NAME`, so read
/// as bytes and shown lossily (a name that is not UTF-8 would otherwise read as nothing).
fn comm(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/comm"))
        .map(|c| String::from_utf8_lossy(c.strip_suffix(b"\n").unwrap_or(&c)).into_owned())
        .unwrap_or_default()
}

/// `7f..-7f.. rw-s 00000000 00:01 1234   /dev/shm/name` → what it maps.
fn parse_maps_line(line: &str) -> Option<(HeldKey, Option<String>)> {
    let mut it = line.splitn(6, ' ');
    // Shared or private, a mapping keeps the object alive and reads its pages: a holder.
    let (_range, _perms, _off, _dev) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let inode: u64 = it.next()?.parse().ok()?;
    let path = it.next()?.trim_start();
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    if path.starts_with("/dev/shm/") {
        Some((HeldKey::ShmFs(inode), None))
    } else if let Some(name) = path.strip_prefix("/memfd:") {
        Some((HeldKey::Memfd(inode), Some(name.to_string())))
    } else if path.starts_with("/SYSV") {
        // The inode of a System V mapping is the segment's id.
        Some((HeldKey::Sysv(inode as i32), None))
    } else {
        None
    }
}

impl HolderScan {
    /// Every memfd seen, addressed by its first holder's fd.
    pub(crate) fn memfds(&self) -> Vec<Object> {
        self.memfds
            .iter()
            .map(|(ino, seen)| {
                let address = match seen.first_fd {
                    Some((pid, fd)) => Address::Memfd { pid, fd },
                    None => Address::MemfdMap {
                        pid: seen.first_map.0,
                        inode: *ino,
                    },
                };
                let mut o = Object::new(Kind::Memfd, address);
                o.inode = Some(*ino);
                o.name = Some(seen.name.clone());
                // Mapped only: its size and mode are readable through map_files (root only).
                let meta = seen.meta.or_else(|| {
                    let m = std::fs::metadata(format!(
                        "/proc/{}/map_files/{}",
                        seen.first_map.0, seen.first_map.1
                    ))
                    .ok()?;
                    Some((m.size(), m.mode() & 0o7777, m.uid(), m.gid(), m.ctime()))
                });
                if let Some((size, mode, uid, gid, ctime)) = meta {
                    o.size = Some(size);
                    o.mode = mode;
                    o.uid = uid;
                    o.gid = gid;
                    o.ctime = Some(ctime);
                    o.last_use = Some(ctime);
                }
                o
            })
            .collect()
    }

    /// The holders of `o`, or `None` for the kinds no process can be seen holding (System V
    /// semaphore sets and message queues are used by id, through no fd or mapping).
    pub(crate) fn holders_of(&self, o: &Object) -> Option<Vec<Holder>> {
        let key = match (o.kind, o.inode, o.id) {
            (Kind::PosixShm | Kind::PosixSem, Some(ino), _) => HeldKey::ShmFs(ino),
            (Kind::SysvShm, _, Some(id)) => HeldKey::Sysv(id),
            (Kind::Memfd, Some(ino), _) => HeldKey::Memfd(ino),
            (Kind::PosixMq, Some(ino), _) => HeldKey::Mq(ino),
            _ => return None,
        };
        let holders = self
            .held
            .get(&key)
            .map(|m| {
                m.iter()
                    .map(|(pid, h)| Holder {
                        pid: *pid,
                        command: self.comm.get(pid).cloned().unwrap_or_default(),
                        maps: h.maps,
                        fds: h.fds.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(holders)
    }
}

/// Whether `fd` (one this process holds) is a memfd: a shmem inode (tmpfs, or hugetlbfs for
/// `MFD_HUGETLB`) whose `/proc/self/fd` link reads `/memfd:NAME (deleted)`, as the kernel names
/// every memfd. (Only an unlinked file called `/memfd:...` on a tmpfs root could look the same.)
pub(crate) fn is_memfd(fd: rustix::fd::BorrowedFd<'_>) -> bool {
    use rustix::fd::AsRawFd;
    let Ok(link) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return false;
    };
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const HUGETLBFS_MAGIC: i64 = 0x9584_58f6;
    // f_type is i64 on x86_64 but another width elsewhere.
    #[allow(clippy::unnecessary_cast)]
    let shmem = rustix::fs::fstatfs(fd)
        .is_ok_and(|s| matches!(s.f_type as i64, TMPFS_MAGIC | HUGETLBFS_MAGIC));
    let link = link.as_os_str().as_bytes();
    shmem && link.starts_with(b"/memfd:") && link.ends_with(b" (deleted)")
}

/// `/proc/PID/map_files/START-END` of a mapping of the memfd with this inode.
pub(crate) fn map_file(pid: i32, inode: u64) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines().find_map(|l| match parse_maps_line(l) {
        Some((HeldKey::Memfd(ino), _)) if ino == inode => {
            Some(format!("/proc/{pid}/map_files/{}", l.split(' ').next()?))
        }
        _ => None,
    })
}

/// The inode behind `/proc/PID/fd/FD`.
pub(crate) fn fd_inode(pid: i32, fd: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|m| m.ino())
}

/// One POSIX message queue by name when no mqueue file system is mounted: a queue
/// descriptor is a file descriptor whose `fstat` has the queue's mode, owner and times, so
/// opening it read-only (no message is taken, nothing is created) tells what a listing
/// cannot. `None` if there is no such queue.
pub(crate) fn posix_mq_by_name(name: &std::ffi::OsStr) -> Result<Option<Object>> {
    if mqueue_mount().is_some() {
        return Ok(None); // the listing saw every queue there is
    }
    let shown = name.to_string_lossy();
    let shown = shown.as_ref();
    let Ok(c) = std::ffi::CString::new(name.as_bytes()) else {
        return Ok(None);
    };
    // SAFETY: a valid C string; no O_CREAT, so no variadic arguments are read.
    let mqd = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if mqd < 0 {
        return match crate::sysv::last_errno() {
            rustix::io::Errno::NOENT => Ok(None),
            e => Err(Error::os("mq_open", shown, e)),
        };
    }
    // SAFETY: `mqd` is a file descriptor we own until mq_close below.
    let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(mqd) };
    let st = rustix::fs::fstat(fd);
    // SAFETY: mq_attr is plain data; `mqd` is live.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: as above, with a valid out-pointer.
    let attr_ok = unsafe { libc::mq_getattr(mqd, &mut attr) } == 0;
    // SAFETY: closes the descriptor we opened, once.
    unsafe { libc::mq_close(mqd) };
    let st = st.map_err(|e| Error::os("fstat", shown, e))?;
    let mut o = Object::new(Kind::PosixMq, Address::PosixMq(name.to_os_string()));
    o.mode = st.st_mode & 0o7777;
    o.uid = st.st_uid;
    o.gid = st.st_gid;
    o.inode = Some(st.st_ino);
    o.ctime = Some(st.st_ctime);
    o.last_use = Some(st.st_ctime.max(st.st_mtime));
    o.name = Some(shown.trim_start_matches('/').to_string());
    if attr_ok {
        set_mq_attr(&mut o, &attr);
    }
    Ok(Some(o))
}

fn set_mq_attr(o: &mut Object, attr: &libc::mq_attr) {
    o.messages = Some(attr.mq_curmsgs as u64);
    o.max_messages = Some(attr.mq_maxmsg as u64);
    o.message_size = Some(attr.mq_msgsize as u64);
}

/// Fills in a queue's messages, capacity and message size (`mq_getattr`): opens the queue
/// read-only, which takes no message and changes nothing, but needs read permission, so
/// this is for `info` on one object, not for listings. Leaves them unknown if it cannot.
pub(crate) fn posix_mq_attr(o: &mut Object) {
    let Some(name) = o.address.posix_name() else {
        return;
    };
    let Ok(c) = std::ffi::CString::new(name.as_bytes()) else {
        return;
    };
    // SAFETY: a valid C string; no O_CREAT, so no variadic arguments are read.
    let mqd = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if mqd < 0 {
        return;
    }
    // SAFETY: mq_attr is plain data.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `mqd` is live; a valid out-pointer.
    let ok = unsafe { libc::mq_getattr(mqd, &mut attr) } == 0;
    // SAFETY: closes the descriptor we opened, once.
    unsafe { libc::mq_close(mqd) };
    if ok {
        set_mq_attr(o, &attr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let l = "7f00-7f01 rw-s 00000000 00:1a 42                         /dev/shm/x";
        assert_eq!(parse_maps_line(l), Some((HeldKey::ShmFs(42), None)));
        let l = "7f00-7f01 rw-s 00000000 00:01 7                          /SYSV00001234 (deleted)";
        assert_eq!(parse_maps_line(l), Some((HeldKey::Sysv(7), None)));
        let l = "7f00-7f01 r--s 00000000 00:01 99                         /memfd:my name (deleted)";
        assert_eq!(
            parse_maps_line(l),
            Some((HeldKey::Memfd(99), Some("my name".into())))
        );
        let l = "7f00-7f01 r--p 00000000 00:1a 42                         /dev/shm/x";
        assert_eq!(parse_maps_line(l), Some((HeldKey::ShmFs(42), None)));
        let l = "7f00-7f01 r--p 00000000 08:01 42                         /usr/lib/libc.so.6";
        assert_eq!(parse_maps_line(l), None);
        assert_eq!(parse_maps_line("7f00-7f01 rw-p 00000000 00:00 0 "), None);
    }
}
