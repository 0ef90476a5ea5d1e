//! Helpers shared by the CLI's integration tests: running the binary, util-linux and Python.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// The uid of `nobody`, which the tests that need another user run as.
pub const NOBODY: u32 = 65534;

pub const BIN: &str = env!("CARGO_BIN_EXE_shmkit");

pub struct Run {
    pub code: i32,
    pub out: String,
    pub err: String,
}

pub fn done(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn shmkit(args: &[&str]) -> Run {
    done(Command::new(BIN).args(args).output().unwrap())
}

pub fn shmkit_in(args: &[&str], input: &[u8]) -> Run {
    let mut c = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe: that is not an error here.
    if let Err(e) = c.stdin.take().unwrap().write_all(input) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    done(c.wait_with_output().unwrap())
}

pub fn ok(args: &[&str]) -> String {
    let r = shmkit(args);
    assert_eq!(r.code, 0, "shmkit {args:?}: {}", r.err);
    r.out
}

pub fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).unwrap()
}

pub fn tool(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes objects when dropped, so a failed assertion still cleans up.
pub struct Gone(pub Vec<String>);
impl Drop for Gone {
    fn drop(&mut self) {
        for o in &self.0 {
            let _ = Command::new(BIN).args(["rm", o]).output();
        }
    }
}

pub fn find<'a>(list: &'a Value, object: &str) -> Option<&'a Value> {
    list.as_array()
        .unwrap()
        .iter()
        .find(|o| o["object"] == object)
}

/// Starts `python3 -c SCRIPT ARGS...` with stdin and stdout piped and returns it with the
/// first line it prints: its "ready" signal.
pub fn python(script: &str, args: &[&str]) -> (std::process::Child, String) {
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (py, line.trim().to_string())
}

pub fn ipcmk(args: &[&str]) -> i32 {
    tool("ipcmk", args)
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

pub fn root() -> bool {
    rustix::process::geteuid().is_root()
}

pub fn as_nobody(args: &[&str]) -> Run {
    done(
        Command::new(BIN)
            .args(args)
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap(),
    )
}

/// A process as root that maps `/dev/shm/NAME` and waits for a line on stdin.
pub fn root_python_mapping(name: &str) -> std::process::Child {
    let (py, ready) = python(
        "import mmap,os,sys\n\
         fd=os.open('/dev/shm/'+sys.argv[1], os.O_RDWR)\n\
         m=mmap.mmap(fd, 0)\n\
         os.close(fd)\n\
         print('ready', flush=True)\n\
         sys.stdin.readline()\n",
        &[name],
    );
    assert_eq!(ready, "ready");
    py
}

pub fn ok_in(args: &[&str], input: &[u8]) {
    let r = shmkit_in(args, input);
    assert_eq!(r.code, 0, "shmkit {args:?}: {}", r.err);
}
