//! Everything the tour creates is written down here before it exists, so that an interrupted
//! run (Ctrl-C, SIGTERM, SIGHUP) or a failed step still removes it all.
//!
//! The normal path removes objects by dropping their owning values; this list is the safety
//! net. Removing something twice is harmless (the second attempt finds nothing), and nothing
//! is removed that this process did not create: System V segments are checked against their
//! creator pid before removal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone)]
enum Item {
    Posix(String),
    /// A System V key whose segment this process is about to create.
    SysvKey(i32),
    Child(u32),
    /// A directory this process made (the registry experiments' socket).
    #[cfg(target_os = "linux")]
    Dir(std::path::PathBuf),
}

static ITEMS: Mutex<Vec<Item>> = Mutex::new(Vec::new());

fn lock() -> std::sync::MutexGuard<'static, Vec<Item>> {
    ITEMS.lock().unwrap_or_else(|p| p.into_inner())
}

fn push(item: Item) {
    lock().push(item);
}

/// Creates a POSIX object named `name` by calling `create`, with the name written down first.
/// The interrupt handler waits while `create` runs, so that it never removes a name before the
/// object exists and then exits leaving it made.
pub fn posix<T>(name: &str, create: impl FnOnce() -> T) -> T {
    creating(Item::Posix(name.to_string()), create)
}

/// Creates a System V segment for `key` by calling `create`, as [`posix`] does.
pub fn sysv_key<T>(key: i32, create: impl FnOnce() -> T) -> T {
    creating(Item::SysvKey(key), create)
}

fn creating<T>(item: Item, create: impl FnOnce() -> T) -> T {
    let mut items = lock();
    items.push(item);
    create() // `create` writes nothing down itself: the lock is not taken twice
}

/// Creates a directory by calling `create`, with its path written down first.
#[cfg(target_os = "linux")]
pub fn dir<T>(path: &std::path::Path, create: impl FnOnce() -> T) -> T {
    creating(Item::Dir(path.to_path_buf()), create)
}

/// A peer process, killed if the tour is interrupted.
pub fn child(pid: u32) {
    push(Item::Child(pid));
}

/// Reaps the child `pid` by calling `reap` (a `waitpid`), first taking it off the list: the
/// handler must never kill a pid once its child is gone, as the pid may then be another
/// process's. Waiting with `WNOWAIT` first keeps the exited child a zombie, holding its pid,
/// until it is off the list; the handler is not held up while the child runs.
pub fn reap<T>(pid: u32, reap: impl FnOnce() -> T) -> T {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::waitid(
            rustix::process::WaitId::Pid(p),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT,
        );
    }
    let mut items = lock();
    items.retain(|i| !matches!(i, Item::Child(c) if *c == pid));
    reap()
}

/// Set by the first interruption; from then on the experiments' results are not reported.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Held while the report is printed and until the process exits: an interruption waits for
/// it, so the output is either whole or absent.
static REPORT: Mutex<()> = Mutex::new(());

/// Installs the handling of SIGINT, SIGTERM and SIGHUP: a thread that, at the first of them,
/// cleans up and exits (the signal handler itself only wakes it, as signal-hook arranges:
/// removing objects and killing peers is no work for a signal handler).
pub fn install_handler() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        eprintln!(
            "shmkit tour: warning: cannot catch Ctrl-C; an interrupted tour leaves its objects"
        );
        return;
    };
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            interrupted();
        }
    });
}

fn interrupted() -> ! {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // Wait for a report being printed; then stop the peers and remove what was created.
    let _report = REPORT.lock().unwrap_or_else(|p| p.into_inner());
    // Held until the process exits: nothing more is created or written down meanwhile.
    let mut items = lock();
    let removed = remove_all(std::mem::take(&mut *items));
    eprintln!(
        "shmkit tour: interrupted; removed {removed} object{} it had created",
        if removed == 1 { "" } else { "s" }
    );
    std::process::exit(crate::exit::INTERRUPTED as i32);
}

/// Called when every experiment has ended, before the report: returns the guard to hold
/// while printing it, or never returns if the run was interrupted (the handler, which may
/// have stopped a peer mid-step, exits with 130 and no report).
pub fn begin_report() -> std::sync::MutexGuard<'static, ()> {
    let guard = REPORT.lock().unwrap_or_else(|p| p.into_inner());
    if INTERRUPTED.load(Ordering::SeqCst) {
        drop(guard);
        loop {
            std::thread::park(); // the handler exits the process
        }
    }
    guard
}

/// Removes whatever is left; returns how many objects were removed.
pub fn run() -> usize {
    let items = std::mem::take(&mut *lock());
    remove_all(items)
}

fn remove_all(items: Vec<Item>) -> usize {
    let me = std::process::id() as i32;
    let mut removed = 0;
    for item in items.iter().rev() {
        match item {
            Item::Child(pid) => {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(*pid as i32).expect("pid > 0"),
                    rustix::process::Signal::KILL,
                );
            }
            Item::Posix(name) => {
                if shmkit::PosixShm::unlink_name(name).is_ok() {
                    removed += 1;
                }
            }
            #[cfg(target_os = "linux")]
            Item::Dir(path) => {
                if std::fs::remove_dir_all(path).is_ok() {
                    removed += 1;
                }
            }
            Item::SysvKey(key) => {
                // The key may now belong to a segment marked for removal (key 0) or to
                // nothing; look for segments with this key that we created.
                if let Ok(id) = shmkit::sysv::shm::key_id(shmkit::SysvKey::Key(*key)) {
                    if let Ok(st) = shmkit::sysv::shm::stat_id(id) {
                        if st.creator_pid == me && shmkit::sysv::shm::remove_id(id).is_ok() {
                            removed += 1;
                        }
                    }
                }
            }
        }
    }
    removed
}

/// A test aid: with `SHMKIT_TOUR_PAUSE_AT=<point>` in the environment the tour stops at that
/// point (its objects exist), says so on stderr and sleeps, so that a test can interrupt it
/// there and check that nothing is left behind.
pub fn pause_point(point: &str) {
    if std::env::var("SHMKIT_TOUR_PAUSE_AT").is_ok_and(|p| p == point) {
        eprintln!("shmkit tour: paused at {point}");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaped_child_is_off_the_list_so_its_pid_is_never_signalled() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        child(pid);
        assert!(lock()
            .iter()
            .any(|i| matches!(i, Item::Child(p) if *p == pid)));
        assert!(reap(pid, || c.wait()).unwrap().success());
        assert!(!lock()
            .iter()
            .any(|i| matches!(i, Item::Child(p) if *p == pid)));
    }
}
