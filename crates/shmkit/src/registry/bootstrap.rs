//! The registry's client on macOS, where the bootstrap server (launchd) is the name service:
//! the same calls as on Linux, each made of bootstrap's.
//!
//! - `register` checks a bootstrap name in ([`Service::publish_to`]) and answers look-ups of
//!   this user's processes with the handles and the name's [`Info`]; the name goes when it is
//!   unregistered, the client is dropped, or its process exits (launchd drops a name whose
//!   receive right died).
//! - `lookup` finds the name (`bootstrap_look_up`), asks for the handles, and checks with the
//!   kernel's audit token of the answer that its publisher is a process of this user, the one
//!   its `Info` names.
//! - `wait_for` looks up every 10 to 100 ms: bootstrap tells nobody that a name came.
//! - `list` reads the markers that registrations leave ([`Index`]), and counts those whose
//!   name bootstrap still finds.
//!
//! The bootstrap name of a registry name is `com.shmkit.registry.UID.n.NAME`, or, for a name
//! too long for bootstrap's 127 bytes, `com.shmkit.registry.UID.h.HASH` (64-bit FNV-1a of the
//! name, which the answer's `Info` then confirms). The uid keeps users that share a bootstrap
//! namespace (`sudo` keeps the caller's) apart.

use super::codec::{In, Out};
use super::entry::{valid, Entry, HandleInfo, Info, RegisterOptions};
use super::index::{Index, Marker};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::Handle;
use crate::mach::bootstrap::{self, Admit, Service};
use std::time::{Duration, Instant};

/// How long an answer may take before the publisher counts as hung.
const ANSWER: Duration = Duration::from_secs(5);
/// The longest bootstrap name (`BOOTSTRAP_MAX_NAME_LEN` counts the NUL).
const BOOTSTRAP_MAX: usize = 127;
const PREFIX: &str = "com.shmkit.registry";

/// The registry of this user's login session: the bootstrap server, through which every
/// process of the session can reach the names that processes of this user register.
///
/// ```no_run
/// use shmkit::handle::Handle;
/// use shmkit::mach::MachMemory;
/// use shmkit::registry::{Client, RegisterOptions};
/// let frames = MachMemory::new(1 << 20)?;
/// let mut reg = Client::connect_default()?;
/// reg.register("video/frames", &[&Handle::memory_read_only(&frames)?], RegisterOptions::default())?;
///
/// // In another process:
/// let mut reg = Client::connect_default()?;
/// let entry = reg.wait_for("video/frames", std::time::Duration::from_secs(10))?;
/// let theirs = entry.handles.into_iter().next().unwrap().into_mapped()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    mine: Vec<Mine>,
    answer: Duration,
    index: Index,
    uid: u32,
    /// The fork generation that made it: its names are that process's.
    generation: u32,
}

/// A name this client registered: its marker goes first when dropped, then its service (and
/// with it the name).
#[derive(Debug)]
struct Mine {
    name: String,
    marker: Marker,
    service: Service,
}

impl Client {
    /// Opens this user's registry: the bootstrap server of this login session, and the
    /// directory of markers that `list` reads.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] when the markers' directory is another user's or
    /// others may write it; the OS error of making it.
    pub fn connect_default() -> Result<Client> {
        Client::connect_default_within(ANSWER)
    }

    /// As [`Client::connect_default`], with `timeout` for every answer (see
    /// [`Client::set_timeout`]).
    ///
    /// # Errors
    /// As [`Client::connect_default`].
    pub fn connect_default_within(timeout: Duration) -> Result<Client> {
        Ok(Client {
            mine: Vec::new(),
            answer: timeout.max(Duration::from_millis(1)),
            index: Index::open()?,
            uid: rustix::process::geteuid().as_raw(),
            generation: crate::platform::generation(),
        })
    }

    /// How long an answer may take before the call fails with [`ErrorKind::TimedOut`]
    /// (default 5 s; `wait_for` waits its own timeout on top).
    pub fn set_timeout(&mut self, answer: Duration) {
        self.answer = answer.max(Duration::from_millis(1));
    }

    /// Registers `name` with `handles` (at most [`crate::handle::MAX_HANDLES`]); registering a
    /// name this client holds replaces its handles, with no moment in which the name is
    /// absent (and the old ones stay if that fails).
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`] when another process, or another client of this one,
    /// holds the name;
    /// [`ErrorKind::NotInherited`] in a fork child of the process that made this client (its
    /// names are the parent's; make a new client);
    /// [`ErrorKind::Unsupported`] for a persistent name; [`ErrorKind::InvalidArgument`] for a
    /// name of 0 or more than 255 bytes or with control characters, or too many handles;
    /// the errors of `bootstrap_check_in` and of writing the marker.
    pub fn register(
        &mut self,
        name: &str,
        handles: &[&Handle],
        opts: RegisterOptions,
    ) -> Result<()> {
        valid(name, "register")?;
        self.in_maker("register", name)?;
        if opts.persistent {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "register",
                name,
                "a persistent name is Linux only: on macOS a bootstrap name lives as long as \
                 the process that checked it in, and no registry process is there to keep it",
            )
            .with_hint("register it from a process that lives as long as the name should"));
        }
        if handles.len() > crate::handle::MAX_HANDLES {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "register",
                name,
                format!(
                    "{} handles, more than the {} a name holds",
                    handles.len(),
                    crate::handle::MAX_HANDLES
                ),
            ));
        }
        let info = Info {
            name: name.to_string(),
            pid: std::process::id() as i32,
            uid: self.uid,
            gid: rustix::process::getegid().as_raw(),
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            persistent: false,
            handles: handles
                .iter()
                .map(|h| HandleInfo {
                    kind: h.kind(),
                    size: h.size(),
                    device: 0,
                    inode: 0,
                })
                .collect(),
        };
        let kept = handles
            .iter()
            .map(|h| h.try_clone())
            .collect::<Result<Vec<_>>>()?;
        let mut o = Out(Vec::new());
        o.info(&info);
        if let Some(m) = self.mine.iter_mut().find(|m| m.name == name) {
            // Ours already: new content for the same service (bootstrap holds one service per
            // name, and a new check-in would have to wait for launchd to drop the old one).
            let marker = self.index.add(&info)?;
            m.service
                .replace(kept, &o.0)
                .map_err(|e| e.with_op("register"))?;
            // The old marker goes as it is replaced.
            m.marker = marker;
            return Ok(());
        }
        let service = Service::publish_to(
            &bootstrap_name(self.uid, name),
            kept,
            &o.0,
            Admit::Uid(self.uid),
        )
        .map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => Error::new(
                ErrorKind::AlreadyExists,
                "register",
                name,
                "another process, or another client of this one, holds the name (it goes when its \
                     holder unregisters it or exits)",
            ),
            _ => e.with_op("register"),
        })?;
        let marker = self.index.add(&info)?;
        self.mine.push(Mine {
            name: name.to_string(),
            marker,
            service,
        });
        Ok(())
    }

    /// Looks `name` up.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing has the name; [`ErrorKind::PermissionDenied`]
    /// when a process of another user publishes it; [`ErrorKind::TimedOut`] when the
    /// publisher does not answer in time (it is stopped or hung).
    pub fn lookup(&mut self, name: &str) -> Result<Entry> {
        valid(name, "lookup")?;
        self.ask(name, self.answer)
    }

    fn ask(&self, name: &str, wait: Duration) -> Result<Entry> {
        let got = bootstrap::look_up(&bootstrap_name(self.uid, name), wait).map_err(|e| {
            match e.kind() {
                ErrorKind::NotFound => Error::new(
                    ErrorKind::NotFound,
                    "registry",
                    name,
                    "nothing has the name",
                ),
                // It exited between the look-up and the answer: the name is going.
                ErrorKind::PeerGone => Error::new(
                    ErrorKind::NotFound,
                    "registry",
                    name,
                    "the process that had the name exited",
                ),
                _ => e.with_op("registry"),
            }
        })?;
        let who = got.publisher;
        if who.uid != self.uid {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "registry",
                name,
                format!(
                    "the name is published by pid {} of uid {}, not by this user (uid {}): it is \
                     not to be trusted",
                    who.pid, who.uid, self.uid
                ),
            ));
        }
        let bad = |why: String| {
            Error::new(ErrorKind::BadLayout, "registry", name, why)
                .with_hint("its publisher speaks another version of shmkit, or is not shmkit")
        };
        let mut i = In(&got.payload);
        let info = i.info().map_err(bad)?;
        i.end().map_err(bad)?;
        if info.name != name {
            // Two long names with one hash: the other one is published.
            return Err(Error::new(
                ErrorKind::NotFound,
                "registry",
                name,
                format!(
                    "nothing has the name (its bootstrap name is {:?}'s)",
                    info.name
                ),
            ));
        }
        if info.pid != who.pid || info.uid != who.uid || info.handles.len() != got.handles.len() {
            return Err(bad(format!(
                "the answer of pid {} says pid {} and {} handles, and carries {}",
                who.pid,
                info.pid,
                info.handles.len(),
                got.handles.len()
            )));
        }
        Ok(Entry {
            info,
            handles: got.handles,
        })
    }

    /// Waits at most `timeout` (`Duration::MAX`: for ever) for `name` to be registered, and
    /// looks it up. Bootstrap tells nobody that a name came, so this looks up every 10 ms at
    /// first and every 100 ms after the first second.
    ///
    /// # Errors
    /// [`ErrorKind::TimedOut`] when the name did not come in time; as [`Client::lookup`].
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> Result<Entry> {
        valid(name, "wait_for")?;
        let start = Instant::now();
        let deadline = start.checked_add(timeout);
        loop {
            match self.ask(name, self.answer) {
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                other => return other,
            }
            let now = Instant::now();
            let left = deadline.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    "wait_for",
                    name,
                    format!("the name was not registered within {timeout:?}"),
                ));
            }
            let step = if now.duration_since(start) < Duration::from_secs(1) {
                Duration::from_millis(10)
            } else {
                Duration::from_millis(100)
            };
            std::thread::sleep(step.min(left));
        }
    }

    /// Removes `name`, which this client registered.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing has the name; [`ErrorKind::PermissionDenied`] for
    /// a name another process registered (on macOS only the process that holds a name's
    /// receive right can end it); [`ErrorKind::NotInherited`] in a fork child of the process
    /// that made this client.
    pub fn unregister(&mut self, name: &str) -> Result<()> {
        valid(name, "unregister")?;
        self.in_maker("unregister", name)?;
        if let Some(at) = self.mine.iter().position(|m| m.name == name) {
            drop(self.mine.remove(at));
            return Ok(());
        }
        match bootstrap::find(&bootstrap_name(self.uid, name)) {
            Ok(_) => Err(Error::new(
                ErrorKind::PermissionDenied,
                "unregister",
                name,
                "another process registered the name; on macOS only the process that holds a \
                 bootstrap name can end it",
            )
            .with_hint("unregister it in that process, or end that process")),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::new(
                ErrorKind::NotFound,
                "unregister",
                name,
                "nothing has the name",
            )),
            Err(e) => Err(e.with_op("unregister")),
        }
    }

    /// Every name this user's clients registered that bootstrap still finds, sorted.
    ///
    /// Read from the markers that registrations leave, each the `Info` its registrant wrote: a
    /// name registered or removed meanwhile may or may not be in it, as with `readdir`. A name
    /// with one live marker is listed as it says, without asking its publisher (a stopped or
    /// hung one's name is listed too); a name with several (a stale marker whose pid was
    /// reused beside the real one) is looked up, which waits at most the answer timeout and
    /// leaves the name out if that fails.
    ///
    /// # Errors
    /// The OS error of reading the markers' directory.
    pub fn list(&mut self) -> Result<Vec<Info>> {
        let mut found = self.index.read()?;
        found.sort_by(|a, b| a.info.name.cmp(&b.info.name));
        let mut out: Vec<Info> = Vec::new();
        let mut i = 0;
        while i < found.len() {
            let mut j = i + 1;
            while j < found.len() && found[j].info.name == found[i].info.name {
                j += 1;
            }
            let name = found[i].info.name.clone();
            match bootstrap::find(&bootstrap_name(self.uid, &name)) {
                Ok(_) => {
                    // Markers of live writers; a stale one may remain of a writer whose pid
                    // was reused: with several, the publisher says which is right.
                    let live: Vec<&Info> = found[i..j]
                        .iter()
                        .map(|f| &f.info)
                        .filter(|f| crate::platform::process_alive(f.pid))
                        .collect();
                    match live.as_slice() {
                        // Every writer gone: the name is on its way out.
                        [] => {}
                        [one] => out.push((*one).clone()),
                        _ => {
                            if let Ok(e) = self.ask(&name, self.answer) {
                                out.push(e.info);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    for f in &found[i..j] {
                        self.index.remove_stale(f);
                    }
                }
                Err(_) => {}
            }
            i = j;
        }
        Ok(out)
    }

    /// Refuses to change names in a fork child: they are the parent's, held by its port
    /// namespace and serving threads.
    fn in_maker(&self, op: &'static str, name: &str) -> Result<()> {
        if crate::platform::generation() == self.generation {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::NotInherited,
            op,
            name,
            "this client's names are its parent process's: a fork child has its own port \
             namespace",
        )
        .with_hint("make a new Client in the child"))
    }

    /// On Linux, connects again to a restarted registry and registers this client's names
    /// again. On macOS there is no connection to lose (launchd is the registry, and this
    /// client's names stay while it lives): nothing to do, and 0 names registered again.
    ///
    /// # Errors
    /// None on macOS.
    pub fn reconnect(&mut self) -> Result<usize> {
        Ok(0)
    }
}

/// The bootstrap name of registry name `name` for user `uid`.
fn bootstrap_name(uid: u32, name: &str) -> String {
    let plain = format!("{PREFIX}.{uid}.n.{name}");
    if plain.len() <= BOOTSTRAP_MAX {
        return plain;
    }
    format!("{PREFIX}.{uid}.h.{:016x}", fnv1a(name.as_bytes()))
}

/// 64-bit FNV-1a: a hash that every build computes alike (std's hashers promise no such
/// thing), for names too long for bootstrap.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_names_fit_and_long_names_hash() {
        assert_eq!(bootstrap_name(501, "a/b"), "com.shmkit.registry.501.n.a/b");
        let long = "x".repeat(255);
        let b = bootstrap_name(501, &long);
        assert!(b.len() <= BOOTSTRAP_MAX, "{b}");
        assert!(b.starts_with("com.shmkit.registry.501.h."));
        assert_ne!(b, bootstrap_name(501, &"y".repeat(255)));
        // The FNV-1a test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        // The longest plain name is as long as bootstrap allows; one byte more is hashed.
        let room = BOOTSTRAP_MAX - "com.shmkit.registry.501.n.".len();
        assert_eq!(bootstrap_name(501, &"z".repeat(room)).len(), BOOTSTRAP_MAX);
        assert!(bootstrap_name(501, &"z".repeat(room + 1)).contains(".h."));
    }
}
