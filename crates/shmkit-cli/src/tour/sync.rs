//! Synchronization between unrelated processes: a semaphore-paced hand-off (the Mach
//! article's producer and consumer, with `SYNC_POLICY_FIFO`), and a mutex whose holder is
//! killed and which the next locker recovers.

use super::cleanup;
use super::peer::{cue, report, Peer};
use super::{Outcome, Scratch};
use serde_json::json;
use shmkit::sync::{Locked, Mutex, Semaphore, WakePolicy};
use shmkit::PosixShm;
use std::time::{Duration, Instant};

// The hand-off segment: two semaphores and a message slot.
const FILLED: usize = 0;
const EMPTIED: usize = 64;
const SLOT: usize = 128;
const SLOT_LEN: usize = 64;
const MESSAGES: usize = 5;
const ROUND_TRIPS: u64 = 10_000;
const TIMEOUT: Duration = Duration::from_secs(10);

// The mutex segment: the mutex and a record that must satisfy `a == b` when consistent.
const MUTEX: usize = 0;
const A: usize = 64;
const B: usize = 72;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

pub fn semaphore_handoff(scratch: &Scratch) -> Outcome {
    const NAME: &str = "sem-handoff";
    run_handoff(scratch).unwrap_or_else(|e| {
        Outcome::error(
            NAME,
            "hand messages to another process, paced by semaphores",
            e,
        )
    })
}

fn run_handoff(scratch: &Scratch) -> Result<Outcome, String> {
    let name = format!("/shmkit-tour-{}-sem", scratch.tag);
    let seg = cleanup::posix(&name, || PosixShm::create(&name, 4096)).map_err(err)?;
    let filled = Semaphore::init(&seg, FILLED, 0, WakePolicy::Fifo).map_err(err)?;
    let emptied = Semaphore::init(&seg, EMPTIED, 0, WakePolicy::Fifo).map_err(err)?;
    cleanup::pause_point("sem");
    let mut peer = Peer::spawn("sem-consumer", &[name.clone(), MESSAGES.to_string()])?;
    let pid = peer.pid();
    let sent: Vec<String> = (1..=MESSAGES)
        .map(|i| format!("message {i} of {MESSAGES}"))
        .collect();
    for m in &sent {
        let mut slot = [0u8; SLOT_LEN];
        slot[..m.len()].copy_from_slice(m.as_bytes());
        seg.write_at(SLOT, &slot).map_err(err)?;
        filled.post().map_err(err)?;
        if !emptied.wait_timeout(TIMEOUT).map_err(err)? {
            return Err(format!(
                "the consumer did not take {m:?} within {TIMEOUT:?}"
            ));
        }
    }
    let seen = peer.recv()?;
    // Then the same two semaphores as fast as they go: a round trip is post + wait each way.
    let t = Instant::now();
    for _ in 0..ROUND_TRIPS {
        filled.post().map_err(err)?;
        if !emptied.wait_timeout(TIMEOUT).map_err(err)? {
            return Err("the consumer stopped answering".into());
        }
    }
    let per_trip = t.elapsed().as_secs_f64() * 1e6 / ROUND_TRIPS as f64;
    let ok_exit = peer.finish();
    let got: Vec<String> = seen["received"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let values = (filled.value().map_err(err)?, emptied.value().map_err(err)?);
    let pass = ok_exit && got == sent && values == (0, 0);
    Ok(Outcome::new(
        "sem-handoff",
        format!(
            "wrote {MESSAGES} messages into {name}, each followed by post(filled) and \
             wait(emptied); then {ROUND_TRIPS} bare round trips"
        ),
        format!(
            "pid {pid} waited on filled, read {:?}, posted emptied; a round trip took \
             {per_trip:.2} µs; final values filled={}, emptied={}",
            got, values.0, values.1
        ),
        format!("every message once, in order: {sent:?}; both semaphores back at 0"),
        pass,
        json!({ "name": name, "consumer_pid": pid, "received": got, "round_trip_us": per_trip,
                "round_trips": ROUND_TRIPS, "policy": "fifo" }),
    ))
}

/// Peer side of the hand-off.
pub fn consumer(name: &str, n: &str) -> Result<(), String> {
    let n: usize = n.parse().map_err(err)?;
    let seg = PosixShm::open(name).map_err(err)?;
    let filled = Semaphore::open(&seg, FILLED).map_err(err)?;
    let emptied = Semaphore::open(&seg, EMPTIED).map_err(err)?;
    let mut received = Vec::new();
    for _ in 0..n {
        if !filled.wait_timeout(TIMEOUT).map_err(err)? {
            return Err("no message came".into());
        }
        let mut slot = [0u8; SLOT_LEN];
        seg.read_at(SLOT, &mut slot).map_err(err)?;
        received.push(super::peer::text(&slot));
        emptied.post().map_err(err)?;
    }
    report(json!({ "received": received }));
    for _ in 0..ROUND_TRIPS {
        if !filled.wait_timeout(TIMEOUT).map_err(err)? {
            return Err("the producer stopped".into());
        }
        emptied.post().map_err(err)?;
    }
    Ok(())
}

pub fn mutex_owner_died(scratch: &Scratch) -> Outcome {
    const NAME: &str = "mutex-owner-died";
    run_owner_died(scratch)
        .unwrap_or_else(|e| Outcome::error(NAME, "kill a process that holds a shared mutex", e))
}

fn run_owner_died(scratch: &Scratch) -> Result<Outcome, String> {
    let name = format!("/shmkit-tour-{}-mutex", scratch.tag);
    let seg = cleanup::posix(&name, || PosixShm::create(&name, 4096)).map_err(err)?;
    let mutex = Mutex::init(&seg, MUTEX).map_err(err)?;
    cleanup::pause_point("mutex");
    let mut peer = Peer::spawn("mutex-hold", std::slice::from_ref(&name))?;
    let pid = peer.pid();
    let held = peer.recv()?;
    // While it holds the lock, a bounded wait must time out, not hang.
    let waited = mutex
        .lock_timeout(Duration::from_millis(100))
        .map_err(err)?
        .is_none();
    peer.kill()?;
    let (a, b) = (
        seg.read::<u64>(A).map_err(err)?,
        seg.read::<u64>(B).map_err(err)?,
    );
    let first = mutex.lock().map_err(err)?;
    let owner_died = first.owner_died();
    if let Locked::OwnerDied(guard) = first {
        // Repair: the dead owner had updated `a` but not `b`.
        seg.write(B, &a).map_err(err)?;
        guard.mark_consistent().unwrap();
    }
    let second = mutex.lock().map_err(err)?;
    let clean_after = !second.owner_died();
    drop(second);
    let repaired = seg.read::<u64>(A).map_err(err)? == seg.read::<u64>(B).map_err(err)?;
    let pass = held["holding"] == true && waited && owner_died && clean_after && repaired;
    Ok(Outcome::new(
        "mutex-owner-died",
        format!(
            "pid {pid} locked the mutex in {name}, set a={a} but not yet b={b}, and was killed \
             with SIGKILL"
        ),
        format!(
            "a 100 ms lock timed out while it lived: {waited}; the next lock said {}; \
             repaired b, marked consistent; the lock after that said {}",
            if owner_died { "OwnerDied" } else { "Acquired" },
            if clean_after { "Acquired" } else { "OwnerDied" }
        ),
        "a timeout while the holder lives; OwnerDied after its death; Acquired once repaired"
            .to_string(),
        pass,
        json!({ "name": name, "holder_pid": pid, "timed_out_while_held": waited,
                "owner_died": owner_died, "acquired_after_repair": clean_after,
                "recoveries": mutex.recoveries().unwrap() }),
    ))
}

/// Peer side: lock, half-update, report, wait to be killed.
pub fn hold(name: &str) -> Result<(), String> {
    let seg = PosixShm::open(name).map_err(err)?;
    let mutex = Mutex::open(&seg, MUTEX).map_err(err)?;
    let guard = mutex.lock().map_err(err)?.guard();
    seg.write(A, &42u64).map_err(err)?;
    report(json!({ "holding": true }));
    cue()?; // never comes: the writer kills us here
    seg.write(B, &42u64).map_err(err)?;
    drop(guard);
    Ok(())
}
