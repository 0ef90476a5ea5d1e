//! A mutex in shared memory that tells the next locker when its owner died.
//!
//! # Why a PI futex, not a robust `pthread_mutex_t`
//!
//! A robust pthread mutex keeps the owner's robust-list links (pointers into the owner's
//! address space) inside the mutex, and glibc writes through them on unlock: a peer that
//! scribbles on the shared mutex can make us write to an address of its choice. The kernel's
//! robust list has the same shape, and glibc owns each thread's single list head.
//!
//! The lock word here is a Linux PI futex (`FUTEX_LOCK_PI`, `futex(2)`): it holds the owner's
//! thread id, and the kernel, not a list in shared memory, tracks who waits:
//! - if the owner dies while others sleep in `FUTEX_LOCK_PI`, the kernel's exit path
//!   (`exit_pi_state_list`) hands the lock to the first of them;
//! - if it dies while nobody waits, the word keeps a thread id that no longer exists, and the
//!   next `FUTEX_LOCK_PI` fails with `ESRCH`, after which we take the word over.
//!
//! In the first case the kernel gives the waiter the word with `FUTEX_OWNER_DIED` set (the
//! pi_state had lost its owner; `__fixup_pi_state_owner` passes the bit on); in the second
//! we learn it from `ESRCH`. Either way the new owner is told, and nothing is stored on the
//! uncontended path (one CAS to lock, one to unlock): it costs what glibc's does. A live
//! owner's `FUTEX_UNLOCK_PI`, or a `FUTEX_LOCK_PI` that finds the word free, hands the word
//! over without the bit. The block holds only integers; the worst a hostile peer can do is
//! make lockers wait, fail, or be told of a death that did not happen.
//!
//! Limits, as for every PI futex: the thread ids are those of the locker's pid namespace, so
//! all users must share one; a dead owner's thread id that is reused by a new thread before
//! anyone locks makes lockers wait for that thread instead.

use super::block::{magic, Block};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::futex;
#[cfg(target_os = "linux")]
use crate::platform::futex::{PiLock, OWNER_DIED, TID_MASK, WAITERS};
use crate::Mapping;
#[cfg(target_os = "macos")]
use std::sync::atomic::fence;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const MAGIC: u32 = magic(b"shkM");

/// The kind of lock word, in the 16 bits next to the layout version: 0 a Linux PI futex
/// (owner tid); 2 the macOS word (owner pid and generation, with the owner record naming the
/// unique process id). Kind 1 was the macOS word of earlier shmkits (owner pid alone, the record
/// naming a start time): its words and records mean something else, so it is refused. Each OS
/// opens only its own kind (a segment is shared by processes of one machine, so of one OS).
#[cfg(target_os = "linux")]
const KIND: u32 = 0;
#[cfg(target_os = "macos")]
const KIND: u32 = 2;

// The macOS word: bits 0..=16 the owner's pid (0: free), bits 17..=29 a generation that every
// acquisition advances, bit 30 OWNER_DIED (unused there, kept clear), bit 31 WAITERS (someone
// sleeps on the word); the flag bits are those of the Linux PI word.
#[cfg(target_os = "macos")]
const WAITERS: u32 = 0x8000_0000;
#[cfg(target_os = "macos")]
const OWNER_DIED: u32 = 0x4000_0000;
/// The owner's pid. macOS pids are at most `PID_MAX`, 99 999 (bsd/sys/proc_internal.h), < 2^17.
#[cfg(target_os = "macos")]
const PID_MASK: u32 = 0x0001_ffff;
#[cfg(target_os = "macos")]
const PID_MAX: u32 = 99_999;
#[cfg(target_os = "macos")]
const GEN_ONE: u32 = 1 << 17;
/// The generation: 13 bits, so a word value comes back only after 8192 acquisitions.
#[cfg(target_os = "macos")]
const GEN_MASK: u32 = 0x3ffe_0000;
/// Which acquisition holds the word: pid and generation, what a take-over compares.
#[cfg(target_os = "macos")]
const OWNER_MASK: u32 = PID_MASK | GEN_MASK;
#[cfg(target_os = "macos")]
const _: () = assert!(PID_MAX <= PID_MASK && PID_MASK & GEN_MASK == 0);
/// How often a macOS waiter checks that the owner lives (a death wakes nobody there).
#[cfg(target_os = "macos")]
const OWNER_POLL: Duration = Duration::from_millis(20);

/// Who we are in the lock word: the thread id on Linux (a PI futex names a thread), the pid on
/// macOS (the record beside it names the thread). A fork child gets another value either way.
#[inline]
fn me() -> u32 {
    #[cfg(target_os = "linux")]
    return futex::tid();
    #[cfg(target_os = "macos")]
    return rustix::process::getpid().as_raw_nonzero().get() as u32;
}

const CONSISTENT: u32 = 0;
/// The owner died; the current owner was told and has not called `mark_consistent` yet.
const INCONSISTENT: u32 = 1;
const NOT_RECOVERABLE: u32 = 2;

/// A mutual-exclusion lock shared by processes, which survives the death of its owner.
///
/// On macOS, which has no kernel owner-died hand-off (and no PI futex), the word holds the
/// owner's pid and a generation that every acquisition advances, and the block an owner
/// record (that word, the owner's unique process id, its thread): a waiter checks every 20 ms
/// that the owner still runs (`proc_pidinfo(PROC_PIDUNIQIDENTIFIERINFO)`, which needs no
/// privilege: a pid reused by any process, of any user, does not pass, its unique id differs)
/// and takes a dead owner's lock over, with [`Locked::OwnerDied`]. A take-over compares the
/// whole word, generation included, so one taker wins per death even when the dead owner's pid
/// went to a process that locks the mutex too. No priority inheritance there; waiters sleep on
/// the word (`os_sync_wait_on_address` or `__ulock_wait`).
///
/// Known limits on macOS:
/// - "owner" means the process: a thread that exits holding the lock, in a process that
///   lives on, is not detected (Linux hands the lock over at thread exit);
/// - an owner that dies after taking the word and before its record names that word (a few
///   instructions, and at a process's first lock one `proc_pidinfo` call for its unique id) is
///   told by its pid alone: if the pid goes to a new process before a waiter looks, lockers
///   wait until that process ends;
/// - the record keeps the low 32 bits of the unique id: a dead owner whose pid was reused by
///   a process whose id has the same low 32 bits (2^32 process creations in between, at the
///   least) is taken for alive; and a word value comes back after 8192 acquisitions (13 bits
///   of generation), so a taker that read the word, stalled through exactly a multiple of 8192
///   acquisitions, and finds the same pid in it (a reuse by another locker) takes a live
///   owner's lock;
/// - a sandbox that refuses `proc_pidinfo` for the owner leaves it "alive" while its pid
///   exists (`kill(pid, 0)`).
///
/// Layout (32 bytes, `#[repr(C)]`, little-endian `u32`s): magic `"shkM"`, version | kind << 16
/// (kind 0: Linux, 2: macOS), `word` (Linux: the PI futex, owner tid | `FUTEX_WAITERS` |
/// `FUTEX_OWNER_DIED`; macOS: owner pid (bits 0..=16, 0 when free) | generation (bits 17..=29,
/// kept when free) | `0x8000_0000` waiters), `owner_thread` (macOS; zero on Linux), `state` (0
/// consistent, 1 owner died and not repaired yet, 2 not recoverable), `recoveries` (how many
/// times a dead owner was detected), `owner_word` and `owner_uniqueid` (macOS: the owner record;
/// zero on Linux). See [`layout::MutexLayout`](super::layout::MutexLayout).
///
/// ```
/// use shmkit::{AnonShared, sync::{Locked, Mutex}};
/// let seg = AnonShared::new(4096)?;
/// let m = Mutex::init(&seg, 0)?;
/// match m.lock()? {
///     Locked::Acquired(_guard) => { /* use the data; unlocked when the guard drops */ }
///     Locked::OwnerDied(guard) => {
///         // The last owner died inside: repair the data, then say so.
///         guard.mark_consistent()?;
///     }
/// }
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Mutex<'a> {
    word: &'a AtomicU32,
    state: &'a AtomicU32,
    recoveries: &'a AtomicU32,
    #[cfg(target_os = "macos")]
    record: OwnerRecord<'a>,
    map: &'a Mapping,
}

/// macOS: who holds the word, written by the owner after it took the word (`owner` last, with
/// Release), and left in place when it lets go: a record whose `owner` is not the word's pid
/// and generation is an earlier owner's, and is not read.
#[cfg(target_os = "macos")]
struct OwnerRecord<'a> {
    thread: &'a AtomicU32,
    /// The word as the owner took it (pid | generation).
    owner: &'a AtomicU32,
    /// The owner's unique process id, low 32 bits (0: unknown).
    uniqueid: &'a AtomicU32,
}

/// What `lock` got.
#[must_use = "an OwnerDied lock must be repaired and marked consistent"]
pub enum Locked<'m, 'a> {
    /// The lock, from an owner that unlocked it.
    Acquired(MutexGuard<'m, 'a>),
    /// The lock, from an owner that died holding it: the protected data may be half-updated.
    /// Repair it and call [`MutexGuard::mark_consistent`]; unlocking without doing so makes the
    /// mutex not recoverable for everyone.
    OwnerDied(MutexGuard<'m, 'a>),
}

impl<'m, 'a> Locked<'m, 'a> {
    /// The guard, whichever way it was obtained.
    pub fn guard(self) -> MutexGuard<'m, 'a> {
        match self {
            Locked::Acquired(g) | Locked::OwnerDied(g) => g,
        }
    }

    /// Whether the previous owner died holding the lock.
    pub fn owner_died(&self) -> bool {
        matches!(self, Locked::OwnerDied(_))
    }
}

/// Holds the lock; unlocks when dropped.
///
/// A guard is not `Send`: a PI futex is owned by a thread (its id is in the lock word), and
/// only that thread may unlock it. A guard dropped in a `fork` child (a copy of the parent's
/// stack) does not unlock: the lock belongs to the parent's thread.
///
/// ```compile_fail
/// fn is_send<T: Send>(_: T) {}
/// let seg = shmkit::AnonShared::new(4096).unwrap();
/// let m = shmkit::sync::Mutex::init(&seg, 0).unwrap();
/// is_send(m.lock().unwrap().guard());
/// ```
pub struct MutexGuard<'m, 'a> {
    mutex: &'m Mutex<'a>,
    /// The word as this lock took it, without flag bits: the tid on Linux, pid | generation on
    /// macOS. Unlocking hands it back only if the word still says so.
    held: u32,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl<'a> Mutex<'a> {
    /// Bytes a mutex occupies.
    pub const SIZE: usize = 32;

    /// Builds an unlocked, consistent mutex at `offset` (a multiple of 8) of `map`, overwriting
    /// what was there. Do this once, before other processes open it.
    ///
    /// # Errors
    /// [`ErrorKind::Misaligned`] unless `offset` is a multiple of 8, [`ErrorKind::OutOfBounds`]
    /// if the block does not fit, [`ErrorKind::ReadOnly`] on a read-only mapping, and the errors
    /// of [`Mapping::check`].
    pub fn init(map: &'a Mapping, offset: usize) -> Result<Self> {
        let b = Block::<8>::build(map, offset, "mutex", MAGIC, KIND, &[])?;
        Ok(Self::from_block(map, &b))
    }

    /// The mutex another process built at `offset`; fails with [`ErrorKind::BadLayout`] if
    /// there is none.
    ///
    /// # Errors
    /// As [`Mutex::init`]; [`ErrorKind::BadLayout`] if no block of this kind and layout version
    /// is at `offset`.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let (b, kind) = Block::<8>::open(map, offset, "mutex", MAGIC)?;
        if kind != KIND {
            return Err(Error::new(
                ErrorKind::BadLayout,
                "mutex",
                map.object(),
                format!(
                    "the mutex at offset {offset} has lock word kind {kind}; this shmkit on this \
                     OS uses kind {KIND} (0: Linux PI futex, 1: macOS owner pid of earlier \
                     shmkits, 2: macOS owner pid and generation)"
                ),
            ));
        }
        Ok(Self::from_block(map, &b))
    }

    fn from_block(map: &'a Mapping, b: &Block<'a, 8>) -> Self {
        Mutex {
            word: b.words[2],
            state: b.words[4],
            recoveries: b.words[5],
            #[cfg(target_os = "macos")]
            record: OwnerRecord {
                thread: b.words[3],
                owner: b.words[6],
                uniqueid: b.words[7],
            },
            map,
        }
    }

    /// Takes the lock, sleeping as long as it takes. Fails with
    /// [`ErrorKind::NotRecoverable`] once an owner's death went unrepaired, and with
    /// [`ErrorKind::Deadlock`] if this thread holds it already.
    ///
    /// # Errors
    /// [`ErrorKind::NotRecoverable`], [`ErrorKind::Deadlock`], the OS error of `FUTEX_LOCK_PI` for
    /// a lock word a peer corrupted, and the errors of [`Mapping::check`].
    #[inline]
    pub fn lock(&self) -> Result<Locked<'_, 'a>> {
        // The fast path of `lock_until`, written out again: sharing it through a helper that
        // returns a nested Result made the uncontended lock 1.8x slower (benches/sync.rs).
        self.map.check_state_for("mutex lock")?;
        self.not_recoverable_check()?;
        let me = me();
        if let Some(held) = lock_fast(self.word, me) {
            return self.acquired(held);
        }
        self.lock_contended(me, None)?
            .ok_or_else(|| unreachable_timeout(self.map))
    }

    /// Takes the lock if it is free now, or if its owner is dead.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<Option<Locked<'_, 'a>>> {
        // A deadline of now asks FUTEX_TRYLOCK_PI when the word is taken, which tells a
        // dead owner from a live one.
        self.lock_until(Some(Instant::now()))
    }

    /// Takes the lock, sleeping at most `timeout`; `Ok(None)` if it did not come in time.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<Locked<'_, 'a>>> {
        self.lock_until(super::deadline(timeout))
    }

    /// Takes the lock, sleeping until `deadline` at the latest (`None`: forever).
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    #[inline]
    pub fn lock_until(&self, deadline: Option<Instant>) -> Result<Option<Locked<'_, 'a>>> {
        self.map.check_state_for("mutex lock")?;
        self.not_recoverable_check()?;
        let me = me();
        if let Some(held) = lock_fast(self.word, me) {
            return self.acquired(held).map(Some);
        }
        self.lock_contended(me, deadline)
    }

    #[cfg(target_os = "linux")]
    #[cold]
    fn lock_contended(&self, me: u32, deadline: Option<Instant>) -> Result<Option<Locked<'_, 'a>>> {
        loop {
            let cur = self.word.load(Ordering::Relaxed);
            if cur & TID_MASK == me {
                return Err(Error::new(
                    ErrorKind::Deadlock,
                    "mutex lock",
                    self.map.object(),
                    "this thread holds the lock already",
                ));
            }
            match futex::lock_pi(self.word, deadline) {
                PiLock::Acquired => return self.acquired_slow(me, true).map(Some),
                PiLock::TimedOut => return Ok(None),
                PiLock::Recheck => {
                    self.map.check_state_for("mutex lock")?;
                    self.not_recoverable_check()?;
                }
                PiLock::OwnerGone => {
                    // The word names a dead thread and no waiter was queued when it died.
                    // Take it over, keeping WAITERS if a waiter set it since, so our unlock
                    // goes through the kernel and wakes it.
                    let cur = self.word.load(Ordering::Relaxed);
                    if cur & TID_MASK != 0
                        && self
                            .word
                            .compare_exchange(
                                cur,
                                me | (cur & WAITERS),
                                Ordering::Acquire,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                    {
                        return self.acquired_slow(me, false).map(Some);
                    }
                    // Someone else took it over first, or it was released: try again.
                    if self
                        .word
                        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return self.acquired(me).map(Some);
                    }
                }
                PiLock::Failed(e) => {
                    self.map.check_state_for("mutex lock")?;
                    return Err(Error::os("futex lock_pi", self.map.object(), e).with_hint(
                        "the lock word is inconsistent: a peer wrote something that is not a \
                         thread id there, or the users are in different pid namespaces",
                    ));
                }
            }
        }
    }

    /// After the uncontended CAS: the previous owner unlocked (the word was free).
    #[inline]
    fn acquired(&self, held: u32) -> Result<Locked<'_, 'a>> {
        let guard = self.guard(held);
        // The word may have been a private zero page that the SIGBUS guard put in place of a
        // truncated object: then we "own" nothing that anyone else sees.
        self.map.check_state_for("mutex lock")?;
        match self.state.load(Ordering::Acquire) {
            CONSISTENT => Ok(Locked::Acquired(guard)),
            _ => self.acquired_after_trouble(guard, false),
        }
    }

    #[inline]
    fn guard(&self, held: u32) -> MutexGuard<'_, 'a> {
        #[cfg(target_os = "macos")]
        self.record.write(held);
        MutexGuard {
            mutex: self,
            held,
            _not_send: std::marker::PhantomData,
        }
    }

    /// After the kernel gave us the lock (`from_kernel`: a death shows as `FUTEX_OWNER_DIED`
    /// in the word), or after we took over a dead owner's word.
    fn acquired_slow(&self, held: u32, from_kernel: bool) -> Result<Locked<'_, 'a>> {
        let guard = self.guard(held);
        self.map.check_state_for("mutex lock")?;
        self.acquired_after_trouble(guard, !from_kernel)
    }

    #[cold]
    fn acquired_after_trouble<'m>(
        &'m self,
        guard: MutexGuard<'m, 'a>,
        died: bool,
    ) -> Result<Locked<'m, 'a>> {
        // The kernel (or a robust-list C peer) may have set OWNER_DIED; we own the word now,
        // so clearing it races only with the kernel setting WAITERS, which fetch_and keeps.
        let died_bit = self.word.fetch_and(!OWNER_DIED, Ordering::Relaxed) & OWNER_DIED != 0;
        match self.state.load(Ordering::Acquire) {
            NOT_RECOVERABLE => {
                // Became unrecoverable while we waited. Unlock without touching the state.
                drop(guard);
                Err(self.not_recoverable())
            }
            INCONSISTENT => Ok(Locked::OwnerDied(guard)),
            _ if died || died_bit => {
                self.state.store(INCONSISTENT, Ordering::Release);
                self.recoveries.fetch_add(1, Ordering::Relaxed);
                Ok(Locked::OwnerDied(guard))
            }
            _ => Ok(Locked::Acquired(guard)),
        }
    }

    #[inline]
    fn not_recoverable_check(&self) -> Result<()> {
        if self.state.load(Ordering::Acquire) == NOT_RECOVERABLE {
            return Err(self.not_recoverable());
        }
        Ok(())
    }

    #[cold]
    fn not_recoverable(&self) -> Error {
        Error::new(
            ErrorKind::NotRecoverable,
            "mutex lock",
            self.map.object(),
            "an owner died holding this mutex and the next owner unlocked it without marking \
             it consistent",
        )
        .with_hint("the data it protects cannot be trusted: rebuild it and the mutex (Mutex::init)")
    }

    /// Whether a death went unrepaired (every lock now fails).
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn is_not_recoverable(&self) -> Result<bool> {
        self.map.touch("mutex state", || {
            self.state.load(Ordering::Acquire) == NOT_RECOVERABLE
        })
    }

    /// How many times a locker found that the previous owner had died.
    ///
    /// # Errors
    /// The errors of [`Mapping::check`].
    pub fn recoveries(&self) -> Result<u32> {
        self.map.touch("mutex recoveries", || {
            self.recoveries.load(Ordering::Relaxed)
        })
    }

    #[inline]
    fn unlock(&self, held: u32) {
        // Only while the word is still ours: on macOS a peer may have taken it over (believing
        // us dead), and the state is then its to repair or give up. (Linux's kernel never
        // hands a live owner's lock to another.) Best effort: a taker can still come between
        // this load and the store below; that is a live owner taken over, which only the
        // generation's wrap-around allows (see the known limits), and its `mark_consistent`
        // writes the state again.
        #[cfg(target_os = "macos")]
        let ours = self.word.load(Ordering::Relaxed) & OWNER_MASK == held;
        #[cfg(target_os = "linux")]
        let ours = true;
        if ours && self.state.load(Ordering::Relaxed) == INCONSISTENT {
            self.state.store(NOT_RECOVERABLE, Ordering::Release);
        }
        // Release pairs with the Acquire of the next `lock`.
        if self
            .word
            .compare_exchange(held, free_word(held), Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            unlock_contended(self.word, held);
        }
    }
}

/// The uncontended lock: one CAS, no system call, from a free word with nobody asleep; the word
/// taken (without flag bits) if it worked. Acquire pairs with the Release of `unlock`, so the
/// previous owner's writes to the protected data are visible.
#[cfg(target_os = "linux")]
#[inline(always)]
fn lock_fast(word: &AtomicU32, me: u32) -> Option<u32> {
    word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| me)
}

/// The free word that unlocking `held` leaves: 0 on Linux (what a PI futex needs).
#[cfg(target_os = "linux")]
#[inline(always)]
fn free_word(_held: u32) -> u32 {
    0
}

/// Who took the lock, from the word it took: the thread on Linux.
#[cfg(target_os = "linux")]
#[inline(always)]
fn taker(held: u32) -> u32 {
    held
}

/// WAITERS is set: the kernel hands the lock to the highest-priority waiter.
///
/// `FUTEX_UNLOCK_PI` fails for the owner only if a peer overwrote the word while we held the
/// lock (`EPERM`: it no longer names us; `EINVAL`: it disagrees with the kernel's record).
/// Giving up there would leave the waiters the kernel queued asleep until their deadlines, or
/// forever: so the word is put back to what it must be (our id, `WAITERS`) and the unlock
/// retried. A peer that keeps scribbling can defeat that (after 100 tries we stop); waiters
/// then wake at their deadlines, as they would for any other corruption of the word.
#[cfg(target_os = "linux")]
#[cold]
fn unlock_contended(word: &AtomicU32, held: u32) {
    for _ in 0..100 {
        match futex::unlock_pi(word) {
            Err(rustix::io::Errno::PERM | rustix::io::Errno::INVAL) => {
                let cur = word.load(Ordering::Relaxed);
                let _ = word.compare_exchange(
                    cur,
                    held | WAITERS | (cur & OWNER_DIED),
                    Ordering::Release,
                    Ordering::Relaxed,
                );
            }
            // Done, or the page is gone (truncated), or something no retry mends.
            _ => return,
        }
    }
}

#[cold]
fn unreachable_timeout(map: &Mapping) -> Error {
    Error::new(
        ErrorKind::TimedOut,
        "mutex lock",
        map.object(),
        "a wait without deadline timed out",
    )
}

impl<'m, 'a> MutexGuard<'m, 'a> {
    /// After an owner's death: the data is repaired, later lockers get a normal lock. Fails
    /// in a fork child (the lock is the parent thread's) and on an unusable mapping.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] in a `fork` child; the errors of [`Mapping::check`].
    pub fn mark_consistent(&self) -> Result<()> {
        let map = self.mutex.map;
        if me() != taker(self.held) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "mutex mark_consistent",
                map.object(),
                "this guard was made by the thread of the parent process before a fork; the \
                 lock is not held here",
            ));
        }
        map.touch("mutex mark_consistent", || {
            self.mutex.state.store(CONSISTENT, Ordering::Release)
        })
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &'m Mutex<'a> {
        self.mutex
    }

    /// Releases the lock without running the destructor path twice; what dropping does.
    pub fn unlock(self) {}
}

impl Drop for MutexGuard<'_, '_> {
    #[inline]
    fn drop(&mut self) {
        // Only the thread that locked may unlock. The guard is !Send, so another thread here
        // means a fork child running on a copy of the locker's stack: the lock is the parent
        // thread's, and unlocking it would let a second locker in while it still holds it.
        if me() == taker(self.held) {
            self.mutex.unlock(self.held);
        }
    }
}

impl std::fmt::Debug for Mutex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.map.check().is_err() {
            return f.write_str("Mutex { unusable mapping }");
        }
        let word = self.word.load(Ordering::Relaxed);
        let mut d = f.debug_struct("Mutex");
        #[cfg(target_os = "linux")]
        d.field("owner_tid", &(word & TID_MASK));
        #[cfg(target_os = "macos")]
        d.field("owner_pid", &(word & PID_MASK))
            .field("generation", &((word & GEN_MASK) / GEN_ONE));
        d.field("state", &self.state.load(Ordering::Relaxed))
            .field("recoveries", &self.recoveries().ok())
            .finish()
    }
}

// ---- macOS: the word's generation, the owner record and the contended paths ----
//
// Why the orderings suffice (the word and the record are the only shared state here):
//
// - Data. Every unlock is a Release RMW of the word, every acquisition an Acquire RMW (the
//   fast CAS, the contended CAS, the take-over CAS). The WAITERS CAS and the OWNER_DIED
//   `fetch_and` are RMWs too, so they continue the unlock's release sequence: whoever
//   acquires synchronizes with the last unlock, and sees the protected data as it left it.
//
// - One owner. The word changes from free to taken only by a CAS that expects the free word it
//   read, and from taken to taken only by a take-over CAS that expects the taken word it read;
//   both install `me | next generation`. Every acquisition thus writes a word whose generation
//   differs from the one it replaced, and unlocking keeps the generation in the free word: a
//   word value recurs only after 2^13 acquisitions. A taker that read `P | g` (P dead) and
//   lost the race fails its CAS whatever happened since, even if pid P went to a process that
//   took the lock (its word is `P | g'`, g' != g), unless exactly a multiple of 8192
//   acquisitions happened in between and the last of them was P's.
//
// - The record is matched to the word by value, and read whole. The owner writes it as a
//   seqlock whose sequence is `owner` (`OwnerRecord::write`: 0, Release fence, `thread` and
//   `uniqueid`, then `owner` = the word it took, Release); a waiter reads `owner`, the fields
//   and `owner` again (`OwnerRecord::read`), and uses the fields only if both reads agree: they
//   are then the fields written with that `owner`, never the next owner's fields beside an
//   earlier owner's `owner` (which would make a live owner look dead, and with the word's
//   wrap-around let a waiter take a live owner's lock). It trusts the record only if
//   `owner == w & OWNER_MASK` for the word `w` it read: the acquisition that installed `w`
//   wrote it (an earlier acquisition had another generation). A record written later, by a
//   later acquisition, comes after the word changed, and then the waiter's CAS on `w` fails
//   whatever it concluded. Records are not cleared at unlock: a stale one names an old
//   generation, and is ignored.

#[cfg(target_os = "macos")]
#[inline(always)]
fn lock_fast(word: &AtomicU32, me: u32) -> Option<u32> {
    // Relaxed: only the expected value for the CAS, which alone synchronizes (Acquire).
    let cur = word.load(Ordering::Relaxed);
    if cur & !GEN_MASK != 0 {
        // Taken, or free with sleepers: the contended path takes it keeping WAITERS, so
        // that our unlock wakes them.
        return None;
    }
    let held = next_owner(cur, me);
    word.compare_exchange(cur, held, Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| held)
}

/// The word an acquisition by `me` installs in place of `cur` (free, or a dead owner's):
/// `me` with the generation after `cur`'s, without flag bits. No overflow: `cur & GEN_MASK` is
/// at most `0x3ffe_0000`, and the mask drops the carry out of bit 29.
#[cfg(target_os = "macos")]
#[inline(always)]
fn next_owner(cur: u32, me: u32) -> u32 {
    me | ((cur & GEN_MASK).wrapping_add(GEN_ONE) & GEN_MASK)
}

/// The free word that unlocking `held` leaves: its generation, so the next acquisition's differs.
#[cfg(target_os = "macos")]
#[inline(always)]
fn free_word(held: u32) -> u32 {
    held & GEN_MASK
}

/// Who took the lock, from the word it took: the process on macOS.
#[cfg(target_os = "macos")]
#[inline(always)]
fn taker(held: u32) -> u32 {
    held & PID_MASK
}

#[cfg(target_os = "macos")]
impl OwnerRecord<'_> {
    /// After taking the word `held`: a seqlock write, `owner` being the sequence. `owner` to
    /// 0 (a record being written, which names no word), a Release fence so that no reader who
    /// sees the new `thread`/`uniqueid` can then read the old `owner` (the fence orders the 0
    /// before them), the fields, then `owner = held` with Release (a reader that reads `held`
    /// there reads these fields too).
    #[inline]
    fn write(&self, held: u32) {
        let id = my_uniqueid(taker(held));
        self.owner.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        self.thread.store(thread_tag(), Ordering::Relaxed);
        self.uniqueid.store(id, Ordering::Relaxed);
        self.owner.store(held, Ordering::Release);
    }

    /// The record as one unit, as one acquisition wrote it, or `None` while one is being
    /// written. The seqlock read: `owner` with Acquire (pairs with the
    /// final Release of `write`, so the fields are at least that write's), the fields, an
    /// Acquire fence (pairs with `write`'s Release fence: had a later write's fields been read,
    /// its `owner = 0` is seen below), `owner` again. Equal and non-zero: the fields are the
    /// ones written with that `owner`. Without this, the fields of the next owner could be
    /// read beside an earlier owner's `owner`, and a live owner judged dead.
    #[inline]
    fn read(&self) -> Option<Record> {
        let owner = self.owner.load(Ordering::Acquire);
        let uniqueid = self.uniqueid.load(Ordering::Relaxed);
        let thread = self.thread.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        (owner != 0 && self.owner.load(Ordering::Relaxed) == owner).then_some(Record {
            owner,
            uniqueid,
            thread,
        })
    }
}

/// An owner record as [`OwnerRecord::read`] gives it: the fields of one write.
#[cfg(target_os = "macos")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    /// The word its acquisition took (pid | generation).
    owner: u32,
    /// Its process's unique id, low 32 bits (0: unknown).
    uniqueid: u32,
    /// Its thread.
    thread: u32,
}

/// This thread in the record (`pthread_threadid_np`, 32 bits, never 0, which means none).
#[cfg(target_os = "macos")]
fn thread_tag() -> u32 {
    crate::platform::thread_id().max(1)
}

/// A unique process id as the record keeps it: its low 32 bits, never 0 (unknown). The kernel
/// hands out one id per process created (`++nextuniqueid` at fork), so two processes with the
/// same pid and the same 32 bits here have at least 2^32 process creations between them.
#[cfg(target_os = "macos")]
fn uniqueid_word(id: u64) -> u32 {
    (id as u32).max(1)
}

/// This process's unique id as the record keeps it, cached with the pid it is for (a fork
/// child has another pid, and looks its own up): one `proc_pidinfo` call per process, made by
/// its first lock, between taking the word and writing the record. An id that cannot be had (a
/// sandbox refusing the call) is cached too, as 0, which waiters read as "no id to compare":
/// it is asked for again only every 1024 locks.
#[cfg(target_os = "macos")]
fn my_uniqueid(me: u32) -> u32 {
    use std::sync::atomic::AtomicU64;
    /// Bit 63 says the entry is filled; bits 32..=62 the pid; bits 0..=31 the id (0: unknown).
    const FILLED: u64 = 1 << 63;
    static CACHE: AtomicU64 = AtomicU64::new(0);
    /// Locks since the id was found unknown: it is asked for again every 1024 of them (a
    /// refusal may have been passing).
    static UNKNOWN_FOR: AtomicU32 = AtomicU32::new(0);
    let c = CACHE.load(Ordering::Relaxed);
    if c & FILLED != 0
        && (c >> 32) & 0x7fff_ffff == u64::from(me)
        && (c as u32 != 0 || UNKNOWN_FOR.fetch_add(1, Ordering::Relaxed) % 1024 != 1023)
    {
        return c as u32;
    }
    let id = match crate::platform::process_state(me as i32) {
        crate::platform::ProcState::Running(id) => uniqueid_word(id),
        _ => 0,
    };
    CACHE.store(
        FILLED | u64::from(me & 0x7fff_ffff) << 32 | u64::from(id),
        Ordering::Relaxed,
    );
    id
}

/// Whether the owner of the taken word `cur` is dead, reading the record beside it.
#[cfg(target_os = "macos")]
fn owner_dead(cur: u32, record: &OwnerRecord<'_>) -> bool {
    let owner = cur & PID_MASK;
    // Past PID_MAX: a pid a peer scribbled, which names nobody.
    if owner > PID_MAX {
        return true;
    }
    // The record as one acquisition wrote it (a seqlock read, see `OwnerRecord::read`).
    let record = record.read();
    match crate::platform::process_state(owner as i32) {
        crate::platform::ProcState::Gone => true,
        // The record is this owner's only if it names this very word (pid and generation);
        // then another unique id means the pid was reused, by whichever user's process.
        crate::platform::ProcState::Running(id) => record.is_some_and(|r| {
            r.owner == cur & OWNER_MASK && r.uniqueid != 0 && uniqueid_word(id) != r.uniqueid
        }),
        crate::platform::ProcState::Unknown => false,
    }
}

#[cfg(target_os = "macos")]
impl<'a> Mutex<'a> {
    /// The word is taken: sleep on it (marking WAITERS, so that the unlock wakes us), checking
    /// every [`OWNER_POLL`] that its owner lives, and take it over from a dead one.
    #[cold]
    fn lock_contended(&self, me: u32, deadline: Option<Instant>) -> Result<Option<Locked<'_, 'a>>> {
        loop {
            // Relaxed: the expected value of the CASes below, which synchronize themselves;
            // the record is matched to it by value (see the orderings above).
            let cur = self.word.load(Ordering::Relaxed);
            let owner = cur & PID_MASK;
            if owner == 0 {
                // Free (maybe with WAITERS): take it, setting WAITERS, since others may sleep.
                let held = next_owner(cur, me);
                if self
                    .word
                    .compare_exchange(cur, held | WAITERS, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return self.acquired(held).map(Some);
                }
                continue;
            }
            if owner == me && self.held_by_this_thread(cur) {
                return Err(Error::new(
                    ErrorKind::Deadlock,
                    "mutex lock",
                    self.map.object(),
                    "this thread holds the lock already",
                ));
            }
            if owner_dead(cur, &self.record) {
                // Take it over. The CAS on the whole word, generation included, makes one
                // taker win per death, and fails for a stale `cur` even if the dead owner's
                // pid has taken the lock since.
                let held = next_owner(cur, me);
                if self
                    .word
                    .compare_exchange(
                        cur,
                        held | (cur & WAITERS),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return self.acquired_slow(held, false).map(Some);
                }
                continue;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(None);
            }
            if cur & WAITERS == 0
                && self
                    .word
                    .compare_exchange(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let wake_at = deadline.map_or(now + OWNER_POLL, |d| d.min(now + OWNER_POLL));
            futex::wait(self.word, cur | WAITERS, Some(wake_at));
            self.map.check_state_for("mutex lock")?;
            self.not_recoverable_check()?;
        }
    }

    /// Whether this thread holds the taken word `cur`, whose pid is ours: the record, read
    /// whole (`OwnerRecord::read`), names `cur` and this thread. If another thread of this
    /// process took the word and wrote its record, its `thread` is the one read, never ours
    /// (older, from when we held it) beside its `owner`.
    fn held_by_this_thread(&self, cur: u32) -> bool {
        self.record
            .read()
            .is_some_and(|r| r.owner == cur & OWNER_MASK && r.thread == thread_tag())
    }
}

/// macOS: WAITERS is set (or a peer wrote the word): release it and wake a sleeper, which
/// takes it with WAITERS set. A word that names another acquisition (a peer took it over,
/// believing us dead, or scribbled) is left alone.
#[cfg(target_os = "macos")]
#[cold]
fn unlock_contended(word: &AtomicU32, held: u32) {
    let mut cur = word.load(Ordering::Relaxed);
    while cur & OWNER_MASK == held {
        match word.compare_exchange(cur, free_word(held), Ordering::Release, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    futex::wake(word, 1);
}

#[cfg(all(test, target_os = "macos"))]
mod macos_tests {
    use super::*;

    /// The seqlock: a record being written (`owner` 0) names nobody, so its live owner is not
    /// judged by it; a whole record with another unique id is; and the right one keeps it.
    #[test]
    fn a_record_being_written_names_nobody_and_only_a_whole_one_is_judged() {
        let seg = crate::AnonShared::new(4096).unwrap();
        let m = Mutex::init(&seg, 0).unwrap();
        let g = match m.lock().unwrap() {
            Locked::Acquired(g) => g,
            Locked::OwnerDied(_) => panic!("a new mutex had a dead owner"),
        };
        let cur = m.word.load(Ordering::SeqCst);
        let id = m.record.uniqueid.load(Ordering::SeqCst);
        assert_ne!(id, 0, "no unique id recorded");
        assert_eq!(
            m.record.read(),
            Some(Record {
                owner: cur & OWNER_MASK,
                uniqueid: id,
                thread: thread_tag(),
            })
        );
        assert!(!owner_dead(cur, &m.record), "a live owner judged dead");
        // Another id, whole: the pid was reused, as far as the record says.
        m.record
            .uniqueid
            .store(id.wrapping_add(1).max(1), Ordering::SeqCst);
        assert!(
            owner_dead(cur, &m.record),
            "the record's id was not compared"
        );
        // The same, but mid-write: nobody is named, and the live pid stands.
        m.record.owner.store(0, Ordering::SeqCst);
        assert_eq!(m.record.read(), None);
        assert!(
            !owner_dead(cur, &m.record),
            "a half-written record was believed"
        );
        // A record that names another acquisition is not this owner's.
        m.record
            .owner
            .store((cur & OWNER_MASK) ^ GEN_ONE, Ordering::SeqCst);
        assert!(!owner_dead(cur, &m.record), "an older record was believed");
        m.record.owner.store(cur & OWNER_MASK, Ordering::SeqCst);
        m.record.uniqueid.store(id, Ordering::SeqCst);
        drop(g);
        assert_eq!(m.word.load(Ordering::SeqCst) & PID_MASK, 0, "not unlocked");
    }

    /// A pid that named a process and names none now (until pids wrap around).
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("/usr/bin/true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    /// The ABA of a take-over: a waiter read the word of a dead owner with pid D and was
    /// preempted; another waiter took the lock over and unlocked it; the process that got pid
    /// D locked it (the fast path, as it runs there). The stale waiter's compare-and-swap must
    /// fail: with the pid alone in the word, it found its value again and took the lock from
    /// its live owner.
    #[test]
    fn a_stale_take_over_fails_once_the_dead_owners_pid_locked_again() {
        let seg = crate::AnonShared::new(4096).unwrap();
        let m = Mutex::init(&seg, 0).unwrap();
        let d = dead_pid();
        m.word.store(d | (5 * GEN_ONE), Ordering::SeqCst);
        let stale = m.word.load(Ordering::SeqCst);
        match m.lock().unwrap() {
            Locked::OwnerDied(g) => g.mark_consistent().unwrap(),
            Locked::Acquired(_) => panic!("the dead owner went unnoticed"),
        }
        let relocked = lock_fast(m.word, d).expect("the lock was left free");
        assert_eq!(relocked & PID_MASK, d);
        assert_ne!(relocked, stale);
        assert!(m
            .word
            .compare_exchange(
                stale,
                next_owner(stale, me()),
                Ordering::Acquire,
                Ordering::Relaxed
            )
            .is_err());
    }

    /// Generations wrap around without overflow, and only after 2^13 acquisitions.
    #[test]
    fn generations_wrap_after_8192_acquisitions() {
        let mut w = 0;
        for i in 1..=8192u32 {
            w = next_owner(w, 7);
            assert_eq!(w & PID_MASK, 7);
            assert_eq!(w & !OWNER_MASK, 0);
            assert_eq!(w == 7, i == 8192, "{i}: {w:#x}");
        }
        assert_eq!(next_owner(u32::MAX, 1), 1);
    }
}
