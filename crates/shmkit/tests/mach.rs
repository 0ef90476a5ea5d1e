//! Mach memory entries, semaphores, bootstrap names and exit watches (macOS only: compiled
//! for both Apple targets in CI here, run by the macOS workflow). Multi-process tests spawn
//! this test binary again (`SHMKIT_MACH_CHILD` says which part to play) or `fork` where the
//! fork is the point (names looked up after it, rights not inherited by it).
#![cfg(target_os = "macos")]

use shmkit::mach::{
    bootstrap, Handle, MachMemory, MachSemaphore, MemoryEntry, Policy, ProcessExit,
};
use shmkit::{ErrorKind, Inherit};
use std::process::Command;

mod common;
use common::in_child;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOOK_UP: Duration = Duration::from_secs(10);

#[test]
fn two_mappings_of_one_entry_share_memory() {
    let seg = MachMemory::new(3 * 4096 + 5).unwrap();
    assert_eq!(seg.len(), 3 * 4096 + 5);
    let again = seg.entry().try_clone().unwrap().map().unwrap();
    seg.write_at(3 * 4096, b"tail!").unwrap();
    let mut buf = [0u8; 5];
    again.read_at(3 * 4096, &mut buf).unwrap();
    assert_eq!(&buf, b"tail!");
    assert!(again.write_at(3 * 4096 + 1, b"past the end").is_err());
    again.atomic_u64(8).unwrap().store(7, Ordering::SeqCst);
    assert_eq!(seg.atomic_u64(8).unwrap().load(Ordering::SeqCst), 7);
}

#[test]
fn an_allocated_range_over_128_mib_is_covered_whole() {
    // Without MAP_MEM_VM_SHARE an entry of an anonymous range stops at its first VM object.
    let len = 200 << 20;
    let seg = MachMemory::allocate(len).unwrap();
    let other = seg.entry().try_clone().unwrap().map().unwrap();
    other.write_at(len - 8, b"far end!").unwrap();
    let mut buf = [0u8; 8];
    seg.read_at(len - 8, &mut buf).unwrap();
    assert_eq!(&buf, b"far end!");
}

#[test]
fn a_read_only_entry_maps_read_only_and_refuses_a_writable_map() {
    let seg = MachMemory::new(4096).unwrap();
    seg.write_at(0, b"ro").unwrap();
    let ro = seg.read_only_entry().unwrap();
    assert!(!ro.is_writable());
    // A process that claims the entry is writable is told no by the kernel.
    let lie = MemoryEntry::from_send_right(ro.send_right().try_clone().unwrap(), 4096, true);
    let err = lie.map().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let view = ro.map().unwrap();
    assert!(!view.is_writable());
    let mut buf = [0u8; 2];
    view.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"ro");
    assert_eq!(
        view.write_at(0, b"no").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    seg.write_at(0, b"RW").unwrap();
    view.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"RW");
}

#[test]
fn an_entry_smaller_than_claimed_does_not_map() {
    let seg = MachMemory::new(4096).unwrap();
    let big =
        MemoryEntry::from_send_right(seg.entry().send_right().try_clone().unwrap(), 1 << 20, true);
    let err = big.map().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn zero_sizes_are_refused() {
    assert_eq!(
        MachMemory::new(0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        MachMemory::allocate(0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn semaphore_counts_and_times_out() {
    for policy in [Policy::Fifo, Policy::Lifo] {
        let sem = MachSemaphore::new(policy, 2).unwrap();
        assert!(sem.wait_timeout(Duration::ZERO).unwrap());
        sem.wait().unwrap();
        let t = Instant::now();
        assert!(!sem.wait_timeout(Duration::from_millis(50)).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(45));
        sem.signal().unwrap();
        assert!(sem.wait_timeout(Duration::MAX).unwrap());
    }
    assert_eq!(
        MachSemaphore::new(Policy::Fifo, u32::MAX)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn signal_all_wakes_every_waiter() {
    let sem = Arc::new(MachSemaphore::new(Policy::Fifo, 0).unwrap());
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let s = sem.clone();
            std::thread::spawn(move || s.wait_timeout(Duration::from_secs(20)).unwrap())
        })
        .collect();
    // signal_all counts nothing: call it until every waiter has woken.
    let deadline = Instant::now() + Duration::from_secs(10);
    while waiters.iter().any(|w| !w.is_finished()) && Instant::now() < deadline {
        sem.signal_all().unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in waiters {
        assert!(w.join().unwrap());
    }
}

/// The parts a re-executed test binary plays.
fn child_role() -> Option<String> {
    std::env::var("SHMKIT_MACH_CHILD").ok()
}

/// Child: publishes a semaphore under the name given, says so, and waits to be killed.
#[test]
fn child_publishes_a_semaphore() {
    let Some(name) = child_role() else { return };
    let sem = MachSemaphore::new(Policy::Fifo, 0).unwrap();
    let right = sem.send_right().try_clone().unwrap();
    let _service = bootstrap::Service::publish(
        &name,
        vec![Handle::Semaphore(MachSemaphore::from_send_right(right))],
        b"",
    )
    .unwrap();
    shmkit_peer::report("published");
    let _ = shmkit_peer::cue();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_waiter_on_a_dead_creators_semaphore_gets_an_error_not_a_hang() {
    if child_role().is_some() {
        return;
    }
    let name = bootstrap::unique_name("org.shmkit.test.dies");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "child_publishes_a_semaphore",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("SHMKIT_MACH_CHILD", &name);
    let mut peer = shmkit_peer::Peer::spawn(cmd).unwrap();
    peer.line_with_prefix("published")
        .unwrap()
        .expect("the child published");
    let got = bootstrap::look_up(&name, LOOK_UP).unwrap();
    let sem = got
        .handles
        .into_iter()
        .next()
        .unwrap()
        .into_semaphore()
        .unwrap();
    let waiter = std::thread::spawn(move || sem.wait_timeout(Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(200));
    peer.kill().unwrap();
    let t = Instant::now();
    let err = waiter.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PeerGone, "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // The name went with its process.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match bootstrap::look_up(&name, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            _ if Instant::now() > deadline => panic!("{name} still published"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The article: allocate, make an entry, a FIFO semaphore, name both, fork; the child looks
/// them up, maps the entry, writes and signals; the parent sees the write through its
/// range, which `fork` alone (copy-on-write) would not have shared.
#[test]
fn a_forked_child_looks_names_up_maps_writes_and_signals() {
    if child_role().is_some() {
        return;
    }
    let seg = MachMemory::allocate(1 << 16).unwrap();
    seg.set_inherit(Inherit::Copy).unwrap();
    seg.write_at(0, b"parent").unwrap();
    let sem = MachSemaphore::new(Policy::Fifo, 0).unwrap();
    let name = bootstrap::unique_name("org.shmkit.test.article");
    let service = bootstrap::Service::publish(
        &name,
        vec![
            Handle::Memory(seg.entry().try_clone().unwrap()),
            Handle::Semaphore(MachSemaphore::from_send_right(
                sem.send_right().try_clone().unwrap(),
            )),
        ],
        b"article",
    )
    .unwrap();
    let code = in_child(|| {
        // The inherited copy: a write here stays here.
        if seg.write_at(0, b"cow   ").is_err() {
            return 10;
        }
        let Ok(got) = bootstrap::look_up(&name, LOOK_UP) else {
            return 11;
        };
        let mut it = got.handles.into_iter();
        let Some(Ok(entry)) = it.next().map(Handle::into_memory) else {
            return 12;
        };
        let Some(Ok(their_sem)) = it.next().map(Handle::into_semaphore) else {
            return 13;
        };
        let Ok(shared) = entry.map() else { return 14 };
        if shared.write_at(8, b"child").is_err() || their_sem.signal().is_err() {
            return 15;
        }
        0
    });
    assert_eq!(code, 0);
    assert!(sem.wait_timeout(Duration::from_secs(10)).unwrap());
    let mut buf = [0u8; 13];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(
        &buf[..6],
        b"parent",
        "the child's copy-on-write page leaked into the parent"
    );
    assert_eq!(
        &buf[8..],
        b"child",
        "the child's write through the entry is not here"
    );
    assert!(service.served() >= 1);
}

#[test]
fn a_fork_child_refuses_the_parents_rights() {
    let seg = MachMemory::new(4096).unwrap();
    let sem = MachSemaphore::new(Policy::Fifo, 0).unwrap();
    let code = in_child(|| {
        let a = sem.signal().map_err(|e| e.kind());
        let b = seg.entry().try_clone().map(drop).map_err(|e| e.kind());
        // The mapping itself is inherited (Share): it still works.
        let c = seg.write_at(0, b"x").is_ok();
        match (a, b, c) {
            (Err(ErrorKind::NotInherited), Err(ErrorKind::NotInherited), true) => 0,
            _ => 1,
        }
    });
    assert_eq!(code, 0);
    let mut b = [0u8; 1];
    seg.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"x");
    // The parent's rights are intact after the child dropped its copies.
    sem.signal().unwrap();
    assert!(sem.wait_timeout(Duration::from_secs(1)).unwrap());
}

#[test]
fn inheritance_share_copy_none_on_mach_memory() {
    for mode in [Inherit::Share, Inherit::Copy, Inherit::None] {
        let seg = MachMemory::allocate(4096).unwrap();
        seg.set_inherit(mode).unwrap();
        let code = in_child(|| match seg.write_at(0, b"c") {
            Ok(()) => 0,
            Err(e) if e.kind() == ErrorKind::NotInherited => 2,
            Err(_) => 1,
        });
        let mut b = [0u8; 1];
        seg.read_at(0, &mut b).unwrap();
        match mode {
            Inherit::Share => assert_eq!((code, b[0]), (0, b'c')),
            Inherit::Copy => assert_eq!((code, b[0]), (0, 0)),
            _ => assert_eq!((code, b[0]), (2, 0)),
        }
    }
    let seg = MachMemory::new(4096).unwrap();
    assert_eq!(
        seg.set_inherit(Inherit::Zero).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn names_are_checked_and_unique_and_go_away_on_drop() {
    assert_eq!(
        bootstrap::Service::publish("", vec![], b"")
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidName
    );
    assert_eq!(
        bootstrap::look_up(&"x".repeat(128), LOOK_UP)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidName
    );
    let a = bootstrap::unique_name("org.shmkit.test");
    assert_ne!(a, bootstrap::unique_name("org.shmkit.test"));
    let service = bootstrap::Service::publish(&a, vec![], b"hello").unwrap();
    assert_eq!(
        bootstrap::Service::publish(&a, vec![], b"")
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(bootstrap::look_up(&a, LOOK_UP).unwrap().payload, b"hello");
    drop(service);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match bootstrap::look_up(&a, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            other => assert!(
                Instant::now() < deadline,
                "{a} still known after its Service was dropped: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The name is free again.
    let again = bootstrap::Service::publish(&a, vec![], b"again").unwrap();
    assert_eq!(bootstrap::look_up(&a, LOOK_UP).unwrap().payload, b"again");
    drop(again);
    assert_eq!(
        bootstrap::look_up(&bootstrap::unique_name("org.shmkit.test.never"), LOOK_UP)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn the_largest_payload_travels_whole_and_one_byte_more_is_refused() {
    // 8 KiB a message: the 8-byte handle description, the payload, and 128 bytes kept for the
    // answering service's name.
    let most = 8192 - 8 - 128;
    let name = bootstrap::unique_name("org.shmkit.test.most");
    let big: Vec<u8> = (0..most).map(|i| (i % 251) as u8).collect();
    let service = bootstrap::Service::publish(&name, vec![], &big).unwrap();
    assert_eq!(bootstrap::look_up(&name, LOOK_UP).unwrap().payload, big);
    drop(service);
    let err = bootstrap::Service::publish(
        &bootstrap::unique_name("org.shmkit.test.most"),
        vec![],
        &vec![0u8; most + 1],
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn a_replaced_service_answers_with_the_new_content_and_keeps_its_name() {
    let name = bootstrap::unique_name("org.shmkit.test.replace");
    let old = MachMemory::new(4096).unwrap();
    let new = MachMemory::new(8192).unwrap();
    new.write_at(0, b"new").unwrap();
    let service =
        bootstrap::Service::publish(&name, vec![Handle::memory(&old).unwrap()], b"v1").unwrap();
    assert_eq!(bootstrap::look_up(&name, LOOK_UP).unwrap().payload, b"v1");
    service
        .replace(vec![Handle::memory(&new).unwrap()], b"v2")
        .unwrap();
    let got = bootstrap::look_up(&name, LOOK_UP).unwrap();
    assert_eq!(got.payload, b"v2");
    assert_eq!(got.publisher.pid, std::process::id() as i32);
    assert_eq!(got.publisher.uid, rustix::process::geteuid().as_raw());
    let seg = got
        .handles
        .into_iter()
        .next()
        .unwrap()
        .into_mapped()
        .unwrap();
    assert_eq!(seg.len(), 8192);
    let mut buf = [0u8; 3];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"new");
    // Too much: refused, and the content stays.
    assert_eq!(
        service.replace(vec![], &[0u8; 9000]).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(bootstrap::look_up(&name, LOOK_UP).unwrap().payload, b"v2");
}

#[test]
fn too_much_to_publish_is_refused() {
    let err = bootstrap::Service::publish(
        &bootstrap::unique_name("org.shmkit.test.big"),
        vec![],
        &[0u8; 9000],
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn an_exit_is_seen_and_a_gone_pid_is_not_found() {
    let mut child = Command::new("/bin/sleep").arg("0.3").spawn().unwrap();
    let watch = ProcessExit::watch(child.id() as i32).unwrap();
    assert!(!watch.wait_timeout(Duration::ZERO).unwrap());
    assert!(watch.wait_timeout(Duration::from_secs(10)).unwrap());
    child.wait().unwrap();
    assert_eq!(
        ProcessExit::watch(child.id() as i32).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn a_published_port_that_died_arrives_dead_and_spoils_nothing_else() {
    // A semaphore's port, copied, then the semaphore destroyed: the copy is a dead name.
    let sem = MachSemaphore::new(Policy::Fifo, 0).unwrap();
    let copy = sem.send_right().try_clone().unwrap();
    drop(sem);
    assert!(copy.is_dead().unwrap());
    let mem = MachMemory::new(4096).unwrap();
    mem.write_at(0, b"alive").unwrap();
    let name = bootstrap::unique_name("org.shmkit.test.dead");
    let _service = bootstrap::Service::publish(
        &name,
        vec![
            Handle::Port(copy),
            Handle::Memory(mem.entry().try_clone().unwrap()),
        ],
        b"",
    )
    .unwrap();
    let got = bootstrap::look_up(&name, LOOK_UP).unwrap();
    let mut it = got.handles.into_iter();
    match it.next().unwrap() {
        Handle::Port(p) => assert!(p.is_dead().unwrap()),
        other => panic!("{other:?}"),
    }
    let theirs = it.next().unwrap().into_memory().unwrap().map().unwrap();
    let mut buf = [0u8; 5];
    theirs.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"alive");
}

#[test]
fn an_exit_watch_takes_timeouts_longer_than_the_kernel_does() {
    let mut child = Command::new("/bin/sleep").arg("0.2").spawn().unwrap();
    let watch = ProcessExit::watch(child.id() as i32).unwrap();
    // Over the 10^8 s kevent accepts in one call.
    assert!(watch
        .wait_timeout(Duration::from_secs(200_000_000))
        .unwrap());
    child.wait().unwrap();
    // Reported once.
    assert!(!watch.wait_timeout(Duration::from_millis(20)).unwrap());
}
