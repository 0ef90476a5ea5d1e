//! The inventory commands, driven through the built binary and checked against util-linux and
//! Python. Linux only but for the last test, each marked: the inventory is built on Linux
//! only so far, and util-linux, /proc and /dev/shm are Linux's.

mod common;

use common::*;
#[cfg(target_os = "linux")]
use serde_json::Value;
#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
#[cfg(target_os = "linux")]
use std::process::Command;

/// `gc` as these tests run it on their own objects: vouching for processes this machine does
/// not let anyone inspect, and with no minimum age (the objects are seconds old). The tests
/// always narrow it with --match or --kind: other objects on the machine are not theirs.
#[cfg(target_os = "linux")] // used by the Linux-only gc tests
const VOUCH: &[&str] = &["gc", "--ignore-uninspected", "--older-than", "0"];

#[test]
#[cfg(target_os = "linux")] // the inventory (ls, info, gc), util-linux
fn ipcmk_segments_show_as_lsipc_reports_them() {
    let id = ipcmk(&["-M", "12345", "-p", "0640"]);
    let _g = Gone(vec![format!("shm:{id}")]);
    let ls = json(&["ls", "--kind", "sysv-shm", "--json"]);
    let mine = find(&ls, &format!("shm:{id}")).expect("listed");
    let l: Value = serde_json::from_str(&tool(
        "lsipc",
        &["-m", "--json", "--bytes", "-i", &id.to_string()],
    ))
    .unwrap();
    let l = &l["sharedmemory"][0];
    assert_eq!(mine["kind"], "sysv-shm");
    assert_eq!(mine["key"], l["key"]);
    assert_eq!(
        mine["shmid"].as_i64().unwrap().to_string(),
        l["id"].as_str().unwrap()
    );
    assert_eq!(
        mine["size"].as_u64().unwrap().to_string(),
        l["size"].as_str().unwrap()
    );
    assert_eq!(mine["mode"], "0640");
    assert_eq!(l["perms"], "rw-r-----");
    assert_eq!(mine["nattch"], 0);
    assert_eq!(
        mine["uid"].as_u64().unwrap() as u32,
        rustix::process::geteuid().as_raw()
    );
    // ipcmk has exited: nobody attached and the creator gone.
    assert_eq!(mine["status"], serde_json::json!(["orphan"]));
    // The same object by key and by id.
    let by_key = json(&[
        "info",
        &format!("key:{}", mine["key"].as_str().unwrap()),
        "--json",
    ]);
    assert_eq!(by_key["shmid"], id);
}

#[test]
#[cfg(target_os = "linux")] // util-linux ipcmk, /proc
fn mk_sysv_shows_in_ipcs_and_rm_of_an_ipcmk_segment_vanishes_from_it() {
    let out = ok(&["mk", "sysv", "--private", "--size", "3K", "--mode", "0604"]);
    let addr = out.trim().to_string();
    let _g = Gone(vec![addr.clone()]);
    let id = addr.strip_prefix("shm:").unwrap();
    let ipcs = tool("ipcs", &["-m"]);
    let line = ipcs
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(id))
        .expect("in ipcs -m");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!((f[3], f[4]), ("604", "3072"));

    let other = ipcmk(&["-M", "4096"]);
    let r = shmkit(&["rm", &format!("shm:{other}")]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(
        r.out.starts_with(&format!("removed shm:{other}")),
        "{}",
        r.out
    );
    assert!(!tool("ipcs", &["-m"])
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&other.to_string())));
}

#[test]
#[cfg(target_os = "linux")] // the inventory (ls, info, gc)
fn mk_posix_is_exclusive_and_kept() {
    let name = format!("/{}", unique("shmkit-cli-mk"));
    let _g = Gone(vec![name.clone()]);
    assert_eq!(
        ok(&["mk", "posix", &name, "--size", "1.5K", "--mode", "640"]).trim(),
        name
    );
    let o = json(&["info", &name, "--json"]);
    assert_eq!(
        (o["size"].as_u64(), o["mode"].as_str()),
        (Some(1536), Some("0640"))
    );
    let r = shmkit(&["mk", "posix", &name, "--size", "1K"]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("File exists") && r.err.lines().count() == 1,
        "{}",
        r.err
    );
    assert_eq!(
        json(&["info", &name, "--json"])["size"],
        1536,
        "not overwritten"
    );
}

#[test]
#[cfg(target_os = "linux")] // cat and write open objects through the inventory
fn write_then_cat_raw_and_hex_and_refuse_past_the_end() {
    let name = format!("/{}", unique("shmkit-cli-rw"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "64"]);
    let r = shmkit_in(&["write", &name, "--offset", "10"], b"created this shmem\n");
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(
        ok(&["cat", &name, "--offset", "10", "--length", "19"]),
        "created this shmem\n"
    );
    let hex = ok(&["cat", &name, "--hex", "--offset", "10", "--length", "7"]);
    assert_eq!(
        hex,
        "0000000a: 6372 6561 7465 64                        created\n"
    );
    // 55 bytes at offset 10 run past 64: nothing is written.
    let r = shmkit_in(&["write", &name, "--offset", "10"], &[b'x'; 55]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("nothing was written"), "{}", r.err);
    assert_eq!(
        ok(&["cat", &name, "--offset", "10", "--length", "7"]),
        "created"
    );
    let r = shmkit(&["cat", &name, "--offset", "60", "--length", "5"]);
    assert_eq!(r.code, 2, "{}", r.err);
}

#[test]
#[cfg(target_os = "linux")] // the inventory (ls, info, gc), holders from /proc
fn a_python_segment_shows_its_holder_is_catted_and_becomes_an_orphan_when_python_dies() {
    let name = unique("shmkit-cli-py");
    let _g = Gone(vec![format!("/{name}")]);
    // A crashed program leaves its segment behind; Python's resource tracker would tidy it up,
    // so this one is told to forget it, as if the tracker had died too.
    let script = format!(
        "from multiprocessing import shared_memory, resource_tracker\n\
         import time\n\
         s = shared_memory.SharedMemory(name='{name}', create=True, size=4096)\n\
         resource_tracker.unregister(s._name, 'shared_memory')\n\
         s.buf[:16] = b'python wrote it\\n'\n\
         print('ready', flush=True)\n\
         time.sleep(120)\n"
    );
    let (mut py, line) = python(&script, &[]);
    assert_eq!(line, "ready");
    let pid = py.id() as i64;

    let ls = json(&["ls", "--kind", "posix-shm", "--holders", "--json"]);
    let o = find(&ls, &format!("/{name}")).expect("listed");
    assert_eq!(o["holders"], serde_json::json!([pid]));
    let h = &o["holder_details"][0];
    assert_eq!(
        (h["command"].as_str(), h["maps"].as_bool()),
        (Some("python3"), Some(true))
    );
    assert_eq!(o["status"], serde_json::json!([]));
    assert_eq!(
        ok(&["cat", &format!("/{name}"), "--length", "16"]),
        "python wrote it\n"
    );
    let info = ok(&["info", &format!("/{name}")]);
    assert!(
        info.contains(&format!("pid {pid}"))
            && info.contains("python3")
            && info.contains("maps it"),
        "{info}"
    );

    // Not an orphan while Python lives.
    let gc = json(&["gc", "--dry-run", "--kind", "posix-shm", "--json"]);
    assert!(
        find(&gc, &format!("/{name}")).is_none_or(|o| o["action"] == "skipped"),
        "{gc}"
    );

    py.kill().unwrap();
    py.wait().unwrap();
    // This machine may run processes nobody can inspect (a non-dumpable init): vouch for them,
    // and lift the minimum age, as the object is seconds old.
    let gc = json(&[VOUCH, &["--dry-run", "--kind", "posix-shm", "--json"]].concat());
    let o = find(&gc, &format!("/{name}")).expect("an orphan now");
    assert_eq!(o["action"], "would remove");
    assert!(o["reason"].as_str().unwrap().contains("no process maps it"));
    assert!(
        std::path::Path::new(&format!("/dev/shm/{name}")).exists(),
        "dry run removed nothing"
    );
    // --older-than spares what was used recently.
    let gc = json(&[
        "gc",
        "--dry-run",
        "--ignore-uninspected",
        "--older-than",
        "1h",
        "--kind",
        "posix-shm",
        "--json",
    ]);
    assert!(find(&gc, &format!("/{name}")).is_none());
    // Without --dry-run: exactly what it printed is removed. Only ours: other tests' (and
    // this machine's users') orphans are not this test's to remove.
    let pattern = format!("/{name}");
    let r = shmkit(&[VOUCH, &["--kind", "posix-shm", "--match", &pattern]].concat());
    assert_eq!(r.out.lines().count(), 1, "{}", r.out);
    assert!(
        r.out.contains(&format!("removed /{name} (posix-shm)")),
        "{}",
        r.out
    );
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

#[test]
#[cfg(target_os = "linux")] // the inventory (ls, info, gc), /dev/shm
fn gc_leaves_other_users_objects_alone_unless_asked() {
    let name = format!("/{}", unique("shmkit-cli-gc-user"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "1K"]);
    let path = format!("/dev/shm{name}");
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let gc = json(&[VOUCH, &["--dry-run", "--kind", "posix-shm", "--json"]].concat());
        assert!(find(&gc, &name).is_none(), "another user's object");
        let gc = json(
            &[
                VOUCH,
                &["--dry-run", "--all-users", "--kind", "posix-shm", "--json"],
            ]
            .concat(),
        );
        assert_eq!(
            find(&gc, &name).expect("with --all-users")["action"],
            "would remove"
        );
    } else {
        let r = shmkit(&["gc", "--all-users", "--dry-run"]);
        assert_eq!(r.code, 5, "{}", r.err);
    }
}

#[test]
#[cfg(target_os = "linux")] // /proc/sys
fn limits_agree_with_proc() {
    let l = json(&["limits", "--json"]);
    let proc = |f: &str| {
        std::fs::read_to_string(format!("/proc/sys/{f}"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    for name in [
        "shmmax",
        "shmall",
        "shmmni",
        "shm_rmid_forced",
        "msgmax",
        "msgmnb",
        "msgmni",
    ] {
        assert_eq!(
            l[name]["value"].as_u64(),
            Some(proc(&format!("kernel/{name}"))),
            "{name}"
        );
        assert!(!l[name]["change"].as_str().unwrap().is_empty());
    }
    let sem: Vec<u64> = std::fs::read_to_string("/proc/sys/kernel/sem")
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    for (i, name) in ["semmsl", "semmns", "semopm", "semmni"].iter().enumerate() {
        assert_eq!(l[name]["value"].as_u64(), Some(sem[i]), "{name}");
    }
    for name in ["queues_max", "msg_max", "msgsize_max"] {
        assert_eq!(
            l[name]["value"].as_u64(),
            Some(proc(&format!("fs/mqueue/{name}"))),
            "{name}"
        );
    }
    let page = rustix::param::page_size() as u64;
    assert_eq!(
        l["shmall"]["bytes"].as_u64(),
        Some(proc("kernel/shmall").saturating_mul(page))
    );
    assert_eq!(l["shmmin"]["value"], 1);
    let vfs = rustix::fs::statvfs("/dev/shm").unwrap();
    assert_eq!(
        l["dev_shm_size"]["value"].as_u64(),
        Some(vfs.f_blocks * vfs.f_frsize)
    );
    // Usage is measured: shmmni's is the number of segments, which other tests running in
    // parallel may change, so it must lie between two counts taken around the call.
    let addr = ok(&["mk", "sysv", "--private", "--size", "1"])
        .trim()
        .to_string();
    let _g = Gone(vec![addr]);
    let count = || {
        std::fs::read_to_string("/proc/sysvipc/shm")
            .unwrap()
            .lines()
            .count() as u64
            - 1
    };
    for _ in 0..20 {
        let (lo, usage, hi) = (
            count(),
            json(&["limits", "--json"])["shmmni"]["usage"]
                .as_u64()
                .unwrap(),
            count(),
        );
        if lo == hi {
            assert_eq!(usage, lo);
            assert!(usage >= 1);
            return;
        }
    }
    panic!("the number of segments never held still");
}

#[test]
#[cfg(target_os = "linux")] // the inventory (ls, info, gc), /dev/shm
fn bad_input_is_one_line_a_documented_code_and_changes_nothing() {
    let name = format!("/{}", unique("shmkit-cli-bad"));
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["info", "/shmkit-does-not-exist"], 4, "no such object"),
        (vec!["info", "bogus"], 2, "use /NAME"),
        (vec!["cat", "sem:0"], 2, "not shared memory"),
        (vec!["mk", "posix", &name, "--size", "0"], 2, "zero"),
        (vec!["mk", "posix", &name, "--size", "-5"], 2, "size"),
        (
            vec!["mk", "posix", &name, "--size", "99999999999999999999"],
            2,
            "too large",
        ),
        (
            vec!["mk", "posix", &name, "--size", "100T"],
            2,
            "exceeds the capacity of /dev/shm",
        ),
        (
            vec!["mk", "posix", &name, "--size", "1K", "--mode", "0999"],
            2,
            "octal",
        ),
        (
            vec!["mk", "posix", "noslash", "--size", "1K"],
            2,
            "must start with '/'",
        ),
        (vec!["mk", "sysv", "--size", "1K"], 2, "required"),
        (vec!["ls", "--kind", "nope"], 2, "unknown kind"),
        (vec!["gc", "--kind", "sysv-msg"], 2, "never an orphan"),
        (vec!["rm", "shm:2147483647"], 4, "Nothing was removed"),
    ];
    for (args, code, text) in cases {
        let r = shmkit(&args);
        assert_eq!(r.code, code, "{args:?}: {}", r.err);
        assert!(r.err.contains(text), "{args:?}: {}", r.err);
        if code != 2 || !r.err.starts_with("error:") {
            assert_eq!(
                r.err.trim_end().lines().count(),
                1,
                "{args:?}: one line: {}",
                r.err
            );
        }
        assert!(r.out.is_empty(), "{args:?} printed {}", r.out);
    }
    assert!(
        !std::path::Path::new(&format!("/dev/shm{name}")).exists(),
        "nothing was created"
    );
}

#[test]
#[cfg(target_os = "linux")] // unshare, /proc/sys
fn size_above_shmmax_names_the_limit() {
    // kernel.shmmax belongs to the IPC namespace: in a private one, root can set the 4 MiB
    // limit of the macOS article without touching the machine's.
    if rustix::process::geteuid().is_root()
        && Command::new("unshare").arg("--version").output().is_ok()
    {
        let script = format!(
            "echo 4194304 > /proc/sys/kernel/shmmax && {BIN} limits --json | grep -A8 '\"shmmax\"' && {BIN} mk sysv --private --size 8M"
        );
        let r = done(
            Command::new("unshare")
                .args(["-i", "sh", "-c", &script])
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 2, "{}", r.err);
        assert!(
            r.out.contains("\"value\": 4194304"),
            "limits sees the namespace's value: {}",
            r.out
        );
        assert_eq!(
            r.err.trim_end(),
            "shmkit: segment size 8 MiB exceeds kernel.shmmax 4 MiB; raise it with `sysctl -w kernel.shmmax=VALUE` (as root)"
        );
        return;
    }
    let shmmax: u64 = std::fs::read_to_string("/proc/sys/kernel/shmmax")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let r = shmkit(&[
        "mk",
        "sysv",
        "--private",
        "--size",
        &(shmmax.saturating_add(1)).to_string(),
    ]);
    assert_eq!(r.code, 2, "{}", r.err);
}

#[test]
#[cfg(target_os = "linux")] // /dev/shm
fn rm_with_one_bad_argument_removes_nothing() {
    let name = format!("/{}", unique("shmkit-cli-rm"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "1K"]);
    for bad in ["shm:2147483646", "memfd:1:0", "nonsense"] {
        let r = shmkit(&["rm", &name, bad]);
        assert_ne!(r.code, 0, "{bad}");
        assert!(
            std::path::Path::new(&format!("/dev/shm{name}")).exists(),
            "{bad}: {name} survived"
        );
    }
    let r = shmkit(&["rm", "--dry-run", &name]);
    assert!(
        r.out.starts_with(&format!("would remove {name}")),
        "{}",
        r.out
    );
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
#[cfg(target_os = "linux")] // cat through the inventory, /dev/shm
fn permission_denied_is_exit_5() {
    if !rustix::process::geteuid().is_root() {
        return; // needs another user to be denied by; CI runs as root
    }
    let name = format!("/{}", unique("shmkit-cli-denied"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "1K"]);
    for args in [vec!["rm", name.as_str()], vec!["cat", name.as_str()]] {
        let r = done(
            Command::new(BIN)
                .args(&args)
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 5, "{args:?}: {}", r.err);
        assert_eq!(r.err.trim_end().lines().count(), 1, "{}", r.err);
    }
    assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn completions_and_man_page_come_from_the_cli_definition() {
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("shmkit") && bash.contains("limits") && bash.contains("--holders"));
    let man = ok(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH shmkit"),
        "{}",
        &man[..200.min(man.len())]
    );
    let help = ok(&["ls", "--help"]);
    assert!(help.contains("orphan") && help.contains("JSON"), "{help}");
}
