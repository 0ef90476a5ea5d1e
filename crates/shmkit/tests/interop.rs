//! Interoperation with code nobody here wrote: Python's `multiprocessing.shared_memory` and
//! util-linux's `ipcmk`, `ipcs`, `lsipc`, `ipcrm`.
// Linux only: what this file tests (memfds, futex-based sync, /proc, util-linux tools, the
// OS queues and semaphores) is absent from the crate elsewhere.
#![cfg(target_os = "linux")]

mod common;
use common::{sh, unique, unique_key, Cleanup};
use shmkit::{sysv, PosixShm, SysvKey, SysvShm};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// Python 3.13 has `track=False`; before that the resource tracker must be told to forget an
/// object this process only opened, or it unlinks it at exit (CPython issue 82300).
const PY_OPEN: &str = r#"
import sys
from multiprocessing import shared_memory, resource_tracker
def open_untracked(name):
    try:
        return shared_memory.SharedMemory(name=name, track=False)
    except TypeError:
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, "shared_memory")
        return shm
"#;

#[test]
fn a_segment_created_by_python_is_read_by_shmkit() {
    let name = unique("shmkit-py-made");
    let _g = Cleanup({
        let n = format!("/{name}");
        move || {
            let _ = PosixShm::unlink_name(&n);
        }
    });
    let script = format!(
        r#"
from multiprocessing import shared_memory
import sys
shm = shared_memory.SharedMemory(name="{name}", create=True, size=5000)
shm.buf[:18] = b"written by python\0"
print("ready", flush=True)
sys.stdin.readline()          # until shmkit has read it
print(bytes(shm.buf[100:116]).decode(), flush=True)
shm.close()
shm.unlink()
"#
    );
    let mut py = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");

    let seg = PosixShm::open(&format!("/{name}")).unwrap();
    assert_eq!(seg.len(), 5000, "the size Python gave it");
    assert!(!seg.is_owner());
    let st = seg.stat().unwrap();
    assert_eq!((st.size, st.mode), (5000, 0o600));
    let mut buf = [0u8; 17];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"written by python");
    seg.write_at(100, b"answer by shmkit").unwrap();

    writeln!(py.stdin.as_mut().unwrap(), "go").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "answer by shmkit");
    assert!(py.wait().unwrap().success());
    drop(seg);
    assert!(
        PosixShm::open(&format!("/{name}")).is_err(),
        "Python unlinked it"
    );
}

#[test]
fn a_segment_created_by_shmkit_is_read_by_python() {
    let name = unique("shmkit-lib-made");
    let seg = PosixShm::create(&format!("/{name}"), 3000).unwrap();
    seg.write_at(0, b"written by shmkit").unwrap();
    let script = format!(
        "{PY_OPEN}\nshm = open_untracked('{name}')\nprint(shm.size, bytes(shm.buf[:17]).decode())\nshm.buf[200:214] = b'python was here'[:14]\nshm.close()\n"
    );
    let out = sh("python3", &["-c", &script]);
    // Python reports the mapped size, which the kernel rounds to whole pages on Linux.
    let (size, text) = out.trim().split_once(' ').unwrap();
    assert!(size.parse::<usize>().unwrap() >= 3000);
    assert_eq!(text, "written by shmkit");
    let mut buf = [0u8; 14];
    seg.read_at(200, &mut buf).unwrap();
    assert_eq!(&buf, b"python was her");
    assert!(seg.is_owner());
    drop(seg);
    assert!(
        PosixShm::open(&format!("/{name}")).is_err(),
        "shmkit, its creator, removed it"
    );
}

fn lsipc_row(id: i32) -> serde_json::Value {
    let out = sh("lsipc", &["-m", "--json", "--bytes", "-i", &id.to_string()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["sharedmemory"][0].clone()
}

#[test]
fn a_segment_made_by_ipcmk_is_opened_by_key() {
    let out = sh("ipcmk", &["-M", "12345", "-p", "0640"]);
    let id: i32 = out.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let _g = Cleanup(move || {
        let _ = Command::new("ipcrm").args(["-m", &id.to_string()]).status();
    });
    let row = lsipc_row(id);
    let key =
        u32::from_str_radix(row["key"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();

    let seg = SysvShm::open(SysvKey::Key(key as i32)).unwrap();
    assert_eq!(seg.id(), id);
    assert_eq!(seg.len(), 12345);
    let st = seg.stat().unwrap();
    assert_eq!((st.size, st.mode, st.nattch), (12345, 0o640, 1));
    assert_eq!(row["perms"], "rw-r-----");
    assert!(!seg.is_owner());
    drop(seg);
    assert!(
        sysv::shm::stat_id(id).is_ok(),
        "an opener does not remove ipcmk's segment"
    );
}

#[test]
fn a_segment_made_by_shmkit_shows_in_ipcs_and_lsipc() {
    let key = unique_key();
    let seg = SysvShm::options()
        .mode(0o604)
        .create(SysvKey::Key(key), 7000)
        .unwrap();
    let id = seg.id();
    let _g = Cleanup(move || {
        let _ = sysv::shm::remove_id(id);
    });
    let ipcs = sh("ipcs", &["-m"]);
    let line = ipcs
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(&id.to_string()))
        .unwrap_or_else(|| panic!("shmid {id} not in ipcs -m:\n{ipcs}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[0], format!("{:#010x}", key as u32));
    assert_eq!((f[3], f[4], f[5]), ("604", "7000", "1"));

    let row = lsipc_row(id);
    assert_eq!(row["key"], format!("{:#010x}", key as u32));
    assert_eq!(row["size"].as_str().unwrap(), "7000");
    assert_eq!(row["perms"], "rw----r--");
    assert_eq!(
        row["cpid"].as_str().unwrap(),
        std::process::id().to_string()
    );
    drop(seg);
    assert!(!sh("ipcs", &["-m"])
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string())));
}

#[test]
fn ipcrm_removal_is_deferred_for_a_shmkit_attachment() {
    let seg = SysvShm::create(SysvKey::Private, 4096).unwrap();
    let id = seg.id();
    seg.write_at(0, b"alive").unwrap();
    sh("ipcrm", &["-m", &id.to_string()]);
    let st = seg.stat().unwrap();
    assert!(st.marked_for_removal);
    assert_eq!(lsipc_row(id)["status"], "dest");
    let mut buf = [0u8; 5];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"alive");
    drop(seg);
    assert!(sysv::shm::stat_id(id).is_err());
}
