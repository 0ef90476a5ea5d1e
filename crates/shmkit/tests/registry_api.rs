//! The registry's client API, written once and run on both systems: every test here uses
//! only the calls that Linux and macOS share (`Client::connect_default` aside, which each
//! place below wraps). Linux: a registry server (this test binary, role "server") on a socket
//! of the test's own. macOS: the bootstrap server of the login session.
//!
//! Only what a place must be given differs (a socket path or nothing), and the kind of memory
//! a handle carries (a memfd, a Mach memory entry): see `Place` and `Memory`.

mod common;
use common::{cue, say, Peer};
use shmkit::handle::{Access, Handle};
use shmkit::registry::{Client, RegisterOptions, NAME_MAX};
use shmkit::{AnySegment, ErrorKind};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Where the registry is.
struct Place {
    /// Linux: the socket, in a directory of the test's own, and the server serving it.
    #[cfg(target_os = "linux")]
    sock: std::path::PathBuf,
    #[cfg(target_os = "linux")]
    _server: Peer,
    #[cfg(target_os = "linux")]
    _dir: common::Cleanup<Box<dyn FnMut()>>,
}

impl Place {
    #[cfg(target_os = "linux")]
    fn start() -> Place {
        let dir = std::env::temp_dir().join(common::unique("shmkit-regapi"));
        std::fs::create_dir(&dir).unwrap();
        let d = dir.clone();
        let gone: common::Cleanup<Box<dyn FnMut()>> = common::Cleanup(Box::new(move || {
            let _ = std::fs::remove_dir_all(&d);
        }));
        let sock = dir.join("registry.sock");
        let mut server = Peer::spawn("server", &[sock.to_str().unwrap()]);
        assert_eq!(server.recv(), "serving");
        Place {
            sock,
            _server: server,
            _dir: gone,
        }
    }

    #[cfg(target_os = "macos")]
    fn start() -> Place {
        Place {}
    }

    /// What a peer is given to reach the same registry.
    fn arg(&self) -> String {
        #[cfg(target_os = "linux")]
        return self.sock.display().to_string();
        #[cfg(target_os = "macos")]
        return "bootstrap".into();
    }

    fn client(&self) -> Client {
        client_at(&self.arg())
    }
}

fn client_at(arg: &str) -> Client {
    #[cfg(target_os = "linux")]
    return Client::connect(arg).unwrap();
    #[cfg(target_os = "macos")]
    {
        assert_eq!(arg, "bootstrap");
        Client::connect_default().unwrap()
    }
}

/// A name of this run's own: tests of parallel runs, and other users, never meet.
fn name(what: &str) -> String {
    common::unique(&format!("regapi/{what}"))
}

/// Shared memory of the kind this system passes as a handle.
#[cfg(target_os = "linux")]
type Memory = shmkit::Memfd;
#[cfg(target_os = "macos")]
type Memory = shmkit::mach::MachMemory;

fn memory(len: usize) -> Memory {
    #[cfg(target_os = "linux")]
    return shmkit::Memfd::create("regapi", len).unwrap();
    #[cfg(target_os = "macos")]
    return shmkit::mach::MachMemory::new(len).unwrap();
}

fn handle(m: &mut Memory, read_only: bool) -> Handle {
    #[cfg(target_os = "linux")]
    return if read_only {
        Handle::memfd_read_only(m).unwrap()
    } else {
        Handle::memfd(m).unwrap()
    };
    #[cfg(target_os = "macos")]
    return if read_only {
        Handle::memory_read_only(m).unwrap()
    } else {
        Handle::memory(m).unwrap()
    };
}

fn map(h: Handle) -> AnySegment {
    #[cfg(target_os = "linux")]
    return AnySegment::Memfd(h.into_memfd().unwrap());
    #[cfg(target_os = "macos")]
    return AnySegment::Mach(h.into_mapped().unwrap());
}

fn read(seg: &AnySegment, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    seg.read_at(0, &mut buf).unwrap();
    buf
}

/// Polls `f` every 20 ms for at most `WAIT` until it holds.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "not within {WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        #[cfg(target_os = "linux")]
        "server" => {
            let server = shmkit::registry::Server::bind(std::path::Path::new(&args[0])).unwrap();
            say("serving");
            server.run(|line| eprintln!("registry: {line}")).unwrap();
        }
        // Waits for the name `args[1]`, checks what it says, writes into the memory (or, if
        // read-only, tries to) and reports.
        "writer" => {
            let mut c = client_at(&args[0]);
            let e = c.wait_for(&args[1], WAIT).unwrap();
            let parent: i32 = args[2].parse().unwrap();
            assert_eq!(e.info.name, args[1]);
            assert_eq!(e.info.pid, parent);
            assert_eq!(e.info.uid, rustix::process::geteuid().as_raw());
            assert_eq!(e.info.handles.len(), 1);
            assert_eq!(e.info.handles[0].size, 4096);
            let h = e.handles.into_iter().next().unwrap();
            assert_eq!(h.kind(), e.info.handles[0].kind);
            let read_only = h.access() == Access::ReadOnly;
            let seg = map(h);
            say(format!(
                "text {}",
                String::from_utf8_lossy(&read(&seg, 12)).trim_end_matches('\0')
            ));
            match seg.write_at(0, b"from the peer") {
                Ok(()) => say(format!("wrote read_only={read_only}")),
                Err(e) => say(format!("refused {:?} read_only={read_only}", e.kind())),
            }
        }
        // Registers `args[1]`, says so, and holds it until told to go (or killed).
        "owner" => {
            let mut c = client_at(&args[0]);
            let mut m = memory(4096);
            m.write_at(0, b"owner's").unwrap();
            c.register(
                &args[1],
                &[&handle(&mut m, true)],
                RegisterOptions::default(),
            )
            .unwrap();
            say("registered");
            let _ = cue();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_process_finds_a_name_by_waiting_and_writes_through_its_memory() {
    let place = Place::start();
    let n = name("writer");
    // The peer starts first and waits: the name does not exist yet.
    let me = std::process::id().to_string();
    let mut peer = Peer::spawn("writer", &[&place.arg(), &n, &me]);
    std::thread::sleep(Duration::from_millis(200));
    let mut m = memory(4096);
    m.write_at(0, b"registered").unwrap();
    let mut c = place.client();
    c.register(&n, &[&handle(&mut m, false)], RegisterOptions::default())
        .unwrap();
    assert_eq!(peer.recv(), "text registered");
    assert_eq!(peer.recv(), "wrote read_only=false");
    peer.finish();
    assert_eq!(read(&AnySegment::from(m), 13), b"from the peer");
}

#[test]
fn a_read_only_handle_cannot_be_written_by_the_process_that_looks_it_up() {
    let place = Place::start();
    let n = name("ro");
    let mut m = memory(4096);
    m.write_at(0, b"look only").unwrap();
    let mut c = place.client();
    c.register(&n, &[&handle(&mut m, true)], RegisterOptions::default())
        .unwrap();
    let me = std::process::id().to_string();
    let mut peer = Peer::spawn("writer", &[&place.arg(), &n, &me]);
    assert_eq!(peer.recv(), "text look only");
    assert_eq!(peer.recv(), "refused ReadOnly read_only=true");
    peer.finish();
    // And this process's own mapping still writes.
    m.write_at(0, b"still mine").unwrap();
    let mut other = place.client();
    let seg = map(other
        .lookup(&n)
        .unwrap()
        .handles
        .into_iter()
        .next()
        .unwrap());
    assert_eq!(read(&seg, 10), b"still mine");
}

#[test]
fn a_name_goes_when_its_process_is_killed() {
    let place = Place::start();
    let n = name("owner");
    let mut owner = Peer::spawn("owner", &[&place.arg(), &n]);
    assert_eq!(owner.recv(), "registered");
    let mut c = place.client();
    let e = c.lookup(&n).unwrap();
    assert_eq!(e.info.pid, owner.pid());
    assert!(!e.info.persistent);
    let seg = map(e.handles.into_iter().next().unwrap());
    assert_eq!(read(&seg, 7), b"owner's");
    assert!(c.list().unwrap().iter().any(|i| i.name == n));
    owner.kill9();
    eventually(
        "the killed owner's name to go",
        || matches!(c.lookup(&n), Err(e) if e.kind() == ErrorKind::NotFound),
    );
    eventually("the killed owner's name to leave the list", || {
        !c.list().unwrap().iter().any(|i| i.name == n)
    });
    // What was mapped stays mapped.
    assert_eq!(read(&seg, 7), b"owner's");
}

#[test]
fn a_name_held_by_a_live_process_is_not_taken() {
    let place = Place::start();
    let n = name("held");
    let mut owner = Peer::spawn("owner", &[&place.arg(), &n]);
    assert_eq!(owner.recv(), "registered");
    let mut m = memory(4096);
    let mut c = place.client();
    let err = c
        .register(&n, &[&handle(&mut m, false)], RegisterOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    // Still the owner's.
    assert_eq!(c.lookup(&n).unwrap().info.pid, owner.pid());
    owner.send("go");
    owner.finish();
    eventually("the name to be free after its owner left", || {
        c.register(&n, &[&handle(&mut m, false)], RegisterOptions::default())
            .is_ok()
    });
    assert_eq!(c.lookup(&n).unwrap().info.pid, std::process::id() as i32);
}

#[test]
fn list_and_unregister() {
    let place = Place::start();
    let (a, b) = (name("list-a"), name("list-b"));
    let mut m = memory(8192);
    let mut c = place.client();
    c.register(&b, &[&handle(&mut m, true)], RegisterOptions::default())
        .unwrap();
    c.register(&a, &[&handle(&mut m, false)], RegisterOptions::default())
        .unwrap();
    let mut other = place.client();
    let all = other.list().unwrap();
    let mine: Vec<_> = all.iter().filter(|i| i.name == a || i.name == b).collect();
    assert_eq!(mine.len(), 2, "{all:?}");
    assert_eq!(mine[0].name, a, "sorted");
    assert_eq!(mine[1].name, b);
    for i in &mine {
        assert_eq!(i.pid, std::process::id() as i32);
        assert_eq!(i.uid, rustix::process::geteuid().as_raw());
        assert_eq!(i.handles.len(), 1);
        assert_eq!(i.handles[0].size, 8192);
    }
    assert!(
        all.windows(2).all(|w| w[0].name <= w[1].name),
        "the whole list is sorted"
    );
    c.unregister(&a).unwrap();
    let err = other.lookup(&a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!other.list().unwrap().iter().any(|i| i.name == a));
    assert!(other.list().unwrap().iter().any(|i| i.name == b));
    let err = c.unregister(&a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // A client's names go with it.
    drop(c);
    eventually(
        "a dropped client's name to go",
        || matches!(other.lookup(&b), Err(e) if e.kind() == ErrorKind::NotFound),
    );
}

#[test]
fn names_are_checked_alike() {
    let place = Place::start();
    let mut c = place.client();
    let mut m = memory(4096);
    let h = handle(&mut m, false);
    for bad in [
        String::new(),
        "x".repeat(NAME_MAX + 1),
        "line\nbreak".into(),
    ] {
        let r = c.register(&bad, &[&h], RegisterOptions::default());
        assert_eq!(r.unwrap_err().kind(), ErrorKind::InvalidArgument, "{bad:?}");
        assert_eq!(
            c.lookup(&bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            c.wait_for(&bad, Duration::from_millis(1))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            c.unregister(&bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    // The longest name works (on macOS it is longer than a bootstrap name: it is hashed).
    let base = name("long");
    // Two-byte characters, then ASCII to the limit (at least one byte, so that cutting the
    // last byte below cuts no character).
    let long = format!("{base}{}", "é".repeat((NAME_MAX - base.len() - 1) / 2));
    let long = format!("{long}{}", "x".repeat(NAME_MAX - long.len()));
    assert_eq!(long.len(), NAME_MAX);
    assert!(long.ends_with('x'));
    c.register(&long, &[&h], RegisterOptions::default())
        .unwrap();
    let mut other = place.client();
    assert_eq!(other.lookup(&long).unwrap().info.name, long);
    // A name one byte shorter is another name.
    let err = other.lookup(&long[..NAME_MAX - 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn wait_for_a_name_that_never_comes_times_out_on_time() {
    let place = Place::start();
    let mut c = place.client();
    let t = Instant::now();
    let err = c
        .wait_for(&name("never"), Duration::from_millis(300))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn too_many_handles_are_refused() {
    let place = Place::start();
    let mut c = place.client();
    let mut m = memory(4096);
    let hs: Vec<Handle> = (0..=shmkit::handle::MAX_HANDLES)
        .map(|_| handle(&mut m, false))
        .collect();
    let refs: Vec<&Handle> = hs.iter().collect();
    let n = name("many");
    let err = c
        .register(&n, &refs, RegisterOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = c.lookup(&n).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // As many as allowed are taken.
    c.register(
        &n,
        &refs[..shmkit::handle::MAX_HANDLES],
        RegisterOptions::default(),
    )
    .unwrap();
    assert_eq!(
        c.lookup(&n).unwrap().handles.len(),
        shmkit::handle::MAX_HANDLES
    );
}

/// Persistent names are kept by Linux's registry process; macOS has none, and says so.
#[test]
fn persistent_names() {
    let place = Place::start();
    let n = name("kept");
    let mut m = memory(4096);
    let mut c = place.client();
    let persistent = RegisterOptions { persistent: true };
    let r = c.register(&n, &[&handle(&mut m, false)], persistent);
    #[cfg(target_os = "linux")]
    {
        r.unwrap();
        drop(c);
        let mut other = place.client();
        let e = other.lookup(&n).unwrap();
        assert!(e.info.persistent);
        other.unregister(&n).unwrap();
    }
    #[cfg(target_os = "macos")]
    {
        let err = r.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert_eq!(c.lookup(&n).unwrap_err().kind(), ErrorKind::NotFound);
    }
}

#[test]
fn registering_a_held_name_again_replaces_its_handles() {
    let place = Place::start();
    let n = name("again");
    let (mut first, mut second) = (memory(4096), memory(8192));
    first.write_at(0, b"first").unwrap();
    second.write_at(0, b"second").unwrap();
    let mut c = place.client();
    c.register(&n, &[&handle(&mut first, true)], RegisterOptions::default())
        .unwrap();
    c.register(
        &n,
        &[&handle(&mut second, true)],
        RegisterOptions::default(),
    )
    .unwrap();
    let mut other = place.client();
    let e = other.lookup(&n).unwrap();
    assert_eq!(e.info.handles[0].size, 8192);
    assert_eq!(
        read(&map(e.handles.into_iter().next().unwrap()), 6),
        b"second"
    );
    let listed: Vec<_> = other
        .list()
        .unwrap()
        .into_iter()
        .filter(|i| i.name == n)
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].handles[0].size, 8192);
}

/// macOS: a fork child has its own port namespace; the client's names stay the parent's, and
/// the child is told so instead of being told it changed them.
#[cfg(target_os = "macos")]
#[test]
fn a_fork_child_cannot_change_its_parents_names_but_can_look_them_up() {
    use shmkit::ErrorKind::NotInherited;
    let place = Place::start();
    let n = name("forked");
    let mut m = memory(4096);
    m.write_at(0, b"parent's").unwrap();
    let mut c = place.client();
    c.register(&n, &[&handle(&mut m, true)], RegisterOptions::default())
        .unwrap();
    let code = common::in_child(|| {
        let mut m2 = memory(4096);
        let h = handle(&mut m2, false);
        if !matches!(c.register(&n, &[&h], RegisterOptions::default()), Err(e) if e.kind() == NotInherited)
        {
            return 1;
        }
        if !matches!(c.unregister(&n), Err(e) if e.kind() == NotInherited) {
            return 2;
        }
        let Ok(e) = Client::connect_default().and_then(|mut c| c.lookup(&n)) else {
            return 3;
        };
        if read(&map(e.handles.into_iter().next().unwrap()), 8) != b"parent's" {
            return 4;
        }
        0
    });
    assert_eq!(code, 0, "the child's check {code} failed");
    // Still the parent's, in the parent.
    assert_eq!(
        place.client().lookup(&n).unwrap().info.pid,
        std::process::id() as i32
    );
}

#[test]
fn a_name_unregistered_can_be_registered_again_at_once() {
    let place = Place::start();
    let n = name("again-at-once");
    let mut m = memory(4096);
    let mut c = place.client();
    for round in 0..5 {
        c.register(&n, &[&handle(&mut m, false)], RegisterOptions::default())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        c.unregister(&n).unwrap();
    }
    let mut other = place.client();
    other
        .register(&n, &[&handle(&mut m, false)], RegisterOptions::default())
        .unwrap();
    assert_eq!(c.lookup(&n).unwrap().info.pid, std::process::id() as i32);
}
