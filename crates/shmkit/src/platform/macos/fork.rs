//! What `fork` gives a child of each mapping: `minherit(2)`, the BSD face of Mach's
//! `vm_inherit`, which the kernel applies at fork; and one fork handler, which marks the
//! `None` mappings absent in the child so that their (unmapped, maybe reused) range is never
//! touched there, as on Linux.

use crate::platform::maps::{self, ForkSafeLock, Slot, ABSENT};
use crate::platform::Inherit;
use rustix::io::Errno;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the handlers are registered (see the Linux module for why no `Once`).
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// How many forks this process is the child of (bumped by the child handler): a value that
/// belongs to the task that made it compares this, not its pid, which a grandchild may get
/// once the original has exited.
static GENERATION: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// This process's fork generation. Registers the fork handlers first, so that a value made
/// now sees the next fork.
pub(crate) fn generation() -> u32 {
    ensure_fork_handlers();
    GENERATION.load(Ordering::Acquire)
}

/// Serializes changes of inheritance, which take a system call outside the table's lock.
static INHERIT: ForkSafeLock = ForkSafeLock::new();

/// Registers the fork handlers once per process, before the first mapping is registered.
pub(crate) fn ensure_fork_handlers() {
    if REGISTERED.load(Ordering::Acquire) {
        return;
    }
    let _g = maps::LOCK.lock();
    if !REGISTERED.load(Ordering::Relaxed) {
        // SAFETY: the three handlers are `extern "C" fn()` that live for the whole program.
        let r = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        assert_eq!(r, 0, "pthread_atfork failed: out of memory");
        REGISTERED.store(true, Ordering::Release);
    }
}

/// Sets what `fork` gives a child of the mapping registered in `slot` (`minherit(2)` with
/// `VM_INHERIT_SHARE`, `VM_INHERIT_COPY` or `VM_INHERIT_NONE`). [`Inherit::Zero`] has no
/// counterpart on macOS: `ENOTSUP`.
///
/// As on Linux, the slot changes first when going to `None` (a child forked in between is
/// told the mapping is absent, which it then is or soon is not: absent is the safe side), and
/// the kernel's attribute first when going back.
pub(crate) fn set_inherit(slot: &'static Slot, mode: Inherit) -> Result<(), Errno> {
    let how = match mode {
        Inherit::Share => libc::VM_INHERIT_SHARE,
        Inherit::Copy => libc::VM_INHERIT_COPY,
        Inherit::None => libc::VM_INHERIT_NONE,
        Inherit::Zero => return Err(Errno::NOTSUP),
    };
    ensure_fork_handlers();
    let _g = INHERIT.lock();
    let start = slot.start.load(Ordering::Acquire);
    let len = slot.len.load(Ordering::Relaxed);
    let minherit = || {
        // SAFETY: [start, start+len) is a live mapping owned by the caller's `Mapping`; the
        // call changes only what fork does with it.
        if unsafe { libc::minherit(start as *mut libc::c_void, len, how) } != 0 {
            Err(crate::platform::errno())
        } else {
            Ok(())
        }
    };
    if mode == Inherit::None {
        let old = slot.inherit.swap(mode.to_u8(), Ordering::AcqRel);
        if let Err(e) = minherit() {
            slot.inherit.store(old, Ordering::Release);
            return Err(e);
        }
    } else {
        minherit()?;
        slot.inherit.store(mode.to_u8(), Ordering::Release);
    }
    Ok(())
}

// `prepare` holds the table's lock across fork, so no mapping is added, removed or re-moded
// while the address space is duplicated.

extern "C" fn prepare() {
    maps::LOCK.lock_raw();
}

extern "C" fn parent() {
    maps::LOCK.unlock_raw();
}

extern "C" fn child() {
    // Single-threaded, before fork() returns: loads and stores only.
    maps::for_each_slot(|s| {
        if s.live_start().is_some()
            && Inherit::from_u8(s.inherit.load(Ordering::Acquire)) == Inherit::None
        {
            s.state.fetch_or(ABSENT, Ordering::Release);
        }
    });
    GENERATION.fetch_add(1, Ordering::AcqRel);
    maps::LOCK.reset_in_child();
    INHERIT.reset_in_child();
    crate::platform::sigbus::reset_in_child();
}
