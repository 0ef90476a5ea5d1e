//! `shmkit channel`: a shell script feeds and reads a channel; an operator sees why one is
//! stuck.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn channel(capacity: &str) -> (String, Gone) {
    let name = format!("/{}", unique("shmkit-cli-channel"));
    let gone = Gone(vec![name.clone()]);
    assert_eq!(
        ok(&["channel", "mk", &name, "--capacity", capacity]).trim(),
        name
    );
    (name, gone)
}

/// `shmkit channel send NAME` reading the pipe it returns, for lines written later.
fn feeder(name: &str) -> (std::process::Child, std::process::ChildStdin) {
    let mut c = Command::new(BIN)
        .args(["channel", "send", name])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let input = c.stdin.take().unwrap();
    (c, input)
}

#[test]
fn lines_in_lines_out_and_stat_says_what_is_there() {
    let (name, _gone) = channel("4K");
    let sent = shmkit_in(
        &["channel", "send", &name],
        b"hello\n\nworld \xff\nno newline",
    );
    assert_eq!(sent.code, 0, "{}", sent.err);
    let s = json(&["channel", "stat", &name, "--json"]);
    assert_eq!(s["kind"], "spsc");
    assert_eq!(s["capacity"], 4096);
    // Four records: 8 bytes of header each, payloads rounded up to 8.
    assert_eq!(s["used"], (8 + 8) + 8 + (8 + 8) + (8 + 16));
    assert_eq!(s["producer"]["state"], "closed");
    assert_eq!(s["consumer"]["state"], "never held");
    let r = done(
        Command::new(BIN)
            .args(["channel", "recv", &name])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0);
    let got = Command::new(BIN)
        .args(["channel", "stat", &name])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&got.stdout).contains("fill       0 B of 4 KiB"));
    // The bytes exactly, each message a line.
    let (name2, _gone2) = channel("4K");
    shmkit_in(
        &["channel", "send", &name2],
        b"hello\n\nworld \xff\nno newline",
    );
    let out = Command::new(BIN)
        .args(["channel", "recv", &name2])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"hello\n\nworld \xff\nno newline\n");
    // Empty now: nothing printed, success.
    let again = shmkit(&["channel", "recv", &name2]);
    assert_eq!((again.code, again.out.as_str()), (0, ""));
}

#[test]
fn counts_timeouts_and_refusals_have_their_exit_codes() {
    let (name, _gone) = channel("256");
    shmkit_in(&["channel", "send", &name], b"only one\n");
    let t = Instant::now();
    let r = shmkit(&[
        "channel",
        "recv",
        &name,
        "--count",
        "2",
        "--timeout",
        "200ms",
    ]);
    // The producer (the send above) closed the channel: said at once, not at the timeout.
    assert_eq!(r.out, "only one\n");
    assert_eq!(r.code, 3, "{}", r.err);
    assert!(
        r.err
            .contains("1 messages received; then: the producer closed the channel"),
        "{}",
        r.err
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // A producer that stays: the wait runs out (exit 6).
    let (mut feeder, mut input) = feeder(&name);
    input.write_all(b"two\n").unwrap();
    input.flush().unwrap();
    // Once it holds its end (a consumer that comes while the end is closed is told so).
    let t = Instant::now();
    while json(&["channel", "stat", &name, "--json"])["producer"]["alive"] != true {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the feeder never took its end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = shmkit(&[
        "channel",
        "recv",
        &name,
        "--count",
        "2",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(r.out, "two\n");
    assert_eq!(r.code, 6, "{}", r.err);
    assert!(
        r.err.contains("no more came before the timeout"),
        "{}",
        r.err
    );
    drop(input);
    assert!(feeder.wait().unwrap().success());
    // Too long a line: its number, and nothing after it sent.
    let long = format!("short\n{}\nafter\n", "x".repeat(200));
    let r = shmkit_in(&["channel", "send", &name], long.as_bytes());
    assert_eq!(r.code, 3);
    assert!(
        r.err.contains("line 2") && r.err.contains("larger than the channel's largest"),
        "{}",
        r.err
    );
    assert_eq!(shmkit(&["channel", "recv", &name]).out, "short\n");
    // Names taken, shapes that cannot be.
    let r = shmkit(&["channel", "mk", &name, "--capacity", "4K"]);
    assert_eq!(r.code, 2, "{}", r.err);
    let bad = format!("/{}", unique("shmkit-cli-channel-bad"));
    let _bad_gone = Gone(vec![bad.clone()]);
    let r = shmkit(&["channel", "mk", &bad, "--capacity", "100"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("not a power of two"), "{}", r.err);
    assert_eq!(
        shmkit(&["info", &bad]).code,
        4,
        "a failed mk left its segment"
    );
}

#[test]
fn follow_reads_across_producers_and_stat_names_a_dead_holder() {
    let (name, _gone) = channel("64K");
    let mut reader = Command::new(BIN)
        .args(["channel", "recv", &name, "--follow", "--timeout", "700ms"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    // A first producer that sends and goes, then a second one.
    let mut first: String = (0..50).map(|i| format!("message {i}\n")).collect();
    let r = shmkit_in(&["channel", "send", &name], first.as_bytes());
    assert_eq!(r.code, 0, "{}", r.err);
    first.clear();
    let (mut feeder, mut input) = feeder(&name);
    for i in 50..100 {
        writeln!(input, "message {i}").unwrap();
    }
    input.flush().unwrap();
    for i in 0..100 {
        assert_eq!(lines.next().unwrap().unwrap(), format!("message {i}"));
    }
    // The feeder is killed: stat names it dead.
    let pid = feeder.id();
    feeder.kill().unwrap();
    feeder.wait().unwrap();
    let s = json(&["channel", "stat", &name, "--json"]);
    assert_eq!(s["producer"]["pid"], pid);
    assert_eq!(s["producer"]["alive"], false);
    assert_eq!(s["consumer"]["alive"], true, "{s}");
    // The follower waits on for a next producer, until its timeout (exit 6).
    let t = Instant::now();
    assert!(lines.next().is_none());
    let status = reader.wait().unwrap();
    assert_eq!(status.code(), Some(6), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    drop(input);
}

#[test]
fn a_segment_that_is_no_channel_is_the_wrong_kind_of_object() {
    let name = format!("/{}", unique("shmkit-cli-channel-not"));
    let _gone = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "4K"]);
    for args in [
        &["channel", "send", &name][..],
        &["channel", "recv", &name],
        &["channel", "stat", &name],
    ] {
        let r = shmkit_in(args, b"hi\n");
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert!(r.err.contains("holds no channel"), "{args:?}: {}", r.err);
    }
    let r = shmkit(&["channel", "mk", &name, "--capacity", "4K"]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("exists already") && r.err.contains("shmkit rm"),
        "{}",
        r.err
    );
}

/// A channel of `kind` (mpsc or broadcast) made with `extra` options.
fn channel_of(kind: &str, extra: &[&str]) -> (String, Gone) {
    let name = format!("/{}", unique(&format!("shmkit-cli-{kind}")));
    let gone = Gone(vec![name.clone()]);
    let mut args = vec!["channel", "mk", &name, "--kind", kind];
    args.extend_from_slice(extra);
    assert_eq!(ok(&args).trim(), name);
    (name, gone)
}

#[test]
fn mpsc_many_senders_one_reader_in_each_senders_order() {
    let (name, _gone) = channel_of("mpsc", &["--capacity", "4K", "--max-message", "40"]);
    let s = json(&["channel", "stat", &name, "--json"]);
    assert_eq!(
        (s["kind"].as_str(), s["slots"].as_u64()),
        (Some("mpsc"), Some(64))
    );
    // Three senders at once, each 200 lines; the reader sees 600, each sender's in order.
    let senders: Vec<_> = (0..3)
        .map(|id| {
            let input: String = (0..200).map(|i| format!("{id} {i}\n")).collect();
            let mut c = Command::new(BIN)
                .args(["channel", "send", &name, "--timeout", "20s"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut w = c.stdin.take().unwrap();
            std::thread::spawn(move || w.write_all(input.as_bytes()).unwrap());
            c
        })
        .collect();
    let r = done(
        Command::new(BIN)
            .args([
                "channel",
                "recv",
                &name,
                "--count",
                "600",
                "--timeout",
                "20s",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let mut next = [0u32; 3];
    for line in r.out.lines() {
        let (id, i) = line.split_once(' ').unwrap();
        let (id, i): (usize, u32) = (id.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[id], "sender {id} out of order");
        next[id] += 1;
    }
    assert_eq!(next, [200; 3]);
    for mut c in senders {
        assert!(c.wait().unwrap().success());
    }
    let s = json(&["channel", "stat", &name, "--json"]);
    assert_eq!(
        (
            s["tail"].as_u64(),
            s["head"].as_u64(),
            s["skipped"].as_u64()
        ),
        (Some(600), Some(600), Some(0))
    );
    assert_eq!(s["producers"].as_array().unwrap().len(), 3);
    // A message larger than the largest is refused, as are places on an spsc channel.
    let big = shmkit_in(&["channel", "send", &name], &[b'x'; 41]);
    assert_ne!(big.code, 0);
    assert!(
        big.err.contains("larger than the channel's largest"),
        "{}",
        big.err
    );
}

#[test]
fn broadcast_every_reader_gets_every_line_and_stat_shows_each() {
    let (name, _gone) = channel_of(
        "broadcast",
        // 512 slots of 128 bytes: the hundred lines fit, so no reader is overrun.
        &["--capacity", "64K", "--max-message", "64", "--places", "4"],
    );
    // Two readers, started before the sender (a reader starts at the next message).
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut c = Command::new(BIN)
                .args([
                    "channel",
                    "recv",
                    &name,
                    "--count",
                    "100",
                    "--timeout",
                    "20s",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let out = BufReader::new(c.stdout.take().unwrap());
            (c, out)
        })
        .collect();
    // Both have taken a place once stat shows two consumers.
    let t = Instant::now();
    while json(&["channel", "stat", &name, "--json"])["consumers"]
        .as_array()
        .unwrap()
        .len()
        < 2
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the readers did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let input: String = (0..100).map(|i| format!("line {i}\n")).collect();
    let sent = shmkit_in(&["channel", "send", &name], input.as_bytes());
    assert_eq!(sent.code, 0, "{}", sent.err);
    for (mut c, out) in readers {
        let lines: Vec<String> = out.lines().map(Result::unwrap).collect();
        assert_eq!(lines.len(), 100);
        assert!(lines
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line {i}")));
        assert!(c.wait().unwrap().success());
    }
    let s = json(&["channel", "stat", &name, "--json"]);
    assert_eq!(s["published"], 100);
    assert_eq!(s["max_consumers"], 4);
    for c in s["consumers"].as_array().unwrap() {
        assert_eq!(
            (c["cursor"].as_u64(), c["overruns_lost"].as_u64()),
            (Some(100), Some(0))
        );
        assert_eq!(c["holder"]["state"], "closed");
    }
    let text = ok(&["channel", "stat", &name]);
    assert!(
        text.contains("(broadcast)") && text.contains("published  100 messages"),
        "{text}"
    );
    // Unknown kinds and places on spsc are usage errors.
    let bad = shmkit_in(
        &[
            "channel",
            "mk",
            "/shmkit-cli-nokind",
            "--kind",
            "fanout",
            "--capacity",
            "4K",
        ],
        b"",
    );
    assert_eq!(bad.code, 2);
    assert!(bad.err.contains("spsc, mpsc or broadcast"), "{}", bad.err);
    let bad = shmkit_in(
        &[
            "channel",
            "mk",
            "/shmkit-cli-noplaces",
            "--capacity",
            "4K",
            "--places",
            "2",
        ],
        b"",
    );
    assert_eq!(bad.code, 2, "{}", bad.err);
}
