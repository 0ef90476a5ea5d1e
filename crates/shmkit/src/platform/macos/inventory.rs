//! The inventory on macOS.
//!
//! - System V segments, semaphore sets and message queues: the `kern.sysv.ipcs.{shm,sem,msg}`
//!   sysctls, the interface macOS's own `ipcs(1)` reads (xnu `bsd/kern/sysv_{shm,sem,msg}.c`,
//!   `IPCS_*_sysctl`): one `IPCS_command` per call, whose cursor walks the kernel's table.
//!   Every object is listed, even those this user may not `IPC_STAT`.
//! - POSIX shared memory: macOS keeps its objects in the kernel, in no directory, and has no
//!   call that lists them. The only way to see one is through a descriptor a process holds:
//!   `proc_pidinfo(PROC_PIDLISTFDS)` for every process, and `proc_pidfdinfo(PROC_PIDFDPSHMINFO)`
//!   for each descriptor of type `PROX_FDTYPE_PSHM`. **A POSIX object that no process holds open
//!   by a descriptor cannot be listed on macOS**: neither one nobody uses, nor one that is only
//!   mapped (its descriptor closed after `mmap`). Processes of other users are refused
//!   (`EPERM`) unless this is root: they are reported as uninspected, as on Linux, and what
//!   they hold is not seen.
//! - POSIX message queues do not exist on macOS: the listing of them is empty, truthfully.
//!
//! What the kernel reports of a POSIX object is its name, size, mode and owner
//! (`pshm_info`, filled by xnu's `fill_pshminfo`): no inode, no device and no times (the
//! kernel zeroes them). Its name is the only identity it has, so [`FileStat::ino`] is a stand-in
//! derived from the name ([`name_key`]) and is what the holder scan keys objects by; `dev` and
//! the times are 0, as the kernel gives them. An object unlinked while still held keeps its
//! name in the kernel, so it is listed under that name (and merged with a newer object of the
//! same name, if there is one: nothing tells them apart).
//!
//! Nothing here opens, attaches or changes an object; the scan only reads process tables.
//! One side effect: the first `kern.sysv.ipcs` query after boot initialises the kernel's
//! System V tables (`shminit`, `msginit` in xnu), after which macOS takes no new
//! `kern.sysv.*` values: a listing counts as a use of System V.

use crate::error::{Error, ErrorKind, Result};
use crate::platform::errno;
use crate::platform::facts::{
    FileStat, HeldKey, HolderScan, MqAttr, Perm, PosixFile, PosixWhat, SysvMsgRow, SysvSemRow,
    SysvShmRow,
};
use rustix::fd::BorrowedFd;
use rustix::io::Errno;
use std::collections::BTreeMap;
use std::ffi::{c_void, CStr, OsStr, OsString};
use std::mem::size_of;
use std::os::unix::ffi::OsStringExt;

// ---------------------------------------------------------------------------------------------
// The kernel's structures, declared by hand. Both Apple targets are 64-bit processes, so each
// is the layout the kernel copies out to a 64-bit process; each size is checked at compile time
// against the size worked out from the header named beside it.
// ---------------------------------------------------------------------------------------------

/// `struct ipc_perm` (xnu `bsd/sys/ipc.h`, `__ipc_perm_new`): 4 × 4 bytes of ids, `mode` and
/// `_seq` (2 each), `_key` (4): 24 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // every field is the kernel's; only some are read
struct IpcPerm {
    uid: u32,
    gid: u32,
    cuid: u32,
    cgid: u32,
    mode: u16,
    seq: u16,
    key: i32,
}
const _: () = assert!(size_of::<IpcPerm>() == 24);
const _: () = assert!(size_of::<IpcPerm>() == size_of::<libc::ipc_perm>());

/// `struct user_IPCS_command` (xnu `bsd/sys/ipcs.h`): four `int`s and a `user_addr_t`, the
/// 64-bit process's form of `struct IPCS_command`: 16 + 8 = 24 bytes.
#[repr(C)]
struct IpcsCommand {
    magic: i32,
    op: i32,
    cursor: i32,
    datalen: i32,
    data: *mut c_void,
}
const _: () = assert!(size_of::<IpcsCommand>() == 24);

/// `IPCS_MAGIC` (xnu `bsd/sys/ipcs.h`): the layout version, 1.
const IPCS_MAGIC: i32 = 0x0000_0001;
/// `IPCS_SHM_ITER`, `IPCS_SEM_ITER`, `IPCS_MSG_ITER` (xnu `bsd/sys/ipcs.h`).
const IPCS_SHM_ITER: i32 = 0x0000_0002;
const IPCS_SEM_ITER: i32 = 0x0000_0020;
const IPCS_MSG_ITER: i32 = 0x0000_0200;

/// `struct user_shmid_ds` (xnu `bsd/sys/shm_internal.h`, `#pragma pack(4)`; the kernel copies
/// it out as is to a 64-bit process): perm 24, `shm_segsz` 8 (→ 32), two pids (→ 40),
/// `short shm_nattch` (→ 42, padded to 44 under pack(4)), three 8-byte times (→ 68), and the
/// kernel's pointer `shm_internal` 8, zeroed before the copy: 76 bytes. libc's `shmid_ds`
/// (also pack(4)) has the same size.
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
#[allow(dead_code)] // every field is the kernel's; only some are read
struct ShmidDs {
    perm: IpcPerm,
    segsz: u64,
    lpid: i32,
    cpid: i32,
    nattch: i16,
    atime: i64,
    dtime: i64,
    ctime: i64,
    internal: u64,
}
const _: () = assert!(size_of::<ShmidDs>() == 76);
const _: () = assert!(size_of::<ShmidDs>() == size_of::<libc::shmid_ds>());

/// `struct user64_semid_ds` (xnu `bsd/sys/sem_internal.h`, `#pragma pack(4)`; what
/// `semid_ds_kernelto64` fills for a 64-bit process): perm 24, `int32_t sem_base` (→ 28),
/// `unsigned short sem_nsems` (→ 30, padded to 32), `sem_otime` 8 (→ 40), pad 4 (→ 44),
/// `sem_ctime` 8 (→ 52), pad 4 + 4 × 4 (→ 72): 72 bytes, as libc's `semid_ds`.
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
#[allow(dead_code)] // every field is the kernel's; only some are read
struct SemidDs {
    perm: IpcPerm,
    base: i32,
    nsems: u16,
    otime: i64,
    pad1: i32,
    ctime: i64,
    pad2: i32,
    pad3: [i32; 4],
}
const _: () = assert!(size_of::<SemidDs>() == 72);
const _: () = assert!(size_of::<SemidDs>() == size_of::<libc::semid_ds>());

/// `struct user64_msqid_ds` (xnu `bsd/sys/msg.h`, `__attribute__((packed))`; the same offsets
/// as the user's `__msqid_ds_new` under pack(4)): perm 24, two `int32_t` (→ 32), `msg_cbytes`,
/// `msg_qnum`, `msg_qbytes` 8 each (→ 56), two pids (→ 64), then three times of 8 each
/// followed by a 4-byte pad (→ 100), and 4 × 4 reserved (→ 116): 116 bytes.
#[repr(C, packed(4))]
#[derive(Clone, Copy)]
#[allow(dead_code)] // every field is the kernel's; only some are read
struct MsqidDs {
    perm: IpcPerm,
    first: i32,
    last: i32,
    cbytes: u64,
    qnum: u64,
    qbytes: u64,
    lspid: i32,
    lrpid: i32,
    stime: i64,
    pad1: i32,
    rtime: i64,
    pad2: i32,
    ctime: i64,
    pad3: i32,
    pad4: [i32; 4],
}
const _: () = assert!(size_of::<MsqidDs>() == 116);

/// Mode bits of a segment's `shm_perm.mode` in xnu (`bsd/kern/sysv_shm.c`).
const SHMSEG_REMOVED: u16 = 0x0400;
const SHMSEG_ALLOCATED: u16 = 0x0800;
/// `SEM_ALLOC` in a set's `sem_perm.mode` (xnu `bsd/sys/sem_internal.h`).
const SEM_ALLOC: u16 = 0o1000;
/// Linux's `SHM_DEST`, the bit that the row's mode uses for "marked for removal" (the
/// inventory reads it so): macOS's `SHMSEG_REMOVED` is translated to it.
const SHM_DEST: u32 = 0o1000;

/// `struct proc_fileinfo` (xnu `bsd/sys/proc_info.h`): two `uint32_t` (→ 8), `off_t fi_offset`
/// (→ 16), `int32_t fi_type`, `uint32_t fi_guardflags` (→ 24): 24 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // every field is the kernel's; only some are read
struct ProcFileinfo {
    openflags: u32,
    status: u32,
    offset: i64,
    kind: i32,
    guardflags: u32,
}
const _: () = assert!(size_of::<ProcFileinfo>() == 24);

/// `struct vinfo_stat` (xnu `bsd/sys/proc_info.h`): dev 4, mode and nlink 2 each (→ 8), ino 8
/// (→ 16), uid and gid (→ 24), eight `int64_t` times (→ 88), size and blocks 8 each (→ 104),
/// blksize, flags, gen, rdev 4 each (→ 120), `int64_t vst_qspare[2]` (→ 136): 136 bytes, as
/// libc's `vinfo_stat`, which is used.
type VinfoStat = libc::vinfo_stat;
const _: () = assert!(size_of::<VinfoStat>() == 136);

/// `MAXPATHLEN` (`sys/param.h`): the size of `pshm_info`'s name buffer.
const MAXPATHLEN: usize = 1024;

/// `struct pshm_info` (xnu `bsd/sys/proc_info.h`): `vinfo_stat` 136, `uint64_t pshm_mappaddr`
/// (→ 144), `char pshm_name[MAXPATHLEN]` (→ 1168): 1168 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // every field is the kernel's; only some are read
struct PshmInfo {
    stat: VinfoStat,
    mappaddr: u64,
    name: [u8; MAXPATHLEN],
}
const _: () = assert!(size_of::<PshmInfo>() == 1168);

/// `struct pshm_fdinfo` (xnu `bsd/sys/proc_info.h`): `proc_fileinfo` 24 + `pshm_info` 1168:
/// 1192 bytes, `PROC_PIDFDPSHMINFO_SIZE`.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(dead_code)] // every field is the kernel's; only some are read
struct PshmFdinfo {
    pfi: ProcFileinfo,
    pshminfo: PshmInfo,
}
const _: () = assert!(size_of::<PshmFdinfo>() == 1192);

/// `PROC_ALL_PIDS` (xnu `bsd/sys/proc_info.h`; libc does not have it).
const PROC_ALL_PIDS: u32 = 1;
/// `PROC_PIDFDPSHMINFO` (xnu `bsd/sys/proc_info.h`; libc does not have it).
const PROC_PIDFDPSHMINFO: i32 = 5;

/// A record the `kern.sysv.ipcs` sysctls copy out.
///
/// # Safety
/// Plain integers only: every bit pattern is a valid value, and all zeros is one.
unsafe trait IpcsRecord: Copy {}
// SAFETY: integers (and arrays of them) only.
unsafe impl IpcsRecord for ShmidDs {}
// SAFETY: integers (and arrays of them) only.
unsafe impl IpcsRecord for SemidDs {}
// SAFETY: integers (and arrays of them) only.
unsafe impl IpcsRecord for MsqidDs {}

/// The System V id of the object in slot `slot` whose sequence number is `seq`: xnu's
/// `IXSEQ_TO_IPCID(ix, perm)`, `(perm._seq << 16) | (ix & 0xffff)` (as `ipcs(1)` computes it).
fn ipc_id(slot: i32, seq: u16) -> i32 {
    ((u32::from(seq) << 16) | (slot as u32 & 0xffff)) as i32
}

/// Every record of one `kern.sysv.ipcs.*` sysctl, with the slot each is in: the loop of
/// `ipcs(1)`, one call per object, until the kernel says there is no further one (`ENOENT`,
/// or `ERANGE` once the cursor passes the table's end).
fn ipcs<T: IpcsRecord>(sysctl: &CStr, op: i32, what: &str) -> Result<Vec<(i32, T)>> {
    let shown = sysctl.to_string_lossy();
    // Resolved first, so that a missing sysctl (ENOENT) is not taken for the end of the table.
    let mut mib = [0 as libc::c_int; 8];
    let mut miblen: libc::size_t = mib.len();
    // SAFETY: a C string; `mib` has `miblen` writable ints, and the kernel writes at most that.
    if unsafe { libc::sysctlnametomib(sysctl.as_ptr(), mib.as_mut_ptr(), &mut miblen) } != 0 {
        return Err(Error::os("sysctlnametomib", shown, errno())
            .with_kind(ErrorKind::Os)
            .with_hint(format!("this kernel does not list {what}")));
    }
    let miblen = miblen.min(mib.len()) as libc::c_uint;
    let mut out = Vec::new();
    // SAFETY: `T` is plain integers (IpcsRecord): all zeros is a valid value.
    let mut rec: T = unsafe { std::mem::zeroed() };
    let mut cmd = IpcsCommand {
        magic: IPCS_MAGIC,
        op,
        cursor: 0,
        datalen: size_of::<T>() as i32,
        data: std::ptr::null_mut(),
    };
    loop {
        // Set before every call: the kernel writes the command back (ipcs(1) does the same).
        cmd.data = (&raw mut rec).cast();
        let before = cmd.cursor;
        let cmd_ptr: *mut IpcsCommand = &raw mut cmd;
        let mut len: libc::size_t = size_of::<IpcsCommand>();
        // SAFETY: the command is read from and written back to `cmd` (`len` bytes, its size;
        // the kernel writes no more than `len`). The kernel copies one record of exactly
        // `datalen` bytes to `data`, and refuses (EINVAL) unless `datalen` is the size of its
        // own record: `data` points to a `T` of `datalen` bytes, which outlives the call.
        let r = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                miblen,
                cmd_ptr.cast(),
                &mut len,
                cmd_ptr.cast(),
                size_of::<IpcsCommand>(),
            )
        };
        if r != 0 {
            return match errno() {
                Errno::NOENT | Errno::RANGE => Ok(out),
                e => Err(Error::os("sysctl", shown, e)),
            };
        }
        // The kernel sets the cursor one past the slot it reported; anything else (a short
        // answer, a cursor that did not move on) would be a kernel speaking another layout:
        // stop rather than loop or read a half-written record.
        if len != size_of::<IpcsCommand>() || cmd.cursor <= before {
            return Err(Error::new(
                ErrorKind::Os,
                "sysctl",
                shown,
                format!(
                    "unexpected answer (length {len}, cursor {} after {before}): not the \
                     IPCS_command layout this build knows",
                    cmd.cursor
                ),
            ));
        }
        out.push((cmd.cursor - 1, rec));
        // SAFETY: as above.
        rec = unsafe { std::mem::zeroed() };
    }
}

fn perm(p: &IpcPerm, mode: u32) -> Perm {
    Perm {
        key: Some(p.key),
        mode,
        uid: Some(p.uid),
        gid: Some(p.gid),
        cuid: Some(p.cuid),
        cgid: Some(p.cgid),
    }
}

/// Every System V segment (`kern.sysv.ipcs.shm`), even those this user may not `IPC_STAT`.
/// The mode has the permission bits, and Linux's `SHM_DEST` (0o1000) for a segment marked for
/// removal (macOS's `SHMSEG_REMOVED`): the rows speak one encoding on every OS. macOS does
/// not count swapped bytes per segment: `swap` is `None`.
pub(crate) fn sysv_shm() -> Result<Vec<SysvShmRow>> {
    let recs: Vec<(i32, ShmidDs)> =
        ipcs(c"kern.sysv.ipcs.shm", IPCS_SHM_ITER, "System V segments")?;
    Ok(recs
        .into_iter()
        .filter(|(_, d)| d.perm.mode & SHMSEG_ALLOCATED != 0)
        .map(|(slot, d)| {
            let p = d.perm;
            let mut mode = u32::from(p.mode) & 0o777;
            if p.mode & SHMSEG_REMOVED != 0 {
                mode |= SHM_DEST;
            }
            SysvShmRow {
                id: ipc_id(slot, p.seq),
                perm: perm(&p, mode),
                size: Some(d.segsz),
                cpid: Some(d.cpid),
                lpid: Some(d.lpid),
                // The kernel's count is a `short`: past 32,767 it reads negative, which is
                // "many", never 0 (a 0 here would let gc take an attached segment for an
                // orphan).
                nattch: Some(u64::from(d.nattch as u16)),
                atime: Some(d.atime),
                dtime: Some(d.dtime),
                ctime: Some(d.ctime),
                swap: None,
            }
        })
        .collect())
}

/// Every System V semaphore set (`kern.sysv.ipcs.sem`).
pub(crate) fn sysv_sem() -> Result<Vec<SysvSemRow>> {
    let recs: Vec<(i32, SemidDs)> =
        ipcs(c"kern.sysv.ipcs.sem", IPCS_SEM_ITER, "System V semaphores")?;
    Ok(recs
        .into_iter()
        .filter(|(_, d)| d.perm.mode & SEM_ALLOC != 0)
        .map(|(slot, d)| {
            let p = d.perm;
            SysvSemRow {
                id: ipc_id(slot, p.seq),
                perm: perm(&p, u32::from(p.mode) & 0o777),
                nsems: u32::from(d.nsems),
                otime: Some(d.otime),
                ctime: Some(d.ctime),
            }
        })
        .collect())
}

/// Every System V message queue (`kern.sysv.ipcs.msg`; a slot is in use while its
/// `msg_qbytes` is not 0, as the kernel and `ipcs(1)` tell).
pub(crate) fn sysv_msg() -> Result<Vec<SysvMsgRow>> {
    let recs: Vec<(i32, MsqidDs)> = ipcs(
        c"kern.sysv.ipcs.msg",
        IPCS_MSG_ITER,
        "System V message queues",
    )?;
    Ok(recs
        .into_iter()
        .filter(|(_, d)| d.qbytes != 0)
        .map(|(slot, d)| {
            let p = d.perm;
            SysvMsgRow {
                id: ipc_id(slot, p.seq),
                perm: perm(&p, u32::from(p.mode) & 0o777),
                cbytes: Some(d.cbytes),
                qnum: Some(d.qnum),
                lspid: Some(d.lspid),
                lrpid: Some(d.lrpid),
                stime: Some(d.stime),
                rtime: Some(d.rtime),
                ctime: Some(d.ctime),
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// POSIX shared memory, through the descriptors processes hold.
// ---------------------------------------------------------------------------------------------

/// How many times a list is grown and asked for again when it filled the buffer (the process
/// or fd count grew between the calls) before the last answer is taken as it is.
const GROW_TRIES: usize = 8;

/// The stand-in inode of the POSIX object named `name` (64-bit FNV-1a of the name's bytes):
/// macOS reports no inode, and the name is all that identifies an object.
pub(crate) fn name_key(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Every process id (`proc_listpids(PROC_ALL_PIDS)`), sorted, without 0 (the kernel task has
/// no descriptors of its own).
fn all_pids() -> Result<Vec<i32>> {
    // SAFETY: a null buffer of size 0 asks for the size needed, in bytes.
    let need = unsafe { libc::proc_listpids(PROC_ALL_PIDS, 0, std::ptr::null_mut(), 0) };
    if need <= 0 {
        return Err(Error::os("proc_listpids", "every process", errno()));
    }
    let mut cap = need as usize / size_of::<i32>() + 64;
    for attempt in 0.. {
        let mut pids = vec![0i32; cap];
        let bytes = i32::try_from(cap * size_of::<i32>()).unwrap_or(i32::MAX);
        // SAFETY: `pids` has `bytes` writable bytes; the kernel writes at most that many.
        let r = unsafe { libc::proc_listpids(PROC_ALL_PIDS, 0, pids.as_mut_ptr().cast(), bytes) };
        if r <= 0 {
            return Err(Error::os("proc_listpids", "every process", errno()));
        }
        // Never more than the buffer holds, whatever the count says.
        let got = (r as usize / size_of::<i32>()).min(cap);
        if got == cap && attempt < GROW_TRIES {
            cap *= 2; // full: more processes than room, perhaps
            continue;
        }
        pids.truncate(got);
        pids.retain(|&p| p > 0);
        pids.sort_unstable();
        pids.dedup();
        return Ok(pids);
    }
    unreachable!("the loop returns")
}

/// What reading a process's descriptors gave.
enum Fds {
    Listed(Vec<libc::proc_fdinfo>),
    /// Exited meanwhile.
    Gone,
    /// Not this user's to inspect (`EPERM`), or otherwise refused.
    Refused,
}

/// Sets `errno` to 0, so that a call that returns 0 both on error and for "nothing" can be
/// told apart.
fn clear_errno() {
    // SAFETY: `__error` returns this thread's errno location, always valid.
    unsafe { *libc::__error() = 0 };
}

/// The descriptors of `pid` (`proc_pidinfo(PROC_PIDLISTFDS)`).
fn fds_of(pid: i32) -> Fds {
    const ENTRY: usize = size_of::<libc::proc_fdinfo>();
    clear_errno();
    // SAFETY: a null buffer of size 0 asks for the size needed (the table's size, with room).
    let need =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, std::ptr::null_mut(), 0) };
    if need <= 0 {
        return match errno().raw_os_error() {
            0 => Fds::Listed(Vec::new()),
            libc::ESRCH => Fds::Gone,
            _ => Fds::Refused,
        };
    }
    let mut cap = need as usize / ENTRY + 16;
    for attempt in 0.. {
        let mut buf = vec![
            libc::proc_fdinfo {
                proc_fd: 0,
                proc_fdtype: 0
            };
            cap
        ];
        let bytes = i32::try_from(cap * ENTRY).unwrap_or(i32::MAX);
        clear_errno();
        // SAFETY: `buf` has `bytes` writable bytes; the kernel writes at most that many.
        let r = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDLISTFDS,
                0,
                buf.as_mut_ptr().cast(),
                bytes,
            )
        };
        if r <= 0 {
            return match errno().raw_os_error() {
                0 => Fds::Listed(Vec::new()),
                libc::ESRCH => Fds::Gone,
                _ => Fds::Refused,
            };
        }
        let got = (r as usize / ENTRY).min(cap);
        if got == cap && attempt < GROW_TRIES {
            cap *= 2; // full: the process opened more meanwhile, perhaps
            continue;
        }
        buf.truncate(got);
        return Fds::Listed(buf);
    }
    unreachable!("the loop returns")
}

/// What `fd` of `pid` says of the POSIX object behind it, or `None` if it is no longer one
/// (closed or replaced meanwhile) or cannot be read.
fn pshm_of(pid: i32, fd: i32) -> Option<PshmFdinfo> {
    // SAFETY: plain integers and byte arrays: all zeros is a valid value.
    let mut info: PshmFdinfo = unsafe { std::mem::zeroed() };
    const SIZE: usize = size_of::<PshmFdinfo>();
    // SAFETY: `info` has SIZE writable bytes; the kernel writes at most the size given.
    let r = unsafe {
        libc::proc_pidfdinfo(
            pid,
            fd,
            PROC_PIDFDPSHMINFO,
            (&raw mut info).cast(),
            SIZE as i32,
        )
    };
    // The kernel answers with exactly its `pshm_fdinfo`: any other length is no answer.
    (usize::try_from(r).ok() == Some(SIZE)).then_some(info)
}

/// The name in a `pshm_info`: the bytes before the first NUL (all of them if there is none),
/// as the creator gave them to `shm_open`; `None` if empty.
fn pshm_name(info: &PshmInfo) -> Option<Vec<u8>> {
    let end = info
        .name
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(info.name.len());
    (end > 0).then(|| info.name[..end].to_vec())
}

fn pshm_stat(name: &[u8], st: &VinfoStat) -> FileStat {
    FileStat {
        size: u64::try_from(st.vst_size).unwrap_or(0),
        mode: u32::from(st.vst_mode) & 0o7777,
        uid: st.vst_uid,
        gid: st.vst_gid,
        dev: 0,
        ino: name_key(name),
        // Zeroed by the kernel: macOS keeps no times for POSIX objects it reports.
        ctime: st.vst_ctime,
        mtime: st.vst_mtime,
    }
}

/// The command name of `pid` (`proc_name`), lossily; empty if it cannot be read.
fn comm(pid: i32) -> String {
    let mut buf = [0u8; 2 * libc::MAXCOMLEN + 1];
    // SAFETY: `buf` has `buf.len()` writable bytes; the call writes at most that many.
    let r = unsafe { libc::proc_name(pid, buf.as_mut_ptr().cast(), buf.len() as u32) };
    let n = usize::try_from(r).unwrap_or(0).min(buf.len());
    let name = &buf[..n];
    let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
    String::from_utf8_lossy(name).into_owned()
}

/// One POSIX descriptor seen in a process.
#[derive(Clone)]
struct Seen {
    pid: i32,
    fd: i32,
    name: Vec<u8>,
    stat: FileStat,
}

/// One pass over every process's descriptors: the POSIX shared memory they hold, and the
/// processes that could not be inspected.
fn pshm_pass() -> Result<(Vec<Seen>, Vec<i32>)> {
    let mut seen = Vec::new();
    let mut refused = Vec::new();
    for pid in all_pids()? {
        let fds = match fds_of(pid) {
            Fds::Listed(fds) => fds,
            Fds::Gone => continue,
            Fds::Refused => {
                refused.push(pid);
                continue;
            }
        };
        for f in fds {
            if f.proc_fdtype != libc::PROX_FDTYPE_PSHM as u32 {
                continue;
            }
            let Some(info) = pshm_of(pid, f.proc_fd) else {
                continue;
            };
            let Some(name) = pshm_name(&info.pshminfo) else {
                continue;
            };
            let stat = pshm_stat(&name, &info.pshminfo.stat);
            seen.push(Seen {
                pid,
                fd: f.proc_fd,
                name,
                stat,
            });
        }
    }
    Ok((seen, refused))
}

/// How long the pass of a [`scan_holders`] is kept for the [`posix_files`] that follows it.
const PASS_KEPT: std::time::Duration = std::time::Duration::from_secs(2);

thread_local! {
    /// The descriptors the last [`scan_holders`] of this thread saw, and when.
    static LAST_PASS: std::cell::RefCell<Option<(std::time::Instant, Vec<Seen>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Keeps the pass of a holder scan for the object listing that follows it (the inventory
/// scans holders first, then lists objects).
fn keep_pass(seen: &[Seen]) {
    LAST_PASS.with(|p| *p.borrow_mut() = Some((std::time::Instant::now(), seen.to_vec())));
}

/// The pass the holder scan just made on this thread, taken (used once), if it is recent.
///
/// Objects and holders come from the same pass, so that every object listed has the holder
/// it was seen through: with two passes, an object first opened between them would be listed
/// with no holder, which the inventory takes for an orphan that `gc` may remove. Here no
/// object that is listed can lack a holder.
fn take_recent_pass() -> Option<Vec<Seen>> {
    LAST_PASS
        .with(|p| p.borrow_mut().take())
        .filter(|(at, _)| at.elapsed() <= PASS_KEPT)
        .map(|(_, seen)| seen)
}

/// The POSIX shared-memory objects that some process holds open by a descriptor, one per name.
///
/// **Only those**: macOS has no call that lists POSIX objects, so one that no process holds
/// by a descriptor (unused, or only mapped) is not listed, and neither is one held only by
/// processes this user may not inspect. The first [`HEAD_LEN`](crate::platform::facts::HEAD_LEN)
/// bytes are not read (`PosixWhat::Shm(None)`): nothing is opened, and no channel lives in a
/// macOS segment. macOS has no named POSIX semaphores in any file system: none are listed.
///
/// Right after a [`scan_holders`] on this thread (within [`PASS_KEPT`]), the descriptors
/// that scan saw are used instead of a new pass, once.
pub(crate) fn posix_files() -> Result<Vec<PosixFile>> {
    let seen = match take_recent_pass() {
        Some(seen) => seen,
        None => pshm_pass()?.0,
    };
    let mut by_name: BTreeMap<Vec<u8>, FileStat> = BTreeMap::new();
    for s in seen {
        by_name.entry(s.name).or_insert(s.stat);
    }
    Ok(by_name
        .into_iter()
        .map(|(name, stat)| PosixFile {
            name: OsString::from_vec(name),
            stat,
            what: PosixWhat::Shm(None),
        })
        .collect())
}

/// The note of every listing of POSIX shared memory on macOS: what it cannot see.
pub(crate) fn posix_shm_note() -> Option<&'static str> {
    Some(
        "POSIX shared memory is listed only while a process holds it open by a descriptor: \
         macOS cannot list objects that nobody holds, or that are only mapped, or that only \
         processes this user may not inspect hold",
    )
}

/// macOS has no POSIX message queues (no `mq_open` at all): there are none to list, which is
/// the truth, not a gap in what could be seen.
pub(crate) fn posix_mq() -> Result<Option<Vec<PosixFile>>> {
    Ok(Some(Vec::new()))
}

/// No mqueue file system on macOS.
pub(crate) fn mqueue_dir() -> Option<String> {
    None
}

/// No POSIX message queue exists on macOS.
pub(crate) fn mq_stat(_name: &OsStr) -> Result<Option<(FileStat, Option<MqAttr>)>> {
    Ok(None)
}

/// No POSIX message queue exists on macOS.
pub(crate) fn mq_attr(_name: &OsStr) -> Option<MqAttr> {
    None
}

/// Who holds which POSIX object by a descriptor: one pass over every process's descriptors
/// (`proc_pidinfo`, `proc_pidfdinfo`), keyed by [`name_key`] as [`posix_files`] sets the
/// objects' `ino`.
///
/// Descriptors only: macOS shows no other process's mappings here, so `maps` is always false,
/// a POSIX object held only by a mapping is not seen, and System V attachments are not seen
/// (their count is the segment's `nattch`). Processes this user may not inspect (another
/// user's, unless root) are listed in `unreadable` with their command names; pid 0, the
/// kernel, holds nothing and is skipped. There are no memfds on macOS.
pub(crate) fn scan_holders() -> Result<HolderScan> {
    let (seen, refused) = pshm_pass()?;
    keep_pass(&seen);
    let mut scan = HolderScan::default();
    for s in seen {
        scan.held
            .entry(HeldKey::ShmFs(s.stat.ino))
            .or_default()
            .entry(s.pid)
            .or_default()
            .fds
            .push(s.fd);
        scan.comm.entry(s.pid).or_insert_with(|| comm(s.pid));
    }
    for h in scan.held.values_mut() {
        for holding in h.values_mut() {
            holding.fds.sort_unstable();
            holding.fds.dedup();
        }
    }
    scan.unreadable = refused.into_iter().map(|pid| (pid, comm(pid))).collect();
    Ok(scan)
}

/// No memfds on macOS.
pub(crate) fn is_memfd(_fd: BorrowedFd<'_>) -> bool {
    false
}

/// No memfds on macOS.
pub(crate) fn map_file(_pid: i32, _inode: u64) -> Option<String> {
    None
}

/// macOS cannot `stat` another process's descriptor.
pub(crate) fn fd_inode(_pid: i32, _fd: i32) -> Option<u64> {
    None
}

/// Another process's descriptor has no path on macOS: named for messages only.
pub(crate) fn fd_path(pid: i32, fd: i32) -> String {
    format!("fd {fd} of pid {pid}")
}

#[cfg(test)]
mod tests {
    //! These run on a Mac only (the module is built for macOS alone).

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    /// A System V key no other test run uses: this pid and a counter.
    fn unique_key() -> libc::key_t {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        (0x5300_0000 | ((std::process::id() & 0xffff) << 8) | (n & 0xff)) as libc::key_t
    }

    /// A POSIX name of at most 31 bytes with its `/`, unique to this process and call.
    fn unique_name() -> String {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("/shmkit-inv-{}-{n}", std::process::id());
        assert!(name.len() <= 31, "{name}");
        name
    }

    /// Removes a System V segment at the end of a test, whatever happens.
    struct Seg(i32);
    impl Drop for Seg {
        fn drop(&mut self) {
            // SAFETY: IPC_RMID reads no buffer.
            unsafe { libc::shmctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }

    #[test]
    fn sysv_shm_lists_a_new_segment_with_its_size_and_key() {
        let key = unique_key();
        // SAFETY: plain call.
        let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        let seg = Seg(id);
        let rows = sysv_shm().unwrap();
        let row = rows
            .iter()
            .find(|r| r.id == id)
            .expect("the new segment is listed");
        assert_eq!(row.perm.key, Some(key));
        assert_eq!(row.size, Some(4096));
        assert_eq!(row.perm.mode, 0o600);
        assert_eq!(row.perm.uid, Some(rustix::process::geteuid().as_raw()));
        assert_eq!(row.cpid, Some(std::process::id() as i32));
        assert_eq!(row.nattch, Some(0));
        drop(seg);
        assert!(!sysv_shm().unwrap().iter().any(|r| r.id == id), "removed");
    }

    #[test]
    fn an_attached_segment_marked_for_removal_is_listed_so() {
        let key = unique_key();
        // SAFETY: plain call.
        let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
        let seg = Seg(id);
        // SAFETY: attaches anywhere; detached below.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        assert_ne!(
            addr as isize,
            -1,
            "shmat: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: IPC_RMID reads no buffer.
        let removed = unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
        assert_eq!(removed, 0, "IPC_RMID: {}", std::io::Error::last_os_error());
        let row = sysv_shm().unwrap().into_iter().find(|r| r.id == id);
        // SAFETY: the address shmat returned, detached once.
        unsafe { libc::shmdt(addr) };
        let row = row.expect("still listed while attached");
        assert_eq!(row.nattch, Some(1));
        assert_ne!(row.perm.mode & SHM_DEST, 0, "marked for removal");
        assert_eq!(row.perm.mode & 0o777, 0o600);
        drop(seg);
        assert!(
            !sysv_shm().unwrap().iter().any(|r| r.id == id),
            "gone at the detach"
        );
    }

    #[test]
    fn sysv_sem_lists_a_new_set() {
        struct Set(i32);
        impl Drop for Set {
            fn drop(&mut self) {
                // SAFETY: IPC_RMID reads no further argument.
                unsafe { libc::semctl(self.0, 0, libc::IPC_RMID) };
            }
        }
        let key = unique_key();
        // SAFETY: plain call.
        let id = unsafe { libc::semget(key, 3, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        assert!(id >= 0, "semget: {}", std::io::Error::last_os_error());
        let _set = Set(id);
        let rows = sysv_sem().unwrap();
        let row = rows
            .iter()
            .find(|r| r.id == id)
            .expect("the new set is listed");
        assert_eq!(row.perm.key, Some(key));
        assert_eq!(row.nsems, 3);
        assert_eq!(row.perm.mode, 0o600);
    }

    #[test]
    fn sysv_msg_lists_a_new_queue() {
        extern "C" {
            fn msgget(key: libc::key_t, flags: libc::c_int) -> libc::c_int;
            fn msgctl(id: libc::c_int, cmd: libc::c_int, buf: *mut c_void) -> libc::c_int;
        }
        struct Queue(i32);
        impl Drop for Queue {
            fn drop(&mut self) {
                // SAFETY: IPC_RMID reads no buffer.
                unsafe { msgctl(self.0, libc::IPC_RMID, std::ptr::null_mut()) };
            }
        }
        let key = unique_key();
        // SAFETY: plain call.
        let id = unsafe { msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
        let _q = Queue(id);
        let rows = sysv_msg().unwrap();
        let row = rows
            .iter()
            .find(|r| r.id == id)
            .expect("the new queue is listed");
        assert_eq!(row.perm.key, Some(key));
        assert_eq!(row.qnum, Some(0));
        assert_eq!(row.cbytes, Some(0));
    }

    /// A POSIX object this test holds open; closed and unlinked at the end.
    struct Held {
        name: std::ffi::CString,
        fd: i32,
    }
    impl Held {
        fn create(name: &str, size: i64) -> Held {
            let c = std::ffi::CString::new(name).unwrap();
            // SAFETY: a C string; the mode is passed as the variadic unsigned int.
            let fd = unsafe {
                libc::shm_open(
                    c.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                    0o600 as libc::c_uint,
                )
            };
            assert!(fd >= 0, "shm_open: {}", std::io::Error::last_os_error());
            let held = Held { name: c, fd };
            // SAFETY: our descriptor.
            assert_eq!(unsafe { libc::ftruncate(fd, size) }, 0);
            held
        }
        fn close(&mut self) {
            if self.fd >= 0 {
                // SAFETY: our descriptor, closed once.
                unsafe { libc::close(self.fd) };
                self.fd = -1;
            }
        }
    }
    impl Drop for Held {
        fn drop(&mut self) {
            self.close();
            // SAFETY: a C string.
            unsafe { libc::shm_unlink(self.name.as_ptr()) };
        }
    }

    #[test]
    fn a_held_posix_object_is_listed_with_its_holder() {
        let name = unique_name();
        let held = Held::create(&name, 8192);
        let files = posix_files().unwrap();
        let f = files
            .iter()
            .find(|f| f.name == OsStr::new(&name))
            .expect("the held object is listed");
        assert_eq!(f.stat.size, 8192);
        assert_eq!(f.stat.mode, 0o600);
        assert_eq!(f.stat.uid, rustix::process::geteuid().as_raw());
        assert_eq!(f.stat.ino, name_key(name.as_bytes()));
        assert!(matches!(f.what, PosixWhat::Shm(None)));
        let scan = scan_holders().unwrap();
        let holders = scan
            .held
            .get(&HeldKey::ShmFs(name_key(name.as_bytes())))
            .expect("held");
        let me = holders
            .get(&(std::process::id() as i32))
            .expect("this process holds it");
        assert_eq!(me.fds, vec![held.fd]);
        assert!(!me.maps);
        assert!(scan.comm.contains_key(&(std::process::id() as i32)));
        assert!(!scan
            .unreadable
            .iter()
            .any(|(p, _)| *p == std::process::id() as i32));
    }

    #[test]
    fn a_posix_object_nobody_holds_cannot_be_listed() {
        let name = unique_name();
        let mut held = Held::create(&name, 4096);
        held.close(); // the name stays; no descriptor is left
        assert!(!posix_files()
            .unwrap()
            .iter()
            .any(|f| f.name == OsStr::new(&name)));
    }

    #[test]
    fn the_listing_after_a_holder_scan_uses_that_scan() {
        let scan = scan_holders().unwrap();
        let name = unique_name();
        let _held = Held::create(&name, 4096);
        let key = HeldKey::ShmFs(name_key(name.as_bytes()));
        assert!(!scan.held.contains_key(&key), "opened after the scan");
        // The scan's own pass: every object listed has a holder in that scan.
        let files = posix_files().unwrap();
        assert!(!files.iter().any(|f| f.name == OsStr::new(&name)));
        for f in &files {
            assert!(scan.held.contains_key(&HeldKey::ShmFs(f.stat.ino)));
        }
        // Taken once: the next listing is a new pass.
        assert!(posix_files()
            .unwrap()
            .iter()
            .any(|f| f.name == OsStr::new(&name)));
    }

    #[test]
    fn there_are_no_posix_queues() {
        assert!(posix_mq().unwrap().unwrap().is_empty());
        assert!(mqueue_dir().is_none());
    }

    #[test]
    fn ids_are_slot_and_sequence() {
        assert_eq!(ipc_id(3, 0), 3);
        assert_eq!(ipc_id(3, 2), (2 << 16) | 3);
        assert_eq!(ipc_id(0x1_0003, 1), (1 << 16) | 3);
        assert_eq!(ipc_id(1, 0xffff), ((0xffff_u32 << 16) | 1) as i32);
    }
}
