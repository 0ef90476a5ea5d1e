//! The bridge between two "hosts": two network namespaces joined by a veth pair, each peer
//! with its own tmpfs on `/dev/shm` (so nothing can pass through shared memory: what arrives
//! crossed the network stack). Addresses are those of the namespaces the test makes, nothing
//! else. Needs root (CI runs as root); without it the test fails and says why.
#![cfg(all(feature = "bridge", target_os = "linux"))]

mod common;
use common::hosts::Hosts;
use common::stream::{check, message, Rng};
use common::{cue, say, unique, Peer};
use shmkit::bridge::{Bridge, OnFull, PeerStats, RouteStats};
use shmkit::channel::{spsc, Receiver, RecvError, Sender, SpscConfig};
use shmkit::PosixShm;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PORT: u16 = 7447;

fn config() -> SpscConfig {
    SpscConfig::new(1 << 18).max_message(4096)
}

/// A channel in a segment of this peer's own `/dev/shm`.
fn local_channel() -> Arc<PosixShm> {
    let seg = PosixShm::create(&format!("/{}", unique("shmkit-host")), config().size()).unwrap();
    spsc::create(&seg, 0, config()).unwrap();
    Arc::new(seg)
}

/// A route's counters and its bridge's peer counters, as a peer says them on "stats".
fn stats_line(s: &RouteStats, p: PeerStats) -> String {
    format!(
        "{} {} {} {} {} {} {} {}",
        s.forwarded, s.ingested, s.dropped, s.gaps, s.duplicates, s.garbage, p.lost, p.reconnects
    )
}

/// Sends `n` checkable messages of random sizes up to `max` bytes into the channel of `seg`
/// (a millisecond's pause every 50 if `paced`).
fn produce(seg: &PosixShm, n: u64, max: usize, paced: bool) {
    let mut tx = Sender::open(seg, 0).unwrap();
    let (mut rng, mut buf) = (Rng(0x05e4d), Vec::new());
    for i in 0..n {
        let len = 16 + rng.next() as usize % (max - 15);
        message(i, len, &mut rng, &mut buf);
        tx.send_timeout(&buf, Duration::from_secs(30)).unwrap();
        if paced && i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// This binary as a peer child of a peer, playing `role` with `args`: in the parent's
/// namespaces (its `/dev/shm` too), on its stdout, reading nothing.
fn child(role: &str, args: &[&str]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(common::PEER_ARGS)
        .env("SHMKIT_PEER_ROLE", role)
        .env("SHMKIT_PEER_ARGS", args.join("\u{1f}"))
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        // Host 1: listens on `args[0]`, forwards its channel to key `args[1]`; on "go" sends
        // `args[2]` messages of random sizes up to `args[3]` bytes (with `args[4]` "paced", a
        // millisecond's pause every 50; with an argument "short-lease", a link silent for
        // 1 s is closed).
        "send" => {
            let short = args.iter().any(|a| a == "short-lease");
            let bridge =
                Bridge::open(common::zenoh_peer::pick(short, Some(&args[0]), None)).unwrap();
            let seg = local_channel();
            let route = bridge.forward(seg.clone(), 0, &args[1]).unwrap();
            let (n, max): (u64, usize) = (args[2].parse().unwrap(), args[3].parse().unwrap());
            say("ready");
            assert_eq!(cue(), "go");
            produce(&seg, n, max, args.get(4).is_some_and(|p| p == "paced"));
            say("sent");
            while cue() == "stats" {
                say(stats_line(&route.stats(), bridge.peers()));
            }
        }
        // Host 2: connects to `args[0]`, ingests key `args[1]` into its channel (`args[3]`:
        // block or drop); its consumer is a child process, which expects `args[2]` messages
        // (`args[4]`: how, see "consume"; "short-lease" as for "send").
        "receive" => {
            let short = args.iter().any(|a| a == "short-lease");
            let bridge =
                Bridge::open(common::zenoh_peer::pick(short, None, Some(&args[0]))).unwrap();
            let seg = local_channel();
            let on_full = if args[3] == "drop" {
                OnFull::Drop
            } else {
                OnFull::Block
            };
            let route = bridge.ingest(&args[1], seg.clone(), 0, on_full).unwrap();
            // The consumer: this binary again, in this mount namespace (it sees this
            // `/dev/shm`), reporting on the same stdout.
            let mut consumer = child(
                "consume",
                &[seg.name(), args[2].as_str(), args.get(4).map_or("", |m| m)],
            );
            say("ready");
            while cue() == "stats" {
                say(stats_line(&route.stats(), bridge.peers()));
            }
            let _ = consumer.kill();
            let _ = consumer.wait();
        }
        // Receives until `args[1]` messages came or none came for 3 s (15 s with `args[2]`
        // "patient"), each checked and in order (numbers may be skipped: dropped ones); says
        // how many and how many skipped. With `args[2]` "repeats", messages may come again
        // and out of order (at least once: a restarted bridge sends again what the dead one
        // had read): it counts the repeats and waits for every number.
        "consume" => {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .unwrap();
            let seg = PosixShm::open(&args[0]).unwrap();
            let n: u64 = args[1].parse().unwrap();
            let again_ok = args.get(2).is_some_and(|m| m == "repeats");
            let patience = if args.get(2).is_some_and(|m| m == "patient") {
                Duration::from_secs(15)
            } else {
                Duration::from_secs(3)
            };
            let mut rx = Receiver::open(&seg, 0).unwrap();
            say(format!("consumer {}", std::process::id()));
            let (mut buf, mut got, mut next) = (Vec::new(), 0u64, 0u64);
            let (mut seen, mut repeats) = (vec![false; n as usize], 0u64);
            while got < n && (again_ok || next < n) {
                match rx.recv_timeout(&mut buf, patience) {
                    Ok(_) => {}
                    Err(RecvError::Timeout) => break,
                    Err(e) => panic!("{e}"),
                }
                let seq = check(&buf);
                if again_ok {
                    if std::mem::replace(&mut seen[seq as usize], true) {
                        repeats += 1;
                    } else {
                        got += 1;
                    }
                    continue;
                }
                assert!(
                    seq >= next,
                    "message {seq} after {next}: duplicated or out of order"
                );
                got += 1;
                next = seq + 1;
            }
            if again_ok {
                // The missing numbers as runs of consecutive ones, and whether the last came.
                let runs = (0..seen.len())
                    .filter(|&i| !seen[i] && (i == 0 || seen[i - 1]))
                    .count();
                say(format!(
                    "got {got} missing {} repeats {repeats} runs {runs} last {}",
                    n - got,
                    seen.last().copied().unwrap_or(false)
                ));
            } else {
                say(format!("got {got} missing {}", n - got));
            }
        }
        // Host 1 with its producer and its bridge in two processes: the bridge is a child
        // (role "forward"), killed with SIGKILL and started again on the cue "kill"; on "go"
        // the producer sends `args[2]` messages of random sizes up to `args[3]` bytes, paced
        // (a millisecond every 50) so that the stream outlasts a restart.
        "produce" => {
            let seg = local_channel();
            let forward = [seg.name(), args[0].as_str(), args[1].as_str()];
            let mut bridge = child("forward", &forward);
            let (n, max): (u64, usize) = (args[2].parse().unwrap(), args[3].parse().unwrap());
            say("ready");
            assert_eq!(cue(), "go");
            let s = seg.clone();
            let producer = std::thread::spawn(move || produce(&s, n, max, true));
            while cue() == "kill" {
                bridge.kill().unwrap();
                bridge.wait().unwrap();
                bridge = child("forward", &forward);
            }
            producer.join().unwrap();
            say("sent");
            let _ = cue();
            let _ = bridge.kill();
            let _ = bridge.wait();
        }
        // A bridge alone: listens on `args[1]`, forwards the channel of segment `args[0]` to
        // key `args[2]` until killed.
        "forward" => {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .unwrap();
            let seg = Arc::new(PosixShm::open(&args[0]).unwrap());
            let bridge = Bridge::open(common::zenoh_peer::config(Some(&args[1]), None)).unwrap();
            let _route = bridge.forward(seg, 0, &args[2]).unwrap();
            say(format!("forwarding {}", std::process::id()));
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        _ => panic!("unknown role {role}"),
    }
}

/// The counters a peer says on "stats": forwarded, ingested, dropped, gaps, duplicates,
/// garbage, and its bridge's links lost and reconnects.
fn stats(p: &mut Peer) -> Vec<u64> {
    p.send("stats");
    p.recv().split(' ').map(|x| x.parse().unwrap()).collect()
}

/// Starts a sender on host 1 and a receiver (bridge and consumer) on host 2; returns them
/// and the consumer's pid, once both bridges are up.
fn start(hosts: &Hosts, n: u64, max: usize, on_full: &str) -> (Peer, Peer, i32) {
    start_with(hosts, n, max, on_full, false, false)
}

/// As `start`, the sender pausing a millisecond every 50 messages if `paced`, both bridges
/// giving up a silent link after 1 s if `short_lease` (and the consumer patient: it waits
/// 15 s for a message).
fn start_with(
    hosts: &Hosts,
    n: u64,
    max: usize,
    on_full: &str,
    paced: bool,
    short_lease: bool,
) -> (Peer, Peer, i32) {
    let key = format!("shmkit/test/{}", unique("hosts"));
    let at = format!("{}:{PORT}", hosts.addrs[0]);
    let pace = if paced { "paced" } else { "" };
    let (lease, mode) = if short_lease {
        ("short-lease", "patient")
    } else {
        ("", "")
    };
    let mut send = hosts.spawn(
        0,
        "send",
        &[&at, &key, &n.to_string(), &max.to_string(), pace, lease],
    );
    assert_eq!(send.recv(), "ready");
    let mut recv = hosts.spawn(
        1,
        "receive",
        &[&at, &key, &n.to_string(), on_full, mode, lease],
    );
    let (mut ready, mut consumer) = (false, None);
    while !ready || consumer.is_none() {
        let line = recv.recv();
        match line.split_once(' ') {
            Some(("consumer", pid)) => consumer = Some(pid.parse().unwrap()),
            _ if line == "ready" => ready = true,
            _ => panic!("{line}"),
        }
    }
    (send, recv, consumer.unwrap())
}

/// The consumer's last line: how many messages it got and how many were missing.
fn outcome(recv: &mut Peer) -> (u64, u64) {
    let line = recv.recv();
    let w: Vec<&str> = line.split(' ').collect();
    match w[..] {
        ["got", got, "missing", missing, ..] => (got.parse().unwrap(), missing.parse().unwrap()),
        _ => panic!("{line}"),
    }
}

#[test]
fn ten_thousand_messages_cross_between_two_hosts_in_order_and_whole() {
    let hosts = Hosts::new();
    let n = 10_000;
    let (mut send, mut recv, _) = start(&hosts, n, 4096, "block");
    send.send("go");
    assert_eq!(send.recv(), "sent");
    assert_eq!(outcome(&mut recv), (n, 0));
    assert_eq!(stats(&mut send)[0], n);
    let r = stats(&mut recv);
    assert_eq!((r[1], r[2], r[3], r[4], r[5]), (n, 0, 0, 0, 0), "{r:?}");
}

/// The receiving application stopped (SIGSTOP) for 2 s, then resumed: with `block` nothing is
/// lost (everything waits: the local channel, Zenoh, the sender); with `drop` the messages the
/// bridge dropped are exactly those the consumer misses, and none was lost on the network.
#[test]
fn a_receiver_stopped_for_two_seconds_loses_nothing_with_block_and_what_drop_counts() {
    let hosts = Hosts::new();
    for on_full in ["block", "drop"] {
        let n = 20_000;
        let (mut send, mut recv, consumer) = start(&hosts, n, 1024, on_full);
        // SAFETY: kill(2) on the consumer, a process this test started (through its peer).
        assert_eq!(unsafe { libc::kill(consumer, libc::SIGSTOP) }, 0);
        send.send("go");
        std::thread::sleep(Duration::from_secs(2));
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(consumer, libc::SIGCONT) }, 0);
        let t = Instant::now();
        let (got, missing) = outcome(&mut recv);
        assert!(t.elapsed() < Duration::from_secs(60));
        assert_eq!(send.recv(), "sent");
        let r = stats(&mut recv);
        let (ingested, dropped, gaps, duplicates) = (r[1], r[2], r[3], r[4]);
        eprintln!(
            "{on_full}: {got} received, {missing} missing; ingested {ingested}, dropped {dropped}"
        );
        assert_eq!((gaps, duplicates), (0, 0), "{on_full}: {r:?}");
        if on_full == "block" {
            assert_eq!((got, missing, dropped), (n, 0, 0), "{r:?}");
        } else {
            assert!(
                dropped > 0,
                "nothing was dropped while the consumer was stopped: {r:?}"
            );
            assert_eq!(missing, dropped, "{r:?}");
            assert_eq!(ingested + dropped, n, "{r:?}");
        }
        drop((send, recv));
    }
}

/// Reads lines from `p` until `want` says it has all it needs; panics on an unknown line.
fn lines_until(p: &mut Peer, mut want: impl FnMut(&str) -> bool) {
    loop {
        let line = p.recv();
        if want(&line) {
            return;
        }
    }
}

/// The bridge of host 1 killed with SIGKILL mid-stream, then started again: its producer
/// carries on (it waits when the channel is full, it is never told anything went), the new
/// bridge takes the dead one's end over and the stream resumes to the last message. What the
/// dead bridge had read and published but Zenoh had not delivered is lost, in one run (no
/// acknowledgements yet, so not at least once, and the new bridge's origin is a new one, so
/// the receiver cannot count that run as a gap); what it had read and not given back comes
/// again, from the new bridge.
#[test]
fn a_bridge_killed_mid_stream_and_started_again_resumes_and_its_producer_carries_on() {
    let hosts = Hosts::new();
    let n: u64 = 20_000;
    let key = format!("shmkit/test/{}", unique("restart"));
    let at = format!("{}:{PORT}", hosts.addrs[0]);
    let mut send = hosts.spawn(0, "produce", &[&at, &key, &n.to_string(), "1024"]);
    let (mut ready, mut forwarding) = (false, false);
    lines_until(&mut send, |l| {
        ready |= l == "ready";
        forwarding |= l.starts_with("forwarding ");
        ready && forwarding
    });
    let mut recv = hosts.spawn(
        1,
        "receive",
        &[&at, &key, &n.to_string(), "block", "repeats"],
    );
    let (mut ready, mut consumer) = (false, false);
    lines_until(&mut recv, |l| {
        ready |= l == "ready";
        consumer |= l.starts_with("consumer ");
        ready && consumer
    });
    send.send("go");
    std::thread::sleep(Duration::from_millis(150));
    send.send("kill");
    lines_until(&mut send, |l| l.starts_with("forwarding "));
    send.send("done");
    let line = recv.recv();
    let w: Vec<&str> = line.split(' ').collect();
    let ["got", got, "missing", missing, "repeats", repeats, "runs", runs, "last", last] = w[..]
    else {
        panic!("{line}")
    };
    let num = |x: &str| x.parse::<u64>().unwrap();
    let (got, missing, repeats, runs) = (num(got), num(missing), num(repeats), num(runs));
    eprintln!(
        "after a restart: {got} received, {missing} missing in {runs} run(s), {repeats} received \
         again"
    );
    // What the dead bridge had read and published and Zenoh had not delivered is lost (one
    // run, the messages in flight at the kill: this is not yet at least once); everything
    // after arrives, sent by the new bridge.
    assert!(runs <= 1 && last == "true", "{line}");
    assert!(missing < 2_000, "{line}");
    assert_eq!(got + missing, n);
    // What the dead bridge had read and not given back comes again: at most what the channel
    // holds.
    let most = (config().capacity / 32) as u64;
    assert!(
        repeats <= most,
        "{repeats} repeats, more than the {most} the channel holds"
    );
    assert_eq!(send.recv(), "sent");
    let r = stats(&mut recv);
    assert_eq!((r[3], r[5]), (0, 0), "gaps or garbage: {r:?}");
}

/// Starts a paced stream of `n` messages of up to 1 KiB from host 1 to host 2 (bridges that
/// give a silent link up after 1 s if `short_lease`), takes the link down mid-stream for
/// `outage` and returns the peers and what the receiver had ingested when it went down; the
/// link is still down.
fn cut_mid_stream(hosts: &Hosts, n: u64, short_lease: bool, outage: Duration) -> (Peer, Peer, u64) {
    let (mut send, mut recv, _) = start_with(hosts, n, 1024, "block", true, short_lease);
    send.send("go");
    std::thread::sleep(Duration::from_millis(100));
    hosts.link("down");
    // Mid-stream: not everything is there yet.
    let before = stats(&mut recv)[1];
    assert!(before < n, "the stream was over before the link went down");
    std::thread::sleep(outage);
    (send, recv, before)
}

/// The link between the hosts down for 2 s mid-stream, then up again: Zenoh holds the
/// stream meanwhile (within its lease and its blocking limit, both longer than 2 s by
/// default) and nothing is lost or repeated.
#[test]
fn the_link_down_for_two_seconds_loses_nothing() {
    let hosts = Hosts::new();
    let n = 20_000;
    let (mut send, mut recv, before) = cut_mid_stream(&hosts, n, false, Duration::from_secs(2));
    let during = stats(&mut recv)[1];
    hosts.link("up");
    assert_eq!(outcome(&mut recv), (n, 0));
    assert_eq!(send.recv(), "sent");
    let r = stats(&mut recv);
    eprintln!("link down: {before} ingested before, {during} at the end of the outage, {n} after");
    assert_eq!((r[1], r[2], r[3], r[4], r[5]), (n, 0, 0, 0, 0), "{r:?}");
}

/// The link down for 2.5 s with bridges that give a silent link up after 1 s: both lose
/// their link and say so, Zenoh reconnects by itself once it is up, the stream resumes to
/// its last message, and the receiving side's gap count is exactly what the consumer misses
/// (the messages that were in flight when the link was closed).
#[test]
fn the_link_down_longer_than_the_lease_is_reported_reconnected_and_its_gaps_counted_exactly() {
    let hosts = Hosts::new();
    let n = 20_000;
    let (mut send, mut recv, before) = cut_mid_stream(&hosts, n, true, Duration::from_millis(2500));
    // (The sender answers only once it has sent everything.)
    let r = stats(&mut recv);
    assert!(
        r[6] >= 1,
        "a link silent for 2.5 s with a 1 s lease was not reported lost: {r:?}"
    );
    hosts.link("up");
    let t = Instant::now();
    let (got, missing) = outcome(&mut recv);
    assert_eq!(send.recv(), "sent");
    let (s, r) = (stats(&mut send), stats(&mut recv));
    eprintln!(
        "link down past the lease: {before} ingested before; after: {got} received, {missing} \
         missing, gaps {}, links lost {}/{}, reconnects {}/{} (sender/receiver), resumed in {:?}",
        r[3],
        s[6],
        r[6],
        s[7],
        r[7],
        t.elapsed()
    );
    assert!(
        s[6] >= 1 && r[6] >= 1,
        "a link not reported lost: {s:?} {r:?}"
    );
    assert!(s[7] >= 1 && r[7] >= 1, "no reconnect: {s:?} {r:?}");
    assert_eq!(got + missing, n);
    assert_eq!(
        r[3], missing,
        "gaps counted {} but {missing} are missing: {r:?}",
        r[3]
    );
    assert_eq!((r[1], r[4], r[5]), (got, 0, 0), "{r:?}");
    // What was lost was in flight at the close, not the stream since: the sender published
    // everything.
    assert_eq!(s[0], n, "{s:?}");
}
