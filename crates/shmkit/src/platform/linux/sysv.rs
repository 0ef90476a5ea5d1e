//! What glibc's System V structures and calls look like on Linux (`sysvipc(7)`).

/// The key in an `ipc_perm` (glibc calls the field `__key`).
pub(crate) fn perm_key(perm: &libc::ipc_perm) -> i32 {
    perm.__key
}

/// The bytes queued in a message queue (`__msg_cbytes`, a Linux extension of `msqid_ds`).
pub(crate) fn msg_cbytes(ds: &libc::msqid_ds) -> u64 {
    ds.__msg_cbytes
}

/// `semtimedop(2)`: `semop` with a relative timeout. The raw system call: glibc before 2.3.3
/// and musl have no wrapper.
///
/// # Safety
/// `ops` points to `n` valid `sembuf`s.
pub(crate) unsafe fn semtimedop(
    id: i32,
    ops: *mut libc::sembuf,
    n: usize,
    timeout: &libc::timespec,
) -> i32 {
    // SAFETY: the caller's array, and a timespec that outlives the call.
    unsafe {
        libc::syscall(
            libc::SYS_semtimedop,
            id,
            ops,
            n,
            timeout as *const libc::timespec,
        ) as i32
    }
}
