//! The OS's own IPC objects: POSIX named semaphores and message queues, System V semaphore
//! sets and message queues. Between real processes, and with util-linux's `ipcmk`/`ipcs` and
//! Python's raw `msgsnd`/`msgrcv` (through ctypes), which nobody here wrote.
// Linux only: what this file tests (memfds, futex-based sync, /proc, util-linux tools, the
// OS queues and semaphores) is absent from the crate elsewhere.
#![cfg(target_os = "linux")]

mod common;
use common::{cue, say, sh, unique, unique_key, Cleanup, Peer};
use shmkit::posix_mq::MessageQueue;
use shmkit::posix_sem::NamedSemaphore;
use shmkit::sysv::msg::{MsgQueue, MsgType};
use shmkit::sysv::sem::{SemOp, SemSet};
use shmkit::SysvKey;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        "psem-wait" => {
            let s = NamedSemaphore::open(&args[0]).unwrap();
            say("waiting");
            s.wait().unwrap();
            say("got it");
        }
        "sysv-take-and-die" => {
            let set = SemSet::open_id(args[0].parse().unwrap()).unwrap();
            set.op(&[SemOp::wait(0).undo()]).unwrap();
            say("took");
            cue(); // killed here
        }
        "sysv-wait" => {
            let set = SemSet::open_id(args[0].parse().unwrap()).unwrap();
            set.op(&[SemOp::wait(1)]).unwrap();
            say("woken");
        }
        "mq-receive" => {
            let q = MessageQueue::open(&args[0]).unwrap();
            let (body, prio) = q.receive().unwrap();
            say(format!("{} {prio}", String::from_utf8_lossy(&body)));
        }
        _ => panic!("unknown role {role}"),
    }
}

#[test]
fn named_semaphore_between_processes() {
    let name = format!("/{}", unique("shmkit-test-psem"));
    let s = NamedSemaphore::create(&name, 0).unwrap();
    assert!(std::path::Path::new(&format!("/dev/shm/sem.{}", &name[1..])).exists());
    let e = NamedSemaphore::create(&name, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert!(e.to_string().contains("NamedSemaphore::open"), "{e}");
    let mut p = Peer::spawn("psem-wait", &[&name]);
    assert_eq!(p.recv(), "waiting");
    s.post().unwrap();
    assert_eq!(p.recv(), "got it");
    p.finish();
    let t = Instant::now();
    assert!(!s.wait_timeout(Duration::from_millis(50)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(50));
    s.post().unwrap();
    assert_eq!(s.value().unwrap(), 1);
    assert!(s.try_wait().unwrap() && !s.try_wait().unwrap());
    drop(s);
    assert_eq!(
        NamedSemaphore::open(&name).unwrap_err().raw_os_error(),
        Some(libc::ENOENT),
        "the creator unlinks on drop"
    );
}

#[test]
fn an_ipcmk_semaphore_set_is_used_and_a_dead_holder_is_undone() {
    let out = sh("ipcmk", &["-S", "2", "-p", "0600"]);
    let id: i32 = out.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let _g = Cleanup(move || {
        let _ = Command::new("ipcrm").args(["-s", &id.to_string()]).status();
    });
    let set = SemSet::open_id(id).unwrap();
    assert_eq!((set.len(), set.stat().unwrap().mode), (2, 0o600));
    set.set(0, 1).unwrap();
    // A peer takes the unit with SEM_UNDO and is killed: the kernel gives it back.
    let mut p = Peer::spawn("sysv-take-and-die", &[&id.to_string()]);
    assert_eq!(p.recv(), "took");
    assert_eq!(set.get(0).unwrap(), 0);
    let pid = p.pid();
    p.kill9();
    assert_eq!(
        set.get(0).unwrap(),
        1,
        "SEM_UNDO reverted the dead process's wait"
    );
    assert_eq!(set.pid(0).unwrap(), pid);
    // A waiter shows in GETNCNT, and a timed op times out.
    let mut w = Peer::spawn("sysv-wait", &[&id.to_string()]);
    let t = Instant::now();
    while set.ncnt(1).unwrap() != 1 {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(!set
        .op_timeout(&[SemOp::wait(1)], Duration::from_millis(30))
        .unwrap());
    assert!(!set.op(&[SemOp::wait(1).nowait()]).unwrap());
    set.op(&[SemOp::post(1)]).unwrap();
    assert_eq!(w.recv(), "woken");
    w.finish();
    assert_eq!(set.get_all().unwrap(), vec![1, 0]);
    assert_eq!(set.zcnt(0).unwrap(), 0);
    // An opener never removes; remove() does, and ipcs agrees.
    assert!(!set.is_owner());
    set.remove().unwrap();
    let ipcs = sh("ipcs", &["-s"]);
    assert!(
        !ipcs.split_whitespace().any(|w| w == id.to_string()),
        "{ipcs}"
    );
}

#[test]
fn a_created_semaphore_set_is_removed_by_its_creator() {
    let key = unique_key();
    let set = SemSet::options()
        .mode(0o640)
        .create(SysvKey::Key(key), 3)
        .unwrap();
    let id = set.id();
    assert!(sh("ipcs", &["-s", "-i", &id.to_string()]).contains("nsems = 3"));
    let e = SemSet::options()
        .mode(0o640)
        .create(SysvKey::Key(key), 3)
        .unwrap_err();
    assert!(e.to_string().contains(&format!("semid {id}")), "{e}");
    let e = set.op(&[SemOp::post(7)]).unwrap_err();
    assert!(e.to_string().contains("the set has 3 semaphores"), "{e}");
    drop(set);
    assert!(shmkit::sysv::sem::stat_id(id).is_err());
}

/// Python with ctypes: msgsnd/msgrcv straight from libc, as a C program would.
const PY_MSG: &str = r#"
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 256)]
qid, cmd = int(sys.argv[1]), sys.argv[2]
m = Msg()
if cmd == "recv":
    n = libc.msgrcv(qid, ctypes.byref(m), 256, int(sys.argv[3]), 0)
    if n < 0: sys.exit("msgrcv errno %d" % ctypes.get_errno())
    print(m.mtype, m.mtext[:n].decode())
else:
    m.mtype = int(sys.argv[3]); body = sys.argv[4].encode()
    m.mtext = body
    if libc.msgsnd(qid, ctypes.byref(m), len(body), 0) < 0: sys.exit("msgsnd errno %d" % ctypes.get_errno())
"#;

#[test]
fn messages_cross_between_shmkit_and_raw_syscalls_on_an_ipcmk_queue() {
    let out = sh("ipcmk", &["-Q", "-p", "0600"]);
    let id: i32 = out.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let _g = Cleanup(move || {
        let _ = Command::new("ipcrm").args(["-q", &id.to_string()]).status();
    });
    let q = MsgQueue::open_id(id).unwrap();
    let ids = id.to_string();
    // shmkit -> Python, selected by type.
    q.send(5, b"noise", false).unwrap();
    q.send(7, b"from shmkit", false).unwrap();
    assert_eq!(
        sh("python3", &["-c", PY_MSG, &ids, "recv", "7"]),
        "7 from shmkit\n"
    );
    let st = q.stat().unwrap();
    assert_eq!((st.messages, st.bytes), (1, 5));
    // Python -> shmkit.
    sh("python3", &["-c", PY_MSG, &ids, "send", "3", "from python"]);
    assert_eq!(
        q.recv(MsgType::AtMost(4), 256, false).unwrap(),
        Some((3, b"from python".to_vec()))
    );
    assert_eq!(
        q.recv(MsgType::Exactly(9), 256, true).unwrap(),
        None,
        "nowait"
    );
    // Too small a buffer: an error, and the message stays.
    let e = q.recv(MsgType::Any, 2, false).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::E2BIG));
    assert_eq!(
        q.recv(MsgType::Any, 256, true).unwrap().unwrap().1,
        b"noise"
    );
    q.remove().unwrap();
    assert!(shmkit::sysv::msg::stat_id(id).is_err());
}

#[test]
fn posix_message_queue_orders_by_priority_between_processes() {
    let name = format!("/{}", unique("shmkit-test-mq"));
    let q = MessageQueue::create(&name, 4, 64).unwrap();
    let a = q.attr().unwrap();
    assert_eq!((a.max_messages, a.message_size, a.messages), (4, 64, 0));
    q.send(b"low", 1).unwrap();
    q.send(b"urgent", 30).unwrap();
    q.send(b"normal", 5).unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let mut p = Peer::spawn("mq-receive", &[&name]);
        got.push(p.recv());
        p.finish();
    }
    assert_eq!(got, ["urgent 30", "normal 5", "low 1"]);
    let t = Instant::now();
    assert_eq!(q.receive_timeout(Duration::from_millis(50)).unwrap(), None);
    assert!(t.elapsed() >= Duration::from_millis(50));
    let e = q.send(&[0u8; 65], 0).unwrap_err();
    assert!(e.to_string().contains("at most 64"), "{e}");
    drop(q);
    assert_eq!(
        MessageQueue::open(&name).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
}
