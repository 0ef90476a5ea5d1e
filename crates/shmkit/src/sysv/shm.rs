//! System V shared memory: `ftok`, `shmget`, `shmat`, `shmdt`, `shmctl` (`sysvipc(7)`).

use super::SysvKey;
use crate::error::{Error, ErrorKind, Result};
use crate::mapping::{Mapping, Unmap};
use crate::ownership::Ownership;
use crate::platform::{self, errno as last_errno};
use rustix::io::Errno;

/// `SHM_DEST` in `shm_perm.mode`: the segment is marked for removal (`IPC_RMID`) and will be
/// destroyed when its last process detaches.
const SHM_DEST: u32 = 0o1000;
/// `SHM_LOCKED` in `shm_perm.mode`: locked in memory with `SHM_LOCK`.
const SHM_LOCKED: u32 = 0o2000;

/// What `shmctl(IPC_STAT)` says of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysvStat {
    /// The segment's id.
    pub id: i32,
    /// Its key; 0 (`IPC_PRIVATE`) for private segments and for segments marked for removal.
    pub key: i32,
    /// `shm_segsz`: size in bytes.
    pub size: usize,
    /// Permission bits (`shm_perm.mode & 0o777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Creator's user.
    pub cuid: u32,
    /// Creator's group.
    pub cgid: u32,
    /// `shm_cpid`: the process that created it.
    pub creator_pid: i32,
    /// `shm_lpid`: the last process that attached or detached.
    pub last_pid: i32,
    /// `shm_nattch`: how many attachments exist now.
    pub nattch: u64,
    /// Last attach, seconds since the epoch (0: never).
    pub atime: i64,
    /// Last detach, seconds since the epoch (0: never).
    pub dtime: i64,
    /// Last change, seconds since the epoch.
    pub ctime: i64,
    /// Marked for removal (`IPC_RMID`): destroyed at the last detach.
    pub marked_for_removal: bool,
    /// Locked in memory (`SHM_LOCK`).
    pub locked: bool,
}

/// A System V shared-memory segment, attached.
///
/// The creator marks it for removal (`IPC_RMID`) when this value is dropped, unless asked to
/// keep it; the kernel then destroys it once every process has detached.
///
/// ```
/// use shmkit::{SysvKey, SysvShm};
/// let seg = SysvShm::create(SysvKey::Private, 8192)?;
/// seg.write_at(0, b"hi")?;
/// let st = seg.stat()?;
/// assert_eq!((st.size, st.mode, st.nattch), (8192, 0o600, 1));
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct SysvShm {
    map: Mapping,
    id: i32,
    key: SysvKey,
    own: Ownership,
}

/// How to create, open or attach a [`SysvShm`]. Defaults: mode 0600, read-write, removed by
/// its creator on drop, no huge pages.
#[derive(Debug, Clone, Default)]
pub struct SysvOptions {
    common: crate::options::Common,
    huge_pages: bool,
}

impl SysvOptions {
    crate::options::common_setters!("segment", "`SHM_RDONLY`");

    /// Back a created segment with huge pages (`SHM_HUGETLB`). Linux only: macOS's `shmget` has
    /// no huge-page flag.
    #[cfg(target_os = "linux")]
    #[doc(alias = "SHM_HUGETLB")]
    pub fn huge_pages(&mut self, yes: bool) -> &mut Self {
        self.huge_pages = yes;
        self
    }

    /// `shmget(IPC_CREAT | IPC_EXCL)` and `shmat`: creates a new segment and attaches it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for size 0 or a mode above 0777,
    /// [`ErrorKind::AlreadyExists`] if `key` names a segment, `EINVAL`/`ENOSPC`/`ENOMEM` past a
    /// limit (the hint says which); the errors of [`stat_id`] and `shmat` (then it is removed).
    #[doc(alias = "shmget")]
    pub fn create(&self, key: SysvKey, size: usize) -> Result<SysvShm> {
        let mode = self.common.mode;
        if mode > 0o777 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "shmget",
                key.to_string(),
                format!("mode {mode:o} is not a permission mode (0 to 0777)"),
            ));
        }
        if size == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "shmget",
                key.to_string(),
                "size must be at least 1 byte",
            ));
        }
        let mut flags = libc::IPC_CREAT | libc::IPC_EXCL | mode as libc::c_int;
        if let (true, Some(f)) = (self.huge_pages, platform::SHM_HUGE) {
            flags |= f;
        }
        // SAFETY: shmget takes plain integers.
        let id = unsafe { libc::shmget(key.raw(), size, flags) };
        if id < 0 {
            return Err(shmget_error(key, size, last_errno(), self.huge_pages));
        }
        // IPC_PRIVATE and IPC_CREAT|IPC_EXCL guarantee the segment is ours: remove it again if
        // attaching fails.
        match attach(id, key, self.common.read_only, 0) {
            Ok(map) => Ok(SysvShm {
                map,
                id,
                key,
                own: Ownership::created(self.common.keep),
            }),
            Err(e) => {
                let _ = remove_id(id);
                Err(e)
            }
        }
    }

    /// `shmget(key, 0, 0)` and `shmat`: opens the segment that has `key` and attaches all of it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for [`SysvKey::Private`], [`ErrorKind::NotFound`],
    /// [`ErrorKind::PermissionDenied`], [`ErrorKind::TooSmall`] below
    /// [`min_size`](Self::min_size), or the OS error of `shmat`.
    #[doc(alias = "shmget")]
    pub fn open(&self, key: SysvKey) -> Result<SysvShm> {
        if key == SysvKey::Private {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "shmget",
                key.to_string(),
                "IPC_PRIVATE names no existing segment; open it by id instead",
            ));
        }
        // SAFETY: shmget takes plain integers.
        let id = unsafe { libc::shmget(key.raw(), 0, 0) };
        if id < 0 {
            return Err(shmget_error(key, 0, last_errno(), false));
        }
        Ok(SysvShm {
            map: attach(id, key, self.common.read_only, self.common.min_size)?,
            id,
            key,
            own: Ownership::opened(),
        })
    }

    /// `shmat(2)`: attaches the segment with id `id`.
    ///
    /// # Errors
    /// As [`stat_id`]; [`ErrorKind::TooSmall`] below [`min_size`](Self::min_size); the OS error
    /// of `shmat`.
    #[doc(alias = "shmat")]
    pub fn open_id(&self, id: i32) -> Result<SysvShm> {
        let st = stat_id(id)?;
        let key = if st.key == 0 {
            SysvKey::Private
        } else {
            SysvKey::Key(st.key)
        };
        Ok(SysvShm {
            map: attach(id, key, self.common.read_only, self.common.min_size)?,
            id,
            key,
            own: Ownership::opened(),
        })
    }

    /// Creates the segment, or opens it if the key exists (then it must have `size` bytes or
    /// more). [`SysvShm::is_owner`] tells which happened.
    ///
    /// # Errors
    /// As [`create`](Self::create) and [`open`](Self::open) (an existing segment smaller than
    /// `size` is [`ErrorKind::TooSmall`]); [`ErrorKind::NotFound`] if, 8 times over, the segment
    /// was removed between the attempt to create it and the attempt to open it.
    pub fn create_or_open(&self, key: SysvKey, size: usize) -> Result<SysvShm> {
        let mut open = self.clone();
        open.common.min_size = open.common.min_size.max(size);
        let mut last = None;
        for _ in 0..8 {
            match self.create(key, size) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => match open.open(key) {
                    // Removed between the two calls: try again.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EIDRM)) => {
                        last = Some(e)
                    }
                    r => return r,
                },
                r => return r,
            }
        }
        Err(last.expect("the loop ran"))
    }
}

impl SysvShm {
    /// Options for creating or opening.
    pub fn options() -> SysvOptions {
        SysvOptions::default()
    }

    /// `shmget(IPC_CREAT | IPC_EXCL)` and `shmat`: creates a new segment of `size` bytes, mode
    /// 0600, and attaches it read-write.
    ///
    /// # Errors
    /// As [`SysvOptions::create`].
    #[doc(alias = "shmget")]
    pub fn create(key: SysvKey, size: usize) -> Result<SysvShm> {
        SysvOptions::default().create(key, size)
    }

    /// `shmget(key, 0, 0)` and `shmat`: opens the segment that has `key`, read-write.
    ///
    /// # Errors
    /// As [`SysvOptions::open`].
    #[doc(alias = "shmget")]
    pub fn open(key: SysvKey) -> Result<SysvShm> {
        SysvOptions::default().open(key)
    }

    /// `shmat(2)`: attaches the segment with id `id`, read-write.
    ///
    /// # Errors
    /// As [`SysvOptions::open_id`].
    #[doc(alias = "shmat")]
    pub fn open_id(id: i32) -> Result<SysvShm> {
        SysvOptions::default().open_id(id)
    }

    /// The segment's id (`shmid`).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was created or opened with.
    pub fn key(&self) -> SysvKey {
        self.key
    }

    /// `shmctl(IPC_STAT)`: the segment's size, mode, owners, attachments and times now.
    ///
    /// # Errors
    /// As [`stat_id`].
    #[doc(alias = "shmctl")]
    pub fn stat(&self) -> Result<SysvStat> {
        stat_id(self.id)
    }

    /// `shmctl(IPC_RMID)`: marks the segment for removal. It stays usable by every process that
    /// has it attached, this one included, and is destroyed at the last detach; meanwhile its key
    /// becomes `IPC_PRIVATE`, so no new process can open it by key.
    ///
    /// # Errors
    /// As [`remove_id`].
    #[doc(alias = "shmctl")]
    pub fn remove(&self) -> Result<()> {
        remove_id(self.id)?;
        self.own.removed();
        Ok(())
    }

    /// `shmdt(2)`: detaches now; the same as dropping the value, so a creator that was not
    /// asked to keep the segment also marks it for removal.
    #[doc(alias = "shmdt")]
    pub fn detach(self) {
        drop(self)
    }
}

crate::segment::segment!(SysvShm, map);

impl Drop for SysvShm {
    fn drop(&mut self) {
        if self.own.removes_on_drop() {
            let _ = remove_id(self.id);
        }
        // The Mapping field detaches afterwards; IPC_RMID defers destruction until then.
    }
}

/// `shmctl(IPC_STAT)` of the segment with id `id`, without attaching it.
///
/// # Errors
/// [`ErrorKind::NotFound`] if no segment has the id, [`ErrorKind::PermissionDenied`] (`EACCES`)
/// without read permission.
#[doc(alias = "shmctl")]
pub fn stat_id(id: i32) -> Result<SysvStat> {
    // SAFETY: shmid_ds is plain data; shmctl fills it.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } < 0 {
        let e = last_errno();
        let err = super::id_error("shmctl(IPC_STAT)", format!("shmid {id}"), e);
        return Err(
            match access_hint(|_, i| i == id).filter(|_| e == Errno::ACCESS) {
                Some(h) => err.with_hint(h),
                None => err,
            },
        );
    }
    let mode = ds.shm_perm.mode as u32;
    Ok(SysvStat {
        id,
        key: platform::perm_key(&ds.shm_perm),
        size: ds.shm_segsz,
        mode: mode & 0o777,
        uid: ds.shm_perm.uid,
        gid: ds.shm_perm.gid,
        cuid: ds.shm_perm.cuid,
        cgid: ds.shm_perm.cgid,
        creator_pid: ds.shm_cpid,
        last_pid: ds.shm_lpid,
        nattch: ds.shm_nattch as u64,
        atime: ds.shm_atime as i64,
        dtime: ds.shm_dtime as i64,
        ctime: ds.shm_ctime as i64,
        marked_for_removal: mode & SHM_DEST != 0,
        locked: mode & SHM_LOCKED != 0,
    })
}

/// `shmctl(IPC_RMID)`: marks the segment with id `id` for removal.
///
/// # Errors
/// [`ErrorKind::NotFound`] if no segment has the id, [`ErrorKind::PermissionDenied`] (`EPERM`)
/// unless this user is its owner, its creator or root.
#[doc(alias = "shmctl")]
pub fn remove_id(id: i32) -> Result<()> {
    // SAFETY: IPC_RMID takes no buffer.
    if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } < 0 {
        let e = last_errno();
        let err = super::id_error("shmctl(IPC_RMID)", format!("shmid {id}"), e);
        return Err(if e == Errno::PERM {
            err.with_hint("only the segment's owner, its creator or root may remove it")
        } else {
            err
        });
    }
    Ok(())
}

/// `shmget(key, 0, 0)`: the id of the segment that has `key` now, without attaching it.
///
/// # Errors
/// `ENOENT` ([`ErrorKind::NotFound`]) when no segment has the key.
#[doc(alias = "shmget")]
pub fn key_id(key: SysvKey) -> Result<i32> {
    id_of_key(key.raw()).map_err(|e| Error::os("shmget", key.to_string(), e))
}

pub(crate) fn id_of_key(key: i32) -> std::result::Result<i32, Errno> {
    // SAFETY: shmget takes plain integers.
    let id = unsafe { libc::shmget(key, 0, 0) };
    if id < 0 {
        return Err(last_errno());
    }
    Ok(id)
}

/// `shmat(2)` of the whole segment.
fn attach(id: i32, key: SysvKey, read_only: bool, min_size: usize) -> Result<Mapping> {
    let object = format!("shmid {id}");
    let st = stat_id(id)?;
    if st.size < min_size {
        return Err(Error::new(
            ErrorKind::TooSmall,
            "shmat",
            &object,
            format!(
                "the segment ({key}) has {} bytes, fewer than the {min_size} asked for",
                st.size
            ),
        ));
    }
    let flags = if read_only { libc::SHM_RDONLY } else { 0 };
    // SAFETY: the kernel picks the address; the attachment aliases nothing of ours.
    let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if p as isize == -1 {
        let e = last_errno();
        let err = Error::os("shmat", &object, e);
        return Err(
            match access_hint(|_, i| i == id).filter(|_| e == Errno::ACCESS) {
                Some(h) => err.with_hint(h),
                None => err,
            },
        );
    }
    // The kernel maps whole pages (whole huge pages for SHM_HUGETLB); shmdt needs only the
    // address, so the page-rounded length is what the registry needs.
    let page = platform::mapping_page_size(p as usize);
    // SAFETY: `p` is a fresh attachment of `st.size` bytes, undone by shmdt in the Mapping.
    unsafe {
        Mapping::from_raw(
            p.cast(),
            st.size,
            st.size.div_ceil(page) * page,
            page,
            !read_only,
            Unmap::Shmdt,
            None, // System V segments cannot be shrunk
            object,
        )
    }
}

/// An error from `shmget`, with the limit or the remedy that explains it.
fn shmget_error(key: SysvKey, size: usize, e: Errno, huge: bool) -> Error {
    shmget_error_with(key, size, e, huge, platform::sysv_shm_limits())
}

fn shmget_error_with(
    key: SysvKey,
    size: usize,
    e: Errno,
    huge: bool,
    limits: platform::SysvShmLimits,
) -> Error {
    let err = Error::os("shmget", key.to_string(), e);
    match e {
        Errno::EXIST => {
            // SAFETY: shmget takes plain integers.
            let id = unsafe { libc::shmget(key.raw(), 0, 0) };
            err.with_hint(format!(
                "a segment with this key exists (shmid {id}); open it instead, or remove it first (IPC_RMID)"
            ))
        }
        Errno::NOENT => err.with_hint("no segment has this key; create it first"),
        Errno::INVAL if size > 0 => match limits.shmmax {
            Some(max) if size as u64 > max => err.with_hint(format!(
                "segment size {} exceeds {} {}; {}",
                crate::size::human(size as u64),
                platform::sysv_sysctl("shmmax"),
                crate::size::human(max),
                crate::error::hint::raise_sysv("shmmax")
            )),
            _ => err.with_hint(
                "the size is below shmmin, or a segment with this key exists and is smaller",
            ),
        },
        Errno::NOSPC => err.with_hint(format!(
            "either every segment id is in use ({} = {}) or the total would exceed \
             {} ({} pages); remove unused segments (IPC_RMID) or {}",
            platform::sysv_sysctl("shmmni"),
            limits.shmmni.map_or("?".into(), |v| v.to_string()),
            platform::sysv_sysctl("shmall"),
            limits.shmall_pages.map_or("?".into(), |v| v.to_string()),
            crate::error::hint::raise_sysv("shmall")
        )),
        Errno::NOMEM if huge => err.with_hint(crate::error::hint::huge_pages()),
        Errno::NOMEM => err.with_hint(crate::error::hint::memory_commit(size as u64)),
        Errno::PERM if huge => err.with_hint(
            "SHM_HUGETLB needs CAP_IPC_LOCK or membership of the group in vm.hugetlb_shm_group",
        ),
        Errno::ACCESS => match access_hint(|key_col, _| key_col == key.raw()) {
            Some(h) => err.with_hint(h),
            None => err,
        },
        _ => err,
    }
}

/// "the segment is mode 0600 owned by uid 0; this process is uid 65534", from the OS's table
/// of segments, which shows every segment even to those who may not `IPC_STAT` it.
fn access_hint(matches: impl Fn(i32, i32) -> bool) -> Option<String> {
    let rows = platform::inventory::sysv_shm().ok()?;
    let row = rows
        .iter()
        .find(|r| r.perm.key.is_some_and(|k| matches(k, r.id)))?;
    Some(format!(
        "the segment is mode {:04o} owned by uid {}; this process is uid {}",
        row.perm.mode & 0o777,
        row.perm.uid?,
        rustix::process::geteuid().as_raw()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> platform::SysvShmLimits {
        platform::SysvShmLimits {
            shmmax: Some(4 << 20),
            shmall_pages: Some(1024),
            shmmni: Some(32),
        }
    }

    #[test]
    fn einval_above_shmmax_names_the_limit_and_the_remedy() {
        let e = shmget_error_with(SysvKey::Key(0x1234), 8 << 20, Errno::INVAL, false, limits());
        let s = e.to_string();
        assert!(
            s.starts_with("shmget key 0x00001234: Invalid argument"),
            "{s}"
        );
        assert!(
            s.contains("segment size 8 MiB exceeds kernel.shmmax 4 MiB"),
            "{s}"
        );
        assert!(s.contains("sysctl -w kernel.shmmax="), "{s}");
    }

    #[test]
    fn enospc_names_shmmni_and_shmall() {
        let e = shmget_error_with(SysvKey::Private, 4096, Errno::NOSPC, false, limits());
        let s = e.to_string();
        assert!(
            s.contains("kernel.shmmni = 32") && s.contains("kernel.shmall (1024 pages)"),
            "{s}"
        );
    }

    #[test]
    fn ftok_refuses_project_zero_and_missing_files() {
        assert_eq!(
            SysvKey::ftok("/", 0).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        let e = SysvKey::ftok("/nonexistent/shmkit", 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}

crate::ownership::owned!(SysvShm, own, "segment");
