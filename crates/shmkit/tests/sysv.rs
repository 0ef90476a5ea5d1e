//! System V shared memory: keys, ids, attach modes, IPC_STAT, deferred removal, ownership.

mod common;
use common::{unique_key, Cleanup, Peer};
use shmkit::{sysv, ErrorKind, SysvKey, SysvShm};

/// Removes the segment with this id if a failed assertion left it.
fn guard_id(id: i32) -> Cleanup<impl FnMut()> {
    Cleanup(move || {
        if let Ok(st) = sysv::shm::stat_id(id) {
            if st.creator_pid == std::process::id() as i32 {
                let _ = sysv::shm::remove_id(id);
            }
        }
    })
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    let key = SysvKey::Key(args[0].parse().unwrap());
    match role.as_str() {
        "attach" => {
            let seg = SysvShm::open(key).unwrap();
            let mut buf = [0u8; 5];
            seg.read_at(0, &mut buf).unwrap();
            common::say(format!("{} {}", seg.id(), String::from_utf8_lossy(&buf)));
            assert_eq!(common::cue(), "write");
            seg.write_at(100, b"after rmid").unwrap();
            common::say("written");
            assert_eq!(common::cue(), "detach");
            seg.detach();
            common::say("detached");
        }
        "attach-denied" => {
            let e = SysvShm::open(key).unwrap_err();
            common::say(format!("{:?} {e}", e.raw_os_error()));
        }
        "attach-and-wait" => {
            let seg = SysvShm::open(key).unwrap();
            common::say(format!("{}", seg.id()));
            common::cue(); // killed before any cue comes
        }
        _ => panic!("unknown role {role}"),
    }
}

#[test]
fn create_by_key_then_open_by_key_and_by_id() {
    let _counting = common::counting_attachments();
    let key = SysvKey::Key(unique_key());
    let seg = SysvShm::options().mode(0o640).create(key, 5000).unwrap();
    let _g = guard_id(seg.id());
    assert!(seg.is_owner());
    let st = seg.stat().unwrap();
    let me = rustix::process::getpid().as_raw_nonzero().get();
    assert_eq!(
        (st.size, st.mode, st.nattch, st.creator_pid),
        (5000, 0o640, 1, me)
    );
    assert_eq!(
        st.key,
        match key {
            SysvKey::Key(k) => k,
            _ => unreachable!(),
        }
    );
    assert!(!st.marked_for_removal);

    seg.write_at(4990, b"0123456789").unwrap();
    let by_key = SysvShm::open(key).unwrap();
    let by_id = SysvShm::open_id(seg.id()).unwrap();
    assert_eq!((by_key.id(), by_key.len()), (seg.id(), 5000));
    let mut buf = [0u8; 10];
    by_id.read_at(4990, &mut buf).unwrap();
    assert_eq!(&buf, b"0123456789");
    assert_eq!(seg.stat().unwrap().nattch, 3);
    assert_eq!(
        by_key.write_at(4995, b"123456").unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
}

#[test]
fn exclusive_create_names_the_existing_id_and_ipcrm() {
    let key = SysvKey::Key(unique_key());
    let seg = SysvShm::create(key, 4096).unwrap();
    let _g = guard_id(seg.id());
    let e = SysvShm::create(key, 4096).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    let s = e.to_string();
    assert!(
        s.contains(&format!("shmid {}", seg.id())) && s.contains("IPC_RMID"),
        "{s}"
    );
}

#[test]
fn create_or_open_and_minimum_size() {
    let key = SysvKey::Key(unique_key());
    let a = SysvShm::options().create_or_open(key, 8192).unwrap();
    let _g = guard_id(a.id());
    let b = SysvShm::options().create_or_open(key, 4096).unwrap();
    assert!(a.is_owner() && !b.is_owner());
    assert_eq!(b.len(), 8192, "the real size, not the asked one");
    let e = SysvShm::options().min_size(9000).open(key).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooSmall);
}

#[test]
fn private_segments_are_reached_by_id() {
    let seg = SysvShm::create(SysvKey::Private, 100).unwrap();
    let _g = guard_id(seg.id());
    assert_eq!(seg.stat().unwrap().key, 0);
    assert_eq!(
        SysvShm::open(SysvKey::Private).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let again = SysvShm::open_id(seg.id()).unwrap();
    assert_eq!(again.len(), 100);
}

#[test]
fn read_only_attach_refuses_writes() {
    let seg = SysvShm::create(SysvKey::Private, 100).unwrap();
    let _g = guard_id(seg.id());
    seg.write_at(0, b"x").unwrap();
    let ro = SysvShm::options()
        .read_only(true)
        .open_id(seg.id())
        .unwrap();
    assert!(!ro.is_writable());
    assert_eq!(
        ro.write_at(0, b"y").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(ro.read::<u8>(0).unwrap(), b'x');
}

#[test]
fn the_creator_removes_on_drop_an_opener_does_not_keep_keeps() {
    let _counting = common::counting_attachments();
    let seg = SysvShm::create(SysvKey::Private, 100).unwrap();
    let id = seg.id();
    let _g = guard_id(id);
    drop(SysvShm::open_id(id).unwrap());
    assert!(sysv::shm::stat_id(id).is_ok(), "an opener's drop leaves it");
    drop(seg);
    let e = sysv::shm::stat_id(id).unwrap_err();
    assert!(
        matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)),
        "{e}"
    );

    let kept = SysvShm::options()
        .keep(true)
        .create(SysvKey::Private, 100)
        .unwrap();
    let id = kept.id();
    let _g2 = guard_id(id);
    drop(kept);
    let st = sysv::shm::stat_id(id).unwrap();
    assert_eq!((st.nattch, st.marked_for_removal), (0, false));
    sysv::shm::remove_id(id).unwrap();
}

#[test]
fn removal_is_deferred_until_the_last_process_detaches() {
    let _counting = common::counting_attachments();
    let raw = unique_key();
    let key = SysvKey::Key(raw);
    let seg = SysvShm::create(key, 4096).unwrap();
    let id = seg.id();
    let _g = guard_id(id);
    seg.write_at(0, b"hello").unwrap();
    let mut p = Peer::spawn("attach", &[&raw.to_string()]);
    assert_eq!(p.recv(), format!("{id} hello"));
    let st = seg.stat().unwrap();
    assert_eq!(st.nattch, 2);

    seg.remove().unwrap();
    let st = seg.stat().unwrap();
    assert!(st.marked_for_removal);
    assert_eq!((st.key, st.nattch), (0, 2));
    assert_eq!(
        SysvShm::open(key).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );

    p.send("write");
    assert_eq!(p.recv(), "written");
    let mut buf = [0u8; 10];
    seg.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"after rmid");

    drop(seg);
    assert_eq!(sysv::shm::stat_id(id).unwrap().nattch, 1);
    p.send("detach");
    assert_eq!(p.recv(), "detached");
    p.finish();
    assert!(sysv::shm::stat_id(id).is_err());
}

#[test]
fn a_killed_peer_is_detached_by_the_kernel() {
    let _counting = common::counting_attachments();
    let raw = unique_key();
    let seg = SysvShm::create(SysvKey::Key(raw), 4096).unwrap();
    let _g = guard_id(seg.id());
    let mut p = Peer::spawn("attach-and-wait", &[&raw.to_string()]);
    assert_eq!(p.recv(), seg.id().to_string());
    assert_eq!(seg.stat().unwrap().nattch, 2);
    let pid = p.pid();
    p.kill9();
    let st = seg.stat().unwrap();
    assert_eq!((st.nattch, st.last_pid), (1, pid));
}

#[cfg(target_os = "linux")] // /proc figures, huge pages
#[test]
fn huge_pages_fail_clearly_when_none_are_reserved() {
    let total: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Total:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    let r = SysvShm::options()
        .huge_pages(true)
        .create(SysvKey::Private, 2 << 20);
    if total == 0 {
        let e = r.unwrap_err();
        assert!(e.to_string().contains("no huge pages configured"), "{e}");
        assert!(e.to_string().contains("vm.nr_hugepages"), "{e}");
    } else {
        let seg = r.unwrap();
        let _g = guard_id(seg.id());
        seg.write_at(0, b"huge").unwrap();
    }
}

#[test]
fn ftok_keys_name_segments() {
    let dir = std::env::temp_dir().join(common::unique("shmkit-ftok"));
    std::fs::write(&dir, b"anchor").unwrap();
    let _f = {
        let d = dir.clone();
        Cleanup(move || {
            let _ = std::fs::remove_file(&d);
        })
    };
    let key = SysvKey::ftok(&dir, b'T').unwrap();
    let seg = SysvShm::create(key, 64).unwrap();
    let _g = guard_id(seg.id());
    assert_eq!(
        SysvShm::open(SysvKey::ftok(&dir, b'T').unwrap())
            .unwrap()
            .id(),
        seg.id()
    );
}

#[test]
fn permission_denied_names_the_mode_and_the_owner() {
    let raw = unique_key();
    let root = rustix::process::geteuid().is_root();
    let seg = SysvShm::options()
        .mode(if root { 0o600 } else { 0 })
        .create(SysvKey::Key(raw), 64)
        .unwrap();
    let _g = guard_id(seg.id());
    let me = rustix::process::geteuid().as_raw();
    let said = if root {
        let mut p = Peer::spawn_as(65534, "attach-denied", &[&raw.to_string()]);
        let line = p.recv();
        p.finish();
        line
    } else {
        let e = SysvShm::open(SysvKey::Key(raw)).unwrap_err();
        format!("{:?} {e}", e.raw_os_error())
    };
    assert!(
        said.starts_with(&format!("Some({})", libc::EACCES)),
        "{said}"
    );
    let mode = if root { "0600" } else { "0000" };
    assert!(
        said.contains(&format!("mode {mode} owned by uid {me}")),
        "{said}"
    );
}

#[cfg(target_os = "linux")] // /proc figures, huge pages
#[test]
fn a_segment_larger_than_memory_fails_with_the_machines_figures() {
    let policy = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap();
    let size = 1usize << 46; // 64 TiB: more RAM and swap than any machine that runs this
    match SysvShm::create(SysvKey::Private, size) {
        Err(e) => {
            assert_eq!(e.raw_os_error(), Some(libc::ENOMEM), "{e}");
            let s = e.to_string();
            assert!(s.contains("would not commit 64 TiB"), "{s}");
            assert!(
                s.contains("of RAM and swap") && s.contains("vm.overcommit_memory"),
                "{s}"
            );
        }
        // With overcommit_memory = 1 the kernel promises anything; nothing to check then.
        Ok(seg) => assert_eq!(policy.trim(), "1", "shmid {} of 64 TiB", seg.id()),
    }
}
