//! The command as a hostile or careless environment meets it: names made by another user to
//! fool root's terminal, objects another user's process holds unseen, sparse objects, a bare
//! `gc`, missing objects, and narrow terminals. Each test is the regression test of a bug that
//! a try-out found; the ones that need another uid run as `nobody` (CI runs as root). All but
//! the man page test are Linux only, each marked: the inventory is built on Linux only so far.

mod common;

use common::*;
#[cfg(target_os = "linux")]
use std::ffi::OsStr;
#[cfg(target_os = "linux")]
use std::os::unix::ffi::{OsStrExt, OsStringExt};
#[cfg(target_os = "linux")]
use std::process::Command;

/// Removes files in /dev/shm by their raw name when dropped (names no command line could
/// carry as UTF-8).
#[cfg(target_os = "linux")] // /dev/shm
struct GoneRaw(Vec<Vec<u8>>);
#[cfg(target_os = "linux")]
impl Drop for GoneRaw {
    fn drop(&mut self) {
        for n in &self.0 {
            let mut p = b"/dev/shm/".to_vec();
            p.extend_from_slice(n);
            let _ = std::fs::remove_file(OsStr::from_bytes(&p));
        }
    }
}

/// Names that another user made to fool root's terminal reach it quoted; JSON keeps them
/// exact.
#[test]
#[cfg(target_os = "linux")] // the inventory (ls, info, gc), /dev/shm
fn hostile_names_are_quoted_in_every_human_output() {
    if !root() {
        return;
    }
    let tag = unique("shmkit-hard-evil");
    let raw: Vec<Vec<u8>> = vec![
        format!("{tag}-esc\x1b[2J\x1b[31m").into_bytes(),
        format!("{tag}-nl\nposix-shm  forged").into_bytes(),
        format!("{tag}-tab\tx").into_bytes(),
        [format!("{tag}-bad").as_bytes(), b"\xff\xfe"].concat(),
    ];
    let _g = GoneRaw(raw.clone());
    // Owned by nobody, as anyone could make them (the machine's python lives under /root,
    // out of nobody's reach, so root makes them and gives them away).
    for n in &raw {
        let path = OsStr::from_bytes(&[b"/dev/shm/", n.as_slice()].concat()).to_os_string();
        std::fs::write(&path, vec![0u8; 4096]).unwrap();
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let clean = |what: &str, out: &str| {
        assert!(
            !out.contains('\x1b'),
            "{what}: ESC reached the terminal: {out:?}"
        );
        assert!(!out.contains('\t'), "{what}: a raw tab: {out:?}");
        assert!(
            !out.contains("\nforged") && !out.contains("\nposix-shm  forged"),
            "{what}: {out:?}"
        );
    };
    let ls = shmkit(&["ls", "--kind", "posix-shm", "--holders"]);
    assert_eq!(ls.code, 0, "{}", ls.err);
    clean("ls", &ls.out);
    let ours: Vec<&str> = ls.out.lines().filter(|l| l.contains(&tag)).collect();
    assert_eq!(ours.len(), 4, "one row per object: {}", ls.out);
    assert!(
        ls.out
            .contains(&format!("'/{tag}-nl'$'\\n''posix-shm  forged'")),
        "{}",
        ls.out
    );
    assert!(
        ls.out.contains(&format!("'/{tag}-bad'$'\\377\\376'")),
        "{}",
        ls.out
    );
    // JSON is exact: the names come back byte for byte.
    let v = json(&["ls", "--kind", "posix-shm", "--json"]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["object"].as_str())
        .collect();
    assert!(names.contains(&format!("/{tag}-nl\nposix-shm  forged").as_str()));
    let bad = v
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["object"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/{tag}-bad"))
        })
        .unwrap();
    let bytes: Vec<u8> = bad["object_bytes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(bytes, [b"/", raw[3].as_slice()].concat());
    // info, cat errors, rm and gc, with the exact bytes as the argument.
    for n in &raw {
        let arg = OsStr::from_bytes(&[b"/", n.as_slice()].concat()).to_os_string();
        let info = done(Command::new(BIN).arg("info").arg(&arg).output().unwrap());
        assert_eq!(info.code, 0, "{}", info.err);
        clean("info", &info.out);
        clean("info stderr", &info.err);
        let dry = done(
            Command::new(BIN)
                .args(["rm", "--dry-run"])
                .arg(&arg)
                .output()
                .unwrap(),
        );
        assert_eq!(dry.code, 0, "{}", dry.err);
        clean("rm --dry-run", &dry.out);
        assert_eq!(dry.out.lines().count(), 1, "{}", dry.out);
    }
    let gc = shmkit(&[
        "gc",
        "--dry-run",
        "--all-users",
        "--older-than",
        "0",
        "--match",
        &format!("/{tag}*"),
    ]);
    assert_eq!(gc.code, 0, "{}", gc.err);
    clean("gc", &gc.out);
    // Errors name the object as the rest of the output does: quoted, with its exact bytes.
    let mut gone = format!("/{tag}-never\x1b[2J").into_bytes();
    gone.push(0xff);
    let gone = std::ffi::OsString::from_vec(gone);
    let r = done(Command::new(BIN).arg("info").arg(&gone).output().unwrap());
    assert_eq!(r.code, 4, "{}", r.err);
    clean("error", &r.err);
    assert!(
        r.err
            .contains(&format!("'/{tag}-never'$'\\033''[2J'$'\\377'")),
        "{}",
        r.err
    );
    // Removing by the exact bytes works, and says so quoted.
    let arg = OsStr::from_bytes(&[b"/", raw[3].as_slice()].concat()).to_os_string();
    let rm = done(Command::new(BIN).arg("rm").arg(&arg).output().unwrap());
    assert_eq!(rm.code, 0, "{}", rm.err);
    assert!(rm.out.contains("$'\\377\\376'"), "{}", rm.out);
}

#[test]
#[cfg(target_os = "linux")] // POSIX named semaphores
fn sem_dot_names_are_semaphores_not_segments() {
    let name = unique("shmkit-hard-psem");
    let _g = Gone(vec![format!("psem:/{name}")]);
    ok(&["mk", "psem", &format!("/{name}"), "--value", "3"]);
    let seg = format!("/sem.{name}");
    for args in [
        vec!["mk", "posix", seg.as_str(), "--size", "4K"],
        vec!["write", seg.as_str()],
        vec!["cat", seg.as_str()],
        vec!["info", seg.as_str()],
        vec!["rm", seg.as_str()],
    ] {
        let r = shmkit_in(&args, b"\xff\xff\xff\x7f");
        assert_eq!(r.code, 2, "{args:?}: {}", r.err);
        assert!(
            r.err.contains(&format!("psem:/{name}")),
            "{args:?}: {}",
            r.err
        );
    }
    // `/sem.` alone names no semaphore: the hint says what such names are, not "psem:/".
    let r = shmkit(&["info", "/sem."]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err.contains("psem:/NAME") && !r.err.contains("psem:/'"),
        "{}",
        r.err
    );
    // The semaphore's value is untouched (before the fix, write made it 2147483647).
    let v = json(&["info", &format!("psem:/{name}"), "--json"]);
    assert_eq!(v["value"], 3, "{v}");
}

#[test]
#[cfg(target_os = "linux")] // every kind: memfds, queues, POSIX semaphores
fn a_missing_object_is_no_such_object_for_every_command_and_kind() {
    // An id far above any in use; a name nobody made.
    let missing = [
        "shm:2147483000",
        "key:0x7ffffff1",
        "sem:2147483000",
        "msg:2147483000",
        "/shmkit-hard-never-made",
        "psem:/shmkit-hard-never-made",
        "mq:/shmkit-hard-never-made",
    ];
    for obj in missing {
        for cmd in ["info", "cat", "write", "rm"] {
            if matches!(cmd, "cat" | "write")
                && (obj.starts_with("sem:")
                    || obj.starts_with("msg:")
                    || obj.contains("sem:/")
                    || obj.starts_with("mq:"))
            {
                continue; // not memory: refused for that before being looked up
            }
            let r = shmkit_in(&[cmd, obj], b"x");
            assert_eq!(r.code, 4, "{cmd} {obj}: {}", r.err);
            assert!(r.err.contains("no such object"), "{cmd} {obj}: {}", r.err);
            assert!(r.err.contains("`shmkit ls`"), "{cmd} {obj}: {}", r.err);
            assert!(
                !r.err.contains("Invalid argument"),
                "{cmd} {obj}: {}",
                r.err
            );
        }
    }
}

#[test]
#[cfg(target_os = "linux")] // the inventory (ls, info, gc)
fn ls_fits_80_columns_with_a_key_column_and_takes_lsipc_options() {
    let long = format!("/{}-{}", unique("shmkit-hard-long"), "n".repeat(120));
    let _g = Gone(vec![long.clone()]);
    ok(&["mk", "posix", &long, "--size", "1536K"]);
    let key = 0x5e00_0000 | (std::process::id() & 0xffff) as i32;
    let made = json(&[
        "mk",
        "sysv",
        "--key",
        &format!("{key:#x}"),
        "--size",
        "4K",
        "--json",
    ]);
    let shm = made["object"].as_str().unwrap().to_string();
    let _s = Gone(vec![shm.clone()]);
    let run = |args: &[&str]| {
        let r = done(
            Command::new(BIN)
                .args(args)
                .env("COLUMNS", "80")
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{args:?}: {}", r.err);
        r.out
    };
    let t = run(&["ls"]);
    let header = t.lines().next().unwrap();
    assert!(
        header.contains("KEY") && header.contains("OBJECT"),
        "{header}"
    );
    for l in t.lines() {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l}",
            l.chars().count()
        );
    }
    assert!(t.contains('…'), "the long name is cut with a marker: {t}");
    let row = t.lines().find(|l| l.contains(&shm)).unwrap();
    assert!(row.contains(&format!("{:#010x}", key as u32)), "{row}");
    assert!(row.contains("4 KiB"), "human sizes by default: {row}");
    // Piped with no width, one long name does not widen the other rows.
    let whole = done(
        Command::new(BIN)
            .arg("ls")
            .env_remove("COLUMNS")
            .output()
            .unwrap(),
    )
    .out;
    assert!(whole.contains(&long));
    let shm_row = whole.lines().find(|l| l.contains(&shm)).unwrap();
    assert!(shm_row.len() < 120, "{shm_row}");
    // -o, --bytes, --noheadings, --raw, --sort, --user.
    let t = run(&[
        "ls",
        "-o",
        "object,size,key",
        "--bytes",
        "--noheadings",
        "--kind",
        "sysv-shm",
    ]);
    assert!(
        t.lines()
            .any(|l| l.starts_with(&shm) && l.contains(" 4096 ")),
        "{t}"
    );
    assert!(!t.contains("OBJECT"));
    let t = run(&[
        "ls",
        "--raw",
        "-o",
        "object,size",
        "--bytes",
        "--kind",
        "posix-shm",
    ]);
    assert!(t.lines().any(|l| l == format!("{long} 1572864")), "{t}");
    let t = run(&[
        "ls",
        "-o",
        "size",
        "--bytes",
        "--sort",
        "size",
        "--noheadings",
        "--kind",
        "sysv-shm",
    ]);
    let sizes: Vec<u64> = t.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{sizes:?}");
    let me = rustix::process::geteuid().as_raw().to_string();
    let t = run(&["ls", "--user", &me, "-o", "object", "--noheadings"]);
    assert!(t.lines().any(|l| l == shm), "{t}");
    let t = run(&["ls", "--user", "4000000000", "-o", "object", "--noheadings"]);
    assert_eq!(t, "");
    let r = shmkit(&["ls", "-o", "nonsense"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("the columns are"), "{}", r.err);
    // --creator and --time add ipcs -c / -t columns.
    let t = run(&[
        "ls",
        "--creator",
        "--time",
        "--output-all",
        "--kind",
        "sysv-shm",
    ]);
    assert!(
        t.contains("CPID") && t.contains("ATTACHED") && t.contains("CUSER"),
        "{t}"
    );
    // The summary against limits, like lsipc -g.
    let v = json(&["ls", "--summary", "--json"]);
    assert!(
        v["sysv-shm"]["segments"]["used"].as_u64().unwrap() >= 1,
        "{v}"
    );
    assert!(v["sysv-shm"]["segments"]["limit"].as_u64().is_some(), "{v}");
}

#[test]
#[cfg(target_os = "linux")] // write opens objects through the inventory; mk mq
fn messages_count_in_the_right_number_and_name_our_verbs() {
    let name = format!("/{}", unique("shmkit-hard-msg"));
    let _g = Gone(vec![name.clone()]);
    ok(&["mk", "posix", &name, "--size", "4K"]);
    let r = shmkit_in(&["write", &name, "--offset", "4K"], b"abcd");
    assert_eq!(r.code, 2);
    assert!(
        r.err.contains("(4 bytes)") && r.err.contains("0 bytes fit"),
        "{}",
        r.err
    );
    let r = shmkit_in(&["write", &name], b"a");
    assert!(r.err.contains("wrote 1 byte "), "{}", r.err);
    let r = shmkit(&["mk", "posix", &name, "--size", "4K"]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains(&format!("shmkit rm {name}")), "{}", r.err);
    assert!(
        !r.err.contains("PosixShm::") && !r.err.contains("rm /dev/shm"),
        "{}",
        r.err
    );
    let r = shmkit(&["mk", "sysv", "--key", "0x100000000", "--size", "4K"]);
    assert!(r.err.contains("above 32 bits"), "{}", r.err);
    let r = shmkit(&["mk", "sysv", "--key", "0", "--size", "4K"]);
    assert!(r.err.contains("--private"), "{}", r.err);
    let r = shmkit(&["mk", "mq", "/x", "--message-size", "0"]);
    assert_eq!(r.code, 2);
    assert!(!r.err.contains("segment"), "{}", r.err);
    for args in [
        vec!["cat", name.as_str(), "--offset", "-1"],
        vec!["mk", "posix", "/x", "--size", "-1"],
    ] {
        let r = shmkit(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(!r.err.contains("-- -1"), "{args:?}: {}", r.err);
        assert!(r.err.contains("negative"), "{args:?}: {}", r.err);
    }
    let r = shmkit(&["mk", "sysv", "--private", "--size", "16E"]);
    if let Some(line) = r.err.lines().find(|l| l.contains("shmmax")) {
        // 16 EiB against a shmmax just under it: exact values, not two "16 EiB".
        assert!(
            !line.contains("16 EiB exceeds kernel.shmmax 16 EiB"),
            "{line}"
        );
    }
}

#[test]
fn man_pages_for_every_subcommand_and_a_tour_help_that_lists_the_experiments() {
    let dir = std::env::temp_dir().join(unique("shmkit-hard-man"));
    let r = shmkit(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.err);
    let main = std::fs::read_to_string(dir.join("shmkit.1")).unwrap();
    for sub in [
        "ls", "info", "mk", "rm", "cat", "write", "limits", "gc", "tour",
    ] {
        assert!(main.contains(&format!("shmkit\\-{sub}(1)")), "{sub}");
        assert!(dir.join(format!("shmkit-{sub}.1")).exists(), "{sub}");
    }
    assert!(!dir.join("shmkit-__peer.1").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    let help = ok(&["tour", "--help"]);
    for e in [
        "anon-fork",
        "inherit-zero",
        "sysv-deferred-rmid",
        "memfd-scm-rights",
        "mutex-owner-died",
    ] {
        assert!(help.contains(e), "{e}: {help}");
    }
    for sub in ["tour", "cat", "ls", "gc"] {
        assert!(!ok(&[sub, "--help"]).contains("article"), "{sub}");
    }
}

/// `memfd:PID:FD` names a memfd: an fd of any other file (here a private file of the test)
/// is no such object for every command, not a way to read the file through shmkit.
#[test]
#[cfg(target_os = "linux")] // memfd
fn memfd_addresses_reach_only_memfds() {
    let path = std::env::temp_dir().join(unique("shmkit-hard-notmemfd"));
    std::fs::write(&path, b"secret\n").unwrap();
    let (mut py, fd) = python(
        "import os,sys\n\
         f=os.open(sys.argv[1], os.O_RDWR)\n\
         m=os.memfd_create('shmkit-hard-real')\n\
         os.ftruncate(m, 4096)\n\
         print(f, m, flush=True)\n\
         sys.stdin.readline()\n",
        &[path.to_str().unwrap()],
    );
    let _ = std::fs::remove_file(&path);
    let (file_fd, memfd) = fd.split_once(' ').unwrap();
    let pid = py.id();
    for cmd in ["info", "cat", "write"] {
        let r = shmkit_in(&[cmd, &format!("memfd:{pid}:{file_fd}")], b"x");
        assert_eq!(r.code, 4, "{cmd}: {} {}", r.out, r.err);
        assert!(!r.out.contains("secret"), "{cmd}: {}", r.out);
    }
    // The memfd itself is reached.
    let r = shmkit(&["cat", &format!("memfd:{pid}:{memfd}"), "--length", "4"]);
    assert_eq!(r.code, 0, "{}", r.err);
    py.kill().unwrap();
    py.wait().unwrap();
}

/// A holder names itself (`PR_SET_NAME`): an escape sequence or bytes that are not UTF-8 in
/// its name reach neither the terminal raw nor an empty cell.
#[test]
#[cfg(target_os = "linux")] // holders from /proc
fn a_holders_hostile_command_name_is_shown_escaped() {
    let name = unique("shmkit-hard-comm");
    let _g = Gone(vec![format!("/{name}")]);
    ok(&["mk", "posix", &format!("/{name}"), "--size", "4K"]);
    let (mut py, ready) = python(
        "import ctypes,mmap,os,sys\n\
         ctypes.CDLL(None).prctl(15, b'x\\x1b[2J\\xff')\n\
         fd=os.open('/dev/shm/'+sys.argv[1], os.O_RDWR)\n\
         m=mmap.mmap(fd, 0)\n\
         print('ready', flush=True)\n\
         sys.stdin.readline()\n",
        &[&name],
    );
    assert_eq!(ready, "ready");
    let pid = py.id();
    let ls = ok(&[
        "ls",
        "--holders",
        "--kind",
        "posix-shm",
        "-o",
        "object,holders",
    ]);
    let row = ls.lines().find(|l| l.contains(&name)).unwrap();
    assert!(!row.contains('\x1b'), "{row:?}");
    assert!(row.contains(&format!("{pid}(x\\033[2J")), "{row:?}");
    let info = ok(&["info", &format!("/{name}")]);
    assert!(
        !info.contains('\x1b') && info.contains("x\\033[2J"),
        "{info}"
    );
    let v = json(&["info", &format!("/{name}"), "--json"]);
    let cmd = v["holder_details"][0]["command"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        cmd.starts_with("x\x1b[2J"),
        "JSON keeps what it can exactly: {cmd:?}"
    );
    py.kill().unwrap();
    py.wait().unwrap();
}
