//! `shmkit bench`: every transport measured in one run between two processes, as rows a
//! script can read.

// Linux only: `shmkit bench` is (its transports are memfds, futexes and eventfds).
#![cfg(target_os = "linux")]

mod common;

use common::*;

#[test]
fn a_quick_run_gives_a_row_per_transport_and_size_with_consistent_figures() {
    let shm = || -> Vec<String> {
        std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("shmkit-bench-"))
            .collect()
    };
    let before = shm();
    let word = |t: &str| t == "floor-cacheline" || t == "floor-futex";
    let v = json(&["bench", "--quick", "--sizes", "8,4K", "--json"]);
    let rows = v.as_array().unwrap();
    let want = [
        "floor-cacheline",
        "floor-futex",
        "floor-ring",
        "memcpy",
        "shmkit-spsc-spin",
        "shmkit-spsc-blocking",
        "shmkit-spsc-eventfd",
        "shmkit-broadcast",
        "pipe",
        "unix-stream",
        "tcp",
    ];
    for t in want {
        let sizes: Vec<u64> = rows
            .iter()
            .filter(|r| r["transport"] == t)
            .map(|r| r["size"].as_u64().unwrap())
            .collect();
        // The word floors carry one word: 8 bytes only.
        let expect: &[u64] = if word(t) { &[8] } else { &[8, 4096] };
        assert_eq!(sizes, expect, "{t}");
    }
    for r in rows {
        let t = r["transport"].as_str().unwrap();
        let n = |k: &str| r[k].as_f64();
        if t == "memcpy" {
            assert!(n("rtt_p50_ns").is_none(), "{r}");
        } else {
            let (min, p50, p99, p999, max) = (
                n("rtt_min_ns").unwrap(),
                n("rtt_p50_ns").unwrap(),
                n("rtt_p99_ns").unwrap(),
                n("rtt_p999_ns").unwrap(),
                n("rtt_max_ns").unwrap(),
            );
            assert!(
                0.0 < min && min <= p50 && p50 <= p99 && p99 <= p999 && p999 <= max,
                "{r}"
            );
        }
        // Each row's floors are measured just before it: the round-trip floor at 8 bytes
        // (the futex one for the transports that sleep), memcpy at every size, and the raw
        // ring at every size for the shared-memory transports that spin.
        let size = r["size"].as_u64().unwrap();
        if word(t) || t == "memcpy" {
            assert!(
                r["floor_p50_ns"].is_null() && r["memcpy_bytes_per_s"].is_null(),
                "{r}"
            );
        } else if t == "floor-ring" {
            assert!(
                r["floor_p50_ns"].is_null() && r["ring_p50_ns"].is_null(),
                "{r}"
            );
            assert!(n("memcpy_bytes_per_s").unwrap() > 0.0, "{r}");
        } else {
            let sleeps = [
                "shmkit-spsc-blocking",
                "shmkit-spsc-eventfd",
                "pipe",
                "unix-stream",
                "tcp",
            ];
            if size == 8 {
                let floor = if sleeps.contains(&t) {
                    "floor-futex"
                } else {
                    "floor-cacheline"
                };
                assert_eq!(r["floor"], floor, "{r}");
                assert!(n("floor_p50_ns").unwrap() > 0.0, "{r}");
            } else {
                assert!(r["floor_p50_ns"].is_null(), "{r}");
            }
            assert!(n("memcpy_bytes_per_s").unwrap() > 0.0, "{r}");
            if t == "shmkit-spsc-spin" || t == "shmkit-broadcast" {
                assert!(n("ring_p50_ns").unwrap() > 0.0, "{r}");
                assert!(n("ring_bytes_per_s").unwrap() > 0.0, "{r}");
            } else {
                assert!(r["ring_p50_ns"].is_null(), "{r}");
            }
        }
        if word(t) {
            assert!(n("msgs_per_s").is_none(), "{r}");
        } else {
            let (m, b) = (n("msgs_per_s").unwrap(), n("bytes_per_s").unwrap());
            let size = r["size"].as_f64().unwrap();
            assert!(m > 0.0 && (b - m * size).abs() <= 1e-6 * b, "{r}");
        }
    }
    // Nothing left behind: the segments are gone.
    let left: Vec<String> = shm().into_iter().filter(|n| !before.contains(n)).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn peers_not_built_and_bad_sizes_are_said_before_the_run() {
    // iceoryx2's bench binary, looked for before anything runs: here one that is not there.
    let r = done(
        std::process::Command::new(BIN)
            .args(["bench", "--quick", "--with", "iceoryx2"])
            .env(
                "SHMKIT_ICEORYX2_BENCH",
                "/nonexistent/shmkit-bench-iceoryx2",
            )
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err.contains("cargo build --release -p shmkit-iceoryx2"),
        "{}",
        r.err
    );
    let r = shmkit(&["bench", "--with", "zeromq"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("unknown peer"), "{}", r.err);
    let r = shmkit(&["bench", "--sizes", "4"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("at least 8 bytes"), "{}", r.err);
}

#[test]
fn plot_draws_a_line_per_transport_and_size_into_an_svg() {
    let dir = std::env::temp_dir().join(unique("shmkit-bench-plot"));
    std::fs::create_dir(&dir).unwrap();
    struct Gone(std::path::PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(dir.clone());
    let path = dir.join("rtt.svg");
    let r = shmkit(&[
        "bench",
        "--quick",
        "--sizes",
        "8,4K",
        "--transports",
        "floor-futex,pipe,memcpy",
        "--plot",
        path.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    // floor-futex at 8 B, pipe at 8 B and 4 KiB: three lines of five points (memcpy has no
    // round trip), drawn 2 wide (axes and ticks are 1 wide).
    let lines: Vec<&str> = svg
        .split("<polyline")
        .filter(|l| l.contains("stroke-width=\"2\""))
        .collect();
    assert_eq!(lines.len(), 3, "{svg}");
    for l in lines {
        let points = l
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split_whitespace().count(), 5, "{l}");
    }
    for label in [
        "floor-futex",
        "pipe",
        "round trip, 8 B messages",
        "round trip, 4 KiB messages",
        "p99.9",
    ] {
        assert!(svg.contains(label), "{label} missing");
    }
    assert!(!svg.contains("memcpy"));
    // A file that cannot be written is refused before anything runs.
    let r = shmkit(&["bench", "--quick", "--plot", "/nonexistent-dir/x.svg"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("--plot"), "{}", r.err);
}
