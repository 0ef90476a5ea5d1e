//! The registry between real processes: a server process, writers and readers that share
//! nothing but its socket; lifetimes, access rules, a registry that dies, load and garbage.
// Linux only, as the registry is.
#![cfg(target_os = "linux")]

mod common;
use common::{say, Cleanup, Peer};
use shmkit::handle::{EventFd, Handle};
use shmkit::registry::{self, Bounds, Client, Policy, RegisterOptions, Rule, Server};
use shmkit::{ErrorKind, Memfd};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    let sock = PathBuf::from(&args[0]);
    match role.as_str() {
        // The registry; `args[1..]` are rules `prefix=uid[,register]` or `prefix=g:gid`, and
        // bounds `:flight=N` (handles in flight per uid), `:conns=N`, `:stored=N`.
        "server" => {
            let mut bounds = Bounds::default();
            let mut rules = Vec::new();
            for r in &args[1..] {
                if let Some(b) = r.strip_prefix(':') {
                    let (what, n) = b.split_once('=').unwrap();
                    if (what, n) == ("frame", "max") {
                        bounds.frame_time = Duration::MAX;
                        continue;
                    }
                    let n: usize = n.parse().unwrap();
                    match what {
                        "flight" => bounds.in_flight_per_uid = n,
                        "conns" => bounds.connections = n,
                        "stored" => bounds.stored_handles = n,
                        "uidnames" => bounds.names_per_uid = n,
                        "nofile" => {
                            let l = rustix::process::Rlimit {
                                current: Some(n as u64),
                                maximum: Some(n as u64),
                            };
                            rustix::process::setrlimit(rustix::process::Resource::Nofile, l)
                                .unwrap();
                        }
                        _ => panic!("unknown bound {what}"),
                    }
                    continue;
                }
                let (prefix, rest) = r.split_once('=').unwrap();
                let mut it = rest.split(',');
                let who = it.next().unwrap();
                let (uids, gids) = match who.strip_prefix("g:") {
                    Some(g) => (vec![], vec![g.parse().unwrap()]),
                    None => (vec![who.parse().unwrap()], vec![]),
                };
                rules.push(Rule {
                    prefix: prefix.to_string(),
                    uids,
                    gids,
                    register: it.next() == Some("register"),
                });
            }
            let server = Server::bind(&sock)
                .unwrap()
                .policy(Policy { rules })
                .unwrap()
                .bounds(bounds);
            say("serving");
            server.run(|line| eprintln!("registry: {line}")).unwrap();
        }
        // Waits for "pingpong" (before anyone registered it), reads the writer's text, answers
        // in the same memory and signals back.
        "reader" => {
            let (_c, e) = registry::wait_for(&sock, "pingpong", Duration::from_secs(20)).unwrap();
            let mut it = e.handles.into_iter();
            let m = it.next().unwrap().into_memfd().unwrap();
            let theirs = it.next().unwrap().into_eventfd().unwrap();
            let mine = it.next().unwrap().into_eventfd().unwrap();
            assert_eq!(
                theirs.wait_timeout(Duration::from_secs(10)).unwrap(),
                Some(1)
            );
            let mut b = [0u8; 4];
            m.read_at(0, &mut b).unwrap();
            m.write_at(100, b"pong").unwrap();
            mine.signal().unwrap();
            say(format!(
                "read {} from pid {}",
                String::from_utf8_lossy(&b),
                e.info.pid
            ));
        }
        // Registers `args[1]` (persistent if `args[2]` says so) and waits to be killed.
        "owner" => {
            let m = Memfd::create("owned", 4096).unwrap();
            let mut c = Client::connect(&sock).unwrap();
            let opts = RegisterOptions {
                persistent: args.get(2).is_some_and(|a| a == "persistent"),
            };
            c.register(&args[1], &[&Handle::memfd(&m).unwrap()], opts)
                .unwrap();
            say("registered");
            common::cue();
        }
        // Tries `lookup` and `register` of `args[1]`; says what happened.
        "stranger" => {
            let mut c = match Client::connect(&sock) {
                Ok(c) => c,
                Err(e) => {
                    say(format!("connect {:?}", e.kind()));
                    return;
                }
            };
            let lookup = c
                .lookup(&args[1])
                .map(|_| ())
                .map_err(|e| (e.kind(), e.to_string()));
            let m = Memfd::create("stranger", 4096).unwrap();
            let reg = c
                .register(
                    &args[1],
                    &[&Handle::memfd(&m).unwrap()],
                    RegisterOptions::default(),
                )
                .map_err(|e| (e.kind(), e.to_string()));
            say(format!("lookup {lookup:?}"));
            say(format!("register {reg:?}"));
        }
        // `args[1]` lookups of "load".
        "load" => {
            let mut c = Client::connect(&sock).unwrap();
            let n: usize = args[1].parse().unwrap();
            for _ in 0..n {
                let e = c.lookup("load").unwrap();
                assert_eq!(e.handles.len(), 1);
            }
            say("done");
        }
        // Looks "shared/many" up `args[1]` times on one connection without reading the
        // answers; has that connection closed for garbage; then, on a new connection, looks
        // it up (refused: the first connection's handles are unread), reads the first
        // connection's answers, and looks it up again.
        "hoarder" => {
            let n: usize = args[1].parse().unwrap();
            let a = UnixStream::connect(&sock).unwrap();
            let name = b"shared/many";
            let mut lookup = vec![2u8];
            lookup.extend_from_slice(&(name.len() as u16).to_le_bytes());
            lookup.extend_from_slice(name);
            for _ in 0..n {
                shmkit::handle::send(&a, &[], &lookup).unwrap();
            }
            // The registry answers one request a turn; all of them are answered once the
            // queue holds n answers.
            let t = Instant::now();
            let (mut last, mut same) = (0, 0);
            while same < 10 && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
                let now = queued(&a);
                same = if now == last && now > 0 { same + 1 } else { 0 };
                last = now;
            }
            (&a).write_all(b"garbage!garbage!").unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let mut b = Client::connect(&sock).unwrap();
            let refused = b.lookup("shared/many").map(|e| e.handles.len());
            say(format!(
                "while unread: {:?}",
                refused.map_err(|e| e.to_string())
            ));
            common::cue();
            let mut entries = 0;
            let mut handles = 0;
            let mut errors = Vec::new();
            a.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            while let Ok(m) = shmkit::handle::recv(&a) {
                if m.handles.is_empty() {
                    // 255, the code (u16), the message's length (u16), the message.
                    errors.push(String::from_utf8_lossy(&m.payload[5..]).into_owned());
                } else {
                    entries += 1;
                    handles += m.handles.len();
                }
            }
            say(format!(
                "read {entries} entries, {handles} handles, errors {errors:?}"
            ));
            std::thread::sleep(Duration::from_millis(300));
            let again = b.lookup("shared/many").map(|e| e.handles.len());
            say(format!(
                "after reading: {:?}",
                again.map_err(|e| e.to_string())
            ));
        }
        // Registers `args[2]` names that start with `args[1]` (no handles, persistent);
        // says how many went and the first refusal.
        "registrar" => {
            let mut c = Client::connect(&sock).unwrap();
            let n: usize = args[2].parse().unwrap();
            let opts = RegisterOptions { persistent: true };
            let results: Vec<_> = (0..n)
                .map(|i| c.register(&format!("{}{i}", args[1]), &[], opts))
                .collect();
            let ok = results.iter().filter(|r| r.is_ok()).count();
            let first = results.into_iter().find_map(Result::err);
            say(format!(
                "registered {ok}, then {:?}",
                first.map(|e| e.to_string())
            ));
        }
        // Looks "many" (16 handles) up with too few fds free to receive them, then with
        // enough: the connection must not stay out of step.
        // Its own name "keep" must survive the reconnect that brings it back in step.
        "short-of-fds" => {
            let mut c = Client::connect(&sock).unwrap();
            let keep = Memfd::create("keep", 4096).unwrap();
            c.register(
                "keep",
                &[&Handle::memfd(&keep).unwrap()],
                RegisterOptions::default(),
            )
            .unwrap();
            assert_eq!(c.lookup("many").unwrap().handles.len(), 16);
            let mut hold = Vec::new();
            while let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(std::io::stdin(), 0) {
                hold.push(fd);
            }
            // Four fds free.
            hold.truncate(hold.len() - 4);
            let short = c.lookup("many").map(|e| e.handles.len());
            drop(hold);
            let after: Vec<_> = (0..3)
                .map(|_| {
                    c.lookup("many")
                        .map(|e| e.handles.len())
                        .map_err(|e| e.to_string())
                })
                .collect();
            say(format!("short {:?}", short.map_err(|e| e.to_string())));
            say(format!("after {after:?}"));
            common::cue();
        }
        // Connects to `args[0]` (a full backlog) with a 300 ms timeout while a timer sends it
        // SIGALRM every 50 ms; says what happened and how long it took.
        "interrupted" => {
            extern "C" fn nothing(_: libc::c_int) {}
            // SAFETY: a handler that does nothing (async-signal-safe), installed without
            // SA_RESTART; nothing else in this process uses SIGALRM.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
                assert_eq!(libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut()), 0);
            }
            // SIGALRM to this thread (the one that connects) every 50 ms; a connect that
            // never ends is reported after 5 s, not waited for.
            // SAFETY: pthread_self has no preconditions.
            let me = unsafe { libc::pthread_self() } as usize;
            std::thread::spawn(move || {
                for _ in 0..100 {
                    std::thread::sleep(Duration::from_millis(50));
                    // SAFETY: `me` is the connecting thread, which outlives this loop (the
                    // process exits below, before that thread could end unreported).
                    unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGALRM) };
                }
                say("still connecting after 5 s");
                std::process::exit(1);
            });
            let t = Instant::now();
            let r = Client::connect_within(&sock, Duration::from_millis(300));
            let took = t.elapsed();
            say(format!(
                "{:?} after {} ms",
                r.map(|_| ()).map_err(|e| e.kind()),
                took.as_millis()
            ));
        }
        // Looks `args[1]` up; says what happened.
        "member" => {
            let mut c = Client::connect(&sock).unwrap();
            let r = c.lookup(&args[1]).map(|e| e.handles.len());
            say(format!("lookup {:?}", r.map_err(|e| e.to_string())));
        }
        _ => panic!("unknown role {role}"),
    }
}

/// Bytes waiting to be read on `s` (`FIONREAD`).
fn queued(s: &UnixStream) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(s), libc::FIONREAD, &mut n) };
    n as usize
}

struct Registry {
    dir: PathBuf,
    sock: PathBuf,
    server: Option<Peer>,
    _gone: Cleanup<Box<dyn FnMut()>>,
}

impl Registry {
    fn start(rules: &[&str]) -> Registry {
        let dir = std::env::temp_dir().join(common::unique("shmkit-registry"));
        std::fs::create_dir(&dir).unwrap();
        let d = dir.clone();
        let gone: Cleanup<Box<dyn FnMut()>> = Cleanup(Box::new(move || {
            let _ = std::fs::remove_dir_all(&d);
        }));
        let sock = dir.join("registry.sock");
        let mut r = Registry {
            dir,
            sock,
            server: None,
            _gone: gone,
        };
        r.restart(rules);
        r
    }

    fn restart(&mut self, rules: &[&str]) {
        let mut args = vec![self.sock.to_str().unwrap()];
        args.extend_from_slice(rules);
        let mut p = Peer::spawn("server", &args);
        assert_eq!(p.recv(), "serving");
        self.server = Some(p);
    }

    fn kill(&mut self) {
        self.server.take().unwrap().kill9();
    }

    fn path(&self) -> &Path {
        &self.sock
    }

    fn server_fds(&self) -> usize {
        let pid = self.server.as_ref().unwrap().pid();
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    }
}

#[test]
fn unrelated_processes_share_memory_and_events_and_the_reader_waits_for_the_name() {
    let reg = Registry::start(&[]);
    // The reader starts first: the name does not exist yet.
    let mut reader = Peer::spawn("reader", &[reg.path().to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(200));
    let m = Memfd::create("pingpong", 4096).unwrap();
    m.write_at(0, b"ping").unwrap();
    let (to_reader, from_reader) = (EventFd::new().unwrap(), EventFd::new().unwrap());
    let mut c = Client::connect(reg.path()).unwrap();
    let hs = [
        Handle::memfd(&m).unwrap(),
        Handle::eventfd(&to_reader).unwrap(),
        Handle::eventfd(&from_reader).unwrap(),
    ];
    c.register(
        "pingpong",
        &hs.iter().collect::<Vec<_>>(),
        RegisterOptions::default(),
    )
    .unwrap();
    to_reader.signal().unwrap();
    assert_eq!(
        from_reader.wait_timeout(Duration::from_secs(10)).unwrap(),
        Some(1)
    );
    let mut b = [0u8; 4];
    m.read_at(100, &mut b).unwrap();
    assert_eq!(&b, b"pong");
    assert_eq!(
        reader.recv(),
        format!("read ping from pid {}", std::process::id())
    );
    reader.finish();
    // What the registry lists: this process, one memfd and two eventfds, by inode.
    let list = c.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].pid, list[0].handles.len()),
        (std::process::id() as i32, 3)
    );
    assert_eq!(list[0].handles[0].inode, hs[0].inode());
    // Names are exclusive; the owner may unregister.
    let mut other = Client::connect(reg.path()).unwrap();
    let e = other
        .register("pingpong", &[&hs[1]], RegisterOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("registered by pid {}", std::process::id())),
        "{e}"
    );
    c.unregister("pingpong").unwrap();
    assert_eq!(
        c.lookup("pingpong").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn a_killed_owners_names_vanish_within_a_second_and_persistent_ones_stay() {
    let reg = Registry::start(&[]);
    let p = reg.path().to_str().unwrap();
    let mut a = Peer::spawn("owner", &[p, "transient"]);
    let mut b = Peer::spawn("owner", &[p, "kept", "persistent"]);
    assert_eq!(
        (a.recv(), b.recv()),
        ("registered".into(), "registered".into())
    );
    let mut c = Client::connect(reg.path()).unwrap();
    assert_eq!(c.list().unwrap().len(), 2);
    a.kill9();
    b.kill9();
    let t = Instant::now();
    while c.lookup("transient").is_ok() {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "the name outlived its process by 1 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let kept = c.lookup("kept").unwrap();
    assert!(kept.info.persistent);
    // The same user may take over a persistent name whose process is gone.
    let m = Memfd::create("heir", 4096).unwrap();
    c.register(
        "kept",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    assert_eq!(
        c.lookup("kept").unwrap().info.pid,
        std::process::id() as i32
    );
}

#[test]
fn a_dead_registry_is_a_prompt_error_and_owners_register_again_after_a_restart() {
    let mut reg = Registry::start(&[]);
    let m = Memfd::create("survivor", 4096).unwrap();
    let mut c = Client::connect(reg.path()).unwrap();
    c.register(
        "survivor",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    reg.kill();
    let t = Instant::now();
    let e = c.lookup("survivor").unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t.elapsed()
    );
    assert!(e.to_string().contains("closed the connection"), "{e}");
    let e = Client::connect(reg.path()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    reg.restart(&[]);
    let mut fresh = Client::connect(reg.path()).unwrap();
    assert!(
        fresh.list().unwrap().is_empty(),
        "a restarted registry starts empty"
    );
    assert_eq!(c.reconnect().unwrap(), 1);
    assert_eq!(
        fresh.lookup("survivor").unwrap().info.pid,
        std::process::id() as i32
    );
}

#[test]
fn another_uid_is_refused_unless_a_rule_admits_it() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    // nobody must be able to reach the socket: a directory others may enter (not write).
    let without = Registry::start(&[]);
    let with = Registry::start(&["shared/=65534"]);
    for r in [&without, &with] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&r.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let m = Memfd::create("mine", 4096).unwrap();
    for r in [&without, &with] {
        let mut c = Client::connect(r.path()).unwrap();
        c.register(
            "shared/a",
            &[&Handle::memfd(&m).unwrap()],
            RegisterOptions::default(),
        )
        .unwrap();
        c.register(
            "private/b",
            &[&Handle::memfd(&m).unwrap()],
            RegisterOptions::default(),
        )
        .unwrap();
        std::mem::forget(c); // keep the names for the strangers
    }
    let ask = |r: &Registry, name: &str| {
        let mut p = Peer::spawn_as(NOBODY, "stranger", &[r.path().to_str().unwrap(), name]);
        let out = (p.recv(), p.recv());
        p.finish();
        out
    };
    // Without a rule the socket is 0600: nobody cannot even connect. With one it is 0666 and
    // the rules decide.
    let mut p = Peer::spawn_as(
        NOBODY,
        "stranger",
        &[without.path().to_str().unwrap(), "shared/a"],
    );
    assert_eq!(
        p.recv(),
        "connect PermissionDenied",
        "nobody reached a registry without rules"
    );
    p.finish();
    let (lookup, register) = ask(&with, "shared/a");
    assert_eq!(lookup, "lookup Ok(())");
    assert!(
        register.contains("PermissionDenied") && register.contains("look up only"),
        "{register}"
    );
    let (lookup, _) = ask(&with, "private/b");
    assert!(
        lookup.contains("PermissionDenied") && lookup.contains("no rule"),
        "{lookup}"
    );
}

#[test]
fn eight_clients_of_ten_thousand_lookups_and_garbage_leave_the_server_serving_without_fd_leaks() {
    let reg = Registry::start(&[]);
    let m = Memfd::create("load", 4096).unwrap();
    let mut c = Client::connect(reg.path()).unwrap();
    c.register(
        "load",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    let before = reg.server_fds();
    let n = std::env::var("SHMKIT_REGISTRY_LOOKUPS").unwrap_or_else(|_| "10000".into());
    let p = reg.path().to_str().unwrap();
    let mut clients: Vec<Peer> = (0..8).map(|_| Peer::spawn("load", &[p, &n])).collect();
    // Meanwhile: garbage, a truncated frame, a huge length, fds where none belong, and a
    // client that starts a frame and goes silent.
    let raw = |bytes: &[u8]| {
        let mut s = UnixStream::connect(reg.path()).unwrap();
        let _ = s.write_all(bytes);
        s
    };
    let _garbage = raw(b"GET / HTTP/1.1\r\n\r\n");
    let _huge = raw(b"SHMH\x01\x00\x00\x00\xff\xff\xff\x7f");
    let _cut = raw(b"SHMH\x01\x00\x00\x00\x10\x00\x00\x00\x02\x00");
    let silent = raw(b"SHM");
    {
        let s = UnixStream::connect(reg.path()).unwrap();
        let e = EventFd::new().unwrap();
        // A lookup carrying a handle: refused, the connection closed.
        shmkit::handle::send(&s, &[&Handle::eventfd(&e).unwrap()], b"\x02\x01\x00x").unwrap();
    }
    for cl in clients.iter_mut() {
        assert_eq!(cl.recv(), "done");
    }
    for cl in clients {
        cl.finish();
    }
    // The silent client is closed after the frame time (2 s).
    let t = Instant::now();
    loop {
        let mut b = [0u8; 1];
        silent
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        match std::io::Read::read(&mut &silent, &mut b) {
            Ok(0) => break,
            _ if t.elapsed() > Duration::from_secs(5) => panic!("a silent client was never closed"),
            _ => {}
        }
    }
    drop((_garbage, _huge, _cut, silent));
    // Still serving, and holding no more fds than before.
    assert_eq!(c.lookup("load").unwrap().handles.len(), 1);
    let t = Instant::now();
    while reg.server_fds() > before {
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "server fds {} > {before}",
            reg.server_fds()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_same_connection_may_replace_and_a_bad_name_is_answered_without_losing_the_connection() {
    let reg = Registry::start(&[]);
    let m = Memfd::create("replace", 4096).unwrap();
    let mut c = Client::connect(reg.path()).unwrap();
    c.register(
        "p",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions { persistent: true },
    )
    .unwrap();
    // Another process of the same user may not take a live connection's name, nor remove it.
    let mut other = Client::connect(reg.path()).unwrap();
    let h = Handle::memfd(&m).unwrap();
    assert_eq!(
        other
            .register("p", &[&h], RegisterOptions::default())
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        other.unregister("p").unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    // The owner replaces its own; a reconnect (a new connection) registers it again.
    c.register("p", &[&h], RegisterOptions { persistent: true })
        .unwrap();
    assert_eq!(c.reconnect().unwrap(), 1);
    // The object's size now, not at registration: it grew.
    m.fd();
    rustix::fs::ftruncate(m.fd(), 8192).unwrap();
    assert_eq!(other.lookup("p").unwrap().handles[0].size(), 8192);
    // A name the protocol refuses is an answer, and the connection stays.
    let e = other.lookup(&"x".repeat(300)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(other.list().is_ok());
    // Forever is a timeout too.
    let t = Instant::now();
    let (_c, e) = registry::wait_for(reg.path(), "p", Duration::MAX).unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(e.info.name, "p");
}

#[test]
fn a_hung_registry_is_a_timeout_not_a_hang() {
    let mut reg = Registry::start(&[]);
    let mut c = Client::connect(reg.path()).unwrap();
    c.set_timeout(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(reg.server.as_ref().unwrap().pid()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    // Stopped for real before the request goes.
    let stat = || std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).unwrap();
    let t = Instant::now();
    while !stat().contains(") T ") {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "not stopped: {}",
            stat()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let t = Instant::now();
    let e = c.list().unwrap_err();
    let took = t.elapsed();
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // The late answer (to `list`) is not taken for the next call's: the client connected
    // again, so a lookup gets a lookup's answer.
    assert_eq!(c.lookup("nothing").unwrap_err().kind(), ErrorKind::NotFound);
    reg.kill();
}

#[test]
fn a_long_list_comes_in_pages_and_the_bounds_say_what_is_full() {
    let reg = Registry::start(&[":stored=512"]);
    let m = Memfd::create("many", 4096).unwrap();
    let h = Handle::memfd(&m).unwrap();
    let mut c = Client::connect(reg.path()).unwrap();
    for i in 0..300 {
        let name = format!("{i:03}{}", "n".repeat(197));
        c.register(&name, &[&h], RegisterOptions::default())
            .unwrap();
    }
    let all = c.list().unwrap();
    assert_eq!(all.len(), 300);
    assert!(all.windows(2).all(|w| w[0].name < w[1].name));
    // 512 handles in all (the default bound): 212 more fit, the next does not.
    for i in 0..212 {
        c.register(&format!("more{i}"), &[&h], RegisterOptions::default())
            .unwrap();
    }
    let e = c
        .register("one-too-many", &[&h], RegisterOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("bound of 512"), "{e}");
}

#[test]
fn a_client_outside_the_registrys_pid_namespace_is_served_with_pid_0() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root for a pid namespace");
        return;
    }
    let dir = std::env::temp_dir().join(common::unique("shmkit-registry-pidns"));
    std::fs::create_dir(&dir).unwrap();
    let d = dir.clone();
    let _gone = Cleanup(move || {
        let _ = std::fs::remove_dir_all(&d);
    });
    let sock = dir.join("registry.sock");
    // The registry in a pid namespace of its own: this process has no pid there.
    let mut server = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(std::env::current_exe().unwrap())
        .args(common::PEER_ARGS)
        .env("SHMKIT_PEER_ROLE", "server")
        .env("SHMKIT_PEER_ARGS", sock.to_str().unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _stop = Cleanup(move || {
        let _ = server.kill();
        let _ = server.wait();
    });
    let (mut c, _) = loop {
        match Client::connect(&sock) {
            Ok(c) => break (c, ()),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let m = Memfd::create("pidns", 4096).unwrap();
    c.register(
        "from-outside",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    assert_eq!(c.lookup("from-outside").unwrap().info.pid, 0);
}

#[test]
fn a_uid_that_does_not_read_its_answers_runs_out_of_its_own_handles_only() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    // 48 handles in flight per uid: three answers of 16.
    let reg = Registry::start(&["shared/=65534", ":flight=48"]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&reg.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let events: Vec<EventFd> = (0..16).map(|_| EventFd::new().unwrap()).collect();
    let handles: Vec<Handle> = events.iter().map(|e| Handle::eventfd(e).unwrap()).collect();
    let refs: Vec<&Handle> = handles.iter().collect();
    let mut me = Client::connect(reg.path()).unwrap();
    me.register("shared/many", &refs, RegisterOptions::default())
        .unwrap();
    let fds_before = reg.server_fds();
    let mut p = Peer::spawn_as(NOBODY, "hoarder", &[reg.path().to_str().unwrap(), "5"]);
    // Its first connection was closed with 48 handles unread: they still count.
    let refused = p.recv();
    assert!(
        refused.contains("uid 65534 has 48 handles sent to it and not read yet"),
        "{refused}"
    );
    // The registry's own user is served meanwhile, and the closed connection is still held.
    assert_eq!(me.lookup("shared/many").unwrap().handles.len(), 16);
    assert_eq!(
        reg.server_fds(),
        fds_before + 2,
        "the draining socket and the new client"
    );
    p.send("go");
    let read = p.recv();
    assert!(
        read.starts_with("read 3 entries, 48 handles, errors [")
            && read.matches("not read yet").count() == 2,
        "{read}"
    );
    assert_eq!(p.recv(), "after reading: Ok(16)");
    p.finish();
    // The draining socket was let go once read; the client's connections closed.
    let t = Instant::now();
    while reg.server_fds() != fds_before {
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{} fds",
            reg.server_fds()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_rule_admits_a_supplementary_group() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    let reg = Registry::start(&["team/=g:4242"]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&reg.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let m = Memfd::create("team", 4096).unwrap();
    let mut me = Client::connect(reg.path()).unwrap();
    me.register(
        "team/a",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    // nobody with 4242 as a supplementary group only (setpriv, util-linux), and without.
    let run = |groups: &str| {
        let out = std::process::Command::new("setpriv")
            .args([
                "--reuid", "65534", "--regid", "65534", "--groups", groups, "--",
            ])
            .arg(std::env::current_exe().unwrap())
            .args(common::PEER_ARGS)
            .env("SHMKIT_PEER_ROLE", "member")
            .env(
                "SHMKIT_PEER_ARGS",
                [reg.path().to_str().unwrap(), "team/a"].join("\u{1f}"),
            )
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("PEER "))
            .unwrap_or_else(|| panic!("no report: {text} {}", String::from_utf8_lossy(&out.stderr)))
            .to_string()
    };
    assert_eq!(run("4242"), "lookup Ok(1)");
    let other = run("4243");
    assert!(other.contains("is admitted to no name"), "{other}");
}

/// A listener that never accepts, its backlog (room for one connection) full: a socket path
/// where `connect` waits. Kept, and its directory removed, while the guard lives.
fn full_backlog() -> (PathBuf, impl Sized) {
    let dir = std::env::temp_dir().join(common::unique("shmkit-backlog"));
    std::fs::create_dir(&dir).unwrap();
    let d = dir.clone();
    let gone = Cleanup(move || {
        let _ = std::fs::remove_dir_all(&d);
    });
    let sock = dir.join("r.sock");
    let l = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    rustix::net::bind(&l, &rustix::net::SocketAddrUnix::new(&sock).unwrap()).unwrap();
    rustix::net::listen(&l, 0).unwrap();
    let first = UnixStream::connect(&sock).unwrap();
    // Dropped in this order: the connection, the listener, then the directory.
    (sock, (first, l, gone))
}

#[test]
fn connecting_to_a_full_backlog_times_out() {
    let (sock, _backlog) = full_backlog();
    let t = Instant::now();
    let e = Client::connect_within(&sock, Duration::from_millis(300)).unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains("backlog is full"), "{e}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn a_client_turned_away_at_connect_is_told_why() {
    let reg = Registry::start(&[":conns=1"]);
    let _first = Client::connect(reg.path()).unwrap();
    // The registry's answer must not be lost to the client's EPIPE: half the tries ask
    // only once the registry has turned the connection away (its send then fails), half at
    // once (the answer then comes as any answer).
    for i in 0..20 {
        let mut c = Client::connect(reg.path()).unwrap();
        if i % 2 == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        let e = c.lookup("x").unwrap_err();
        assert!(
            e.to_string()
                .contains("1 clients are connected (the bound)"),
            "{e}"
        );
    }
}

#[test]
fn a_list_gives_sizes_as_they_are_now_and_the_device() {
    let reg = Registry::start(&[]);
    let m = Memfd::create("grows", 4096).unwrap();
    let mut c = Client::connect(reg.path()).unwrap();
    c.register(
        "grows",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    rustix::fs::ftruncate(m.fd(), 3 * 4096).unwrap();
    let info = c.list().unwrap().remove(0);
    let st = rustix::fs::fstat(m.fd()).unwrap();
    assert_eq!(info.handles[0].size, 3 * 4096);
    assert_eq!(
        (info.handles[0].device, info.handles[0].inode),
        (st.st_dev, st.st_ino)
    );
    assert_eq!(c.lookup("grows").unwrap().info.handles[0].size, 3 * 4096);
}

#[test]
fn a_uid_gets_a_quarter_of_the_names() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a client as nobody");
        return;
    }
    let reg = Registry::start(&["pub/=65534,register", ":uidnames=3"]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&reg.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut p = Peer::spawn_as(
        NOBODY,
        "registrar",
        &[reg.path().to_str().unwrap(), "pub/", "5"],
    );
    let said = p.recv();
    p.finish();
    assert!(
        said.starts_with("registered 3, then Some(")
            && said.contains("uid 65534 has 3 names registered (the bound per user)"),
        "{said}"
    );
    // The registry's own user is not bounded so.
    let mut me = Client::connect(reg.path()).unwrap();
    for i in 0..5 {
        me.register(&format!("mine/{i}"), &[], RegisterOptions::default())
            .unwrap();
    }
}

#[test]
fn a_client_that_could_not_take_an_answers_fds_is_in_step_again_after() {
    let reg = Registry::start(&[]);
    let events: Vec<EventFd> = (0..16).map(|_| EventFd::new().unwrap()).collect();
    let handles: Vec<Handle> = events.iter().map(|e| Handle::eventfd(e).unwrap()).collect();
    let refs: Vec<&Handle> = handles.iter().collect();
    let mut me = Client::connect(reg.path()).unwrap();
    me.register("many", &refs, RegisterOptions::default())
        .unwrap();
    let mut p = Peer::spawn("short-of-fds", &[reg.path().to_str().unwrap()]);
    let short = p.recv();
    assert!(
        short.starts_with("short Err(") && short.contains("MSG_CTRUNC"),
        "{short}"
    );
    assert_eq!(p.recv(), "after [Ok(16), Ok(16), Ok(16)]");
    // Its name went with the connection it replaced, and came back on the new one.
    assert_eq!(me.lookup("keep").unwrap().info.pid, p.pid());
    p.send("bye");
    p.finish();
}

#[test]
fn a_call_refused_before_anything_was_sent_keeps_the_clients_names() {
    let reg = Registry::start(&[]);
    let m = Memfd::create("keep", 4096).unwrap();
    let mut c = Client::connect(reg.path()).unwrap();
    c.register(
        "keep",
        &[&Handle::memfd(&m).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    let events: Vec<EventFd> = (0..17).map(|_| EventFd::new().unwrap()).collect();
    let too_many: Vec<Handle> = events.iter().map(|e| Handle::eventfd(e).unwrap()).collect();
    let refs: Vec<&Handle> = too_many.iter().collect();
    let e = c
        .register("x", &refs, RegisterOptions::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let names: Vec<String> = c.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["keep"]);
    let mut other = Client::connect(reg.path()).unwrap();
    assert_eq!(other.lookup("keep").unwrap().handles.len(), 1);
}

#[test]
fn a_connect_interrupted_by_signals_still_times_out() {
    let (sock, _backlog) = full_backlog();
    let mut p = Peer::spawn("interrupted", &[sock.to_str().unwrap()]);
    let said = p.recv();
    p.finish();
    let (what, ms) = said.split_once(" after ").unwrap();
    assert_eq!(what, "Err(TimedOut)", "{said}");
    let ms: u64 = ms.strip_suffix(" ms").unwrap().parse().unwrap();
    assert!((250..3000).contains(&ms), "{said}");
}

#[test]
fn a_registry_out_of_fds_pauses_accepting_and_then_sleeps_again() {
    // 48 fds, and bounds that let connections run it out of them.
    let reg = Registry::start(&[":nofile=48", ":conns=1000"]);
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(UnixStream::connect(reg.path()).unwrap());
    }
    // The registry accepts what it can, then meets EMFILE and pauses.
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    // Served again, and idle: a pause that is over must not leave it polling without
    // sleeping (it spun at 100% of a CPU).
    let mut c = Client::connect(reg.path()).unwrap();
    assert_eq!(c.lookup("x").unwrap_err().kind(), ErrorKind::NotFound);
    drop(c);
    let pid = reg.server.as_ref().unwrap().pid();
    let cpu = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<u64> = after
            .split(' ')
            .skip(11)
            .take(2)
            .map(|x| x.parse().unwrap())
            .collect();
        f[0] + f[1]
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(1));
    // Clock ticks (100 a second): a spinning registry takes about 100.
    let used = cpu() - before;
    assert!(used < 30, "{used} ticks of CPU in an idle second");
}

#[test]
fn a_frame_time_of_duration_max_is_no_overflow() {
    let reg = Registry::start(&[":frame=max"]);
    let mut half = UnixStream::connect(reg.path()).unwrap();
    half.write_all(b"S").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut c = Client::connect(reg.path()).unwrap();
    assert_eq!(c.lookup("x").unwrap_err().kind(), ErrorKind::NotFound);
}
