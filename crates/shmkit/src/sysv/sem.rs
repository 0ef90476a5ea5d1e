//! System V semaphore sets: `semget`, `semop` (with `SEM_UNDO`), `semtimedop`, `semctl`
//! (`GETVAL`, `SETVAL`, `GETALL`, `GETNCNT`, `GETZCNT`, `GETPID`, `IPC_STAT`, `IPC_RMID`);
//! see `sysvipc(7)`.

use super::SysvKey;
use crate::error::{Error, ErrorKind, Result};
use crate::ownership::Ownership;
use crate::platform::{self, errno as last_errno};
use rustix::io::Errno;
use std::time::Duration;

/// One operation of [`SemSet::op`]: add `delta` to semaphore `num` (negative: wait until it
/// can be subtracted; zero: wait until the value is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemOp {
    /// Which semaphore of the set.
    pub num: u16,
    /// What to add.
    pub delta: i16,
    /// `SEM_UNDO`: the kernel reverts this operation if the process exits (crash included).
    pub undo: bool,
    /// `IPC_NOWAIT`: fail instead of waiting.
    pub nowait: bool,
}

impl SemOp {
    /// Take one from `num`, waiting if it is 0.
    pub fn wait(num: u16) -> Self {
        SemOp {
            num,
            delta: -1,
            undo: false,
            nowait: false,
        }
    }

    /// Add one to `num`.
    pub fn post(num: u16) -> Self {
        SemOp {
            num,
            delta: 1,
            undo: false,
            nowait: false,
        }
    }

    /// With `SEM_UNDO`.
    pub fn undo(mut self) -> Self {
        self.undo = true;
        self
    }

    /// With `IPC_NOWAIT`.
    pub fn nowait(mut self) -> Self {
        self.nowait = true;
        self
    }

    fn raw(self) -> libc::sembuf {
        libc::sembuf {
            sem_num: self.num,
            sem_op: self.delta,
            sem_flg: ((if self.undo { libc::SEM_UNDO } else { 0 })
                | (if self.nowait { libc::IPC_NOWAIT } else { 0 })) as i16,
        }
    }
}

/// What `semctl(IPC_STAT)` says of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemStat {
    /// Its key (0: `IPC_PRIVATE`).
    pub key: i32,
    /// How many semaphores.
    pub nsems: usize,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last `semop`, seconds since the epoch (0: never).
    pub otime: i64,
    /// Last change, seconds since the epoch.
    pub ctime: i64,
}

/// A System V semaphore set. Its creator removes it (`IPC_RMID`) when dropped, unless asked to
/// keep it; unlike shared memory, removal is immediate and wakes every waiter with `EIDRM`.
///
/// ```
/// use shmkit::SysvKey;
/// use shmkit::sysv::sem::{SemOp, SemSet};
/// let set = SemSet::create(SysvKey::Private, 2)?;
/// set.set(0, 1)?;
/// assert!(set.op(&[SemOp::wait(0).undo()])?);
/// assert_eq!(set.get_all()?, vec![0, 0]);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct SemSet {
    id: i32,
    nsems: usize,
    owner: Ownership,
}

/// How to create or open a [`SemSet`]. Defaults: mode 0600, removed on drop by its creator.
///
/// ```
/// use shmkit::{sysv::sem::SemSet, SysvKey};
/// let set = SemSet::options().mode(0o640).create(SysvKey::Private, 1)?;
/// assert_eq!(set.stat()?.mode, 0o640);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct SemSetOptions {
    common: crate::options::Ipc,
}

impl SemSetOptions {
    crate::options::ipc_setters!("set");

    /// `semget(IPC_CREAT | IPC_EXCL)`: creates a set of `nsems` semaphores (all 0) under `key`.
    ///
    /// # Errors
    /// `EEXIST` when `key` names a set already (the hint gives its id), `EINVAL` above SEMMSL,
    /// `ENOSPC` when SEMMNI or SEMMNS is reached (the hints quote the limits).
    #[doc(alias = "semget")]
    pub fn create(&self, key: SysvKey, nsems: usize) -> Result<SemSet> {
        let mode = self.common.mode;
        if nsems == 0 || nsems > i32::MAX as usize {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "semget",
                key.to_string(),
                "a set needs at least one semaphore",
            ));
        }
        // SAFETY: plain integers.
        let id = unsafe {
            libc::semget(
                key.raw(),
                nsems as i32,
                libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as i32,
            )
        };
        if id < 0 {
            return Err(semget_error(key, last_errno()));
        }
        Ok(SemSet {
            id,
            nsems,
            owner: Ownership::created(self.common.keep),
        })
    }

    /// `semget(key, 0, 0)`: opens the set under `key`.
    ///
    /// # Errors
    /// `ENOENT` when no set has the key, `EACCES` without permission.
    #[doc(alias = "semget")]
    pub fn open(&self, key: SysvKey) -> Result<SemSet> {
        // SAFETY: plain integers.
        let id = unsafe { libc::semget(key.raw(), 0, 0) };
        if id < 0 {
            return Err(semget_error(key, last_errno()));
        }
        self.open_id(id)
    }

    /// Opens the set with this id (as `ipcs -s` shows it).
    ///
    /// # Errors
    /// `EINVAL` when no set has the id, `EACCES` without read permission.
    pub fn open_id(&self, id: i32) -> Result<SemSet> {
        let st = stat_id(id)?;
        Ok(SemSet {
            id,
            nsems: st.nsems,
            owner: Ownership::opened(),
        })
    }
}

impl SemSet {
    /// How to create or open a set, beyond the defaults.
    pub fn options() -> SemSetOptions {
        SemSetOptions::default()
    }

    /// `semget`: creates a set of `nsems` semaphores (all 0) under `key`, exclusively, mode
    /// 0600. See [`SemSetOptions::create`].
    ///
    /// # Errors
    /// As [`SemSetOptions::create`].
    #[doc(alias = "semget")]
    pub fn create(key: SysvKey, nsems: usize) -> Result<Self> {
        Self::options().create(key, nsems)
    }

    /// How many semaphores it has.
    pub fn len(&self) -> usize {
        self.nsems
    }

    /// Never: a set has at least one semaphore.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `semop`: applies all `ops` atomically, waiting as needed (restarted after signals).
    /// `Ok(false)` if an `IPC_NOWAIT` operation would have waited.
    ///
    /// # Errors
    /// The OS error of `semop`: `EIDRM` ([`ErrorKind::NotFound`]) if the set is removed, `EFBIG`
    /// for a semaphore number past the set, `ERANGE` above `SEMVMX`, `EACCES` without permission.
    #[doc(alias = "semop")]
    pub fn op(&self, ops: &[SemOp]) -> Result<bool> {
        self.op_inner(ops, None)
    }

    /// `semtimedop`: as [`op`](Self::op), waiting at most `timeout`; `Ok(false)` on timeout.
    /// Linux only (macOS has no `semtimedop`).
    ///
    /// # Errors
    /// As [`op`](Self::op).
    #[cfg(target_os = "linux")]
    #[doc(alias = "semtimedop")]
    pub fn op_timeout(&self, ops: &[SemOp], timeout: Duration) -> Result<bool> {
        self.op_inner(ops, Some(timeout))
    }

    fn op_inner(&self, ops: &[SemOp], timeout: Option<Duration>) -> Result<bool> {
        let mut raw: Vec<libc::sembuf> = ops.iter().map(|o| o.raw()).collect();
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        super::restarting(|| match deadline {
            None => {
                // SAFETY: `raw` is a valid array of `raw.len()` sembufs.
                unsafe { libc::semop(self.id, raw.as_mut_ptr(), raw.len()) }
            }
            #[cfg(target_os = "linux")]
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                let ts = libc::timespec {
                    tv_sec: libc::time_t::try_from(left.as_secs()).unwrap_or(libc::time_t::MAX),
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                };
                // SAFETY: a valid array of `raw.len()` sembufs.
                unsafe { platform::semtimedop(self.id, raw.as_mut_ptr(), raw.len(), &ts) }
            }
            #[cfg(not(target_os = "linux"))]
            Some(_) => unreachable!("only op_timeout passes a timeout, and it is Linux only"),
        })
        .map_err(|e| {
            let err = Error::os("semop", format!("semid {}", self.id), e);
            match e {
                Errno::FBIG => err.with_hint(format!(
                    "the set has {} semaphores (0..{})",
                    self.nsems,
                    self.nsems.saturating_sub(1)
                )),
                Errno::IDRM => err.with_hint("the set was removed while we waited"),
                Errno::RANGE => err.with_hint("the value would exceed SEMVMX (32767)"),
                _ => err,
            }
        })
    }

    fn ctl(&self, num: u16, cmd: i32, what: &'static str) -> Result<i32> {
        // SAFETY: commands that take no fourth argument.
        let r = unsafe { libc::semctl(self.id, i32::from(num), cmd) };
        if r < 0 {
            return Err(self.ctl_error(what, num, last_errno()));
        }
        Ok(r)
    }

    /// `semctl` says `EINVAL` both for a number past the set and for a set that no longer
    /// exists: with a number inside the set, the set is gone.
    fn ctl_error(&self, what: &'static str, num: u16, e: Errno) -> Error {
        let object = format!("semid {}", self.id);
        if usize::from(num) < self.nsems {
            super::id_error(what, object, e)
        } else {
            Error::os(what, object, e).with_hint(format!(
                "the set has {} semaphores (0..{})",
                self.nsems,
                self.nsems.saturating_sub(1)
            ))
        }
    }

    /// `semctl(GETVAL)`: the value of semaphore `num`.
    ///
    /// # Errors
    /// The OS error of `semctl`: `EINVAL` for a `num` past the set (or a set removed meanwhile),
    /// `EACCES` ([`ErrorKind::PermissionDenied`]) without read permission.
    #[doc(alias = "semctl")]
    pub fn get(&self, num: u16) -> Result<u16> {
        self.ctl(num, libc::GETVAL, "semctl(GETVAL)")
            .map(|v| v as u16)
    }

    /// `semctl(SETVAL)`: sets semaphore `num` (clears every process's undo record for it).
    ///
    /// # Errors
    /// The OS error of `semctl`: `EINVAL` for a `num` past the set, `EACCES`
    /// ([`ErrorKind::PermissionDenied`]) without write permission, `ERANGE` above `SEMVMX`.
    #[doc(alias = "semctl")]
    pub fn set(&self, num: u16, value: u16) -> Result<()> {
        // SAFETY: SETVAL reads an int as the fourth (union semun) argument.
        let r = unsafe { libc::semctl(self.id, i32::from(num), libc::SETVAL, i32::from(value)) };
        if r < 0 {
            return Err(self.ctl_error("semctl(SETVAL)", num, last_errno()));
        }
        Ok(())
    }

    /// `semctl(GETALL)`: every value.
    ///
    /// # Errors
    /// As [`stat_id`] (it is read before and after), the OS error of `semctl(GETALL)`, and
    /// `EAGAIN` if the set kept changing over 10 reads.
    #[doc(alias = "semctl")]
    pub fn get_all(&self) -> Result<Vec<u16>> {
        get_all_id(self.id)
    }

    /// `semctl(GETNCNT)`: processes waiting for semaphore `num` to grow.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[doc(alias = "semctl")]
    pub fn ncnt(&self, num: u16) -> Result<u32> {
        self.ctl(num, libc::GETNCNT, "semctl(GETNCNT)")
            .map(|v| v as u32)
    }

    /// `semctl(GETZCNT)`: processes waiting for semaphore `num` to reach 0.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[doc(alias = "semctl")]
    pub fn zcnt(&self, num: u16) -> Result<u32> {
        self.ctl(num, libc::GETZCNT, "semctl(GETZCNT)")
            .map(|v| v as u32)
    }

    /// `semctl(GETPID)`: the last process that operated on semaphore `num`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[doc(alias = "semctl")]
    pub fn pid(&self, num: u16) -> Result<i32> {
        self.ctl(num, libc::GETPID, "semctl(GETPID)")
    }
}

super::sysv_object!(
    SemSet,
    "set",
    "ipcs -s",
    SemSetOptions,
    SemStat,
    "removes it now; waiters fail with `EIDRM`.",
    "semget",
    "semctl"
);

fn semget_error(key: SysvKey, e: Errno) -> Error {
    let err = Error::os("semget", key.to_string(), e);
    match e {
        Errno::EXIST => {
            // SAFETY: plain integers.
            let id = unsafe { libc::semget(key.raw(), 0, 0) };
            err.with_hint(format!(
                "a set with this key exists (semid {id}); open it instead, or remove it first \
                 (IPC_RMID)"
            ))
        }
        Errno::NOENT => err.with_hint("no set has this key; create it first"),
        Errno::INVAL => err.with_hint(semmsl_hint()),
        Errno::NOSPC => err.with_hint(semmni_hint()),
        _ => err,
    }
}

/// Where SEMMSL is. Linux keeps the four semaphore limits in one sysctl, `kernel.sem`, SEMMSL
/// first; other systems have one sysctl per limit.
fn semmsl_hint() -> String {
    let sysctl = platform::sysv_sysctl("semmsl");
    match platform::sysctl_path(&sysctl) {
        Some(path) if sysctl == platform::sysv_sysctl("semmni") => format!(
            "more semaphores than {sysctl}'s SEMMSL (first field of {path}), or an existing set \
             under this key has fewer"
        ),
        _ => format!(
            "more semaphores than {sysctl} ({}), or an existing set under this key has fewer",
            show(platform::sysv_sem_limits().semmsl)
        ),
    }
}

fn semmni_hint() -> String {
    let (sets, sems) = (
        platform::sysv_sysctl("semmni"),
        platform::sysv_sysctl("semmns"),
    );
    if sets == sems {
        format!(
            "{sets}'s SEMMNI (sets) or SEMMNS (semaphores) is reached; remove unused sets \
             (IPC_RMID) or raise them with sysctl -w {sets}=..."
        )
    } else {
        format!(
            "{sets} (sets) or {sems} (semaphores) is reached; remove unused sets (IPC_RMID) or \
             raise them with sysctl -w {sets}=... or {sems}=..."
        )
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

/// `semctl(IPC_STAT)` of the set `id`.
///
/// # Errors
/// [`ErrorKind::NotFound`] if no set has the id, [`ErrorKind::PermissionDenied`] (`EACCES`)
/// without read permission.
#[doc(alias = "semctl")]
pub fn stat_id(id: i32) -> Result<SemStat> {
    // SAFETY: semid_ds is plain data; zero is a valid bit pattern.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes a semid_ds through the fourth argument.
    let r = unsafe { libc::semctl(id, 0, libc::IPC_STAT, &mut ds as *mut libc::semid_ds) };
    if r < 0 {
        return Err(super::id_error(
            "semctl(IPC_STAT)",
            format!("semid {id}"),
            last_errno(),
        ));
    }
    Ok(SemStat {
        key: platform::perm_key(&ds.sem_perm),
        nsems: ds.sem_nsems as usize,
        mode: u32::from(ds.sem_perm.mode) & 0o777,
        uid: ds.sem_perm.uid,
        gid: ds.sem_perm.gid,
        otime: ds.sem_otime as i64,
        ctime: ds.sem_ctime as i64,
    })
}

/// `GETALL` of the set `id`.
///
/// The kernel writes as many values as the set has *when it runs*, with no length: a size
/// read earlier is not enough, since the set can be removed and its id reused by a larger set
/// in between. The buffer is sized from an `IPC_STAT` made just before and never smaller than
/// the largest set the kernel allows now (`SEMMSL`, the first field of `kernel.sem`); a second
/// `IPC_STAT` afterwards checks that the id still names the same set (same size, same change
/// time), else the values belong to another set and the call is retried.
pub(crate) fn get_all_id(id: i32) -> Result<Vec<u16>> {
    let semmsl = platform::sysv_sem_limits()
        .semmsl
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(32_000);
    for _ in 0..10 {
        let before = stat_id(id)?;
        let mut v = vec![0u16; before.nsems.max(semmsl).max(1)];
        // SAFETY: GETALL writes the set's values (at most SEMMSL of them when the set was
        // made, and not fewer than this one had a moment ago) as unsigned shorts through the
        // fourth argument, which has room for the larger of the two.
        let r = unsafe { libc::semctl(id, 0, libc::GETALL, v.as_mut_ptr()) };
        if r < 0 {
            return Err(super::id_error(
                "semctl(GETALL)",
                format!("semid {id}"),
                last_errno(),
            ));
        }
        let after = stat_id(id)?;
        if (after.nsems, after.ctime, after.key) == (before.nsems, before.ctime, before.key) {
            v.truncate(after.nsems);
            return Ok(v);
        }
    }
    Err(
        Error::os("semctl(GETALL)", format!("semid {id}"), Errno::AGAIN)
            .with_hint("the set kept changing while it was read; try again"),
    )
}

/// Processes waiting on the first `nsems` semaphores of set `id` (`GETNCNT` plus `GETZCNT`);
/// a semaphore whose counts cannot be read counts 0.
pub(crate) fn waiters_id(id: i32, nsems: usize) -> u64 {
    (0..nsems.min(i32::MAX as usize) as i32)
        .map(|i| {
            // SAFETY: GETNCNT/GETZCNT take no argument beyond the index.
            let n = unsafe { libc::semctl(id, i, libc::GETNCNT) };
            // SAFETY: as above.
            let z = unsafe { libc::semctl(id, i, libc::GETZCNT) };
            n.max(0) as u64 + z.max(0) as u64
        })
        .sum()
}

crate::ownership::owned!(SemSet, owner, "set");

/// `semctl(IPC_RMID)`: removes the set with id `id` now; its waiters fail with `EIDRM`.
///
/// # Errors
/// `EINVAL` when no set has the id, `EPERM` when this user is not its owner, creator or root.
#[doc(alias = "semctl")]
pub fn remove_id(id: i32) -> Result<()> {
    rmid(id).map_err(|e| super::id_error("semctl(IPC_RMID)", format!("semid {id}"), e))
}

pub(crate) fn rmid(id: i32) -> std::result::Result<(), Errno> {
    // SAFETY: IPC_RMID takes no argument beyond the id.
    if unsafe { libc::semctl(id, 0, libc::IPC_RMID) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}
