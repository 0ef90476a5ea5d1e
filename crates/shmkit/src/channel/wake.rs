//! Sleeping and waking across processes without a system call on the busy path: a side that
//! waits raises a flag and sleeps on a futex word; a side that publishes looks at the flag
//! and makes the `FUTEX_WAKE` call only when it is up.
//!
//! Orderings (a Dekker pair): the publisher stores its position SeqCst (a swap: on x86 one
//! locked `xchg`, cheaper than a store and an `mfence`) and then reads the flag SeqCst; the
//! parker raises its flag SeqCst and then reads the position SeqCst (in `ready`). In the
//! single order of SeqCst operations one of the two comes first, so either the parker sees
//! the new position or the publisher sees the flag: a side that parks is always woken, and no
//! system call is made while nobody is parked.

use crate::platform::futex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest sleep of a waiting side: it then looks whether its peer is alive, and whether
/// the mapping is still whole.
pub(super) const NAP: Duration = Duration::from_millis(100);

/// A one-waiter flag's value while its waiter sleeps on a futex.
pub(super) const PARKED: u32 = 1;
/// Its value while the waiter sleeps on an eventfd (in `epoll`, say) that the other side
/// signals: no futex wake then.
pub(super) const ARMED: u32 = 2;

/// Stores `value` into the position `pos` (SeqCst, releasing what was written before it) and
/// wakes the one waiter parked on `seq` if its flag `parked` is up; returns the flag seen
/// ([`ARMED`]: the caller signals the waiter's eventfd).
#[inline]
pub(super) fn store_and_wake(
    pos: &AtomicU64,
    value: u64,
    parked: &AtomicU32,
    seq: &AtomicU32,
) -> u32 {
    pos.swap(value, Ordering::SeqCst);
    wake_if_parked(parked, seq)
}

/// The second half of `store_and_wake`, after a SeqCst store (a position, or an end's claim
/// let go of): wakes the one waiter if its flag `parked` is up; returns the flag seen.
#[inline]
pub(super) fn wake_if_parked(parked: &AtomicU32, seq: &AtomicU32) -> u32 {
    let flag = parked.load(Ordering::SeqCst);
    if flag != 0 && flag != ARMED {
        // Release: a parker that reads the new `seq` (Acquire) then sees what was stored.
        seq.fetch_add(1, Ordering::Release);
        futex::wake(seq, 1);
    }
    flag
}

/// Stores `value` into the position `pos` (SeqCst) and wakes every waiter of `seq` if their
/// shared flag `parked` is up (see [`wake_all_if_parked`]).
#[inline]
pub(super) fn store_and_wake_all(pos: &AtomicU64, value: u64, parked: &AtomicU32, seq: &AtomicU32) {
    pos.swap(value, Ordering::SeqCst);
    wake_all_if_parked(parked, seq);
}

/// After a SeqCst store: wakes every waiter parked on `seq` if the flag `parked` they share
/// is up, and lowers it. A waiter that still has to wait raises it again before it looks
/// (see [`park_shared`]), so lowering it loses nobody; a waiter that died parked leaves it up
/// only until the next wake, which costs one system call.
#[inline]
pub(super) fn wake_all_if_parked(parked: &AtomicU32, seq: &AtomicU32) {
    // The load first: while nobody is parked the flag's line is only read, never written.
    if parked.load(Ordering::SeqCst) != 0 && parked.swap(0, Ordering::SeqCst) != 0 {
        seq.fetch_add(1, Ordering::Release);
        futex::wake(seq, u32::MAX);
    }
}

/// Parks the one waiter of `seq` (flag `parked`) until woken, `deadline` or one nap, unless
/// `ready` (which reads the other side's position SeqCst) says there is something already:
/// checked after the flag is up, so no wake-up is lost.
pub(super) fn park(
    parked: &AtomicU32,
    seq: &AtomicU32,
    deadline: Option<Instant>,
    ready: impl Fn() -> bool,
) {
    parked.swap(PARKED, Ordering::SeqCst);
    sleep_unless(seq, deadline, ready);
    parked.store(0, Ordering::Relaxed);
}

/// As [`park`] for one of many waiters sharing the flag `parked`: the waker lowers it, so it
/// is left up here.
pub(super) fn park_shared(
    parked: &AtomicU32,
    seq: &AtomicU32,
    deadline: Option<Instant>,
    ready: impl Fn() -> bool,
) {
    parked.swap(1, Ordering::SeqCst);
    sleep_unless(seq, deadline, ready);
}

fn sleep_unless(seq: &AtomicU32, deadline: Option<Instant>, ready: impl Fn() -> bool) {
    // Acquire, and read before `ready`: if the waker's bump is seen here, so is its position
    // (it then returns at once); if not, the futex sees the bump and does not sleep, or the
    // wake that follows the bump wakes it.
    let s = seq.load(Ordering::Acquire);
    if !ready() {
        let nap = Instant::now() + NAP;
        futex::wait(seq, s, Some(deadline.map_or(nap, |d| d.min(nap))));
    }
}
