//! What `fork` gives a child of each mapping (`madvise(2)`, `pthread_atfork(3)`), and the fork
//! handlers that rebuild `Copy` and `Zero` mappings and hide `None` ones in the child.

use crate::platform::maps::{self as registry, ForkSafeLock, Slot, ABSENT};
use crate::platform::{copy, Inherit};
use rustix::io::Errno;
use rustix::mm::{self, Advice, MapFlags, ProtFlags};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the handlers are registered. Set under the registry lock, after `pthread_atfork`
/// returned, so a fork racing with the registration either runs all three handlers (and its
/// `prepare` waits for the lock, hence for this flag) or none (and the child, which then sees
/// the flag clear, registers them itself when it needs them). They are never registered twice.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Serializes changes of inheritance, which take a system call and so do not hold the
/// registry lock. A [`ForkSafeLock`], so that a fork child never finds it stuck.
static INHERIT: ForkSafeLock = ForkSafeLock::new();

/// Registers the fork handlers once per process. Called before the first mapping is
/// registered and before the first thread id is cached, so no fork can find either without
/// them. No `Once`: a `Once` that another thread is running when the process forks stays
/// "running" forever in the child.
pub(crate) fn ensure_fork_handlers() {
    if REGISTERED.load(Ordering::Acquire) {
        return;
    }
    let _g = registry::LOCK.lock();
    if !REGISTERED.load(Ordering::Relaxed) {
        // SAFETY: the three handlers are `extern "C" fn()` that live for the whole program.
        let r = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
        // ENOMEM is the only failure; without handlers every Copy/Zero/None mapping would be
        // wrong in a child, so this is as fatal as any other allocation failure.
        assert_eq!(r, 0, "pthread_atfork failed: out of memory");
        REGISTERED.store(true, Ordering::Release);
    }
}

/// Sets what `fork` gives a child of the mapping registered in `slot`
/// (`madvise(2)`: `MADV_DOFORK`, `MADV_DONTFORK`).
///
/// The slot and the kernel's flag change in an order that keeps every fork in between right:
/// to a mode the handlers rebuild or hide (`Copy`, `Zero`, `None`) the slot changes first, so
/// a child forked before `MADV_DONTFORK` has the range replaced or marked absent anyway; back
/// to `Share` the kernel's flag changes first, so a child forked before the slot changes still
/// gets the snapshot it was promised.
pub(crate) fn set_inherit(slot: &'static Slot, mode: Inherit) -> Result<(), Errno> {
    ensure_fork_handlers();
    let _g = INHERIT.lock();
    let start = slot.start.load(Ordering::Acquire);
    let len = slot.len.load(Ordering::Relaxed);
    match mode {
        Inherit::Share => {
            // SAFETY: [start, start+len) is a live mapping owned by the caller's `Mapping`;
            // this advice changes only what fork does with it.
            unsafe { mm::madvise(start as *mut _, len, Advice::LinuxDoFork) }?;
            slot.inherit.store(mode.to_u8(), Ordering::Release);
        }
        Inherit::Copy | Inherit::None | Inherit::Zero => {
            let old = slot.inherit.swap(mode.to_u8(), Ordering::AcqRel);
            // SAFETY: as above.
            if let Err(e) = unsafe { mm::madvise(start as *mut _, len, Advice::LinuxDontFork) } {
                slot.inherit.store(old, Ordering::Release);
                return Err(e);
            }
        }
    }
    Ok(())
}

// `prepare` runs in the parent just before fork and holds the registry lock until `parent` or
// `child` runs, so no mapping is added, removed or re-moded while the address space is being
// duplicated.

extern "C" fn prepare() {
    registry::LOCK.lock_raw();
    registry::for_each_slot(|s| {
        let Some(start) = s.live_start() else { return };
        if Inherit::from_u8(s.inherit.load(Ordering::Acquire)) != Inherit::Copy {
            return;
        }
        let len = s.len.load(Ordering::Relaxed);
        // SAFETY: a fresh private anonymous mapping of `len` bytes.
        let fresh = unsafe {
            mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        };
        // A failure leaves `snapshot` 0, and the child marks the mapping absent.
        if let Ok(p) = fresh {
            // SAFETY: [start, start+len) is a live registered mapping (not dying: its slot is
            // live and we hold the lock that unregistering takes); `p` is private and `len`
            // bytes long. Other threads may write the source meanwhile: the copy reads with
            // atomic loads, and a fault past a truncated end is absorbed by the SIGBUS guard.
            unsafe { copy::load(start as *const u8, p.cast(), len) };
            s.snapshot.store(p as usize, Ordering::Relaxed);
        }
    });
}

extern "C" fn parent() {
    drop_snapshots();
    registry::LOCK.unlock_raw();
}

fn drop_snapshots() {
    registry::for_each_slot(|s| {
        let snap = s.snapshot.swap(0, Ordering::Relaxed);
        if snap != 0 {
            // SAFETY: `snap` is the private snapshot `prepare` mapped; nothing else uses it.
            let _ = unsafe { mm::munmap(snap as *mut _, s.len.load(Ordering::Relaxed)) };
        }
    });
}

/// Forks this process has been the child of (since its handlers were registered): a value
/// that holds a claim made by the parent (a channel's end) can tell it is in a child.
static FORKS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// How many forks this process is the child of; see `FORKS`.
pub(crate) fn fork_count() -> u32 {
    FORKS.load(Ordering::Relaxed)
}

extern "C" fn child() {
    // Runs in the child before fork() returns to the caller, single-threaded. Only system
    // calls here: the child may be about to do nothing but `_exit`.
    FORKS.fetch_add(1, Ordering::Relaxed);
    registry::for_each_slot(|s| {
        let Some(start) = s.live_start() else { return };
        let len = s.len.load(Ordering::Relaxed);
        let prot = if s.writable.load(Ordering::Relaxed) {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        let present = match Inherit::from_u8(s.inherit.load(Ordering::Acquire)) {
            // Still the shared mapping: a peer can still truncate it, so it stays guarded.
            Inherit::Share => true,
            Inherit::None => false,
            Inherit::Copy => {
                let snap = s.snapshot.swap(0, Ordering::Relaxed);
                // SAFETY: moves the child's copy of the snapshot to the address of the
                // shared mapping (absent here: MADV_DONTFORK; MREMAP_FIXED replaces it if a
                // racing set_inherit left it), then gives it the mapping's protection.
                snap != 0
                    && unsafe {
                        mm::mremap_fixed(
                            snap as *mut _,
                            len,
                            len,
                            mm::MremapFlags::MAYMOVE,
                            start as *mut _,
                        )
                        .is_ok()
                            && mm::mprotect(start as *mut _, len, mprotect_flags(prot)).is_ok()
                    }
            }
            Inherit::Zero => {
                // SAFETY: the range is free in the child (MADV_DONTFORK), or holds the shared
                // mapping, which MAP_FIXED replaces; fresh private zero pages.
                unsafe {
                    mm::mmap_anonymous(
                        start as *mut _,
                        len,
                        prot,
                        MapFlags::PRIVATE | MapFlags::FIXED,
                    )
                }
                .is_ok()
            }
        };
        if !present {
            // Never touch this range again here: it is unmapped, or something else may be
            // placed there. Every accessor of the Mapping now fails with NotInherited.
            s.state.fetch_or(ABSENT, Ordering::Release);
        } else if Inherit::from_u8(s.inherit.load(Ordering::Relaxed)) != Inherit::Share {
            // Private pages now: nothing can truncate them.
            s.guard.store(false, Ordering::Relaxed);
        }
    });
    // Snapshots a racing set_inherit left unused.
    drop_snapshots();
    registry::LOCK.reset_in_child();
    INHERIT.reset_in_child();
    crate::platform::sigbus::reset_in_child();
    super::futex::forget_tid();
}

fn mprotect_flags(p: ProtFlags) -> mm::MprotectFlags {
    mm::MprotectFlags::from_bits_truncate(p.bits())
}
