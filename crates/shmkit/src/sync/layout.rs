//! The blocks' layouts as `#[repr(C)]` structs: the reference for a C program (or another
//! language) that shares the blocks, and checked here against the word offsets the code uses.
//! Every field is a little-endian `u32` that all processes access atomically.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// [`Semaphore`](super::Semaphore): 32 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SemaphoreLayout {
    /// `"shkS"` (0x536b6873).
    pub magic: u32,
    /// Layout version (1) in the low 16 bits; the wake policy (0 any, 1 FIFO) in the high 16.
    pub version: u32,
    /// Free units.
    pub value: u32,
    /// Processes inside `wait`.
    pub waiters: u32,
    /// Units handed to sleepers (FIFO).
    pub grants: u32,
    /// Zero.
    pub reserved: [u32; 3],
}

/// [`Mutex`](super::Mutex): 32 bytes, one layout for both OSes, the lock word's kind in the
/// version word (an OS opens only its own kind: a segment never spans machines).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MutexLayout {
    /// `"shkM"`.
    pub magic: u32,
    /// Layout version (1) in the low 16 bits; the lock word's kind in the high 16: 0 Linux (a
    /// PI futex), 2 macOS (owner pid and generation, and the owner record). Kind 1, the macOS
    /// word of earlier shmkits (owner pid alone, a start time in the record), is refused.
    pub version: u32,
    /// Kind 0: the PI futex word, owner tid | `FUTEX_WAITERS` | `FUTEX_OWNER_DIED`. Kind 2:
    /// owner pid in bits 0..=16 (0: free) | a generation in bits 17..=29, which every
    /// acquisition advances by one (modulo 2^13) and unlocking keeps | `0x8000_0000` (waiters);
    /// bit 30 is clear. A locker takes a free word `f` with a compare-and-swap from `f` to its
    /// pid | the generation after `f`'s, and a dead owner's word `w` likewise from `w`.
    pub word: u32,
    /// Kind 2: the owner thread (`pthread_threadid_np`, low 32 bits); zero for kind 0.
    pub owner_thread: u32,
    /// 0 consistent, 1 owner died and not repaired yet, 2 not recoverable.
    pub state: u32,
    /// How many times a dead owner was detected.
    pub recoveries: u32,
    /// Kind 2: the word as the owner took it (pid | generation, no flag bits), the sequence of
    /// a seqlock over the record: set to 0, then `owner_thread` and `owner_uniqueid` written,
    /// then this (with release ordering), once the word is taken; left in place at unlock. The
    /// record describes the owner only while this equals `word` without its flag bits. Zero
    /// for kind 0. (Named `owner_pid` before kind 2, when it held the pid alone.)
    pub owner_word: u32,
    /// Kind 2: the owner's unique process id (`p_uniqueid` of
    /// `proc_pidinfo(PROC_PIDUNIQIDENTIFIERINFO)`, one per process created since boot), low 32
    /// bits, 0 if unknown (1 stands for 0); a live process with the record's pid and another
    /// id is a reuse of the pid. Zero for kind 0.
    pub owner_uniqueid: u32,
}

/// [`Condvar`](super::Condvar) and [`Event`](super::Event): 16 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct WaitWordLayout {
    /// `"shkC"` (condvar) or `"shkE"` (event).
    pub magic: u32,
    /// Layout version (1).
    pub version: u32,
    /// Condvar: bumped by every notify. Event: 0 clear, 1 set.
    pub word: u32,
    /// Processes waiting.
    pub waiters: u32,
}

/// [`init_once`](super::init_once)'s header: 16 bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct InitLayout {
    /// 0 fresh, `0x8000_0000 | generation` while initializing, `"shkR"` when ready.
    pub state: u32,
    /// The initializer's pid.
    pub pid: u32,
    /// The caller's 4-byte tag.
    pub tag: u32,
    /// shmkit's layout version (low 16 bits) | the caller's version << 16.
    pub version: u32,
}

// The code addresses fields as word indices; these keep the structs and the code in step.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<SemaphoreLayout>() == super::Semaphore::SIZE);
    assert!(offset_of!(SemaphoreLayout, value) == 4 * 2);
    assert!(offset_of!(SemaphoreLayout, waiters) == 4 * 3);
    assert!(offset_of!(SemaphoreLayout, grants) == 4 * 4);
    assert!(size_of::<MutexLayout>() == super::Mutex::SIZE);
    assert!(offset_of!(MutexLayout, word) == 4 * 2);
    assert!(offset_of!(MutexLayout, owner_thread) == 4 * 3);
    assert!(offset_of!(MutexLayout, state) == 4 * 4);
    assert!(offset_of!(MutexLayout, recoveries) == 4 * 5);
    assert!(offset_of!(MutexLayout, owner_word) == 4 * 6);
    assert!(offset_of!(MutexLayout, owner_uniqueid) == 4 * 7);
    assert!(size_of::<WaitWordLayout>() == super::Condvar::SIZE);
    assert!(size_of::<WaitWordLayout>() == super::Event::SIZE);
    assert!(size_of::<InitLayout>() == 16);
};
