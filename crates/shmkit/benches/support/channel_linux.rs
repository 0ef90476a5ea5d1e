//! The channel benchmark's Linux body.

#[path = "stats.rs"]
mod stats;
use stats::stats;

use shmkit::channel::{spsc, Receiver, Sender, SpscConfig, Wait};
use shmkit::{Mapping, PosixShm};
use std::process::Command;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

const TRIPS: u64 = 200_000;
const SLEEPING_TRIPS: u64 = 20_000;
const SMALL: u64 = 2_000_000;
const BATCH: usize = 64;
const BIG: usize = 64 << 10;
const BIGS: u64 = 20_000;
/// The zero-copy round trip's message, and how many a round.
const HUGE: usize = 1 << 20;
const HUGES: u64 = 1_000;

/// The two channels (there and back) and the raw words, in one segment.
const CAPACITY: usize = 1 << 20;
const THERE: usize = 0;
const BACK: usize = 2 << 20;
const WORDS: usize = 4 << 20;
/// The raw words, each on its own 128-byte line.
const PING: usize = WORDS;
const PONG: usize = WORDS + 128;
/// Set by the peer once it holds its ends: the timing starts after.
const READY: usize = WORDS + 256;
/// The zero-copy channel (messages of 1 MiB), and the raw buffer the touch floor moves.
const ZC: usize = 8 << 20;
const ZC_CAPACITY: usize = 4 << 20;
const TOUCHED: usize = 16 << 20;
const SEGMENT: usize = TOUCHED + HUGE;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Test {
    CacheLine,
    Futex,
    Spin,
    Block,
    Small,
    Big,
    /// 1 MiB written by this side, read by the peer, then a word each way: the floor of a
    /// 1 MiB round trip with its payload touched.
    Touch,
    /// The same through the channel, in place: `reserve` and write, `recv_in_place` and
    /// read, an 8-byte answer.
    ZeroCopy,
}

const ALL: [Test; 8] = [
    Test::CacheLine,
    Test::Futex,
    Test::Spin,
    Test::Block,
    Test::Small,
    Test::Big,
    Test::Touch,
    Test::ZeroCopy,
];

/// Writes a byte in every 64 of `len` bytes at `p` (every cache line, once).
///
/// # Safety
/// `p..p + len` is mapped and writable (memory another process may read: volatile stores).
unsafe fn write_lines(p: *mut u8, len: usize, v: u8) {
    for i in (0..len).step_by(64) {
        // SAFETY: in bounds (the caller); a volatile store of one byte.
        unsafe { p.add(i).write_volatile(v) };
    }
}

/// Reads a byte in every 64 of `len` bytes at `p`.
///
/// # Safety
/// `p..p + len` is mapped and readable (volatile loads).
unsafe fn read_lines(p: *const u8, len: usize) -> u64 {
    let mut sum = 0u64;
    for i in (0..len).step_by(64) {
        // SAFETY: in bounds (the caller); a volatile load of one byte.
        sum += u64::from(unsafe { p.add(i).read_volatile() });
    }
    sum
}

fn config() -> SpscConfig {
    SpscConfig::new(CAPACITY).max_message(BIG)
}

fn zc_config() -> SpscConfig {
    SpscConfig::new(ZC_CAPACITY).max_message(HUGE)
}

fn words(map: &Mapping) -> (&AtomicU64, &AtomicU64) {
    (map.atomic_u64(PING).unwrap(), map.atomic_u64(PONG).unwrap())
}

fn futex_wait(w: &AtomicU32, expected: u32) {
    let _ = rustix::thread::futex::wait(w, rustix::thread::futex::Flags::empty(), expected, None);
}

fn futex_wake(w: &AtomicU32) {
    let _ = rustix::thread::futex::wake(w, rustix::thread::futex::Flags::empty(), 1);
}

fn ready(map: &Mapping) {
    map.atomic_u32(READY).unwrap().store(1, Ordering::Release);
}

/// Waits for the peer to be ready (its start-up is not timed).
fn wait_ready(map: &Mapping) {
    let w = map.atomic_u32(READY).unwrap();
    while w.load(Ordering::Acquire) == 0 {
        std::thread::yield_now();
    }
}

/// The peer's side of `test`, `n` times.
fn respond(map: &Mapping, test: Test, n: u64) {
    match test {
        Test::CacheLine => {
            let (ping, pong) = words(map);
            ready(map);
            for i in 1..=n {
                while ping.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                pong.store(i, Ordering::Release);
            }
        }
        Test::Futex => {
            let ping = map.atomic_u32(PING).unwrap();
            let pong = map.atomic_u32(PONG).unwrap();
            ready(map);
            for i in 1..=n as u32 {
                while ping.load(Ordering::Acquire) != i {
                    futex_wait(ping, i - 1);
                }
                pong.store(i, Ordering::Release);
                futex_wake(pong);
            }
        }
        Test::Spin | Test::Block => {
            let wait = if test == Test::Spin {
                Wait::Spin
            } else {
                Wait::Block
            };
            let mut rx = Receiver::open(map, THERE).unwrap();
            let mut tx = Sender::open(map, BACK).unwrap();
            rx.set_wait(wait);
            tx.set_wait(wait);
            ready(map);
            let mut buf = Vec::new();
            for _ in 0..n {
                rx.recv(&mut buf).unwrap();
                tx.send(&buf).unwrap();
            }
        }
        Test::Small | Test::Big => {
            let mut rx = Receiver::open(map, THERE).unwrap();
            let mut tx = Sender::open(map, BACK).unwrap();
            rx.set_wait(Wait::Spin);
            ready(map);
            let mut buf = Vec::new();
            let mut sum = 0u64;
            for _ in 0..n {
                rx.recv(&mut buf).unwrap();
                // Touch the payload: one byte in 64.
                sum = buf.iter().step_by(64).fold(sum, |s, b| s + u64::from(*b));
            }
            tx.send(&sum.to_le_bytes()).unwrap();
        }
        Test::Touch => {
            let (ping, pong) = words(map);
            ready(map);
            let mut sum = 0u64;
            for i in 1..=n {
                while ping.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
                // SAFETY: TOUCHED..TOUCHED + HUGE is inside the segment (SEGMENT).
                sum += unsafe { read_lines(map.as_ptr().add(TOUCHED), HUGE) };
                pong.store(i, Ordering::Release);
            }
            std::hint::black_box(sum);
        }
        Test::ZeroCopy => {
            let mut rx = Receiver::open(map, ZC).unwrap();
            let mut tx = Sender::open(map, BACK).unwrap();
            rx.set_wait(Wait::Spin);
            tx.set_wait(Wait::Spin);
            ready(map);
            for _ in 0..n {
                let m = rx.recv_in_place().unwrap();
                // SAFETY: the message's `len()` bytes from `as_ptr` are mapped until `m` is
                // dropped; read with volatile loads.
                let sum = unsafe { read_lines(m.as_ptr(), m.len()) };
                drop(m);
                tx.send(&sum.to_le_bytes()).unwrap();
            }
        }
    }
}

/// This side of `test`, `n` times; returns the seconds it took.
fn drive(map: &Mapping, test: Test, n: u64) -> f64 {
    let t;
    match test {
        Test::CacheLine => {
            let (ping, pong) = words(map);
            wait_ready(map);
            t = Instant::now();
            for i in 1..=n {
                ping.store(i, Ordering::Release);
                while pong.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
            }
        }
        Test::Futex => {
            let ping = map.atomic_u32(PING).unwrap();
            let pong = map.atomic_u32(PONG).unwrap();
            wait_ready(map);
            t = Instant::now();
            for i in 1..=n as u32 {
                ping.store(i, Ordering::Release);
                futex_wake(ping);
                while pong.load(Ordering::Acquire) != i {
                    futex_wait(pong, i - 1);
                }
            }
        }
        Test::Spin | Test::Block => {
            let wait = if test == Test::Spin {
                Wait::Spin
            } else {
                Wait::Block
            };
            let mut tx = Sender::open(map, THERE).unwrap();
            let mut rx = Receiver::open(map, BACK).unwrap();
            tx.set_wait(wait);
            rx.set_wait(wait);
            let mut buf = Vec::new();
            wait_ready(map);
            t = Instant::now();
            for i in 0..n {
                tx.send(&i.to_le_bytes()).unwrap();
                rx.recv(&mut buf).unwrap();
            }
        }
        Test::Small | Test::Big => {
            let mut tx = Sender::open(map, THERE).unwrap();
            let mut rx = Receiver::open(map, BACK).unwrap();
            tx.set_wait(Wait::Spin);
            let mut buf = Vec::new();
            wait_ready(map);
            t = Instant::now();
            if test == Test::Small {
                let msgs: Vec<[u8; 8]> = (0..BATCH as u64).map(u64::to_le_bytes).collect();
                let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
                for _ in 0..n / BATCH as u64 {
                    tx.send_batch(&refs).unwrap();
                }
            } else {
                let block = vec![7u8; BIG];
                for _ in 0..n {
                    tx.send(&block).unwrap();
                }
            }
            rx.recv(&mut buf).unwrap();
        }
        Test::Touch => {
            let (ping, pong) = words(map);
            wait_ready(map);
            t = Instant::now();
            for i in 1..=n {
                // SAFETY: TOUCHED..TOUCHED + HUGE is inside the segment.
                unsafe { write_lines(map.as_ptr().add(TOUCHED), HUGE, i as u8) };
                ping.store(i, Ordering::Release);
                while pong.load(Ordering::Acquire) != i {
                    std::hint::spin_loop();
                }
            }
        }
        Test::ZeroCopy => {
            let mut tx = Sender::open(map, ZC).unwrap();
            let mut rx = Receiver::open(map, BACK).unwrap();
            tx.set_wait(Wait::Spin);
            rx.set_wait(Wait::Spin);
            let mut buf = Vec::new();
            wait_ready(map);
            t = Instant::now();
            for i in 0..n {
                let mut slot = tx.reserve(HUGE).unwrap();
                // SAFETY: the slot's `len()` bytes from `as_mut_ptr` are this side's to write
                // until the commit; volatile stores.
                unsafe { write_lines(slot.as_mut_ptr(), slot.len(), i as u8) };
                slot.commit();
                rx.recv(&mut buf).unwrap();
            }
        }
    }
    t.elapsed().as_secs_f64()
}

/// Pins this process to `cpu` (the two sides on two CPUs: spinning on a shared CPU measures
/// the scheduler); false if it cannot.
fn pin(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}

fn reset(map: &Mapping) {
    for w in [PING, PONG, READY] {
        map.atomic_u64(w).unwrap().store(0, Ordering::SeqCst);
    }
}

fn line(label: &str, xs: &mut [f64], unit: &str) -> f64 {
    let (m, lo, hi) = stats(xs);
    println!("  {label:<46} {m:10.3} {unit}  (p10 {lo:.3}, p90 {hi:.3})");
    m
}

/// One single-core memcpy of `len` bytes between private buffers, in GB/s.
fn memcpy_gbs(len: usize, times: usize) -> f64 {
    let src = vec![3u8; len];
    let mut dst = vec![0u8; len];
    let t = Instant::now();
    for _ in 0..times {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    }
    (len * times) as f64 / t.elapsed().as_secs_f64() / 1e9
}

pub fn main() {
    if let Ok(spec) = std::env::var("SHMKIT_BENCH_PEER") {
        let mut it = spec.split(':');
        let (name, test, n) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let seg = PosixShm::open(name).unwrap();
        pin(1);
        let test = ALL.into_iter().find(|t| format!("{t:?}") == test).unwrap();
        respond(&seg, test, n.parse().unwrap());
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let pinned = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2) && pin(0);
    let name = format!("/shmkit-bench-channel-{}", std::process::id());
    let seg = PosixShm::create(&name, SEGMENT).unwrap();
    let exe = std::env::current_exe().unwrap();
    let tests = [
        (Test::CacheLine, TRIPS),
        (Test::Spin, TRIPS),
        (Test::Futex, SLEEPING_TRIPS),
        (Test::Block, SLEEPING_TRIPS),
        (Test::Small, SMALL),
        (Test::Big, BIGS),
        (Test::Touch, HUGES),
        (Test::ZeroCopy, HUGES),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); tests.len()];
    let mut memcpy_small = Vec::new();
    let mut memcpy_big = Vec::new();
    for round in 0..rounds {
        for k in 0..tests.len() {
            let which = (k + round) % tests.len();
            let (test, n) = tests[which];
            // Fresh channels and words for every run (the ends are claimed again).
            spsc::create(&seg, THERE, config()).unwrap();
            spsc::create(&seg, BACK, config()).unwrap();
            spsc::create(&seg, ZC, zc_config()).unwrap();
            reset(&seg);
            let mut cmd = Command::new(&exe);
            cmd.env("SHMKIT_BENCH_PEER", format!("{name}:{test:?}:{n}"));
            let peer = shmkit_peer::Peer::spawn(cmd).unwrap();
            let secs = drive(&seg, test, n);
            assert!(peer.wait().unwrap().success());
            results[which].push(match test {
                // µs per round trip
                Test::CacheLine
                | Test::Futex
                | Test::Spin
                | Test::Block
                | Test::Touch
                | Test::ZeroCopy => secs / n as f64 * 1e6,
                // millions of messages per second
                Test::Small => n as f64 / secs / 1e6,
                // GB/s
                Test::Big => (n as usize * BIG) as f64 / secs / 1e9,
            });
            // The channels are built afresh: wipe their headers' init words.
            seg.write_at(THERE, &[0; 16]).unwrap();
            seg.write_at(BACK, &[0; 16]).unwrap();
            seg.write_at(ZC, &[0; 16]).unwrap();
        }
        memcpy_small.push(memcpy_gbs(8 * BATCH, 100_000));
        memcpy_big.push(memcpy_gbs(BIG, 20_000));
        eprint!("\rrounds {}/{rounds}", round + 1);
    }
    eprintln!();
    println!(
        "\nChannel benchmark (SPSC, two processes{}), {rounds} rounds, medians (p10, p90)",
        if pinned {
            ", pinned to CPUs 0 and 1"
        } else {
            ", not pinned"
        }
    );
    println!("8-byte round trip, spinning ({TRIPS} a round):");
    let floor = line(
        "raw cache-line ping-pong (the floor)",
        &mut results[0],
        "us",
    );
    let spin = line("shmkit SPSC, Wait::Spin", &mut results[1], "us");
    println!(
        "  ratio SPSC / floor                             {:.2}x   (target <= 1.5x)",
        spin / floor
    );
    println!("8-byte round trip, sleeping ({SLEEPING_TRIPS} a round):");
    let futex = line("raw futex ping-pong", &mut results[2], "us");
    let block = line("shmkit SPSC, Wait::Block", &mut results[3], "us");
    println!(
        "  ratio SPSC / raw futex                         {:.2}x   (target <= 1.2x)",
        block / futex
    );
    println!("streaming, one way:");
    let small = line(
        "8-byte messages, batches of 64 (M msgs/s)",
        &mut results[4],
        "M/s",
    );
    println!("  (target >= 50 M msgs/s)  {:.2}x of it", small / 50.0);
    let big = line("64 KiB messages (GB/s)", &mut results[5], "GB/s");
    let mc = line("single-core memcpy, 64 KiB (GB/s)", &mut memcpy_big, "GB/s");
    line(
        "single-core memcpy, 512 B (GB/s)",
        &mut memcpy_small,
        "GB/s",
    );
    println!(
        "  ratio 64 KiB streaming / memcpy                {:.2}x   (target >= 0.5x)",
        big / mc
    );
    println!("1 MiB round trip, zero-copy, payload touched ({HUGES} a round):");
    let touch = line(
        "raw: 1 MiB written here, read there, a word back",
        &mut results[6],
        "us",
    );
    let zc = line(
        "shmkit SPSC: reserve + write, recv_in_place + read",
        &mut results[7],
        "us",
    );
    // The target: two 8-byte round trips and the time to touch 1 MiB once (the raw round
    // trip less its two words' floor).
    let bound = 2.0 * spin + (touch - floor);
    println!(
        "  ratio / (2 x 8 B round trip + the touch, {bound:.1} us) {:.2}x   (target <= 1x)",
        zc / bound
    );
    let _ = PosixShm::unlink_name(&name);
}
