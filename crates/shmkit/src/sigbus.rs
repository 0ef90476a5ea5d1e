//! Surviving a peer that truncates a shared object while we have it mapped.
//!
//! POSIX shm, memfds and files can be shrunk by any process that holds a writable fd. A load
//! or store to a page past the new end then raises SIGBUS, which kills the process. shmkit
//! cannot check the size before each access (the peer can shrink it a nanosecond later), so
//! it does what Wayland compositors do for client buffers (`wl_shm`): a SIGBUS handler that,
//! for a fault inside a guarded shmkit mapping, maps private zero pages over the rest of that
//! mapping and returns, so that the faulting access completes on private memory. The slot is
//! marked truncated, and every copy routine checks that mark after it copies, so the caller
//! gets [`ErrorKind::Truncated`](crate::ErrorKind::Truncated) rather than silently lost bytes.
//!
//! Faults outside shmkit mappings are passed to the handler that was installed before ours,
//! or, if that was the default action, the default action is restored and the access retried,
//! so the process dies with SIGBUS as it would have without shmkit.

use crate::registry;
use std::sync::atomic::Ordering;
use std::sync::Once;

static INSTALL: Once = Once::new();
static mut PREVIOUS: Option<libc::sigaction> = None;

/// Installs the handler once per process. Called before the first guarded mapping exists.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sigaction is given valid, fully initialized structures. PREVIOUS is written
        // here, inside `call_once`, before our handler can run (the handler is installed by
        // this very call), and only read afterwards.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = handler as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_ONSTACK;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &new, &mut old) == 0 {
                *std::ptr::addr_of_mut!(PREVIOUS) = Some(old);
            }
        }
    });
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(slot) = registry::find(addr) {
        if slot.guard.load(Ordering::Relaxed) && replace_tail(slot, addr) {
            return;
        }
    }
    // SAFETY: PREVIOUS was set before this handler was installed and is never written again.
    let previous = unsafe { *std::ptr::addr_of!(PREVIOUS) };
    match previous {
        Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
            // SAFETY: calling the handler that was installed before ours, with the arguments
            // the kernel gave us, in the form its flags declare.
            unsafe {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        std::mem::transmute(old.sa_sigaction);
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) = std::mem::transmute(old.sa_sigaction);
                    f(sig);
                }
            }
        }
        _ => {
            // Not ours: restore the default action; returning retries the access, which
            // faults again and ends the process the way it would have ended without shmkit.
            // SAFETY: a zeroed sigaction with SIG_DFL is valid.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

/// Maps private zero pages from the faulting page to the end of the mapping.
fn replace_tail(slot: &registry::Slot, addr: usize) -> bool {
    let start = slot.start.load(Ordering::Acquire);
    let len = slot.len.load(Ordering::Relaxed);
    let page = rustix::param::page_size();
    let from = addr & !(page - 1);
    if start == 0 || from < start || from >= start + len {
        return false;
    }
    let prot = if slot.writable.load(Ordering::Relaxed) {
        rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE
    } else {
        rustix::mm::ProtFlags::READ
    };
    // SAFETY: [from, start+len) lies inside a mapping that shmkit owns and that is live (its
    // slot is registered); replacing it with MAP_FIXED anonymous pages is what this guard is
    // for. mmap is a plain system call (rustix's linux_raw backend), safe in a signal handler.
    let r = unsafe {
        rustix::mm::mmap_anonymous(
            from as *mut _,
            start + len - from,
            prot,
            rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::FIXED,
        )
    };
    if r.is_ok() {
        slot.truncated.store(true, Ordering::Release);
    }
    r.is_ok()
}
