//! Experiments where `fork` is the point: the child does a few loads, stores and pipe writes,
//! then `_exit`s.

use super::Outcome;
use rustix::fd::{AsFd, OwnedFd};
use shmkit::{AnonShared, Inherit};
use std::sync::atomic::{AtomicU32, Ordering};

/// A forked child's exit status (waits for it).
pub(super) fn wait(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    let r = super::cleanup::reap(pid as u32, || unsafe { libc::waitpid(pid, &mut status, 0) });
    (r == pid && libc::WIFEXITED(status)).then(|| libc::WEXITSTATUS(status))
}

/// The article's first example: the child writes 10 through an anonymous shared mapping, the
/// parent reads 10.
pub fn anon_fork() -> Outcome {
    const NAME: &str = "anon-fork";
    let seg = match AnonShared::new(4096) {
        Ok(s) => s,
        Err(e) => return Outcome::error(NAME, "map anonymous shared memory", e),
    };
    let cell = seg.atomic_u32(0).expect("offset 0 of a page is aligned");
    let addr = seg.as_ptr() as usize;
    // SAFETY: fork; the child only stores to an atomic in a shared mapping and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        cell.store(10, Ordering::SeqCst);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        return Outcome::error(NAME, "fork", std::io::Error::last_os_error());
    }
    super::cleanup::child(pid as u32); // an interruption stops it too
    let status = wait(pid);
    let got = cell.load(Ordering::SeqCst);
    Outcome::new(
        NAME,
        format!("child {pid} wrote 10 at {addr:#x} (MAP_SHARED|MAP_ANONYMOUS)"),
        format!("parent read {got} at {addr:#x}"),
        "parent reads 10".into(),
        got == 10 && status == Some(0),
        serde_json::json!({ "child_pid": pid, "parent_read": got, "child_status": status }),
    )
}

/// What the child of an inheritance experiment reports.
#[derive(Debug, Clone, Copy)]
struct ChildView {
    mapped: bool,
    before_fork: Option<u32>,
    after_fork: Option<u32>,
}

/// One row of the `vm_inherit` table: the parent writes 1 before the fork and 2 after it;
/// the child reports what it sees and writes 3; the parent looks for the 3.
pub fn inherit(mode: Inherit) -> Outcome {
    let name = format!("inherit-{mode}");
    match run_inherit(mode) {
        Ok((child, parent_sees, status)) => {
            let (exp_mapped, exp_before, exp_after, exp_parent) = match mode {
                Inherit::Share => (true, Some(1), Some(2), 3),
                Inherit::Copy => (true, Some(1), Some(0), 0),
                Inherit::Zero => (true, Some(0), Some(0), 0),
                Inherit::None => (false, None, None, 0),
            };
            let show = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
            let observed = if child.mapped {
                format!(
                    "child saw {} (pre-fork) and {} (post-fork); parent then saw {}",
                    show(child.before_fork),
                    show(child.after_fork),
                    parent_sees
                )
            } else {
                format!("child: not mapped (mincore: ENOMEM); parent then saw {parent_sees}")
            };
            let expected = if exp_mapped {
                format!(
                    "child sees {} and {}; parent sees {}",
                    show(exp_before),
                    show(exp_after),
                    exp_parent
                )
            } else {
                format!("absent in the child; parent sees {exp_parent}")
            };
            let pass = child.mapped == exp_mapped
                && child.before_fork == exp_before
                && child.after_fork == exp_after
                && parent_sees == exp_parent
                && status == Some(0);
            Outcome::new(
                &name,
                format!(
                    "set inherit={mode}; wrote 1 before fork, 2 after; child writes 3 if mapped"
                ),
                observed,
                expected,
                pass,
                serde_json::json!({
                    "mode": mode.name(),
                    "child_mapped": child.mapped,
                    "child_saw_before_fork": child.before_fork,
                    "child_saw_after_fork": child.after_fork,
                    "parent_saw_child_write": parent_sees,
                    "child_status": status,
                }),
            )
        }
        Err(e) => Outcome::error(&name, &format!("inherit={mode} experiment"), e),
    }
}

fn run_inherit(mode: Inherit) -> Result<(ChildView, u32, Option<i32>), String> {
    let seg = AnonShared::new(4096).map_err(|e| e.to_string())?;
    let cells: [&AtomicU32; 3] = [0, 4, 8].map(|o| seg.atomic_u32(o).expect("aligned, in bounds"));
    cells[0].store(1, Ordering::SeqCst);
    seg.set_inherit(mode).map_err(|e| e.to_string())?;
    let pipe = || cloexec_pipe().map_err(|e| e.to_string());
    let (to_child_r, to_child_w) = pipe()?;
    let (to_parent_r, to_parent_w) = pipe()?;
    let addr = seg.as_ptr();

    // SAFETY: fork; the child runs only `child_side` (system calls and atomic accesses,
    // no allocation, no locks) and `_exit`s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The parent's ends, closed (a plain close(2)): with them open the child would hold
        // the write end of the pipe it reads, and wait forever on a parent that was killed.
        drop((to_child_w, to_parent_r));
        let code = child_side(addr, &cells, &to_child_r, &to_parent_w);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    super::cleanup::child(pid as u32); // an interruption stops it (it may wait on our pipe)
    drop((to_child_r, to_parent_w));
    let result = (|| -> Result<ChildView, String> {
        let first = read_u32s::<3>(&to_parent_r)?;
        // The child is now waiting for our next byte.
        super::cleanup::pause_point(&format!("inherit-{mode}"));
        cells[1].store(2, Ordering::SeqCst);
        rustix::io::write(&to_child_w, &[1]).map_err(|e| format!("pipe write: {e}"))?;
        let [after] = read_u32s::<1>(&to_parent_r)?;
        let mapped = first[0] == 1;
        let view = ChildView {
            mapped,
            before_fork: mapped.then_some(first[1]),
            after_fork: mapped.then_some(after),
        };
        Ok(view)
    })();
    drop(to_child_w);
    let status = wait(pid);
    let view = result?;
    Ok((view, cells[2].load(Ordering::SeqCst), status))
}

/// The child's whole life. Returns its exit code.
fn child_side(
    addr: *mut u8,
    cells: &[&AtomicU32; 3],
    from_parent: &OwnedFd,
    to_parent: &OwnedFd,
) -> i32 {
    let page = rustix::param::page_size();
    let mut vec = 0u8;
    // mincore fails with ENOMEM on an unmapped range: how the child tells that an
    // Inherit::None mapping is absent without touching it. (Its vector is of unsigned char on
    // Linux, of char on macOS: one byte either way.)
    // SAFETY: mincore only inspects the range; `vec` has room for one page's byte.
    let mapped =
        unsafe { libc::mincore(addr.cast(), page, std::ptr::from_mut(&mut vec).cast()) } == 0;
    let before = if mapped {
        cells[0].load(Ordering::SeqCst)
    } else {
        0
    };
    if !write_u32s(to_parent, &[mapped as u32, before, 0]) {
        return 1;
    }
    let mut b = [0u8; 1];
    if rustix::io::read(from_parent, &mut b) != Ok(1) {
        return 1;
    }
    let after = if mapped {
        cells[1].load(Ordering::SeqCst)
    } else {
        0
    };
    if mapped {
        cells[2].store(3, Ordering::SeqCst);
    }
    if !write_u32s(to_parent, &[after]) {
        return 1;
    }
    0
}

/// A pipe whose ends are close-on-exec: made so atomically with `pipe2` on Linux; macOS has
/// no `pipe2`, and there the flag is set just after (the tour starts no other process
/// meanwhile: it forks here, and its peers are spawned from this thread).
fn cloexec_pipe() -> rustix::io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(target_os = "linux")]
    {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (r, w) = rustix::pipe::pipe()?;
        for end in [&r, &w] {
            rustix::io::fcntl_setfd(end, rustix::io::FdFlags::CLOEXEC)?;
        }
        Ok((r, w))
    }
}

fn write_u32s(fd: impl AsFd, vals: &[u32]) -> bool {
    let mut buf = [0u8; 12];
    for (i, v) in vals.iter().enumerate() {
        buf[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
    }
    // Writes of at most PIPE_BUF bytes to a pipe are atomic: one call suffices.
    rustix::io::write(fd, &buf[..vals.len() * 4]) == Ok(vals.len() * 4)
}

fn read_u32s<const N: usize>(fd: impl AsFd) -> Result<[u32; N], String> {
    let mut buf = vec![0u8; N * 4];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(&fd, &mut buf[got..]) {
            Ok(0) => return Err("the child exited before reporting".into()),
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("pipe read: {e}")),
        }
    }
    let mut out = [0u32; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u32::from_ne_bytes(buf[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
    }
    Ok(out)
}
