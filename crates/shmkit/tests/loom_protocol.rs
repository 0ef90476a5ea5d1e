//! A `loom` model of the SPSC channel's index and wake-up protocol (`channel/spsc.rs` and
//! `channel/wake.rs`): the positions, the parked flags and the futex words with the orderings
//! the code uses, the futex modelled by a mutex and a condition variable. loom runs every
//! interleaving (up to a preemption bound) and every outcome the memory model allows: a lost
//! wake-up is a deadlock there (the model has no 100 ms nap to hide it), a message read before
//! it was written a failed assertion.
//!
//! loom treats SeqCst loads, stores and swaps as AcqRel (its documented limit), which is too
//! weak for a Dekker pair and shows deadlocks the memory model forbids; SeqCst fences it
//! models exactly. So each SeqCst operation of a pair is written here as the operation and a
//! SeqCst fence after it (before the other location is read), a pair the C++/Rust model
//! orders by the fence rules; the code's SeqCst swap, a locked `xchg` on x86-64 and a
//! sequentially consistent `swpal` on AArch64, is at least as strong there.
//!
//! What it models: the producer publishes with a SeqCst swap of `head` and then reads the
//! consumer's flag; a side that must wait raises its flag (SeqCst swap), reads the futex word,
//! looks again (SeqCst) and sleeps only if nothing changed; the consumer gives bytes back with
//! a SeqCst swap of `tail` and then reads the producer's flag, at once when the channel is
//! empty (as the code does; with two slots a quarter of the capacity is every message too).
//! The ring has two slots, so the producer waits for room too.
//!
//! `quiet_give_back_loses_a_wake_up` keeps the variant that was tried and dropped (the last
//! message's bytes given back with a plain Release store and the flag read Relaxed): loom
//! finds the lost wake-up, which is why the code does not do that.

use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A futex word: `wait(expected)` sleeps while the word is `expected` until a `wake`.
struct Futex {
    word: AtomicU32,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Futex {
    fn new() -> Self {
        Futex {
            word: AtomicU32::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }
    fn wait(&self, expected: u32) {
        let g = self.lock.lock().unwrap();
        if self.word.load(SeqCst) == expected {
            drop(self.cv.wait(g).unwrap());
        }
    }
    fn wake(&self) {
        let _g = self.lock.lock().unwrap();
        self.cv.notify_all();
    }
}

const SLOTS: u64 = 2;

struct Ring {
    head: AtomicU64,
    tail: AtomicU64,
    data: [AtomicU64; SLOTS as usize],
    data_seq: Futex,
    consumer_parked: AtomicU32,
    space_seq: Futex,
    producer_parked: AtomicU32,
}

/// `wake::wake_if_parked`: after a SeqCst store (and its fence), the other side's flag.
fn wake_if_parked(parked: &AtomicU32, seq: &Futex) {
    fence(SeqCst);
    if parked.load(SeqCst) != 0 {
        seq.word.fetch_add(1, Release);
        seq.wake();
    }
}

/// `wake::park`: raise the flag, read the word, look, sleep unless ready.
fn park(parked: &AtomicU32, seq: &Futex, ready: impl Fn() -> bool) {
    parked.swap(1, SeqCst);
    fence(SeqCst);
    let s = seq.word.load(Acquire);
    if !ready() {
        seq.wait(s);
    }
    parked.store(0, Relaxed);
}

struct Producer {
    r: Arc<Ring>,
    head: u64,
    tail: u64,
}

impl Producer {
    fn send(&mut self, v: u64) {
        while self.head - self.tail >= SLOTS {
            self.tail = self.r.tail.load(Acquire);
            if self.head - self.tail < SLOTS {
                break;
            }
            let (r, head) = (&self.r, self.head);
            park(&r.producer_parked, &r.space_seq, || {
                head - r.tail.load(SeqCst) < SLOTS
            });
        }
        self.r.data[(self.head % SLOTS) as usize].store(v, Relaxed);
        self.head += 1;
        // `wake::store_and_wake`.
        self.r.head.swap(self.head, SeqCst);
        wake_if_parked(&self.r.consumer_parked, &self.r.data_seq);
    }
}

struct Consumer {
    r: Arc<Ring>,
    tail: u64,
    released: u64,
    quiet: bool,
    /// The dropped variant: a plain store for the last message.
    quiet_variant: bool,
}

impl Consumer {
    fn give_back(&mut self) {
        if self.tail != self.released {
            self.r.tail.swap(self.tail, SeqCst);
            wake_if_parked(&self.r.producer_parked, &self.r.space_seq);
            self.released = self.tail;
            self.quiet = false;
        } else if self.quiet {
            fence(SeqCst);
            wake_if_parked(&self.r.producer_parked, &self.r.space_seq);
            self.quiet = false;
        }
    }

    fn recv(&mut self) -> u64 {
        while self.r.head.load(Acquire) == self.tail {
            self.give_back();
            if self.r.head.load(Acquire) != self.tail {
                break;
            }
            let (r, tail) = (&self.r, self.tail);
            park(&r.consumer_parked, &r.data_seq, || {
                r.head.load(SeqCst) != tail
            });
        }
        let v = self.r.data[(self.tail % SLOTS) as usize].load(Relaxed);
        self.tail += 1;
        // `Receiver::release`.
        if !self.quiet_variant || self.r.producer_parked.load(Relaxed) != 0 {
            self.give_back();
        } else if self.r.head.load(Acquire) == self.tail {
            self.r.tail.store(self.tail, Release);
            self.released = self.tail;
            self.quiet = true;
        }
        v
    }
}

/// The producer sends `messages` into the two slots; the consumer receives `read` of them
/// and stops calling: the producer must still finish (a consumer that read everything holds
/// nothing back).
fn run(messages: u64, read: u64, quiet_variant: bool) {
    let r = Arc::new(Ring {
        head: AtomicU64::new(0),
        tail: AtomicU64::new(0),
        data: [AtomicU64::new(u64::MAX), AtomicU64::new(u64::MAX)],
        data_seq: Futex::new(),
        consumer_parked: AtomicU32::new(0),
        space_seq: Futex::new(),
        producer_parked: AtomicU32::new(0),
    });
    let mut p = Producer {
        r: r.clone(),
        head: 0,
        tail: 0,
    };
    let producer = thread::spawn(move || {
        for v in 0..messages {
            p.send(v);
        }
    });
    let mut c = Consumer {
        r,
        tail: 0,
        released: 0,
        quiet: false,
        quiet_variant,
    };
    for want in 0..read {
        assert_eq!(c.recv(), want, "a message lost, stale or out of order");
    }
    producer.join().unwrap();
    for want in read..messages {
        assert_eq!(c.recv(), want, "a message lost, stale or out of order");
    }
}

/// Whether a sanitizer runs the tests (`.ci/run` says so): loom switches stacks under its
/// threads, which ThreadSanitizer and AddressSanitizer do not follow; the model is checked in
/// the plain `cargo test` run.
fn under_a_sanitizer() -> bool {
    if std::env::var_os("SHMKIT_SANITIZER").is_some() {
        eprintln!("skipped under a sanitizer: loom switches stacks");
        return true;
    }
    false
}

#[test]
fn no_lost_wake_up_and_no_stale_message() {
    if under_a_sanitizer() {
        return;
    }
    let mut b = loom::model::Builder::new();
    // Bounded so that it fits in CI time; the bound covers the interleavings of one wait
    // against one publication on each side.
    b.preemption_bound = Some(3);
    b.check(|| run(3, 1, false));
    b.check(|| run(3, 3, false));
}

/// The dropped variant's model, run by `quiet_give_back_loses_a_wake_up` in a process of
/// its own (loom aborts the process on a deadlock).
#[test]
#[ignore]
fn model_of_the_quiet_variant() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| run(3, 1, true));
}

#[test]
fn quiet_give_back_loses_a_wake_up() {
    if under_a_sanitizer() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "model_of_the_quiet_variant",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "loom found no lost wake-up in the variant"
    );
    assert!(err.contains("deadlock"), "{err}");
}
