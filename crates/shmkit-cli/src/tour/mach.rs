//! The Mach article (macOS): memory prepared with `mach_vm_allocate`, an entry made of it, a
//! FIFO semaphore, both named through the bootstrap server; a forked child looks them up,
//! maps the entry with `mach_vm_map`, writes through it and signals; it also writes to its
//! copy-on-write inheritance of the same range. The parent sees the first write, not the
//! second.

use super::Outcome;
use shmkit::mach::{bootstrap, Handle, MachMemory, MachSemaphore, Policy};
use shmkit::Inherit;
use std::time::Duration;

const LOOK_UP: Duration = Duration::from_secs(10);
const PARENT_TEXT: &[u8; 8] = b"parent\0\0";
const COW_TEXT: &[u8; 8] = b"cow-copy";
const ENTRY_TEXT: &[u8; 8] = b"by-entry";

pub fn article() -> Outcome {
    const NAME: &str = "mach-entry-fork";
    match run() {
        Ok((status, cow, shared, served)) => {
            let show = |b: &[u8; 8]| {
                String::from_utf8_lossy(b)
                    .trim_end_matches('\0')
                    .to_string()
            };
            let pass = status == Some(0) && &cow == PARENT_TEXT && &shared == ENTRY_TEXT;
            Outcome::new(
                NAME,
                format!(
                    "child looked up the entry and a FIFO semaphore by bootstrap name, wrote \
                     {:?} to its copy-on-write range at 0 and {:?} through mach_vm_map at 8, \
                     signalled",
                    show(COW_TEXT),
                    show(ENTRY_TEXT)
                ),
                format!(
                    "parent read {:?} at 0 and {:?} at 8",
                    show(&cow),
                    show(&shared)
                ),
                format!(
                    "{:?} at 0 (fork copies), {:?} at 8 (the entry shares)",
                    show(PARENT_TEXT),
                    show(ENTRY_TEXT)
                ),
                pass,
                serde_json::json!({
                    "child_status": status,
                    "parent_read_inherited": show(&cow),
                    "parent_read_shared": show(&shared),
                    "look_ups_served": served,
                }),
            )
        }
        Err(e) => Outcome::error(NAME, "the Mach memory entry experiment", e),
    }
}

#[allow(clippy::type_complexity)]
fn run() -> Result<(Option<i32>, [u8; 8], [u8; 8], u64), String> {
    let s = |e: shmkit::Error| e.to_string();
    let seg = MachMemory::allocate(1 << 16).map_err(s)?;
    // The range as fork alone would pass it on: copied.
    seg.set_inherit(Inherit::Copy).map_err(s)?;
    seg.write_at(0, PARENT_TEXT).map_err(s)?;
    let sem = MachSemaphore::new(Policy::Fifo, 0).map_err(s)?;
    let name = bootstrap::unique_name("org.shmkit.tour");
    let service = bootstrap::Service::publish(
        &name,
        vec![
            Handle::Memory(seg.entry().try_clone().map_err(s)?),
            Handle::Semaphore(MachSemaphore::from_send_right(
                sem.send_right().try_clone().map_err(s)?,
            )),
        ],
        b"",
    )
    .map_err(s)?;
    // SAFETY: the child writes to its copy, looks two names up, maps, writes, signals and
    // `_exit`s; it never returns into the tour.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = (|| -> Result<(), shmkit::Error> {
            seg.write_at(0, COW_TEXT)?;
            let got = bootstrap::look_up(&name, LOOK_UP)?;
            let mut it = got.handles.into_iter();
            let entry = it.next().map(Handle::into_memory).transpose()?;
            let theirs = it.next().map(Handle::into_semaphore).transpose()?;
            if let (Some(entry), Some(theirs)) = (entry, theirs) {
                entry.map()?.write_at(8, ENTRY_TEXT)?;
                theirs.signal()?;
            }
            Ok(())
        })()
        .map_or(1, |()| 0);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    super::cleanup::child(pid as u32);
    let signalled = sem.wait_timeout(LOOK_UP).map_err(s)?;
    let status = super::fork::wait(pid).filter(|_| signalled);
    let (mut cow, mut shared) = ([0u8; 8], [0u8; 8]);
    seg.read_at(0, &mut cow).map_err(s)?;
    seg.read_at(8, &mut shared).map_err(s)?;
    Ok((status, cow, shared, service.served()))
}

/// `Inherit::Zero` has no Mach counterpart: macOS says so instead of pretending.
pub fn zero_unsupported() -> Outcome {
    const NAME: &str = "inherit-zero";
    let got = shmkit::AnonShared::new(4096).and_then(|s| s.set_inherit(Inherit::Zero));
    let (observed, pass) = match &got {
        Err(e) if e.kind() == shmkit::ErrorKind::Unsupported => (format!("error: {e}"), true),
        Err(e) => (format!("another error: {e}"), false),
        Ok(()) => ("accepted".to_string(), false),
    };
    Outcome::new(
        NAME,
        "set inherit=zero".into(),
        observed,
        "an Unsupported error: vm_inherit has SHARE, COPY and NONE only".into(),
        pass,
        serde_json::json!({ "unsupported": pass }),
    )
}
