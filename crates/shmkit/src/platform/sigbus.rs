//! Surviving a peer that truncates a shared object, or a full tmpfs, while we have it mapped.
//!
//! POSIX shm, memfds and files can be shrunk by any process that holds a writable fd. A load
//! or store to a page past the new end then raises SIGBUS, which kills the process; so does a
//! store to a page that a full tmpfs (Docker's 64 MiB `/dev/shm`) cannot allocate. shmkit
//! cannot check before each access (the peer can shrink the object a nanosecond later), so it
//! does what Wayland compositors do for client buffers (`wl_shm`): a SIGBUS handler that, for a
//! fault inside a guarded shmkit mapping, maps private zero pages over what the object no
//! longer backs and returns, so that the faulting access completes on private memory. It tells
//! the causes apart by the object's size at the time of the fault (`fstat` of a descriptor the
//! mapping keeps):
//!
//! - the page lies past the object's end: a truncation. Everything past the end is replaced
//!   and the mapping is marked [`TRUNCATED`](crate::platform::maps::TRUNCATED);
//! - the page lies inside the object, on a tmpfs: the file system is full. Only that page is
//!   replaced, the mapping is marked [`NO_SPACE`](crate::platform::maps::NO_SPACE);
//! - inside the object elsewhere (an I/O error, the huge-page pool exhausted): only that page
//!   is replaced, the mapping is marked [`FAULTED`](crate::platform::maps::FAULTED).
//!
//! Every accessor checks the mark, so the caller gets [`ErrorKind::Truncated`],
//! [`ErrorKind::NoSpace`] or [`ErrorKind::Fault`] instead of silently lost bytes, from then on.
//!
//! Only faults the kernel raised for a bad page of a mapping (`si_code == BUS_ADRERR`) are
//! ours. A SIGBUS sent with `kill`, `tgkill` or `sigqueue` (`si_code <= 0`), an alignment or
//! hardware-memory error, and any fault outside shmkit's guarded mappings go to the handler that
//! was installed before ours, called the way its flags ask (`SA_SIGINFO`, its `sa_mask`,
//! `SA_NODEFER`, `SA_RESETHAND`); if that was the default action, the process dies of SIGBUS as
//! it would have without shmkit.
//!
//! A library that installs its own SIGBUS handler after shmkit's replaces it: guarded mappings
//! are then unprotected (a truncation kills the process, as without shmkit) unless that
//! handler passes faults it does not own to the one it replaced, as well-behaved ones (and
//! this one) do.
//!
//! [`ErrorKind::Truncated`]: crate::ErrorKind::Truncated
//! [`ErrorKind::NoSpace`]: crate::ErrorKind::NoSpace
//! [`ErrorKind::Fault`]: crate::ErrorKind::Fault

use crate::platform::maps::{self as registry, ForkSafeLock, FAULTED, NO_SPACE, TRUNCATED};
use rustix::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

static INSTALLED: AtomicBool = AtomicBool::new(false);
/// Serializes installation; fork-safe, so a child forked mid-installation can install.
static INSTALL: ForkSafeLock = ForkSafeLock::new();
/// The handler ours replaced: a leaked box, published with `Release` before ours is installed
/// and read with `Acquire` by the handler (on whatever thread the signal lands), so the two are
/// ordered in the memory model too, not only by the `sigaction` call between them.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());

fn publish_previous(old: libc::sigaction) {
    // Leaked on purpose: a handler running on another thread may still read the one it replaces.
    PREVIOUS.store(Box::into_raw(Box::new(old)), Ordering::Release);
}

/// Installs the handler once per process. Called before the first guarded mapping exists.
pub(crate) fn install() {
    if INSTALLED.load(Ordering::Acquire) {
        return;
    }
    let _g = INSTALL.lock();
    if INSTALLED.load(Ordering::Relaxed) {
        return;
    }
    // SAFETY: sigaction gets valid, fully initialized structures. PREVIOUS is written while
    // our handler is not installed (the first query says so), hence not running; a fork child
    // that finds ours installed already inherited PREVIOUS from the parent that installed it.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut cur);
        if cur.sa_sigaction != handler as *const () as usize {
            publish_previous(cur);
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = handler as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &new, &mut old) != 0 {
                return;
            }
            if old.sa_sigaction != cur.sa_sigaction {
                // Another library installed its handler between our two calls: chain to it.
                publish_previous(old);
            }
        }
    }
    INSTALLED.store(true, Ordering::Release);
}

/// Fork child handler: forget an installation a thread of the parent was in the middle of.
pub(crate) fn reset_in_child() {
    INSTALL.reset_in_child();
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    if code == libc::BUS_ADRERR {
        if let Some(slot) = registry::find(addr) {
            if slot.guard.load(Ordering::Relaxed) && replace(slot, addr) {
                return;
            }
        }
    }
    pass_on(sig, info, ctx, code);
}

/// Replaces what the object no longer backs around `addr` with private zero pages, and marks
/// every slot of that range. Only system calls: safe in a signal handler.
fn replace(slot: &registry::Slot, addr: usize) -> bool {
    let Some(start) = slot.live_start() else {
        return false;
    };
    let len = slot.len.load(Ordering::Relaxed);
    let page = slot.page.load(Ordering::Relaxed).max(1);
    let raw = slot.fd.load(Ordering::Relaxed);
    if raw < 0 || addr < start || addr - start >= len {
        return false;
    }
    // SAFETY: the descriptor is owned by the Mapping of this live slot, closed only after the
    // slot is marked dying (which `live_start` excludes).
    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
    let Ok(st) = rustix::fs::fstat(fd) else {
        return false;
    };
    let size = usize::try_from(st.st_size).unwrap_or(0);
    let fault_page = addr & !(page - 1);
    let (from, to, mark) = if fault_page - start >= size {
        // Past the end: every page from the end on is gone.
        let end = size.div_ceil(page).saturating_mul(page);
        (start + end.min(len), start + len, TRUNCATED)
    } else {
        // fstatfs only: a plain system call, safe here.
        let mark = match super::fs_kind(fd) {
            super::FsKind::Tmpfs => NO_SPACE,
            _ => FAULTED,
        };
        (fault_page, (fault_page + page).min(start + len), mark)
    };
    if from >= to || fault_page < from || fault_page >= to {
        return false;
    }
    let prot = if slot.writable.load(Ordering::Relaxed) {
        rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE
    } else {
        rustix::mm::ProtFlags::READ
    };
    // SAFETY: [from, to) lies inside a mapping that shmkit owns and that is live (its slot is
    // registered and not dying); replacing it with MAP_FIXED anonymous pages is what this guard
    // is for. mmap is a plain system call (rustix's linux_raw backend), safe in a signal
    // handler.
    let r = unsafe {
        rustix::mm::mmap_anonymous(
            from as *mut _,
            to - from,
            prot,
            rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::FIXED,
        )
    };
    if r.is_err() {
        return false;
    }
    registry::for_each_containing(addr, |s| {
        s.state.fetch_or(mark, Ordering::Release);
    });
    true
}

/// Hands a SIGBUS that is not ours to whoever would have had it without shmkit.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void, code: i32) {
    let ptr = PREVIOUS.load(Ordering::Acquire);
    if ptr.is_null() {
        return; // cannot happen: published before the handler was installed
    }
    // SAFETY: a leaked box, never freed, fully written before it was published.
    let prev = unsafe { *ptr };
    let set_default = || {
        // SAFETY: a zeroed sigaction with SIG_DFL is valid.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        }
    };
    if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
        if code > 0 {
            // A fault: returning re-runs the access, which faults again and, with the default
            // action, ends the process as it would have ended without shmkit (the kernel
            // does not let a fault be ignored).
            set_default();
        } else if prev.sa_sigaction == libc::SIG_DFL {
            // Sent by a process: the default action is to die of it.
            set_default();
            // SAFETY: raise(3) is async-signal-safe; SIGBUS is not blocked (SA_NODEFER).
            unsafe { libc::raise(libc::SIGBUS) };
        }
        return;
    }
    // SAFETY: calling the handler that was installed before ours, with the arguments the
    // kernel gave us, in the form and under the signal mask its flags declare.
    unsafe {
        if prev.sa_flags & libc::SA_RESETHAND != 0 {
            set_default();
        }
        let mut mask = prev.sa_mask;
        if prev.sa_flags & libc::SA_NODEFER == 0 {
            libc::sigaddset(&mut mask, libc::SIGBUS);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &mask, &mut old);
        if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(prev.sa_sigaction);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
            f(sig);
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}
