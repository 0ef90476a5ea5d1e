//! Create-or-open: exactly one process initializes a region, the others wait until it is
//! ready, and a dead initializer does not wedge them (the Boost.Interprocess open-or-create
//! hang).

use super::block::{magic, VERSION};
use crate::error::{Error, ErrorKind, Result};
use crate::platform::{self, futex};
use crate::Mapping;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const READY: u32 = magic(b"shkR");
/// `state` while someone initializes: this bit, and a generation in the low bits so that two
/// processes taking over from the same dead initializer cannot both win.
const BUSY: u32 = 0x8000_0000;
/// How long a waiter sleeps between checks that the initializer is alive.
const POLL: Duration = Duration::from_millis(20);

/// How `init_once` got a ready region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// This process ran the initializer.
    Initialized,
    /// Another process had initialized it (maybe while we waited).
    Opened,
    /// The initializer (this pid) died half-way; this process ran the initializer again.
    TookOver {
        /// The process that died.
        from_pid: i32,
    },
}

/// Runs `init` on the region exactly once across every process that maps `map`, using a
/// 16-byte header at `offset` (a multiple of 8): the first caller runs `init`, the others
/// sleep until it is done. If the initializer dies half-way, a waiter notices within 20 ms and
/// runs `init` itself ([`InitOutcome::TookOver`]), so `init` must work on a half-written
/// region. A waiter gives up with [`ErrorKind::TimedOut`] after `timeout` if a live
/// initializer does not finish.
///
/// `tag` and `version` name the layout that `init` builds; an opener that finds another tag
/// or version refuses with [`ErrorKind::BadLayout`] instead of misreading the region.
///
/// The header needs a zero-filled region to start from, which is what every fresh segment is.
/// Layout (`#[repr(C)]`, little-endian `u32`s): `state` (0 fresh, `0x8000_0000 | generation`
/// while initializing, `"shkR"` when ready), the initializer's pid, `tag`, shmkit's layout
/// version | `version` << 16. A process in another pid namespace looks dead to the liveness
/// check: initialize from one namespace.
///
/// # Errors
/// As [`Semaphore::init`](super::Semaphore::init) for the header; [`ErrorKind::BadLayout`] for another
/// `tag` or `version` (or no init header there); [`ErrorKind::TimedOut`] as said above; the error
/// of `init` itself.
///
/// ```
/// use shmkit::{AnonShared, sync::{init_once, InitOutcome, Semaphore, WakePolicy}};
/// use std::time::Duration;
/// let seg = AnonShared::new(4096)?;
/// let build = |m: &shmkit::Mapping| Semaphore::init(m, 16, 1, WakePolicy::Any).map(|_| ());
/// let first = init_once(&seg, 0, *b"demo", 1, Duration::from_secs(5), build)?;
/// let second = init_once(&seg, 0, *b"demo", 1, Duration::from_secs(5), build)?;
/// assert_eq!((first, second), (InitOutcome::Initialized, InitOutcome::Opened));
/// let sem = Semaphore::open(&seg, 16)?;
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn init_once(
    map: &Mapping,
    offset: usize,
    tag: [u8; 4],
    version: u16,
    timeout: Duration,
    init: impl Fn(&Mapping) -> Result<()>,
) -> Result<InitOutcome> {
    let b = super::block::Block::<4>::at(map, offset, "init_once")?;
    let [state, pid_word, tag_word, version_word] = b.words;
    let tag = u32::from_le_bytes(tag);
    let want_version = VERSION | (u32::from(version) << 16);
    let deadline = super::deadline(timeout);
    let me = rustix::process::getpid().as_raw_nonzero().get();
    // The generation we are waiting on, when we first saw it, and its initializer.
    let mut watching: Option<(u32, Instant)> = None;
    loop {
        map.check_state_for("init_once")?;
        let s = state.load(Ordering::Acquire);
        if s == READY {
            let (t, v) = (
                tag_word.load(Ordering::Relaxed),
                version_word.load(Ordering::Relaxed),
            );
            if (t, v) != (tag, want_version) {
                return Err(Error::new(
                    ErrorKind::BadLayout,
                    "init_once",
                    map.object(),
                    format!(
                        "the region at offset {offset} holds layout {:?} version {} (shmkit \
                         layout {}), expected {:?} version {version} (shmkit layout {VERSION})",
                        String::from_utf8_lossy(&t.to_le_bytes()),
                        v >> 16,
                        v & 0xffff,
                        String::from_utf8_lossy(&tag.to_le_bytes()),
                    ),
                ));
            }
            return Ok(InitOutcome::Opened);
        }
        let takeover = if s == 0 {
            Some(None)
        } else if s & BUSY != 0 {
            // Whatever a peer stored: a pid out of range names no process (and must not reach
            // kill(2), where -1 means "every process").
            let pid = valid_pid(pid_word.load(Ordering::Relaxed));
            let since = match watching {
                Some((g, t)) if g == s => t,
                _ => {
                    let now = Instant::now();
                    watching = Some((s, now));
                    now
                }
            };
            // No pid: the winner of the CAS has not stored it yet. Give it one poll period to
            // do so; longer means it died in between (or a peer stored garbage).
            let gone = match pid {
                Some(pid) => !platform::process_alive(pid),
                None => since.elapsed() > POLL,
            };
            if gone {
                Some(Some(pid.unwrap_or(0)))
            } else {
                None
            }
        } else {
            return Err(Error::new(
                ErrorKind::BadLayout,
                "init_once",
                map.object(),
                format!(
                    "the init header at offset {offset} holds {s:#010x}: not a shmkit init header"
                ),
            ));
        };
        if let Some(from) = takeover {
            let next = BUSY | (s.wrapping_add(1) & !BUSY).max(1);
            if state
                .compare_exchange(s, next, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                pid_word.store(me as u32, Ordering::Relaxed);
                // If `init` fails or panics, let the next caller try at once (not after its
                // whole timeout, the initializer being alive): reset and wake the waiters.
                let reset = ResetOnDrop(state);
                init(map)?;
                std::mem::forget(reset);
                tag_word.store(tag, Ordering::Relaxed);
                version_word.store(want_version, Ordering::Relaxed);
                // Release: a process that reads READY sees the whole initialized region.
                state.store(READY, Ordering::Release);
                futex::wake(state, i32::MAX as u32);
                return Ok(match from {
                    None => InitOutcome::Initialized,
                    Some(pid) => InitOutcome::TookOver { from_pid: pid },
                });
            }
            continue;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(Error::new(
                ErrorKind::TimedOut,
                "init_once",
                map.object(),
                format!(
                    "process {} has been initializing the region for over {timeout:?}",
                    pid_word.load(Ordering::Relaxed)
                ),
            )
            .with_hint(
                "it is alive but has not finished; wait longer or find out why it is stuck",
            ));
        }
        let wake_at = deadline.map_or(now + POLL, |d| d.min(now + POLL));
        futex::wait(state, s, Some(wake_at));
    }
}

/// Marks an initialization abandoned (state 0) and wakes the waiters, unless forgotten.
struct ResetOnDrop<'a>(&'a std::sync::atomic::AtomicU32);

impl Drop for ResetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
        futex::wake(self.0, i32::MAX as u32);
    }
}

/// A pid word from shared memory as a pid that can name a process: 1 to `PID_MAX_LIMIT`
/// (2²², the kernel's ceiling for `kernel.pid_max`).
fn valid_pid(word: u32) -> Option<i32> {
    (1..=1 << 22).contains(&word).then_some(word as i32)
}
