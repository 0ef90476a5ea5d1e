//! memfd: seals, fd passing to a real process, ownership.
// Linux only: what this file tests (memfds, futex-based sync, /proc, util-linux tools, the
// OS queues and semaphores) is absent from the crate elsewhere.
#![cfg(target_os = "linux")]

mod common;
use common::Peer;
use shmkit::handle;
use shmkit::{ErrorKind, Memfd, Seals};
use std::os::unix::net::UnixListener;

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        "recv" => {
            let s = std::os::unix::net::UnixStream::connect(&args[0]).unwrap();
            let (fd, _) = handle::recv_fd(&s, &mut [0u8; 1]).unwrap();
            // The received fd is close-on-exec.
            let fl = rustix::io::fcntl_getfd(&fd).unwrap();
            let m = Memfd::from_fd(fd).unwrap();
            let mut buf = [0u8; 12];
            m.read_at(0, &mut buf).unwrap();
            common::say(format!(
                "{} {} {} {}",
                String::from_utf8_lossy(&buf),
                m.name(),
                m.is_writable(),
                fl.contains(rustix::io::FdFlags::CLOEXEC)
            ));
            let refused = m.write_at(0, b"x").unwrap_err().kind() == ErrorKind::ReadOnly;
            let pwrite = rustix::io::pwrite(m.fd(), b"x", 0).unwrap_err();
            common::say(format!("{refused} {}", pwrite.raw_os_error()));
        }
        _ => panic!("unknown role {role}"),
    }
}

#[test]
fn a_sealed_memfd_passed_to_another_process_is_read_only_there() {
    let mut m = Memfd::create("xfer", 4096).unwrap();
    m.write_at(0, b"sealed bytes").unwrap();
    m.add_seals(Seals::WRITE | Seals::SHRINK | Seals::GROW)
        .unwrap();
    let dir = std::env::temp_dir().join(common::unique("shmkit-memfd"));
    std::fs::create_dir(&dir).unwrap();
    let _g = common::Cleanup({
        let d = dir.clone();
        move || {
            let _ = std::fs::remove_dir_all(&d);
        }
    });
    let sock = dir.join("s");
    let l = UnixListener::bind(&sock).unwrap();
    let mut p = Peer::spawn("recv", &[sock.to_str().unwrap()]);
    let (s, _) = l.accept().unwrap();
    handle::send_fd(&s, m.fd(), b"m").unwrap();
    assert_eq!(p.recv(), "sealed bytes xfer false true");
    assert_eq!(p.recv(), format!("true {}", libc::EPERM));
    p.finish();
}

#[test]
fn seals_are_enforced_here_too() {
    let mut m = Memfd::create("seals", 8192).unwrap();
    assert_eq!(m.seals().unwrap(), Seals::empty());
    m.add_seals(Seals::SHRINK | Seals::GROW).unwrap();
    assert!(
        m.is_writable(),
        "shrink and grow seals keep the mapping writable"
    );
    assert_eq!(
        rustix::fs::ftruncate(m.fd(), 4096).unwrap_err(),
        rustix::io::Errno::PERM
    );
    assert_eq!(
        rustix::fs::ftruncate(m.fd(), 16384).unwrap_err(),
        rustix::io::Errno::PERM
    );
    m.write_at(0, b"before").unwrap();
    m.add_seals(Seals::WRITE).unwrap();
    assert!(!m.is_writable());
    assert_eq!(
        m.write_at(0, b"after").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    let mut buf = [0u8; 6];
    m.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"before");
    m.add_seals(Seals::SEAL).unwrap();
    let e = m.add_seals(Seals::FUTURE_WRITE).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    assert!(e.to_string().contains("F_SEAL_SEAL"), "{e}");
}

#[test]
fn a_write_seal_is_refused_while_someone_else_maps_it_writable() {
    let mut m = Memfd::create("busy", 4096).unwrap();
    let other_fd = rustix::io::fcntl_dupfd_cloexec(m.fd(), 0).unwrap();
    let other = Memfd::from_fd_writable(other_fd).unwrap();
    let e = m.add_seals(Seals::WRITE).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
    assert!(e.to_string().contains("unmap it first"), "{e}");
    // Nothing was lost: still writable and still shared with the other mapping.
    assert!(m.is_writable());
    m.write_at(0, b"shared").unwrap();
    let mut buf = [0u8; 6];
    other.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"shared");
    drop(other);
    m.add_seals(Seals::WRITE).unwrap();
}

#[test]
fn future_write_keeps_existing_mappings_writable() {
    let mut m = Memfd::create("future", 4096).unwrap();
    m.add_seals(Seals::FUTURE_WRITE).unwrap();
    m.write_at(0, b"still ok").unwrap();
    let fd = rustix::io::fcntl_dupfd_cloexec(m.fd(), 0).unwrap();
    let e = Memfd::from_fd_writable(fd).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM));
    let fd = rustix::io::fcntl_dupfd_cloexec(m.fd(), 0).unwrap();
    assert!(!Memfd::from_fd(fd).unwrap().is_writable());
}

#[test]
fn dropping_the_last_holder_frees_it() {
    let m = Memfd::create("gone", 4096).unwrap();
    use rustix::fd::AsRawFd;
    let link = format!("/proc/self/fd/{}", m.fd().as_raw_fd());
    assert!(std::fs::read_link(&link)
        .unwrap()
        .to_string_lossy()
        .starts_with("/memfd:gone"));
    let maps_before = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(maps_before.contains("/memfd:gone"));
    drop(m);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(!maps.contains("/memfd:gone"), "unmapped");
}

#[test]
fn bad_names_and_sizes_are_refused() {
    assert_eq!(
        Memfd::create("a\0b", 10).unwrap_err().kind(),
        ErrorKind::InvalidName
    );
    let e = Memfd::create(&"n".repeat(250), 10).unwrap_err();
    assert!(e.to_string().contains("249 bytes"), "{e}");
    assert_eq!(
        Memfd::create("zero", 0).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn huge_pages_fail_clearly_when_none_are_reserved() {
    let none = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .contains("HugePages_Total:       0");
    for r in [
        shmkit::AnonShared::new_huge(2 << 20).map(|_| ()),
        Memfd::create_huge("huge", 2 << 20).map(|_| ()),
    ] {
        if none {
            let e = r.unwrap_err();
            assert!(e.to_string().contains("vm.nr_hugepages"), "{e}");
        }
    }
}
