//! Regressions of the soundness review: undefined behaviour, hangs and silent wrong results
//! that safe code could reach. Each test failed before its fix. Fork is used where fork
//! semantics are the point (the child does little and `_exit`s); other second processes are
//! this test binary run again as a peer.
// Linux only: what this file tests (memfds, futex-based sync, /proc, util-linux tools, the
// OS queues and semaphores) is absent from the crate elsewhere.
#![cfg(target_os = "linux")]

mod common;
use common::{say, unique, Cleanup};
use shmkit::posix_sem::NamedSemaphore;
use shmkit::sync::{Event, Mutex, Semaphore, WakePolicy};
use shmkit::sysv::sem::SemSet;
use shmkit::{AnonShared, ErrorKind, FileSegment, Inherit, Memfd, PosixShm, SysvKey};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn page() -> usize {
    rustix::param::page_size()
}

/// Forks; the child runs `child` and `_exit`s with its code (101 if it panicked). Returns the
/// child's raw wait status, or panics if it has not ended within 20 s (a hang).
fn fork_and_wait(child: impl FnOnce() -> i32) -> i32 {
    let _f = common::forking();
    // SAFETY: the child only runs `child` and `_exit`s; glibc makes malloc usable there.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child without running the parent's destructors or atexit handlers.
        unsafe { libc::_exit(code) };
    }
    common::wait_child(pid, Duration::from_secs(20)).unwrap_or_else(|| panic!("child {pid} hangs"))
}

fn exited(code: i32) -> i32 {
    code << 8
}

fn describe(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit code {}", libc::WEXITSTATUS(status))
    }
}

/// Runs this binary's `peer` test with `role`, optionally under `wrapper` (e.g. `unshare -m`
/// plus a shell snippet that ends in `exec "$0" ...`), and returns its status and PEER lines.
fn run_peer(
    role: &str,
    args: &[&str],
    shell_prefix: Option<&str>,
) -> (std::process::ExitStatus, Vec<String>) {
    let exe = std::env::current_exe().unwrap();
    let peer_args = common::PEER_ARGS;
    let mut cmd = match shell_prefix {
        None => {
            let mut c = Command::new(&exe);
            c.args(peer_args);
            c
        }
        Some(prefix) => {
            let mut c = Command::new("unshare");
            c.args(["-m", "-i", "--propagation", "private", "sh", "-c"])
                .arg(format!("{prefix} && exec \"$0\" \"$@\""))
                .arg(&exe)
                .args(peer_args);
            c
        }
    };
    let out = cmd
        .env("SHMKIT_PEER_ROLE", role)
        .env("SHMKIT_PEER_ARGS", args.join("\u{1f}"))
        .output()
        .expect("run the peer");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("PEER ").map(String::from))
        .collect();
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    (out.status, lines)
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    match role.as_str() {
        // A Copy mapping whose snapshot cannot be made (the address-space limit forbids it) is
        // absent in the child, and the child is told so.
        "copy-snapshot-fails" => {
            let size = 256 << 20;
            let seg = AnonShared::new(size).unwrap();
            seg.write_at(0, b"parent").unwrap();
            seg.set_inherit(Inherit::Copy).unwrap();
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let vm_kib: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap();
            let limit = vm_kib * 1024 + (64 << 20);
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: setrlimit with a valid struct.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rl) }, 0);
            let st = fork_and_wait(|| {
                let mut b = [0u8; 6];
                match seg.read_at(0, &mut b) {
                    Err(e) if e.kind() == ErrorKind::NotInherited => 0,
                    Err(_) => 2,
                    Ok(()) => 3,
                }
            });
            say(describe(st));
        }
        // A SIGBUS that a process sends (here: to itself, with a forged address inside a
        // guarded mapping) is not a fault of ours: it goes where it would have gone without
        // shmkit (here, Rust's own stack-overflow handler, which lets the process live on)
        // and the mapping is left alone.
        "forged-sigbus" => {
            let seg = PosixShm::create(&args[0], 4 * page()).unwrap();
            let other = PosixShm::open(&args[0]).unwrap();
            // SAFETY: a zeroed siginfo_t is valid; the fields are set at their Linux x86-64 /
            // AArch64 offsets (si_signo 0, si_errno 4, si_code 8, si_addr 16).
            unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let raw = &mut info as *mut libc::siginfo_t as *mut u8;
                *(raw as *mut i32) = libc::SIGBUS;
                *(raw.add(8) as *mut i32) = -1; // SI_QUEUE
                *(raw.add(16) as *mut usize) = seg.as_ptr() as usize + page();
                if args[1] == "sigqueue" {
                    libc::syscall(
                        libc::SYS_rt_tgsigqueueinfo,
                        libc::getpid(),
                        libc::gettid(),
                        libc::SIGBUS,
                        &info,
                    );
                } else {
                    libc::kill(libc::getpid(), libc::SIGBUS);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
            seg.write_at(page(), b"shared").unwrap();
            let mut b = [0u8; 6];
            other.read_at(page(), &mut b).unwrap();
            say(format!(
                "truncated {} shared {}",
                seg.was_truncated(),
                &b == b"shared"
            ));
        }
        // A handler installed before shmkit's gets the SIGBUS that are not shmkit's, under the
        // signal mask it asked for.
        "chained-handler" => {
            static CALLS: AtomicU32 = AtomicU32::new(0);
            static USR1_BLOCKED: AtomicU32 = AtomicU32::new(0);
            extern "C" fn mine(_: i32, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
                CALLS.fetch_add(1, Ordering::SeqCst);
                // SAFETY: querying the mask with valid pointers.
                unsafe {
                    let mut cur: libc::sigset_t = std::mem::zeroed();
                    libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
                    if libc::sigismember(&cur, libc::SIGUSR1) == 1 {
                        USR1_BLOCKED.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            // SAFETY: installing a valid SA_SIGINFO handler.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = mine as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaddset(&mut sa.sa_mask, libc::SIGUSR1);
                libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
            }
            let _seg = PosixShm::create(&args[0], page()).unwrap(); // installs shmkit's
                                                                    // SAFETY: sends SIGBUS to this thread.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    libc::getpid(),
                    libc::gettid(),
                    libc::SIGBUS,
                )
            };
            say(format!(
                "calls {} usr1-blocked {}",
                CALLS.load(Ordering::SeqCst),
                USR1_BLOCKED.load(Ordering::SeqCst)
            ));
        }
        // A store into a sparse file on a full tmpfs is a full file system, not a truncation,
        // and nothing that was written before is lost.
        "tmpfs-full" => {
            let path = format!("{}/segment", args[0]);
            let seg = FileSegment::create(&path, 64 * page()).unwrap();
            let mut failed = None;
            for i in 0..64 {
                if let Err(e) = seg.write_at(i * page(), &[0xa5; 64]) {
                    failed = Some((i, e));
                    break;
                }
            }
            let (i, e) = failed.expect("the tmpfs never filled up");
            say(format!("kind {:?} at page {i}", e.kind()));
            say(format!("message {e}"));
            let file = std::fs::read(&path).unwrap();
            let kept = (0..i).all(|p| file[p * page()..p * page() + 64] == [0xa5; 64]);
            say(format!("earlier pages kept {kept}"));
        }
        // GETALL on a set whose id was reused by a larger set (kernel.sem_next_id, in a private
        // IPC namespace) returns the new set's values, without overrunning a buffer sized for
        // the old one.
        "getall-reused-id" => {
            let old = SemSet::create(SysvKey::Private, 3).unwrap();
            let id = old.id();
            old.set_keep(true);
            old.remove().unwrap();
            std::fs::write("/proc/sys/kernel/sem_next_id", id.to_string()).unwrap();
            let new = SemSet::create(SysvKey::Private, 200).unwrap();
            assert_eq!(new.id(), id, "sem_next_id did not reuse the id");
            new.set(199, 7).unwrap();
            let all = old.get_all().unwrap();
            say(format!("len {} last {}", all.len(), all[all.len() - 1]));
        }
        other => panic!("unknown role {other}"),
    }
}

// ---- 1. Inherit::None, and Copy whose snapshot failed, in a fork child ----

#[test]
fn a_mapping_not_inherited_fails_in_the_fork_child_and_its_address_is_never_touched() {
    let len = 16 * page();
    let seg = AnonShared::new(len).unwrap();
    seg.write_at(0, b"parent").unwrap();
    seg.set_inherit(Inherit::None).unwrap();
    let st = fork_and_wait(|| {
        // The range is free here: a new mapping of the same size may land right on it.
        let fresh = AnonShared::new(len).unwrap();
        let mut b = [0u8; 6];
        let kind = |r: shmkit::Result<()>| r.err().map(|e| e.kind());
        if kind(seg.read_at(0, &mut b)) != Some(ErrorKind::NotInherited) {
            return 1;
        }
        if kind(seg.write_at(0, b"stale!")) != Some(ErrorKind::NotInherited) {
            return 2;
        }
        if seg.atomic_u32(0).is_ok() || seg.view::<u32>(0).is_ok() || seg.check().is_ok() {
            return 3;
        }
        if kind(seg.set_inherit(Inherit::Share)) != Some(ErrorKind::NotInherited) {
            return 4;
        }
        fresh.read_at(0, &mut b).unwrap();
        if b != [0; 6] {
            return 5;
        }
        0
    });
    assert_eq!(st, exited(0), "child: {}", describe(st));
    let mut b = [0u8; 6];
    seg.read_at(0, &mut b).unwrap();
    assert_eq!(&b, b"parent");
}

#[test]
fn a_copy_mapping_whose_snapshot_failed_is_not_inherited() {
    let (status, lines) = run_peer("copy-snapshot-fails", &[], None);
    assert!(status.success(), "peer: {status}");
    assert_eq!(lines, ["exit code 0"]);
}

// ---- 2. Mutex guards: !Send (a compile_fail doctest), not unlocked from a fork child,
//         and an unlock that a scribbled word refused does not strand the waiters ----

#[test]
fn a_guard_dropped_in_a_fork_child_does_not_unlock_the_parents_lock() {
    let seg = AnonShared::new(4096).unwrap();
    let m = Mutex::init(&seg, 0).unwrap();
    let g = m.lock().unwrap().guard();
    let _f = common::forking();
    // SAFETY: the child drops its copy of the guard, tries the lock and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(g);
        let code = match m.try_lock() {
            Ok(None) => 0,    // still the parent's
            Ok(Some(_)) => 3, // the drop released it
            Err(_) => 4,
        };
        // SAFETY: ends the child.
        unsafe { libc::_exit(code) };
    }
    let st = common::wait_child(pid, Duration::from_secs(20)).expect("child hangs");
    assert_eq!(st, exited(0), "child: {}", describe(st));
    std::thread::scope(|s| {
        let held = s.spawn(|| m.try_lock().unwrap().is_none()).join().unwrap();
        assert!(
            held,
            "the parent's lock was released by the child's copy of the guard"
        );
    });
    drop(g);
    std::thread::scope(|s| {
        assert!(s.spawn(|| m.try_lock().unwrap().is_some()).join().unwrap());
    });
}

#[test]
fn a_shared_mapping_stays_guarded_in_a_fork_child() {
    let name = format!("/{}", unique("shmkit-test-childguard"));
    let _c = Cleanup(|| {
        let _ = PosixShm::unlink_name(&name);
    });
    let seg = PosixShm::create(&name, 4 * page()).unwrap();
    let (r, w) = rustix::pipe::pipe().unwrap();
    let _f = common::forking();
    // SAFETY: the child waits for a byte, reads, and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut b = [0u8; 1];
        let _ = rustix::io::read(&r, &mut b);
        let code = match seg.read_at(2 * page(), &mut [0u8; 8]) {
            Err(e) if e.kind() == ErrorKind::Truncated => 0,
            Err(_) => 2,
            Ok(()) => 3,
        };
        // SAFETY: ends the child.
        unsafe { libc::_exit(code) };
    }
    common::sh(
        "truncate",
        &["-s", &page().to_string(), &format!("/dev/shm{name}")],
    );
    rustix::io::write(&w, b"g").unwrap();
    let st = common::wait_child(pid, Duration::from_secs(20)).expect("child hangs");
    assert_eq!(st, exited(0), "child: {}", describe(st));
}

#[test]
fn sync_primitives_and_atomics_report_a_truncation() {
    let name = format!("/{}", unique("shmkit-test-synctrunc"));
    let _c = Cleanup(|| {
        let _ = PosixShm::unlink_name(&name);
    });
    let p = page();
    let seg = PosixShm::create(&name, 2 * p).unwrap();
    let sem = Semaphore::init(&seg, p, 0, WakePolicy::Any).unwrap();
    let m = Mutex::init(&seg, p + 64).unwrap();
    let ev = Event::init(&seg, p + 128).unwrap();
    let counter = seg.atomic_u32(p + 256).unwrap();
    counter.store(5, Ordering::SeqCst);
    std::thread::scope(|s| {
        // A waiter with no deadline, asleep when the object shrinks.
        let waiter = s.spawn(|| {
            let t = Instant::now();
            (sem.wait().map_err(|e| e.kind()), t.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        common::sh(
            "truncate",
            &["-s", &p.to_string(), &format!("/dev/shm{name}")],
        );
        assert_eq!(sem.post().unwrap_err().kind(), ErrorKind::Truncated);
        let (r, took) = waiter.join().unwrap();
        assert_eq!(r, Err(ErrorKind::Truncated));
        assert!(
            took < Duration::from_secs(3),
            "the waiter noticed after {took:?}"
        );
    });
    assert_eq!(
        seg.atomic_u32(p + 256).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    assert_eq!(m.lock().err().unwrap().kind(), ErrorKind::Truncated);
    assert_eq!(ev.set().unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(sem.try_wait().unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(seg.check().unwrap_err().kind(), ErrorKind::Truncated);
}

// ---- 8. SIGBUS: full tmpfs, signals that are not faults, chaining ----

#[test]
fn a_full_tmpfs_is_reported_as_no_space_not_as_a_truncation() {
    let dir = std::env::temp_dir().join(unique("shmkit-test-tmpfs"));
    std::fs::create_dir(&dir).unwrap();
    let _c = Cleanup(|| {
        let _ = std::fs::remove_dir(&dir);
    });
    let d = dir.to_str().unwrap();
    // A 64 KiB tmpfs, in a mount namespace of the peer's own: nothing outside sees it.
    let prefix = format!("mount -t tmpfs -o size=64k shmkit-test '{d}'");
    let (status, lines) = run_peer("tmpfs-full", &[d], Some(&prefix));
    assert!(status.success(), "peer: {status} {lines:?}");
    assert!(lines[0].starts_with("kind NoSpace at page 16"), "{lines:?}");
    assert!(
        lines[1].contains("tmpfs that holds the object is full"),
        "{lines:?}"
    );
    assert!(lines[1].contains("64 KiB in all"), "{lines:?}");
    assert_eq!(lines[2], "earlier pages kept true");
}

#[test]
fn a_sigbus_sent_by_a_process_is_not_taken_for_a_fault() {
    for how in ["sigqueue", "kill"] {
        let name = format!("/{}", unique("shmkit-test-forged"));
        let _c = Cleanup(|| {
            let _ = PosixShm::unlink_name(&name);
        });
        let (status, lines) = run_peer("forged-sigbus", &[&name, how], None);
        assert!(status.success(), "{how}: {status} {lines:?}");
        assert_eq!(lines, ["truncated false shared true"], "{how}");
    }
}

#[test]
fn a_handler_installed_before_shmkit_gets_foreign_sigbus_under_its_mask() {
    let name = format!("/{}", unique("shmkit-test-chain"));
    let _c = Cleanup(|| {
        let _ = PosixShm::unlink_name(&name);
    });
    let (status, lines) = run_peer("chained-handler", &[&name], None);
    assert!(status.success(), "peer: {status}");
    assert_eq!(lines, ["calls 1 usr1-blocked 1"]);
}

// ---- 9. add_seals keeps the inheritance ----

#[test]
fn add_seals_keeps_the_inheritance_mode() {
    let mut m = Memfd::create("shmkit-test-seal-inherit", 4096).unwrap();
    m.set_inherit(Inherit::None).unwrap();
    m.add_seals(shmkit::Seals::WRITE).unwrap();
    assert_eq!(m.inherit(), Inherit::None);
}

// ---- 10. Timeouts the clock cannot express wait forever ----

#[test]
fn a_truncated_named_semaphore_reports_truncated_instead_of_sigbus() {
    let name = format!("/{}", unique("shmkit-test-semtrunc"));
    let sem = NamedSemaphore::create(&name, 1).unwrap();
    common::sh(
        "truncate",
        &["-s", "0", &format!("/dev/shm/sem.{}", &name[1..])],
    );
    assert_eq!(sem.post().unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(sem.try_wait().unwrap_err().kind(), ErrorKind::Truncated);
    // A waiter whose first access meets the truncation sleeps on a private page that no post
    // reaches: it must find out by itself (found by review: it hung).
    let name = format!("/{}", unique("shmkit-test-semtrunc-wait"));
    let sem = NamedSemaphore::create(&name, 0).unwrap();
    common::sh(
        "truncate",
        &["-s", "0", &format!("/dev/shm/sem.{}", &name[1..])],
    );
    let t = Instant::now();
    assert_eq!(sem.wait().unwrap_err().kind(), ErrorKind::Truncated);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

// ---- 14. GETALL after the id was reused by a larger set ----

#[test]
fn getall_sizes_its_buffer_from_the_set_as_it_is_now() {
    // A private IPC namespace: sem_next_id and the sets made there touch nothing of the host.
    let (status, lines) = run_peer("getall-reused-id", &[], Some("true"));
    assert!(status.success(), "peer: {status} {lines:?}");
    assert_eq!(lines, ["len 200 last 7"]);
}

// ---- 3. Concurrent copies (ThreadSanitizer reports a plain memcpy here) ----
