//! The inventory commands, driven through the built binary and checked against util-linux and
//! Python.

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// `gc` as these tests run it on their own objects: vouching for processes this machine does
/// not let anyone inspect, and with no minimum age (the objects are seconds old). The tests
/// always narrow it with --match or --kind: other objects on the machine are not theirs.
const VOUCH: &[&str] = &["gc", "--ignore-uninspected", "--older-than", "0"];

#[test]
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
fn semaphore_sets_and_queues_from_ipcmk_are_listed_with_values_and_removed() {
    let sem = ipcmk(&["-S", "3", "-p", "0600"]);
    let msg = ipcmk(&["-Q", "-p", "0600"]);
    let _g = Gone(vec![format!("sem:{sem}"), format!("msg:{msg}")]);
    let ls = json(&["ls", "-k", "sysv-sem", "-k", "sysv-msg", "--json"]);
    let s = find(&ls, &format!("sem:{sem}")).expect("sem listed");
    assert_eq!(
        (s["nsems"].as_u64(), s["values"].clone()),
        (Some(3), serde_json::json!([0, 0, 0]))
    );
    assert_eq!(s["waiters"], 0);
    let m = find(&ls, &format!("msg:{msg}")).expect("msg listed");
    assert_eq!(
        (
            m["messages"].as_u64(),
            m["size"].as_u64(),
            m["mode"].as_str()
        ),
        (Some(0), Some(0), Some("0600"))
    );
    let r = shmkit(&["rm", &format!("sem:{sem}"), &format!("msg:{msg}")]);
    assert_eq!(r.code, 0, "{}", r.err);
    let ipcs = tool("ipcs", &["-s", "-q"]);
    assert!(
        !ipcs
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(&sem.to_string())),
        "{ipcs}"
    );
}

#[test]
fn a_posix_named_semaphore_shows_its_value_without_being_opened() {
    let name = unique("shmkit-cli-psem");
    let _g = Gone(vec![format!("psem:/{name}")]);
    // sem_open through ctypes: the C library's own implementation.
    let script = format!(
        "import ctypes, os\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         libc.sem_open.restype = ctypes.c_void_p\n\
         s = libc.sem_open(b'/{name}', os.O_CREAT | os.O_EXCL, 0o600, 2)\n\
         assert s, ctypes.get_errno()\n"
    );
    tool("python3", &["-c", &script]);
    let ls = json(&["ls", "-k", "posix-sem", "--holders", "--json"]);
    let o = find(&ls, &format!("psem:/{name}")).expect("listed");
    assert_eq!(
        (o["value"].as_i64(), o["waiters"].as_u64()),
        (Some(2), Some(0))
    );
    // "orphan" when every process could be inspected; "unknown" (never "orphan") when some
    // could not be, as on a machine whose init forbids inspection.
    let want = if o["uninspected_processes"] == 0 {
        "orphan"
    } else {
        "unknown"
    };
    assert_eq!(o["status"], serde_json::json!([want]), "Python exited: {o}");
    let r = shmkit(&["rm", &format!("psem:/{name}")]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!std::path::Path::new(&format!("/dev/shm/sem.{name}")).exists());
}

#[test]
fn a_memfd_held_by_another_process_is_listed_and_readable() {
    let script = "import os, sys\n\
         fd = os.memfd_create('shmkit-cli-memfd')\n\
         os.write(fd, b'inside a memfd')\n\
         print(fd, flush=True)\n\
         sys.stdin.readline()\n";
    let (mut py, line) = python(script, &[]);
    let addr = format!("memfd:{}:{line}", py.id());
    let ls = json(&["ls", "-k", "memfd", "--holders", "--json"]);
    let o = find(&ls, &addr).unwrap_or_else(|| panic!("{addr} not in {ls:#}"));
    assert_eq!(
        (o["name"].as_str(), o["size"].as_u64()),
        (Some("shmkit-cli-memfd"), Some(14))
    );
    assert_eq!(o["holder_details"][0]["maps"], false, "held by fd only");
    assert_eq!(ok(&["cat", &addr]), "inside a memfd");
    let r = shmkit(&["rm", &addr]);
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("no name to remove") && r.err.contains("Nothing was removed"),
        "{}",
        r.err
    );
    py.stdin.take().unwrap().write_all(b"\n").unwrap();
    py.wait().unwrap();
}

#[test]
fn posix_queues_are_listed_where_an_mqueue_file_system_is_mounted() {
    // Listing never mounts anything; this test mounts one in a private mount namespace,
    // which the machine never sees.
    if !rustix::process::geteuid().is_root()
        || Command::new("unshare").arg("--version").output().is_err()
    {
        let r = shmkit(&["ls", "-k", "posix-mq"]);
        assert_eq!(r.code, 0);
        return;
    }
    let name = unique("shmkit-cli-mq");
    let dir = std::env::temp_dir().join(unique("shmkit-mqueue"));
    std::fs::create_dir(&dir).unwrap();
    let script = format!(
        "set -e; mount -t mqueue none {d}; \
         python3 -c \"import ctypes,os; l=ctypes.CDLL(None,use_errno=True); q=l.mq_open(b'/{name}', os.O_CREAT|os.O_RDWR, 0o600, None); assert q>=0, ctypes.get_errno(); assert l.mq_send(q, b'hello', 5, 0)==0\"; \
         {BIN} ls -k posix-mq --json; {BIN} rm mq:/{name}; umount {d}",
        d = dir.display()
    );
    let r = done(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap(),
    );
    std::fs::remove_dir(&dir).unwrap();
    assert_eq!(r.code, 0, "{}", r.err);
    let json_end = r.out.rfind(']').unwrap();
    let ls: Value = serde_json::from_str(&r.out[..=json_end]).unwrap();
    let o = find(&ls, &format!("mq:/{name}")).expect("listed");
    assert_eq!(
        (o["size"].as_u64(), o["mode"].as_str()),
        (Some(5), Some("0600"))
    );
    assert!(r.out.contains(&format!("removed mq:/{name}")));
}

#[test]
fn listing_without_mqueue_says_so() {
    let mounted = std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(2) == Some("mqueue"));
    let r = shmkit(&["ls", "-k", "posix-mq"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.err.contains("no mqueue file system is mounted"),
        !mounted,
        "{}",
        r.err
    );
}

#[test]
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

#[test]
fn mk_makes_semaphores_and_queues_of_every_kind_and_ls_info_rm_handle_them() {
    let psem = format!("/{}", unique("shmkit-cli-psem"));
    let mq = format!("/{}", unique("shmkit-cli-mq"));
    let sem = ok(&[
        "mk",
        "sem",
        "--private",
        "--nsems",
        "3",
        "--value",
        "2",
        "--mode",
        "0640",
    ]);
    let sem = sem.trim().to_string();
    let msg = ok(&["mk", "msg", "--private"]).trim().to_string();
    let mut gone = Gone(vec![sem.clone(), msg.clone()]);
    let p = json(&["mk", "psem", &psem, "--value", "4", "--json"]);
    gone.0.push(format!("psem:{psem}"));
    assert_eq!(
        (p["object"].as_str().unwrap(), p["value"].as_u64()),
        (&*format!("psem:{psem}"), Some(4))
    );
    let q = json(&[
        "mk",
        "mq",
        &mq,
        "--max-messages",
        "3",
        "--message-size",
        "100",
        "--json",
    ]);
    gone.0.push(format!("mq:{mq}"));
    assert_eq!(
        (q["max_messages"].as_u64(), q["message_size"].as_u64()),
        (Some(3), Some(100))
    );

    // ipcs sees the System V ones, with their ids.
    let semid = sem.strip_prefix("sem:").unwrap();
    let msqid = msg.strip_prefix("msg:").unwrap();
    assert!(tool("ipcs", &["-s", "-i", semid]).contains("nsems = 3"));
    assert!(tool("ipcs", &["-q"]).split_whitespace().any(|w| w == msqid));

    // ls shows values without side effects; info has the same fields.
    let all = json(&[
        "ls",
        "--kind",
        "sysv-sem",
        "--kind",
        "posix-sem",
        "--kind",
        "sysv-msg",
        "--json",
    ]);
    let listed = |addr: &str| find(&all, addr).unwrap_or_else(|| panic!("{addr} not listed"));
    let s = listed(&sem);
    assert_eq!(
        (s["kind"].as_str(), s["mode"].as_str()),
        (Some("sysv-sem"), Some("0640"))
    );
    assert_eq!(s["values"], serde_json::json!([2, 2, 2]));
    assert_eq!(listed(&format!("psem:{psem}"))["value"], 4);
    assert_eq!(listed(&msg)["messages"], 0);
    assert_eq!(json(&["info", &sem, "--json"])["nsems"], 3);
    assert_eq!(
        json(&["info", &format!("mq:{mq}"), "--json"])["kind"],
        "posix-mq"
    );

    // Creation is exclusive.
    let again = shmkit(&["mk", "psem", &psem]);
    assert_ne!(again.code, 0);
    assert!(again.err.contains("File exists"), "{}", again.err);

    // rm removes every kind at once.
    let r = ok(&[
        "rm",
        &sem,
        &msg,
        &format!("psem:{psem}"),
        &format!("mq:{mq}"),
    ]);
    assert_eq!(r.lines().count(), 4, "{r}");
    for o in &gone.0 {
        assert_eq!(shmkit(&["info", o]).code, 4, "{o} is gone");
    }
    gone.0.clear();
}

#[test]
fn gc_finds_a_named_semaphore_nobody_holds_and_spares_a_held_one() {
    let name = format!("/{}", unique("shmkit-cli-gc-psem"));
    let addr = format!("psem:{name}");
    let _g = Gone(vec![addr.clone()]);
    ok(&["mk", "psem", &name]);
    let dry_run = || {
        json(
            &[
                VOUCH,
                &[
                    "--dry-run",
                    "--kind",
                    "posix-sem",
                    "--match",
                    &addr,
                    "--json",
                ],
            ]
            .concat(),
        )
    };
    let listed = |gc: &Value| find(gc, &addr).is_some();
    let gc = dry_run();
    assert!(listed(&gc), "{gc}");
    // Python maps the semaphore's file, as sem_open does: now it has a holder.
    let path = format!("/dev/shm/sem.{}", &name[1..]);
    let (mut py, line) = python(
        "import mmap,sys,time\nf=open(sys.argv[1],'r+b')\nm=mmap.mmap(f.fileno(),0)\nprint('mapped',flush=True)\ntime.sleep(60)",
        &[&path],
    );
    assert_eq!(line, "mapped");
    let gc = dry_run();
    let _ = py.kill();
    let _ = py.wait();
    assert!(!listed(&gc), "held by python: {gc}");
    // Without vouching, a machine with uninspectable processes cannot call it an orphan.
    let blind = json(&[
        "gc",
        "--dry-run",
        "--older-than",
        "0",
        "--match",
        &addr,
        "--json",
    ]);
    if let Some(o) = find(&blind, &addr) {
        assert_eq!(o["action"], "skipped", "{o}");
    }
}
