//! POSIX shared memory: creation rules, names, sizes, ownership, and real processes.

mod common;
use common::{unique, Cleanup, Peer};
use shmkit::{ErrorKind, PosixShm};
use std::path::Path;

fn shm_path(name: &str) -> String {
    format!("/dev/shm{name}")
}

fn guard(name: &str) -> Cleanup<impl FnMut()> {
    let n = name.to_string();
    Cleanup(move || {
        let _ = std::fs::remove_file(shm_path(&n));
    })
}

/// The peer roles of this file.
#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        "open-write" => {
            // Opens by name, reports the size it mapped, writes its own text after the parent's.
            let seg = PosixShm::open(&args[0]).unwrap();
            let mut buf = [0u8; 5];
            seg.read_at(0, &mut buf).unwrap();
            common::say(format!("{} {}", seg.len(), String::from_utf8_lossy(&buf)));
            seg.write_at(5, b" from the peer").unwrap();
            common::say("written");
        }
        "open-denied" => {
            let e = PosixShm::open(&args[0]).unwrap_err();
            common::say(format!("{:?} {e}", e.raw_os_error()));
        }
        "open-drop" => {
            drop(PosixShm::open(&args[0]).unwrap());
            common::say("dropped");
        }
        _ => panic!("unknown role {role}"),
    }
}

#[test]
fn create_is_exclusive_0600_and_removed_by_its_creator() {
    let name = format!("/{}", unique("shmkit-test-posix"));
    let _g = guard(&name);
    let seg = PosixShm::create(&name, 10_000).unwrap();
    assert!(seg.is_owner());
    assert_eq!(seg.len(), 10_000);
    let st = seg.stat().unwrap();
    assert_eq!((st.size, st.mode), (10_000, 0o600));
    assert_eq!(st.uid, rustix::process::geteuid().as_raw());

    let e = PosixShm::create(&name, 10).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert!(e.to_string().contains("open it instead"), "{e}");
    assert!(e.to_string().contains("PosixShm::open"), "{e}");

    drop(seg);
    assert!(!Path::new(&shm_path(&name)).exists());
    assert_eq!(
        PosixShm::open(&name).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
}

#[test]
fn mode_is_exact_whatever_the_umask() {
    let name = format!("/{}", unique("shmkit-test-mode"));
    let _g = guard(&name);
    // 0664 would lose its group-write bit under the common umask 022.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let seg = PosixShm::options().mode(0o664).create(&name, 64);
    rustix::process::umask(old);
    assert_eq!(seg.unwrap().stat().unwrap().mode, 0o664);
    let e = PosixShm::options()
        .mode(0o1777)
        .create(&format!("{name}x"), 64)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn an_opener_never_removes_and_keep_keeps() {
    let name = format!("/{}", unique("shmkit-test-keep"));
    let _g = guard(&name);
    let owner = PosixShm::create(&name, 128).unwrap();
    let opener = PosixShm::open(&name).unwrap();
    assert!(!opener.is_owner());
    drop(opener);
    assert!(Path::new(&shm_path(&name)).exists());

    owner.set_keep(true);
    drop(owner);
    assert!(Path::new(&shm_path(&name)).exists(), "kept");
    PosixShm::unlink_name(&name).unwrap();
}

#[test]
fn an_opener_in_another_process_does_not_remove_either() {
    let name = format!("/{}", unique("shmkit-test-peer-drop"));
    let _g = guard(&name);
    let _owner = PosixShm::create(&name, 128).unwrap();
    let mut p = Peer::spawn("open-drop", &[&name]);
    assert_eq!(p.recv(), "dropped");
    p.finish();
    assert!(Path::new(&shm_path(&name)).exists());
}

#[test]
fn open_maps_the_real_size_and_checks_the_minimum() {
    let name = format!("/{}", unique("shmkit-test-size"));
    let _g = guard(&name);
    let seg = PosixShm::create(&name, 100).unwrap();
    // Another program changes the size behind our back: the next opener maps what is there.
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap()
        .set_len(300)
        .unwrap();
    let other = PosixShm::open(&name).unwrap();
    assert_eq!(other.len(), 300);
    let e = PosixShm::options().min_size(301).open(&name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooSmall);
    assert!(
        e.to_string().contains("has 300 bytes, fewer than the 301"),
        "{e}"
    );
    // Bounds are the mapping's, never past it.
    assert_eq!(
        seg.write_at(99, b"ab").unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
    assert_eq!(
        seg.read_at(usize::MAX, &mut [0]).unwrap_err().kind(),
        ErrorKind::OutOfBounds
    );
}

#[test]
fn an_empty_object_is_refused_with_a_reason() {
    let name = format!("/{}", unique("shmkit-test-empty"));
    let _g = guard(&name);
    std::fs::write(shm_path(&name), b"").unwrap();
    let e = PosixShm::open(&name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooSmall);
    assert!(e.to_string().contains("empty"), "{e}");
}

#[test]
fn create_or_open_creates_once_then_opens() {
    let name = format!("/{}", unique("shmkit-test-coo"));
    let _g = guard(&name);
    let a = PosixShm::options().create_or_open(&name, 4096).unwrap();
    let b = PosixShm::options().create_or_open(&name, 4096).unwrap();
    assert!(a.is_owner() && !b.is_owner());
    let e = PosixShm::options().create_or_open(&name, 8192).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooSmall);
}

#[test]
fn names_are_validated_with_clear_errors() {
    for (bad, why) in [
        ("noslash", "must start with '/'"),
        ("/", "empty"),
        ("/a/b", "no '/' after"),
        ("/a\0b", "NUL"),
        ("/..", "not object names"),
        ("", "must start with '/'"),
    ] {
        let e = PosixShm::create(bad, 10).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidName, "{bad:?}");
        assert!(e.to_string().contains(why), "{bad:?}: {e}");
    }
    let long = format!("/{}", "x".repeat(254));
    let e = PosixShm::create(&long, 10).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
    assert!(e.to_string().contains("limit is 253"), "{e}");
    // The longest valid name works.
    let longest = format!("/{}", &unique("shmkit-max")[..]);
    let longest = format!("{longest}{}", "y".repeat(254 - longest.len()));
    let _g = guard(&longest);
    PosixShm::create(&longest, 10).unwrap();
}

#[test]
fn read_only_opens_refuse_writes_and_atomics() {
    let name = format!("/{}", unique("shmkit-test-ro"));
    let _g = guard(&name);
    let w = PosixShm::create(&name, 64).unwrap();
    w.write_at(0, b"data").unwrap();
    let r = PosixShm::options().read_only(true).open(&name).unwrap();
    assert!(!r.is_writable());
    assert_eq!(r.write_at(0, b"x").unwrap_err().kind(), ErrorKind::ReadOnly);
    assert_eq!(r.atomic_u32(0).unwrap_err().kind(), ErrorKind::ReadOnly);
    assert_eq!(&r.to_vec().unwrap()[..4], b"data");
}

#[test]
fn stat_figures_match_the_articles_reader() {
    let name = format!("/{}", unique("shmkit-test-stat"));
    let _g = guard(&name);
    let msg = b"created this shmem from /dev/shm\n";
    let seg = PosixShm::create(&name, msg.len()).unwrap();
    let st = seg.stat().unwrap();
    assert_eq!((st.size, st.blocks), (33, 0), "nothing touched yet");
    seg.write_at(0, msg).unwrap();
    let st = seg.stat().unwrap();
    let page = rustix::param::page_size() as u64;
    assert_eq!((st.size, st.blocks, st.block_size), (33, page / 512, page));
}

#[test]
fn two_unrelated_processes_share_the_bytes() {
    let name = format!("/{}", unique("shmkit-test-xproc"));
    let _g = guard(&name);
    let seg = PosixShm::create(&name, 4096).unwrap();
    seg.write_at(0, b"hello").unwrap();
    let mut p = Peer::spawn("open-write", &[&name]);
    assert_eq!(p.recv(), "4096 hello");
    assert_eq!(p.recv(), "written");
    p.finish();
    let mut buf = [0u8; 19];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"hello from the peer");
}

#[test]
fn a_peer_that_shrinks_the_object_does_not_kill_us() {
    let name = format!("/{}", unique("shmkit-test-shrink"));
    let _g = guard(&name);
    let page = rustix::param::page_size();
    let seg = PosixShm::create(&name, 4 * page).unwrap();
    seg.write_at(0, b"still here").unwrap();
    // A separate program truncates the object to one page.
    common::sh("truncate", &["-s", &page.to_string(), &shm_path(&name)]);
    // The first page is still backed.
    let mut head = [0u8; 10];
    seg.read_at(0, &mut head).unwrap();
    assert_eq!(&head, b"still here");
    // Past the new end: without the guard this is SIGBUS; with it, an error.
    let e = seg.read_at(2 * page, &mut [0u8; 16]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Truncated);
    assert!(seg.was_truncated());
    assert_eq!(
        seg.write_at(3 * page, b"lost").unwrap_err().kind(),
        ErrorKind::Truncated
    );
    // From now on every operation says so, below the end too, atomics included.
    assert_eq!(seg.atomic_u64(0).unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(
        seg.read_at(0, &mut head).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    assert_eq!(seg.check().unwrap_err().kind(), ErrorKind::Truncated);
}

#[test]
fn permission_denied_names_the_mode_and_the_owner() {
    let name = format!("/{}", unique("shmkit-test-acces"));
    let _g = guard(&name);
    let root = rustix::process::geteuid().is_root();
    // Root passes permission checks, so the opener is a peer running as nobody; anyone else
    // is refused by an object whose mode grants nothing.
    let _seg = PosixShm::options()
        .mode(if root { 0o600 } else { 0 })
        .create(&name, 64)
        .unwrap();
    let me = rustix::process::geteuid().as_raw();
    let said = if root {
        let mut p = Peer::spawn_as(65534, "open-denied", &[&name]);
        let line = p.recv();
        p.finish();
        line
    } else {
        let e = PosixShm::open(&name).unwrap_err();
        format!("{:?} {e}", e.raw_os_error())
    };
    assert!(
        said.starts_with(&format!("Some({})", libc::EACCES)),
        "{said}"
    );
    let mode = if root { "0600" } else { "0000" };
    assert!(
        said.contains(&format!("the object is mode {mode}, owned by uid {me}")),
        "{said}"
    );
}
