//! Many producers, one consumer: workers (processes, or threads each with its own
//! [`Sender`]) report to one collector, in one order the consumer sees.
//!
//! The layout is [`MpscLayout`](super::layout::MpscLayout): a ring of fixed-size slots, each
//! with a word that names the position it serves, its state and the pid of the producer that
//! claimed it. A producer claims a slot with one compare-and-swap that writes its pid (so a
//! claim always names its claimer), writes the message and marks the slot ready. A producer
//! that dies mid-write leaves a busy slot naming a dead process: the consumer skips it once it
//! has waited 100 ms on it and looked ([`Receiver::skipped`] counts them), so a crash costs
//! that one message and wedges nothing. A producer that panics mid-write gives its slot up
//! on the way out.
//!
//! All processes of a channel must share a pid namespace (pids name producers).
//!
//! ```
//! use shmkit::channel::mpsc::{self, MpscConfig, Receiver, Sender};
//! let config = MpscConfig::new(4096).max_message(100);
//! let seg = shmkit::AnonShared::new(config.size())?;
//! mpsc::create(&seg, 0, config)?;
//! let mut rx = Receiver::open(&seg, 0)?;
//! let mut a = Sender::open(&seg, 0)?;
//! let mut b = Sender::open(&seg, 0)?;
//! a.send(b"from a")?;
//! b.send(b"from b")?;
//! let mut buf = Vec::new();
//! rx.recv(&mut buf)?;
//! assert_eq!(buf, b"from a");
//! rx.recv(&mut buf)?;
//! assert_eq!(buf, b"from b");
//! # Ok::<(), shmkit::Error>(())
//! ```

use super::backoff::{Backoff, Deadline, Looked, Wait, LOOK_EVERY};
use super::endpoint::{claim_first, forked, Claim, Holder};
use super::error::{value_of, RecvError, SendError};
use super::layout::{mat, misplaced, EndpointLayout, LINE, MPSC_PLACES, MPSC_SLOT_HEADER};
use super::{slots, wake, Flavor};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::EventFd;
use crate::platform;
use crate::sync::{init_once, InitOutcome};
use crate::Mapping;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, Immutable, IntoBytes};

const TAG: [u8; 4] = Flavor::Mpsc.tag();
const VERSION: u16 = 1;
const OPEN_WAIT: Duration = Duration::from_secs(5);
const HEADER: usize = MPSC_SLOT_HEADER;
const PLACE: usize = std::mem::size_of::<EndpointLayout>();
const MOST_PRODUCERS: usize = 4096;

/// Slot states (bits 24 and 25 of a slot's word).
const FREE: u64 = 0;
const BUSY: u64 = 1;
const READY: u64 = 2;
const GIVEN_UP: u64 = 3;
/// A slot word's position tag: 38 bits. Two positions a multiple of 2^38 apart share a tag;
/// a producer stalled between reading `tail` and its claim for that many messages could
/// claim a wrong slot (at 100 M messages/s, 45 minutes).
const TAG_BITS: u32 = 38;

/// A slot's word: the position it serves (its tag), the state, the claimer's pid.
fn word(pos: u64, state: u64, pid: u32) -> u64 {
    ((pos & ((1 << TAG_BITS) - 1)) << 26) | (state << 24) | u64::from(pid & 0xff_ffff)
}

/// Whether slot word `w` serves position `pos`.
fn serves(w: u64, pos: u64) -> bool {
    w >> 26 == pos & ((1 << TAG_BITS) - 1)
}

fn state(w: u64) -> u64 {
    (w >> 24) & 3
}

fn pid_of(w: u64) -> u32 {
    (w & 0xff_ffff) as u32
}

/// The shape of an MPSC channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpscConfig {
    /// Bytes of slots: a power of two, at least 64.
    pub capacity: usize,
    /// Largest message: each slot holds one, so the slots are `max_message + 24` bytes
    /// rounded up to a power of two, and there are `capacity` / that many (at least 2).
    pub max_message: usize,
    /// Places for producers (1 to 4096), 16 bytes each: one per open [`Sender`].
    pub max_producers: usize,
}

impl MpscConfig {
    /// `capacity` bytes of slots of a sixteenth of it each (32 to 1024 bytes), 64 places.
    pub fn new(capacity: usize) -> Self {
        MpscConfig {
            capacity,
            max_message: slots::default_max_message(capacity, HEADER),
            max_producers: 64,
        }
    }

    /// With messages of at most `max_message` bytes.
    pub fn max_message(self, max_message: usize) -> Self {
        MpscConfig {
            max_message,
            ..self
        }
    }

    /// With `max_producers` places for producers.
    pub fn max_producers(self, max_producers: usize) -> Self {
        MpscConfig {
            max_producers,
            ..self
        }
    }

    /// Messages the channel holds (its slots).
    pub fn slots(&self) -> usize {
        self.capacity / slots::slot_size(self.max_message, HEADER)
    }

    fn places_len(&self) -> usize {
        (self.max_producers.saturating_mul(PLACE)).div_ceil(LINE) * LINE
    }

    /// Bytes the channel takes in a mapping: header, places and slots.
    pub fn size(&self) -> usize {
        MPSC_PLACES
            .saturating_add(self.places_len())
            .saturating_add(self.capacity)
    }

    fn problem(&self) -> Option<String> {
        if !(1..=MOST_PRODUCERS).contains(&self.max_producers) {
            return Some(format!(
                "{} producer places: a channel has 1 to {MOST_PRODUCERS}",
                self.max_producers
            ));
        }
        slots::problem(self.capacity, self.max_message, HEADER)
    }
}

/// The words every side uses.
struct Shared<'a> {
    map: &'a Mapping,
    places: usize,
    max_producers: usize,
    slots_at: usize,
    nslots: u64,
    mask: u64,
    slot_size: usize,
    max: usize,
    tail: &'a AtomicU64,
    head: &'a AtomicU64,
    skipped: &'a AtomicU64,
    data_seq: &'a AtomicU32,
    consumer_parked: &'a AtomicU32,
    space_seq: &'a AtomicU32,
    producers_parked: &'a AtomicU32,
    consumer: Claim<'a>,
}

impl<'a> Shared<'a> {
    fn open(map: &'a Mapping, offset: usize, what: &'static str) -> Result<Self> {
        if let Some(e) = misplaced(map, what, offset, MPSC_PLACES) {
            return Err(e);
        }
        init_once(map, offset, TAG, VERSION, OPEN_WAIT, |m| {
            Err(Error::new(
                ErrorKind::NotFound,
                what,
                m.object(),
                format!(
                    "no MPSC channel at offset {offset}: create it first (channel::mpsc::create)"
                ),
            ))
        })?;
        let word = |at: usize| -> Result<usize> {
            Ok(map.atomic_u32(offset + at)?.load(Ordering::Relaxed) as usize)
        };
        let (nslots, slot_size) = (word(mat::SLOTS)?, word(mat::SLOT_SIZE)?);
        let config = MpscConfig {
            capacity: nslots.saturating_mul(slot_size),
            max_message: word(mat::MAX_MESSAGE)?,
            max_producers: word(mat::MAX_PRODUCERS)?,
        };
        // The creator may be buggy or hostile: the shape must make sense and fit.
        let why = config.problem().or_else(|| {
            (slots::slot_size(config.max_message, HEADER) != slot_size)
                .then(|| format!("slots of {slot_size} bytes for the largest message"))
        });
        if let Some(why) = why {
            return Err(Error::new(
                ErrorKind::BadLayout,
                what,
                map.object(),
                format!("the MPSC channel's header is invalid: {why}"),
            ));
        }
        if let Some(e) = misplaced(map, what, offset, config.size()) {
            return Err(e.with_kind(ErrorKind::BadLayout));
        }
        let at = |field: usize| map.atomic_u64(offset + field);
        let at32 = |field: usize| map.atomic_u32(offset + field);
        Ok(Shared {
            map,
            places: offset + MPSC_PLACES,
            max_producers: config.max_producers,
            slots_at: offset + MPSC_PLACES + config.places_len(),
            nslots: nslots as u64,
            mask: nslots as u64 - 1,
            slot_size,
            max: config.max_message,
            tail: at(mat::TAIL)?,
            head: at(mat::HEAD)?,
            skipped: at(mat::SKIPPED)?,
            data_seq: at32(mat::DATA_SEQ)?,
            consumer_parked: at32(mat::CONSUMER_PARKED)?,
            space_seq: at32(mat::SPACE_SEQ)?,
            producers_parked: at32(mat::PRODUCERS_PARKED)?,
            consumer: Claim::at(map, offset + mat::CONSUMER)?,
        })
    }

    fn slot(&self, pos: u64) -> usize {
        self.slots_at + (pos & self.mask) as usize * self.slot_size
    }

    fn word(&self, pos: u64) -> Result<&'a AtomicU64> {
        self.map.atomic_u64(self.slot(pos))
    }

    fn place(&self, i: usize) -> Result<Claim<'a>> {
        Claim::at(self.map, self.places + i * PLACE)
    }

    /// Frees slot `pos` for the position a lap later (its reads done: the swap releases
    /// them to the producer that claims it next, which reads the word with Acquire) and
    /// wakes producers waiting for room.
    fn free(&self, pos: u64) -> Result<()> {
        let at = self.slot(pos);
        // Cleared first, so that the next claimer's start time is never taken from this one.
        self.map
            .atomic_u64(at + mat::START)?
            .store(0, Ordering::Relaxed);
        self.map.atomic_u64(at)?.swap(
            word(pos.wrapping_add(self.nslots), FREE, 0),
            Ordering::SeqCst,
        );
        wake::wake_all_if_parked(self.producers_parked, self.space_seq);
        Ok(())
    }
}

/// Builds an MPSC channel at `offset` (a multiple of 128) of `map`, or opens the one there
/// (create-or-open, as [`spsc::create`](super::spsc::create)).
///
/// # Errors
/// As [`spsc::create`](super::spsc::create).
pub fn create(map: &Mapping, offset: usize, config: MpscConfig) -> Result<InitOutcome> {
    if let Some(why) = config.problem() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "mpsc create",
            map.object(),
            why,
        ));
    }
    if let Some(e) = misplaced(map, "mpsc create", offset, config.size()) {
        return Err(e);
    }
    let slot_size = slots::slot_size(config.max_message, HEADER);
    let outcome = init_once(map, offset, TAG, VERSION, OPEN_WAIT, |m| {
        for (at, value) in [
            (mat::SLOTS, config.slots() as u32),
            (mat::SLOT_SIZE, slot_size as u32),
            (mat::MAX_MESSAGE, config.max_message as u32),
            (mat::MAX_PRODUCERS, config.max_producers as u32),
            (mat::DATA_SEQ, 0),
            (mat::CONSUMER_PARKED, 0),
            (mat::SPACE_SEQ, 0),
            (mat::PRODUCERS_PARKED, 0),
        ] {
            m.atomic_u32(offset + at)?.store(value, Ordering::Relaxed);
        }
        for at in [mat::TAIL, mat::HEAD, mat::SKIPPED] {
            m.atomic_u64(offset + at)?.store(0, Ordering::Relaxed);
        }
        m.write_at(offset + mat::CONSUMER, &[0; PLACE])?;
        for i in 0..config.max_producers {
            m.write_at(offset + MPSC_PLACES + i * PLACE, &[0; PLACE])?;
        }
        let slots_at = offset + MPSC_PLACES + config.places_len();
        for i in 0..config.slots() {
            let at = slots_at + i * slot_size;
            m.atomic_u64(at)?
                .store(word(i as u64, FREE, 0), Ordering::Relaxed);
            m.atomic_u64(at + mat::START)?.store(0, Ordering::Relaxed);
        }
        Ok(())
    })?;
    if outcome == InitOutcome::Opened {
        let s = Shared::open(map, offset, "mpsc create")?;
        let there = (s.nslots as usize * s.slot_size, s.max, s.max_producers);
        if there != (config.capacity, config.max_message, config.max_producers) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "mpsc create",
                map.object(),
                format!(
                    "an MPSC channel of capacity {} with messages of at most {} bytes and {} \
                     producer places is there",
                    there.0, there.1, there.2
                ),
            ));
        }
    }
    Ok(outcome)
}

/// An MPSC channel as seen from outside, without claiming anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpscStat {
    /// Messages the channel holds.
    pub slots: u64,
    /// Bytes of a slot.
    pub slot_size: usize,
    /// Largest message.
    pub max_message: usize,
    /// Places for producers.
    pub max_producers: usize,
    /// Positions claimed by producers since the channel was built.
    pub tail: u64,
    /// Positions the consumer is done with.
    pub head: u64,
    /// Slots claimed and not yet read, at most `slots`; `None` for positions that make no
    /// sense (a corrupt channel).
    pub used: Option<u64>,
    /// Messages skipped: their producer died before it finished them.
    pub skipped: u64,
    /// Who holds the consumer end.
    pub consumer: Holder,
    /// The producer places ever taken: index and holder.
    pub producers: Vec<(usize, Holder)>,
    /// Whether producers (waiting for room) and the consumer (for messages) are asleep.
    pub parked: (bool, bool),
}

/// What the MPSC channel at `offset` of `map` holds and who holds its ends.
///
/// # Errors
/// As [`Receiver::open`], without claiming anything.
pub fn stat(map: &Mapping, offset: usize) -> Result<MpscStat> {
    let s = Shared::open(map, offset, "mpsc stat")?;
    let head = s.head.load(Ordering::Acquire);
    let tail = s.tail.load(Ordering::Acquire);
    let used = tail.wrapping_sub(head);
    let mut producers = Vec::new();
    for i in 0..s.max_producers {
        let holder = s.place(i)?.holder();
        if holder != Holder::Never {
            producers.push((i, holder));
        }
    }
    Ok(MpscStat {
        slots: s.nslots,
        slot_size: s.slot_size,
        max_message: s.max,
        max_producers: s.max_producers,
        tail,
        head,
        used: (used <= s.nslots).then_some(used),
        skipped: s.skipped.load(Ordering::Relaxed),
        consumer: s.consumer.holder(),
        producers,
        parked: (
            s.producers_parked.load(Ordering::Relaxed) != 0,
            s.consumer_parked.load(Ordering::Relaxed) != 0,
        ),
    })
}

/// A producer of an MPSC channel. Each holds one of the channel's producer places (so the
/// consumer can tell that every producer is gone); open one per thread or process.
pub struct Sender<'a> {
    s: Shared<'a>,
    place: Claim<'a>,
    me: u32,
    start: u64,
    wait: Wait,
    backoff: Backoff,
    forks: u32,
    /// The consumer's eventfd, if it waits on one.
    notify: Option<EventFd>,
    /// When a wait last looked at the consumer (kept across waits).
    looked: Looked,
}

impl<'a> Sender<'a> {
    /// Takes a producer place of the MPSC channel at `offset` of `map`.
    ///
    /// # Errors
    /// As [`spsc::Sender::open`](super::spsc::Sender::open); [`ErrorKind::AlreadyExists`]
    /// when live senders hold every place.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let s = Shared::open(map, offset, "mpsc sender")?;
        let offsets = (0..s.max_producers).map(|i| s.places + i * PLACE);
        if let Some((_, place, forks)) = claim_first(map, offsets)? {
            let me = rustix::process::getpid().as_raw_nonzero().get();
            return Ok(Sender {
                s,
                place,
                me: me as u32,
                start: platform::process_start(me).unwrap_or(0),
                wait: Wait::default(),
                backoff: Backoff::new(),
                forks,
                notify: None,
                looked: Looked(None),
            });
        }
        Err(Error::new(
            ErrorKind::AlreadyExists,
            "mpsc sender",
            map.object(),
            format!(
                "live senders hold all {} producer places of the channel",
                s.max_producers
            ),
        )
        .with_hint("make the channel with more places (max_producers), or drop a sender"))
    }

    /// How this producer waits for room ([`Wait::Adaptive`] unless set).
    pub fn set_wait(&mut self, wait: Wait) {
        self.wait = wait;
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.s.max
    }

    /// Sends `data`, waiting for room for as long as it takes.
    ///
    /// # Errors
    /// [`SendError::TooLarge`], [`SendError::ConsumerGone`] (full, and its consumer dead or
    /// gone), [`SendError::Corrupt`], [`SendError::Mapping`].
    pub fn send(&mut self, data: &[u8]) -> std::result::Result<(), SendError> {
        self.send_with(data, Deadline::never(), true)
    }

    /// Sends `data`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Sender::send`]; [`SendError::Timeout`].
    pub fn send_timeout(
        &mut self,
        data: &[u8],
        timeout: Duration,
    ) -> std::result::Result<(), SendError> {
        self.send_with(data, Deadline::after(timeout), true)
    }

    /// Sends `data` if there is room now.
    ///
    /// # Errors
    /// As [`Sender::send`]; [`SendError::Full`].
    pub fn try_send(&mut self, data: &[u8]) -> std::result::Result<(), SendError> {
        self.send_with(data, Deadline::never(), false)
    }

    /// Sends the bytes of `value`.
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub fn send_value<T: IntoBytes + Immutable>(
        &mut self,
        value: &T,
    ) -> std::result::Result<(), SendError> {
        self.send(value.as_bytes())
    }

    fn send_with(
        &mut self,
        data: &[u8],
        deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<(), SendError> {
        if platform::fork_count() != self.forks {
            return Err(SendError::Mapping(forked(self.s.map, "mpsc send")));
        }
        if data.len() > self.s.max {
            return Err(SendError::TooLarge {
                len: data.len(),
                max: self.s.max,
            });
        }
        let pos = self.claim(deadline, wait)?;
        // From here to the commit the slot names this process: a panic in between gives it
        // up, so that the consumer does not wait for a live process that will never finish.
        let mut guard = GiveUp {
            s: &self.s,
            notify: self.notify.as_ref(),
            pos,
            me: self.me,
            armed: true,
        };
        let at = self.s.slot(pos);
        let map = self.s.map;
        map.atomic_u64(at + mat::START)?
            .store(self.start, Ordering::Relaxed);
        map.atomic_u32(at + mat::LEN)?
            .store(data.len() as u32, Ordering::Relaxed);
        map.write_at(at + HEADER, data)?;
        guard.armed = false;
        // SeqCst (a Dekker pair with the consumer's park, see `wake`), and Release: the
        // consumer that reads "ready" (Acquire) sees the message. A compare-and-swap, not a
        // store: the consumer frees a busy slot only for a producer it found dead, which a
        // process that is running here is not, unless pids are not what they seem (another
        // pid namespace); then the message is refused rather than written over a freed slot.
        let busy = word(pos, BUSY, self.me);
        if self
            .s
            .word(pos)?
            .compare_exchange(
                busy,
                word(pos, READY, self.me),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return Err(SendError::Corrupt(
                "the consumer took back this message's slot (does it share our pid namespace?)",
            ));
        }
        let flag = wake::wake_if_parked(self.s.consumer_parked, self.s.data_seq);
        self.notify(flag);
        Ok(())
    }

    /// Also signals `eventfd` whenever it wakes a consumer that waits on it (one that called
    /// [`Receiver::prepare_wait`] and sleeps in `poll`/`epoll`), instead of its futex; as
    /// [`spsc::Sender::notify_with`](super::spsc::Sender::notify_with). Every producer that
    /// may wake such a consumer needs the eventfd.
    pub fn notify_with(&mut self, eventfd: EventFd) {
        self.notify = Some(eventfd);
    }

    /// Signals the consumer's eventfd if the flag seen says it waits on it.
    fn notify(&self, flag: u32) {
        if flag == wake::ARMED {
            if let Some(e) = &self.notify {
                let _ = e.signal();
            }
        }
    }

    /// Claims the slot of the next position: its word goes from free to busy with our pid in
    /// one compare-and-swap, and then `tail` is moved on (by us or by another producer that
    /// finds the slot claimed).
    fn claim(&mut self, mut deadline: Deadline, wait: bool) -> std::result::Result<u64, SendError> {
        let budget = if wait {
            self.backoff.budget(self.wait)
        } else {
            0
        };
        let mut polls: u32 = 0;
        let mut tries: u32 = 0;
        loop {
            // Acquire (both): the consumer's reads of a freed slot happen before we write it.
            let pos = self.s.tail.load(Ordering::Acquire);
            let slot = self.s.word(pos)?;
            let w = slot.load(Ordering::Acquire);
            if serves(w, pos) && state(w) == FREE {
                if slot
                    .compare_exchange(
                        w,
                        word(pos, BUSY, self.me),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    // Release: another producer that reads the new tail sees our claim.
                    let _ = self.s.tail.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::Release,
                        Ordering::Relaxed,
                    );
                    if polls > 0 && polls <= budget {
                        self.backoff.found();
                    }
                    return Ok(pos);
                }
            } else if serves(w, pos) || serves(w, pos.wrapping_add(self.s.nslots)) {
                // Claimed by another producer that has not moved `tail` on yet, or one that
                // died before it could (and the consumer may have skipped its slot already,
                // freeing it for the next lap): move it on for it.
                let _ = self.s.tail.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            } else if self.s.tail.load(Ordering::Acquire) == pos {
                if !serves(w, pos.wrapping_sub(self.s.nslots)) {
                    return Err(SendError::Corrupt(
                        "a slot's word is not of this lap or the one before",
                    ));
                }
                // Full: the consumer has not freed the slot of a lap ago.
                if !wait {
                    return Err(SendError::Full);
                }
                if polls < budget {
                    Backoff::pause(polls, self.wait);
                    polls += 1;
                    if deadline.spun_out(polls, self.wait) {
                        return Err(SendError::Timeout);
                    }
                    if polls % LOOK_EVERY != 0 {
                        continue;
                    }
                }
                self.wait_step(&mut deadline)?;
                if polls >= budget && self.wait != Wait::Spin {
                    wake::park_shared(
                        self.s.producers_parked,
                        self.s.space_seq,
                        deadline.at(),
                        || slot.load(Ordering::SeqCst) != w,
                    );
                    self.backoff.slept();
                }
                continue;
            }
            // Lost a race (or `tail` moved under us): try again, looking at the clock now and
            // then, so that a peer that keeps moving `tail` cannot hold us for ever.
            tries = tries.wrapping_add(1);
            if tries % LOOK_EVERY == 0 {
                if !wait {
                    return Err(SendError::Full);
                }
                self.wait_step(&mut deadline)?;
            }
        }
    }

    /// What a wait does between polls: the mapping checked, the deadline, the consumer's
    /// liveness now and then.
    fn wait_step(&mut self, deadline: &mut Deadline) -> std::result::Result<(), SendError> {
        self.s.map.check()?;
        let now = Instant::now();
        if deadline.passed(now) {
            return Err(SendError::Timeout);
        }
        if self.looked.look(now) {
            match self.s.consumer.holder() {
                Holder::Dead(pid) => return Err(SendError::ConsumerGone { pid }),
                Holder::Closed => return Err(SendError::ConsumerGone { pid: 0 }),
                Holder::Never | Holder::Alive(_) => {}
            }
        }
        Ok(())
    }
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        if platform::fork_count() != self.forks {
            return;
        }
        self.place.release();
        // A consumer asleep on an empty channel looks at the producers now (the place was
        // let go SeqCst).
        let flag = wake::wake_if_parked(self.s.consumer_parked, self.s.data_seq);
        self.notify(flag);
    }
}

/// Gives a claimed slot up if the send does not get to its commit (an error or a panic).
struct GiveUp<'s, 'a> {
    s: &'s Shared<'a>,
    notify: Option<&'s EventFd>,
    pos: u64,
    me: u32,
    armed: bool,
}

impl Drop for GiveUp<'_, '_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(w) = self.s.word(self.pos) {
            if w.compare_exchange(
                word(self.pos, BUSY, self.me),
                word(self.pos, GIVEN_UP, self.me),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
            {
                let flag = wake::wake_if_parked(self.s.consumer_parked, self.s.data_seq);
                if let (wake::ARMED, Some(e)) = (flag, self.notify) {
                    let _ = e.signal();
                }
            }
        }
    }
}

/// The consumer end of an MPSC channel: one process at a time holds it (as an SPSC consumer
/// end).
pub struct Receiver<'a> {
    s: Shared<'a>,
    /// The next position.
    head: u64,
    skipped: u64,
    wait: Wait,
    backoff: Backoff,
    forks: u32,
    /// Whether `prepare_wait` raised the parked flag (lowered by the next receive).
    armed: bool,
    /// When a wait (or `prepare_wait`) last looked at the slot's writer and the producers
    /// (kept across waits).
    looked: Looked,
}

impl<'a> Receiver<'a> {
    /// Claims the consumer end of the MPSC channel at `offset` of `map`.
    ///
    /// # Errors
    /// As [`spsc::Receiver::open`](super::spsc::Receiver::open).
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let s = Shared::open(map, offset, "mpsc receiver")?;
        let forks = s.consumer.claim(map, "mpsc receiver")?;
        let mut head = s.head.load(Ordering::Acquire);
        // A consumer that died between freeing a slot and storing `head` left slots at `head`
        // that serve the next lap (free, or already claimed again by a producer that was
        // waiting for room): their position was read.
        for _ in 0..s.nslots {
            let w = s.word(head)?.load(Ordering::Acquire);
            if !serves(w, head.wrapping_add(s.nslots)) {
                break;
            }
            head = head.wrapping_add(1);
        }
        s.head.store(head, Ordering::Relaxed);
        Ok(Receiver {
            skipped: s.skipped.load(Ordering::Relaxed),
            s,
            head,
            wait: Wait::default(),
            backoff: Backoff::new(),
            forks,
            armed: false,
            looked: Looked(None),
        })
    }

    /// How this end waits for messages ([`Wait::Adaptive`] unless set).
    pub fn set_wait(&mut self, wait: Wait) {
        self.wait = wait;
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.s.max
    }

    /// Messages skipped since the channel was built: their producer died before it finished
    /// them, or gave them up.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Receives the next message into `buf` (replacing what it held), waiting as long as it
    /// takes; returns its length.
    ///
    /// # Errors
    /// [`RecvError::ProducerGone`] once the channel is empty and every producer that held a
    /// place died or let go (none ever did: it waits); [`RecvError::Corrupt`],
    /// [`RecvError::Mapping`].
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> std::result::Result<usize, RecvError> {
        self.next_msg(buf, Deadline::never(), true)
    }

    /// As [`Receiver::recv`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv`]; [`RecvError::Timeout`].
    pub fn recv_timeout(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> std::result::Result<usize, RecvError> {
        self.next_msg(buf, Deadline::after(timeout), true)
    }

    /// As [`Receiver::recv`] if a message is there now.
    ///
    /// # Errors
    /// As [`Receiver::recv`]; [`RecvError::Empty`].
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> std::result::Result<usize, RecvError> {
        self.next_msg(buf, Deadline::never(), false)
    }

    /// Receives a message as a `T` (any bit pattern is one).
    ///
    /// # Errors
    /// As [`Receiver::recv`]; [`RecvError::WrongSize`] for a message of another size.
    pub fn recv_value<T: FromBytes>(&mut self) -> std::result::Result<T, RecvError> {
        let mut buf = Vec::with_capacity(std::mem::size_of::<T>());
        self.recv(&mut buf)?;
        value_of(&buf)
    }

    fn next_msg(
        &mut self,
        buf: &mut Vec<u8>,
        mut deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<usize, RecvError> {
        if platform::fork_count() != self.forks {
            return Err(RecvError::Mapping(forked(self.s.map, "mpsc recv")));
        }
        self.disarm();
        let mut rounds = 0u32;
        loop {
            rounds = rounds.wrapping_add(1);
            match deadline.stop_round(rounds, wait) {
                Some(true) => return Err(RecvError::Timeout),
                Some(false) => return Err(RecvError::Empty),
                None => {}
            }
            let pos = self.head;
            // Acquire: pairs with the producer's commit (SeqCst), after the message.
            let w = self.s.word(pos)?.load(Ordering::Acquire);
            if !serves(w, pos) {
                return Err(RecvError::Corrupt(
                    "a slot's word is not of the position it is at",
                ));
            }
            match state(w) {
                READY => {
                    let at = self.s.slot(pos);
                    let len = self
                        .s
                        .map
                        .atomic_u32(at + mat::LEN)?
                        .load(Ordering::Relaxed) as usize;
                    if len > self.s.max {
                        return Err(RecvError::Corrupt("a message longer than the largest"));
                    }
                    buf.clear();
                    buf.resize(len, 0);
                    self.s.map.read_at(at + HEADER, buf)?;
                    self.done(pos, false)?;
                    return Ok(len);
                }
                GIVEN_UP => self.done(pos, true)?,
                _ => self.wait_for(pos, w, &mut deadline, wait)?,
            }
        }
    }

    /// Prepares to wait for a message on the eventfd the producers signal
    /// ([`Sender::notify_with`]), outside this library; as
    /// [`spsc::Receiver::prepare_wait`](super::spsc::Receiver::prepare_wait). Every 100 ms it
    /// also looks at the slot it waits on: one whose writer died is skipped (then `Ok(false)`),
    /// and an empty channel whose producers are all gone is [`RecvError::ProducerGone`].
    ///
    /// # Errors
    /// [`RecvError::ProducerGone`], [`RecvError::Corrupt`], [`RecvError::Mapping`].
    pub fn prepare_wait(&mut self) -> std::result::Result<bool, RecvError> {
        if platform::fork_count() != self.forks {
            return Err(RecvError::Mapping(forked(self.s.map, "prepare_wait")));
        }
        // SeqCst, then the look at the slot: the Dekker pair of `wake` (a producer commits
        // with a SeqCst compare-and-swap, then reads this flag).
        self.s.consumer_parked.swap(wake::ARMED, Ordering::SeqCst);
        self.armed = true;
        let pos = self.head;
        let w = self.s.word(pos)?.load(Ordering::SeqCst);
        if !serves(w, pos) {
            self.disarm();
            return Err(RecvError::Corrupt(
                "a slot's word is not of the position it is at",
            ));
        }
        if matches!(state(w), READY | GIVEN_UP) {
            self.disarm();
            return Ok(false);
        }
        if self.looked.look(Instant::now()) {
            if state(w) == BUSY && self.writer_died(pos, w)? {
                self.skip_dead(pos, w)?;
                self.disarm();
                return Ok(false);
            }
            if state(w) == FREE {
                if let Some(gone) = self.producers_gone()? {
                    self.disarm();
                    return Err(gone);
                }
            }
        }
        Ok(true)
    }

    /// Lowers the flag `prepare_wait` raised.
    fn disarm(&mut self) {
        if self.armed {
            self.s.consumer_parked.store(0, Ordering::Relaxed);
            self.armed = false;
        }
    }

    /// Done with position `pos`: its slot freed, `head` moved on, a skip counted.
    fn done(&mut self, pos: u64, skipped: bool) -> std::result::Result<(), RecvError> {
        self.s.free(pos)?;
        self.head = pos.wrapping_add(1);
        self.s.head.store(self.head, Ordering::Relaxed);
        if skipped {
            self.skipped = self.skipped.wrapping_add(1);
            self.s.skipped.store(self.skipped, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Waits until the word of `pos` moves from `seen` (free: no message yet; busy: one
    /// being written). A busy slot whose producer died is skipped; an empty channel whose
    /// producers are all gone is [`RecvError::ProducerGone`].
    fn wait_for(
        &mut self,
        pos: u64,
        seen: u64,
        deadline: &mut Deadline,
        wait: bool,
    ) -> std::result::Result<(), RecvError> {
        if !wait {
            return Err(RecvError::Empty);
        }
        let slot = self.s.word(pos)?;
        let budget = self.backoff.budget(self.wait);
        let mut polls: u32 = 0;
        loop {
            if slot.load(Ordering::Acquire) != seen {
                if polls > 0 && polls <= budget {
                    self.backoff.found();
                }
                return Ok(());
            }
            if polls < budget {
                Backoff::pause(polls, self.wait);
                polls += 1;
                if deadline.spun_out(polls, self.wait) {
                    return Err(RecvError::Timeout);
                }
                if polls % LOOK_EVERY != 0 {
                    continue;
                }
            }
            self.s.map.check()?;
            if self.looked.look(Instant::now()) {
                if state(seen) == BUSY {
                    if self.writer_died(pos, seen)? {
                        self.skip_dead(pos, seen)?;
                        return Ok(());
                    }
                } else if let Some(gone) = self.producers_gone()? {
                    if slot.load(Ordering::Acquire) != seen {
                        return Ok(());
                    }
                    return Err(gone);
                }
            }
            if deadline.passed(Instant::now()) {
                return Err(RecvError::Timeout);
            }
            if polls >= budget && self.wait != Wait::Spin {
                wake::park(
                    self.s.consumer_parked,
                    self.s.data_seq,
                    deadline.at(),
                    || slot.load(Ordering::SeqCst) != seen,
                );
                self.backoff.slept();
            }
        }
    }

    /// Frees the slot of `pos` whose writer died (busy word `seen`) for the next lap, unless
    /// the word changed meanwhile (then the caller reads it again).
    fn skip_dead(&mut self, pos: u64, seen: u64) -> std::result::Result<(), RecvError> {
        let at = self.s.slot(pos);
        self.s
            .map
            .atomic_u64(at + mat::START)?
            .store(0, Ordering::Relaxed);
        // One compare-and-swap from the dead writer's word: a writer that finished after all
        // (it was not dead: another pid namespace) keeps its message, and one that finishes
        // later finds its commit refused.
        let freed = word(pos.wrapping_add(self.s.nslots), FREE, 0);
        if self
            .s
            .word(pos)?
            .compare_exchange(seen, freed, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            wake::wake_all_if_parked(self.s.producers_parked, self.s.space_seq);
            self.head = pos.wrapping_add(1);
            self.s.head.store(self.head, Ordering::Relaxed);
            self.skipped = self.skipped.wrapping_add(1);
            self.s.skipped.store(self.skipped, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether the producer named by busy word `seen` of `pos` is dead (its pid names no
    /// process, or one started at another time than the one that claimed the slot).
    fn writer_died(&self, pos: u64, seen: u64) -> Result<bool> {
        let start = self
            .s
            .map
            .atomic_u64(self.s.slot(pos) + mat::START)?
            .load(Ordering::Acquire);
        Ok(match super::endpoint::valid_pid(pid_of(seen)) {
            Some(pid) => !Claim::alive(pid, start),
            None => true,
        })
    }

    /// `ProducerGone` when some producer held a place and none holds one alive now.
    fn producers_gone(&self) -> Result<Option<RecvError>> {
        let mut gone = None;
        for i in 0..self.s.max_producers {
            match self.s.place(i)?.holder() {
                Holder::Alive(_) => return Ok(None),
                Holder::Never => {}
                Holder::Dead(pid) => gone = Some(RecvError::ProducerGone { pid, crashed: true }),
                Holder::Closed => {
                    if gone.is_none() {
                        gone = Some(RecvError::ProducerGone {
                            pid: 0,
                            crashed: false,
                        })
                    }
                }
            }
        }
        Ok(gone)
    }
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        if platform::fork_count() != self.forks {
            return;
        }
        self.s.consumer.release();
        // Producers asleep on a full channel learn it is closed now.
        wake::wake_all_if_parked(self.s.producers_parked, self.s.space_seq);
    }
}
