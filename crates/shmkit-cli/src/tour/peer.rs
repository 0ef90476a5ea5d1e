//! The reading side of the tour's cross-process experiments: a separate execution of this
//! binary (`shmkit __peer ROLE ARGS...`), unrelated to the writer by memory. It reports what it
//! observed as one JSON object per line on stdout and takes its cues line by line on stdin.

use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A running peer, as the writer sees it: the shared harness, tracked by the tour's cleanup
/// (killed if the tour is interrupted, reaped through it so a stale pid is never signalled),
/// reporting JSON.
pub struct Peer(shmkit_peer::Peer);

fn reap(
    pid: u32,
    wait: &mut dyn FnMut() -> std::io::Result<std::process::ExitStatus>,
) -> std::io::Result<std::process::ExitStatus> {
    super::cleanup::reap(pid, wait)
}

impl Peer {
    /// Starts `shmkit __peer ROLE ARGS...`.
    pub fn spawn(role: &str, args: &[String]) -> Result<Peer, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
        let mut cmd = Command::new(exe);
        // Its own process group: a Ctrl-C at the terminal goes to the tour alone, which then
        // stops its peers itself; a peer killed by the signal would make a step fail.
        cmd.process_group(0).arg("__peer").arg(role).args(args);
        shmkit_peer::Peer::spawn_tracked(cmd, super::cleanup::child, reap)
            .map(Peer)
            .map_err(|e| format!("cannot start the peer process: {e}"))
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// The next report; an `{"error": ...}` report becomes `Err`.
    pub fn recv(&mut self) -> Result<Value, String> {
        match self.0.line() {
            Ok(None) => Err("the peer exited without reporting".into()),
            Ok(Some(line)) => {
                let v: Value =
                    serde_json::from_str(&line).map_err(|e| format!("peer said {line:?}: {e}"))?;
                match v.get("error") {
                    Some(e) => Err(format!("peer: {}", e.as_str().unwrap_or("?"))),
                    None => Ok(v),
                }
            }
            Err(e) => Err(format!("reading the peer: {e}")),
        }
    }

    /// Sends a cue.
    pub fn send(&mut self, cue: &str) -> Result<(), String> {
        self.0
            .send(cue)
            .map_err(|e| format!("cue {cue:?} to the peer: {e}"))
    }

    /// Kills the peer with SIGKILL (no chance to clean up) and reaps it (the mutex experiment,
    /// Linux only).
    #[cfg(target_os = "linux")]
    pub fn kill(&mut self) -> Result<(), String> {
        self.0
            .kill()
            .map(|_| ())
            .map_err(|e| format!("kill the peer: {e}"))
    }

    /// Waits for the peer to exit; true if it succeeded.
    pub fn finish(self) -> bool {
        self.0.wait().is_ok_and(|s| s.success())
    }
}

/// Entry point of `shmkit __peer`.
pub fn run(role: &str, args: &[String]) -> u8 {
    let result = match (role, args) {
        ("posix-read", [name]) => posix_read(name),
        ("sysv-attach", [key]) => sysv_attach(key),
        #[cfg(target_os = "linux")]
        ("memfd-recv", [sock]) => memfd_recv(sock),
        #[cfg(target_os = "linux")]
        ("sem-consumer", [name, n]) => super::sync::consumer(name, n),
        #[cfg(target_os = "linux")]
        ("mutex-hold", [name]) => super::sync::hold(name),
        #[cfg(target_os = "linux")]
        ("registry-reader", [sock]) => registry_reader(sock),
        #[cfg(target_os = "linux")]
        ("registry-attacker", [sock]) => registry_attacker(sock),
        _ => Err(format!("unknown peer role {role} {args:?}")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            report(json!({ "error": e }));
            1
        }
    }
}

pub(super) fn report(v: Value) {
    shmkit_peer::report(&v.to_string());
}

pub(super) fn cue() -> Result<String, String> {
    match shmkit_peer::cue() {
        Ok(None) => Err("the writer went away".into()),
        Ok(Some(line)) => Ok(line),
        Err(e) => Err(e.to_string()),
    }
}

/// Text up to the first NUL.
pub fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn posix_read(name: &str) -> Result<(), String> {
    let seg = shmkit::PosixShm::options()
        .read_only(true)
        .open(name)
        .map_err(|e| e.to_string())?;
    let bytes = seg.to_vec().map_err(|e| e.to_string())?;
    let st = seg.stat().map_err(|e| e.to_string())?;
    report(json!({
        "text": text(&bytes),
        "len": seg.len(),
        "st_size": st.size,
        "st_blocks": st.blocks,
        "st_blksize": st.block_size,
        "mode": format!("{:04o}", st.mode),
        "uid": st.uid,
    }));
    Ok(())
}

fn sysv_attach(key: &str) -> Result<(), String> {
    let raw = u32::from_str_radix(key.trim_start_matches("0x"), 16)
        .map_err(|e| format!("key {key}: {e}"))?;
    let seg = shmkit::SysvShm::open(shmkit::SysvKey::Key(raw as i32)).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256.min(seg.len())];
    seg.read_at(0, &mut buf).map_err(|e| e.to_string())?;
    report(json!({ "text": text(&buf), "shmid": seg.id(), "size": seg.len() }));
    loop {
        match cue()?.as_str() {
            "write" => {
                seg.write_at(1024, b"written by the reader after IPC_RMID\0")
                    .map_err(|e| e.to_string())?;
                report(json!({ "wrote": true }));
            }
            "detach" => {
                seg.detach();
                report(json!({ "detached": true }));
                return Ok(());
            }
            other => return Err(format!("unexpected cue {other:?}")),
        }
    }
}

#[cfg(target_os = "linux")]
fn memfd_recv(sock: &str) -> Result<(), String> {
    use rustix::fd::AsFd;
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(sock.as_bytes())
        .map_err(|e| format!("abstract socket name {sock}: {e}"))?;
    let stream = std::os::unix::net::UnixStream::connect_addr(&addr)
        .map_err(|e| format!("connect @{sock}: {e}"))?;
    let mut b = [0u8; 1];
    let (fd, _) = shmkit::handle::recv_fd(&stream, &mut b).map_err(|e| e.to_string())?;
    let spare = rustix::io::fcntl_dupfd_cloexec(&fd, 0).map_err(|e| e.to_string())?;
    let m = shmkit::Memfd::from_fd(fd).map_err(|e| e.to_string())?;
    let bytes = m.to_vec().map_err(|e| e.to_string())?;
    let seals = m.seals().map_err(|e| e.to_string())?;
    // Three ways to write, each of which the seals must refuse.
    let write = rustix::io::pwrite(m.fd(), b"X", 0);
    let truncate = rustix::fs::ftruncate(m.fd().as_fd(), 1);
    let writable_map = shmkit::Memfd::from_fd_writable(spare).map(|_| ());
    let errno = |r: Result<(), i32>| match r {
        Ok(()) => "allowed".to_string(),
        Err(e) => std::io::Error::from_raw_os_error(e).to_string(),
    };
    report(json!({
        "text": text(&bytes),
        "name": m.name(),
        "mapped_writable": m.is_writable(),
        "seals": format!("{seals:?}"),
        "write_sealed": seals.contains(shmkit::Seals::WRITE),
        "pwrite": errno(write.map(|_| ()).map_err(|e| e.raw_os_error())),
        "pwrite_errno": write.err().map(|e| e.raw_os_error()),
        "ftruncate": errno(truncate.map_err(|e| e.raw_os_error())),
        "ftruncate_errno": truncate.err().map(|e| e.raw_os_error()),
        "writable_mmap": errno(writable_map.as_ref().map(|_| ()).map_err(|e| e.raw_os_error().unwrap_or(0))),
        "writable_mmap_errno": writable_map.err().and_then(|e| e.raw_os_error()),
    }));
    Ok(())
}

#[cfg(target_os = "linux")]
fn registry_reader(sock: &str) -> Result<(), String> {
    let before = shmkit::registry::Client::connect(sock)
        .and_then(|mut c| c.lookup("tour/bootstrap").map(|_| ()));
    report(json!({ "found": before.is_ok() }));
    let (_c, e) =
        shmkit::registry::wait_for(sock, "tour/bootstrap", std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
    let mut it = e.handles.into_iter();
    let m = it
        .next()
        .ok_or("no memory handle")?
        .into_memfd()
        .map_err(|e| e.to_string())?;
    let sem = it
        .next()
        .ok_or("no semaphore handle")?
        .into_eventfd()
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    m.read_at(0, &mut buf).map_err(|e| e.to_string())?;
    let me = std::process::id();
    m.write_at(1024, format!("reply from pid {me}\0").as_bytes())
        .map_err(|e| e.to_string())?;
    sem.signal().map_err(|e| e.to_string())?;
    report(json!({ "text": text(&buf), "pid": me, "owner": e.info.pid }));
    Ok(())
}

#[cfg(target_os = "linux")]
fn registry_attacker(sock: &str) -> Result<(), String> {
    let mut c = shmkit::registry::Client::connect(sock).map_err(|e| e.to_string())?;
    let e = c.lookup("tour/read-only").map_err(|e| e.to_string())?;
    let mut it = e.handles.into_iter();
    let h = it.next().ok_or("no memory handle")?;
    let wake = it
        .next()
        .ok_or("no event handle")?
        .into_eventfd()
        .map_err(|e| e.to_string())?;
    let mut attacks = serde_json::Map::new();
    for a in shmkit::handle::write_attempts(&h).map_err(|e| e.to_string())? {
        let said = a.refused.map_or("allowed".to_string(), |e| e.to_string());
        attacks.insert(a.how.into(), said.into());
    }
    report(json!({ "attacks": attacks }));
    let m = h.into_memfd().map_err(|e| e.to_string())?;
    wake.wait_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut b = [0u8; 9];
    m.read_at(0, &mut b).map_err(|e| e.to_string())?;
    report(json!({ "sees": text(&b), "writable": m.is_writable() }));
    Ok(())
}
