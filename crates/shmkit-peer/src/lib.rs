//! Peer processes for shmkit's tests, its tour and its benchmarks: the one harness that all
//! three use to run a second, unrelated process and talk to it.
//!
//! The two sides speak in lines: the peer reports on its stdout ([`report`]) and takes cues
//! from its stdin ([`cue`]); the side that started it reads reports with [`Peer::line`] and
//! sends cues with [`Peer::send`]. A [`Peer`] that is dropped while its process runs kills
//! and reaps it, so a failing test or step never leaves a process behind.
//!
//! ```
//! use std::process::Command;
//! let mut cat = shmkit_peer::Peer::spawn(Command::new("cat"))?;
//! cat.send("ping")?;
//! assert_eq!(cat.line()?.as_deref(), Some("ping"));
//! assert!(cat.wait()?.success());
//! # Ok::<(), std::io::Error>(())
//! ```

#![deny(missing_docs)]

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

/// Waits for a peer by calling the closure (which runs `waitpid` on it) in whatever way the
/// caller needs: the tour takes the pid off its interrupt handler's list first, so that the
/// handler never signals a pid that may already belong to another process.
pub type Reaper = fn(u32, &mut dyn FnMut() -> io::Result<ExitStatus>) -> io::Result<ExitStatus>;

fn plain_reap(
    _pid: u32,
    wait: &mut dyn FnMut() -> io::Result<ExitStatus>,
) -> io::Result<ExitStatus> {
    wait()
}

/// A running peer, as the side that started it sees it.
#[derive(Debug)]
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    reaper: Reaper,
    /// Waited for: its pid is no longer ours to signal.
    reaped: bool,
}

impl Peer {
    /// Starts `cmd` with its stdin and stdout piped to us (stderr is inherited).
    ///
    /// # Errors
    /// When the process cannot be started.
    pub fn spawn(cmd: Command) -> io::Result<Peer> {
        Peer::spawn_tracked(cmd, |_| {}, plain_reap)
    }

    /// As [`Peer::spawn`], calling `started` with the pid as soon as the process exists and
    /// waiting for it through `reaper`.
    ///
    /// # Errors
    /// When the process cannot be started.
    pub fn spawn_tracked(mut cmd: Command, started: fn(u32), reaper: Reaper) -> io::Result<Peer> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        started(child.id());
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(Peer {
            child,
            stdin,
            stdout,
            reaper,
            reaped: false,
        })
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the peer wrote, without its newline; `None` once it closed its stdout.
    ///
    /// # Errors
    /// When reading fails.
    pub fn line(&mut self) -> io::Result<Option<String>> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim_end_matches('\n').to_string()))
    }

    /// What follows `prefix` in the next line that holds it; lines without it (a test
    /// harness's own output) are skipped. The prefix need not start the line: processes that
    /// share the peer's stdout (its children) write into the same pipe, and a libtest harness
    /// prints a test's `.` with no newline, so a report written just after one is `.PEER ...`.
    /// `None` once the peer closed its stdout.
    ///
    /// # Errors
    /// When reading fails.
    pub fn line_with_prefix(&mut self, prefix: &str) -> io::Result<Option<String>> {
        while let Some(line) = self.line()? {
            if let Some(at) = line.find(prefix) {
                return Ok(Some(line[at + prefix.len()..].to_string()));
            }
        }
        Ok(None)
    }

    /// Sends one cue line.
    ///
    /// # Errors
    /// When the peer's stdin is closed or the write fails.
    pub fn send(&mut self, cue: &str) -> io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the peer's stdin is closed")
        })?;
        writeln!(stdin, "{cue}")?;
        stdin.flush()
    }

    /// Closes the peer's stdin: its next [`cue`] returns `None`.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the peer with `SIGKILL` (no chance to clean up) and reaps it.
    ///
    /// # Errors
    /// When the signal or the wait fails.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        self.child.kill()?;
        self.reap()
    }

    /// Closes the peer's stdin and waits for it to exit.
    ///
    /// # Errors
    /// When the wait fails.
    pub fn wait(mut self) -> io::Result<ExitStatus> {
        self.stdin = None;
        self.reap()
    }

    fn reap(&mut self) -> io::Result<ExitStatus> {
        self.reaped = true;
        let pid = self.child.id();
        let child = &mut self.child;
        (self.reaper)(pid, &mut || child.wait())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A peer left running (a failed test or step) must not outlive its starter.
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.reap();
        }
    }
}

/// A TCP port on the loopback that nobody listens on now (for a test's own servers; another
/// process may take it before the test does, which the test then sees as an address in use).
pub fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// The peer's side: writes one report line to stdout and flushes it.
pub fn report(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The peer's side: the next cue from stdin, trimmed; `None` once the starter closed it.
///
/// # Errors
/// When reading fails.
pub fn cue() -> io::Result<Option<String>> {
    let mut line = String::new();
    if io::stdin().read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_after_another_process_unfinished_line_is_still_found() {
        let mut peer = Peer::spawn({
            let mut c = Command::new("sh");
            c.args(["-c", "printf 'noise\\n.'; printf 'PEER one\\nPEER two\\n'"]);
            c
        })
        .unwrap();
        assert_eq!(
            peer.line_with_prefix("PEER ").unwrap().as_deref(),
            Some("one")
        );
        assert_eq!(
            peer.line_with_prefix("PEER ").unwrap().as_deref(),
            Some("two")
        );
        assert_eq!(peer.line_with_prefix("PEER ").unwrap(), None);
        peer.wait().unwrap();
    }

    #[test]
    fn a_dropped_peer_is_killed_and_reaped() {
        let peer = Peer::spawn({
            let mut c = Command::new("sleep");
            c.arg("60");
            c
        })
        .unwrap();
        let pid = peer.pid() as i32;
        drop(peer);
        // Reaped: the pid is no longer our child (ECHILD), so no zombie is left.
        let r = std::process::Command::new("kill")
            .args(["-0", &pid.to_string()])
            .status();
        assert!(!r.unwrap().success(), "pid {pid} still exists");
    }

    #[test]
    fn prefixed_lines_skip_the_rest() {
        let mut c = Command::new("printf");
        c.arg("noise\\nPEER one\\nPEER two\\n");
        let mut p = Peer::spawn(c).unwrap();
        assert_eq!(p.line_with_prefix("PEER ").unwrap().as_deref(), Some("one"));
        assert_eq!(p.line_with_prefix("PEER ").unwrap().as_deref(), Some("two"));
        assert_eq!(p.line_with_prefix("PEER ").unwrap(), None);
        assert!(p.wait().unwrap().success());
    }
}
