//! The command's destructive and reading verbs where a careless environment meets them:
//! `gc` with processes it cannot inspect, a bare `gc` with or without a terminal, `rm
//! --dry-run`, `cat` of sparse objects, queue holders. Each test is the regression test of a
//! bug that a try-out found; the ones that need another uid run as `nobody` (CI runs as root).

// Linux only: these tests read /dev/shm and /proc, and gc, cat and rm need the inventory, built
// on Linux only so far.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

#[test]
fn gc_as_a_user_skips_an_object_that_a_process_it_cannot_inspect_maps() {
    if !root() {
        return; // needs a second uid; CI runs as root
    }
    let name = unique("shmkit-hard-gc-blind");
    let _g = Gone(vec![format!("/{name}")]);
    let mk = as_nobody(&[
        "mk",
        "posix",
        &format!("/{name}"),
        "--size",
        "4K",
        "--mode",
        "0666",
    ]);
    assert_eq!(mk.code, 0, "{}", mk.err);
    let mut py = root_python_mapping(&name);
    let pattern = format!("/{name}");
    // As nobody, root's python cannot be inspected: the object must not be called an orphan,
    // and gc must not remove it (before the fix: "removed ... no process maps it").
    let gc = as_nobody(&[
        "gc",
        "--older-than",
        "0",
        "--kind",
        "posix-shm",
        "--match",
        &pattern,
        "--json",
    ]);
    assert_eq!(gc.code, 0, "{}", gc.err);
    let v: serde_json::Value = serde_json::from_str(&gc.out).unwrap();
    let row = find(&v, &pattern).unwrap_or_else(|| panic!("listed: {}", gc.out));
    assert_eq!(row["action"], "skipped", "{row}");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .contains("could not be inspected"),
        "{row}"
    );
    assert!(std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    // One short warning line with a count.
    let warn: Vec<&str> = gc.err.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warn.len(), 1, "{}", gc.err);
    assert!(
        warn[0].len() < 160 && warn[0].contains("could not be inspected"),
        "{}",
        warn[0]
    );
    // ls and info say "unknown", not "orphan", and info warns as ls does.
    let ls = as_nobody(&["ls", "--holders", "--kind", "posix-shm", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&ls.out).unwrap();
    let o = find(&v, &pattern).unwrap();
    assert_eq!(o["orphan"], "unknown", "{o}");
    assert_eq!(o["status"], serde_json::json!(["unknown"]), "{o}");
    let info = as_nobody(&["info", &pattern]);
    assert_eq!(info.code, 0, "{}", info.err);
    assert!(
        info.out.contains("unknown") && !info.out.contains("orphan\n"),
        "{}",
        info.out
    );
    assert!(info.err.contains("could not be inspected"), "{}", info.err);
    // Root sees root's python: the object is held.
    let ls = json(&["ls", "--holders", "--kind", "posix-shm", "--json"]);
    let o = find(&ls, &pattern).unwrap();
    let holders: Vec<i64> = o["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_i64().unwrap())
        .collect();
    assert!(holders.contains(&(py.id() as i64)), "{o}");
    py.kill().unwrap();
    py.wait().unwrap();
}

#[test]
fn cat_of_sparse_objects_allocates_nothing() {
    // POSIX: read through pread on the file.
    let name = format!("/{}", unique("shmkit-hard-sparse"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "256M"]);
    ok_in(&["write", &name, "--offset", "100M"], b"island");
    let out = Command::new(BIN)
        .args(["cat", &name])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 256 << 20);
    assert_eq!(&out.stdout[100 << 20..(100 << 20) + 6], b"island");
    assert!(out.stdout[..100 << 20].iter().all(|b| *b == 0));
    let blocks = std::fs::metadata(format!("/dev/shm{name}")).unwrap();
    let used = std::os::unix::fs::MetadataExt::blocks(&blocks) * 512;
    assert!(
        used <= 4 << 20,
        "cat allocated {used} bytes of a sparse object"
    );

    // System V: map_files as root, mincore for other users; the kernel's rss column tells.
    let made = json(&[
        "mk",
        "sysv",
        "--private",
        "--size",
        "256M",
        "--mode",
        "0644",
        "--json",
    ]);
    let addr = made["object"].as_str().unwrap().to_string();
    let _s = Gone(vec![addr.clone()]);
    ok_in(&["write", &addr, "--offset", "200M"], b"far away");
    let id = addr.strip_prefix("shm:").unwrap();
    let rss = || {
        let t = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
        let mut lines = t.lines();
        let h: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let col = h.iter().position(|c| *c == "rss").unwrap();
        let row: Vec<&str> = lines
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|r| r[1] == id)
            .unwrap();
        row[col].parse::<u64>().unwrap()
    };
    let before = rss();
    let mut runs = vec![shmkit(&[
        "cat", &addr, "--offset", "199M", "--length", "2M",
    ])];
    if root() {
        runs.push(as_nobody(&[
            "cat", &addr, "--offset", "199M", "--length", "2M",
        ]));
    }
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.err);
    }
    let whole = Command::new(BIN)
        .args(["cat", &addr])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(whole.status.success());
    assert_eq!(&whole.stdout[200 << 20..(200 << 20) + 8], b"far away");
    if root() {
        let r = done(
            Command::new(BIN)
                .args(["cat", &addr])
                .uid(NOBODY)
                .gid(NOBODY)
                .stdout(Stdio::piped())
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{}", r.err);
    }
    let after = rss();
    assert!(
        after <= before + (4 << 20),
        "cat allocated {} bytes of a sparse System V segment",
        after - before
    );
}

#[test]
fn holders_of_a_posix_message_queue_are_found() {
    let name = format!("/{}", unique("shmkit-hard-mq"));
    let _g = Gone(vec![format!("mq:{name}")]);
    ok(&[
        "mk",
        "mq",
        &name,
        "--max-messages",
        "4",
        "--message-size",
        "64",
    ]);
    // Python holds the queue through librt's mq_open: a descriptor that links to the
    // mqueue mount, which is not /dev/shm.
    let (mut py, ready) = python(
        "import ctypes,os,sys\n\
         rt=ctypes.CDLL('librt.so.1', use_errno=True)\n\
         rt.mq_open.restype=ctypes.c_int\n\
         q=rt.mq_open(sys.argv[1].encode(), os.O_RDONLY)\n\
         print('ready' if q >= 0 else 'errno %d' % ctypes.get_errno(), flush=True)\n\
         sys.stdin.readline()\n",
        &[&name],
    );
    assert_eq!(ready, "ready");
    let info = json(&["info", &format!("mq:{name}"), "--json"]);
    let holders: Vec<i64> = info["holders"]
        .as_array()
        .unwrap_or_else(|| panic!("holders were looked for: {info}"))
        .iter()
        .map(|h| h.as_i64().unwrap())
        .collect();
    assert!(holders.contains(&(py.id() as i64)), "{info}");
    assert_eq!(info["max_messages"], 4, "{info}");
    assert_eq!(info["message_size"], 64, "{info}");
    assert_eq!(info["messages"], 0, "{info}");
    let text = ok(&["info", &format!("mq:{name}")]);
    assert!(
        text.contains("0 of 4") && text.contains("at most 64 bytes"),
        "{text}"
    );
    py.kill().unwrap();
    py.wait().unwrap();
}

#[test]
fn rm_dry_run_checks_what_rm_checks() {
    if !root() {
        return;
    }
    let name = format!("/{}", unique("shmkit-hard-dry"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "1K", "--mode", "0666"]);
    let made = json(&[
        "mk",
        "sysv",
        "--private",
        "--size",
        "4K",
        "--mode",
        "0666",
        "--json",
    ]);
    let shm = made["object"].as_str().unwrap().to_string();
    let _s = Gone(vec![shm.clone()]);
    for obj in [name.as_str(), shm.as_str()] {
        let dry = as_nobody(&["rm", "--dry-run", obj]);
        let real = as_nobody(&["rm", obj]);
        assert_eq!(dry.code, 5, "{obj}: {} {}", dry.out, dry.err);
        assert_eq!(real.code, 5, "{obj}: {}", real.err);
        assert!(!dry.out.contains("would remove"), "{}", dry.out);
    }
    // The POSIX refusal names the sticky /dev/shm, not the object's mode.
    let r = as_nobody(&["rm", &name]);
    assert!(r.err.contains("sticky"), "{}", r.err);
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn a_bare_gc_without_a_terminal_removes_nothing() {
    let name = format!("/{}", unique("shmkit-hard-bare"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "1K"]);
    // Not a terminal (stdin is /dev/null): a bare gc lists, says why, removes nothing.
    let r = done(
        Command::new(BIN)
            .arg("gc")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!r.out.contains("removed "), "{}", r.out);
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists());
    // Narrowed, a young object is still kept: it was made on purpose a moment ago.
    let r = shmkit(&["gc", "--match", &name, "--ignore-uninspected", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let row = find(&v, &name).unwrap_or_else(|| panic!("{}", r.out));
    assert_eq!(row["action"], "skipped");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .contains("younger than 60 s"),
        "{row}"
    );
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists());
    // --older-than 0 lifts the minimum age.
    let r = shmkit(&[
        "gc",
        "--match",
        &name,
        "--ignore-uninspected",
        "--older-than",
        "0",
    ]);
    assert!(
        r.out.contains(&format!("removed {name}")),
        "{} {}",
        r.out,
        r.err
    );
    // An empty pattern is an error, not a silent no-op.
    let r = shmkit(&["gc", "--match", ""]);
    assert_eq!(r.code, 2, "{}", r.err);
}

#[test]
fn a_bare_gc_on_a_terminal_asks_and_a_no_keeps_everything() {
    let name = format!("/{}", unique("shmkit-hard-ask"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "1K"]);
    // A pseudo-terminal for stdin (Python's pty), answering "n".
    let script = "import os,pty,subprocess,sys\n\
                  m,s=pty.openpty()\n\
                  os.write(m, b'n\\n')\n\
                  p=subprocess.run([sys.argv[1],'gc'],stdin=s,capture_output=True)\n\
                  sys.stdout.write(p.stderr.decode())\n\
                  sys.exit(p.returncode)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists());
}
