//! The sync benchmark's Linux body (futex-based primitives exist on Linux only).

#[path = "stats.rs"]
mod stats;
use stats::stats;

use shmkit::sync::{Mutex, Semaphore, WakePolicy};
use shmkit::{Mapping, PosixShm};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Instant;

const LOCKS: u64 = 2_000_000;
const TRIPS: u64 = 20_000;

// Offsets in the benchmark segment.
const OURS_A: usize = 0;
const OURS_B: usize = 64;
const RAW_A: usize = 128;
const RAW_B: usize = 192;
const GLIBC_A: usize = 256;
const GLIBC_B: usize = 320;
const MUTEX: usize = 512;
const PTHREAD: usize = 1024;
const ROBUST: usize = 1536;

#[derive(Clone, Copy, Debug)]
enum Pong {
    Ours,
    OursNoSpin,
    RawFutex,
    Glibc,
}

fn sem_t(map: &Mapping, off: usize) -> *mut libc::sem_t {
    assert!(off + std::mem::size_of::<libc::sem_t>() <= map.len());
    // SAFETY: in bounds (checked) and 8-aligned; the pointer is only passed to sem_* calls,
    // which treat the bytes as a process-shared sem_t that `setup` initialized.
    unsafe { map.as_ptr().add(off).cast() }
}

fn raw_wait(w: &AtomicU32) {
    // Sleep while the word is 0, then consume the token.
    while w.swap(0, SeqCst) == 0 {
        let _ = rustix::thread::futex::wait(w, rustix::thread::futex::Flags::empty(), 0, None);
    }
}

fn raw_post(w: &AtomicU32) {
    w.store(1, SeqCst);
    let _ = rustix::thread::futex::wake(w, rustix::thread::futex::Flags::empty(), 1);
}

/// One side of the ping-pong: waits on `a` and posts `b` (the responder), or the reverse.
fn run(map: &Mapping, how: Pong, trips: u64, responder: bool) {
    let (wait_at, post_at) = match (how, responder) {
        (Pong::Ours | Pong::OursNoSpin, false) => (OURS_B, OURS_A),
        (Pong::Ours | Pong::OursNoSpin, true) => (OURS_A, OURS_B),
        (Pong::RawFutex, false) => (RAW_B, RAW_A),
        (Pong::RawFutex, true) => (RAW_A, RAW_B),
        (Pong::Glibc, false) => (GLIBC_B, GLIBC_A),
        (Pong::Glibc, true) => (GLIBC_A, GLIBC_B),
    };
    match how {
        Pong::Ours | Pong::OursNoSpin => {
            let spin = if matches!(how, Pong::Ours) { 100 } else { 0 };
            let w = Semaphore::open(map, wait_at).unwrap().with_spin(spin);
            let p = Semaphore::open(map, post_at).unwrap().with_spin(spin);
            for _ in 0..trips {
                if responder {
                    w.wait().unwrap();
                    p.post().unwrap();
                } else {
                    p.post().unwrap();
                    w.wait().unwrap();
                }
            }
        }
        Pong::RawFutex => {
            let w = map.atomic_u32(wait_at).unwrap();
            let p = map.atomic_u32(post_at).unwrap();
            for _ in 0..trips {
                if responder {
                    raw_wait(w);
                    raw_post(p);
                } else {
                    raw_post(p);
                    raw_wait(w);
                }
            }
        }
        Pong::Glibc => {
            let (w, p) = (sem_t(map, wait_at), sem_t(map, post_at));
            for _ in 0..trips {
                // SAFETY: both are initialized process-shared semaphores in the segment.
                unsafe {
                    if responder {
                        while libc::sem_wait(w) != 0 {}
                        libc::sem_post(p);
                    } else {
                        libc::sem_post(p);
                        while libc::sem_wait(w) != 0 {}
                    }
                }
            }
        }
    }
}

fn setup(map: &Mapping) {
    Semaphore::init(map, OURS_A, 0, WakePolicy::Any).unwrap();
    Semaphore::init(map, OURS_B, 0, WakePolicy::Any).unwrap();
    map.atomic_u32(RAW_A).unwrap().store(0, SeqCst);
    map.atomic_u32(RAW_B).unwrap().store(0, SeqCst);
    // SAFETY: in-bounds, aligned sem_t storage in a MAP_SHARED segment; pshared = 1.
    unsafe {
        assert_eq!(libc::sem_init(sem_t(map, GLIBC_A), 1, 0), 0);
        assert_eq!(libc::sem_init(sem_t(map, GLIBC_B), 1, 0), 0);
    }
    Mutex::init(map, MUTEX).unwrap();
    for (off, robust) in [(PTHREAD, false), (ROBUST, true)] {
        // SAFETY: in-bounds, aligned pthread_mutex_t storage in a MAP_SHARED segment,
        // initialized once with a process-shared attribute.
        unsafe {
            let m: *mut libc::pthread_mutex_t = map.as_ptr().add(off).cast();
            let mut a: libc::pthread_mutexattr_t = std::mem::zeroed();
            libc::pthread_mutexattr_init(&mut a);
            libc::pthread_mutexattr_setpshared(&mut a, libc::PTHREAD_PROCESS_SHARED);
            if robust {
                libc::pthread_mutexattr_setrobust(&mut a, libc::PTHREAD_MUTEX_ROBUST);
            }
            assert_eq!(libc::pthread_mutex_init(m, &a), 0);
        }
    }
}

fn line(label: &str, xs: &mut [f64], unit: &str) -> f64 {
    let (m, lo, hi) = stats(xs);
    println!("  {label:<44} {m:9.1} {unit}  (p10 {lo:.1}, p90 {hi:.1})");
    m
}

pub fn main() {
    if let Ok(spec) = std::env::var("SHMKIT_BENCH_PEER") {
        let mut it = spec.split(':');
        let (name, how, trips) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let seg = PosixShm::open(name).unwrap();
        let how = match how {
            "Ours" => Pong::Ours,
            "OursNoSpin" => Pong::OursNoSpin,
            "RawFutex" => Pong::RawFutex,
            _ => Pong::Glibc,
        };
        run(&seg, how, trips.parse().unwrap(), true);
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let name = format!("/shmkit-bench-sync-{}", std::process::id());
    let seg = PosixShm::create(&name, 4096).unwrap();
    setup(&seg);

    // Uncontended lock + unlock, ns per pair.
    let ours = Mutex::open(&seg, MUTEX).unwrap();
    // SAFETY: initialized by `setup`; used only through pthread calls.
    let pthread: *mut libc::pthread_mutex_t = unsafe { seg.as_ptr().add(PTHREAD).cast() };
    // SAFETY: as above.
    let robust: *mut libc::pthread_mutex_t = unsafe { seg.as_ptr().add(ROBUST).cast() };
    let (mut o, mut g, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for k in 0..3 {
            let which = (k + round) % 3; // rotate who goes first
            let t = Instant::now();
            match which {
                0 => {
                    for _ in 0..LOCKS {
                        // As for glibc below: the lock is opaque to the optimizer, the guard is
                        // not (glibc's "guard" is nothing).
                        drop(std::hint::black_box(&ours).lock().unwrap());
                    }
                }
                1 => {
                    for _ in 0..LOCKS {
                        // SAFETY: an initialized process-shared mutex, locked and unlocked by
                        // this thread.
                        unsafe {
                            libc::pthread_mutex_lock(std::hint::black_box(pthread));
                            libc::pthread_mutex_unlock(pthread);
                        }
                    }
                }
                _ => {
                    for _ in 0..LOCKS {
                        // SAFETY: as above, robust.
                        unsafe {
                            libc::pthread_mutex_lock(std::hint::black_box(robust));
                            libc::pthread_mutex_unlock(robust);
                        }
                    }
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / LOCKS as f64;
            [&mut o, &mut g, &mut r][which].push(ns);
        }
        eprint!("\rlock/unlock rounds {}/{rounds}", round + 1);
    }
    eprintln!();

    // Ping-pong round trips, µs per round trip.
    let exe = std::env::current_exe().unwrap();
    let hows = [Pong::Ours, Pong::OursNoSpin, Pong::RawFutex, Pong::Glibc];
    let mut trips: [Vec<f64>; 4] = Default::default();
    for round in 0..rounds {
        for k in 0..4 {
            let which = (k + round) % 4;
            let how = hows[which];
            let mut cmd = Command::new(&exe);
            cmd.env("SHMKIT_BENCH_PEER", format!("{name}:{how:?}:{TRIPS}"));
            let peer = shmkit_peer::Peer::spawn(cmd).unwrap();
            // Warm up the peer's start-up out of the timing: the first trip is not timed.
            run(&seg, how, 1, false);
            let t = Instant::now();
            run(&seg, how, TRIPS - 1, false);
            trips[which].push(t.elapsed().as_nanos() as f64 / (TRIPS - 1) as f64 / 1000.0);
            assert!(peer.wait().unwrap().success());
        }
        eprint!("\rping-pong rounds {}/{rounds}", round + 1);
    }
    eprintln!();

    println!("\nSynchronization benchmark, {rounds} rounds, medians (p10, p90)");
    println!("uncontended lock + unlock ({LOCKS} pairs a round):");
    let mo = line("shmkit::sync::Mutex (PI futex, owner death)", &mut o, "ns");
    let mg = line("glibc pthread_mutex_t, process-shared", &mut g, "ns");
    let mr = line("glibc pthread_mutex_t, process-shared robust", &mut r, "ns");
    println!(
        "  ratio shmkit / glibc process-shared         {:.2}x   (target <= 1.0x)",
        mo / mg
    );
    println!(
        "  ratio shmkit / glibc robust                 {:.2}x",
        mo / mr
    );
    println!("cross-process ping-pong round trip ({TRIPS} a round, two processes):");
    let po = line(
        "shmkit::sync::Semaphore (default: polls 100)",
        &mut trips[0],
        "us",
    );
    let pn = line("shmkit::sync::Semaphore, with_spin(0)", &mut trips[1], "us");
    let pr = line("raw futex ping-pong (no polling)", &mut trips[2], "us");
    let pg = line("glibc sem_t, process-shared", &mut trips[3], "us");
    println!(
        "  ratio shmkit / raw futex                    {:.2}x   (target <= 1.1x)",
        po / pr
    );
    println!(
        "  ratio shmkit / glibc sem_t                  {:.2}x   (target <= 1.0x)",
        po / pg
    );
    println!(
        "  without polling: shmkit / raw futex         {:.2}x",
        pn / pr
    );
    println!(
        "  without polling: shmkit / glibc sem_t       {:.2}x",
        pn / pg
    );
}
