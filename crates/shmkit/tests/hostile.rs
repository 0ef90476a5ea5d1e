//! A hostile peer: a second process writes random and adversarial words (0, 0xFFFFFFFF, its
//! own thread id, ours, "busy" and "ready" markers, random bits) over every synchronization
//! block of a segment while this process uses them. Nothing may panic or crash, and every
//! timed wait must end within its timeout plus a small bound. `SHMKIT_HOSTILE_SECS` sets the
//! duration (10 s by default).
// Linux only: what this file tests (memfds, futex-based sync, /proc, util-linux tools, the
// OS queues and semaphores) is absent from the crate elsewhere.
#![cfg(target_os = "linux")]

mod common;
use common::{cue, say, unique, Cleanup, Peer};
use shmkit::sync::{init_once, Condvar, Event, Mutex, Semaphore, WakePolicy};
use shmkit::PosixShm;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const SEM_ANY: usize = 0;
const SEM_FIFO: usize = 32;
const MUTEX: usize = 64;
const CONDVAR: usize = 96;
const EVENT: usize = 112;
const INIT: usize = 128;
const END: usize = 144;

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    assert_eq!(role, "scribble");
    let seg = PosixShm::open(&args[0]).unwrap();
    let victim: u32 = args[1].parse().unwrap();
    let me = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let pid = std::process::id();
    let special = [
        0,
        u32::MAX,
        me,
        victim,
        pid,
        me | 0x8000_0000,
        victim | 0x4000_0000,
        0x8000_0000,
        0x8000_0001,
        0x7fff_ffff,
        1,
        u32::from_le_bytes(*b"shkR"),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(pid);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    say("ready");
    assert_eq!(cue(), "go");
    // Until the test closes our stdin (a reader thread tells us).
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _ = cue();
            done.store(true, Ordering::Relaxed);
        });
        let mut n = 0u64;
        while !done.load(Ordering::Relaxed) {
            let r = next();
            let word = (r as usize % (END / 4)) * 4;
            let value = if r >> 40 & 1 == 0 {
                special[(r >> 20) as usize % special.len()]
            } else {
                (r >> 32) as u32
            };
            seg.atomic_u32(word).unwrap().store(value, Ordering::SeqCst);
            n += 1;
            if n % 64 == 0 {
                // Give the victim time to act on what we wrote.
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    });
    say("stopped");
}

#[test]
fn a_scribbling_peer_causes_no_panic_crash_or_late_wait() {
    let secs: u64 = std::env::var("SHMKIT_HOSTILE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let name = format!("/{}", unique("shmkit-test-hostile"));
    let _c = Cleanup(|| {
        let _ = PosixShm::unlink_name(&name);
    });
    let seg = PosixShm::create(&name, 4096).unwrap();
    let any = Semaphore::init(&seg, SEM_ANY, 1, WakePolicy::Any).unwrap();
    let fifo = Semaphore::init(&seg, SEM_FIFO, 1, WakePolicy::Fifo).unwrap();
    let m = Mutex::init(&seg, MUTEX).unwrap();
    let cv = Condvar::init(&seg, CONDVAR).unwrap();
    let ev = Event::init(&seg, EVENT).unwrap();
    let me = rustix::thread::gettid().as_raw_nonzero().get().to_string();
    let mut p = Peer::spawn("scribble", &[&name, &me]);
    assert_eq!(p.recv(), "ready");
    p.send("go");

    let timeout = Duration::from_millis(10);
    let bound = timeout + Duration::from_millis(300);
    let mut worst = Duration::ZERO;
    let mut counts = [0u64; 3]; // ok, err, timed out
    let mut late = Vec::new();
    let t0 = Instant::now();
    let mut i = 0u64;
    while t0.elapsed() < Duration::from_secs(secs) {
        i += 1;
        let t = Instant::now();
        let (what, outcome): (&str, Result<bool, shmkit::Error>) = match i % 12 {
            0 => ("sem any wait", any.wait_timeout(timeout)),
            1 => ("sem any post", any.post().map(|()| true)),
            2 => ("sem fifo wait", fifo.wait_timeout(timeout)),
            3 => (
                "sem fifo post/try",
                fifo.post().and_then(|()| fifo.try_wait()),
            ),
            4 => ("mutex lock", m.lock_timeout(timeout).map(|l| l.is_some())),
            5 => (
                "condvar wait",
                match m.lock_timeout(timeout) {
                    Ok(Some(l)) => cv.wait_timeout(l.guard(), timeout).map(|(_, t)| t),
                    Ok(None) => Ok(false),
                    Err(e) => Err(e),
                },
            ),
            6 => ("condvar notify", cv.notify_all().map(|()| true)),
            7 => ("event wait", ev.wait_timeout(timeout)),
            8 => (
                "event set/reset",
                ev.set().and_then(|()| ev.reset()).map(|()| true),
            ),
            9 => (
                "init_once",
                init_once(&seg, INIT, *b"host", 1, timeout, |_| Ok(())).map(|_| true),
            ),
            10 => ("mutex try_lock", m.try_lock().map(|l| l.is_some())),
            _ => (
                "open blocks",
                Semaphore::open(&seg, SEM_ANY)
                    .and_then(|_| Mutex::open(&seg, MUTEX))
                    .and_then(|_| Condvar::open(&seg, CONDVAR))
                    .and_then(|_| Event::open(&seg, EVENT))
                    .map(|_| true),
            ),
        };
        let took = t.elapsed();
        worst = worst.max(took);
        match outcome {
            Ok(true) => counts[0] += 1,
            Ok(false) => counts[2] += 1,
            Err(_) => counts[1] += 1,
        }
        if took > bound {
            late.push(format!("{what}: {took:?}"));
        }
    }
    p.stdin_close();
    assert_eq!(p.recv(), "stopped");
    p.finish();
    eprintln!(
        "{i} operations in {secs} s: {} ok, {} errors, {} timed out; slowest {worst:?}",
        counts[0], counts[1], counts[2]
    );
    assert!(late.is_empty(), "waits past {bound:?}: {late:?}");
}
