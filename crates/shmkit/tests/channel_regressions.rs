//! Regression tests of the defects an adversarial review of the channels found (broadcast,
//! MPSC, the wake protocol, spsc's quiet give-back, claims, timeouts, fork children). Each
//! test is named after its defect and failed while the defect was there (each was run against
//! the code before its fix). Every test is bounded in time (watchdog threads, timeouts) and
//! removes every /dev/shm object it creates.
#![cfg(target_os = "linux")]

mod common;
use common::stream::private_spsc;
use common::{say, Cleanup, Peer};
use shmkit::channel::layout::{MpscLayout, SpscLayout, BROADCAST_PLACES, LINE, MPSC_PLACES};
use shmkit::channel::mpsc::{self, MpscConfig};
use shmkit::channel::{broadcast, spsc, RecvError, SendError, SpscConfig, Wait};
use shmkit::{AnonShared, ErrorKind, PosixShm};
use std::mem::offset_of;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// MPSC slot word, as `layout.rs` documents it: `tag << 26 | state << 24 | pid`.
fn mword(pos: u64, state: u64, pid: u32) -> u64 {
    ((pos & ((1 << 38) - 1)) << 26) | (state << 24) | u64::from(pid)
}

/// An endpoint claim's first word: `pid | state << 32` (state 1 = held).
fn claim_word(pid: u32, state: u32) -> u64 {
    u64::from(pid) | (u64::from(state) << 32)
}

/// Aborts the whole test process if `f` has not returned within `limit`: no reproducer may
/// hang the run.
fn watchdog<T>(limit: Duration, what: &'static str, f: impl FnOnce() -> T) -> T {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let t = Instant::now();
        while t.elapsed() < limit {
            if d.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("watchdog: {what} still running after {limit:?}: aborting");
        std::process::abort();
    });
    let r = f();
    done.store(true, Ordering::Relaxed);
    r
}

/// Makes this thread SCHED_FIFO (root only; otherwise it stays as it is).
fn realtime() {
    // SAFETY: sets this thread's own scheduling policy.
    unsafe {
        let p = libc::sched_param { sched_priority: 1 };
        if libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) != 0 {
            eprintln!("(not real-time: {})", std::io::Error::last_os_error());
        }
    }
}

/// A POSIX segment of `size` bytes, removed when the cleanup is dropped.
fn segment(size: usize) -> (PosixShm, Cleanup<impl FnMut()>) {
    common::stream::segment("shmkit-test-regress", size)
}

fn mpsc_geometry(config: MpscConfig) -> (usize, usize, u64) {
    let slots_at = MPSC_PLACES + (config.max_producers * 16).div_ceil(LINE) * LINE;
    let slots = config.slots();
    (slots_at, config.capacity / slots, slots as u64)
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    let seg = PosixShm::open(&args[0]).unwrap();
    match role.as_str() {
        // An MPSC producer killed between its two compare-and-swaps: the slot's word names
        // it (busy for `tail`), `tail` not moved on yet. Waits to be killed.
        "mpsc-claim-no-tail" => {
            let _tx = mpsc::Sender::open(&seg, 0).unwrap();
            let (slots_at, slot_size, slots): (usize, usize, u64) = (
                args[1].parse().unwrap(),
                args[2].parse().unwrap(),
                args[3].parse().unwrap(),
            );
            let tail = seg.atomic_u64(offset_of!(MpscLayout, tail)).unwrap();
            let pos = tail.load(Ordering::Acquire);
            let w = seg
                .atomic_u64(slots_at + (pos % slots) as usize * slot_size)
                .unwrap();
            w.compare_exchange(
                mword(pos, 0, 0),
                mword(pos, 1, std::process::id()),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .unwrap();
            say("ready");
            common::cue();
        }
        // An MPSC consumer that receives for ever, as fast as it can.
        "mpsc-consume-forever" => {
            let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
            say("ready");
            let mut buf = Vec::new();
            loop {
                match rx.recv_timeout(&mut buf, Duration::from_secs(20)) {
                    Ok(_) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        // A process that has used up its file descriptors tries to take the SPSC producer
        // end that a live process holds.
        "spsc-open-without-fds" => {
            // SAFETY: plain libc calls on this process's own descriptors and limits.
            unsafe {
                let mut lim: libc::rlimit = std::mem::zeroed();
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
                lim.rlim_cur = 64;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                while libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) >= 0 {}
            }
            let verdict = match spsc::Sender::open(&seg, 0) {
                Ok(tx) => {
                    std::mem::forget(tx);
                    "taken".to_string()
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => "refused".to_string(),
                Err(e) => format!("error {:?}", e.kind()),
            };
            say(verdict);
        }
        // An SPSC producer caught between the two steps of `Claim::claim`: its compare-and-swap
        // of the claim word (its pid, held) done, its start time not stored yet. Waits.
        "spsc-claim-cas-only" => {
            let word = seg.atomic_u64(offset_of!(SpscLayout, producer)).unwrap();
            let seen = word.load(Ordering::Acquire);
            // The claim's first step, as the layout documents it: state 3 ("claiming") until
            // the start time is written.
            word.compare_exchange(
                seen,
                claim_word(std::process::id(), 3),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .unwrap();
            say("ready");
            common::cue();
        }
        // Holds the SPSC producer end, sending nothing, until killed.
        "spsc-hold-producer" => {
            let _tx = spsc::Sender::open(&seg, 0).unwrap();
            say("ready");
            common::cue();
        }
        _ => panic!("unknown role {role}"),
    }
}

/// MPSC: a producer killed after its claim's compare-and-swap and before it moved `tail` on.
/// The consumer skips its slot (freeing it for the next lap) but nobody moves `tail`, and
/// `claim` then finds at `tail` a slot freed for a lap later, which it calls corrupt: every
/// send of every producer fails from then on and the consumer waits for ever.
#[test]
fn mpsc_producer_killed_between_claim_and_tail_wedges_every_later_send() {
    let config = MpscConfig::new(1024).max_message(40);
    let (seg, _gone) = segment(config.size());
    mpsc::create(&seg, 0, config).unwrap();
    let (slots_at, slot_size, slots) = mpsc_geometry(config);
    let mut p = Peer::spawn(
        "mpsc-claim-no-tail",
        &[
            seg.name(),
            &slots_at.to_string(),
            &slot_size.to_string(),
            &slots.to_string(),
        ],
    );
    assert_eq!(p.recv(), "ready");
    p.kill9();
    // A live producer, idle until the consumer has skipped the dead one's slot.
    let mut tx = mpsc::Sender::open(&seg, 0).unwrap();
    let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    watchdog(Duration::from_secs(30), "mpsc wedge", || {
        // The consumer notices the dead claimer and skips its slot, as designed.
        let r = rx.recv_timeout(&mut buf, Duration::from_millis(400));
        assert!(matches!(r, Err(RecvError::Timeout)), "{r:?}");
        assert_eq!(rx.skipped(), 1, "the dead producer's slot was skipped");
        // The live producer now sends: "costs one message and wedges nothing".
        let sent = tx.send_timeout(b"after", Duration::from_secs(2));
        assert!(sent.is_ok(), "send after the skip: {sent:?}");
        rx.recv_timeout(&mut buf, Duration::from_secs(2)).unwrap();
        assert_eq!(buf, b"after");
    });
}

/// MPSC: a consumer killed between freeing a slot (`Shared::free`, which may make a futex
/// system call to wake producers) and storing `head`. A producer waiting for room claims the
/// freed slot for the next lap at once; the next consumer's `open` finds at `head` a slot of
/// the next lap that is not free, stops its scan, and every receive is `Corrupt` from then on.
/// The state is made as the kill leaves it: the consumer's last `head` store undone.
#[test]
fn mpsc_consumer_killed_between_free_and_head_store_wedges_the_next_consumer() {
    let config = MpscConfig::new(256).max_message(40); // 4 slots
    let seg = AnonShared::new(config.size()).unwrap();
    mpsc::create(&seg, 0, config).unwrap();
    let head = seg.atomic_u64(offset_of!(MpscLayout, head)).unwrap();
    let mut tx = mpsc::Sender::open(&seg, 0).unwrap();
    for i in 0..4u8 {
        tx.try_send(&[i; 8]).unwrap();
    }
    let mut buf = Vec::new();
    {
        let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
        rx.recv(&mut buf).unwrap();
        assert_eq!(buf, [0; 8]);
        // Slot 0 is freed for position 4; the consumer dies before `head = 1` lands.
    }
    head.store(0, Ordering::Relaxed);
    // The producer that waited for room takes slot 0 for position 4.
    tx.try_send(&[4; 8]).unwrap();
    let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
    watchdog(Duration::from_secs(30), "mpsc consumer", || {
        for want in 1..5u8 {
            let got = rx.recv_timeout(&mut buf, Duration::from_secs(1));
            assert!(
                got.is_ok(),
                "message {want} after the consumer's death: {got:?}"
            );
            assert_eq!(buf, [want; 8]);
        }
    });
}

/// The same defect with a real `kill -9`: a consumer process receiving from a channel that
/// producer threads keep full (they park, so every free makes a futex call, and a SIGKILL is
/// delivered when that call returns: inside the window). The next consumer finds `Corrupt`.
#[test]
fn mpsc_consumer_killed_between_free_and_head_store_wedges_the_next_consumer_kill9() {
    let config = MpscConfig::new(256).max_message(40).max_producers(4);
    let (seg, _gone) = segment(config.size());
    mpsc::create(&seg, 0, config).unwrap();
    let stop = AtomicBool::new(false);
    let mut corrupt = None;
    watchdog(Duration::from_secs(120), "mpsc kill -9 consumer", || {
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let (seg, stop) = (&seg, &stop);
                scope.spawn(move || {
                    let mut tx = mpsc::Sender::open(seg, 0).unwrap();
                    tx.set_wait(Wait::Block);
                    while !stop.load(Ordering::Relaxed) {
                        match tx.send_timeout(&[7; 40], Duration::from_millis(50)) {
                            Ok(())
                            | Err(SendError::Timeout)
                            | Err(SendError::ConsumerGone { .. }) => {}
                            // A wedged channel makes producers fail too; the consumer says so.
                            Err(SendError::Corrupt(_)) => {
                                std::thread::sleep(Duration::from_millis(1))
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                });
            }
            let mut buf = Vec::new();
            for trial in 0..150u64 {
                let mut p = Peer::spawn("mpsc-consume-forever", &[seg.name()]);
                assert_eq!(p.recv(), "ready");
                std::thread::sleep(Duration::from_micros(2000 + (trial * 7919) % 5000));
                p.kill9();
                let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
                for _ in 0..8 {
                    match rx.recv_timeout(&mut buf, Duration::from_secs(2)) {
                        Ok(_) => {}
                        Err(RecvError::Corrupt(why)) => {
                            let st = mpsc::stat(&seg, 0).unwrap();
                            let (slots_at, slot_size, slots) = mpsc_geometry(config);
                            let w = seg
                                .atomic_u64(slots_at + (st.head % slots) as usize * slot_size)
                                .unwrap()
                                .load(Ordering::Relaxed);
                            let why = format!(
                                "{why}: head {} tail {}, slot word at head serves position {} \
                                 in state {}",
                                st.head,
                                st.tail,
                                w >> 26,
                                (w >> 24) & 3
                            );
                            corrupt = Some((trial, why));
                            break;
                        }
                        Err(e) => panic!("{e:?}"),
                    }
                }
                drop(rx);
                if corrupt.is_some() {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    });
    assert!(
        corrupt.is_none(),
        "after a consumer was killed, the next one gets Corrupt for good: {corrupt:?}"
    );
}

/// MPSC `next_msg`: a given-up slot is freed and the loop goes on to the next one without a
/// look at the deadline. A hostile producer that marks every slot given up makes one
/// `recv_timeout(Duration::ZERO)` walk the whole ring (here 2^23 slots) before it returns;
/// one that re-marks each freed slot for its next lap keeps the call going for ever (seen:
/// `recv_timeout(10 ms)` returning after 190 ms, 498,572 slots later, with the churning
/// thread competing for a CPU).
#[test]
fn mpsc_recv_timeout_not_honoured_while_a_hostile_producer_gives_up_slot_after_slot() {
    let config = MpscConfig::new(1 << 28).max_message(8).max_producers(1); // 2^23 slots
    let seg = AnonShared::new(config.size()).unwrap();
    mpsc::create(&seg, 0, config).unwrap();
    let (slots_at, slot_size, slots) = mpsc_geometry(config);
    let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
    rx.set_wait(Wait::Spin);
    for i in 0..slots {
        seg.atomic_u64(slots_at + i as usize * slot_size)
            .unwrap()
            .store(mword(i, 3, 1), Ordering::Relaxed);
    }
    let mut buf = Vec::new();
    let (r, took) = watchdog(Duration::from_secs(60), "mpsc given-up slots", || {
        let t = Instant::now();
        let r = rx.recv_timeout(&mut buf, Duration::ZERO);
        (r, t.elapsed())
    });
    eprintln!(
        "recv_timeout(ZERO) -> {r:?} after {took:?}, skipped {}",
        rx.skipped()
    );
    assert!(
        took < Duration::from_millis(100),
        "recv_timeout(Duration::ZERO) returned after {took:?} ({} slots skipped)",
        rx.skipped()
    );
}

/// Broadcast `next_msg`/`wait_for`: `wait_for` returns as soon as the mark it watches
/// changes, before it ever looks at the deadline, and `next_msg` then waits again. A hostile
/// producer that flips the next slot's mark between two "not written yet" values keeps
/// `recv_timeout(10 ms)` going for as long as it flips.
#[test]
fn broadcast_recv_timeout_not_honoured_while_a_hostile_producer_flips_a_mark() {
    let config = broadcast::BroadcastConfig::new(512)
        .max_message(48)
        .max_consumers(1);
    let seg = AnonShared::new(config.size()).unwrap();
    broadcast::create(&seg, 0, config).unwrap();
    let mark = seg.atomic_u64(BROADCAST_PLACES + LINE).unwrap(); // slot 0: message 0
    let mut rx = broadcast::Receiver::open(&seg, 0).unwrap();
    rx.set_wait(Wait::Spin);
    let stop = AtomicBool::new(false);
    let took = watchdog(Duration::from_secs(30), "broadcast mark churn", || {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // The hostile side is not preempted by the machine's other work (when this
                // runs as root): the churn is steady, as a hostile process on its own CPU.
                realtime();
                let t = Instant::now();
                while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(5) {
                    // 0 (never used) and 1 (message 0 being written): both below whole(0).
                    for v in [0, 1] {
                        mark.store(v, Ordering::Relaxed);
                        for _ in 0..64 {
                            std::hint::spin_loop();
                        }
                    }
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            let mut buf = Vec::new();
            let t = Instant::now();
            let r = rx.recv_timeout(&mut buf, Duration::from_millis(10));
            let took = t.elapsed();
            stop.store(true, Ordering::Relaxed);
            eprintln!("recv_timeout(10 ms) -> {r:?} after {took:?}");
            took
        })
    });
    assert!(
        took < Duration::from_millis(500),
        "recv_timeout(10 ms) returned after {took:?}"
    );
}

/// Every wait: the deadline (`backoff::Deadline`) is fixed only at its first look, after the
/// first 1024 polls of the spin, and the adaptive spin yields the CPU from poll 64 on. On a
/// busy machine each `sched_yield` hands the CPU to a runnable thread for its whole slice,
/// so `recv_timeout(Duration::ZERO)` on an empty channel takes ~960 slices, not ~0.
#[test]
fn timeout_zero_is_not_honoured_on_a_busy_cpu() {
    let seg = private_spsc(SpscConfig::new(4096));
    let _tx = spsc::Sender::open(&seg, 0).unwrap();
    let mut rx = spsc::Receiver::open(&seg, 0).unwrap();
    let stop = AtomicBool::new(false);
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let took = watchdog(Duration::from_secs(120), "timeout under load", || {
        std::thread::scope(|scope| {
            for _ in 0..2 * cpus {
                scope.spawn(|| {
                    let t = Instant::now();
                    while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(60) {
                        std::hint::spin_loop();
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(50));
            let mut buf = Vec::new();
            let t = Instant::now();
            let r = rx.recv_timeout(&mut buf, Duration::ZERO);
            let took = t.elapsed();
            stop.store(true, Ordering::Relaxed);
            assert!(matches!(r, Err(RecvError::Timeout)), "{r:?}");
            took
        })
    });
    assert!(
        took < Duration::from_millis(200),
        "recv_timeout(Duration::ZERO) took {took:?} with the CPUs busy"
    );
}

/// Fork children: `Slot::commit` (and `commit_later`, `Sender::publish`, `Msg`'s drop,
/// `Receiver::give_back`) never look at the fork count. A child forked while the parent holds
/// a reserved slot commits it through the parent's end: a second producer writing the
/// parent's ring and moving its `head`.
#[test]
fn fork_child_commits_through_the_parents_end() {
    let seg = private_spsc(SpscConfig::new(4096));
    let mut tx = spsc::Sender::open(&seg, 0).unwrap();
    let mut rx = spsc::Receiver::open(&seg, 0).unwrap();
    let head = seg.atomic_u64(offset_of!(SpscLayout, head)).unwrap();
    {
        let mut slot = tx.reserve(10).unwrap();
        let _f = common::forking();
        // SAFETY: the child only writes into the mapping (no allocation) and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let _ = slot.write_at(0, b"from child");
            slot.commit();
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        assert_eq!(common::wait_child(pid, Duration::from_secs(10)), Some(0));
        // The parent changes its mind: nothing is sent.
        let _ = slot;
    }
    let mut buf = Vec::new();
    let r = rx.try_recv(&mut buf);
    assert!(
        matches!(r, Err(RecvError::Empty)),
        "the fork child sent through the parent's end: {r:?} {:?}, head {}",
        String::from_utf8_lossy(&buf),
        head.load(Ordering::Relaxed)
    );
}

/// As above for the consumer: a child forked while the parent holds a received `Msg` gives
/// its bytes back to the producer when it drops it (the parent still reads them).
#[test]
fn fork_child_gives_back_the_parents_message() {
    let seg = private_spsc(SpscConfig::new(4096));
    let mut tx = spsc::Sender::open(&seg, 0).unwrap();
    let mut rx = spsc::Receiver::open(&seg, 0).unwrap();
    let tail = seg.atomic_u64(offset_of!(SpscLayout, tail)).unwrap();
    tx.send(b"hello").unwrap();
    let m = rx.recv_in_place().unwrap();
    let _f = common::forking();
    // SAFETY: the child only drops the message (atomic stores) and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        drop(m);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(0) };
    }
    assert_eq!(common::wait_child(pid, Duration::from_secs(10)), Some(0));
    let given_back = tail.load(Ordering::Relaxed);
    drop(m);
    assert_eq!(
        given_back, 0,
        "the fork child gave back bytes of a message the parent still holds"
    );
}

/// Liveness (`Claim::alive`, `platform::process_start`): any failure to read
/// `/proc/PID/stat` is taken for "dead", EMFILE included. A process that has run out of file
/// descriptors takes over the producer end that a live process holds: two producers on one
/// SPSC ring. (The MPSC consumer would likewise skip slots that live producers are writing,
/// and consumers report a live producer as crashed.)
#[test]
fn a_live_holder_is_taken_for_dead_by_a_process_out_of_file_descriptors() {
    let config = SpscConfig::new(4096);
    let (seg, _gone) = segment(config.size());
    spsc::create(&seg, 0, config).unwrap();
    let _tx = spsc::Sender::open(&seg, 0).unwrap();
    let mut p = Peer::spawn("spsc-open-without-fds", &[seg.name()]);
    let verdict = p.recv();
    p.finish();
    assert_eq!(
        verdict, "refused",
        "a process out of fds took the producer end this live process holds"
    );
}

/// SPSC quiet give-back (`Receiver::release`): the bytes of the last message are given back
/// with a plain Release store after a Relaxed look at the producer's flag, with no fence in
/// between. A producer that raises its flag (SeqCst) and looks at `tail` (SeqCst) in that
/// same instant can miss the store while the consumer misses the flag (store buffering): the
/// producer sleeps though the room it waits for is there, and nobody wakes it. It wakes at
/// its 100 ms nap, or never before the consumer next waits: "a side that parks is always
/// woken" does not hold.
///
/// Each round puts the ring where the last message's bytes are exactly what the producer
/// needs: six 24-byte messages (192 bytes, below a quarter of the capacity: no early
/// give-back) end at offset 600 of 1024, so a 504-byte message needs 424 bytes of padding,
/// its 512-byte record and a word: 944 bytes, free only once all six are given back. The
/// consumer has read five; the producer starts its blocking send as the consumer reads the
/// sixth, at a swept offset in time.
#[test]
fn spsc_quiet_give_back_loses_the_producers_wake_up() {
    use std::sync::atomic::AtomicU32;
    let seg = private_spsc(SpscConfig::new(1024));
    let mut tx = spsc::Sender::open(&seg, 0).unwrap();
    let mut rx = spsc::Receiver::open(&seg, 0).unwrap();
    tx.set_wait(Wait::Block);
    let head = seg.atomic_u64(offset_of!(SpscLayout, head)).unwrap();
    let mut buf = Vec::new();
    let mut stall = None;
    let rounds = 20_000u32;
    watchdog(Duration::from_secs(300), "quiet give-back", || {
        for round in 0..rounds {
            // Bring `head` to offset 408, the channel empty and every byte given back.
            loop {
                let off = head.load(Ordering::Relaxed) % 1024;
                if off == 408 {
                    break;
                }
                let d = (408 + 1024 - off) % 1024;
                let r = d.min(512).min(1024 - off);
                tx.try_send(&vec![0; r as usize - 8]).unwrap();
                rx.try_recv(&mut buf).unwrap();
            }
            assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
            for i in 0..6u8 {
                tx.try_send(&[i; 24]).unwrap();
            }
            for _ in 0..5 {
                rx.try_recv(&mut buf).unwrap();
            }
            let (ready, go) = (AtomicU32::new(0), AtomicU32::new(0));
            let delay = (round % 400) as u64 * 10; // 0..4 µs in 10 ns steps
            let took = std::thread::scope(|scope| {
                let (ready, go, tx) = (&ready, &go, &mut tx);
                let h = scope.spawn(move || {
                    ready.store(1, Ordering::SeqCst);
                    while go.load(Ordering::SeqCst) == 0 {
                        std::hint::spin_loop();
                    }
                    let t = Instant::now();
                    tx.send(&[9; 504]).unwrap();
                    t.elapsed()
                });
                while ready.load(Ordering::SeqCst) == 0 {
                    std::hint::spin_loop();
                }
                go.store(1, Ordering::SeqCst);
                let t = Instant::now();
                while t.elapsed() < Duration::from_nanos(delay) {
                    std::hint::spin_loop();
                }
                // The sixth and last: given back quietly. Then this end calls nothing until
                // the producer is through.
                let m = rx.recv_in_place().unwrap();
                drop(m);
                h.join().unwrap()
            });
            if took > Duration::from_millis(50) {
                stall = Some((round, delay, took));
                break;
            }
            rx.try_recv(&mut buf).unwrap();
        }
    });
    assert!(
        stall.is_none(),
        "(round, delay ns, send took): {stall:?}: the producer slept through the room it \
         waited for; only its 100 ms nap woke it"
    );
}

/// Claims (`Claim::claim`): the start time is stored after the compare-and-swap that takes
/// the word, and nothing clears the one the previous holder left. In between, the new holder
/// (alive) is paired with the old holder's start time, which `alive` reads as "a reused pid:
/// dead": a second process that claims then takes the end over from a live holder (two
/// producers on one SPSC ring), and a peer that looks then hears `ProducerGone { crashed:
/// true }`. The state is made as a claimer preempted between its two steps leaves it.
#[test]
fn claim_taken_from_a_live_holder_between_its_cas_and_its_start_store() {
    let config = SpscConfig::new(4096);
    let (seg, _gone) = segment(config.size());
    spsc::create(&seg, 0, config).unwrap();
    // A previous holder came and went: its start time stays in the claim. (This process
    // and the peer may start in the same clock tick: the previous holder here is one that
    // started a minute earlier.)
    drop(spsc::Sender::open(&seg, 0).unwrap());
    let start_word = seg
        .atomic_u64(offset_of!(SpscLayout, producer) + 8)
        .unwrap();
    let start = start_word.load(Ordering::Relaxed);
    assert_ne!(start, 0);
    start_word.store(start.saturating_sub(6000).max(1), Ordering::Relaxed);
    // A live process claims the end and is preempted before it stores its start time.
    let mut p = Peer::spawn("spsc-claim-cas-only", &[seg.name()]);
    assert_eq!(p.recv(), "ready");
    let pid = p.pid();
    let holder = spsc::stat(&seg, 0).unwrap().producer;
    let second = spsc::Sender::open(&seg, 0);
    let taken = second.is_ok();
    std::mem::forget(second);
    p.stdin_close();
    p.finish();
    assert!(
        !taken,
        "a second producer took the end from live pid {pid} (stat says {holder:?})"
    );
}

/// Liveness looks (`backoff::Looked`): each wait starts its own `Looked(None)`, whose first
/// look at the peer comes 100 ms into that wait. A consumer that waits with timeouts shorter
/// than that (an event loop's 50 ms tick) never looks, and never learns that its producer
/// died: `Timeout` for ever instead of `ProducerGone` within ~1 s. The same holds for every
/// wait of every flavor (producers of a dead consumer included).
#[test]
fn short_timeouts_never_learn_that_the_peer_died() {
    let config = SpscConfig::new(4096);
    let (seg, _gone) = segment(config.size());
    spsc::create(&seg, 0, config).unwrap();
    let mut p = Peer::spawn("spsc-hold-producer", &[seg.name()]);
    assert_eq!(p.recv(), "ready");
    let mut rx = spsc::Receiver::open(&seg, 0).unwrap();
    p.kill9();
    let mut buf = Vec::new();
    let t = Instant::now();
    let learnt = watchdog(Duration::from_secs(30), "short timeouts", || loop {
        match rx.recv_timeout(&mut buf, Duration::from_millis(50)) {
            Err(RecvError::Timeout) if t.elapsed() < Duration::from_secs(3) => {}
            other => break (other, t.elapsed()),
        }
    });
    assert!(
        matches!(learnt.0, Err(RecvError::ProducerGone { crashed: true, .. }))
            && learnt.1 < Duration::from_secs(1),
        "waiting in 50 ms slices for a killed producer: {learnt:?}"
    );
}
