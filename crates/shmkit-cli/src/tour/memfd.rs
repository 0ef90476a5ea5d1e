//! A sealed memfd handed to an unrelated process over a Unix socket (`SCM_RIGHTS`).

use super::cleanup;
use super::peer::Peer;
use super::{Outcome, Scratch};
use serde_json::json;
use shmkit::{Memfd, Seals};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

const NAME: &str = "memfd-scm-rights";

pub fn sealed_handoff(scratch: &Scratch) -> Outcome {
    match run(scratch) {
        Ok(o) => o,
        Err(e) => Outcome::error(NAME, "create a memfd and pass it", e),
    }
}

fn run(scratch: &Scratch) -> Result<Outcome, String> {
    let message = "sealed: nobody may change these bytes";
    let mut m = Memfd::create("shmkit-tour", 4096).map_err(|e| e.to_string())?;
    m.write_at(0, message.as_bytes())
        .map_err(|e| e.to_string())?;
    m.add_seals(Seals::SHRINK | Seals::GROW | Seals::WRITE | Seals::SEAL)
        .map_err(|e| e.to_string())?;

    // An abstract socket: a name in the kernel, not a file, so that nothing is left on disk
    // even if the tour is killed with SIGKILL.
    let sock = format!("shmkit-tour-{}-memfd", scratch.tag);
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(sock.as_bytes())
        .map_err(|e| format!("abstract socket name {sock}: {e}"))?;
    let listener = UnixListener::bind_addr(&addr).map_err(|e| format!("bind @{sock}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    cleanup::pause_point("memfd");
    let mut peer = Peer::spawn("memfd-recv", std::slice::from_ref(&sock))?;
    let pid = peer.pid();
    // Accept with a deadline: a peer that fails before connecting must not hang the tour.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    shmkit::handle::send_fd(&stream, m.fd(), b"m").map_err(|e| e.to_string())?;
    let seen = peer.recv()?;
    let ok_exit = peer.finish();
    let eperm = Some(libc::EPERM);
    let errno = |k: &str| seen[k].as_i64().map(|v| v as i32);
    let pass = ok_exit
        && seen["text"] == message
        && seen["write_sealed"] == true
        && seen["mapped_writable"] == false
        && errno("pwrite_errno") == eperm
        && errno("ftruncate_errno") == eperm
        && errno("writable_mmap_errno") == eperm;
    Ok(Outcome::new(
        NAME,
        format!(
            "memfd_create(\"shmkit-tour\"), wrote {message:?}, sealed shrink|grow|write|seal, sent the fd over @{sock}"
        ),
        format!(
            "pid {pid} read {:?}; write(2): {}; ftruncate: {}; writable mmap: {}",
            seen["text"].as_str().unwrap_or("?"),
            seen["pwrite"].as_str().unwrap_or("?"),
            seen["ftruncate"].as_str().unwrap_or("?"),
            seen["writable_mmap"].as_str().unwrap_or("?"),
        ),
        "the same text; every write refused with EPERM".into(),
        pass,
        json!({ "reader_pid": pid, "reader": seen }),
    ))
}
