//! A fork never finds shmkit's table locked for good: 10,000 forks from a parent whose other
//! threads create and drop mappings all the time, each child creating a mapping of its own.
//! Its own test binary, so that no other test registered the fork handlers first (they used to
//! be registered by the first `set_inherit` only, and a child forked while another thread held
//! the table's lock hung on its first mapping). `SHMKIT_FORKS` sets the count (the sanitizer
//! runs use fewer: a fork costs ~6 ms under ThreadSanitizer).

mod common;

use shmkit::AnonShared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn ten_thousand_forks_while_other_threads_map_and_unmap() {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let m = AnonShared::new(64 << 10).unwrap();
                    m.write_at(0, b"x").unwrap();
                }
            });
        }
        let forks: u32 = std::env::var("SHMKIT_FORKS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        let mut hung = 0;
        let started = Instant::now();
        for _ in 0..forks {
            // SAFETY: the child maps, unmaps and `_exit`s.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                let ok = AnonShared::new(4096)
                    .and_then(|m| m.write_at(0, b"child"))
                    .is_ok();
                // SAFETY: ends the child without the parent's destructors.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            let status = common::wait_child(pid, Duration::from_secs(10));
            match status {
                None => hung += 1,
                Some(st) => assert_eq!(st, 0, "a child failed: status {st:#x}"),
            }
            if hung > 0 {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        assert_eq!(hung, 0, "a child hung");
        eprintln!("{forks} forks in {:?}", started.elapsed());
    });
}
