//! The bootstrap server, the Linux way: memory and a semaphore named through shmkit's
//! registry and used by an unrelated process, as the Mach article does with
//! `bootstrap_register`/`bootstrap_look_up`; and a read-only handle that the receiver cannot
//! make writable.

use super::cleanup;
use super::peer::Peer;
use super::{Outcome, Scratch};
use serde_json::json;
use shmkit::handle::{EventFd, Handle};
use shmkit::registry::{Client, RegisterOptions, Server};
use shmkit::Memfd;
use std::path::PathBuf;
use std::time::Duration;

/// A registry of the tour's own, in a thread, on a socket in a fresh 0700 directory that the
/// cleanup removes.
fn start(scratch: &Scratch, which: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("shmkit-tour-{}-{which}", scratch.tag));
    cleanup::dir(&dir, || {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&dir)
    })
    .map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let sock = dir.join("registry.sock");
    let server = Server::bind(&sock).map_err(|e| e.to_string())?;
    std::thread::spawn(move || server.run(|_| {}));
    Ok(sock)
}

pub fn bootstrap(scratch: &Scratch) -> Outcome {
    const NAME: &str = "registry-bootstrap";
    match run_bootstrap(scratch) {
        Ok(o) => o,
        Err(e) => Outcome::error(NAME, "register memory and a semaphore", e),
    }
}

fn run_bootstrap(scratch: &Scratch) -> Result<Outcome, String> {
    const NAME: &str = "registry-bootstrap";
    let sock = start(scratch, "bootstrap")?;
    let text = "hello through the bootstrap server";
    // The reader asks for the name before anyone registered it, and waits.
    let mut peer = Peer::spawn("registry-reader", &[sock.display().to_string()])?;
    let asked = peer.recv()?;
    let m = Memfd::create("shmkit-tour-bootstrap", 4096).map_err(|e| e.to_string())?;
    m.write_at(0, text.as_bytes()).map_err(|e| e.to_string())?;
    let sem = EventFd::new().map_err(|e| e.to_string())?;
    let mut reg = Client::connect(&sock).map_err(|e| e.to_string())?;
    let handles = [
        Handle::memfd(&m).map_err(|e| e.to_string())?,
        Handle::eventfd(&sem).map_err(|e| e.to_string())?,
    ];
    reg.register(
        "tour/bootstrap",
        &[&handles[0], &handles[1]],
        RegisterOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let seen = peer.recv()?;
    let posted = sem
        .wait_timeout(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut reply = [0u8; 64];
    m.read_at(1024, &mut reply).map_err(|e| e.to_string())?;
    let reply = super::peer::text(&reply);
    let ok_exit = peer.finish();
    let pid = seen["pid"].as_i64().unwrap_or(0);
    let pass = ok_exit
        && asked["found"] == false
        && seen["text"] == text
        && posted == Some(1)
        && reply == format!("reply from pid {pid}");
    Ok(Outcome::new(
        NAME,
        format!("registered \"tour/bootstrap\": a memfd holding {text:?} and an eventfd semaphore"),
        format!(
            "pid {pid} waited for the name, read {:?}, wrote {reply:?} and posted the semaphore",
            seen["text"].as_str().unwrap_or("?")
        ),
        "the text; the reply; one post".into(),
        pass,
        json!({ "before": asked, "reader": seen, "reply": reply, "posts": posted }),
    ))
}

pub fn read_only(scratch: &Scratch) -> Outcome {
    const NAME: &str = "registry-read-only";
    match run_read_only(scratch) {
        Ok(o) => o,
        Err(e) => Outcome::error(NAME, "register a read-only handle", e),
    }
}

fn run_read_only(scratch: &Scratch) -> Result<Outcome, String> {
    const NAME: &str = "registry-read-only";
    let sock = start(scratch, "read-only")?;
    let mut m = Memfd::create("shmkit-tour-read-only", 4096).map_err(|e| e.to_string())?;
    m.write_at(0, b"version 1").map_err(|e| e.to_string())?;
    let wake = EventFd::new().map_err(|e| e.to_string())?;
    let mut reg = Client::connect(&sock).map_err(|e| e.to_string())?;
    let ro = Handle::memfd_read_only(&mut m).map_err(|e| e.to_string())?;
    let ev = Handle::eventfd(&wake).map_err(|e| e.to_string())?;
    reg.register("tour/read-only", &[&ro, &ev], RegisterOptions::default())
        .map_err(|e| e.to_string())?;
    let mut peer = Peer::spawn("registry-attacker", &[sock.display().to_string()])?;
    let attacks = peer.recv()?;
    // The creator still writes; the attacker sees it.
    m.write_at(0, b"version 2").map_err(|e| e.to_string())?;
    wake.signal().map_err(|e| e.to_string())?;
    let after = peer.recv()?;
    let ok_exit = peer.finish();
    let list = attacks["attacks"].as_object().cloned().unwrap_or_default();
    let refused = list
        .values()
        .filter(|v| v.as_str() != Some("allowed"))
        .count();
    let pass = ok_exit && list.len() == 6 && refused == 6 && after["sees"] == "version 2";
    Ok(Outcome::new(
        NAME,
        "registered a memfd sealed F_SEAL_FUTURE_WRITE as an O_RDONLY handle; kept writing".into(),
        format!(
            "{refused} of {} ways to write refused ({}); then saw {:?}",
            list.len(),
            list.iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join("; "),
            after["sees"].as_str().unwrap_or("?")
        ),
        "every write refused; the creator's later write seen".into(),
        pass,
        json!({ "attacks": list, "after": after }),
    ))
}
