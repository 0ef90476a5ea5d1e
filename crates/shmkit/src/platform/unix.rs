//! Calls that every supported OS (Linux, macOS) has in the same form: POSIX and XSI.

use rustix::io::Errno;

/// The calling thread's `errno`, as the libc function that just failed left it.
pub(crate) fn errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// The `CLOCK_REALTIME` time `after` from now, as the absolute timeouts of `sem_timedwait`,
/// `mq_timedreceive` and `FUTEX_LOCK_PI` want it.
///
/// `None` when the time cannot be expressed (`Duration::MAX`, or past what `time_t` holds):
/// such a timeout means "wait forever", the same on every primitive and OS object.
#[cfg(target_os = "linux")]
pub(crate) fn realtime_after(after: std::time::Duration) -> Option<libc::timespec> {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .checked_add(after)?;
    Some(libc::timespec {
        tv_sec: libc::time_t::try_from(at.as_secs()).ok()?,
        tv_nsec: at.subsec_nanos() as libc::c_long,
    })
}

/// The size of a page (`sysconf(_SC_PAGESIZE)`).
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// Whether a process exists (`kill(pid, 0)`: `EPERM` means it exists but is not ours).
pub(crate) fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        // 0 and negatives name process groups or everyone in kill(2), never one process.
        return false;
    }
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => !matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

/// Which pages of `len` bytes from `addr` (page-aligned, mapped by this process) are in
/// memory (`mincore(2)`): for a shared mapping, whether the object has the page at all, mapped
/// here or not; a swapped-out page counts as absent. `None` if mincore fails.
pub(crate) fn pages_present(addr: usize, len: usize) -> Option<Vec<bool>> {
    let page = page_size();
    let pages = len.div_ceil(page);
    let mut vec = vec![0u8; pages];
    // SAFETY: `addr` is page-aligned and the range is mapped by the caller; mincore writes one
    // byte per page into `vec`, which has that many.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, len, vec.as_mut_ptr().cast()) };
    (r == 0).then(|| vec.iter().map(|b| b & 1 != 0).collect())
}

/// A file mode as shmkit keeps it (`u32`) from the OS's `mode_t` (`u16` on macOS).
#[allow(clippy::unnecessary_cast)]
pub(crate) fn mode_from_raw(m: rustix::fs::RawMode) -> u32 {
    m as u32
}

/// A permission mode (at most `0o7777`, checked by the caller) as the OS's `mode_t`.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn mode_to_raw(m: u32) -> rustix::fs::RawMode {
    (m & 0o7777) as rustix::fs::RawMode
}

/// `getpwuid_r(3)`: the name of user `uid` through NSS.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: plain data, filled by getpwuid_r.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `buf` outlives the use of `pw`.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if r != 0 || out.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated.
    Some(
        unsafe { std::ffi::CStr::from_ptr(pw.pw_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// `getgrgid_r(3)`: the name of group `gid` through NSS.
pub(crate) fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: plain data, filled by getgrgid_r.
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call; `buf` outlives the use of `gr`.
    let r = unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    if r != 0 || out.is_null() {
        return None;
    }
    // SAFETY: gr_name points into `buf`, NUL-terminated.
    Some(
        unsafe { std::ffi::CStr::from_ptr(gr.gr_name) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// `getpwnam_r(3)`: the uid of the user called `name`.
pub(crate) fn uid_by_name(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: plain data, filled by getpwnam_r.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: all pointers are valid for the call.
    let r = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    (r == 0 && !out.is_null()).then_some(pw.pw_uid)
}
