//! The table of live shmkit mappings, readable from a signal handler and a fork handler.
//!
//! Two pieces of code run where no lock can be taken and no memory allocated: the SIGBUS
//! handler (which must find the mapping a fault hit) and the child side of `fork` (which must
//! rewrite `Copy` and `Zero` mappings, and mark `None` ones absent, before user code runs).
//! Both read this table. It is a linked list of fixed chunks that only ever grows; a slot
//! whose `start` is 0 is free.
//!
//! Writers (register, unregister, the fork `prepare` handler) serialize on [`LOCK`], a
//! [`ForkSafeLock`]: `prepare` holds it across `fork()`, so no slot changes while the address
//! space is duplicated. It is held only for loads and stores: no system call (unmapping happens
//! between two short critical sections, the slot marked [`DYING`] meanwhile) and no allocation
//! (a new chunk is allocated before the lock is taken). Readers in signal context take no lock:
//! a slot's fields are stored before its `start` is published with `Release`, and a reader that
//! loads `start` with `Acquire` sees them.
//!
//! The table is consistent at every instant (that is what lets the signal handler read it), so a
//! fork child may break a lock that a thread of its parent held at the fork: see
//! [`ForkSafeLock`].

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8};
use std::sync::atomic::{AtomicUsize, Ordering};

const CHUNK: usize = 64;

/// `Slot::state` bit: another process truncated the object; the pages past its new end are
/// private zeroes now.
pub(crate) const TRUNCATED: u32 = 1;
/// `Slot::state` bit: a page could not be allocated because the file system is full; that page
/// is a private zero page now.
pub(crate) const NO_SPACE: u32 = 2;
/// `Slot::state` bit: the kernel could not provide a page for another reason (I/O error,
/// huge-page pool exhausted); that page is a private zero page now.
pub(crate) const FAULTED: u32 = 4;
/// `Slot::state` bit: the mapping does not exist in this process (a fork child of an
/// `Inherit::None` mapping, or of a `Copy`/`Zero` one whose replacement failed). Its range
/// must never be touched: something else may be mapped there.
pub(crate) const ABSENT: u32 = 8;
/// `Slot::state` bit: the mapping is being unmapped; fork handlers and the SIGBUS handler skip
/// it, and the slot is not reused until it is freed.
pub(crate) const DYING: u32 = 16;

/// One registered mapping.
pub(crate) struct Slot {
    /// First byte of the mapping, page aligned; 0 when the slot is free.
    pub start: AtomicUsize,
    /// Length in bytes, rounded up to whole pages (whole huge pages for hugetlb).
    pub len: AtomicUsize,
    /// The page size of the mapping (the huge page size for hugetlb mappings).
    pub page: AtomicUsize,
    /// `Inherit as u8`.
    pub inherit: AtomicU8,
    /// The mapping is writable (the SIGBUS handler keeps the protection it replaces).
    pub writable: AtomicBool,
    /// The object behind the mapping can be truncated by another process, so faults past its
    /// end are caught (see `sigbus.rs`).
    pub guard: AtomicBool,
    /// A descriptor of the object (owned by the `Mapping`), which the SIGBUS handler `fstat`s
    /// to tell a truncation from a full file system; -1 if none.
    pub fd: AtomicI32,
    /// [`TRUNCATED`], [`NO_SPACE`], [`FAULTED`], [`ABSENT`], [`DYING`].
    pub state: AtomicU32,
    /// Address of a private snapshot made by the fork `prepare` handler (`Copy` only).
    pub snapshot: AtomicUsize,
}

impl Slot {
    /// The state bits (`Acquire`: a reader that sees a fault bit sees the replacement done).
    #[inline]
    pub fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    /// Whether fork handlers and the SIGBUS handler should treat the slot as a live mapping.
    pub fn live_start(&self) -> Option<usize> {
        let start = self.start.load(Ordering::Acquire);
        if start == 0 || self.state.load(Ordering::Acquire) & (ABSENT | DYING) != 0 {
            None
        } else {
            Some(start)
        }
    }
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
            page: AtomicUsize::new(0),
            inherit: AtomicU8::new(0),
            writable: AtomicBool::new(false),
            guard: AtomicBool::new(false),
            fd: AtomicI32::new(-1),
            state: AtomicU32::new(0),
            snapshot: AtomicUsize::new(0),
        };
        Chunk {
            slots: [FREE; CHUNK],
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

static FIRST: Chunk = Chunk::new();

/// A lock for state that fork handlers also touch, which a fork child can always take.
///
/// The word holds the holder's pid and thread id. A child forked while another thread of the
/// parent held the lock finds the parent's pid in it, knows that holder does not exist here,
/// and takes the lock over (the state it guards must be consistent at every instant, as the
/// registry is). A `std::sync::Mutex` or a `Once` caught in the same way would stay locked in
/// the child forever. The holder's own thread may take it again (a depth count), which keeps a
/// doubly registered fork handler harmless.
///
/// Waiting spins briefly, then sleeps with a growing `nanosleep` instead of `sched_yield`, so a
/// `SCHED_FIFO` waiter cannot starve a lower-priority holder on the same CPU.
pub(crate) struct ForkSafeLock {
    word: AtomicU64,
    depth: AtomicU32,
}

impl ForkSafeLock {
    pub(crate) const fn new() -> Self {
        ForkSafeLock {
            word: AtomicU64::new(0),
            depth: AtomicU32::new(0),
        }
    }

    fn me() -> u64 {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32 as u64;
        let tid = super::thread_id() as u64;
        (pid << 32) | tid
    }

    /// Takes the lock; returns a guard that releases it.
    pub(crate) fn lock(&self) -> ForkSafeGuard<'_> {
        let me = Self::me();
        let mut round = 0u32;
        loop {
            let cur = self.word.load(Ordering::Relaxed);
            if cur == me {
                self.depth.fetch_add(1, Ordering::Relaxed);
                return ForkSafeGuard { lock: self };
            }
            // Free, or held by a thread of the process we were forked from.
            if (cur == 0 || cur >> 32 != me >> 32)
                && self
                    .word
                    .compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                self.depth.store(1, Ordering::Relaxed);
                return ForkSafeGuard { lock: self };
            }
            round = round.saturating_add(1);
            if round < 64 {
                std::hint::spin_loop();
            } else {
                // 1 µs doubling to 1 ms: holders keep it for microseconds (fork: milliseconds).
                let ns = 1_000u64 << (round - 64).min(10);
                std::thread::sleep(std::time::Duration::from_nanos(ns));
            }
        }
    }

    /// In a fork child: forget a holder of the parent (the child's only thread is the forker).
    pub(crate) fn reset_in_child(&self) {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32 as u64;
        if self.word.load(Ordering::Relaxed) >> 32 != pid {
            self.depth.store(0, Ordering::Relaxed);
            self.word.store(0, Ordering::Release);
        }
    }

    /// Releases one level; for fork handlers, which cannot hold a guard across calls.
    pub(crate) fn unlock_raw(&self) {
        if self.depth.fetch_sub(1, Ordering::Relaxed) <= 1 {
            self.depth.store(0, Ordering::Relaxed);
            self.word.store(0, Ordering::Release);
        }
    }

    /// Takes the lock without a guard; for the fork `prepare` handler.
    pub(crate) fn lock_raw(&self) {
        std::mem::forget(self.lock());
    }
}

/// Releases a [`ForkSafeLock`] when dropped.
pub(crate) struct ForkSafeGuard<'a> {
    lock: &'a ForkSafeLock,
}

impl Drop for ForkSafeGuard<'_> {
    fn drop(&mut self) {
        self.lock.unlock_raw();
    }
}

/// The writers' lock of the table.
pub(crate) static LOCK: ForkSafeLock = ForkSafeLock::new();

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

/// Calls `f` for every live slot whose mapping contains `addr`. Takes no lock. Usually one;
/// two values can register the same range when the C library hands out one mapping twice
/// (glibc's `sem_open` of a name this process has open already).
pub(crate) fn for_each_containing(addr: usize, mut f: impl FnMut(&'static Slot)) {
    for_each_slot(|s| {
        if let Some(start) = s.live_start() {
            if addr >= start && addr - start < s.len.load(Ordering::Relaxed) {
                f(s);
            }
        }
    });
}

/// Finds a live slot whose mapping contains `addr`. Takes no lock.
pub(crate) fn find(addr: usize) -> Option<&'static Slot> {
    let mut found = None;
    for_each_containing(addr, |s| {
        found.get_or_insert(s);
    });
    found
}

/// What a new slot describes.
pub(crate) struct NewSlot {
    pub start: usize,
    pub len: usize,
    pub page: usize,
    pub writable: bool,
    pub guard: bool,
    pub fd: i32,
}

/// Registers a mapping and returns its slot.
pub(crate) fn register(new: NewSlot) -> &'static Slot {
    assert!(new.start != 0, "a mapping never starts at address 0");
    super::ensure_fork_handlers();
    let mut spare: Option<Box<Chunk>> = None;
    loop {
        let guard = LOCK.lock();
        let mut chunk: &'static Chunk = &FIRST;
        let slot = loop {
            if let Some(s) = chunk
                .slots
                .iter()
                .find(|s| s.start.load(Ordering::Relaxed) == 0)
            {
                break Some(s);
            }
            let next = chunk.next.load(Ordering::Acquire);
            if next.is_null() {
                match spare.take() {
                    Some(fresh) => {
                        let fresh: &'static Chunk = Box::leak(fresh);
                        chunk
                            .next
                            .store(fresh as *const Chunk as *mut Chunk, Ordering::Release);
                        chunk = fresh;
                    }
                    None => break None,
                }
            } else {
                // SAFETY: as in `for_each_slot`.
                chunk = unsafe { &*next };
            }
        };
        let Some(slot) = slot else {
            // Every slot is taken: allocate a chunk outside the lock and look again.
            drop(guard);
            spare = Some(Box::new(Chunk::new()));
            continue;
        };
        slot.len.store(new.len, Ordering::Relaxed);
        slot.page.store(new.page, Ordering::Relaxed);
        slot.inherit.store(0, Ordering::Relaxed);
        slot.writable.store(new.writable, Ordering::Relaxed);
        slot.guard.store(new.guard, Ordering::Relaxed);
        slot.fd.store(new.fd, Ordering::Relaxed);
        slot.state.store(0, Ordering::Relaxed);
        slot.snapshot.store(0, Ordering::Relaxed);
        // Release: a lock-free reader that sees `start` sees the fields above.
        slot.start.store(new.start, Ordering::Release);
        drop(guard);
        // A spare chunk allocated while another thread added one is simply freed.
        return slot;
    }
}

/// Runs `unmap` (which undoes the mapping) and frees the slot.
///
/// The slot is marked [`DYING`] first, under the lock: from then on the fork `prepare` handler
/// does not copy it and the SIGBUS handler does not act on it, and nothing reuses it. The
/// unmapping runs outside the lock; the slot is freed afterwards.
pub(crate) fn unregister(slot: &'static Slot, unmap: impl FnOnce()) {
    {
        let _g = LOCK.lock();
        slot.state.fetch_or(DYING, Ordering::AcqRel);
    }
    unmap();
    let _g = LOCK.lock();
    slot.fd.store(-1, Ordering::Relaxed);
    slot.start.store(0, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(start: usize) -> NewSlot {
        NewSlot {
            start,
            len: 0x2000,
            page: 0x1000,
            writable: true,
            guard: false,
            fd: -1,
        }
    }

    #[test]
    fn register_find_unregister_and_grow_past_one_chunk() {
        // Fake addresses far from anything mapped; the table never dereferences them.
        let base = 0x7e00_0000_0000usize;
        let slots: Vec<_> = (0..CHUNK * 2 + 3)
            .map(|i| register(fake(base + i * 0x10000)))
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

    #[test]
    fn absent_and_dying_slots_are_not_found() {
        let base = 0x7d00_0000_0000usize;
        let s = register(fake(base));
        assert!(find(base).is_some());
        s.state.fetch_or(ABSENT, Ordering::Relaxed);
        assert!(find(base).is_none());
        s.state.fetch_and(!ABSENT, Ordering::Relaxed);
        unregister(s, || {
            assert!(find(base).is_none(), "a dying slot is not found");
        });
    }

    #[test]
    fn a_lock_held_by_another_process_is_taken_over() {
        let l = ForkSafeLock::new();
        // A holder whose pid is not ours: what a fork child finds when a thread of its parent
        // held the lock at the fork.
        l.word.store((1u64 << 32) | 12345, Ordering::Relaxed);
        l.depth.store(1, Ordering::Relaxed);
        let g = l.lock();
        let inner = l.lock(); // re-entry by the holder
        drop(inner);
        assert_ne!(l.word.load(Ordering::Relaxed), 0);
        drop(g);
        assert_eq!(l.word.load(Ordering::Relaxed), 0);
    }
}
