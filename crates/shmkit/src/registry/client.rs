//! The registry's client: register, look up, wait for, unregister and list names.

use super::entry::{valid, Entry, Info, RegisterOptions};
use super::protocol::{self, Request, Response};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::{self, Handle, Limits};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A connection to a registry.
///
/// ```no_run
/// use shmkit::handle::Handle;
/// use shmkit::registry::{Client, RegisterOptions};
/// let mut m = shmkit::Memfd::create("frames", 1 << 20)?;
/// let mut reg = Client::connect_default()?;
/// reg.register("video/frames", &[&Handle::memfd_read_only(&mut m)?], RegisterOptions::default())?;
///
/// // In another process:
/// let mut reg = Client::connect_default()?;
/// let entry = reg.wait_for("video/frames", std::time::Duration::from_secs(10))?;
/// let frames = entry.handles.into_iter().next().unwrap().into_memfd()?;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    stream: UnixStream,
    /// What this client registered, to register again after a reconnect.
    mine: Vec<(String, Vec<Handle>, RegisterOptions)>,
    /// The receive timeout set on the socket now (set again only when it changes).
    timeout: Option<Duration>,
    /// How long an answer may take.
    answer: Duration,
    /// The connection is out of step (an answer timed out and may still come): the next call
    /// connects again first.
    broken: bool,
}

/// How long an answer may take before the registry counts as hung.
const ANSWER: Duration = Duration::from_secs(5);

impl Client {
    /// Connects to the registry at `path`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing serves there (no socket, or `ECONNREFUSED`: a
    /// registry that is gone), with a hint to start one; other OS errors of `connect`.
    /// [`ErrorKind::TimedOut`] when the registry does not take the connection within 5 s
    /// (its backlog is full: it is stopped or overloaded).
    pub fn connect(path: impl AsRef<Path>) -> Result<Client> {
        Client::connect_within(path, ANSWER)
    }

    /// As [`Client::connect`], with `timeout` for the connection and for every answer
    /// (see [`Client::set_timeout`]).
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn connect_within(path: impl AsRef<Path>, timeout: Duration) -> Result<Client> {
        let path = path.as_ref().to_path_buf();
        let stream = connect(&path, timeout)?;
        Ok(Client {
            path,
            stream,
            mine: Vec::new(),
            timeout: None,
            answer: timeout,
            broken: false,
        })
    }

    /// Connects to this user's registry ([`default_socket`](super::default_socket)), and
    /// makes sure it is this user's: a registry of another uid on that path (one that made
    /// `/tmp/shmkit-UID` first) would see every handle registered and could hand out its own.
    ///
    /// # Errors
    /// As [`Client::connect`]; [`ErrorKind::PermissionDenied`] when the process serving there
    /// is another user's.
    pub fn connect_default() -> Result<Client> {
        Client::connect_default_within(ANSWER)
    }

    /// As [`Client::connect_default`], with `timeout` as in [`Client::connect_within`].
    ///
    /// # Errors
    /// As [`Client::connect_default`].
    pub fn connect_default_within(timeout: Duration) -> Result<Client> {
        let path = super::default_socket()?;
        let c = Client::connect_within(&path, timeout)?;
        let me = rustix::process::geteuid().as_raw();
        let server = handle::peer_credentials(&c.stream)?;
        if server.uid != me {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "connect",
                path.display().to_string(),
                format!(
                    "the registry on this user's socket is run by uid {} (pid {}), not by this \
                     user (uid {me}): it is not to be trusted",
                    server.uid, server.pid
                ),
            )
            .with_hint(
                "remove the directory it made, or set XDG_RUNTIME_DIR to a directory of your own",
            ));
        }
        Ok(c)
    }

    /// Replaces the connection with a new one. The old one is closed first, so that the
    /// registry sees it end (and its names become this user's to take over) before the new
    /// one asks anything.
    ///
    /// The names this client registered went with the old connection (the persistent ones
    /// became its user's to take over): they are registered again on the new one, so that a
    /// reconnect, asked for or made after a failed call, loses none. Returns how many.
    fn reopen(&mut self) -> Result<usize> {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.stream = connect(&self.path, self.answer)?;
        self.timeout = None;
        self.broken = false;
        let mine = std::mem::take(&mut self.mine);
        let mut done = 0;
        let mut first_error = None;
        for (name, handles, opts) in mine {
            let refs: Vec<&Handle> = handles.iter().collect();
            match self.register(&name, &refs, opts) {
                Ok(()) => done += 1,
                Err(e) => {
                    // Kept, to be tried again at the next reconnect.
                    self.mine.push((name, handles, opts));
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Ok(done),
            Some(e) => Err(e),
        }
    }

    /// How long an answer may take before the call fails with [`ErrorKind::TimedOut`]
    /// (default 5 s; `wait_for` waits its own timeout on top), and a request or a new
    /// connection may take to be taken.
    pub fn set_timeout(&mut self, answer: Duration) {
        self.answer = answer.max(Duration::from_millis(1));
        let _ = rustix::net::sockopt::set_socket_timeout(
            &self.stream,
            rustix::net::sockopt::Timeout::Send,
            Some(self.answer),
        );
    }

    /// The socket it is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call(
        &mut self,
        req: &Request,
        handles: &[&Handle],
        wait: Duration,
    ) -> Result<(Response, Vec<Handle>)> {
        let shown = self.path.display().to_string();
        if self.broken {
            // An answer timed out and may still come: a fresh connection, so that it is not
            // taken for this call's.
            self.reopen()?;
        }
        let gone = |e: Error| {
            if matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
                Error::new(
                    ErrorKind::Os,
                    "registry",
                    &shown,
                    "the registry closed the connection (it stopped, or refused what was sent)",
                )
                .with_hint("start it again, then reconnect (Client::reconnect registers this client's names again)")
            } else {
                e
            }
        };
        if let Err(e) = handle::send(&self.stream, handles, &protocol::encode_request(req)) {
            return Err(self.send_failed(e, gone));
        }
        // Out of step until the whole answer is read: an error part-way (a timeout, a frame
        // that could not be taken whole) leaves the rest of it in the socket, to be taken for
        // the next call's answer; the next call then connects again first.
        self.broken = true;
        let wait = wait.max(Duration::from_millis(1));
        if self.timeout != Some(wait) {
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", &shown, &e))?;
            self.timeout = Some(wait);
        }
        // Answers are larger than requests: a list of every name.
        let limits = Limits {
            payload: 16 << 20,
            ..Limits::default()
        };
        let got = handle::recv_with(&self.stream, limits).map_err(|e| {
            if e.kind() == ErrorKind::TimedOut {
                Error::new(
                    ErrorKind::TimedOut,
                    "registry",
                    &shown,
                    format!("no answer within {wait:?}: the registry is hung or overloaded"),
                )
            } else {
                gone(e)
            }
        })?;
        let r = protocol::decode_response(&got.payload)?;
        self.broken = false;
        Ok((r, got.handles))
    }

    /// The error of a request that could not be sent. A registry that refused the connection
    /// said why before closing it: that answer is in this socket's queue, and is the error.
    fn send_failed(&mut self, e: Error, gone: impl Fn(Error) -> Error) -> Error {
        let shown = self.path.display().to_string();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => {
                // Part of the frame may have gone: the connection is out of step.
                self.broken = true;
                Error::new(
                    ErrorKind::TimedOut,
                    "registry",
                    &shown,
                    format!(
                        "the request was not taken within {:?}: the registry is hung or \
                         overloaded",
                        self.answer
                    ),
                )
            }
            Some(libc::EPIPE | libc::ECONNRESET) => {
                self.broken = true;
                let _ = self
                    .stream
                    .set_read_timeout(Some(Duration::from_millis(100)));
                self.timeout = Some(Duration::from_millis(100));
                let said = handle::recv_with(&self.stream, Limits::default())
                    .ok()
                    .and_then(|m| protocol::decode_response(&m.payload).ok());
                match said {
                    Some(Response::Error(code, why)) => {
                        Error::new(code.kind(), "registry", &shown, why)
                    }
                    _ => gone(e),
                }
            }
            _ => gone(e),
        }
    }

    fn expect_ok(&self, name: &str, r: Response) -> Result<()> {
        match r {
            Response::Ok => Ok(()),
            other => Err(self.unexpected(name, other)),
        }
    }

    fn unexpected(&self, name: &str, r: Response) -> Error {
        match r {
            Response::Error(code, msg) => Error::new(code.kind(), "registry", name, msg),
            other => Error::new(
                ErrorKind::InvalidArgument,
                "registry",
                name,
                format!("an answer that does not fit the request: {other:?}"),
            ),
        }
    }

    /// Registers `name` with `handles` (at most [`handle::MAX_HANDLES`]).
    ///
    /// # Errors
    /// [`ErrorKind::AlreadyExists`] when another process holds the name (the same user may
    /// replace a name whose process is gone); [`ErrorKind::PermissionDenied`] when the
    /// registry's rules refuse it (the message names the rule); [`ErrorKind::InvalidArgument`]
    /// for a name of 0 or more than 255 bytes or with control characters; the errors of a
    /// connection whose registry is gone.
    pub fn register(
        &mut self,
        name: &str,
        handles: &[&Handle],
        opts: RegisterOptions,
    ) -> Result<()> {
        valid(name, "register")?;
        let req = Request::Register {
            name: name.to_string(),
            persistent: opts.persistent,
        };
        let (r, _) = self.call(&req, handles, self.answer)?;
        self.expect_ok(name, r)?;
        let kept = handles
            .iter()
            .map(|h| h.try_clone())
            .collect::<Result<Vec<_>>>()?;
        self.mine.retain(|m| m.0 != name);
        self.mine.push((name.to_string(), kept, opts));
        Ok(())
    }

    /// Looks `name` up.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing has the name; [`ErrorKind::PermissionDenied`]
    /// when the registry's rules refuse it; the errors of a connection whose registry is gone.
    pub fn lookup(&mut self, name: &str) -> Result<Entry> {
        valid(name, "lookup")?;
        let (r, handles) = self.call(&Request::Lookup { name: name.into() }, &[], self.answer)?;
        match r {
            Response::Entry(info) => Ok(Entry { info, handles }),
            other => Err(self.unexpected(name, other)),
        }
    }

    /// Waits at most `timeout` for `name` to be registered, and looks it up. A registry that
    /// is not running yet is waited for too (connecting again every 50 ms), so a reader may
    /// start before the registry and before the writer.
    ///
    /// # Errors
    /// [`ErrorKind::TimedOut`] when the name did not come in time; as [`Client::lookup`].
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> Result<Entry> {
        valid(name, "wait_for")?;
        // `None`: forever (`Duration::MAX`), in waits of at most a day each.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = deadline.map_or(Duration::from_secs(86_400), |d| {
                d.saturating_duration_since(Instant::now())
            });
            // Rounded up: a wait cut to whole milliseconds below what is left would end early.
            let ms = u32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(u32::MAX);
            let req = Request::Wait {
                name: name.into(),
                timeout_ms: ms,
            };
            match self.call(&req, &[], left.saturating_add(self.answer)) {
                Ok((Response::Entry(info), handles)) => return Ok(Entry { info, handles }),
                // The registry's wait ended before ours (it waits for ever in waits of a
                // day, or its clock ran ahead of ours by a fraction of a millisecond).
                Ok((Response::Error(super::protocol::Code::TimedOut, _), _))
                    if deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    continue
                }
                Ok((other, _)) => return Err(self.unexpected(name, other)),
                Err(e)
                    if e.kind() == ErrorKind::Os && deadline.is_none_or(|d| Instant::now() < d) =>
                {
                    // The registry went away: wait for one to come back.
                    std::thread::sleep(Duration::from_millis(50));
                    let _ = self.reopen();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Removes `name`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when nothing has the name; [`ErrorKind::PermissionDenied`] for
    /// a name of another user.
    pub fn unregister(&mut self, name: &str) -> Result<()> {
        valid(name, "unregister")?;
        let (r, _) = self.call(&Request::Unregister { name: name.into() }, &[], self.answer)?;
        self.expect_ok(name, r)?;
        self.mine.retain(|m| m.0 != name);
        Ok(())
    }

    /// Every name this client may look up, sorted.
    ///
    /// # Errors
    /// The errors of a connection whose registry is gone.
    ///
    /// Read in pages of 64 names: names registered or removed meanwhile may or may not be in
    /// it, as with `readdir`.
    pub fn list(&mut self) -> Result<Vec<Info>> {
        let mut all: Vec<Info> = Vec::new();
        loop {
            let after = all.last().map_or(String::new(), |i| i.name.clone());
            match self.call(&Request::List { after }, &[], self.answer)? {
                (Response::Entries(v), _) => {
                    let full = v.len() >= protocol::PAGE;
                    all.extend(v);
                    if !full {
                        return Ok(all);
                    }
                }
                (other, _) => return Err(self.unexpected("list", other)),
            }
        }
    }

    /// Connects again (to a registry that was restarted) and registers again every name this
    /// client registered; returns how many.
    ///
    /// # Errors
    /// As [`Client::connect`] and [`Client::register`].
    pub fn reconnect(&mut self) -> Result<usize> {
        self.reopen()
    }
}

/// Connects to `path`, waiting at most `timeout` for a registry whose backlog is full (a
/// plain `connect(2)` would wait for ever on a stopped one): the wait is `SO_SNDTIMEO`, which
/// also bounds every request sent later.
fn connect(path: &Path, timeout: Duration) -> Result<UnixStream> {
    use rustix::net::{sockopt, AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let shown = path.display().to_string();
    let timeout = timeout.max(Duration::from_millis(1));
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::os("socket", &shown, e))?;
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(timeout))
        .map_err(|e| Error::os("setsockopt(SO_SNDTIMEO)", &shown, e))?;
    let addr = SocketAddrUnix::new(path).map_err(|e| Error::os("connect", &shown, e))?;
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => {
                // The whole timeout again for the requests to come (a signal may have left
                // less of it set).
                sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(timeout))
                    .map_err(|e| Error::os("setsockopt(SO_SNDTIMEO)", &shown, e))?;
                return Ok(UnixStream::from(fd));
            }
            // A signal cut the wait short: wait what is left of it (a signal every 100 ms
            // must not make it a wait for ever).
            Err(rustix::io::Errno::INTR) => {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left.is_some_and(|l| l.is_zero()) {
                    return Err(backlog_full(&shown, timeout));
                }
                if let Some(left) = left {
                    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(left))
                        .map_err(|e| Error::os("setsockopt(SO_SNDTIMEO)", &shown, e))?;
                }
            }
            Err(e @ (rustix::io::Errno::NOENT | rustix::io::Errno::CONNREFUSED)) => {
                return Err(Error::os("connect", &shown, e)
                    .with_kind(ErrorKind::NotFound)
                    .with_hint("no registry serves there; start one (Server::bind + run)"))
            }
            Err(rustix::io::Errno::AGAIN) => return Err(backlog_full(&shown, timeout)),
            Err(e) => return Err(Error::os("connect", &shown, e)),
        }
    }
}

fn backlog_full(shown: &str, timeout: Duration) -> Error {
    Error::new(
        ErrorKind::TimedOut,
        "connect",
        shown,
        format!(
            "the registry did not take the connection within {timeout:?}: its backlog is full \
             (it is stopped, hung or overloaded)"
        ),
    )
}

/// Waits at most `timeout` for a registry to serve on `path` and for `name` to be registered
/// there, and looks it up: a reader may start before the registry and before the writer.
///
/// # Errors
/// [`ErrorKind::TimedOut`] when no registry came, or the name did not, in time; as
/// [`Client::lookup`].
pub fn wait_for(path: impl AsRef<Path>, name: &str, timeout: Duration) -> Result<(Client, Entry)> {
    let deadline = Instant::now().checked_add(timeout);
    let mut client = loop {
        match Client::connect(path.as_ref()) {
            Ok(c) => break c,
            Err(e)
                if e.kind() == ErrorKind::NotFound
                    && deadline.is_none_or(|d| Instant::now() < d) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::TimedOut,
                    "registry",
                    path.as_ref().display().to_string(),
                    format!("no registry came within {timeout:?}"),
                ))
            }
            Err(e) => return Err(e),
        }
    };
    let left = deadline.map_or(Duration::MAX, |d| {
        d.saturating_duration_since(Instant::now())
    });
    let entry = client.wait_for(name, left)?;
    Ok((client, entry))
}
