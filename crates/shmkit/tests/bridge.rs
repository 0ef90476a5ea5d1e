//! The bridge across hosts (feature `bridge`), between two real processes over TCP on the
//! loopback interface (never another address): a stream of checkable messages from a channel
//! in one process arrives in order and whole in a channel in the other, garbage published on
//! the key is counted and dropped, and a bridge's own messages that come back are dropped.
#![cfg(all(feature = "bridge", target_os = "linux"))]

mod common;
use common::stream::{check, message, private_spsc, segment, Rng};
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

use shmkit_peer::free_loopback_port as free_port;

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
    let (out, back) = (private_channel(), private_channel());
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

/// A channel of `config()` in this process's memory, to share with a route.
fn private_channel() -> Arc<shmkit::AnonShared> {
    Arc::new(private_spsc(config()))
}

/// A consumer of `ch` waiting 700 ms for a message, in a thread (what it met), once it waits.
fn waiting_consumer(
    ch: &Arc<shmkit::AnonShared>,
) -> std::thread::JoinHandle<Option<shmkit::channel::RecvError>> {
    let i = ch.clone();
    let consumer = std::thread::spawn(move || {
        let mut rx = Receiver::open(&i, 0).unwrap();
        rx.recv_timeout(&mut Vec::new(), Duration::from_millis(700))
            .err()
    });
    std::thread::sleep(Duration::from_millis(100));
    consumer
}

/// Taking a channel's end for a route never shows the other end a let-go end in between: a
/// producer waiting on a full channel times out, and a consumer waiting on an empty one too,
/// while a route takes the other end. (The routes once claimed the end, let go of it and
/// claimed it again in their thread: a reviewer's reproducers saw ConsumerGone and
/// ProducerGone in most tries.)
#[test]
fn taking_an_end_for_a_route_does_not_look_like_the_end_let_go() {
    let port = free_port();
    let bridge = Bridge::open(loopback(Some(port), None)).unwrap();
    for _ in 0..5 {
        let out = private_channel();
        let o = out.clone();
        let producer = std::thread::spawn(move || {
            let mut tx = Sender::open(&o, 0).unwrap();
            loop {
                if let Err(e) = tx.send_timeout(&[0u8; 1000], Duration::from_millis(700)) {
                    return e;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        // Nobody subscribes: the route never reads, the producer must time out.
        let route = bridge
            .forward(out, 0, &unique("shmkit/test/unmatched"))
            .unwrap();
        let e = producer.join().unwrap();
        assert!(matches!(e, shmkit::channel::SendError::Timeout), "{e:?}");
        drop(route);

        let inp = private_channel();
        let consumer = waiting_consumer(&inp);
        let route = bridge
            .ingest(&unique("shmkit/test/quiet"), inp, 0, OnFull::Drop)
            .unwrap();
        let e = consumer.join().unwrap();
        assert!(
            matches!(e, Some(shmkit::channel::RecvError::Timeout)),
            "{e:?}"
        );
        drop(route);
    }
    // An end that is taken is said at once, by the call.
    let c = private_channel();
    let _rx = Receiver::open(&c, 0).unwrap();
    let e = bridge
        .forward(c.clone(), 0, "shmkit/test/taken")
        .err()
        .unwrap();
    assert_eq!(e.kind(), shmkit::ErrorKind::AlreadyExists, "{e}");
}

/// The routes keep their session: with both `Bridge`s dropped, messages still cross.
#[test]
fn routes_carry_on_when_their_bridges_are_dropped() {
    let port = free_port();
    let a = Bridge::open(loopback(Some(port), None)).unwrap();
    let b = Bridge::open(loopback(None, Some(port))).unwrap();
    let key = unique("shmkit/test/orphan");
    let (out, inp) = (private_channel(), private_channel());
    let ingest = b.ingest(&key, inp.clone(), 0, OnFull::Block).unwrap();
    let forward = a.forward(out.clone(), 0, &key).unwrap();
    drop((a, b));
    let mut tx = Sender::open(&out, 0).unwrap();
    let mut rx = Receiver::open(&inp, 0).unwrap();
    let mut buf = Vec::new();
    for i in 0..5u8 {
        tx.send(&[i; 8]).unwrap();
        rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
        assert_eq!(buf, [i; 8]);
    }
    assert_eq!(forward.stop().unwrap().forwarded, 5);
    assert_eq!(ingest.stop().unwrap().ingested, 5);
}

/// A forged frame with a real origin and a number far ahead is not believed: it is garbage,
/// and the real messages after it still arrive.
#[test]
fn a_forged_number_far_ahead_does_not_silence_the_real_sender() {
    let (port, port_b) = (free_port(), free_port());
    let a = Bridge::open(loopback(Some(port), None)).unwrap();
    // The receiving bridge listens too, for the forger: Zenoh peers do not route for
    // each other here.
    let b = Bridge::open(loopback(Some(port_b), Some(port))).unwrap();
    let key = unique("shmkit/test/forged");
    let (out, inp) = (private_channel(), private_channel());
    let ingest = b.ingest(&key, inp.clone(), 0, OnFull::Block).unwrap();
    let forward = a.forward(out.clone(), 0, &key).unwrap();
    let mut tx = Sender::open(&out, 0).unwrap();
    let mut rx = Receiver::open(&inp, 0).unwrap();
    let mut buf = Vec::new();
    tx.send(b"real 0").unwrap();
    rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
    // The forger knows the origin (it reads it off the key).
    let forger = zenoh::open(loopback(None, Some(port_b))).wait().unwrap();
    let p = forger.declare_publisher(key.clone()).wait().unwrap();
    let origin = forward.origin().unwrap();
    assert_eq!(origin.bridge, a.id());
    let mut frame = Vec::new();
    shmkit::bridge::wire::encode(origin, u64::MAX - 1, b"forged", &mut frame);
    let t = Instant::now();
    while ingest.stats().garbage == 0 {
        p.put(frame.clone()).wait().unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            ingest.stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 1..=20u32 {
        tx.send(format!("real {i}").as_bytes()).unwrap();
        rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
        assert_eq!(buf, format!("real {i}").as_bytes());
    }
    let s = ingest.stop().unwrap();
    assert_eq!((s.ingested, s.duplicates, s.gaps), (21, 0, 0), "{s:?}");
    drop(forward);
}

/// A broadcast or MPSC channel in this process's own shared memory.
fn private_broadcast(slots: usize) -> Arc<shmkit::AnonShared> {
    use shmkit::channel::broadcast::{self, BroadcastConfig};
    let config = BroadcastConfig::new(slots * 128).max_message(64);
    let seg = shmkit::AnonShared::new(config.size()).unwrap();
    broadcast::create(&seg, 0, config).unwrap();
    Arc::new(seg)
}

fn private_mpsc() -> Arc<shmkit::AnonShared> {
    use shmkit::channel::mpsc::{self, MpscConfig};
    let config = MpscConfig::new(1 << 16).max_message(64);
    let seg = shmkit::AnonShared::new(config.size()).unwrap();
    mpsc::create(&seg, 0, config).unwrap();
    Arc::new(seg)
}

/// Two bridges on the loopback, the second connected to the first.
fn pair() -> (Bridge, Bridge) {
    let port = free_port();
    (
        Bridge::open(loopback(Some(port), None)).unwrap(),
        Bridge::open(loopback(None, Some(port))).unwrap(),
    )
}

/// The bridge joins a broadcast channel as one more reader (a local reader beside it gets
/// everything too) and ingests into an MPSC channel as one more producer (a local producer
/// beside it goes on); and it ingests into a broadcast channel that two local readers read.
#[test]
fn broadcast_and_mpsc_channels_cross_as_ordinary_ends() {
    use shmkit::channel::{broadcast, mpsc};
    let (a, b) = pair();
    let (src, dst) = (private_broadcast(256), private_mpsc());
    let key = unique("shmkit/test/bcast");
    let ingest = b.ingest(&key, dst.clone(), 0, OnFull::Block).unwrap();
    let forward = a.forward(src.clone(), 0, &key).unwrap();
    let mut local_reader = broadcast::Receiver::open(&src, 0).unwrap();
    let mut tx = broadcast::Sender::open(&src, 0).unwrap();
    let mut local_producer = mpsc::Sender::open(&dst, 0).unwrap();
    let mut rx = mpsc::Receiver::open(&dst, 0).unwrap();
    let n = 200u32;
    let (mut bridged, mut local, mut buf) = (0u32, 0u32, Vec::new());
    for i in 0..n {
        tx.send(format!("b{i}").as_bytes()).unwrap();
        local_reader.recv(&mut buf).unwrap();
        assert_eq!(buf, format!("b{i}").as_bytes());
        local_producer.send(format!("l{i}").as_bytes()).unwrap();
        // Pace the broadcast producer (which never waits) to what the bridge carries: this
        // test is about the ends, not about overruns.
        while bridged <= i {
            rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
            let text = String::from_utf8(buf.clone()).unwrap();
            if let Some(num) = text.strip_prefix('b') {
                assert_eq!(num, bridged.to_string(), "bridged out of order");
                bridged += 1;
            } else {
                assert_eq!(text, format!("l{local}"), "local out of order");
                local += 1;
            }
        }
    }
    assert_eq!(forward.stop().unwrap().forwarded, u64::from(n));
    let s = ingest.stop().unwrap();
    assert_eq!(
        (s.ingested, s.gaps, s.dropped),
        (u64::from(n), 0, 0),
        "{s:?}"
    );

    // Into a broadcast channel: two local readers each get every message, in order.
    let (out, into) = (private_channel(), private_broadcast(1024));
    let key = unique("shmkit/test/into-bcast");
    let mut readers = [
        broadcast::Receiver::open(&into, 0).unwrap(),
        broadcast::Receiver::open(&into, 0).unwrap(),
    ];
    let ingest = b.ingest(&key, into.clone(), 0, OnFull::Block).unwrap();
    let forward = a.forward(out.clone(), 0, &key).unwrap();
    let mut tx = Sender::open(&out, 0).unwrap();
    for i in 0..100u32 {
        tx.send(&i.to_le_bytes()).unwrap();
    }
    for r in &mut readers {
        for i in 0..100u32 {
            assert_eq!(r.recv_value::<u32>().unwrap(), i);
        }
    }
    drop((forward, ingest));
}

/// A broadcast producer never waits, so with nobody subscribed the bridge's reader is lapped
/// like any slow reader: what it lost is counted in `overruns`, and forwarded plus overruns
/// is every message sent, exactly.
#[test]
fn a_lapped_broadcast_reader_counts_its_overruns_exactly() {
    use shmkit::channel::broadcast;
    let (a, b) = pair();
    let (src, dst) = (private_broadcast(16), private_channel());
    let key = unique("shmkit/test/lapped");
    let forward = a.forward(src.clone(), 0, &key).unwrap();
    let mut tx = broadcast::Sender::open(&src, 0).unwrap();
    // Nobody subscribes yet: the route does not read, and 100 messages lap its 16 slots.
    for i in 0..100u32 {
        tx.send(&i.to_le_bytes()).unwrap();
    }
    let ingest = b.ingest(&key, dst.clone(), 0, OnFull::Block).unwrap();
    let mut rx = Receiver::open(&dst, 0).unwrap();
    let (mut got, mut buf, mut last) = (0u64, Vec::new(), None);
    let t = Instant::now();
    while forward.stats().forwarded + forward.stats().overruns < 100 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{:?}",
            forward.stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    while rx
        .recv_timeout(&mut buf, Duration::from_millis(500))
        .is_ok()
    {
        let i = u32::from_le_bytes(buf[..4].try_into().unwrap());
        assert!(last.is_none_or(|l| i > l), "{i} after {last:?}");
        last = Some(i);
        got += 1;
    }
    let f = forward.stop().unwrap();
    assert!(f.overruns > 0, "{f:?}");
    assert_eq!(f.forwarded + f.overruns, 100, "{f:?}");
    assert_eq!(got, f.forwarded);
    // The newest ones are the ones kept.
    assert_eq!(last, Some(99));
    let s = ingest.stop().unwrap();
    assert_eq!((s.ingested, s.gaps), (got, 0), "{s:?}");
}

/// A message the route took out of its channel just as the last subscriber went is published
/// to nobody, and counted in `unmatched`: the route waits in its channel for up to 100 ms
/// after each message, and the subscriber goes within that wait. (A race by nature: tried
/// until it happens, at most 20 times.) The messages sent while nobody subscribes wait in
/// the channel instead.
#[test]
fn a_message_published_as_the_last_subscriber_goes_is_counted_unmatched() {
    let port = free_port();
    let a = Bridge::open(loopback(Some(port), None)).unwrap();
    let z = zenoh::open(loopback(None, Some(port))).wait().unwrap();
    let out = private_channel();
    let key = unique("shmkit/test/unmatched");
    let forward = a.forward(out.clone(), 0, &key).unwrap();
    let mut tx = Sender::open(&out, 0).unwrap();
    let payload = |s: &zenoh::sample::Sample| {
        let b = s.payload().to_bytes();
        let f = shmkit::bridge::wire::decode(&b).unwrap();
        (f.kind, f.payload.to_vec())
    };
    for attempt in 0..20u32 {
        let sub = z.declare_subscriber(key.clone()).wait().unwrap();
        let ping = format!("ping {attempt}");
        tx.send(ping.as_bytes()).unwrap();
        // Until the ping: what was left in the channel last time comes first.
        loop {
            let s = sub
                .recv_timeout(Duration::from_secs(10))
                .unwrap()
                .expect("no ping");
            if payload(&s)
                == (
                    shmkit::bridge::wire::Kind::Message,
                    ping.clone().into_bytes(),
                )
            {
                break;
            }
        }
        let before = forward.stats().unmatched;
        drop(sub);
        std::thread::sleep(Duration::from_millis(20));
        tx.send(b"to nobody").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let s = forward.stats();
        if s.unmatched > before {
            assert_eq!(s.unmatched, before + 1, "{s:?}");
            return;
        }
    }
    panic!(
        "20 tries and no message counted unmatched: {:?}",
        forward.stats()
    );
}

/// Waits until `route`'s counters satisfy `f` (10 s at most).
fn wait_stats(route: &shmkit::bridge::Route, what: &str, f: impl Fn(&RouteStats) -> bool) {
    let t = Instant::now();
    while !f(&route.stats()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: {:?}",
            route.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A forged "sent up to" of u64::MAX, said twice (so believed), makes the gap count as large
/// as it goes, and no larger: more gaps after it do not wrap it to a small number. The real
/// route's messages still arrive.
#[test]
fn a_forged_sent_up_to_saturates_the_gap_count_and_stops_nothing() {
    use shmkit::bridge::wire::{encode, encode_sent_up_to, Origin};
    let (port, port_b) = (free_port(), free_port());
    let a = Bridge::open(loopback(Some(port), None)).unwrap();
    let b = Bridge::open(loopback(Some(port_b), Some(port))).unwrap();
    let key = unique("shmkit/test/saturate");
    let (out, inp) = (private_channel(), private_channel());
    let ingest = b.ingest(&key, inp.clone(), 0, OnFull::Drop).unwrap();
    let forward = a.forward(out.clone(), 0, &key).unwrap();
    let mut tx = Sender::open(&out, 0).unwrap();
    tx.send(b"real 0").unwrap();
    wait_stats(&ingest, "real 0", |s| s.ingested == 1);
    let forger = zenoh::open(loopback(None, Some(port_b))).wait().unwrap();
    let p = forger.declare_publisher(key.clone()).wait().unwrap();
    while !p.matching_status().wait().unwrap().matching() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut f = Vec::new();
    for _ in 0..2 {
        encode_sent_up_to(forward.origin().unwrap(), u64::MAX, &mut f);
        p.put(f.clone()).wait().unwrap();
    }
    wait_stats(&ingest, "gaps", |s| s.gaps == u64::MAX);
    let fake = Origin {
        bridge: [7; 16],
        route: 0,
    };
    encode(fake, 0, b"x", &mut f);
    p.put(f.clone()).wait().unwrap();
    encode_sent_up_to(fake, 2, &mut f);
    p.put(f.clone()).wait().unwrap();
    wait_stats(&ingest, "the fake one", |s| s.ingested == 2);
    for i in 1..=5u8 {
        tx.send(&[i]).unwrap();
    }
    wait_stats(&ingest, "real 1 to 5", |s| s.ingested == 7);
    // Each came late (counted lost by the forgery): one gap less each, from the top.
    let s = ingest.stop().unwrap();
    assert_eq!(s.gaps, u64::MAX - 5, "{s:?}");
}

/// A bridge started again with a fixed Zenoh id (`id` in its configuration) numbers its
/// messages from 0 again; its route is a new origin all the same, so none of them is taken
/// for an old one.
#[test]
fn a_bridge_started_again_with_a_fixed_zenoh_id_is_a_new_origin() {
    let port = free_port();
    let b = Bridge::open(loopback(Some(port), None)).unwrap();
    let key = unique("shmkit/test/fixed-id");
    let inp = private_channel();
    let ingest = b.ingest(&key, inp.clone(), 0, OnFull::Block).unwrap();
    let mut rx = Receiver::open(&inp, 0).unwrap();
    let mut buf = Vec::new();
    for run in 0..2u32 {
        let mut c = loopback(None, Some(port));
        c.insert_json5("id", r#""a1b2c3d4""#).unwrap();
        let a = Bridge::open(c).unwrap();
        let out = private_channel();
        let fwd = a.forward(out.clone(), 0, &key).unwrap();
        let mut tx = Sender::open(&out, 0).unwrap();
        for i in 0..50u32 {
            tx.send(format!("run {run} msg {i}").as_bytes()).unwrap();
        }
        for i in 0..50u32 {
            rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
            assert_eq!(buf, format!("run {run} msg {i}").as_bytes());
        }
        drop((fwd, a));
    }
    let s = ingest.stop().unwrap();
    assert_eq!((s.ingested, s.duplicates, s.gaps), (100, 0, 0), "{s:?}");
}

fn tiny_channel() -> Arc<shmkit::AnonShared> {
    Arc::new(private_spsc(SpscConfig::new(4096).max_message(64)))
}

/// A refused key touches no channel: a consumer waiting on an empty channel with no producer
/// yet times out, as it would with nobody there (it once saw ProducerGone: the route had
/// claimed the end before Zenoh refused the key).
#[test]
fn a_refused_key_does_not_look_like_a_producer_that_left() {
    let (_a, b) = pair();
    let inp = tiny_channel();
    let consumer = waiting_consumer(&inp);
    assert!(b.ingest("a//b", inp.clone(), 0, OnFull::Block).is_err());
    let e = consumer.join().unwrap();
    assert!(
        matches!(e, Some(shmkit::channel::RecvError::Timeout)),
        "{e:?}"
    );
}

/// A bus: bridge X ingests key K into a channel nobody reads (full, `Block`) and forwards
/// its own channel to K too. Its forwarding route goes on: Zenoh delivers X's own messages
/// to X's subscriber in the forwarding thread, and they are dropped as looped before the
/// blocked ingest's lock.
#[test]
fn a_blocked_ingest_does_not_hold_up_its_own_bridges_forwarding_to_the_same_key() {
    let (x, y) = pair();
    let key = unique("shmkit/test/bus");
    let (d, c, e) = (tiny_channel(), private_channel(), private_channel());
    let ingest = x.ingest(&key, d.clone(), 0, OnFull::Block).unwrap();
    let fx = x.forward(c.clone(), 0, &key).unwrap();
    let fy = y.forward(e.clone(), 0, &key).unwrap();
    // Y fills X's channel until X's ingest waits for room.
    let mut ty = Sender::open(&e, 0).unwrap();
    for i in 0..100u8 {
        ty.send_timeout(&[i; 64], Duration::from_secs(10)).unwrap();
    }
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = ingest.stats().ingested;
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    let mut tc = Sender::open(&c, 0).unwrap();
    for i in 0..20u8 {
        tc.send(&[i; 8]).unwrap();
    }
    wait_stats(&fx, "X forwards while its ingest waits", |s| {
        s.forwarded == 20
    });
    ingest.ask_stop();
    drop((ingest, fx, fy));
}
