//! Helpers shared by the integration tests: unique names, and peers that are real processes.
//!
//! A peer is this very test binary run again with `SHMKIT_PEER_ROLE` set: its `peer` test
//! (see each test file) then plays the role and reports on stdout in lines that start with
//! `PEER `, taking cues from stdin.
#![allow(dead_code)]

#[cfg(target_os = "linux")]
pub mod hosts;
pub mod stream;
#[cfg(feature = "bridge")]
pub mod zenoh_peer;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `fork` copies every System V attachment of the process (the child's mappings count in
/// `shm_nattch` until it execs), so a test that forks makes another test's attach count wrong
/// for a moment. Spawning as another user forks (std cannot use `posix_spawn` with a uid), so
/// it holds this lock for writing; tests that assert on `nattch` hold it for reading.
static FORKING: RwLock<()> = RwLock::new(());

/// Hold from `fork` until the child has exec'd or been reaped.
pub fn forking() -> RwLockWriteGuard<'static, ()> {
    FORKING.write().unwrap_or_else(|e| e.into_inner())
}

/// Hold while asserting on attach counts: no test of this process forks meanwhile.
pub fn counting_attachments() -> RwLockReadGuard<'static, ()> {
    FORKING.read().unwrap_or_else(|e| e.into_inner())
}

/// A name no other test, run or machine user will pick: prefix, pid, counter, time.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A System V key unlikely to collide: the pid and a per-process counter side by side (never
/// overlapping, so two calls in one process never meet), never 0 (`IPC_PRIVATE`).
pub fn unique_key() -> i32 {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed) & 0x3ff;
    let k = ((std::process::id() & 0xf_ffff) << 11) | (n << 1) | 1;
    k as i32
}

/// Forks (holding [`forking`]); the child runs `f` and `_exit`s with its result (99 if it
/// panicked); the parent gets the exit code. For tests where the fork is the point.
pub fn in_child(f: impl FnOnce() -> i32) -> i32 {
    let _forking = forking();
    // SAFETY: the child runs `f` (a few shmkit calls) and `_exit`s, never returning into
    // the test harness.
    match unsafe { libc::fork() } {
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(99);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
        pid => {
            let mut status = 0;
            // SAFETY: our own child, a valid out-pointer.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
            libc::WEXITSTATUS(status)
        }
    }
}

/// Removes whatever the closure names when dropped, so a failing assertion still cleans up.
pub struct Cleanup<F: FnMut()>(pub F);
impl<F: FnMut()> Drop for Cleanup<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// The arguments that make this test binary run only its `peer` test, quietly.
pub const PEER_ARGS: [&str; 5] = ["peer", "--exact", "--nocapture", "--test-threads=1", "-q"];

/// Waits for the child `pid`; `None` (after killing it) if it has not ended within `limit`:
/// how a test tells a hung child from a slow one.
pub fn wait_child(pid: i32, limit: std::time::Duration) -> Option<i32> {
    let t = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
            return Some(status);
        }
        if t.elapsed() > limit {
            // SAFETY: our child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

/// The role this process plays, if it was started as a peer.
pub fn peer_role() -> Option<(String, Vec<String>)> {
    let role = std::env::var("SHMKIT_PEER_ROLE").ok()?;
    let args = std::env::var("SHMKIT_PEER_ARGS")
        .unwrap_or_default()
        .split('\u{1f}')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    Some((role, args))
}

/// Reports one line to the test that started this peer.
pub fn say(line: impl AsRef<str>) {
    shmkit_peer::report(&format!("PEER {}", line.as_ref()));
}

/// Waits for a cue from the test that started this peer ("" once the test closed stdin).
pub fn cue() -> String {
    shmkit_peer::cue().unwrap().unwrap_or_default()
}

/// A peer process as the test sees it (the shared harness, with this file's conventions:
/// reports start with `PEER `, failures panic); killed on drop if still running.
pub struct Peer(shmkit_peer::Peer);

impl Peer {
    /// Runs this test binary's `peer` test in a new process with `role` and `args`.
    pub fn spawn(role: &str, args: &[&str]) -> Peer {
        Self::spawn_with(role, args, None)
    }

    /// Like `spawn`, as user `uid` (needs root).
    pub fn spawn_as(uid: u32, role: &str, args: &[&str]) -> Peer {
        Self::spawn_with(role, args, Some(uid))
    }

    /// Like `spawn`, run through the command `wrap` (its program and arguments, then this
    /// binary's path and arguments), which must end by `exec`-ing them: the peer keeps the
    /// pid the test knows (`ip netns exec NS unshare -m ...`, say).
    pub fn spawn_in(wrap: &[&str], role: &str, args: &[&str]) -> Peer {
        let mut cmd = Command::new(wrap[0]);
        cmd.args(&wrap[1..])
            .arg(std::env::current_exe().unwrap())
            .args(PEER_ARGS)
            .env("SHMKIT_PEER_ROLE", role)
            .env("SHMKIT_PEER_ARGS", args.join("\u{1f}"));
        Peer(shmkit_peer::Peer::spawn(cmd).expect("spawn the test binary as a peer"))
    }

    /// Like `spawn`, with `env` added to the peer's environment.
    pub fn spawn_env(role: &str, args: &[&str], env: &[(&str, &str)]) -> Peer {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(PEER_ARGS)
            .envs(env.iter().copied())
            .env("SHMKIT_PEER_ROLE", role)
            .env("SHMKIT_PEER_ARGS", args.join("\u{1f}"));
        Peer(shmkit_peer::Peer::spawn(cmd).expect("spawn the test binary as a peer"))
    }

    fn spawn_with(role: &str, args: &[&str], uid: Option<u32>) -> Peer {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        // `spawn` returns once the child has exec'd, so its copied attachments are gone by then.
        let _forking = uid.map(|_| forking());
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(uid);
        }
        cmd.args(PEER_ARGS)
            .env("SHMKIT_PEER_ROLE", role)
            .env("SHMKIT_PEER_ARGS", args.join("\u{1f}"));
        Peer(shmkit_peer::Peer::spawn(cmd).expect("spawn the test binary as a peer"))
    }

    pub fn pid(&self) -> i32 {
        self.0.pid() as i32
    }

    /// The next `PEER ` line, without the prefix.
    pub fn recv(&mut self) -> String {
        self.0
            .line_with_prefix("PEER ")
            .unwrap()
            .expect("the peer exited without reporting")
            .trim_end()
            .to_string()
    }

    /// The next `PEER ` line, or `None` if the peer exited without one (it failed).
    pub fn recv_or_exit(&mut self) -> Option<String> {
        self.0.line_with_prefix("PEER ").unwrap()
    }

    pub fn send(&mut self, cue: &str) {
        self.0.send(cue).unwrap();
    }

    /// Closes the peer's stdin: its next `cue()` returns an empty line.
    pub fn stdin_close(&mut self) {
        self.0.close_stdin();
    }

    /// Waits for the peer; panics unless it exited successfully.
    pub fn finish(self) {
        let st = self.0.wait().unwrap();
        assert!(st.success(), "peer failed: {st}");
    }

    pub fn kill9(&mut self) {
        self.0.kill().unwrap();
    }
}

/// Runs a shell command and returns its stdout; panics with its stderr if it fails.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
