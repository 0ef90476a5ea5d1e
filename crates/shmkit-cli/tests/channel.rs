//! `shmkit channel`: a shell script feeds and reads a channel; an operator sees why one is
//! stuck.

// Linux only: `shmkit channel` is (channels wait on futexes).
#![cfg(target_os = "linux")]

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
            .contains("1 messages received; then the producer closed the channel"),
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
/// Waits (10 s at most) until `channel stat` shows `n` consumers of broadcast channel `name`:
/// readers started in the background have taken their places.
fn wait_for_consumers(name: &str, n: usize) {
    let t = Instant::now();
    while json(&["channel", "stat", name, "--json"])["consumers"]
        .as_array()
        .unwrap()
        .len()
        < n
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "fewer than {n} readers started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    // A sender that is done frees its place for the next one (the first free place is
    // taken), so a fast sender can finish before the last one starts: 1 to 3 places were
    // taken, every one let go of.
    let places = s["producers"].as_array().unwrap();
    assert!((1..=3).contains(&places.len()), "{s}");
    assert!(
        places.iter().all(|p| p["holder"]["state"] == "closed"),
        "{s}"
    );
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
    wait_for_consumers(&name, 2);
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

/// `shmkit cat`'s exact bytes (the helpers' output is text).
fn bytes_of(name: &str, length: &str) -> Vec<u8> {
    let out = Command::new(BIN)
        .args(["cat", name, "--length", length])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_inventory_lists_a_channel_as_its_own_kind_and_rm_removes_it() {
    let (name, _gone) = channel("64K");
    let shown = name.trim_start_matches('/');
    let ls = json(&["ls", "--json"]);
    let o = find(&ls, &name).unwrap_or_else(|| panic!("{name} not in {ls:#}"));
    assert_eq!(o["kind"], "channel");
    assert_eq!(
        o["channel"],
        serde_json::json!({ "flavor": "spsc", "backing": "posix-shm" })
    );
    // The fields of the segment it lives in stay.
    assert_eq!(
        (o["name"].as_str(), o["mode"].as_str()),
        (Some(shown), Some("0600"))
    );
    assert!(
        o["inode"].as_u64().is_some() && o["size"].as_u64() > Some(65536),
        "{o}"
    );
    assert!(find(&json(&["ls", "-k", "posix-shm", "--json"]), &name).is_none());
    let table = ok(&["ls", "--kind", "channel"]);
    let row = table
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{name} not in\n{table}"));
    assert!(
        row.starts_with("channel ") && row.ends_with("spsc in posix-shm"),
        "{row}"
    );
    // info finds it by the segment's address; cat reads it as the segment it is.
    let info = json(&["info", &name, "--json"]);
    assert_eq!(
        (&info["kind"], &info["channel"]["flavor"]),
        (&o["kind"], &o["channel"]["flavor"])
    );
    let text = ok(&["info", &name]);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| Some(l.trim().strip_prefix(k)?.trim().to_string()))
    };
    assert_eq!(
        (field("kind"), field("flavor"), field("lives in")),
        (
            Some("channel".into()),
            Some("spsc".into()),
            Some("posix-shm".into())
        ),
        "{text}"
    );
    assert_eq!(&bytes_of(&name, "4"), b"shkR");
    // Used while a producer holds it; collectable as its segment once nobody does.
    let vouch = [
        "gc",
        "--dry-run",
        "--ignore-uninspected",
        "--older-than",
        "0",
        "--json",
    ];
    let gc = |kind: &str| json(&[&vouch[..], &["--kind", kind, "--match", &name]].concat());
    let (mut feeder, input) = feeder(&name);
    let t = Instant::now();
    while json(&["channel", "stat", &name, "--json"])["producer"]["alive"] != true {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the feeder never took its end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let held = json(&["ls", "-k", "channel", "--holders", "--json"]);
    let o = find(&held, &name).unwrap();
    assert!(
        o["holders"]
            .as_array()
            .unwrap()
            .contains(&feeder.id().into()),
        "{o}"
    );
    assert_eq!(gc("channel"), serde_json::json!([]));
    drop(input);
    assert!(feeder.wait().unwrap().success());
    let picked = gc("channel");
    assert_eq!(picked[0]["kind"], "channel", "{picked}");
    assert_eq!(picked[0]["action"], "would remove", "{picked}");
    assert_eq!(
        gc("posix-shm"),
        serde_json::json!([]),
        "posix-shm leaves channels"
    );
    // Removed by name, as its segment.
    let r = shmkit(&["rm", &name]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("(spsc channel in posix-shm,"), "{}", r.out);
    assert!(!std::path::Path::new(&format!("/dev/shm/{shown}")).exists());
    assert!(find(&json(&["ls", "-k", "channel", "--json"]), &name).is_none());
    assert_eq!(shmkit(&["info", &name]).code, 4);
}

#[test]
fn only_a_whole_ready_header_makes_a_segment_a_channel() {
    let (ch, _gone) = channel("4K");
    let header = bytes_of(&ch, "32");
    let mut building = header.clone();
    building[..4].copy_from_slice(&0x8000_0001u32.to_le_bytes()); // init_once mid-way
    let cases: [(&str, &str, &[u8], &str); 5] = [
        ("plain", "4K", b"no channel here, only bytes", "posix-shm"),
        ("building", "4K", &building, "posix-shm"),
        ("short", "8", &header[..8], "posix-shm"),
        // A ready header in a segment too short for the channel it announces (512 + 4 KiB).
        ("truncated", "1000", &header, "posix-shm"),
        // All that the inventory reads: a ready header and a shape that fits.
        ("header", "4608", &header, "channel"),
    ];
    let names: Vec<String> = cases
        .iter()
        .map(|(what, ..)| format!("/{}", unique(&format!("shmkit-cli-channel-{what}"))))
        .collect();
    let _gone_too = Gone(names.clone());
    for (name, (_, size, bytes, _)) in names.iter().zip(&cases) {
        ok(&["mk", "posix", name, "--size", size]);
        ok_in(&["write", name], bytes);
    }
    let ls = json(&["ls", "-k", "posix-shm", "-k", "channel", "--json"]);
    for (name, (what, _, _, kind)) in names.iter().zip(&cases) {
        let o = find(&ls, name).unwrap_or_else(|| panic!("{what}: {name} not in {ls:#}"));
        assert_eq!(o["kind"], *kind, "{what}: {o}");
        assert_eq!(
            o.get("channel").is_some(),
            *kind == "channel",
            "{what}: {o}"
        );
    }
    // A user who may not read the segment (mode 0600, root's) cannot tell: it is posix-shm.
    if root() {
        let r = as_nobody(&["ls", "-k", "posix-shm", "--json"]);
        assert_eq!(r.code, 0, "{}", r.err);
        let ls: serde_json::Value = serde_json::from_str(&r.out).unwrap();
        let o = find(&ls, &names[4]).unwrap_or_else(|| panic!("{} not in {ls:#}", names[4]));
        assert_eq!(o["kind"], "posix-shm", "{o}");
    }
}

#[test]
fn a_corrupt_channel_is_said_to_be_corrupt_and_a_late_broadcast_reader_counts_its_losses() {
    // head (offset 128) past what the 64-byte ring can hold: corrupt, not "no channel".
    let (name, _gone) = channel("64");
    let r = shmkit_in(&["write", &name, "--offset", "128"], &129u64.to_le_bytes());
    assert_eq!(r.code, 0, "{}", r.err);
    for args in [&["channel", "recv"][..], &["channel", "send"][..]] {
        let mut a = args.to_vec();
        a.push(&name);
        let r = shmkit_in(&a, b"x\n");
        assert_eq!(r.code, 3, "{args:?}: {}", r.err);
        assert!(r.err.contains("the channel is corrupt"), "{}", r.err);
        assert!(r.err.contains("shmkit rm"), "{}", r.err);
    }
    // A broadcast reader overrun by a fast sender says how many it lost, also at the end.
    let (b, _gone_b) = channel_of(
        "broadcast",
        &["--capacity", "4K", "--max-message", "16", "--places", "2"],
    );
    let mut reader = Command::new(BIN)
        .args(["channel", "recv", &b, "--count", "5000", "--timeout", "10s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_consumers(&b, 1);
    let input: String = (0..5000).map(|i| format!("{i}\n")).collect();
    assert_eq!(
        shmkit_in(&["channel", "send", &b], input.as_bytes()).code,
        0
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut reader.stderr.take().unwrap(), &mut err).unwrap();
    let st = reader.wait().unwrap();
    if st.success() {
        // It kept up with all 5,000 (a fast reader): nothing to say.
        assert!(!err.contains("lost"), "{err}");
    } else {
        assert_eq!(st.code(), Some(3), "{err}");
        assert!(err.contains("lost to overruns; then the producer"), "{err}");
        assert!(!err.contains("every message it sent was received"), "{err}");
    }
}
