//! Handles between real processes: several in one message, checked against the kernel;
//! read-only handles that no attack of a same-uid receiver makes writable; lying, truncated
//! and malformed messages refused with every received fd closed; peer credentials.
// Linux only: memfd seals, eventfds, pidfds and SO_PEERCRED are Linux's.
#![cfg(target_os = "linux")]

mod common;
use common::{say, Cleanup, Peer};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use shmkit::handle::{self, EventFd, Handle, PidFd};
use shmkit::{ErrorKind, Memfd};
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

/// How many fds this process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        // Gets a read-only memfd, an eventfd and a pidfd; attacks the memfd; waits for the
        // creator's next write (signalled on the eventfd) and for the watched process's end.
        "receiver" => {
            let s = UnixStream::connect(&args[0]).unwrap();
            let got = handle::recv(&s).unwrap();
            let mut it = got.handles.into_iter();
            let seg = it.next().unwrap();
            for a in handle::write_attempts(&seg).unwrap() {
                let result = a.refused.map_or("allowed".into(), |e| e.to_string());
                say(format!("attack {}: {result}", a.how));
            }
            // Shrinking, which the library's attempts leave out (it would cut data).
            let rw = rustix::fs::open(
                format!("/proc/self/fd/{}", seg.fd().as_raw_fd()).as_str(),
                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            let cut = rustix::fs::ftruncate(&rw, 0);
            say(format!(
                "attack ftruncate to 0 through an O_RDWR reopen: {}",
                cut.map_or_else(|e| format!("{e:?}"), |()| "allowed".into())
            ));
            drop(rw);
            let m = seg.into_memfd().unwrap();
            say(format!("writable {}", m.is_writable()));
            let wake = it.next().unwrap().into_eventfd().unwrap();
            let watched = it.next().unwrap().into_pidfd().unwrap();
            say("ready");
            assert_eq!(wake.wait_timeout(Duration::from_secs(10)).unwrap(), Some(1));
            let mut b = [0u8; 8];
            m.read_at(0, &mut b).unwrap();
            say(format!("sees {}", String::from_utf8_lossy(&b)));
            say(format!(
                "exited {}",
                watched.wait_exit(Duration::from_secs(10)).unwrap()
            ));
        }
        // Connects and sends one handle, for the credential checks.
        "sender" => {
            let s = UnixStream::connect(&args[0]).unwrap();
            let e = EventFd::new().unwrap();
            common::cue(); // the receiver passes credentials from now on
            handle::send(&s, &[&Handle::eventfd(&e).unwrap()], b"from the sender").unwrap();
            common::cue();
        }
        "lies" => lies(),
        _ => panic!("unknown role {role}"),
    }
}

fn socket_dir() -> (std::path::PathBuf, Cleanup<impl FnMut()>) {
    let dir = std::env::temp_dir().join(common::unique("shmkit-handle"));
    std::fs::create_dir(&dir).unwrap();
    let d = dir.clone();
    (
        dir,
        Cleanup(move || {
            let _ = std::fs::remove_dir_all(&d);
        }),
    )
}

#[test]
fn a_read_only_handle_stays_read_only_in_another_process_while_the_creator_writes() {
    let mut m = Memfd::create("ro-handle", 4096).unwrap();
    m.write_at(0, b"version1").unwrap();
    let wake = EventFd::new().unwrap();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let watched = PidFd::open(sleeper.id() as i32).unwrap();
    let (dir, _gone) = socket_dir();
    let sock = dir.join("s");
    let l = UnixListener::bind(&sock).unwrap();
    let mut p = Peer::spawn("receiver", &[sock.to_str().unwrap()]);
    let (s, _) = l.accept().unwrap();
    let ro = Handle::memfd_read_only(&mut m).unwrap();
    assert_eq!(ro.access(), handle::Access::ReadOnly);
    assert!(ro.is_write_sealed());
    handle::send(
        &s,
        &[
            &ro,
            &Handle::eventfd(&wake).unwrap(),
            &Handle::pidfd(&watched).unwrap(),
        ],
        b"",
    )
    .unwrap();
    let mut said = Vec::new();
    loop {
        let line = p.recv();
        if line == "ready" {
            break;
        }
        said.push(line);
    }
    // Every attack refused by the kernel.
    assert_eq!(said.len(), 8, "{said:?}");
    for line in &said[..7] {
        assert!(!line.ends_with(": allowed"), "{line}\nall: {said:?}");
    }
    assert_eq!(said[7], "writable false");
    // The creator still writes through the mapping it had, and the receiver sees it.
    m.write_at(0, b"version2").unwrap();
    wake.signal().unwrap();
    assert_eq!(p.recv(), "sees version2");
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_eq!(p.recv(), "exited true");
    p.finish();
}

/// Sends raw bytes with `fds` attached, as a buggy or hostile peer would.
fn send_raw(s: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(64))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    }
    rustix::net::sendmsg(s, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL).unwrap();
}

fn header(count: u16, payload: u32) -> Vec<u8> {
    let mut v = b"SHMH".to_vec();
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    v.extend_from_slice(&payload.to_le_bytes());
    v
}

fn record(kind: u8, access: u8, seals: u32, size: u64) -> Vec<u8> {
    let mut v = vec![kind, access, 0, 0];
    v.extend_from_slice(&seals.to_le_bytes());
    v.extend_from_slice(&size.to_le_bytes());
    v
}

/// The error `recv` gives for what `send` puts on the socket; no fd of it may stay open.
fn refused(send: impl FnOnce(&UnixStream)) -> String {
    let (a, b) = UnixStream::pair().unwrap();
    send(&a);
    drop(a);
    // What is in flight is in the socket, not in this process's table, until received.
    let before = open_fds();
    let e = handle::recv(&b).unwrap_err();
    assert_eq!(open_fds(), before, "an fd leaked after: {e}");
    e.to_string()
}

#[test]
fn lying_truncated_and_malformed_messages_are_refused_and_their_fds_closed() {
    // In a process of its own, so that no other test's fds change the count.
    let mut p = Peer::spawn("lies", &[]);
    assert_eq!(p.recv(), "all refused, no fd left open");
    p.finish();
}

fn lies() {
    let m = Memfd::create("lies", 4096).unwrap();
    let real = Handle::memfd(&m).unwrap();
    let rw = 1u8;
    let seals = real.seals().bits();
    let msg = |size: u64, access: u8, seals: u32, kind: u8| {
        let mut v = header(1, 0);
        v.extend(record(kind, access, seals, size));
        v
    };
    let fd = m.fd();
    // The truth is accepted.
    let (a, b) = UnixStream::pair().unwrap();
    send_raw(&a, &msg(4096, rw, seals, 1), &[fd]);
    assert_eq!(handle::recv(&b).unwrap().handles[0].size(), 4096);
    // Lies about the size, the access mode, the seals and the kind.
    let e = refused(|s| send_raw(s, &msg(1 << 20, rw, seals, 1), &[fd]));
    assert!(e.contains("said 1048576 bytes, the object has 4096"), "{e}");
    let e = refused(|s| send_raw(s, &msg(4096, 0, seals, 1), &[fd]));
    assert!(e.contains("said ReadOnly, the fd is ReadWrite"), "{e}");
    let e = refused(|s| send_raw(s, &msg(4096, rw, seals | 0x10, 1), &[fd]));
    assert!(e.contains("said seals"), "{e}");
    let ev = EventFd::new().unwrap();
    let e = refused(|s| send_raw(s, &msg(4096, rw, seals, 1), &[ev.fd()]));
    assert!(
        e.contains("said memfd, but the fd is anon_inode:[eventfd]"),
        "{e}"
    );
    // More fds than the records say, fewer, and fds where none were announced.
    let e = refused(|s| send_raw(s, &msg(4096, rw, seals, 1), &[fd, fd]));
    assert!(e.contains("says 1 handles and carries 2 fds"), "{e}");
    let e = refused(|s| send_raw(s, &msg(4096, rw, seals, 1), &[]));
    assert!(e.contains("says 1 handles and carries 0 fds"), "{e}");
    let e = refused(|s| {
        let whole = msg(4096, rw, seals, 1);
        send_raw(s, &whole[..12], &[fd]);
        send_raw(s, &whole[12..], &[fd]);
    });
    assert!(e.contains("fds arrived after the first bytes"), "{e}");
    // More fds than a message may carry: the kernel truncates the control data.
    let e = refused(|s| send_raw(s, &header(40, 0), &[fd; 40]));
    assert!(e.contains("MSG_CTRUNC"), "{e}");
    // A huge length, garbage, another version, a message cut short.
    let e = refused(|s| send_raw(s, &header(0, u32::MAX), &[]));
    assert!(e.contains("payload, more than"), "{e}");
    let e = refused(|s| send_raw(s, b"GET / HTTP/1.1\r\n\r\n", &[]));
    assert!(e.contains("not a handle message"), "{e}");
    let e = refused(|s| {
        let mut v = header(0, 0);
        v[4] = 9;
        send_raw(s, &v, &[])
    });
    assert!(e.contains("version 9"), "{e}");
    let e = refused(|s| send_raw(s, &header(0, 100)[..], &[]));
    assert!(e.contains("in the middle of a message"), "{e}");
    say("all refused, no fd left open");
}

#[test]
fn several_handles_and_a_payload_arrive_in_order_and_exactly_one_message_is_read() {
    let (a, b) = UnixStream::pair().unwrap();
    let m = Memfd::create("order", 8192).unwrap();
    let e = EventFd::new().unwrap();
    let me = PidFd::open(std::process::id() as i32).unwrap();
    let hs = [
        Handle::memfd(&m).unwrap(),
        Handle::eventfd(&e).unwrap(),
        Handle::pidfd(&me).unwrap(),
    ];
    handle::send(&a, &hs.iter().collect::<Vec<_>>(), b"first").unwrap();
    handle::send(&a, &[&hs[1]], b"second").unwrap();
    let one = handle::recv(&b).unwrap();
    let kinds: Vec<_> = one.handles.iter().map(|h| h.kind()).collect();
    assert_eq!(
        kinds,
        [
            handle::Kind::Memfd,
            handle::Kind::EventFd,
            handle::Kind::PidFd
        ]
    );
    assert_eq!(
        (one.payload.as_slice(), one.handles[0].size()),
        (&b"first"[..], 8192)
    );
    let two = handle::recv(&b).unwrap();
    assert_eq!(
        (two.payload.as_slice(), two.handles.len()),
        (&b"second"[..], 1)
    );
    // A handle of one kind is not another.
    let h = Handle::eventfd(&e).unwrap();
    assert_eq!(
        h.into_memfd().unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // More than a message may carry is refused before anything is sent.
    let many: Vec<_> = (0..17).map(|_| Handle::eventfd(&e).unwrap()).collect();
    let e = handle::send(&a, &many.iter().collect::<Vec<_>>(), b"").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn peer_credentials_name_the_connecting_process_and_the_sender_of_a_message() {
    let (dir, _gone) = socket_dir();
    let sock = dir.join("s");
    let l = UnixListener::bind(&sock).unwrap();
    let mut p = Peer::spawn("sender", &[sock.to_str().unwrap()]);
    let (s, _) = l.accept().unwrap();
    handle::pass_credentials(&s).unwrap();
    p.send("go");
    let c = handle::peer_credentials(&s).unwrap();
    let me = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    assert_eq!((c.pid, c.uid, c.gid), (p.pid(), me.0, me.1));
    let got = handle::recv(s.as_fd()).unwrap();
    assert_eq!(got.payload, b"from the sender");
    let sender = got.sender.expect("SCM_CREDENTIALS with the message");
    assert_eq!((sender.pid, sender.uid), (p.pid(), me.0));
    p.send("done");
    p.finish();
}

#[test]
fn write_attempts_change_nothing_and_fit_the_page_size() {
    let size = |m: &Memfd| rustix::fs::fstat(m.fd()).unwrap().st_size;
    // A writable handle: every attempt allowed, and nothing changed.
    let m = Memfd::create("probe-rw", 4096).unwrap();
    m.write_at(0, b"Z").unwrap();
    let h = Handle::memfd(&m).unwrap();
    let all = handle::write_attempts(&h).unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|a| a.refused.is_none()), "{all:?}");
    // write(2) is not made where a writable mapping was allowed (it could race a
    // truncation); it is where the kernel refuses it.
    assert!(all.iter().all(|a| a.tried != a.how.starts_with("write(2)")));
    let mut ro_memfd = Memfd::create("probe-ro", 4096).unwrap();
    let ro = Handle::memfd_read_only(&mut ro_memfd).unwrap();
    let all = handle::write_attempts(&ro).unwrap();
    assert!(
        all.iter().all(|a| a.tried && a.refused.is_some()),
        "{all:?}"
    );
    let mut b = [0u8; 1];
    m.read_at(0, &mut b).unwrap();
    assert_eq!((&b, size(&m)), (b"Z", 4096));
    // O_APPEND: a write would append; reported allowed, not done.
    let flags = rustix::fs::fcntl_getfl(h.fd()).unwrap();
    rustix::fs::fcntl_setfl(h.fd(), flags | rustix::fs::OFlags::APPEND).unwrap();
    let all = handle::write_attempts(&h).unwrap();
    assert!(all.iter().all(|a| a.refused.is_none()), "{all:?}");
    assert_eq!(size(&m), 4096);
    // O_APPEND under F_SEAL_GROW: every write would grow it, and is refused.
    let mut grown = Memfd::create("probe-grow", 4096).unwrap();
    grown.add_seals(shmkit::Seals::GROW).unwrap();
    let g = Handle::memfd(&grown).unwrap();
    rustix::fs::fcntl_setfl(g.fd(), flags | rustix::fs::OFlags::APPEND).unwrap();
    let all = handle::write_attempts(&g).unwrap();
    let w = all.iter().find(|a| a.how == "write(2)").unwrap();
    assert!(
        w.tried && w.refused.as_ref().and_then(|e| e.raw_os_error()) == Some(libc::EPERM),
        "{all:?}"
    );
    assert_eq!(size(&grown), 4096);
    // Emptied since the handle was made: an error, and it stays empty.
    rustix::fs::ftruncate(m.fd(), 0).unwrap();
    let e = handle::write_attempts(&h).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert_eq!(size(&m), 0);
    // A hugetlb memfd: mappings of the huge page size, all unmapped again.
    match Memfd::create_huge("probe-huge", 2 << 20) {
        Ok(huge) => {
            let maps = || {
                std::fs::read_to_string("/proc/self/maps")
                    .unwrap()
                    .lines()
                    .filter(|l| l.contains("memfd:probe-huge"))
                    .count()
            };
            let before = maps();
            let all = handle::write_attempts(&Handle::memfd(&huge).unwrap()).unwrap();
            // Mapped writable and made writable, as a writable handle allows; hugetlbfs has
            // no write(2) at all (EINVAL).
            for a in &all {
                let einval = a
                    .refused
                    .as_ref()
                    .is_some_and(|e| e.raw_os_error() == Some(libc::EINVAL));
                assert!(
                    a.refused.is_none() || (a.how.starts_with("write(2)") && einval),
                    "{all:?}"
                );
            }
            assert_eq!(maps(), before);
        }
        Err(e) => eprintln!("hugetlb part not run (no huge pages reserved): {e}"),
    }
}
