//! The bridge beside what it is built on, between two "hosts" (network namespaces joined by a
//! veth pair, each with its own `/dev/shm`), in one run: raw TCP, Zenoh's own pub/sub, and
//! shmkit channels carried by the bridge, each on its own TCP link between the same two
//! namespaces. Round trips (8 B and 64 KiB, p50 and p99) and one-way throughput; the ratios
//! are the result (these machines are shared and noisy).
//!
//! `cargo bench -p shmkit --features bridge --bench bridge` (root: it makes the namespaces).
//! `SHMKIT_BENCH_QUICK=1` runs a tenth of the round trips and messages.
//!
//! The near host sends, the far host answers: a TCP echo server, a Zenoh subscriber that
//! publishes back what it hears (as Zenoh's own `z_pong` does), and a bridge whose ingested
//! channel an echo thread copies into the channel it forwards back. The first byte of every
//! message says what to do with it: 0 answer it, 1 count it, 2 answer with the count.
//!
//! Twice: with applications that sleep while they wait for a message (a blocking receive
//! from Zenoh, `Wait::Block` on the channels), then with applications that poll (rows
//! `-poll`: Zenoh's handler polled, spinning then yielding; the channels' default
//! `Wait::Adaptive`, which spins for a budget, then sleeps), each row against the rows of
//! its own run. What waits is the measuring side and the bridge's far application (the echo
//! thread); Zenoh's far side answers in its subscriber's callback in both runs, as `z_pong`
//! does, with no application thread to wake: the comparison favours Zenoh.
#[path = "../tests/common/mod.rs"]
mod common;

use common::hosts::Hosts;
use common::{cue, say};
use shmkit::bridge::{Bridge, OnFull};
use shmkit::channel::{spsc, Receiver, Sender, SpscConfig};
use shmkit::PosixShm;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::Wait;

const TCP_PORT: u16 = 7001;
const ZENOH_PORT: u16 = 7447;
const BRIDGE_PORT: u16 = 7448;
const SIZES: [usize; 2] = [8, 64 << 10];
const ANSWER: u8 = 0;
const COUNT: u8 = 1;
const REPORT: u8 = 2;

/// Whether the applications at both ends sleep while they wait for a message (as most do:
/// a blocking receive), rather than poll: the bench runs both ways.
static SLEEP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn sleeping() -> bool {
    SLEEP.load(std::sync::atomic::Ordering::Relaxed)
}

fn quick() -> bool {
    std::env::var_os("SHMKIT_BENCH_QUICK").is_some()
}

/// Round trips and one-way messages for messages of `size` bytes.
fn counts(size: usize) -> (usize, u64) {
    let (trips, msgs) = if size <= 64 {
        (4000, 400_000)
    } else {
        (1000, 20_000)
    };
    if quick() {
        (trips / 10, msgs / 10)
    } else {
        (trips, msgs)
    }
}

/// One way of carrying a message there and back.
trait Link {
    fn send(&mut self, msg: &[u8]);
    fn recv(&mut self, buf: &mut Vec<u8>);
}

/// Length-prefixed frames, written through a buffer flushed before each wait for an answer
/// (so that a stream batches its small messages into few segments, as Zenoh does).
struct Tcp {
    read: TcpStream,
    write: std::io::BufWriter<TcpStream>,
}

impl Link for Tcp {
    fn send(&mut self, msg: &[u8]) {
        self.write
            .write_all(&(msg.len() as u32).to_le_bytes())
            .unwrap();
        self.write.write_all(msg).unwrap();
    }
    fn recv(&mut self, buf: &mut Vec<u8>) {
        self.write.flush().unwrap();
        read_frame(&mut self.read, buf).expect("the far side closed");
    }
}

fn read_frame(s: &mut impl Read, buf: &mut Vec<u8>) -> Option<()> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    s.read_exact(buf).ok()?;
    Some(())
}

struct Zenoh {
    publisher: zenoh::pubsub::Publisher<'static>,
    back: zenoh::pubsub::Subscriber<zenoh::handlers::FifoChannelHandler<zenoh::sample::Sample>>,
    _session: zenoh::Session,
}

impl Link for Zenoh {
    fn send(&mut self, msg: &[u8]) {
        self.publisher.put(msg.to_vec()).wait().unwrap();
    }
    fn recv(&mut self, buf: &mut Vec<u8>) {
        // Sleeping, or polled: spinning, then yielding (without ever sleeping, where the
        // channels' `Wait::Adaptive` sleeps once its budget is spent).
        if sleeping() {
            let s = self.back.recv().unwrap();
            buf.clear();
            buf.extend_from_slice(&s.payload().to_bytes());
            return;
        }
        let mut tries = 0u32;
        let s = loop {
            if let Some(s) = self.back.try_recv().unwrap() {
                break s;
            }
            tries += 1;
            if tries < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        };
        buf.clear();
        buf.extend_from_slice(&s.payload().to_bytes());
    }
}

/// The near side of the bridge: a channel it forwards, a channel it ingests into.
struct Bridged {
    tx: Sender<'static>,
    rx: Receiver<'static>,
    _routes: (shmkit::bridge::Route, shmkit::bridge::Route),
}

impl Link for Bridged {
    fn send(&mut self, msg: &[u8]) {
        self.tx.send(msg).unwrap();
    }
    fn recv(&mut self, buf: &mut Vec<u8>) {
        self.rx.recv(buf).unwrap();
    }
}

fn config() -> SpscConfig {
    SpscConfig::new(1 << 21).max_message(SIZES[1])
}

/// A channel in this host's own `/dev/shm`, for the life of the process.
fn channel(name: &str) -> &'static Arc<PosixShm> {
    let name = format!("/shmkit-bench-bridge-{}-{name}", std::process::id());
    let seg = PosixShm::create(&name, config().size()).unwrap();
    // This host's /dev/shm is a private tmpfs that goes with its namespace; unlink now so
    // that nothing is left even if the process is killed.
    seg.unlink().unwrap();
    spsc::create(&seg, 0, config()).unwrap();
    Box::leak(Box::new(Arc::new(seg)))
}

fn zenoh_config(listen: Option<&str>, connect: Option<&str>) -> zenoh::Config {
    common::zenoh_peer::config(listen, connect)
}

/// The far host: answers on all three links until its stdin closes.
fn far(addr: &str) {
    // Raw TCP.
    let listener = TcpListener::bind((addr, TCP_PORT)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let s = conn.unwrap();
            s.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let (mut buf, mut count) = (Vec::new(), 0u64);
                let mut out = s.try_clone().unwrap();
                let mut input = std::io::BufReader::with_capacity(64 << 10, s);
                while read_frame(&mut input, &mut buf).is_some() {
                    if let Some(reply) = answer(&buf, &mut count) {
                        let mut frame = (reply.len() as u32).to_le_bytes().to_vec();
                        frame.extend_from_slice(&reply);
                        out.write_all(&frame).unwrap();
                    }
                }
            });
        }
    });
    // Zenoh: what comes on `ping` goes back on `pong`.
    let session = zenoh::open(zenoh_config(Some(&format!("{addr}:{ZENOH_PORT}")), None))
        .wait()
        .unwrap();
    let publisher = session
        .declare_publisher("shmkit/bench/pong")
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .wait()
        .unwrap();
    let mut count = 0u64;
    let _sub = session
        .declare_subscriber("shmkit/bench/ping")
        .callback_mut(move |s| {
            if let Some(reply) = answer(&s.payload().to_bytes(), &mut count) {
                publisher.put(reply).wait().unwrap();
            }
        })
        .wait()
        .unwrap();
    // The bridge: what comes into one channel goes back out of the other.
    let bridge = Bridge::open(zenoh_config(Some(&format!("{addr}:{BRIDGE_PORT}")), None)).unwrap();
    let (inbox, outbox) = (channel("far-in"), channel("far-out"));
    let _in = bridge
        .ingest("shmkit/bench/bping", inbox.clone(), 0, OnFull::Block)
        .unwrap();
    let _out = bridge
        .forward(outbox.clone(), 0, "shmkit/bench/bpong")
        .unwrap();
    std::thread::spawn(move || {
        let mut rx = Receiver::open(inbox, 0).unwrap();
        if sleeping() {
            rx.set_wait(shmkit::channel::Wait::Block);
        }
        let mut tx = Sender::open(outbox, 0).unwrap();
        let (mut buf, mut count) = (Vec::new(), 0u64);
        loop {
            rx.recv(&mut buf).unwrap();
            if let Some(reply) = answer(&buf, &mut count) {
                tx.send(&reply).unwrap();
            }
        }
    });
    say("ready");
    let _ = cue();
}

/// What the far side does with a message: its answer, if any.
fn answer(msg: &[u8], count: &mut u64) -> Option<Vec<u8>> {
    match msg.first() {
        Some(&ANSWER) => Some(msg.to_vec()),
        Some(&COUNT) => {
            *count += 1;
            None
        }
        Some(&REPORT) => Some(std::mem::take(count).to_le_bytes().to_vec()),
        _ => None,
    }
}

/// Percentile `p` of sorted `v`.
fn pct(v: &[u64], p: f64) -> u64 {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Round trips of `size` bytes: (p50, p99) in nanoseconds.
fn round_trips(link: &mut dyn Link, size: usize, trips: usize) -> (u64, u64) {
    let mut msg = vec![0xa5u8; size];
    msg[0] = ANSWER;
    let mut buf = Vec::with_capacity(size);
    for _ in 0..trips / 10 + 10 {
        link.send(&msg);
        link.recv(&mut buf);
    }
    let mut t: Vec<u64> = (0..trips)
        .map(|_| {
            let start = Instant::now();
            link.send(&msg);
            link.recv(&mut buf);
            start.elapsed().as_nanos() as u64
        })
        .collect();
    assert_eq!(buf, msg, "the answer is not the message");
    t.sort_unstable();
    (pct(&t, 0.5), pct(&t, 0.99))
}

/// `n` messages of `size` bytes one way, then the count back: messages per second.
fn stream(link: &mut dyn Link, size: usize, n: u64) -> f64 {
    let mut msg = vec![0x5au8; size];
    msg[0] = COUNT;
    let mut buf = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        link.send(&msg);
    }
    link.send(&[REPORT]);
    link.recv(&mut buf);
    let secs = start.elapsed().as_secs_f64();
    let got = u64::from_le_bytes(buf[..8].try_into().unwrap());
    assert_eq!(got, n, "the far side counted {got} of {n} messages");
    n as f64 / secs
}

/// The near host: measures each link in turn and says the results.
fn near(far: &str) {
    let tcp = TcpStream::connect((far, TCP_PORT)).unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut tcp = Tcp {
        read: tcp.try_clone().unwrap(),
        write: std::io::BufWriter::with_capacity(64 << 10, tcp),
    };
    let session = zenoh::open(zenoh_config(None, Some(&format!("{far}:{ZENOH_PORT}"))))
        .wait()
        .unwrap();
    let publisher = session
        .declare_publisher("shmkit/bench/ping")
        .congestion_control(zenoh::qos::CongestionControl::Block)
        .wait()
        .unwrap();
    let back = session
        .declare_subscriber("shmkit/bench/pong")
        .with(zenoh::handlers::FifoChannel::new(1024))
        .wait()
        .unwrap();
    let t = Instant::now();
    while !publisher.matching_status().wait().unwrap().matching() {
        assert!(t.elapsed() < Duration::from_secs(20), "no far subscriber");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut z = Zenoh {
        publisher,
        back,
        _session: session,
    };
    let bridge = Bridge::open(zenoh_config(None, Some(&format!("{far}:{BRIDGE_PORT}")))).unwrap();
    let (out, inbox) = (channel("near-out"), channel("near-in"));
    let routes = (
        bridge
            .forward(out.clone(), 0, "shmkit/bench/bping")
            .unwrap(),
        bridge
            .ingest("shmkit/bench/bpong", inbox.clone(), 0, OnFull::Block)
            .unwrap(),
    );
    let mut b = Bridged {
        tx: Sender::open(out, 0).unwrap(),
        rx: Receiver::open(inbox, 0).unwrap(),
        _routes: routes,
    };
    if sleeping() {
        b.rx.set_wait(shmkit::channel::Wait::Block);
    }
    let links: [(&str, &mut dyn Link); 3] =
        [("tcp", &mut tcp), ("zenoh", &mut z), ("bridge", &mut b)];
    for (name, link) in links {
        // TCP's receive blocks either way; it is measured in each run, for that run's ratios.
        let name = if sleeping() {
            name.to_string()
        } else {
            format!("{name}-poll")
        };
        for size in SIZES {
            let (trips, msgs) = counts(size);
            let (p50, p99) = round_trips(link, size, trips);
            let rate = stream(link, size, msgs);
            say(format!("{name} {size} {p50} {p99} {rate}"));
        }
    }
    say("done");
}

struct Row {
    link: String,
    size: usize,
    p50: u64,
    p99: u64,
    rate: f64,
}

fn main() {
    if let Some((role, args)) = common::peer_role() {
        match role.as_str() {
            "far" | "near" => {
                SLEEP.store(args[1] == "sleep", std::sync::atomic::Ordering::Relaxed);
                if role == "far" {
                    far(&args[0]);
                } else {
                    near(&args[0]);
                }
            }
            _ => panic!("unknown role {role}"),
        }
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and gets nothing.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("the bridge bench runs under `cargo bench` only");
        return;
    }
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "the bridge bench makes two network namespaces: run it as root (it measures \
             nothing otherwise)"
        );
        std::process::exit(2);
    }
    let hosts = Hosts::new();
    eprintln!(
        "bridge bench: hosts {} and {} ({}), {}",
        hosts.addrs[0],
        hosts.addrs[1],
        hosts.names[1],
        if quick() { "quick" } else { "full" }
    );
    let mut rows = Vec::new();
    // Applications that sleep while they wait, then ones that poll.
    for mode in ["sleep", "poll"] {
        let mut far = hosts.spawn(1, "far", &[&hosts.addrs[1], mode]);
        assert_eq!(far.recv(), "ready");
        let mut near = hosts.spawn(0, "near", &[&hosts.addrs[1], mode]);
        collect(&mut near, &mut rows);
        near.finish();
        far.stdin_close();
        far.finish();
    }
    report(&rows);
}

/// The rows `near` says, until it is done.
fn collect(near: &mut common::Peer, rows: &mut Vec<Row>) {
    loop {
        let line = near.recv();
        if line == "done" {
            break;
        }
        let w: Vec<&str> = line.split(' ').collect();
        let row = Row {
            link: w[0].to_string(),
            size: w[1].parse().unwrap(),
            p50: w[2].parse().unwrap(),
            p99: w[3].parse().unwrap(),
            rate: w[4].parse().unwrap(),
        };
        eprintln!(
            "  {:<11} {:>6} B  rtt p50 {:>8.1} µs  p99 {:>8.1} µs  {:>10.0} msgs/s",
            row.link,
            row.size,
            row.p50 as f64 / 1e3,
            row.p99 as f64 / 1e3,
            row.rate
        );
        rows.push(row);
    }
}

/// The table, the ratios (each against Zenoh waiting the same way), and the JSON.
fn report(rows: &[Row]) {
    let find = |link: &str, size: usize| {
        rows.iter()
            .find(|r| r.link == link && r.size == size)
            .expect("a row for every link and size")
    };
    println!(
        "{:<11} {:>7} {:>11} {:>11} {:>12} {:>12} {:>13} {:>13}",
        "link", "size", "rtt p50", "rtt p99", "msgs/s", "MB/s", "rtt/zenoh", "rate/zenoh"
    );
    let mut json = Vec::new();
    // The rows of the same run.
    let same_run = |of: &str, link: &str| {
        if link.ends_with("-poll") {
            format!("{of}-poll")
        } else {
            of.to_string()
        }
    };
    for r in rows {
        let z = find(&same_run("zenoh", &r.link), r.size);
        let (rtt_ratio, rate_ratio) = (r.p50 as f64 / z.p50 as f64, r.rate / z.rate);
        println!(
            "{:<11} {:>7} {:>8.1} µs {:>8.1} µs {:>12.0} {:>12.1} {:>12.2}× {:>12.2}×",
            r.link,
            r.size,
            r.p50 as f64 / 1e3,
            r.p99 as f64 / 1e3,
            r.rate,
            r.rate * r.size as f64 / 1e6,
            rtt_ratio,
            rate_ratio
        );
        json.push(serde_json::json!({
            "link": r.link, "size": r.size, "apps_wait": if r.link.ends_with("-poll") { "poll" } else { "sleep" }, "rtt_p50_ns": r.p50, "rtt_p99_ns": r.p99,
            "msgs_per_s": r.rate, "rtt_vs_zenoh": rtt_ratio, "rate_vs_zenoh": rate_ratio,
            "rtt_vs_tcp": r.p50 as f64 / find(&same_run("tcp", &r.link), r.size).p50 as f64,
        }));
    }
    for (bridge, zenoh, tcp, how) in [
        ("bridge", "zenoh", "tcp", "applications that sleep"),
        (
            "bridge-poll",
            "zenoh-poll",
            "tcp-poll",
            "applications that poll",
        ),
    ] {
        for size in SIZES {
            let (b, z) = (find(bridge, size), find(zenoh, size));
            println!(
                "bridge round trip at {size} B, {how}: {:.2}× Zenoh's own pub/sub (goal ≤ 1.5×), \
                 {:.2}× raw TCP",
                b.p50 as f64 / z.p50 as f64,
                b.p50 as f64 / find(tcp, size).p50 as f64
            );
        }
    }
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-bridge.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    eprintln!("JSON: {}", out.display());
}
