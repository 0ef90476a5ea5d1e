//! The registry benchmark's Linux body.

#[path = "stats.rs"]
mod stats;
use stats::stats;

use shmkit::handle::{self, Handle};
use shmkit::registry::{Client, RegisterOptions, Server};
use shmkit::Memfd;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

const TRIPS: usize = 2_000;

pub fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(11);
    let dir = std::env::temp_dir().join(format!("shmkit-bench-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("registry.sock");
    let server = Server::bind(&sock).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(rustix::thread::gettid()).unwrap();
        server.run(|_| {})
    });
    let server_tid = rx.recv().unwrap();
    let m = Memfd::create("bench", 4096).unwrap();
    let mut owner = Client::connect(&sock).unwrap();
    owner
        .register(
            "bench",
            &[&Handle::memfd(&m).unwrap()],
            RegisterOptions::default(),
        )
        .unwrap();

    // The baseline: a server thread that answers each byte with the memfd's fd.
    let bare = dir.join("bare.sock");
    let listener = UnixListener::bind(&bare).unwrap();
    let fd = rustix::io::fcntl_dupfd_cloexec(m.fd(), 0).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tx.send(rustix::thread::gettid()).unwrap();
        for conn in listener.incoming() {
            let mut s = conn.unwrap();
            let mut b = [0u8; 1];
            while s.read_exact(&mut b).is_ok() {
                handle::send_fd(&s, rustix::fd::AsFd::as_fd(&fd), b"m").unwrap();
            }
        }
    });
    let bare_tid = rx.recv().unwrap();
    let mut bare_client = UnixStream::connect(&bare).unwrap();
    let mut client = Client::connect(&sock).unwrap();

    let mut lookup = Vec::new();
    let mut pass = Vec::new();
    for round in 0..rounds {
        for k in 0..2 {
            let t = Instant::now();
            if (k + round) % 2 == 0 {
                for _ in 0..TRIPS {
                    let e = client.lookup("bench").unwrap();
                    assert_eq!(e.handles.len(), 1);
                }
                lookup.push(t.elapsed().as_nanos() as f64 / TRIPS as f64 / 1000.0);
            } else {
                for _ in 0..TRIPS {
                    bare_client.write_all(b"?").unwrap();
                    let (fd, _) = handle::recv_fd(&bare_client, &mut [0u8; 1]).unwrap();
                    drop(fd);
                }
                pass.push(t.elapsed().as_nanos() as f64 / TRIPS as f64 / 1000.0);
            }
        }
        eprint!("\rround trips {}/{rounds}", round + 1);
    }
    eprintln!();
    let (lm, l10, l90) = stats(&mut lookup);
    let (pm, p10, p90) = stats(&mut pass);
    println!("\nRegistry benchmark, {rounds} rounds of {TRIPS} round trips, medians (p10, p90)");
    println!(
        "  registry lookup, one memfd handle, checked   {lm:7.2} us  (p10 {l10:.2}, p90 {l90:.2})"
    );
    println!(
        "  bare Unix socket, one fd passed              {pm:7.2} us  (p10 {p10:.2}, p90 {p90:.2})"
    );
    println!(
        "  ratio lookup / bare fd pass           {:.2}x   (target <= 2.0x)",
        lm / pm
    );

    // Sustained: 8 clients, 10,000 lookups each, at once.
    let n: usize = std::env::var("SHMKIT_BENCH_LOOKUPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let t = Instant::now();
    let errors: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let sock = &sock;
                s.spawn(move || {
                    let mut c = Client::connect(sock).unwrap();
                    (0..n).filter(|_| c.lookup("bench").is_err()).count()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  8 clients x {n} lookups: {errors} errors, {:.2} s, {:.0} lookups/s",
        secs,
        (8 * n) as f64 / secs
    );

    // Isolated requests, 2 ms apart: the CPU the serving thread spends on each (the
    // registry stays awake between requests only in a burst).
    const SPACED: usize = 300;
    let gap = std::time::Duration::from_millis(2);
    let before = (cpu_ns(server_tid), cpu_ns(bare_tid));
    for _ in 0..SPACED {
        std::thread::sleep(gap);
        client.lookup("bench").unwrap();
    }
    let mid = (cpu_ns(server_tid), cpu_ns(bare_tid));
    for _ in 0..SPACED {
        std::thread::sleep(gap);
        bare_client.write_all(b"?").unwrap();
        drop(handle::recv_fd(&bare_client, &mut [0u8; 1]).unwrap());
    }
    let after = cpu_ns(bare_tid);
    let reg_cpu = (mid.0 - before.0) as f64 / SPACED as f64 / 1000.0;
    let bare_cpu = (after - mid.1) as f64 / SPACED as f64 / 1000.0;
    println!(
        "  server CPU per isolated request (2 ms apart): registry {reg_cpu:.1} us, bare {bare_cpu:.1} us, ratio {:.2}x",
        reg_cpu / bare_cpu
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Nanoseconds thread `tid` of this process has run (`/proc/self/task/TID/schedstat`).
fn cpu_ns(tid: rustix::thread::Pid) -> u64 {
    std::fs::read_to_string(format!(
        "/proc/self/task/{}/schedstat",
        tid.as_raw_nonzero()
    ))
    .unwrap()
    .split_whitespace()
    .next()
    .unwrap()
    .parse()
    .unwrap()
}
