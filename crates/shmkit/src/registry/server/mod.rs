//! The registry itself: one thread, one `poll` loop, every client bounded.

use super::entry::Info;
use super::policy::{Policy, Who};
use super::protocol::{self, Code, Response};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::passing::{Reader, Step};
use crate::handle::{self, Credentials, Handle, Limits};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::AsFd;
use std::collections::HashMap;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

mod inflight;
mod notes;
mod requests;

use inflight::Draining;

/// What the registry holds at most, and how long a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Names registered at once.
    pub names: usize,
    /// Names registered at once by one uid other than the registry's own.
    pub names_per_uid: usize,
    /// Clients connected at once; more are accepted and closed at once. Each may hold
    /// `handles` + 1 fds while its frame is read: with the stored handles, they must fit in
    /// `RLIMIT_NOFILE` (else frames fail with `MSG_CTRUNC` and accepts pause).
    pub connections: usize,
    /// Handles per name (at most [`handle::MAX_HANDLES`]).
    pub handles: usize,
    /// Largest frame payload, in bytes.
    pub payload: usize,
    /// How long a client may take to send the rest of a frame it began.
    pub frame_time: Duration,
    /// Handles held for all names together: each is an open fd of the registry, which its
    /// `RLIMIT_NOFILE` must leave room for, with the connections.
    pub stored_handles: usize,
    /// Handles held for the names of one uid other than the registry's own.
    pub stored_per_uid: usize,
    /// Connections one uid other than the registry's own may have open at once (a
    /// connection closed with answers unread counts until they are read: see `in_flight`).
    pub per_uid: usize,
    /// Handles sent in answers and not read yet, to all clients together. The kernel charges
    /// every fd in flight on a Unix socket to the sender's user and refuses more
    /// (`ETOOMANYREFS`) past the sender's `RLIMIT_NOFILE`: without this bound, clients that
    /// look names up and never read the answers would stop the registry from answering
    /// anyone.
    pub in_flight: usize,
    /// Handles in flight to the clients of one uid other than the registry's own.
    pub in_flight_per_uid: usize,
}

impl Bounds {
    /// The bounds for a registry whose `RLIMIT_NOFILE` is `nofile`: 4,096 names, 16 handles
    /// a name, 4 KiB payloads, 2 s per frame. The fds: half of `nofile` for connections, each
    /// of which may hold a frame's 16 handles while it is read (so `nofile` / 34, at most
    /// 256), a quarter for stored handles (at most 512); and a quarter of `nofile` for handles
    /// in flight (at most 512), which the kernel counts against the same limit. One uid other
    /// than the registry's own gets a quarter of each, and of the names.
    pub fn for_nofile(nofile: u64) -> Bounds {
        let nofile = usize::try_from(nofile).unwrap_or(usize::MAX);
        let quarter = (nofile / 4).max(4);
        let connections = (nofile / 2 / (1 + handle::MAX_HANDLES)).clamp(1, 256);
        let stored = quarter.min(512);
        let flight = quarter.min(512);
        Bounds {
            names: 4096,
            names_per_uid: 1024,
            connections,
            handles: handle::MAX_HANDLES,
            payload: 4096,
            frame_time: Duration::from_secs(2),
            stored_handles: stored,
            stored_per_uid: stored / 4,
            per_uid: connections / 4,
            in_flight: flight,
            in_flight_per_uid: flight / 4,
        }
    }
}

impl Default for Bounds {
    /// [`Bounds::for_nofile`] with this process's `RLIMIT_NOFILE` (its soft limit) now.
    fn default() -> Self {
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        Bounds::for_nofile(nofile)
    }
}

struct Entry {
    info: Info,
    handles: Vec<Handle>,
    /// The connection that registered it.
    conn: u64,
}

/// What one uid has registered.
#[derive(Default, Clone, Copy)]
struct Held {
    names: usize,
    handles: usize,
}

struct Conn {
    id: u64,
    stream: UnixStream,
    who: Credentials,
    /// Its uid and groups (`SO_PEERGROUPS`), for the rules.
    rules_who: Who,
    /// Handles sent to it that may not have been read yet: those sent since its socket's
    /// send queue was last seen empty.
    in_flight: usize,
    reader: Reader,
    /// When the frame being read began.
    since: Option<Instant>,
    /// A `wait`: the name and the deadline.
    waiting: Option<(String, Instant)>,
}

/// A name service for handles on a Unix socket.
///
/// ```no_run
/// let server = shmkit::registry::Server::bind(&shmkit::registry::default_socket()?)?;
/// server.run(|line| eprintln!("{line}"))?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub struct Server {
    listener: UnixListener,
    /// The socket file, when this server made it (its mode follows the policy).
    path: Option<std::path::PathBuf>,
    policy: Policy,
    bounds: Bounds,
    owner: u32,
    names: HashMap<String, Entry>,
    conns: Vec<Conn>,
    /// Connections to close at the end of the turn, by id, and why (closing one in the middle
    /// of the turn would move the others).
    closing: Vec<(u64, String)>,
    next_id: u64,
    /// When the last request was answered: for a short while after, the loop polls without
    /// sleeping (see `SPIN`), when requests come in bursts.
    answered: Option<Instant>,
    /// Whether requests come in a burst (one came within `SPIN` of the answer before it).
    burst: bool,
    /// Connections closed with handles still unread: kept until the peer reads them or
    /// closes, because until then the kernel counts those fds against the registry.
    draining: Vec<Draining>,
    /// Handles held for all names, and per uid.
    stored: usize,
    /// Names and handles held for each uid.
    held_by_uid: HashMap<u32, Held>,
    /// Accepting is paused until then (out of fds).
    accept_paused: Option<Instant>,
    /// The log, rate-limited per uid.
    notes: notes::Notes,
    /// The directory this server made for its socket (its mode follows the policy).
    made_dir: Option<std::path::PathBuf>,
}

/// How long the loop keeps polling without sleeping after an answer (yielding the CPU between
/// polls). A client that asks again at once (a lookup loop, a burst) then finds the registry
/// awake instead of waking it on another CPU, which on this 2-CPU machine cost more than the
/// lookup itself (benches/registry.rs: 50 µs a lookup without, 24-31 µs with). It does so
/// only in a burst (a request came within `BURST_GAP` of the answer before): an isolated
/// request costs no polling after it.
const SPIN: Duration = Duration::from_micros(50);

/// A request this soon after the answer before it means a burst: the client's wake-up, its
/// work and the registry's wake-up fit in it on this machine (about 25 µs a cross-CPU wake-up).
const BURST_GAP: Duration = Duration::from_micros(200);

/// Bytes of answers a client may leave unread (kernel accounting: a few dozen answers)
/// before it is closed.
const UNREAD_MAX: libc::c_int = 64 << 10;

impl Server {
    /// Listens on `path`, creating its directory (mode 0700) if missing. A socket file left
    /// by a registry that is gone is replaced; one that a live registry answers on is not.
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`] when a registry answers on `path`; the OS errors of
    /// `mkdir`, `chmod` and `bind`; [`ErrorKind::PermissionDenied`] when the directory
    /// belongs to another user or others may enter it.
    pub fn bind(path: &std::path::Path) -> Result<Server> {
        let shown = path.display().to_string();
        let made_dir = match path.parent() {
            Some(dir) => super::prepare_dir(dir, super::DirUse::Socket)?.then(|| dir.to_path_buf()),
            None => None,
        };
        if let Ok(m) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    "bind",
                    &shown,
                    "a file that is not a socket is in the way; it is left alone",
                )
                .with_hint("choose another socket path, or remove the file yourself"));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    "bind",
                    &shown,
                    "a registry is already serving on this socket",
                ));
            }
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path).map_err(|e| Error::io("bind", &shown, &e))?;
        let mut server = Server::from_listener(listener)?;
        server.path = Some(path.to_path_buf());
        server.made_dir = made_dir;
        server.set_socket_mode()?;
        Ok(server)
    }

    /// Connecting to a Unix socket takes write permission on its file: 0600 admits only the
    /// registry's user, 0666 lets others reach it, to be admitted or refused by the policy.
    fn set_socket_mode(&self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mode = if self.policy.rules.is_empty() {
            0o600
        } else {
            0o666
        };
        rustix::fs::chmod(path.as_path(), rustix::fs::Mode::from_raw_mode(mode))
            .map_err(|e| Error::os("chmod", path.display().to_string(), e))?;
        // The directory this server made: others must be able to pass through it (0711, not
        // list it) to reach a socket its rules admit them to.
        if let Some(dir) = &self.made_dir {
            let mode = if self.policy.rules.is_empty() {
                0o700
            } else {
                0o711
            };
            rustix::fs::chmod(dir.as_path(), rustix::fs::Mode::from_raw_mode(mode))
                .map_err(|e| Error::os("chmod", dir.display().to_string(), e))?;
        }
        Ok(())
    }

    /// Serves on a listener made elsewhere (systemd socket activation: see
    /// [`Server::from_systemd`]).
    ///
    /// # Errors
    /// The OS error of making it non-blocking.
    pub fn from_listener(listener: UnixListener) -> Result<Server> {
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("fcntl(O_NONBLOCK)", "registry socket", &e))?;
        Ok(Server {
            listener,
            path: None,
            policy: Policy::default(),
            bounds: Bounds::default(),
            owner: rustix::process::geteuid().as_raw(),
            names: HashMap::new(),
            conns: Vec::new(),
            closing: Vec::new(),
            next_id: 1,
            answered: None,
            burst: false,
            draining: Vec::new(),
            stored: 0,
            held_by_uid: HashMap::new(),
            accept_paused: None,
            notes: notes::Notes::default(),
            made_dir: None,
        })
    }

    /// The listener systemd passed (`LISTEN_PID` is this process, `LISTEN_FDS` ≥ 1: fd 3),
    /// or `None` when not socket-activated.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] when fd 3 is not a listening Unix socket.
    pub fn from_systemd() -> Result<Option<Server>> {
        let ours = std::env::var("LISTEN_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            == Some(std::process::id());
        let n: usize = std::env::var("LISTEN_FDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if !ours || n == 0 {
            return Ok(None);
        }
        // SAFETY: systemd passes fds from 3 on and they are ours from now on; nothing else in
        // this process owns fd 3 (the variables are removed so no child takes it too).
        let fd = unsafe { <rustix::fd::OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(3) };
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
        // A stream socket: the frames are read as a byte stream (a SOCK_SEQPACKET listener
        // would cut them at message bounds).
        let is_listener = rustix::net::sockopt::socket_acceptconn(&fd).unwrap_or(false)
            && rustix::net::sockopt::socket_domain(&fd)
                .is_ok_and(|d| d == rustix::net::AddressFamily::UNIX)
            && rustix::net::sockopt::socket_type(&fd)
                .is_ok_and(|t| t == rustix::net::SocketType::STREAM);
        if !is_listener {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "LISTEN_FDS",
                "fd 3",
                "systemd passed an fd that is not a listening Unix stream socket (ListenStream=PATH in the unit)",
            ));
        }
        Server::from_listener(UnixListener::from(fd)).map(Some)
    }

    /// Uses `policy` for clients of other uids. With rules, the socket file this server
    /// made becomes mode 0666 so that others can reach it (the rules then decide); without,
    /// it stays 0600.
    ///
    /// # Errors
    /// The OS error of `chmod` of the socket.
    pub fn policy(mut self, policy: Policy) -> Result<Self> {
        self.policy = policy;
        self.set_socket_mode()?;
        Ok(self)
    }

    /// Uses `bounds`.
    pub fn bounds(mut self, bounds: Bounds) -> Self {
        self.bounds = Bounds {
            handles: bounds.handles.min(handle::MAX_HANDLES),
            ..bounds
        };
        self
    }

    /// Serves until an error of the listener itself; calls `log` with one line per event
    /// (connections refused, names registered and gone, requests refused, frames rejected).
    ///
    /// # Errors
    /// The OS error of `poll` or `accept` that is not about one client.
    pub fn run(mut self, mut log: impl FnMut(&str)) -> Result<()> {
        loop {
            self.turn(&mut log)?;
        }
    }

    /// One turn of the loop: waits for events (at most until the next deadline), serves them.
    fn turn(&mut self, log: &mut impl FnMut(&str)) -> Result<()> {
        let now = Instant::now();
        // A pause that is over is forgotten (else its instant, in the past, would make every
        // poll return at once).
        if self.accept_paused.is_some_and(|t| now >= t) {
            self.accept_paused = None;
        }
        let next = self
            .conns
            .iter()
            .flat_map(|c| {
                [
                    c.since.and_then(|s| s.checked_add(self.bounds.frame_time)),
                    c.waiting.as_ref().map(|w| w.1),
                ]
            })
            .flatten()
            .chain(self.accept_paused)
            // Notes left out are counted once the second is over, not at the next note.
            .chain(self.notes.due())
            // Draining sockets are looked at every 100 ms.
            .chain((!self.draining.is_empty()).then(|| now + Duration::from_millis(100)))
            .min();
        let spinning = self.burst && self.answered.is_some_and(|a| now < a + SPIN);
        let wait = if spinning {
            Duration::ZERO
        } else {
            next.map_or(Duration::from_secs(60), |d| {
                d.saturating_duration_since(now)
                    .min(Duration::from_secs(60))
            })
        };
        let ts = rustix::time::Timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos() as _,
        };
        let mut ready = vec![false; self.conns.len()];
        let mut accept = false;
        {
            let mut fds = Vec::with_capacity(self.conns.len() + 1);
            let paused = self.accept_paused.is_some();
            fds.push(PollFd::new(
                &self.listener,
                if paused {
                    PollFlags::empty()
                } else {
                    PollFlags::IN
                },
            ));
            for c in &self.conns {
                fds.push(PollFd::new(&c.stream, PollFlags::IN));
            }
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(Error::os("poll", "registry", e)),
            }
            accept = accept || !fds[0].revents().is_empty();
            for (i, f) in fds[1..].iter().enumerate() {
                ready[i] = !f.revents().is_empty();
            }
        }
        let any = ready.iter().any(|r| *r);
        if any {
            // A request soon after the last answer (its client's wake-up and ours included):
            // requests come in a burst, and staying awake between them pays.
            self.burst = self.answered.is_some_and(|a| a.elapsed() < BURST_GAP);
        } else if spinning {
            // Yield rather than spin: a client on this same CPU gets to run and ask.
            std::thread::yield_now();
        }
        for (i, ready) in ready.into_iter().enumerate() {
            if ready {
                if let Err(why) = self.serve(i, log) {
                    let id = self.conns[i].id;
                    self.closing.push((id, why));
                }
            }
        }
        let now = Instant::now();
        let frame_time = self.bounds.frame_time;
        for c in &mut self.conns {
            if c.since
                .and_then(|s| s.checked_add(frame_time))
                .is_some_and(|end| now >= end)
            {
                let why = format!("sent part of a frame and then nothing for {frame_time:?}");
                self.closing.push((c.id, why));
                continue;
            }
            if let Some((name, deadline)) = c.waiting.clone() {
                if now >= deadline {
                    c.waiting = None;
                    let r = Response::Error(
                        Code::TimedOut,
                        format!("{name:?} was not registered in time"),
                    );
                    if let Err(why) = reply(c, &r, &[]) {
                        self.closing.push((c.id, why));
                    }
                }
            }
        }
        for (id, why) in std::mem::take(&mut self.closing) {
            if let Some(i) = self.conns.iter().position(|c| c.id == id) {
                self.drop_conn(i, &why, log);
            }
        }
        if any {
            self.answered = Some(Instant::now());
        }
        if !self.draining.is_empty() {
            self.settle();
        }
        self.notes.flush(log);
        if accept {
            self.accept(log)?;
        }
        Ok(())
    }

    fn accept(&mut self, log: &mut impl FnMut(&str)) -> Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if e.raw_os_error() == Some(libc::EMFILE)
                        || e.raw_os_error() == Some(libc::ENFILE) =>
                {
                    // The connection stays in the backlog, so the listener stays readable:
                    // stop polling it for a while instead of spinning on it.
                    self.accept_paused = Some(Instant::now() + Duration::from_millis(100));
                    self.note(
                        None,
                        log,
                        format!("accept: {e}: pausing accepts for 100 ms"),
                    );
                    return Ok(());
                }
                // A client that went away while queued, a signal, a short allocation failure:
                // about one client, not the registry.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(
                            libc::ECONNABORTED
                                | libc::EINTR
                                | libc::EPROTO
                                | libc::ENOBUFS
                                | libc::ENOMEM
                                | libc::EPERM
                        )
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(Error::io("accept", "registry socket", &e)),
            };
            let Ok(who) = handle::peer_credentials(&stream) else {
                continue;
            };
            // The primary group first, then the others (none if the kernel keeps them back).
            let mut gids = vec![who.gid];
            gids.extend(
                handle::peer_groups(&stream)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|g| *g != who.gid),
            );
            let rules_who = Who { uid: who.uid, gids };
            let (all, theirs) = self.connections(who.uid);
            let full = all >= self.bounds.connections;
            let stranger = who.uid != self.owner && !self.policy.mentions(&rules_who);
            let refusal = if stranger {
                Some((
                    Code::Refused,
                    format!(
                        "uid {} (gid {}) is admitted to no name: the registry runs as uid {} and \
                         no rule of its config names this uid or one of its groups",
                        who.uid, who.gid, self.owner
                    ),
                ))
            } else if full {
                Some((
                    Code::Full,
                    format!(
                        "{} clients are connected (the bound)",
                        self.bounds.connections
                    ),
                ))
            } else if who.uid != self.owner && theirs >= self.bounds.per_uid {
                Some((
                    Code::Full,
                    format!("uid {} has {theirs} connections open (the bound)", who.uid),
                ))
            } else {
                None
            };
            if let Some((code, why)) = refusal {
                // Told why (a blocking send of a few bytes to a fresh socket: it has room).
                let _ = handle::send(
                    &stream,
                    &[],
                    &protocol::encode_response(&Response::Error(code, why.clone())),
                );
                self.note(
                    Some(who.uid),
                    log,
                    format!("refused pid {} uid {}: {why}", who.pid, who.uid),
                );
                continue;
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            self.conns.push(Conn {
                id,
                stream,
                who,
                rules_who,
                in_flight: 0,
                reader: Reader::new(Limits {
                    handles: self.bounds.handles,
                    payload: self.bounds.payload,
                }),
                since: None,
                waiting: None,
            });
        }
    }

    /// Logs `line` about `uid`, rate-limited (see `notes.rs`).
    fn note(&mut self, uid: Option<u32>, log: &mut dyn FnMut(&str), line: String) {
        self.notes.note(uid, log, &line);
    }

    /// Reads what connection `i` sent and answers each whole request; `Err` closes it.
    fn serve(&mut self, i: usize, log: &mut impl FnMut(&str)) -> std::result::Result<(), String> {
        loop {
            let c = &mut self.conns[i];
            let before = c.reader.received();
            let step = c
                .reader
                .read_from(c.stream.as_fd())
                .map_err(|e| e.to_string())?;
            match step {
                Step::Closed => return Err("closed the connection".into()),
                Step::WouldBlock => return Ok(()),
                Step::More => {
                    if c.reader.received() > before {
                        c.since.get_or_insert_with(Instant::now);
                    }
                }
                Step::Done(msg) => {
                    c.since = None;
                    // A well-framed request with a bad body (an empty or too long name, an
                    // unknown operation) is answered, not punished: the connection stays.
                    let req = match protocol::decode_request(&msg.payload) {
                        Ok(r) => r,
                        Err(why) => return reply(c, &Response::Error(Code::BadRequest, why), &[]),
                    };
                    // One request per turn: poll says again if there is more, and a client
                    // that pipelines cannot keep the others waiting.
                    return self.request(i, req, msg.handles, log);
                }
            }
        }
    }
}

/// Sends one response; a client that cannot take it at once (its socket buffer full) is
/// too slow and is closed rather than waited for.
fn reply(c: &mut Conn, r: &Response, handles: &[&Handle]) -> std::result::Result<(), String> {
    // Answers it has not read hold their fds in flight, charged to the registry's user: a
    // client that asks and never reads would otherwise run the registry out of them.
    let mut unread: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int: the bytes sent on this socket that the peer
    // has not read yet.
    let r_ioctl = unsafe {
        libc::ioctl(
            rustix::fd::AsRawFd::as_raw_fd(&c.stream),
            libc::TIOCOUTQ,
            &mut unread,
        )
    };
    if r_ioctl == 0 && unread > UNREAD_MAX {
        return Err(format!(
            "does not read its answers ({unread} bytes of them unread)"
        ));
    }
    match handle::send(&c.stream, handles, &protocol::encode_response(r)) {
        Ok(()) => {
            c.in_flight += handles.len();
            Ok(())
        }
        // The registry's user has as many fds in flight as its RLIMIT_NOFILE (other
        // processes of that user count too): nothing was sent; say so without handles.
        Err(e) if e.raw_os_error() == Some(libc::ETOOMANYREFS) && !handles.is_empty() => {
            let why = "the registry's user has too many fds in flight on Unix sockets \
                       (ETOOMANYREFS, past its RLIMIT_NOFILE): try again once clients have \
                       read their answers";
            reply(c, &Response::Error(Code::Full, why.into()), &[])
        }
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
            Err("does not read its answers".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}
