//! `shmkit tour`, driven as a user would: results, exit codes, and nothing left behind, also
//! when interrupted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_shmkit");

/// Everything a tour with this pid could have left: POSIX objects, System V segments it
/// created, its temporary directory.
fn leftovers(pid: u32) -> Vec<String> {
    let prefix = format!("shmkit-tour-{pid}-");
    let mut found = Vec::new();
    for dir in ["/dev/shm".into(), std::env::temp_dir()] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&prefix) {
                found.push(format!("{}/{n}", dir.display()));
            }
        }
    }
    let sysv = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    for l in sysv.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[4] == pid.to_string() {
            found.push(format!("shmid {} (cpid {pid})", f[1]));
        }
    }
    found
}

#[test]
fn the_tour_passes_and_cleans_up() {
    let child = Command::new(BIN)
        .args(["tour", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    let results: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["experiment"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "anon-fork",
            "inherit-share",
            "inherit-copy",
            "inherit-none",
            "inherit-zero",
            "posix-unrelated",
            "sysv-ftok",
            "sysv-deferred-rmid",
            "memfd-scm-rights",
            "sem-handoff",
            "mutex-owner-died"
        ]
    );
    for r in &results {
        assert_eq!(r["verdict"], "pass", "{r:#}");
        for k in ["writer", "reader", "expected"] {
            assert!(!r[k].as_str().unwrap().is_empty(), "{k} of {r:#}");
        }
    }
    // Figures measured, not asserted by the tour alone: the reader is another process.
    let posix = &results[5]["details"];
    assert_ne!(posix["reader_pid"].as_u64().unwrap() as u32, pid);
    assert_eq!(posix["reader"]["st_size"], 33);
    assert_eq!(results[7]["details"]["nattch_after_writer_detach"], 1);
    let handoff = &results[9]["details"];
    assert_eq!(handoff["received"].as_array().unwrap().len(), 5);
    assert!(handoff["round_trip_us"].as_f64().unwrap() > 0.0);
    let died = &results[10]["details"];
    assert_eq!(
        (
            &died["owner_died"],
            &died["acquired_after_repair"],
            &died["recoveries"]
        ),
        (
            &serde_json::json!(true),
            &serde_json::json!(true),
            &serde_json::json!(1)
        )
    );
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn the_table_ends_with_a_count() {
    let out = Command::new(BIN).arg("tour").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("11 experiments: 11 passed, 0 failed"),
        "{text}"
    );
    for h in [
        "experiment",
        "writer did",
        "reader observed",
        "expected",
        "verdict",
    ] {
        assert!(text.contains(h), "{h}");
    }
}

/// Interrupts the tour at `point`, where its objects exist, and checks they are all gone.
fn interrupt_at(point: &str, signal: rustix::process::Signal) {
    let mut child = Command::new(BIN)
        .args(["tour", "--json"])
        .env("SHMKIT_TOUR_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the tour ended before pausing"
        );
        if line.contains(&format!("paused at {point}")) {
            break;
        }
    }
    let before = leftovers(pid);
    assert!(
        // A memfd has no name; its experiment leaves only the scratch directory's socket.
        before
            .iter()
            .any(|o| o.starts_with("/dev/shm/") || o.starts_with("shmid"))
            || (point == "memfd" && !before.is_empty()),
        "the experiment's objects exist at the pause point: {before:?}"
    );
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), signal)
        .unwrap();
    let status = child.wait().unwrap();
    line.clear();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("interrupted; removed"), "{line}");
    assert_eq!(status.code(), Some(130));
    // A peer killed by the handler may still be exiting; its attachments go with it.
    for _ in 0..100 {
        if leftovers(pid).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        leftovers(pid),
        Vec::<String>::new(),
        "after interrupting at {point}"
    );
}

#[test]
fn ctrl_c_during_the_posix_experiment_leaves_nothing() {
    interrupt_at("posix", rustix::process::Signal::INT);
}

#[test]
fn ctrl_c_while_a_sysv_peer_is_attached_leaves_nothing() {
    interrupt_at("sysv", rustix::process::Signal::INT);
}

#[test]
fn sigterm_during_the_memfd_experiment_leaves_nothing() {
    interrupt_at("memfd", rustix::process::Signal::TERM);
}

#[test]
fn ctrl_c_during_the_semaphore_hand_off_leaves_nothing() {
    interrupt_at("sem", rustix::process::Signal::INT);
}

#[test]
fn sigterm_during_the_mutex_experiment_leaves_nothing() {
    interrupt_at("mutex", rustix::process::Signal::TERM);
}

#[test]
fn help_explains_the_exit_codes() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Exit codes") && text.contains("130 interrupted"),
        "{text}"
    );
    let out = Command::new(BIN).args(["tour", "--help"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("--json"));
    let out = Command::new(BIN).arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
