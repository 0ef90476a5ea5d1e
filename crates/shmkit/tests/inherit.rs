//! Fork inheritance: what a child gets of each kind of segment in each mode. `fork` is the
//! point here, so these tests fork; the children do a few loads and stores and `_exit`.

mod common;
use common::{unique, Cleanup};
use shmkit::{AnonShared, Inherit, Mapping, PosixShm, SysvKey, SysvShm};
use std::sync::atomic::{AtomicU32, Ordering};

/// What the child saw: (mapped, value at 0 when the child started, value at 4 after the
/// parent's post-fork write), and what the parent saw at 8 after the child wrote 3 there.
fn fork_experiment(map: &Mapping) -> (bool, u32, u32, u32) {
    let cells: [&AtomicU32; 4] = [0, 4, 8, 12].map(|o| map.atomic_u32(o).unwrap());
    for c in &cells {
        c.store(0, Ordering::SeqCst);
    }
    cells[0].store(1, Ordering::SeqCst);
    // The child reports through a separate, always-shared page.
    let report = AnonShared::new(4096).unwrap();
    let r: [&AtomicU32; 4] = [0, 4, 8, 12].map(|o| report.atomic_u32(o).unwrap());
    let addr = map.as_ptr();
    let _forking = common::forking();
    // SAFETY: the child only calls mincore, uses atomics, sleeps briefly and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut v = 0u8;
        // SAFETY: mincore only inspects the range.
        let mapped = unsafe { libc::mincore(addr.cast(), 1, (&mut v as *mut u8).cast()) } == 0;
        r[0].store(mapped as u32, Ordering::SeqCst);
        if mapped {
            r[1].store(cells[0].load(Ordering::SeqCst), Ordering::SeqCst);
        }
        r[3].store(1, Ordering::SeqCst); // ready
        while r[3].load(Ordering::SeqCst) != 2 {
            std::hint::spin_loop();
        }
        if mapped {
            r[2].store(cells[1].load(Ordering::SeqCst), Ordering::SeqCst);
            cells[2].store(3, Ordering::SeqCst);
        }
        // SAFETY: ends the child without running destructors.
        unsafe { libc::_exit(0) };
    }
    assert!(pid > 0);
    while r[3].load(Ordering::SeqCst) != 1 {
        std::thread::yield_now();
    }
    cells[1].store(2, Ordering::SeqCst);
    r[3].store(2, Ordering::SeqCst);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    (
        r[0].load(Ordering::SeqCst) == 1,
        r[1].load(Ordering::SeqCst),
        r[2].load(Ordering::SeqCst),
        cells[2].load(Ordering::SeqCst),
    )
}

fn check_all_modes(map: &Mapping) {
    for (mode, want) in [
        (Inherit::Share, (true, 1, 2, 3)),
        (Inherit::Copy, (true, 1, 0, 0)),
        (Inherit::None, (false, 0, 0, 0)),
        (Inherit::Zero, (true, 0, 0, 0)),
        (Inherit::Share, (true, 1, 2, 3)), // and back
    ] {
        if cfg!(not(target_os = "linux")) && mode == Inherit::Zero {
            // macOS's minherit has no zero-fill mode: refused, and the mode is unchanged.
            let e = map.set_inherit(mode).unwrap_err();
            assert_eq!(e.kind(), shmkit::ErrorKind::Unsupported, "{e}");
            continue;
        }
        map.set_inherit(mode).unwrap();
        assert_eq!(map.inherit(), mode);
        assert_eq!(fork_experiment(map), want, "{mode} on {}", map.object());
    }
}

#[test]
fn anonymous_shared_memory_in_every_mode() {
    check_all_modes(&AnonShared::new(8192).unwrap());
}

#[test]
fn posix_shm_in_every_mode() {
    let name = format!("/{}", unique("shmkit-test-inherit"));
    let seg = PosixShm::create(&name, 4096).unwrap();
    check_all_modes(&seg);
}

#[test]
fn sysv_shm_in_every_mode() {
    let seg = SysvShm::create(SysvKey::Private, 4096).unwrap();
    check_all_modes(&seg);
    let _counting = common::counting_attachments();
    assert_eq!(
        seg.stat().unwrap().nattch,
        1,
        "children's attachments are gone"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn memfd_in_every_mode() {
    check_all_modes(&shmkit::Memfd::create("inherit", 4096).unwrap());
}

#[test]
fn copy_snapshots_every_page() {
    let seg = AnonShared::new(64 * 4096).unwrap();
    for p in 0..64 {
        seg.write(p * 4096, &(p as u64 + 1)).unwrap();
    }
    seg.set_inherit(Inherit::Copy).unwrap();
    let out = AnonShared::new(4096).unwrap();
    let sum = out.atomic_u64(0).unwrap();
    let forking = common::forking();
    // SAFETY: the child reads with copies and an atomic, then `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut s = 0;
        for p in 0..64 {
            s += seg.read::<u64>(p * 4096).unwrap_or(0);
            let _ = seg.write(p * 4096, &0u64);
        }
        sum.store(s, Ordering::SeqCst);
        // SAFETY: ends the child.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    drop(forking);
    assert_eq!(sum.load(Ordering::SeqCst), (1..=64).sum::<u64>());
    assert_eq!(
        seg.read::<u64>(63 * 4096).unwrap(),
        64,
        "the child's writes stayed private"
    );
}

#[test]
fn an_owner_copied_into_a_fork_child_does_not_remove_the_object() {
    let name = format!("/{}", unique("shmkit-test-forkown"));
    let _g = Cleanup({
        let n = name.clone();
        move || {
            let _ = PosixShm::unlink_name(&n);
        }
    });
    let seg = PosixShm::create(&name, 4096).unwrap();
    let _forking = common::forking();
    // SAFETY: the child drops its copy of the owner (munmap, no unlink) and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(seg);
        // SAFETY: ends the child.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    assert!(
        PosixShm::open(&name).is_ok(),
        "still there after the child's drop"
    );
    drop(seg);
    assert!(
        PosixShm::open(&name).is_err(),
        "removed by the creator in the creator"
    );
}

/// Mappings dropped by one thread while another forks: the fork handlers must never see a
/// mapping that is half gone (it once copied a just-unmapped range onto a snapshot placed at
/// the same address).
#[test]
fn forking_while_other_threads_drop_copy_mappings() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let m = AnonShared::new(4 * 4096).unwrap();
                    m.set_inherit(Inherit::Copy).unwrap();
                    m.write_at(0, b"x").unwrap();
                    drop(m);
                }
            })
        })
        .collect();
    for _ in 0..300 {
        let _forking = common::forking();
        // SAFETY: the child `_exit`s at once.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the child.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0);
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }
    stop.store(true, Ordering::Relaxed);
    for t in churn {
        t.join().unwrap();
    }
}
