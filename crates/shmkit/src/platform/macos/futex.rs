//! Waiting on a 32-bit word in memory shared between processes, on macOS: the same contract
//! as the Linux futex module (`wait`, `wake`, [`Woken`], `SLICE` (`platform::slice`)), without the PI calls.
//!
//! # Which call waits
//!
//! Resolved once per process, at the first wait or wake:
//! - `os_sync_wait_on_address_with_timeout` and `os_sync_wake_by_address_any` / `_all` with
//!   `OS_SYNC_WAIT_ON_ADDRESS_SHARED` / `OS_SYNC_WAKE_BY_ADDRESS_SHARED`: the public API,
//!   macOS 14.4 and later. They are looked up with `dlsym(RTLD_DEFAULT, ...)`, not linked:
//!   a binary that links them does not start on an older macOS (dyld refuses the missing
//!   symbols at load time).
//! - Otherwise, or when the environment variable `SHMKIT_FORCE_ULOCK` is `1` (read at that
//!   first use, so a test can run both paths), `__ulock_wait` / `__ulock_wake` with
//!   `UL_COMPARE_AND_WAIT_SHARED`: **private API** of libSystem (declared by hand below from
//!   xnu's `bsd/sys/ulock.h`; exported since macOS 10.12, the `_SHARED` operation used by
//!   libdispatch and libc++ since 10.15). It is what the public calls are built on, but Apple
//!   may change it.
//!
//! Both key the wait queue on the memory object and offset behind the address (the
//! `SHARED` variants), so a waiter in one process is woken by a store-and-wake in another.
//!
//! Every sleep is sliced at `SLICE` (`platform::slice`), as on Linux; so only the timed wait call is used
//! (`os_sync_wait_on_address`, the untimed one, is never needed) and any `Duration`, up to
//! `Duration::MAX`, works: the kernel only ever sees at most half a second.

use crate::platform::errno;
use rustix::io::Errno;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, Ordering};
use std::time::Instant;

use super::super::slice::next_sleep;
pub(crate) use super::super::slice::Woken;

// xnu, bsd/sys/ulock.h (private): the operation in bits 0-7, wake flags in 8-15, generic
// flags in 24-31.
/// Compare a 32-bit word and wait, keyed on the shared memory object (not the address space).
const UL_COMPARE_AND_WAIT_SHARED: u32 = 3;
/// `__ulock_wake`: wake every waiter, not one.
const ULF_WAKE_ALL: u32 = 0x0000_0100;
/// Return `-errno` instead of `-1` and setting `errno`.
const ULF_NO_ERRNO: u32 = 0x0100_0000;

// SAFETY: the signatures are those of xnu's bsd/sys/ulock.h (`int __ulock_wait(uint32_t
// operation, void *addr, uint64_t value, uint32_t timeout)`, timeout in microseconds, 0 =
// forever; `int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value)`), exported
// by libSystem, which every macOS binary links.
unsafe extern "C" {
    fn __ulock_wait(operation: u32, addr: *mut c_void, value: u64, timeout_us: u32) -> c_int;
    fn __ulock_wake(operation: u32, addr: *mut c_void, wake_value: u64) -> c_int;
}

/// `os_sync_wait_on_address_with_timeout` (libc's declaration, src/unix/bsd/apple).
type WaitFn = unsafe extern "C" fn(
    addr: *mut c_void,
    value: u64,
    size: libc::size_t,
    flags: libc::os_sync_wait_on_address_flags_t,
    clockid: libc::os_clockid_t,
    timeout_ns: u64,
) -> c_int;

/// `os_sync_wake_by_address_any` and `os_sync_wake_by_address_all`.
type WakeFn = unsafe extern "C" fn(
    addr: *mut c_void,
    size: libc::size_t,
    flags: libc::os_sync_wake_by_address_flags_t,
) -> c_int;

/// Not looked at yet.
const UNRESOLVED: u8 = 0;
/// The `os_sync_*` functions, whose addresses are in [`FNS`].
const OS_SYNC: u8 = 1;
/// `__ulock_*`.
const ULOCK: u8 = 2;

/// Which path this process uses, once resolved.
static PATH: AtomicU8 = AtomicU8::new(UNRESOLVED);
/// `os_sync_wait_on_address_with_timeout`, `os_sync_wake_by_address_any`, `_all`.
static FNS: [AtomicPtr<c_void>; 3] = [
    AtomicPtr::new(std::ptr::null_mut()),
    AtomicPtr::new(std::ptr::null_mut()),
    AtomicPtr::new(std::ptr::null_mut()),
];

/// The resolved path (`OS_SYNC` or `ULOCK`). Plain atomics rather than a `OnceLock`: two
/// threads that resolve at once compute the same answer and store it twice, which is harmless,
/// and a `fork` in the middle of it cannot leave the child blocked on a half-run `Once`.
fn path() -> u8 {
    match PATH.load(Ordering::Acquire) {
        UNRESOLVED => resolve(),
        p => p,
    }
}

#[cold]
fn resolve() -> u8 {
    let forced = std::env::var_os("SHMKIT_FORCE_ULOCK").is_some_and(|v| v == "1");
    let found = if forced {
        None
    } else {
        let names: [&std::ffi::CStr; 3] = [
            c"os_sync_wait_on_address_with_timeout",
            c"os_sync_wake_by_address_any",
            c"os_sync_wake_by_address_all",
        ];
        // SAFETY: `dlsym` with the `RTLD_DEFAULT` pseudo-handle and NUL-terminated names only
        // looks symbols up; a null result means the running macOS lacks the function.
        let ptrs = names.map(|n| unsafe { libc::dlsym(libc::RTLD_DEFAULT, n.as_ptr()) });
        ptrs.iter().all(|p| !p.is_null()).then_some(ptrs)
    };
    let p = match found {
        Some(ptrs) => {
            for (slot, ptr) in FNS.iter().zip(ptrs) {
                slot.store(ptr, Ordering::Relaxed);
            }
            OS_SYNC
        }
        None => ULOCK,
    };
    // Release: a thread that reads OS_SYNC sees the pointers stored above.
    PATH.store(p, Ordering::Release);
    p
}

/// The call this process waits with: `"os_sync_wait_on_address"` or `"__ulock_wait"`.
pub(crate) fn backend() -> &'static str {
    match path() {
        OS_SYNC => "os_sync_wait_on_address",
        _ => "__ulock_wait",
    }
}

/// The `os_sync` function in slot `i` of [`FNS`], as a function pointer of type `F`.
///
/// # Safety
/// [`path`] returned `OS_SYNC` (so the slot holds the address `dlsym` found), and `F` is that
/// function's type.
unsafe fn os_sync_fn<F: Copy>(i: usize) -> F {
    let p = FNS[i].load(Ordering::Relaxed);
    debug_assert!(!p.is_null());
    // SAFETY: the caller promises that `p` is the non-null address of a function of type `F`
    // (a function pointer, the size of a data pointer on every Apple target).
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
}

/// Sleeps while `*word == expected`, until woken or `deadline` (at most `SLICE` (`platform::slice`) at a time).
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Woken {
    let Some(sleep) = next_sleep(deadline) else {
        return Woken::TimedOut;
    };
    let addr = word.as_ptr().cast::<c_void>();
    let r = if path() == OS_SYNC {
        // At least 1 ns (0 is refused), at most SLICE.
        let ns = u64::try_from(sleep.as_nanos()).unwrap_or(u64::MAX).max(1);
        // SAFETY: `path()` is OS_SYNC, and slot 0 holds os_sync_wait_on_address_with_timeout.
        let f: WaitFn = unsafe { os_sync_fn(0) };
        // SAFETY: `addr` is a live, 4-byte aligned `AtomicU32` (borrowed for the call) of the
        // size we pass; the kernel only reads it. The timeout is relative, in nanoseconds of
        // the clock the API requires (OS_CLOCK_MACH_ABSOLUTE_TIME).
        let r = unsafe {
            f(
                addr,
                u64::from(expected),
                4,
                libc::OS_SYNC_WAIT_ON_ADDRESS_SHARED,
                libc::OS_CLOCK_MACH_ABSOLUTE_TIME,
                ns,
            )
        };
        if r >= 0 {
            Ok(())
        } else {
            Err(errno())
        }
    } else {
        // Rounded up (a sub-microsecond rest must not become 0, which means forever), at most
        // SLICE = 500 000 µs, which u32 holds.
        let us = u32::try_from(sleep.as_nanos().div_ceil(1000))
            .unwrap_or(u32::MAX)
            .max(1);
        // SAFETY: `addr` is a live, 4-byte aligned `AtomicU32` borrowed for the call; the
        // kernel only reads it (the value compared is its 32 bits).
        let r = unsafe {
            __ulock_wait(
                UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO,
                addr,
                u64::from(expected),
                us,
            )
        };
        if r >= 0 {
            Ok(())
        } else {
            Err(Errno::from_raw_os_error(-r))
        }
    };
    match r {
        Err(Errno::TIMEDOUT) if deadline.is_some_and(|d| Instant::now() >= d) => Woken::TimedOut,
        // The word changed before we slept (returns at once, Ok); EINTR: a signal; ETIMEDOUT
        // before the deadline: a slice ended; EFAULT: the page is gone (the caller's next
        // access notices). All mean look again.
        _ => Woken::Recheck,
    }
}

/// Wakes one waiter (`n == 1`) or every waiter (`n > 1`: neither call can wake a number in
/// between, and waking more than asked is a spurious wake-up, which every caller rechecks);
/// returns 1 if any waiter was woken, 0 if none was (the calls do not count them).
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    if n == 0 {
        return 0;
    }
    let all = n > 1;
    let addr = word.as_ptr().cast::<c_void>();
    // A wake interrupted by a signal before it woke anyone is retried, a few times.
    for _ in 0..8 {
        let r = if path() == OS_SYNC {
            // SAFETY: `path()` is OS_SYNC; slots 1 and 2 hold os_sync_wake_by_address_any and
            // _all, of type WakeFn.
            let f: WakeFn = unsafe { os_sync_fn(if all { 2 } else { 1 }) };
            // SAFETY: `addr` is a live, 4-byte aligned `AtomicU32` of the size passed; the
            // call only uses it as a key.
            let r = unsafe { f(addr, 4, libc::OS_SYNC_WAKE_BY_ADDRESS_SHARED) };
            if r == 0 {
                Ok(())
            } else {
                Err(errno())
            }
        } else {
            let op = UL_COMPARE_AND_WAIT_SHARED | ULF_NO_ERRNO | if all { ULF_WAKE_ALL } else { 0 };
            // SAFETY: `addr` is a live, 4-byte aligned `AtomicU32`; the call only uses it as a
            // key.
            let r = unsafe { __ulock_wake(op, addr, 0) };
            if r >= 0 {
                Ok(())
            } else {
                Err(Errno::from_raw_os_error(-r))
            }
        };
        match r {
            Ok(()) => return 1,
            Err(Errno::INTR) => continue,
            // ENOENT: nobody waits on the word. Anything else: nothing a retry mends.
            Err(_) => return 0,
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::slice::SLICE;
    use std::time::Duration;

    #[test]
    fn a_timed_wait_times_out_and_a_wake_without_waiters_wakes_none() {
        let w = AtomicU32::new(0);
        let t = Instant::now();
        let deadline = t + Duration::from_millis(20);
        while wait(&w, 0, Some(deadline)) == Woken::Recheck {}
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert_eq!(wake(&w, 1), 0);
        assert_eq!(wake(&w, u32::MAX), 0);
        // A word that is not `expected` returns at once.
        w.store(1, Ordering::SeqCst);
        assert_eq!(wait(&w, 0, None), Woken::Recheck);
        assert!(matches!(
            backend(),
            "os_sync_wait_on_address" | "__ulock_wait"
        ));
    }

    #[test]
    fn a_waiter_is_woken_by_another_thread() {
        let w = AtomicU32::new(0);
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let t = Instant::now();
                while w.load(Ordering::SeqCst) == 0 {
                    wait(&w, 0, None);
                }
                t.elapsed()
            });
            std::thread::sleep(Duration::from_millis(50));
            w.store(1, Ordering::SeqCst);
            wake(&w, 1);
            assert!(
                waiter.join().unwrap() < SLICE,
                "woken by the slice, not the wake"
            );
        });
    }
}
