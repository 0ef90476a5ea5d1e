//! `shmkit bridge`: channels carried between two bridges over TCP on the loopback (never
//! another address, no scouting), the counters `bridge status` shows, the stats segment of a
//! killed bridge, hostile stats, and what a build without the feature says.

// Linux only: `shmkit bridge` is (it carries channels, which wait on futexes).
#![cfg(target_os = "linux")]

mod common;

use common::*;

/// A bridge's stats segment, as `shmkit rm` names it.
fn stats_segment(name: &str) -> String {
    format!("/shmkit-bridge-{name}")
}

/// Bytes at `/dev/shm/NAME` written by the test as a hostile process would: `bridge status
/// NAME` must refuse them plainly (exit 3), never panic or read out of bounds.
#[test]
fn hostile_stats_are_refused_without_a_panic() {
    let name = unique("hostile");
    let seg = stats_segment(&name);
    let _gone = Gone(vec![seg.clone()]);
    let path = format!("/dev/shm{seg}");
    let good_len = 128 + 64 * 512;
    let mut header = b"SHMKBRS1".to_vec();
    header.extend_from_slice(&1u32.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("short", b"SHMKBRS1".to_vec()),
        ("no magic", vec![0xff; good_len]),
        ("too many routes", {
            let mut b = b"SHMKBRS1".to_vec();
            b.extend_from_slice(&u32::MAX.to_le_bytes());
            b.resize(good_len, 0xff);
            b
        }),
        ("bad direction", {
            let mut b = header.clone();
            b.resize(good_len, 0);
            b[128] = 7;
            b
        }),
        ("key longer than its field", {
            let mut b = header.clone();
            b.resize(good_len, 0xff);
            b[128] = 1;
            b
        }),
    ];
    for (what, bytes) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let r = shmkit(&["bridge", "status", &name]);
        assert_eq!(r.code, 3, "{what}: {} {}", r.out, r.err);
        assert!(
            r.err.contains("does not hold a bridge's stats"),
            "{what}: {}",
            r.err
        );
        assert!(!r.err.contains("panicked"), "{what}: {}", r.err);
        // Listing them all warns about it and goes on.
        let all = shmkit(&["bridge", "status", "--json"]);
        assert_eq!(all.code, 0, "{what}: {}", all.err);
        assert!(
            all.err.contains("does not hold a bridge's stats"),
            "{}",
            all.err
        );
    }
    // A route whose names are not UTF-8 is shown, quoted.
    let mut b = header.clone();
    b.resize(good_len, 0);
    b[128] = 2;
    b[130] = 2; // key: 2 bytes
    b[132] = 1; // channel: 1 byte
    b[128 + 128] = 0xff;
    b[128 + 129] = b'\x1b';
    b[128 + 384] = 0xfe;
    std::fs::write(&path, &b).unwrap();
    let r = shmkit(&["bridge", "status", &name]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        !r.out.contains('\x1b'),
        "a control character reached the terminal: {:?}",
        r.out
    );
    assert!(r.out.contains("NOT RUNNING"), "{}", r.out);
}

#[test]
fn status_of_no_such_bridge_says_so() {
    let r = shmkit(&["bridge", "status", &unique("absent")]);
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("no bridge named"), "{}", r.err);
    let r = shmkit(&["bridge", "status", "../etc"]);
    assert_eq!(r.code, 2, "{}", r.err);
}

#[test]
fn wrong_usage_changes_nothing_and_says_why() {
    for (args, says) in [
        (vec!["bridge"], "say what to bridge"),
        (
            vec![
                "bridge",
                "out",
                "--channel",
                "c",
                "--key",
                "k",
                "--name",
                "a/b",
            ],
            "bridge name",
        ),
        (
            vec![
                "bridge",
                "in",
                "--channel",
                "c",
                "--key",
                "k",
                "--on-full",
                "maybe",
            ],
            "maybe",
        ),
        (
            vec!["bridge", "out", "--channel", "c", "--key", ""],
            "key expression",
        ),
        (
            vec!["bridge", "--config", "/nonexistent/shmkit.toml"],
            "/nonexistent",
        ),
    ] {
        let r = shmkit(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert!(r.err.contains(says), "{args:?}: {}", r.err);
    }
}

#[cfg(not(feature = "bridge"))]
#[test]
fn a_build_without_the_bridge_says_how_to_get_it() {
    let r = shmkit(&["bridge", "out", "--channel", "c", "--key", "k"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("--features bridge"), "{}", r.err);
}

#[cfg(feature = "bridge")]
mod running {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use shmkit_peer::free_loopback_port as free_port;

    /// A running `shmkit bridge`, its stderr collected; killed on drop (and its stats
    /// removed, unless it stopped by itself: then they may be another bridge's).
    struct Running {
        child: Child,
        name: String,
        log: Arc<Mutex<Vec<String>>>,
        stopped: bool,
    }

    impl Running {
        fn start(name: &str, args: &[&str]) -> Running {
            let mut cmd = Command::new(BIN);
            cmd.arg("bridge")
                .args(args)
                .args([
                    "--name",
                    name,
                    "--zenoh",
                    "scouting/multicast/enabled=false",
                ])
                .args(["--zenoh", "scouting/gossip/enabled=false"]);
            Running::spawn(cmd, name)
        }

        fn start_config(name: &str, file: &std::path::Path) -> Running {
            let mut cmd = Command::new(BIN);
            cmd.args(["bridge", "--config"]).arg(file);
            Running::spawn(cmd, name)
        }

        /// Runs `cmd`, collecting its stderr, until it says its routes run.
        fn spawn(mut cmd: Command, name: &str) -> Running {
            let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
            let log = Arc::new(Mutex::new(Vec::new()));
            let (l, err) = (log.clone(), child.stderr.take().unwrap());
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    eprintln!("[bridge] {line}");
                    l.lock().unwrap().push(line);
                }
            });
            let me = Running {
                child,
                name: name.to_string(),
                log,
                stopped: false,
            };
            me.wait_log("running (zenoh id", Duration::from_secs(20));
            me
        }

        /// Waits until a line of its stderr holds `text`.
        fn wait_log(&self, text: &str, limit: Duration) -> String {
            let t = Instant::now();
            loop {
                if let Some(l) = self.log.lock().unwrap().iter().find(|l| l.contains(text)) {
                    return l.clone();
                }
                assert!(
                    t.elapsed() < limit,
                    "bridge {}: no line with {text:?} in {:?}",
                    self.name,
                    self.log.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        fn status(&self) -> serde_json::Value {
            let v = json(&["bridge", "status", &self.name, "--json"]);
            v[0].clone()
        }

        /// Waits until its status satisfies `want`.
        fn status_until(&self, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
            let t = Instant::now();
            loop {
                let s = self.status();
                if want(&s) {
                    return s;
                }
                assert!(t.elapsed() < Duration::from_secs(20), "{s:#}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        /// SIGTERM, then its exit code; -1 (after SIGKILL) if it has not ended within 20 s.
        fn stop(mut self) -> i32 {
            let pid = rustix::process::Pid::from_child(&self.child);
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(20) {
                if let Some(st) = self.child.try_wait().unwrap() {
                    self.stopped = st.success();
                    return st.code().unwrap_or(-1);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            -1
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            if self.stopped {
                return;
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = Command::new(BIN)
                .args(["rm", &stats_segment(&self.name)])
                .output();
        }
    }

    /// `bridge out` of `channel` to `key` under a name another bridge may hold.
    fn another_of_name(channel: &str, key: &str, name: &str) -> Run {
        shmkit(&[
            "bridge",
            "out",
            "--channel",
            channel,
            "--key",
            key,
            "--name",
            name,
            "--zenoh",
            "scouting/multicast/enabled=false",
        ])
    }

    fn channel(kind: &str) -> (String, Gone) {
        let name = format!("/{}", unique("shmkit-cli-bridge"));
        let gone = Gone(vec![name.clone()]);
        ok(&["channel", "mk", &name, "--capacity", "64K", "--kind", kind]);
        (name, gone)
    }

    #[test]
    fn out_and_in_carry_lines_across_and_status_counts_them() {
        let (a, _ga) = channel("spsc");
        let (b, _gb) = channel("mpsc");
        let key = format!("shmkit/test/{}", unique("cli"));
        let at = format!("127.0.0.1:{}", free_port());
        let (na, nb) = (unique("out"), unique("in"));
        let out = Running::start(
            &na,
            &["out", "--channel", &a, "--key", &key, "--listen", &at],
        );
        let inn = Running::start(
            &nb,
            &["in", "--key", &key, "--channel", &b, "--connect", &at],
        );
        out.status_until(|s| s["peers"]["linked"] == 1);
        inn.status_until(|s| s["peers"]["linked"] == 1);
        let lines: String = (0..1000)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 97)))
            .collect();
        ok_in(&["channel", "send", &a], lines.as_bytes());
        let got = ok(&["channel", "recv", &b, "--count", "1000", "--timeout", "20s"]);
        assert_eq!(got, lines);
        let s = out.status_until(|s| s["routes"][0]["forwarded"] == 1000);
        assert_eq!(s["running"], true);
        assert_eq!(s["routes"][0]["direction"], "out");
        assert_eq!(s["routes"][0]["channel"], a.as_str());
        let s = inn.status_until(|s| s["routes"][0]["ingested"] == 1000);
        for c in [
            "gaps",
            "duplicates",
            "looped",
            "garbage",
            "dropped",
            "oversize",
        ] {
            assert_eq!(s["routes"][0][c], 0, "{c}: {s:#}");
        }
        // The table says the same.
        let table = ok(&["bridge", "status", &nb]);
        assert!(table.contains("running, pid"), "{table}");
        assert!(table.contains(&key) && table.contains("1000"), "{table}");
        // The sending bridge stops: the receiving one logs and counts the lost link.
        assert_eq!(out.stop(), 0);
        assert!(
            shmkit(&["bridge", "status", &na]).code == 4,
            "the stopped bridge left its stats"
        );
        inn.wait_log("lost 1 peer link", Duration::from_secs(20));
        let s = inn.status_until(|s| s["peers"]["lost"] == 1);
        assert_eq!(s["peers"]["linked"], 0);
        assert_eq!(inn.stop(), 0);
    }

    /// One bridge with two routes from a file: out of one channel and into another on the
    /// same key. It hears its own messages: each is dropped and counted as a loop.
    #[test]
    fn a_config_file_runs_several_routes_and_its_own_messages_are_counted_as_a_loop() {
        let (a, _ga) = channel("spsc");
        let (b, _gb) = channel("broadcast");
        let name = unique("conf");
        let key = format!("shmkit/test/{}", unique("loop"));
        let file = std::env::temp_dir().join(format!("{}.toml", unique("shmkit-bridge")));
        std::fs::write(
            &file,
            format!(
                "name = \"{name}\"\n[zenoh]\nscouting.multicast.enabled = false\n\
                 listen.endpoints = [\"tcp/127.0.0.1:{}\"]\n\
                 [[route]]\nout = \"{a}\"\nkey = \"{key}\"\n\
                 [[route]]\nin = \"{b}\"\nkey = \"{key}\"\non-full = \"drop\"\n",
                free_port()
            ),
        )
        .unwrap();
        let bridge = Running::start_config(&name, &file);
        let _ = std::fs::remove_file(&file);
        ok_in(&["channel", "send", &a], b"1\n2\n3\n");
        let s = bridge.status_until(|s| s["routes"][1]["looped"] == 3);
        assert_eq!(s["routes"][0]["forwarded"], 3, "{s:#}");
        assert_eq!(s["routes"][1]["ingested"], 0, "{s:#}");
        assert_eq!(s["routes"][1]["on_full"], "drop", "{s:#}");
        bridge.wait_log("looped +3", Duration::from_secs(10));
        assert_eq!(bridge.stop(), 0);
    }

    /// A bridge killed with SIGKILL leaves its stats: `status` says it is not running and how
    /// to remove them, and a new bridge of that name takes them over; a running bridge's
    /// name is refused.
    #[test]
    fn a_killed_bridge_shows_as_not_running_and_its_name_is_taken_over() {
        let (a, _ga) = channel("spsc");
        let (c, _gc) = channel("spsc");
        let name = unique("killed");
        let key = format!("shmkit/test/{}", unique("killed"));
        let mut first = Running::start(&name, &["out", "--channel", &a, "--key", &key]);
        first.child.kill().unwrap();
        first.child.wait().unwrap();
        let r = ok(&["bridge", "status", &name]);
        assert!(r.contains("NOT RUNNING") && r.contains("shmkit rm"), "{r}");
        let second = Running::start(&name, &["out", "--channel", &a, "--key", &key]);
        assert_eq!(second.status()["running"], true);
        let r = another_of_name(&c, &key, &name);
        assert_eq!(r.code, 3, "{}", r.err);
        assert!(r.err.contains("is running"), "{}", r.err);
        // The refused one took nothing: the channel's consumer end is still free.
        let s = json(&["channel", "stat", &c, "--json"]);
        assert_ne!(s["consumer"]["state"], "held", "{s:#}");
        drop(first);
        assert_eq!(second.stop(), 0);
    }

    /// A bridge stopped with SIGSTOP still holds its name: `status` says it is stuck, and
    /// another bridge of that name is refused (it once took the name over after 2 s without a
    /// heartbeat, and the first one removed the second one's stats when it stopped).
    #[test]
    fn a_stopped_bridge_keeps_its_name_and_shows_as_stuck() {
        let (a, _ga) = channel("spsc");
        let (c, _gc) = channel("spsc");
        let name = unique("sigstop");
        let key = format!("shmkit/test/{}", unique("sigstop"));
        let first = Running::start(&name, &["out", "--channel", &a, "--key", &key]);
        let pid = rustix::process::Pid::from_child(&first.child);
        rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        let s = first.status();
        let resume = || rustix::process::kill_process(pid, rustix::process::Signal::CONT);
        let r = another_of_name(&c, &key, &name);
        resume().unwrap();
        assert_eq!(
            (s["running"].clone(), s["stuck"].clone()),
            (true.into(), true.into()),
            "{s:#}"
        );
        assert_eq!(r.code, 3, "{}", r.err);
        assert!(r.err.contains("is running"), "{}", r.err);
        let s = first.status_until(|s| s["stuck"] == false);
        assert_eq!(s["running"], true);
        assert_eq!(first.stop(), 0);
        assert_eq!(shmkit(&["bridge", "status", &name]).code, 4);
    }

    /// A running bridge's stats removed by hand (`shmkit rm`), a second bridge of the name
    /// started: when the first stops, it removes nothing of the second's (it once did).
    #[test]
    fn a_bridge_stopping_removes_only_its_own_stats() {
        let (a, _ga) = channel("spsc");
        let (c, _gc) = channel("spsc");
        let name = unique("removed");
        let key = format!("shmkit/test/{}", unique("removed"));
        let first = Running::start(&name, &["out", "--channel", &a, "--key", &key]);
        ok(&["rm", &stats_segment(&name)]);
        let second = Running::start(&name, &["out", "--channel", &c, "--key", &key]);
        assert_eq!(first.stop(), 0);
        let s = second.status();
        assert_eq!(s["running"], true, "{s:#}");
        assert_eq!(s["routes"][0]["channel"], c.as_str(), "{s:#}");
        assert_eq!(second.stop(), 0);
        assert_eq!(shmkit(&["bridge", "status", &name]).code, 4);
    }

    /// A dead bridge's stats that another process holds a shared lock on (as `status` does
    /// for a moment) are neither said running by `status` nor taken for a running bridge by
    /// a new one: both say the same.
    #[test]
    fn a_shared_lock_on_a_dead_bridges_stats_is_said_for_what_it_is() {
        let (a, _ga) = channel("spsc");
        let name = unique("shared");
        let key = format!("shmkit/test/{}", unique("shared"));
        let mut first = Running::start(&name, &["out", "--channel", &a, "--key", &key]);
        first.child.kill().unwrap();
        first.child.wait().unwrap();
        let (mut py, ready) = python(
            "import fcntl,os,sys\n\
             fd=os.open('/dev/shm'+sys.argv[1], os.O_RDONLY)\n\
             fcntl.flock(fd, fcntl.LOCK_SH)\n\
             print('locked', flush=True)\n\
             sys.stdin.readline()\n",
            &[&stats_segment(&name)],
        );
        assert_eq!(ready, "locked");
        let s = json(&["bridge", "status", &name, "--json"]);
        let r = another_of_name(&a, &key, &name);
        drop(py.stdin.take());
        let _ = py.wait();
        assert_eq!(s[0]["running"], false, "{s:#}");
        assert_eq!(r.code, 3, "{}", r.err);
        assert!(r.err.contains("not a bridge"), "{}", r.err);
        // Let go of, the name is taken over.
        let second = Running::start(&name, &["out", "--channel", &a, "--key", &key]);
        assert_eq!(second.stop(), 0);
    }

    /// Stopping a bridge whose routes wait on each other ends: an `out` route publishing to
    /// a key that an `in` route of the same bridge ingests into a full channel (it waits for
    /// room, and the `out` route waits for it), interrupted, exits at once and cleanly.
    #[test]
    fn a_bridge_whose_routes_wait_on_each_other_still_stops() {
        let (a, _ga) = channel("spsc");
        let (c, _gc) = channel("spsc");
        let b = format!("/{}", unique("shmkit-cli-bridge-small"));
        let _gb = Gone(vec![b.clone()]);
        ok(&["channel", "mk", &b, "--capacity", "4K"]);
        let base = format!("shmkit/test/{}", unique("waits"));
        let at = format!("127.0.0.1:{}", free_port());
        let name = unique("waits");
        let file = std::env::temp_dir().join(format!("{}.toml", unique("shmkit-bridge")));
        std::fs::write(
            &file,
            format!(
                "name = \"{name}\"\n[zenoh]\nscouting.multicast.enabled = false\n\
                 listen.endpoints = [\"tcp/{at}\"]\n\
                 [[route]]\nout = \"{a}\"\nkey = \"{base}/a\"\n\
                 [[route]]\nin = \"{b}\"\nkey = \"{base}/*\"\n"
            ),
        )
        .unwrap();
        let x = Running::start_config(&name, &file);
        let _ = std::fs::remove_file(&file);
        let y = Running::start(
            &unique("feeder"),
            &[
                "out",
                "--channel",
                &c,
                "--key",
                &format!("{base}/c"),
                "--connect",
                &at,
            ],
        );
        let lines: String = (0..3000).map(|i| format!("{i}\n")).collect();
        // The other bridge fills the small channel; the in route then waits for room.
        ok_in(
            &["channel", "send", &c, "--timeout", "20s"],
            lines.as_bytes(),
        );
        x.status_until(|s| s["routes"][1]["ingested"].as_u64() > Some(100));
        // Our own out route's messages pile up behind it.
        let _ = shmkit_in(
            &["channel", "send", &a, "--timeout", "3s"],
            lines.as_bytes(),
        );
        let t = Instant::now();
        assert_eq!(x.stop(), 0);
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "stopping took {:?}",
            t.elapsed()
        );
        assert_eq!(y.stop(), 0);
    }

    #[test]
    fn a_missing_channel_or_another_object_is_said_before_anything_runs() {
        let key = "shmkit/test/missing";
        let r = shmkit(&[
            "bridge",
            "out",
            "--channel",
            &unique("nothing"),
            "--key",
            key,
        ]);
        assert_eq!(r.code, 4, "{}", r.err);
        assert!(r.err.contains("shmkit channel mk"), "{}", r.err);
        let plain = format!("/{}", unique("plain"));
        let _g = Gone(vec![plain.clone()]);
        ok(&["mk", "posix", &plain, "--size", "4096"]);
        let r = shmkit(&["bridge", "in", "--channel", &plain, "--key", key]);
        assert_eq!(r.code, 2, "{}", r.err);
        assert!(r.err.contains("holds no channel"), "{}", r.err);
        // A key expression Zenoh refuses, before any network.
        let (c, _gc) = channel("spsc");
        for bad in ["shmkit//test", "shmkit/te*st"] {
            let r = shmkit(&["bridge", "out", "--channel", &c, "--key", bad]);
            assert_eq!(r.code, 2, "{bad}: {}", r.err);
            assert!(r.err.contains("key expression"), "{bad}: {}", r.err);
        }
    }
}
