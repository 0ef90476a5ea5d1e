//! The bridge between two "hosts": two network namespaces joined by a veth pair, each peer
//! with its own tmpfs on `/dev/shm` (so nothing can pass through shared memory: what arrives
//! crossed the network stack). Addresses are those of the namespaces the test makes, nothing
//! else. Needs root (CI runs as root); without it the test fails and says why.
#![cfg(all(feature = "bridge", target_os = "linux"))]

mod common;
use common::stream::{check, message, Rng};
use common::{cue, say, unique, Peer};
use shmkit::bridge::{Bridge, OnFull, RouteStats};
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

fn stats_line(s: &RouteStats) -> String {
    format!(
        "{} {} {} {} {} {}",
        s.forwarded, s.ingested, s.dropped, s.gaps, s.duplicates, s.garbage
    )
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        // Host 1: listens on `args[0]`, forwards its channel to key `args[1]`; on "go" sends
        // `args[2]` messages of random sizes up to `args[3]` bytes.
        "send" => {
            let bridge = Bridge::open(common::zenoh_peer::config(Some(&args[0]), None)).unwrap();
            let seg = local_channel();
            let route = bridge.forward(seg.clone(), 0, &args[1]).unwrap();
            let (n, max): (u64, usize) = (args[2].parse().unwrap(), args[3].parse().unwrap());
            say("ready");
            assert_eq!(cue(), "go");
            let mut tx = Sender::open(&seg, 0).unwrap();
            let (mut rng, mut buf) = (Rng(0x05e4d), Vec::new());
            for i in 0..n {
                let len = 16 + rng.next() as usize % (max - 15);
                message(i, len, &mut rng, &mut buf);
                tx.send_timeout(&buf, Duration::from_secs(30)).unwrap();
            }
            say("sent");
            while cue() == "stats" {
                say(stats_line(&route.stats()));
            }
        }
        // Host 2: connects to `args[0]`, ingests key `args[1]` into its channel (`args[3]`:
        // block or drop); its consumer is a child process, which expects `args[2]` messages.
        "receive" => {
            let bridge = Bridge::open(common::zenoh_peer::config(None, Some(&args[0]))).unwrap();
            let seg = local_channel();
            let on_full = if args[3] == "drop" {
                OnFull::Drop
            } else {
                OnFull::Block
            };
            let route = bridge.ingest(&args[1], seg.clone(), 0, on_full).unwrap();
            // The consumer: this binary again, in this mount namespace (it sees this
            // `/dev/shm`), reporting on the same stdout.
            let mut consumer = Command::new(std::env::current_exe().unwrap())
                .args(common::PEER_ARGS)
                .env("SHMKIT_PEER_ROLE", "consume")
                .env(
                    "SHMKIT_PEER_ARGS",
                    [seg.name(), args[2].as_str()].join("\u{1f}"),
                )
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap();
            say("ready");
            while cue() == "stats" {
                say(stats_line(&route.stats()));
            }
            let _ = consumer.kill();
            let _ = consumer.wait();
        }
        // Receives until `args[1]` messages came or none came for 3 s, each checked and in
        // order (numbers may be skipped: dropped ones); says how many and how many skipped.
        "consume" => {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .unwrap();
            let seg = PosixShm::open(&args[0]).unwrap();
            let n: u64 = args[1].parse().unwrap();
            let mut rx = Receiver::open(&seg, 0).unwrap();
            say(format!("consumer {}", std::process::id()));
            let (mut buf, mut got, mut next) = (Vec::new(), 0u64, 0u64);
            while next < n {
                match rx.recv_timeout(&mut buf, Duration::from_secs(3)) {
                    Ok(_) => {}
                    Err(RecvError::Timeout) => break,
                    Err(e) => panic!("{e}"),
                }
                let seq = check(&buf);
                assert!(
                    seq >= next,
                    "message {seq} after {next}: duplicated or out of order"
                );
                got += 1;
                next = seq + 1;
            }
            say(format!("got {got} missing {}", n - got));
        }
        _ => panic!("unknown role {role}"),
    }
}

/// Two network namespaces joined by a veth pair (`10.x.y.1` and `.2`), deleted on drop.
struct Hosts {
    names: [String; 2],
    addrs: [String; 2],
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {} (the bridge's host tests make network namespaces: they need root and \
         iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Deletes the namespaces an earlier run of these tests left when it was killed (named
/// `shmkit-h-PID-...`, PID a process that is gone): only ours, never another's.
fn sweep_stale_namespaces() {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let pid = name
            .strip_prefix("shmkit-h-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
}

impl Hosts {
    fn new() -> Hosts {
        sweep_stale_namespaces();
        static K: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = unique("h");
        let names = [format!("shmkit-{id}-a"), format!("shmkit-{id}-b")];
        // veth names are at most 15 bytes, and made in this namespace before they move.
        let v = format!(
            "shv{}x{}",
            std::process::id() % 100_000,
            K.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100
        );
        let (va, vb) = (format!("{v}a"), format!("{v}b"));
        // The two namespaces see no other network: any addresses do.
        let addrs = ["10.201.0.1".to_string(), "10.201.0.2".to_string()];
        let hosts = Hosts {
            names: names.clone(),
            addrs: addrs.clone(),
        };
        for ns in &names {
            ip(&["netns", "add", ns]);
        }
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        for (i, v) in [&va, &vb].into_iter().enumerate() {
            ip(&["link", "set", v, "netns", &names[i]]);
            ip(&[
                "-n",
                &names[i],
                "addr",
                "add",
                &format!("{}/24", addrs[i]),
                "dev",
                v,
            ]);
            ip(&["-n", &names[i], "link", "set", v, "up"]);
            ip(&["-n", &names[i], "link", "set", "lo", "up"]);
        }
        hosts
    }

    /// Runs role `role` in host `i`, with its own `/dev/shm`.
    fn spawn(&self, i: usize, role: &str, args: &[&str]) -> Peer {
        let wrap = [
            "ip",
            "netns",
            "exec",
            &self.names[i],
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=64m,mode=1777 tmpfs /dev/shm && exec "$0" "$@""#,
        ];
        Peer::spawn_in(&wrap, role, args)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The counters a peer says on "stats": forwarded, ingested, dropped, gaps, duplicates,
/// garbage.
fn stats(p: &mut Peer) -> Vec<u64> {
    p.send("stats");
    p.recv().split(' ').map(|x| x.parse().unwrap()).collect()
}

/// Starts a sender on host 1 and a receiver (bridge and consumer) on host 2; returns them
/// and the consumer's pid, once both bridges are up.
fn start(hosts: &Hosts, n: u64, max: usize, on_full: &str) -> (Peer, Peer, i32) {
    let key = format!("shmkit/test/{}", unique("hosts"));
    let at = format!("{}:{PORT}", hosts.addrs[0]);
    let mut send = hosts.spawn(0, "send", &[&at, &key, &n.to_string(), &max.to_string()]);
    assert_eq!(send.recv(), "ready");
    let mut recv = hosts.spawn(1, "receive", &[&at, &key, &n.to_string(), on_full]);
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
        ["got", got, "missing", missing] => (got.parse().unwrap(), missing.parse().unwrap()),
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
