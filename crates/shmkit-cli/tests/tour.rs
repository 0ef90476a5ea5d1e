//! `shmkit tour`, driven as a user would: results, exit codes, and nothing left behind, also
//! when interrupted.
//!
//! Most tests are Linux only, each marked: they run the Linux-only experiments or look for
//! leftovers in /dev/shm and /proc.

#[cfg(target_os = "linux")]
use std::io::{BufRead, BufReader};
use std::process::Command;
#[cfg(target_os = "linux")]
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_shmkit");

/// Everything a tour with this pid could have left: POSIX objects, System V segments it
/// created, its temporary directory.
#[cfg(target_os = "linux")] // /dev/shm, /proc/net/unix, /proc/sysvipc
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
    // Abstract sockets (names in the kernel, not files): `@shmkit-tour-PID-...`.
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap();
    for l in unix.lines() {
        if let Some(name) = l.split_whitespace().nth(7) {
            if name.starts_with(&format!("@{prefix}")) {
                found.push(name.to_string());
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

/// What is left after up to 2 s: a peer killed by the handler may still be exiting, and its
/// attachments go with it.
#[cfg(target_os = "linux")] // leftovers: /dev/shm and /proc
fn settled_leftovers(pid: u32) -> Vec<String> {
    for _ in 0..100 {
        if leftovers(pid).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    leftovers(pid)
}

#[test]
#[cfg(target_os = "linux")] // all 13 experiments, and leftovers
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
            "registry-bootstrap",
            "registry-read-only",
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
    let bootstrap = &results[9]["details"];
    assert_eq!(
        bootstrap["before"]["found"], false,
        "the reader asked before the name existed"
    );
    assert_eq!(bootstrap["posts"], 1);
    let read_only = &results[10]["details"]["attacks"];
    assert_eq!(read_only.as_object().unwrap().len(), 6, "{read_only}");
    let handoff = &results[11]["details"];
    assert_eq!(handoff["received"].as_array().unwrap().len(), 5);
    assert!(handoff["round_trip_us"].as_f64().unwrap() > 0.0);
    let died = &results[12]["details"];
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
#[cfg(target_os = "linux")] // all 13 experiments
fn the_table_ends_with_a_count() {
    let out = Command::new(BIN).arg("tour").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("13 experiments: 13 passed, 0 failed"),
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

/// The processes of process group `pgid` that still run: a zombie waiting for init to reap it
/// (as an orphaned child that ended is, for a while) has ended.
#[cfg(target_os = "linux")] // /proc
fn live_in_group(pgid: i32) -> Vec<i32> {
    let mut live = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID PGRP ...": the command may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[2] == pgid.to_string() && f[0] != "Z" {
            live.push(pid);
        }
    }
    live
}

/// Starts `shmkit tour --json` in a process group of its own and returns once it has paused
/// at `point` (its objects exist), with the rest of its stderr.
#[cfg(target_os = "linux")] // used by the Linux-only tests below
fn paused_at(point: &str) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(BIN)
        .args(["tour", "--json"])
        .process_group(0)
        .env("SHMKIT_TOUR_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains(&format!("paused at {point}")) {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "the tour ended before pausing at {point}"
        );
    }
    (child, err)
}

/// Interrupts the tour at `point`, where its objects exist, and checks they are all gone.
#[cfg(target_os = "linux")] // leftovers: /dev/shm and /proc
fn interrupt_at(point: &str, signal: rustix::process::Signal) {
    let (mut child, mut err) = paused_at(point);
    let pid = child.id();
    let before = leftovers(pid);
    assert!(
        // A memfd has no name; its experiment has only its abstract socket.
        before
            .iter()
            .any(|o| o.starts_with("/dev/shm/") || o.starts_with("shmid"))
            || (point == "memfd" && before.iter().any(|o| o.starts_with('@'))),
        "the experiment's objects exist at the pause point: {before:?}"
    );
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), signal)
        .unwrap();
    let status = child.wait().unwrap();
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("interrupted; removed"), "{line}");
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        settled_leftovers(pid),
        Vec::<String>::new(),
        "after interrupting at {point}"
    );
}

#[test]
#[cfg(target_os = "linux")] // leftovers: /dev/shm and /proc
fn ctrl_c_during_the_posix_experiment_leaves_nothing() {
    interrupt_at("posix", rustix::process::Signal::INT);
}

#[test]
#[cfg(target_os = "linux")] // leftovers: /proc
fn ctrl_c_while_a_sysv_peer_is_attached_leaves_nothing() {
    interrupt_at("sysv", rustix::process::Signal::INT);
}

#[test]
#[cfg(target_os = "linux")] // memfd
fn sigterm_during_the_memfd_experiment_leaves_nothing() {
    interrupt_at("memfd", rustix::process::Signal::TERM);
}

#[test]
#[cfg(target_os = "linux")] // futex
fn ctrl_c_during_the_semaphore_hand_off_leaves_nothing() {
    interrupt_at("sem", rustix::process::Signal::INT);
}

#[test]
#[cfg(target_os = "linux")] // futex
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

/// Ctrl-C sent to the whole process group (as a terminal does) at 20 moments in the first
/// 20 ms (the fork experiments) and 12 spread over a run: every interrupted tour exits 130
/// with no report (or, interrupted while printing it, a whole one), never with a failure the
/// interruption caused, and no process of it outlives it (a fork child once waited forever on
/// a pipe it held both ends of, keeping the caller's stdout open).
#[test]
#[cfg(target_os = "linux")] // /proc, and every experiment
fn ctrl_c_to_the_process_group_at_any_moment_is_exit_130_and_never_a_false_failure() {
    use rustix::process::{kill_process_group, Pid, Signal};
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::time::{Duration, Instant};
    let full = {
        let t = Instant::now();
        let out = Command::new(BIN).args(["tour", "--json"]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        t.elapsed()
    };
    let delays = (1..=20u64)
        .map(Duration::from_millis)
        // From a moment after start (the handler is installed first thing) to the end.
        .chain((0..12u32).map(|i| full * (i + 1) / 13));
    // Removed when the test ends, failed or not.
    struct TempFile(std::path::PathBuf);
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let out_file =
        TempFile(std::env::temp_dir().join(format!("shmkit-test-tour-out-{}", std::process::id())));
    let out_path = &out_file.0;
    for (i, delay) in delays.enumerate() {
        // Stdout to a file, so that a process left behind cannot make the test wait on a pipe.
        let out = std::fs::File::create(out_path).unwrap();
        let mut child = Command::new(BIN)
            .args(["tour", "--json"])
            .process_group(0)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let group = Pid::from_raw(pid as i32).unwrap();
        std::thread::sleep(delay);
        let _ = kill_process_group(group, Signal::INT);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = kill_process_group(group, Signal::KILL);
                panic!("trial {i} ({delay:?}): the tour did not end");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let text = std::fs::read_to_string(out_path).unwrap();
        match status.code() {
            Some(130) => assert!(
                text.trim().is_empty() || serde_json::from_str::<serde_json::Value>(&text).is_ok(),
                "trial {i} ({delay:?}): truncated report: {text}"
            ),
            Some(0) => {} // it had finished before the signal
            // Killed by the signal before its handler was installed (the first instants after
            // exec): it had created nothing yet, which the leftovers check below confirms.
            None if status.signal() == Some(libc::SIGINT) && text.is_empty() => {}
            other => panic!("trial {i} ({delay:?}): exit {other:?}: {text}"),
        }
        // Nothing of its process group lives on (its peers have groups of their own and are
        // among the leftovers below).
        let mut outlived = true;
        for _ in 0..100 {
            if live_in_group(pid as i32).is_empty() {
                outlived = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if outlived {
            let _ = kill_process_group(group, Signal::KILL);
            panic!("trial {i} ({delay:?}): a process of the tour outlived it");
        }
        assert_eq!(
            settled_leftovers(pid),
            Vec::<String>::new(),
            "trial {i} ({delay:?})"
        );
    }
}

/// A fork child waiting on the tour ends when the tour is killed outright (SIGKILL: no handler
/// runs): it must not hold the write end of the pipe it reads, or it would wait forever and
/// keep the caller's stdout open.
#[test]
#[cfg(target_os = "linux")] // /proc
fn a_fork_child_ends_with_a_tour_killed_while_it_waits() {
    use rustix::process::{kill_process_group, Pid, Signal};
    let (mut child, _err) = paused_at("inherit-share");
    let group = Pid::from_raw(child.id() as i32).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    for _ in 0..100 {
        if live_in_group(group.as_raw_nonzero().get()).is_empty() {
            return; // the fork child saw the pipe close and ended
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = kill_process_group(group, Signal::KILL);
    panic!("the fork child outlived the killed tour");
}

/// SIGKILL gives the tour no chance to clean up: what it had made in /dev/shm or System V is
/// `gc`'s to find, but nothing of it is left in the file system outside them.
#[test]
#[cfg(target_os = "linux")] // memfd, /dev/shm, /proc
fn a_tour_killed_with_sigkill_leaves_no_file_behind() {
    let (mut child, _err) = paused_at("memfd");
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let prefix = format!("shmkit-tour-{pid}-");
    let in_tmp: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(in_tmp.is_empty(), "{in_tmp:?}");
    // Its peer (in its own process group) is this test's to stop; its objects, to remove.
    for e in std::fs::read_dir("/dev/shm").unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let sysv = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    for l in sysv.lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f[4] == pid.to_string() {
            let _ = Command::new("ipcrm").args(["-m", f[1]]).status();
        }
    }
}
