//! `shmkit registry`: serving, listing and looking up names, its config and its log, and
//! `shmkit ls` naming the memfds a registry hands out.

// Linux only: `shmkit registry` is (it passes memfds and eventfds).
#![cfg(target_os = "linux")]

mod common;

use common::*;
use shmkit::handle::Handle;
use shmkit::registry::{Client, RegisterOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `shmkit registry serve` on a socket of its own; killed (and its directory removed) on drop.
struct Serving {
    child: Child,
    dir: std::path::PathBuf,
    sock: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Serving {
    fn start(extra: &[&str]) -> Serving {
        let dir = std::env::temp_dir().join(unique("shmkit-cli-registry"));
        std::fs::create_dir(&dir).unwrap();
        let sock = dir.join("r.sock").to_str().unwrap().to_string();
        let mut child = Command::new(BIN)
            .args(["registry", "serve", "--socket", &sock])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        assert!(first.contains("serving on"), "{first}");
        let (tx, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in stderr.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Serving {
            child,
            dir,
            sock,
            log,
        }
    }

    /// The next log line that contains `what`; fails after 5 s instead of blocking (the
    /// lines are read by a thread).
    fn logged(&mut self, what: &str) -> String {
        let t = Instant::now();
        loop {
            let left = Duration::from_secs(5).saturating_sub(t.elapsed());
            match self.log.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(_) => {}
                Err(_) => panic!("no log line with {what:?} within 5 s"),
            }
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn names_are_listed_and_looked_up_and_ls_names_the_memfds_handed_out() {
    let mut s = Serving::start(&[]);
    let m = shmkit::Memfd::create("cli-registry", 8192).unwrap();
    let mut c = Client::connect(&s.sock).unwrap();
    c.register(
        "cli/frames",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions { persistent: true },
    )
    .unwrap();
    assert!(s
        .logged("registered")
        .contains("\"cli/frames\" (1 handles, persistent)"));
    let list = json(&["registry", "ls", "--socket", &s.sock, "--json"]);
    assert_eq!(list[0]["name"], "cli/frames");
    assert_eq!(list[0]["pid"], std::process::id());
    assert_eq!(list[0]["persistent"], true);
    assert_eq!(list[0]["handles"][0]["kind"], "memfd");
    assert_eq!(list[0]["handles"][0]["size"], 8192);
    let one = json(&[
        "registry",
        "lookup",
        "cli/frames",
        "--socket",
        &s.sock,
        "--json",
    ]);
    assert_eq!(one["name"], "cli/frames");
    let text = ok(&["registry", "lookup", "cli/frames", "--socket", &s.sock]);
    assert!(
        text.contains(&format!("registered by pid {}", std::process::id())),
        "{text}"
    );
    assert!(ok(&["registry", "ls", "--socket", &s.sock]).contains("cli/frames"));
    let r = shmkit(&["registry", "lookup", "cli/nothing", "--socket", &s.sock]);
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(
        r.err.contains("no name \"cli/nothing\" is registered"),
        "{}",
        r.err
    );
    // `shmkit ls` asks this user's default registry: point it at this one.
    let runtime = s.dir.join("xdg");
    std::fs::create_dir_all(runtime.join("shmkit")).unwrap();
    std::os::unix::fs::symlink(&s.sock, runtime.join("shmkit/registry.sock")).unwrap();
    let out = Command::new(BIN)
        .args(["ls", "--kind", "memfd", "--json"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inode = rustix::fs::fstat(m.fd()).unwrap().st_ino;
    let mine = all
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["inode"] == inode)
        .unwrap_or_else(|| panic!("memfd not listed: {all}"));
    assert_eq!(mine["registered_as"], "cli/frames", "{mine}");
}

#[test]
fn a_second_registry_on_a_live_socket_a_bad_config_and_no_registry_are_clear_errors() {
    let s = Serving::start(&[]);
    let r = shmkit(&["registry", "serve", "--socket", &s.sock]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err
            .contains("a registry is already serving on this socket"),
        "{}",
        r.err
    );
    let cfg = s.dir.join("bad.toml");
    std::fs::write(&cfg, "[[allow]]\nprefix = 3\n").unwrap();
    let r = shmkit(&[
        "registry",
        "serve",
        "--socket",
        "/nonexistent/x.sock",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err.contains("bad.toml at line 2") && r.err.contains("expected a string"),
        "{}",
        r.err
    );
    let gone = s.dir.join("none.sock");
    let r = shmkit(&["registry", "ls", "--socket", gone.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.err);
    assert!(r.err.contains("shmkit registry serve"), "{}", r.err);
}

#[test]
fn a_refused_client_is_told_the_rule_and_the_registry_logs_it() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    let cfg_dir = std::env::temp_dir().join(unique("shmkit-cli-registry-cfg"));
    std::fs::create_dir(&cfg_dir).unwrap();
    let cfg = cfg_dir.join("allow.toml");
    std::fs::write(&cfg, "[[allow]]\nprefix = \"pub/\"\nuids = [65534]\n").unwrap();
    let mut s = Serving::start(&["--config", cfg.to_str().unwrap()]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let m = shmkit::Memfd::create("cli-refused", 4096).unwrap();
    let mut c = Client::connect(&s.sock).unwrap();
    c.register(
        "priv/x",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["registry", "lookup", "priv/x", "--socket", &s.sock])
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .unwrap();
    let r = done(out);
    assert_eq!(r.code, 5, "{}", r.err);
    assert!(
        r.err
            .contains("uid 65534 (gid 65534) may not look up \"priv/x\""),
        "{}",
        r.err
    );
    assert!(s.logged("refused").contains("may not look up"));
    let _ = std::fs::remove_dir_all(&cfg_dir);
}

#[test]
fn under_socket_activation_it_serves_the_socket_systemd_passes_and_logs_for_the_journal() {
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join(unique("shmkit-cli-registry-sd"));
    std::fs::create_dir(&dir).unwrap();
    let _gone = DirGone(dir.clone());
    let sock = dir.join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let mut child = activated(listener.as_raw_fd(), &[("JOURNAL_STREAM", "8:12345")]);
    drop(listener);
    let mut log = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    assert!(
        first.starts_with("<6>serving on the socket systemd passed (open-file limit "),
        "{first}"
    );
    let m = shmkit::Memfd::create("activated", 4096).unwrap();
    let mut c = Client::connect(&sock).unwrap();
    c.register(
        "sd/x",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    let mut line = String::new();
    log.read_line(&mut line).unwrap();
    assert!(line.starts_with("<6>registered \"sd/x\""), "{line}");
    assert_eq!(
        c.lookup("sd/x").unwrap().info.pid,
        std::process::id() as i32
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// Removes a directory when dropped.
struct DirGone(std::path::PathBuf);
impl Drop for DirGone {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `shmkit registry serve` started as systemd starts it: the socket `raw` at fd 3,
/// `LISTEN_FDS=1` and `LISTEN_PID` the server's own pid (the shell's, which `exec` keeps).
fn activated(raw: std::os::fd::RawFd, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" registry serve",
        BIN,
    ])
    .envs(env.iter().copied())
    .stderr(Stdio::piped());
    // SAFETY: only dup2/fcntl between fork and exec, which are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto another fd clears close-on-exec; onto itself it does not.
            let r = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().unwrap()
}

#[test]
fn a_seqpacket_socket_from_systemd_is_refused() {
    use std::os::fd::AsRawFd;
    let dir = std::env::temp_dir().join(unique("shmkit-cli-registry-seq"));
    std::fs::create_dir(&dir).unwrap();
    let _gone = DirGone(dir.clone());
    let l = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let sock = dir.join("seq.sock");
    rustix::net::bind(&l, &rustix::net::SocketAddrUnix::new(&sock).unwrap()).unwrap();
    rustix::net::listen(&l, 8).unwrap();
    let mut child = Killed(activated(l.as_raw_fd(), &[]));
    drop(l);
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "it serves a SOCK_SEQPACKET socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("not a listening Unix stream socket"), "{err}");
}

#[test]
fn a_storm_of_bad_clients_is_logged_ten_lines_a_second_and_the_rest_counted() {
    let s = Serving::start(&[]);
    for _ in 0..25 {
        use std::io::Write;
        let mut c = std::os::unix::net::UnixStream::connect(&s.sock).unwrap();
        c.write_all(b"garbage!garbage!").unwrap();
    }
    // Every bad client is either logged or counted, and the count comes without another
    // event to carry it.
    let (mut shown, mut left_out) = (0, 0);
    let t = Instant::now();
    while shown + left_out < 25 {
        let left = Duration::from_secs(5).saturating_sub(t.elapsed());
        let line = s
            .log
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{shown} shown, {left_out} left out after 5 s"));
        if line.contains("closed pid") && line.contains("not a handle message") {
            shown += 1;
        } else if let Some(r) = line.split_once('(').map(|(_, r)| r) {
            // "(N more such lines for uid U left out)": counted per uid.
            if let Some(n) = r.strip_suffix(" left out)") {
                let (n, who) = n.split_once(" more such lines for ").unwrap();
                assert_eq!(who, format!("uid {}", rustix::process::geteuid().as_raw()));
                left_out += n.parse::<usize>().unwrap();
            }
        }
    }
    assert_eq!(shown + left_out, 25);
    assert!(left_out > 0 && shown <= 20, "{shown} shown");
}

#[test]
fn the_default_socket_served_by_another_user_is_not_trusted() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a registry as nobody");
        return;
    }
    let runtime = std::env::temp_dir().join(unique("shmkit-cli-registry-xdg"));
    std::fs::create_dir(&runtime).unwrap();
    let _gone = DirGone(runtime.clone());
    // nobody made $XDG_RUNTIME_DIR/shmkit first and serves there.
    let dir = runtime.join("shmkit");
    std::fs::create_dir(&dir).unwrap();
    rustix::fs::chown(
        &dir,
        Some(rustix::fs::Uid::from_raw(NOBODY)),
        Some(rustix::fs::Gid::from_raw(NOBODY)),
    )
    .unwrap();
    let sock = dir.join("registry.sock");
    let mut squatter = Killed(
        Command::new(BIN)
            .args(["registry", "serve", "--socket", sock.to_str().unwrap()])
            .uid(NOBODY)
            .gid(NOBODY)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Its log kept open (a closed one would end it at its next line).
    let mut log = BufReader::new(squatter.0.stderr.take().unwrap());
    let mut first = String::new();
    log.read_line(&mut first).unwrap();
    assert!(first.contains("serving on"), "{first}");
    for args in [&["registry", "ls"][..], &["registry", "lookup", "x"]] {
        let out = Command::new(BIN)
            .args(args)
            .env("XDG_RUNTIME_DIR", &runtime)
            .output()
            .unwrap();
        let r = done(out);
        assert_ne!(r.code, 0);
        assert!(
            r.err.contains("run by uid 65534") && r.err.contains("not to be trusted"),
            "{}",
            r.err
        );
    }
}

/// A child killed (and reaped) when dropped, a failed assertion included.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn max_connections_keeps_a_quarter_per_other_user() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    let cfg_dir = std::env::temp_dir().join(unique("shmkit-cli-registry-max"));
    std::fs::create_dir(&cfg_dir).unwrap();
    let _gone = DirGone(cfg_dir.clone());
    let cfg = cfg_dir.join("allow.toml");
    std::fs::write(&cfg, "[[allow]]\nprefix = \"pub/\"\nuids = [65534]\n").unwrap();
    let s = Serving::start(&["--config", cfg.to_str().unwrap(), "--max-connections", "4"]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // nobody's connections: one is kept (a quarter of 4), the others are told the bound.
    let out = Command::new("python3")
        .args([
            "-c",
            "import socket,sys,time\n\
             socks=[]\n\
             for i in range(4):\n\
             \x20 s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)\n\
             time.sleep(0.3)\n\
             for s in socks:\n\
             \x20 s.setblocking(False)\n\
             \x20 try: print(len(s.recv(4096)))\n\
             \x20 except BlockingIOError: print('open')\n\
             sys.stdout.flush()\n\
             time.sleep(1)\n",
            &s.sock,
        ])
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Meanwhile the registry's own user still gets in.
    std::thread::sleep(Duration::from_millis(150));
    let mut c = Client::connect(&s.sock).unwrap();
    assert_eq!(
        c.lookup("x").unwrap_err().kind(),
        shmkit::ErrorKind::NotFound
    );
    let out = out.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.iter().filter(|l| **l == "open").count(), 1, "{said}");
    assert_eq!(lines.len(), 4, "{said}");
}

#[test]
fn more_connections_than_the_open_file_limit_holds_are_refused_with_the_numbers() {
    let dir = std::env::temp_dir().join(unique("shmkit-cli-registry-nofile"));
    std::fs::create_dir(&dir).unwrap();
    let _gone = DirGone(dir.clone());
    let sock = dir.join("r.sock");
    let out = Command::new("prlimit")
        .args(["--nofile=1024:1024", "--"])
        .arg(BIN)
        .args(["registry", "serve", "--max-connections", "100", "--socket"])
        .arg(&sock)
        .output()
        .unwrap();
    let r = done(out);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(
        r.err
            .contains("--max-connections 100 needs up to 1972 open files")
            && r.err.contains("the open-file limit is 1024")
            && r.err.contains("at most 44"),
        "{}",
        r.err
    );
}
