//! Regressions of the soundness review, in one process: timeouts, hostile words in shared
//! memory, panicking initializers and racing copies must neither hang, panic nor be undefined
//! behaviour. Each test failed before its fix. (The tests that need a fork or a peer process
//! are in `soundness.rs`.)
// Linux and macOS; POSIX named semaphores, and the tests that write Linux thread ids or
// PI futex bits into a mutex, are Linux only.

mod common;
#[cfg(target_os = "linux")]
use common::unique;
#[cfg(target_os = "linux")]
use shmkit::posix_sem::NamedSemaphore;
#[cfg(target_os = "linux")]
use shmkit::sync::Condvar;
use shmkit::sync::Mutex;
use shmkit::sync::{init_once, InitOutcome, Semaphore, WakePolicy};
use shmkit::AnonShared;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
#[test]
fn a_scribbled_lock_word_does_not_strand_a_waiter_at_unlock() {
    let seg = AnonShared::new(4096).unwrap();
    let m = Mutex::init(&seg, 0).unwrap();
    let word = seg.atomic_u32(8).unwrap(); // magic, version, then the lock word
    std::thread::scope(|s| {
        let g = m.lock().unwrap().guard();
        let waiter = s.spawn(|| {
            let t = Instant::now();
            let got = m.lock_timeout(Duration::from_secs(10)).unwrap().is_some();
            (got, t.elapsed())
        });
        let t = Instant::now();
        while word.load(Ordering::SeqCst) & rustix::thread::futex::WAITERS == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the waiter never queued"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // A hostile peer wipes the word while we hold the lock and a waiter sleeps.
        word.store(0, Ordering::SeqCst);
        let unlocked = Instant::now();
        drop(g);
        let (got, _) = waiter.join().unwrap();
        assert!(got);
        // Handed over at unlock, not when the waiter's own slice or deadline ran out.
        assert!(
            unlocked.elapsed() < Duration::from_millis(300),
            "the waiter got the lock {:?} after unlock",
            unlocked.elapsed()
        );
    });
}

// ---- 5. Condvar::wait_timeout ends in time whatever the mutex word holds ----

#[cfg(target_os = "linux")]
#[test]
fn condvar_wait_timeout_ends_in_time_whatever_a_peer_writes_into_the_mutex() {
    let seg = AnonShared::new(4096).unwrap();
    let want = Duration::from_millis(50);
    let bound = want + Duration::from_millis(400);
    // A live thread that is not the waiter, for its id.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        tx.send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
            .unwrap();
        let _ = stop_rx.recv_timeout(Duration::from_secs(30));
    });
    let live_tid = rx.recv().unwrap();
    for value in [0u32, 0xffff_ffff, live_tid, 0x8000_0000, u32::MAX >> 2, 1] {
        let m = Mutex::init(&seg, 0).unwrap();
        let cv = Condvar::init(&seg, 64).unwrap();
        let word = seg.atomic_u32(8).unwrap();
        let cv_waiters = seg.atomic_u32(64 + 12).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let g = m.lock().unwrap().guard();
                let t = Instant::now();
                let r = cv
                    .wait_timeout(g, want)
                    .map(|(l, timed_out)| (l.owner_died(), timed_out));
                (t.elapsed(), r.map_err(|e| e.kind()))
            });
            let t = Instant::now();
            while cv_waiters.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(5) {
                std::thread::yield_now();
            }
            word.store(value, Ordering::SeqCst);
            let (took, r) = waiter.join().unwrap();
            assert!(
                took < bound,
                "word {value:#x}: wait_timeout took {took:?} ({r:?})"
            );
        });
    }
    let _ = stop_tx.send(());
    other.join().unwrap();
}

// ---- 6. and 7. Truncation: a fork child keeps the guard; sync primitives report it ----

#[test]
fn huge_timeouts_wait_instead_of_panicking_failing_or_returning_at_once() {
    #[cfg(target_os = "linux")]
    let name = format!("/{}", unique("shmkit-test-maxwait"));
    #[cfg(target_os = "linux")]
    let sem = NamedSemaphore::create(&name, 0).unwrap();
    let seg = AnonShared::new(4096).unwrap();
    let s = Semaphore::init(&seg, 0, 0, WakePolicy::Any).unwrap();
    let m = Mutex::init(&seg, 64).unwrap();
    let huge = [Duration::MAX, Duration::from_secs(i64::MAX as u64)];
    for t in huge {
        std::thread::scope(|sc| {
            #[cfg(target_os = "linux")]
            let named = sc.spawn(|| sem.wait_timeout(t).map_err(|e| e.kind()));
            let ours = sc.spawn(|| s.wait_timeout(t).map_err(|e| e.kind()));
            std::thread::sleep(Duration::from_millis(100));
            assert!(!ours.is_finished(), "{t:?} returned at once");
            s.post().unwrap();
            assert_eq!(ours.join().unwrap(), Ok(true));
            #[cfg(target_os = "linux")]
            {
                assert!(!named.is_finished(), "{t:?} returned at once (named)");
                sem.post().unwrap();
                assert_eq!(named.join().unwrap(), Ok(true));
            }
            // A contended lock with that timeout.
            {
                let g = m.lock().unwrap().guard();
                let locker = sc.spawn(|| {
                    m.lock_timeout(t)
                        .map(|l| l.map(|l| l.owner_died()))
                        .map_err(|e| e.to_string())
                });
                std::thread::sleep(Duration::from_millis(100));
                assert!(
                    !locker.is_finished(),
                    "lock_timeout({t:?}) returned at once"
                );
                drop(g);
                assert_eq!(locker.join().unwrap(), Ok(Some(false)));
            }
        });
    }
}

// ---- 11. and 12. Hostile words; a panicking initializer ----

#[test]
fn hostile_words_do_not_panic_in_debug_builds() {
    let seg = AnonShared::new(4096).unwrap();
    for policy in [WakePolicy::Any, WakePolicy::Fifo] {
        let s = Semaphore::init(&seg, 0, 0, policy).unwrap();
        for (value, waiters, grants) in [
            (u32::MAX, 0, 0),
            (0, 1, u32::MAX),
            (u32::MAX, u32::MAX, u32::MAX),
        ] {
            seg.atomic_u32(8).unwrap().store(value, Ordering::SeqCst);
            seg.atomic_u32(12).unwrap().store(waiters, Ordering::SeqCst);
            seg.atomic_u32(16).unwrap().store(grants, Ordering::SeqCst);
            // No panic, whatever the words; a full value is the documented overflow.
            let r = s.post();
            if value == u32::MAX && (policy == WakePolicy::Any || waiters == 0) {
                assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EOVERFLOW));
            }
            let _ = s.value();
            let _ = s.try_wait();
            let _ = s.wait_timeout(Duration::from_millis(1));
        }
    }
    // init_once with pid words that name no process (negative as i32, or past pid_max).
    for pid in [0x8000_0000u32, u32::MAX, (1 << 22) + 1] {
        let seg = AnonShared::new(4096).unwrap();
        seg.atomic_u32(0)
            .unwrap()
            .store(0x8000_0001, Ordering::SeqCst); // BUSY, generation 1
        seg.atomic_u32(4).unwrap().store(pid, Ordering::SeqCst);
        let t = Instant::now();
        let r = init_once(&seg, 0, *b"test", 1, Duration::from_secs(5), |_| Ok(())).unwrap();
        assert!(matches!(r, InitOutcome::TookOver { .. }), "{pid:#x}: {r:?}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{pid:#x}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn a_panicking_initializer_lets_the_next_caller_take_over_at_once() {
    let seg = AnonShared::new(4096).unwrap();
    let r = std::panic::catch_unwind(|| {
        init_once(&seg, 0, *b"test", 1, Duration::from_secs(30), |_| {
            panic!("initializer fails")
        })
    });
    assert!(r.is_err());
    let t = Instant::now();
    let r = init_once(&seg, 0, *b"test", 1, Duration::from_secs(30), |_| Ok(())).unwrap();
    assert_eq!(r, InitOutcome::Initialized);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

// ---- 13. A truncated /dev/shm/sem.NAME ----

#[test]
fn concurrent_reads_and_writes_of_one_range_are_not_data_races() {
    let seg = AnonShared::new(4096).unwrap();
    std::thread::scope(|s| {
        for t in 0..2u8 {
            let seg = &seg;
            s.spawn(move || {
                let mut buf = [0u8; 100];
                for i in 0..2_000u32 {
                    if i % 2 == 0 {
                        seg.write_at(3, &[t; 100]).unwrap();
                    } else {
                        seg.read_at(3, &mut buf).unwrap();
                    }
                    let _ = seg.view::<u64>(8).unwrap().load().unwrap();
                }
            });
        }
    });
}

#[test]
fn error_is_one_pointer_wide() {
    assert_eq!(
        std::mem::size_of::<shmkit::Error>(),
        std::mem::size_of::<usize>()
    );
}

// ---- macOS: the lock word's generation; the owner record's unique process id ----

/// The macOS word: pid in bits 0..=16, generation in 17..=29, WAITERS in 31 (`sync::Mutex`).
#[cfg(target_os = "macos")]
mod mac_word {
    pub const PID_MASK: u32 = 0x0001_ffff;
    pub const GEN_ONE: u32 = 1 << 17;
    pub const GEN_MASK: u32 = 0x3ffe_0000;
    pub const OWNER_MASK: u32 = PID_MASK | GEN_MASK;
    pub const WAITERS: u32 = 0x8000_0000;
    pub const PID_MAX: u32 = 99_999;

    /// The generation after that of `w`.
    pub fn next_gen(w: u32) -> u32 {
        (w & GEN_MASK).wrapping_add(GEN_ONE) & GEN_MASK
    }

    /// A pid that named a process and names none now (until pids wrap around).
    pub fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("/usr/bin/true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }
}

/// Every acquisition (uncontended, contended, take-over) writes a word with the next
/// generation, and unlocking leaves that generation in the free word: the take-over's
/// compare-and-swap cannot mistake a later acquisition by a reused pid for the word it read.
/// (Before the generation, every acquisition by one process wrote the same word.)
#[cfg(target_os = "macos")]
#[test]
fn macos_every_acquisition_writes_a_new_word_and_unlocking_keeps_its_generation() {
    use mac_word::*;
    let seg = AnonShared::new(4096).unwrap();
    let m = Mutex::init(&seg, 0).unwrap();
    let word = seg.atomic_u32(8).unwrap();
    let me = std::process::id();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let g = m.lock().unwrap().guard();
        seen.push(word.load(Ordering::SeqCst) & OWNER_MASK);
        drop(g);
        let last = *seen.last().unwrap();
        assert_eq!(word.load(Ordering::SeqCst), last & GEN_MASK, "{last:#x}");
    }
    // Contended: another thread sleeps on the word (WAITERS) and gets it at the unlock.
    let waited = std::thread::scope(|s| {
        let g = m.lock().unwrap().guard();
        seen.push(word.load(Ordering::SeqCst) & OWNER_MASK);
        let waiter = s.spawn(|| {
            let g = m.lock().unwrap().guard();
            let w = word.load(Ordering::SeqCst);
            drop(g);
            w
        });
        let t = Instant::now();
        while word.load(Ordering::SeqCst) & WAITERS == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the waiter never slept"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(g);
        waiter.join().unwrap()
    });
    seen.push(waited & OWNER_MASK);
    // A take-over from a dead owner.
    word.store(dead_pid() | (7 * GEN_ONE), Ordering::SeqCst);
    match m.lock().unwrap() {
        shmkit::sync::Locked::OwnerDied(g) => {
            assert_eq!(word.load(Ordering::SeqCst) & OWNER_MASK, me | (8 * GEN_ONE));
            g.mark_consistent().unwrap();
        }
        shmkit::sync::Locked::Acquired(_) => panic!("the dead owner went unnoticed"),
    }
    for (i, w) in seen.iter().enumerate() {
        assert_eq!(w & PID_MASK, me, "{seen:x?}");
        assert_eq!(w & GEN_MASK, (i as u32 + 1) * GEN_ONE, "{seen:x?}");
    }
}

/// A word that names a dead pid, or no pid at all (0xFFFFFFFF's pid bits are past PID_MAX),
/// with any generation (the last one wraps around to 0) and flag bits, is taken over by
/// exactly one of several lockers, without a panic (debug builds check overflows) or a hang;
/// free words with any generation and flags are simply taken.
#[cfg(target_os = "macos")]
#[test]
fn macos_a_dead_owners_word_is_taken_over_exactly_once_whatever_its_bits() {
    use mac_word::*;
    use shmkit::sync::Locked;
    let seg = AnonShared::new(4096).unwrap();
    let word = seg.atomic_u32(8).unwrap();
    let me = std::process::id();
    let dead = dead_pid();
    for value in [
        dead,
        dead | GEN_MASK,
        dead | (3 * GEN_ONE) | WAITERS,
        0xffff_ffff,
        0x7fff_ffff,
        (PID_MAX + 1) | GEN_ONE,
        PID_MASK,
    ] {
        let m = Mutex::init(&seg, 0).unwrap();
        word.store(value, Ordering::SeqCst);
        let lockers = 4;
        let barrier = std::sync::Barrier::new(lockers);
        let got: Vec<_> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..lockers)
                .map(|_| {
                    s.spawn(|| {
                        let r = m.lock_timeout(Duration::from_millis(300));
                        let w = word.load(Ordering::SeqCst);
                        // Every locker answers before the winner lets go.
                        barrier.wait();
                        match r {
                            Ok(Some(Locked::OwnerDied(g))) => {
                                g.mark_consistent().unwrap();
                                Some((true, w))
                            }
                            Ok(Some(Locked::Acquired(_))) => Some((false, w)),
                            Ok(None) => None,
                            Err(e) => panic!("{value:#x}: {e}"),
                        }
                    })
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(got.len(), 1, "{value:#x}: {got:x?}");
        let (died, w) = got[0];
        assert!(died, "{value:#x}");
        assert_eq!(w & OWNER_MASK, me | next_gen(value), "{value:#x}: {w:#x}");
        assert_eq!(m.recoveries().unwrap(), 1, "{value:#x}");
    }
    for value in [
        0,
        GEN_MASK,
        WAITERS | GEN_MASK,
        0x4000_0000,
        0xc000_0000 | GEN_ONE,
    ] {
        let m = Mutex::init(&seg, 0).unwrap();
        word.store(value, Ordering::SeqCst);
        let l = m.lock_timeout(Duration::from_secs(2)).unwrap();
        let l = l.unwrap_or_else(|| panic!("{value:#x}: a free word was not taken"));
        assert!(!l.owner_died(), "{value:#x}");
        let w = word.load(Ordering::SeqCst);
        assert_eq!(w & OWNER_MASK, me | next_gen(value), "{value:#x}: {w:#x}");
    }
}

/// The owner record names a live pid of another user (launchd, pid 1, is root's) with a unique
/// id that is not that process's: the pid was reused, the owner is dead. Before the record
/// kept the unique id of `PROC_PIDUNIQIDENTIFIERINFO`, another user's process could not be
/// examined (`PROC_PIDTBSDINFO` wants the same user) and lockers waited forever. A record that
/// is not the word's (an older generation: the owner had not written its own yet) says nothing,
/// and a live pid is waited for.
#[cfg(target_os = "macos")]
#[test]
fn macos_a_live_pid_whose_unique_id_is_not_the_records_is_a_dead_owner() {
    use mac_word::*;
    let seg = AnonShared::new(4096).unwrap();
    let m = Mutex::init(&seg, 0).unwrap();
    let (word, rec_owner, rec_id) = (
        seg.atomic_u32(8).unwrap(),
        seg.atomic_u32(24).unwrap(),
        seg.atomic_u32(28).unwrap(),
    );
    let held = 1 | (5 * GEN_ONE);
    word.store(held, Ordering::SeqCst);
    // launchd's unique id is small (it is the first process forked); this one is no process's
    // that could hold pid 1.
    rec_id.store(0xdead_beef, Ordering::SeqCst);
    rec_owner.store(1 | (4 * GEN_ONE), Ordering::SeqCst);
    assert!(
        m.lock_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none(),
        "a live owner whose record is not written yet was taken for dead"
    );
    rec_owner.store(held, Ordering::SeqCst);
    let t = Instant::now();
    let l = m
        .lock_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("the owner named by a reused pid was taken for alive");
    assert!(l.owner_died());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let w = word.load(Ordering::SeqCst);
    assert_eq!(w & OWNER_MASK, std::process::id() | (6 * GEN_ONE), "{w:#x}");
}
