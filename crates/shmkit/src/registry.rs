//! The table of live shmkit mappings, readable from a signal handler and a fork handler.
//!
//! Two pieces of code run where no lock can be taken and no memory allocated: the SIGBUS
//! handler (which must find the mapping a fault hit) and the child side of `fork` (which must
//! rewrite `Copy` and `Zero` mappings before user code runs). Both read this table. It is a
//! linked list of fixed chunks that only ever grows; a slot whose `start` is 0 is free.
//!
//! Writers (register, unregister, change of inheritance) serialize on [`LOCK`], a spin lock,
//! because the fork `prepare` handler must hold the same lock across `fork()` and a std mutex
//! cannot be released from the child. Readers in signal context take no lock: a slot's `len`
//! and flags are stored before its `start` is published with `Release`, and a reader that
//! loads `start` with `Acquire` sees them.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering};

const CHUNK: usize = 64;

/// One registered mapping.
pub(crate) struct Slot {
    /// First byte of the mapping, page aligned; 0 when the slot is free.
    pub start: AtomicUsize,
    /// Length in bytes, rounded up to whole pages.
    pub len: AtomicUsize,
    /// `Inherit as u8`.
    pub inherit: AtomicU8,
    /// The mapping is writable (the SIGBUS handler keeps the protection it replaces).
    pub writable: AtomicBool,
    /// The object behind the mapping can be truncated by another process, so faults past its
    /// end are caught (see `sigbus.rs`).
    pub guard: AtomicBool,
    /// Set by the SIGBUS handler when it replaced pages that the object no longer backs.
    pub truncated: AtomicBool,
    /// Address of a private snapshot made by the fork `prepare` handler (`Copy` only).
    pub snapshot: AtomicUsize,
}

struct Chunk {
    slots: [Slot; CHUNK],
    next: AtomicPtr<Chunk>,
}

impl Chunk {
    const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const FREE: Slot = Slot {
            start: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            inherit: AtomicU8::new(0),
            writable: AtomicBool::new(false),
            guard: AtomicBool::new(false),
            truncated: AtomicBool::new(false),
            snapshot: AtomicUsize::new(0),
        };
        Chunk {
            slots: [FREE; CHUNK],
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

static FIRST: Chunk = Chunk::new();
static LOCK: AtomicBool = AtomicBool::new(false);

/// Takes the writers' lock. Held only for a few loads and stores, or across `fork()`.
pub(crate) fn lock() {
    let mut spins = 0u32;
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        spins += 1;
        if spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Releases the writers' lock.
pub(crate) fn unlock() {
    LOCK.store(false, Ordering::Release);
}

/// Calls `f` for every slot, free or not. Takes no lock: safe in a signal handler.
pub(crate) fn for_each_slot(mut f: impl FnMut(&'static Slot)) {
    let mut chunk: &'static Chunk = &FIRST;
    loop {
        for s in &chunk.slots {
            f(s);
        }
        let next = chunk.next.load(Ordering::Acquire);
        if next.is_null() {
            return;
        }
        // SAFETY: chunks are leaked boxes, never freed, published with Release after they
        // were fully initialized.
        chunk = unsafe { &*next };
    }
}

/// Finds the live slot whose mapping contains `addr`. Takes no lock.
pub(crate) fn find(addr: usize) -> Option<&'static Slot> {
    let mut found = None;
    for_each_slot(|s| {
        let start = s.start.load(Ordering::Acquire);
        if found.is_none() && start != 0 && addr >= start {
            let len = s.len.load(Ordering::Relaxed);
            if addr - start < len {
                found = Some(s);
            }
        }
    });
    found
}

/// Registers a mapping and returns its slot.
pub(crate) fn register(start: usize, len: usize, writable: bool, guard: bool) -> &'static Slot {
    assert!(start != 0, "a mapping never starts at address 0");
    lock();
    let mut chunk: &'static Chunk = &FIRST;
    let slot = loop {
        if let Some(s) = chunk
            .slots
            .iter()
            .find(|s| s.start.load(Ordering::Relaxed) == 0)
        {
            break s;
        }
        let next = chunk.next.load(Ordering::Acquire);
        if next.is_null() {
            let fresh: &'static Chunk = Box::leak(Box::new(Chunk::new()));
            chunk
                .next
                .store(fresh as *const Chunk as *mut Chunk, Ordering::Release);
            chunk = fresh;
        } else {
            // SAFETY: as in `for_each_slot`.
            chunk = unsafe { &*next };
        }
    };
    slot.len.store(len, Ordering::Relaxed);
    slot.inherit.store(0, Ordering::Relaxed);
    slot.writable.store(writable, Ordering::Relaxed);
    slot.guard.store(guard, Ordering::Relaxed);
    slot.truncated.store(false, Ordering::Relaxed);
    slot.snapshot.store(0, Ordering::Relaxed);
    // Release: a lock-free reader that sees `start` sees the fields above.
    slot.start.store(start, Ordering::Release);
    unlock();
    slot
}

/// Runs `unmap` (which undoes the mapping) and frees the slot, both under the lock.
///
/// Unmapping outside the lock would leave a window in which the slot names a range that is no
/// longer mapped: the fork `prepare` handler could then copy from it, or map its snapshot
/// right there and copy the range onto itself; and a new mapping placed there could be found
/// through the stale slot by the SIGBUS handler.
pub(crate) fn unregister(slot: &'static Slot, unmap: impl FnOnce()) {
    lock();
    unmap();
    slot.start.store(0, Ordering::Release);
    unlock();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_find_unregister_and_grow_past_one_chunk() {
        // Fake addresses far from anything mapped; the table never dereferences them.
        let base = 0x7e00_0000_0000usize;
        let slots: Vec<_> = (0..CHUNK * 2 + 3)
            .map(|i| register(base + i * 0x10000, 0x2000, true, false))
            .collect();
        for (i, slot) in slots.iter().enumerate() {
            let hit = find(base + i * 0x10000 + 0x1fff).expect("registered");
            assert!(std::ptr::eq(hit, *slot));
            assert!(find(base + i * 0x10000 + 0x2000).is_none());
        }
        for s in slots {
            unregister(s, || {});
        }
        assert!(find(base).is_none());
    }
}
