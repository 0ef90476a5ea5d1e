//! Objects built from the rows the platform layer reads: one function per source.

use super::{Address, ChannelInfo, Holder, Kind, Object};
use crate::error::Result;
use crate::platform::facts::{
    FileStat, HeldKey, HolderScan, MqAttr, Perm, PosixFile, PosixWhat, SysvMsgRow, SysvSemRow,
    SysvShmRow,
};
use crate::platform::{self, inventory as os};
use std::ffi::OsStr;

/// `SHM_DEST` in `shm_perm.mode`: marked for removal, destroyed at the last detach.
const SHM_DEST: u32 = 0o1000;

/// Mode and ownership common to the three System V tables.
fn sysv_common(o: &mut Object, p: &Perm, ctime: Option<i64>) {
    o.mode = p.mode & 0o777;
    o.uid = p.uid.unwrap_or(0);
    o.gid = p.gid.unwrap_or(0);
    o.creator_uid = p.cuid;
    o.creator_gid = p.cgid;
    o.key = p.key;
    o.ctime = ctime;
}

/// A System V time: 0 means "never".
fn when(t: Option<i64>) -> Option<i64> {
    t.filter(|t| *t != 0)
}

fn latest(times: &[Option<i64>]) -> Option<i64> {
    times.iter().flatten().copied().max()
}

// `shm_object`, `sem_object` and `msg_object` look alike because each copies the fields of
// its own row type into an `Object`; they share what is common (`sysv_common`, `when`,
// `latest`), and what is left differs field by field.
fn shm_object(r: &SysvShmRow) -> Object {
    let mut o = Object::new(Kind::SysvShm, Address::SysvShmId(r.id));
    sysv_common(&mut o, &r.perm, r.ctime);
    o.marked_for_removal = r.perm.mode & SHM_DEST != 0;
    o.id = Some(r.id);
    o.inode = Some(r.id as u64);
    o.size = r.size;
    o.creator_pid = r.cpid;
    o.last_pid = r.lpid;
    o.nattch = r.nattch;
    o.attach_time = when(r.atime);
    o.detach_time = when(r.dtime);
    o.last_use = latest(&[r.atime, r.dtime, r.ctime]);
    o
}

pub(super) fn sysv_shm() -> Result<Vec<Object>> {
    Ok(os::sysv_shm()?.iter().map(shm_object).collect())
}

/// Bytes of System V segment `id` in swap.
pub(crate) fn sysv_swap(id: i32) -> Option<u64> {
    os::sysv_shm().ok()?.into_iter().find(|r| r.id == id)?.swap
}

fn sem_object(r: &SysvSemRow) -> Object {
    let mut o = Object::new(Kind::SysvSem, Address::SysvSem(r.id));
    sysv_common(&mut o, &r.perm, r.ctime);
    o.id = Some(r.id);
    o.nsems = Some(r.nsems);
    o.op_time = when(r.otime);
    o.last_use = latest(&[r.otime, r.ctime]);
    // GETALL, GETNCNT and GETZCNT only read; they need read permission, so values stay
    // unknown for sets this user may not read. The number of sets read from the table may be
    // stale (the id removed and reused by a larger set since): get_all_id sizes its buffer
    // from the set as it is now.
    if let Ok(vals) = crate::sysv::sem::get_all_id(r.id) {
        o.nsems = Some(vals.len() as u32);
        o.values = Some(vals.iter().map(|&v| v as i64).collect());
        o.waiters = Some(crate::sysv::sem::waiters_id(r.id, vals.len()));
    }
    o
}

pub(super) fn sysv_sem() -> Result<Vec<Object>> {
    Ok(os::sysv_sem()?.iter().map(sem_object).collect())
}

fn msg_object(r: &SysvMsgRow) -> Object {
    let mut o = Object::new(Kind::SysvMsg, Address::SysvMsg(r.id));
    sysv_common(&mut o, &r.perm, r.ctime);
    o.id = Some(r.id);
    o.size = r.cbytes;
    o.messages = r.qnum;
    o.last_pid = r.lspid;
    o.receive_pid = r.lrpid;
    o.send_time = when(r.stime);
    o.receive_time = when(r.rtime);
    o.last_use = latest(&[r.stime, r.rtime, r.ctime]);
    o
}

pub(super) fn sysv_msg() -> Result<Vec<Object>> {
    Ok(os::sysv_msg()?.iter().map(msg_object).collect())
}

fn file_object(kind: Kind, address: Address, st: &FileStat) -> Object {
    let mut o = Object::new(kind, address);
    o.size = Some(st.size);
    o.mode = st.mode;
    o.uid = st.uid;
    o.gid = st.gid;
    o.inode = Some(st.ino);
    o.device = Some(st.dev);
    o.ctime = Some(st.ctime);
    o.last_use = Some(st.ctime.max(st.mtime));
    o
}

/// The name as listings show it: without the `/`, lossily.
fn shown(name: &OsStr) -> String {
    let s = name.to_string_lossy();
    s.strip_prefix('/').unwrap_or(&s).to_string()
}

/// The flavor's name of the ready channel whose first bytes are `head`, if it is one and the
/// segment (`len` bytes) holds all of it.
fn channel_flavor(head: &[u8], len: u64) -> Option<&'static str> {
    #[cfg(target_os = "linux")]
    return crate::channel::Flavor::from_header(head)
        .filter(|f| f.fits(head, len))
        .map(crate::channel::Flavor::name);
    // Channels are built on `sync`, which is Linux only: elsewhere no segment holds one.
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (head, len);
        None
    }
}

/// A POSIX segment, or the channel it holds at offset 0 (where `shmkit channel mk` builds
/// one). Only a ready header makes a channel: one still being built, or whose builder died
/// half-way, has no flavor to show and no end to open yet, so it is listed as a segment.
fn posix_shm_object(name: &OsStr, stat: &FileStat, head: Option<&[u8]>) -> Object {
    let address = Address::PosixShm(name.to_os_string());
    match head.and_then(|h| channel_flavor(h, stat.size)) {
        Some(flavor) => {
            let mut o = file_object(Kind::Channel, address, stat);
            o.channel = Some(ChannelInfo {
                flavor: flavor.to_string(),
                backing: Kind::PosixShm,
            });
            o
        }
        None => file_object(Kind::PosixShm, address, stat),
    }
}

fn posix_object(f: PosixFile) -> Object {
    let mut o = match f.what {
        PosixWhat::Shm(head) => posix_shm_object(&f.name, &f.stat, head.as_ref().map(|h| &h[..])),
        PosixWhat::Sem(value) => {
            let mut o = file_object(Kind::PosixSem, Address::PosixSem(f.name.clone()), &f.stat);
            o.size = None;
            if let Some((v, w)) = value {
                o.values = Some(vec![i64::from(v)]);
                o.waiters = Some(w);
            }
            o
        }
        PosixWhat::Mq(qsize) => {
            let mut o = file_object(Kind::PosixMq, Address::PosixMq(f.name.clone()), &f.stat);
            o.size = qsize;
            o
        }
    };
    o.name = Some(shown(&f.name));
    if o.kind == Kind::PosixSem {
        o.name = Some(format!("sem.{}", shown(&f.name)));
    }
    o
}

/// POSIX shared memory (plain segments and channels) and named semaphores.
pub(super) fn posix_files() -> Result<(Vec<Object>, Vec<Object>)> {
    let (shm, sem) = os::posix_files()?
        .into_iter()
        .map(posix_object)
        .partition(|o| o.backing_kind() == Kind::PosixShm);
    Ok((shm, sem))
}

/// POSIX message queues, or `None` where the OS does not list them.
pub(super) fn posix_mq() -> Result<Option<Vec<Object>>> {
    Ok(os::posix_mq()?.map(|q| q.into_iter().map(posix_object).collect()))
}

/// How many POSIX message queues exist, where the OS lists them.
pub(crate) fn posix_mq_count() -> Result<Option<u64>> {
    Ok(os::posix_mq()?.map(|q| q.len() as u64))
}

fn set_mq_attr(o: &mut Object, a: MqAttr) {
    o.messages = Some(a.curmsgs);
    o.max_messages = Some(a.maxmsg);
    o.message_size = Some(a.msgsize);
}

/// Fills in a queue's messages, capacity and message size, when this user may read it.
pub(super) fn mq_attr(o: &mut Object) {
    if let Some(a) = o.address.posix_name().and_then(os::mq_attr) {
        set_mq_attr(o, a);
    }
}

/// One POSIX message queue by name when the OS lists none (no mqueue mount): `None` if there
/// is no such queue, or if the listing saw every queue there is.
pub(super) fn posix_mq_by_name(name: &OsStr) -> Result<Option<Object>> {
    if os::mqueue_dir().is_some() {
        return Ok(None);
    }
    let Some((st, attr)) = os::mq_stat(name)? else {
        return Ok(None);
    };
    let mut o = file_object(Kind::PosixMq, Address::PosixMq(name.to_os_string()), &st);
    o.size = None;
    o.name = Some(shown(name));
    if let Some(a) = attr {
        set_mq_attr(&mut o, a);
    }
    Ok(Some(o))
}

/// Every memfd the scan saw, addressed by its first holder's fd.
///
/// A memfd is never listed as a [`Kind::Channel`]: its bytes are reachable only by opening
/// another process's `/proc/PID/fd/N` (or `map_files`), and the scan only `stat`s those, so
/// telling a channel would add an open of every memfd of every process to each listing.
pub(super) fn memfds(scan: &HolderScan) -> Vec<Object> {
    scan.memfds
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
            if let Some(st) = &seen.stat {
                o.device = Some(st.dev);
                o.size = Some(st.size);
                o.mode = st.mode;
                o.uid = st.uid;
                o.gid = st.gid;
                o.ctime = Some(st.ctime);
                o.last_use = Some(st.ctime);
            }
            o
        })
        .collect()
}

/// The holders of `o`, or `None` for the kinds no process can be seen holding (System V
/// semaphore sets and message queues are used by id, through no fd or mapping).
pub(super) fn holders_of(scan: &HolderScan, o: &Object) -> Option<Vec<Holder>> {
    let key = match (o.backing_kind(), o.inode, o.id) {
        (Kind::PosixShm | Kind::PosixSem, Some(ino), _) => HeldKey::ShmFs(ino),
        (Kind::SysvShm, _, Some(id)) => HeldKey::Sysv(id),
        (Kind::Memfd, Some(ino), _) => HeldKey::Memfd(ino),
        (Kind::PosixMq, Some(ino), _) => HeldKey::Mq(ino),
        _ => return None,
    };
    let holders = scan
        .held
        .get(&key)
        .map(|m| {
            m.iter()
                .map(|(pid, h)| Holder {
                    pid: *pid,
                    command: scan.comm.get(pid).cloned().unwrap_or_default(),
                    maps: h.maps,
                    fds: h.fds.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(holders)
}

/// Whether a process is alive, for the orphan rule.
pub(super) fn alive(pid: i32) -> bool {
    platform::process_alive(pid)
}

/// Marks the memfds that this user's registry hands out with their registered names. Does
/// nothing when no registry runs (connecting fails at once) or off Linux.
pub(super) fn registered_names(objects: &mut [Object]) {
    #[cfg(target_os = "linux")]
    {
        // A listing must not wait on a hung registry (nor on a stopped one's full backlog).
        let timeout = std::time::Duration::from_millis(500);
        let Ok(mut c) = crate::registry::Client::connect_default_within(timeout) else {
            return;
        };
        let Ok(names) = c.list() else { return };
        for o in objects
            .iter_mut()
            .filter(|o| o.backing_kind() == Kind::Memfd)
        {
            // The same inode on the same device (hugetlb memfds are on another one; a
            // device the inventory could not read is taken as matching).
            let same = |h: &crate::registry::HandleInfo| {
                h.kind == crate::handle::Kind::Memfd
                    && Some(h.inode) == o.inode
                    && o.device.is_none_or(|d| d == h.device)
            };
            o.registered = names
                .iter()
                .find(|i| i.handles.iter().any(same))
                .map(|i| i.name.clone());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = objects;
}
