//! Synchronization inside shared memory, between real processes: this test binary re-run as
//! peers that open the same POSIX segment by name.
// Linux and macOS (the PI word's owner tid is checked on Linux only).

mod common;
use common::{cue, say, unique, Peer};
use shmkit::sync::{init_once, Condvar, Event, InitOutcome, Locked, Mutex, Semaphore, WakePolicy};
use shmkit::{ErrorKind, PosixShm};
use std::time::{Duration, Instant};

// Where things live in the test segments.
const MUTEX: usize = 0;
const COUNTER: usize = 64;
const SEM_A: usize = 128;
const SEM_B: usize = 192;
const CONDVAR: usize = 256;
const EVENT: usize = 320;
const INIT: usize = 384;

fn segment() -> (String, PosixShm) {
    // Short: macOS takes POSIX names of at most 31 bytes.
    let name = format!("/{}", unique("shk-sync"));
    (name.clone(), PosixShm::create(&name, 4096).unwrap())
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    let seg = PosixShm::open(&args[0]).unwrap();
    match role.as_str() {
        "count" => {
            let m = Mutex::open(&seg, MUTEX).unwrap();
            let n: u64 = args[1].parse().unwrap();
            say("ready");
            assert_eq!(cue(), "go");
            for _ in 0..n {
                let g = m.lock().unwrap().guard();
                // A plain read-modify-write: only the mutex keeps increments from being lost.
                let v: u64 = seg.read(COUNTER).unwrap();
                seg.write(COUNTER, &(v + 1)).unwrap();
                drop(g);
            }
            say("done");
        }
        "hold" => {
            let m = Mutex::open(&seg, MUTEX).unwrap();
            let g = m.lock().unwrap().guard();
            seg.write(COUNTER, &u64::MAX).unwrap(); // half-way through an update
            say("holding");
            cue(); // killed here
            drop(g);
        }
        "ping" => {
            let (a, b) = (
                Semaphore::open(&seg, SEM_A).unwrap(),
                Semaphore::open(&seg, SEM_B).unwrap(),
            );
            let n: u64 = args[1].parse().unwrap();
            for i in 0..n {
                a.wait().unwrap();
                assert_eq!(seg.read::<u64>(COUNTER).unwrap(), 2 * i + 1);
                seg.write(COUNTER, &(2 * i + 2)).unwrap();
                b.post().unwrap();
            }
            say(format!("backend {}", shmkit::sync::wait_backend()));
            say("done");
        }
        "queue" => {
            let s = Semaphore::open(&seg, SEM_A).unwrap();
            s.wait().unwrap();
            let turn = seg.atomic_u32(COUNTER).unwrap();
            say(format!(
                "{} {}",
                args[1],
                turn.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ));
        }
        "condvar" => {
            let m = Mutex::open(&seg, MUTEX).unwrap();
            let cv = Condvar::open(&seg, CONDVAR).unwrap();
            let mut g = m.lock().unwrap().guard();
            say("waiting");
            while seg.read::<u64>(COUNTER).unwrap() != 42 {
                g = cv.wait(g).unwrap().guard();
            }
            say("saw 42");
        }
        "event" => {
            let e = Event::open(&seg, EVENT).unwrap();
            say("waiting");
            e.wait().unwrap();
            say("set");
        }
        "init-and-die" => {
            let r = init_once(&seg, INIT, *b"test", 1, Duration::from_secs(10), |m| {
                m.write(COUNTER, &1u64)?;
                say("initializing");
                std::thread::sleep(Duration::from_secs(600)); // killed here
                Ok(())
            });
            panic!("the initializer was not killed: {r:?}");
        }
        "init" => {
            let r = init_once(&seg, INIT, *b"test", 1, Duration::from_secs(10), |m| {
                m.write(COUNTER, &7u64)
            })
            .unwrap();
            say(format!("{r:?} {}", seg.read::<u64>(COUNTER).unwrap()));
        }
        _ => panic!("unknown role {role}"),
    }
}

#[test]
fn processes_incrementing_under_the_mutex_lose_nothing() {
    let (name, seg) = segment();
    Mutex::init(&seg, MUTEX).unwrap();
    let (procs, each) = (4, 5000u64);
    let mut peers: Vec<Peer> = (0..procs)
        .map(|_| Peer::spawn("count", &[&name, &each.to_string()]))
        .collect();
    for p in &mut peers {
        assert_eq!(p.recv(), "ready");
    }
    for p in &mut peers {
        p.send("go");
    }
    for mut p in peers {
        assert_eq!(p.recv(), "done");
        p.finish();
    }
    assert_eq!(seg.read::<u64>(COUNTER).unwrap(), procs as u64 * each);
    // Contended hand-offs through the kernel were clean ones, not deaths.
    let m = Mutex::open(&seg, MUTEX).unwrap();
    assert_eq!(
        (m.recoveries().unwrap(), m.is_not_recoverable().unwrap()),
        (0, false)
    );
}

#[test]
fn a_killed_owner_is_reported_to_the_next_locker_who_repairs() {
    let (name, seg) = segment();
    let m = Mutex::init(&seg, MUTEX).unwrap();
    let mut p = Peer::spawn("hold", &[&name]);
    assert_eq!(p.recv(), "holding");
    assert!(m.try_lock().unwrap().is_none(), "held by a live process");
    p.kill9();
    // Nobody was waiting when it died: the kernel says ESRCH (macOS: the owner record names a
    // process that is gone) and we take the word over.
    match m.lock().unwrap() {
        Locked::OwnerDied(g) => {
            assert_eq!(seg.read::<u64>(COUNTER).unwrap(), u64::MAX);
            seg.write(COUNTER, &0u64).unwrap(); // repaired
            g.mark_consistent().unwrap();
        }
        Locked::Acquired(_) => panic!("the owner's death went unnoticed"),
    }
    assert_eq!(m.recoveries().unwrap(), 1);
    assert!(
        !m.lock().unwrap().owner_died(),
        "repaired: a normal lock again"
    );
}

/// `p_uniqueid` of process `pid`, from `proc_pidinfo(PROC_PIDUNIQIDENTIFIERINFO = 17)` with
/// `struct proc_uniqidentifierinfo` (xnu `bsd/sys/proc_info.h`: a 16-byte uuid, then the id).
#[cfg(target_os = "macos")]
fn kernel_uniqueid(pid: i32) -> u64 {
    #[repr(C)]
    struct Info {
        uuid: [u8; 16],
        uniqueid: u64,
        puniqueid: u64,
        idversion: i32,
        orig_ppidversion: i32,
        reserve2: u64,
        reserve3: u64,
    }
    const _: () = assert!(std::mem::size_of::<Info>() == 56);
    // SAFETY: plain data, filled by proc_pidinfo.
    let mut info: Info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a writable buffer of the flavor's struct and its size.
    let r = unsafe { libc::proc_pidinfo(pid, 17, 0, (&raw mut info).cast(), 56) };
    assert_eq!(r, 56, "proc_pidinfo: {}", std::io::Error::last_os_error());
    info.uniqueid
}

/// macOS: a live owner is told from a process that got its pid by the unique process id in
/// its record; with that id changed, the owner is as good as dead, and is taken over at once.
#[cfg(target_os = "macos")]
#[test]
fn macos_an_owner_whose_unique_id_differs_from_its_record_is_taken_over() {
    use std::sync::atomic::Ordering;
    let (name, seg) = segment();
    let m = Mutex::init(&seg, MUTEX).unwrap();
    let mut p = Peer::spawn("hold", &[&name]);
    assert_eq!(p.recv(), "holding");
    let (word, rec_owner, rec_id) = (
        seg.atomic_u32(MUTEX + 8).unwrap(),
        seg.atomic_u32(MUTEX + 24).unwrap(),
        seg.atomic_u32(MUTEX + 28).unwrap(),
    );
    let w = word.load(Ordering::SeqCst);
    assert_eq!(w & 0x1_ffff, p.pid() as u32, "{w:#x}");
    assert_ne!(w & 0x3ffe_0000, 0, "no generation in the word {w:#x}");
    assert_eq!(rec_owner.load(Ordering::SeqCst), w & 0x3fff_ffff);
    let id = rec_id.load(Ordering::SeqCst);
    // The kernel's own word for the peer (`proc_pidinfo(PROC_PIDUNIQIDENTIFIERINFO)`, read
    // here independently of the library): the record holds its low 32 bits.
    assert_eq!(
        id,
        (kernel_uniqueid(p.pid()) as u32).max(1),
        "the record does not hold the owner's unique process id"
    );
    assert!(
        m.lock_timeout(Duration::from_millis(100))
            .unwrap()
            .is_none(),
        "a live owner whose record holds its unique id was taken for dead"
    );
    rec_id.store(id.wrapping_add(1).max(1), Ordering::SeqCst);
    let t = Instant::now();
    let l = m
        .lock_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("the record's unique id was not compared");
    assert!(l.owner_died());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(l);
    p.kill9();
}

#[test]
fn a_waiter_blocked_when_the_owner_dies_gets_the_lock_and_the_news() {
    let (name, seg) = segment();
    let m = Mutex::init(&seg, MUTEX).unwrap();
    let mut p = Peer::spawn("hold", &[&name]);
    assert_eq!(p.recv(), "holding");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let l = m.lock().unwrap();
            let died = l.owner_died();
            if let Locked::OwnerDied(g) = l {
                g.mark_consistent().unwrap();
            }
            died
        });
        // Let the waiter block (in FUTEX_LOCK_PI on Linux; it sets the waiters bit in the word).
        let word = seg.atomic_u32(MUTEX + 8).unwrap();
        let t = Instant::now();
        while word.load(std::sync::atomic::Ordering::SeqCst) & 0x8000_0000 == 0 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the waiter never blocked"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        p.kill9();
        assert!(
            waiter.join().unwrap(),
            "the kernel's hand-off hid the death"
        );
    });
}

#[test]
fn an_unrepaired_death_makes_the_mutex_not_recoverable() {
    let (name, seg) = segment();
    let m = Mutex::init(&seg, MUTEX).unwrap();
    let mut p = Peer::spawn("hold", &[&name]);
    assert_eq!(p.recv(), "holding");
    p.kill9();
    let l = m.lock().unwrap();
    assert!(l.owner_died());
    drop(l); // no mark_consistent
    assert!(m.is_not_recoverable().unwrap());
    let e = m.lock().err().expect("not recoverable");
    assert_eq!(e.kind(), ErrorKind::NotRecoverable);
    assert!(
        e.to_string().contains("without marking it consistent"),
        "{e}"
    );
    assert_eq!(
        m.try_lock().err().unwrap().kind(),
        ErrorKind::NotRecoverable
    );
    // A later owner that dies does not make it recoverable again; a rebuild does.
    let m = Mutex::init(&seg, MUTEX).unwrap();
    assert!(!m.lock().unwrap().owner_died());
}

#[test]
fn relocking_from_the_same_thread_is_a_deadlock_error_not_a_hang() {
    let (_name, seg) = segment();
    let m = Mutex::init(&seg, MUTEX).unwrap();
    let _g = m.lock().unwrap();
    assert_eq!(m.lock().err().unwrap().kind(), ErrorKind::Deadlock);
}

/// Ping-pong with a peer started with `env`; the wait call the peer used.
fn ping_pong(policy: WakePolicy, env: &[(&str, &str)]) -> String {
    let (name, seg) = segment();
    let a = Semaphore::init(&seg, SEM_A, 0, policy).unwrap();
    let b = Semaphore::init(&seg, SEM_B, 0, policy).unwrap();
    let n = 20_000u64;
    let p = Peer::spawn_env("ping", &[&name, &n.to_string()], env);
    for i in 0..n {
        seg.write(COUNTER, &(2 * i + 1)).unwrap();
        a.post().unwrap();
        b.wait().unwrap();
        assert_eq!(seg.read::<u64>(COUNTER).unwrap(), 2 * i + 2);
    }
    let mut p = p;
    let backend = p.recv();
    assert_eq!(p.recv(), "done");
    p.finish();
    assert_eq!((a.value().unwrap(), b.value().unwrap()), (0, 0));
    backend.strip_prefix("backend ").unwrap().to_string()
}

#[test]
fn semaphore_ping_pong_between_two_processes() {
    ping_pong(WakePolicy::Any, &[]);
}

#[test]
fn fifo_semaphore_ping_pong_between_two_processes() {
    ping_pong(WakePolicy::Fifo, &[]);
}

/// Both macOS wait paths, against this process's (`os_sync_wait_on_address` from macOS 14.4):
/// a peer left to choose, and a peer forced onto `__ulock_wait`, whose waits and wakes must
/// meet this process's on the same shared words.
#[cfg(target_os = "macos")]
#[test]
fn macos_semaphore_ping_pong_under_both_wait_paths() {
    let ours = shmkit::sync::wait_backend();
    for policy in [WakePolicy::Any, WakePolicy::Fifo] {
        // The peer gets this process's own setting (the ulock job of the workflow forces it).
        let own = std::env::var("SHMKIT_FORCE_ULOCK").unwrap_or_else(|_| "0".into());
        let chosen = ping_pong(policy, &[("SHMKIT_FORCE_ULOCK", own.as_str())]);
        assert_eq!(chosen, ours, "a peer on the same macOS picks the same call");
        let forced = ping_pong(policy, &[("SHMKIT_FORCE_ULOCK", "1")]);
        assert_eq!(forced, "__ulock_wait");
    }
    eprintln!("this process waits with {ours}");
}

/// The semaphore across a `fork` (an anonymous shared segment, the child inheriting the
/// parent's wait call), both ways.
#[cfg(target_os = "macos")]
#[test]
fn macos_semaphore_ping_pong_with_a_forked_child() {
    let seg = shmkit::AnonShared::new(4096).unwrap();
    let a = Semaphore::init(&seg, SEM_A, 0, WakePolicy::Any).unwrap();
    let b = Semaphore::init(&seg, SEM_B, 0, WakePolicy::Any).unwrap();
    let n = 2_000u32;
    // Resolved here, so the child does not look the calls up (dlsym, the environment) after a
    // fork of this multi-threaded process.
    let ours = shmkit::sync::wait_backend();
    // SAFETY: the child only waits and posts on the semaphores (atomics and the wait calls)
    // and `_exit`s, never returning into the test harness.
    match unsafe { libc::fork() } {
        0 => {
            let ok = (0..n).all(|_| a.wait().is_ok() && b.post().is_ok());
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
        pid => {
            for i in 0..n {
                a.post().unwrap();
                assert!(
                    b.wait_timeout(Duration::from_secs(10)).unwrap(),
                    "no answer to round {i}"
                );
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
            eprintln!("parent and forked child waited with {ours}");
        }
    }
}

// The order among sleepers is the kernel's: Linux queues futex waiters of equal priority in
// arrival order; on macOS that order is not verified yet (run it there with --ignored).
#[cfg_attr(
    target_os = "macos",
    ignore = "sleepers' wake order on macOS not verified yet"
)]
#[test]
fn fifo_wakes_sleepers_in_the_order_they_went_to_sleep() {
    let (name, seg) = segment();
    let s = Semaphore::init(&seg, SEM_A, 0, WakePolicy::Fifo).unwrap();
    let mut peers = Vec::new();
    for i in 0..4 {
        peers.push(Peer::spawn("queue", &[&name, &i.to_string()]));
        // Wait until this one sleeps before starting the next, so the arrival order is known.
        let t = Instant::now();
        while s.waiters().unwrap() != i + 1 {
            assert!(t.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(20)); // from `waiters` to the futex queue
    }
    for (i, p) in peers.iter_mut().enumerate() {
        s.post().unwrap();
        assert_eq!(p.recv(), format!("{i} {i}"), "woken out of order");
    }
    for p in peers {
        p.finish();
    }
}

#[test]
fn timed_waits_time_out_within_tolerance() {
    let (_name, seg) = segment();
    let s = Semaphore::init(&seg, SEM_A, 0, WakePolicy::Any).unwrap();
    let e = Event::init(&seg, EVENT).unwrap();
    let want = Duration::from_millis(100);
    // Generous upper bound: these machines are shared and noisy. Lateness is what matters:
    // never early.
    let check = |what: &str, took: Duration| {
        assert!(took >= want, "{what} returned early: {took:?}");
        assert!(
            took < want + Duration::from_secs(2),
            "{what} overslept: {took:?}"
        );
    };
    let t = Instant::now();
    assert!(!s.wait_timeout(want).unwrap());
    check("semaphore", t.elapsed());
    let t = Instant::now();
    assert!(!e.wait_timeout(want).unwrap());
    check("event", t.elapsed());
    {
        let m = Mutex::init(&seg, MUTEX).unwrap();
        let cv = Condvar::init(&seg, CONDVAR).unwrap();
        let g = m.lock().unwrap().guard();
        let t = Instant::now();
        let (l, timed_out) = cv.wait_timeout(g, want).unwrap();
        assert!(timed_out);
        check("condvar", t.elapsed());
        drop(l);
        // The mutex held by another thread of ours, which times out its lock.
        let g = m.lock().unwrap();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let t = Instant::now();
                assert!(m.lock_timeout(want).unwrap().is_none());
                check("mutex", t.elapsed());
            });
        });
        drop(g);
    }
    assert_eq!(s.waiters().unwrap(), 0);
}

#[test]
fn condvar_and_event_wake_another_process() {
    let (name, seg) = segment();
    let m = Mutex::init(&seg, MUTEX).unwrap();
    let cv = Condvar::init(&seg, CONDVAR).unwrap();
    let e = Event::init(&seg, EVENT).unwrap();
    let mut c = Peer::spawn("condvar", &[&name]);
    let mut v = Peer::spawn("event", &[&name]);
    assert_eq!(c.recv(), "waiting");
    assert_eq!(v.recv(), "waiting");
    {
        let _g = m.lock().unwrap();
        seg.write(COUNTER, &42u64).unwrap();
        cv.notify_all().unwrap();
    }
    e.set().unwrap();
    assert_eq!(c.recv(), "saw 42");
    assert_eq!(v.recv(), "set");
    c.finish();
    v.finish();
}

#[test]
fn an_initializer_killed_half_way_does_not_wedge_the_next_opener() {
    let (name, seg) = segment();
    let mut dying = Peer::spawn("init-and-die", &[&name]);
    assert_eq!(dying.recv(), "initializing");
    // One opener is already waiting when the initializer dies, one comes after.
    let mut waiting = Peer::spawn("init", &[&name]);
    std::thread::sleep(Duration::from_millis(100));
    let dead = dying.pid();
    dying.kill9();
    let t = Instant::now();
    let first = waiting.recv();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(first, format!("TookOver {{ from_pid: {dead} }} 7"));
    waiting.finish();
    let mut late = Peer::spawn("init", &[&name]);
    assert_eq!(late.recv(), "Opened 7");
    late.finish();
    // Another layout in the same place is refused, not misread.
    let e = init_once(&seg, INIT, *b"othr", 1, Duration::from_secs(1), |_| Ok(())).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadLayout);
    let e = init_once(&seg, INIT, *b"test", 2, Duration::from_secs(1), |_| Ok(())).unwrap_err();
    assert!(e.to_string().contains("version 1"), "{e}");
}

#[test]
fn an_event_wakes_another_process() {
    let (name, seg) = segment();
    let e = Event::init(&seg, EVENT).unwrap();
    let mut v = Peer::spawn("event", &[&name]);
    assert_eq!(v.recv(), "waiting");
    e.set().unwrap();
    assert_eq!(v.recv(), "set");
    v.finish();
}

#[test]
fn a_live_slow_initializer_makes_openers_time_out_not_hang() {
    let (_name, seg) = segment();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let seg = &seg;
        s.spawn(move || {
            init_once(seg, INIT, *b"slow", 1, Duration::from_secs(10), |_| {
                tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(600));
                Ok(())
            })
            .unwrap()
        });
        rx.recv().unwrap();
        let e = init_once(seg, INIT, *b"slow", 1, Duration::from_millis(100), |_| {
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        assert_eq!(
            init_once(seg, INIT, *b"slow", 1, Duration::from_secs(10), |_| Ok(())).unwrap(),
            InitOutcome::Opened
        );
    });
}

#[test]
fn the_repr_c_layouts_describe_what_is_in_memory() {
    use shmkit::sync::layout::SemaphoreLayout;
    let (_name, seg) = segment();
    let s = Semaphore::init(&seg, SEM_A, 5, WakePolicy::Fifo).unwrap();
    s.wait().unwrap();
    let raw: SemaphoreLayout = seg.read(SEM_A).unwrap();
    assert_eq!(raw.magic.to_le_bytes(), *b"shkS");
    assert_eq!(
        (raw.version, raw.value, raw.waiters, raw.grants),
        (1 | 1 << 16, 4, 0, 0)
    );
    #[cfg(target_os = "linux")]
    {
        use shmkit::sync::layout::MutexLayout;
        let m = Mutex::init(&seg, MUTEX).unwrap();
        let g = m.lock().unwrap();
        let raw: MutexLayout = seg.read(MUTEX).unwrap();
        assert_eq!(raw.magic.to_le_bytes(), *b"shkM");
        assert_eq!(
            raw.word,
            rustix::thread::gettid().as_raw_nonzero().get() as u32
        );
        drop(g);
        assert_eq!(seg.read::<MutexLayout>(MUTEX).unwrap().word, 0);
    }
    #[cfg(target_os = "macos")]
    {
        use shmkit::sync::layout::MutexLayout;
        let m = Mutex::init(&seg, MUTEX).unwrap();
        let g = m.lock().unwrap();
        let raw: MutexLayout = seg.read(MUTEX).unwrap();
        assert_eq!(raw.magic.to_le_bytes(), *b"shkM");
        assert_eq!(raw.version, 1 | 2 << 16);
        // The first acquisition: this pid, generation 1; the record names that word.
        assert_eq!(raw.word, std::process::id() | 1 << 17);
        assert_eq!(raw.owner_word, raw.word);
        assert_ne!(
            raw.owner_uniqueid, 0,
            "this process's unique id was not found"
        );
        assert_ne!(raw.owner_thread, 0);
        drop(g);
        // Free, the generation kept; the record left as it was.
        let after: MutexLayout = seg.read(MUTEX).unwrap();
        assert_eq!(after.word, 1 << 17);
        assert_eq!(
            (after.owner_word, after.owner_uniqueid),
            (raw.owner_word, raw.owner_uniqueid)
        );
    }
}

#[test]
fn blocks_check_their_layout_and_bounds() {
    let (_name, seg) = segment();
    assert_eq!(
        Semaphore::open(&seg, 0).unwrap_err().kind(),
        ErrorKind::BadLayout
    );
    assert_eq!(
        Event::open(&seg, 0).map(|_| ()).unwrap_err().kind(),
        ErrorKind::BadLayout
    );
    // An event is not a semaphore; a later layout version is refused.
    Event::init(&seg, 0).unwrap();
    let e = Semaphore::open(&seg, 0).unwrap_err();
    assert!(e.to_string().contains("expected"), "{e}");
    seg.atomic_u32(4)
        .unwrap()
        .store(2, std::sync::atomic::Ordering::SeqCst);
    assert!(Event::open(&seg, 0)
        .map(|_| ())
        .unwrap_err()
        .to_string()
        .contains("layout version 2"));
    assert_eq!(
        Semaphore::init(&seg, 4, 0, WakePolicy::Any)
            .unwrap_err()
            .kind(),
        ErrorKind::Misaligned
    );
    assert_eq!(
        Semaphore::init(&seg, 4072, 0, WakePolicy::Any)
            .unwrap_err()
            .kind(),
        ErrorKind::OutOfBounds
    );
    assert!(
        Semaphore::init(&seg, 4064, 0, WakePolicy::Any).is_ok(),
        "the last 32 bytes"
    );
}

#[test]
fn mutex_blocks_check_their_layout_and_bounds() {
    let (_name, seg) = segment();
    assert_eq!(
        Mutex::open(&seg, 0).unwrap_err().kind(),
        ErrorKind::BadLayout
    );
    Mutex::init(&seg, 0).unwrap();
    // A mutex is not a semaphore.
    let e = Semaphore::open(&seg, 0).unwrap_err();
    assert!(e.to_string().contains("expected"), "{e}");
    // A later layout version is refused.
    seg.atomic_u32(4)
        .unwrap()
        .store(2, std::sync::atomic::Ordering::SeqCst);
    assert!(Mutex::open(&seg, 0)
        .unwrap_err()
        .to_string()
        .contains("layout version 2"));
    // Kind 1, the macOS word of earlier shmkits (no generation; a start time in the record), is
    // opened by neither OS.
    seg.atomic_u32(4)
        .unwrap()
        .store(1 | 1 << 16, std::sync::atomic::Ordering::SeqCst);
    let e = Mutex::open(&seg, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadLayout);
    assert!(e.to_string().contains("lock word kind 1"), "{e}");
    assert_eq!(
        Mutex::init(&seg, 4).unwrap_err().kind(),
        ErrorKind::Misaligned
    );
    assert_eq!(
        Mutex::init(&seg, 4088).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        Event::init(&seg, 4088).map(|_| ()).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert!(Event::init(&seg, 4080).is_ok(), "the last 16 bytes");
}
