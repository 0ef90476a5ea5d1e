//! The inventory of the kinds beyond shared memory, against tools nobody here wrote: System V
//! semaphore sets and queues from util-linux `ipcmk`, POSIX named semaphores and queues, and
//! memfds held by other processes (Python peers).

// Linux only: memfds, POSIX semaphores and queues, System V queues, util-linux and /proc.
#![cfg(target_os = "linux")]

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::process::Command;

const VOUCH: &[&str] = &["gc", "--ignore-uninspected", "--older-than", "0"];

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
