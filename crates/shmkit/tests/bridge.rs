//! The bridge across hosts (feature `bridge`), between two real processes over TCP on the
//! loopback interface (never another address): a stream of checkable messages from a channel
//! in one process arrives in order and whole in a channel in the other, garbage published on
//! the key is counted and dropped, and a bridge's own messages that come back are dropped.
#![cfg(all(feature = "bridge", target_os = "linux"))]

mod common;
use common::stream::{check, message, segment, Rng};
use common::{cue, say, unique, Peer};
use shmkit::bridge::{Bridge, OnFull, RouteStats};
use shmkit::channel::{spsc, Receiver, Sender, SpscConfig};
use shmkit::PosixShm;
use std::sync::Arc;
use std::time::{Duration, Instant};
use zenoh::Wait;

const MESSAGES: u64 = 10_000;

fn config() -> SpscConfig {
    SpscConfig::new(1 << 18).max_message(4096)
}

/// A Zenoh peer on the loopback: listening on port `listen`, connecting to port `connect`.
fn loopback(listen: Option<u16>, connect: Option<u16>) -> zenoh::Config {
    let at = |p: Option<u16>| p.map(|p| format!("127.0.0.1:{p}"));
    common::zenoh_peer::config(at(listen).as_deref(), at(connect).as_deref())
}

/// A TCP port on the loopback that nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn stats_line(s: &RouteStats) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        s.ingested, s.dropped, s.oversize, s.gaps, s.duplicates, s.looped, s.garbage
    )
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        // Ingests key `args[2]` into the channel of segment `args[0]`, listening on port
        // `args[1]`; says its counters when cued, until told to stop.
        "ingest" => {
            let port: u16 = args[1].parse().unwrap();
            let bridge = Bridge::open(loopback(Some(port), None)).unwrap();
            let seg = Arc::new(PosixShm::open(&args[0]).unwrap());
            let route = bridge.ingest(&args[2], seg, 0, OnFull::Block).unwrap();
            say("ready");
            while cue() == "stats" {
                say(stats_line(&route.stats()));
            }
            say(stats_line(&route.stop().unwrap()));
        }
        _ => panic!("unknown role {role}"),
    }
}

/// Asks the peer for its counters until `want` holds of them (5 s at most).
fn peer_stats(p: &mut Peer, want: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    let t = Instant::now();
    loop {
        p.send("stats");
        let v: Vec<u64> = p.recv().split(' ').map(|x| x.parse().unwrap()).collect();
        if want(&v) || t.elapsed() > Duration::from_secs(5) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_stream_crosses_to_another_process_in_order_and_whole_and_garbage_is_dropped() {
    let (out_seg, _gone_out) = segment("shmkit-test-bridge-out", config().size());
    let (in_seg, _gone_in) = segment("shmkit-test-bridge-in", config().size());
    spsc::create(&out_seg, 0, config()).unwrap();
    spsc::create(&in_seg, 0, config()).unwrap();
    let key = format!("shmkit/test/{}", unique("bridge"));
    let port = free_port();
    let mut p = Peer::spawn("ingest", &[in_seg.name(), &port.to_string(), &key]);
    assert_eq!(p.recv(), "ready");

    let bridge = Bridge::open(loopback(None, Some(port))).unwrap();
    let route = bridge
        .forward(Arc::new(PosixShm::open(out_seg.name()).unwrap()), 0, &key)
        .unwrap();
    let mut rx = Receiver::open(&in_seg, 0).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut tx = Sender::open(&out_seg, 0).unwrap();
            let (mut rng, mut buf) = (Rng(0xb41d), Vec::new());
            for i in 0..MESSAGES {
                let len = 16 + rng.next() as usize % (4096 - 15);
                message(i, len, &mut rng, &mut buf);
                tx.send_timeout(&buf, Duration::from_secs(20)).unwrap();
            }
        });
        let mut buf = Vec::new();
        for i in 0..MESSAGES {
            rx.recv_timeout(&mut buf, Duration::from_secs(20))
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(check(&buf), i, "lost, duplicated or out of order");
        }
    });
    assert_eq!(route.stats().forwarded, MESSAGES);
    let [ingested, dropped, oversize, gaps, duplicates, looped, garbage] =
        peer_stats(&mut p, |_| true)[..]
    else {
        panic!("the peer's counters")
    };
    assert_eq!(
        (ingested, dropped, oversize, gaps, duplicates, looped, garbage),
        (MESSAGES, 0, 0, 0, 0, 0, 0)
    );

    // A foreign Zenoh peer publishes garbage on the key: counted and dropped, nothing put
    // into the channel, the route carries on.
    let foreign = zenoh::open(loopback(None, Some(port))).wait().unwrap();
    let publisher = foreign.declare_publisher(key.clone()).wait().unwrap();
    let t = Instant::now();
    while !publisher.matching_status().wait().unwrap().matching() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no subscriber matched"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for junk in [&b""[..], b"SHMB", &[0xff; 40], &[0; 100]] {
        publisher.put(junk.to_vec()).wait().unwrap();
    }
    let v = peer_stats(&mut p, |v| v[6] == 4);
    assert_eq!((v[0], v[6]), (MESSAGES, 4), "{v:?}");
    assert!(matches!(
        rx.try_recv(&mut Vec::new()),
        Err(shmkit::channel::RecvError::Empty)
    ));
    p.send("stop");
    assert_eq!(p.recv().split(' ').nth(6), Some("4"));
    p.finish();
    route.stop().unwrap();
}

#[test]
fn a_bridge_drops_its_own_messages_that_come_back() {
    let port = free_port();
    let bridge = Bridge::open(loopback(Some(port), None)).unwrap();
    let key = format!("shmkit/test/{}", unique("bridge-loop"));
    let out = Arc::new(shmkit::AnonShared::new(config().size()).unwrap());
    let back = Arc::new(shmkit::AnonShared::new(config().size()).unwrap());
    spsc::create(&out, 0, config()).unwrap();
    spsc::create(&back, 0, config()).unwrap();
    let ingest = bridge.ingest(&key, back.clone(), 0, OnFull::Drop).unwrap();
    let forward = bridge.forward(out.clone(), 0, &key).unwrap();
    let mut tx = Sender::open(&out, 0).unwrap();
    for _ in 0..10 {
        tx.send(b"around").unwrap();
    }
    let t = Instant::now();
    while ingest.stats().looped < 10 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            ingest.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(forward.stats().forwarded, 10);
    assert_eq!(ingest.stats().ingested, 0);
    let rx = Receiver::open(&back, 0);
    assert!(matches!(
        rx.unwrap().try_recv(&mut Vec::new()),
        Err(shmkit::channel::RecvError::Empty)
    ));
}
