//! One producer, many consumers: every consumer sees every message, each at its own pace, and
//! the producer never waits for any of them.
//!
//! The layout is [`BroadcastLayout`](super::layout::BroadcastLayout): a ring of fixed-size
//! slots, each guarded by a seqlock mark. A consumer that falls a lap behind is told how many
//! messages it lost ([`RecvError::Overrun`]) and goes on from the oldest one still there, as
//! tokio's `broadcast` does. Consumers write nothing the producer reads but a shared "someone is
//! parked" flag, so a slow, stopped or hostile consumer cannot slow the producer down by more
//! than a wake-up call.
//!
//! Consumers take one of the channel's places (`max_consumers`, claimed like an SPSC end,
//! a dead holder's taken over) and start at the next message published.
//!
//! ```
//! use shmkit::channel::broadcast::{self, BroadcastConfig, Receiver, Sender};
//! let config = BroadcastConfig::new(4096).max_message(100).max_consumers(4);
//! let seg = shmkit::AnonShared::new(config.size())?;
//! broadcast::create(&seg, 0, config)?;
//! let mut a = Receiver::open(&seg, 0)?;
//! let mut b = Receiver::open(&seg, 0)?;
//! let mut tx = Sender::open(&seg, 0)?;
//! tx.send(b"to everyone")?;
//! let mut buf = Vec::new();
//! a.recv(&mut buf)?;
//! assert_eq!(buf, b"to everyone");
//! b.recv(&mut buf)?;
//! assert_eq!(buf, b"to everyone");
//! # Ok::<(), shmkit::Error>(())
//! ```

use super::backoff::{Backoff, Deadline, Looked, Wait, LOOK_EVERY};
use super::endpoint::{claim_first, forked, Claim, Holder};
use super::error::{value_of, RecvError, SendError};
use super::layout::{bat, misplaced, BROADCAST_PLACES, BROADCAST_SLOT_HEADER, LINE};
use super::{slots, wake, Flavor};
use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use crate::sync::{init_once, InitOutcome};
use crate::Mapping;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, Immutable, IntoBytes};

const TAG: [u8; 4] = Flavor::Broadcast.tag();
const VERSION: u16 = 1;
const OPEN_WAIT: Duration = Duration::from_secs(5);
const HEADER: usize = BROADCAST_SLOT_HEADER;
/// The most consumer places a channel has.
const MOST_CONSUMERS: usize = 1024;

/// The shape of a broadcast channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastConfig {
    /// Bytes of slots: a power of two, at least 64.
    pub capacity: usize,
    /// Largest message: each slot holds one, so the slots are `max_message + 16` bytes
    /// rounded up to a power of two, and there are `capacity` / that many of them (at least 2).
    pub max_message: usize,
    /// Places for consumers (1 to 1024), each 128 bytes.
    pub max_consumers: usize,
}

impl BroadcastConfig {
    /// `capacity` bytes of slots of a sixteenth of it each (32 to 1024 bytes), 16 places.
    pub fn new(capacity: usize) -> Self {
        BroadcastConfig {
            capacity,
            max_message: slots::default_max_message(capacity, HEADER),
            max_consumers: 16,
        }
    }

    /// With messages of at most `max_message` bytes.
    pub fn max_message(self, max_message: usize) -> Self {
        BroadcastConfig {
            max_message,
            ..self
        }
    }

    /// With `max_consumers` places for consumers.
    pub fn max_consumers(self, max_consumers: usize) -> Self {
        BroadcastConfig {
            max_consumers,
            ..self
        }
    }

    /// Messages the channel holds (its slots).
    pub fn slots(&self) -> usize {
        self.capacity / slots::slot_size(self.max_message, HEADER)
    }

    /// Bytes the channel takes in a mapping: header, places and slots.
    pub fn size(&self) -> usize {
        BROADCAST_PLACES
            .saturating_add(self.max_consumers.saturating_mul(LINE))
            .saturating_add(self.capacity)
    }

    fn problem(&self) -> Option<String> {
        if !(1..=MOST_CONSUMERS).contains(&self.max_consumers) {
            return Some(format!(
                "{} consumer places: a channel has 1 to {MOST_CONSUMERS}",
                self.max_consumers
            ));
        }
        slots::problem(self.capacity, self.max_message, HEADER)
    }
}

/// The words every side uses.
struct Shared<'a> {
    map: &'a Mapping,
    /// Where the consumer places start in the mapping.
    places: usize,
    /// Where the slots start.
    slots_at: usize,
    nslots: u64,
    mask: u64,
    slot_size: usize,
    max: usize,
    max_consumers: usize,
    published: &'a AtomicU64,
    data_seq: &'a AtomicU32,
    consumers_parked: &'a AtomicU32,
    producer: Claim<'a>,
}

impl<'a> Shared<'a> {
    fn open(map: &'a Mapping, offset: usize, what: &'static str) -> Result<Self> {
        if let Some(e) = misplaced(map, what, offset, BROADCAST_PLACES) {
            return Err(e);
        }
        init_once(map, offset, TAG, VERSION, OPEN_WAIT, |m| {
            Err(Error::new(
                ErrorKind::NotFound,
                what,
                m.object(),
                format!(
                    "no broadcast channel at offset {offset}: create it first \
                     (channel::broadcast::create)"
                ),
            ))
        })?;
        let word = |at: usize| -> Result<usize> {
            Ok(map.atomic_u32(offset + at)?.load(Ordering::Relaxed) as usize)
        };
        let (nslots, slot_size) = (word(bat::SLOTS)?, word(bat::SLOT_SIZE)?);
        let config = BroadcastConfig {
            capacity: nslots.saturating_mul(slot_size),
            max_message: word(bat::MAX_MESSAGE)?,
            max_consumers: word(bat::MAX_CONSUMERS)?,
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
                format!("the broadcast channel's header is invalid: {why}"),
            ));
        }
        if let Some(e) = misplaced(map, what, offset, config.size()) {
            return Err(e.with_kind(ErrorKind::BadLayout));
        }
        let places = offset + BROADCAST_PLACES;
        Ok(Shared {
            map,
            places,
            slots_at: places + config.max_consumers * LINE,
            nslots: nslots as u64,
            mask: nslots as u64 - 1,
            slot_size,
            max: config.max_message,
            max_consumers: config.max_consumers,
            published: map.atomic_u64(offset + bat::PUBLISHED)?,
            data_seq: map.atomic_u32(offset + bat::DATA_SEQ)?,
            consumers_parked: map.atomic_u32(offset + bat::CONSUMERS_PARKED)?,
            producer: Claim::at(map, offset + bat::PRODUCER)?,
        })
    }

    /// Where message `n`'s slot is.
    fn slot(&self, n: u64) -> usize {
        self.slots_at + (n & self.mask) as usize * self.slot_size
    }

    /// Slot `n`'s mark.
    fn mark(&self, n: u64) -> Result<&'a AtomicU64> {
        self.map.atomic_u64(self.slot(n))
    }
}

/// The mark of message `n` once it is whole.
fn whole(n: u64) -> u64 {
    n.wrapping_mul(2).wrapping_add(2)
}

/// Builds a broadcast channel at `offset` (a multiple of 128) of `map`, or opens the one
/// there (create-or-open, as [`spsc::create`](super::spsc::create)).
///
/// # Errors
/// As [`spsc::create`](super::spsc::create).
pub fn create(map: &Mapping, offset: usize, config: BroadcastConfig) -> Result<InitOutcome> {
    if let Some(why) = config.problem() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "broadcast create",
            map.object(),
            why,
        ));
    }
    if let Some(e) = misplaced(map, "broadcast create", offset, config.size()) {
        return Err(e);
    }
    let slot_size = slots::slot_size(config.max_message, HEADER);
    let outcome = init_once(map, offset, TAG, VERSION, OPEN_WAIT, |m| {
        // The region may hold an older channel (or a dead initializer's half): every word the
        // code reads is set, every mark cleared (so no old message passes for a new one).
        for (at, value) in [
            (bat::SLOTS, config.slots() as u32),
            (bat::SLOT_SIZE, slot_size as u32),
            (bat::MAX_MESSAGE, config.max_message as u32),
            (bat::MAX_CONSUMERS, config.max_consumers as u32),
            (bat::DATA_SEQ, 0),
            (bat::CONSUMERS_PARKED, 0),
        ] {
            m.atomic_u32(offset + at)?.store(value, Ordering::Relaxed);
        }
        m.atomic_u64(offset + bat::PUBLISHED)?
            .store(0, Ordering::Relaxed);
        let places = offset + BROADCAST_PLACES;
        let claims = std::iter::once(offset + bat::PRODUCER)
            .chain((0..config.max_consumers).map(|i| places + i * LINE));
        for claim in claims {
            m.write_at(claim, &[0; 16])?;
        }
        for i in 0..config.max_consumers {
            m.write_at(places + i * LINE + bat::CURSOR, &[0; 16])?;
        }
        let slots_at = places + config.max_consumers * LINE;
        for i in 0..config.slots() {
            m.atomic_u64(slots_at + i * slot_size)?
                .store(0, Ordering::Relaxed);
        }
        // init_once publishes all of it (Release) when it marks the region ready.
        Ok(())
    })?;
    if outcome == InitOutcome::Opened {
        let s = Shared::open(map, offset, "broadcast create")?;
        let there = (s.nslots as usize * s.slot_size, s.max, s.max_consumers);
        if there != (config.capacity, config.max_message, config.max_consumers) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "broadcast create",
                map.object(),
                format!(
                    "a broadcast channel of capacity {} with messages of at most {} bytes and \
                     {} consumer places is there",
                    there.0, there.1, there.2
                ),
            ));
        }
    }
    Ok(outcome)
}

/// A broadcast channel as seen from outside, without claiming anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastStat {
    /// Messages the channel holds.
    pub slots: u64,
    /// Bytes of a slot.
    pub slot_size: usize,
    /// Largest message.
    pub max_message: usize,
    /// Places for consumers.
    pub max_consumers: usize,
    /// Messages published since the channel was built.
    pub published: u64,
    /// Who holds the producer end.
    pub producer: Holder,
    /// The places ever taken.
    pub consumers: Vec<SubscriberStat>,
    /// Whether a consumer is asleep waiting for messages.
    pub parked: bool,
}

/// One consumer's place, as [`stat`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberStat {
    /// Its index among the places.
    pub place: usize,
    /// Who holds it.
    pub holder: Holder,
    /// The next message it reads.
    pub cursor: u64,
    /// Messages published that it has not read (those past a lap are lost to it).
    pub behind: u64,
    /// Messages it lost to overruns.
    pub lost: u64,
}

/// What the broadcast channel at `offset` of `map` holds and who reads it.
///
/// # Errors
/// As [`Sender::open`], without claiming anything.
pub fn stat(map: &Mapping, offset: usize) -> Result<BroadcastStat> {
    let s = Shared::open(map, offset, "broadcast stat")?;
    let published = s.published.load(Ordering::Acquire);
    let mut consumers = Vec::new();
    for place in 0..s.max_consumers {
        let at = s.places + place * LINE;
        let holder = Claim::at(map, at)?.holder();
        if holder == Holder::Never {
            continue;
        }
        let cursor = map.atomic_u64(at + bat::CURSOR)?.load(Ordering::Relaxed);
        consumers.push(SubscriberStat {
            place,
            holder,
            cursor,
            behind: published.saturating_sub(cursor),
            lost: map.atomic_u64(at + bat::LOST)?.load(Ordering::Relaxed),
        });
    }
    Ok(BroadcastStat {
        slots: s.nslots,
        slot_size: s.slot_size,
        max_message: s.max,
        max_consumers: s.max_consumers,
        published,
        producer: s.producer.holder(),
        consumers,
        parked: s.consumers_parked.load(Ordering::Relaxed) != 0,
    })
}

/// The producer end of a broadcast channel: one process at a time holds it (as an SPSC
/// producer end). Sending never waits: the oldest message is written over.
pub struct Sender<'a> {
    s: Shared<'a>,
    /// The next message's number.
    next: u64,
    /// The last `published` stored.
    published: u64,
    forks: u32,
}

impl<'a> Sender<'a> {
    /// Claims the producer end of the broadcast channel at `offset` of `map`.
    ///
    /// # Errors
    /// As [`spsc::Sender::open`](super::spsc::Sender::open).
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let s = Shared::open(map, offset, "broadcast sender")?;
        let forks = s.producer.claim(map, "broadcast sender")?;
        let published = s.published.load(Ordering::Acquire);
        // Go on after the last message written whole: a producer that died may have written
        // messages it did not publish, which consumers (reading the marks) may have read.
        let mut next = published;
        while next.wrapping_sub(published) < s.nslots
            && s.mark(next)?.load(Ordering::Acquire) == whole(next)
        {
            next = next.wrapping_add(1);
        }
        let mut tx = Sender {
            s,
            next,
            published,
            forks,
        };
        tx.publish();
        Ok(tx)
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.s.max
    }

    /// Messages the channel holds.
    pub fn slots(&self) -> usize {
        self.s.nslots as usize
    }

    /// Sends `data` to every consumer. Never waits.
    ///
    /// # Errors
    /// [`SendError::TooLarge`]; [`SendError::Mapping`] (the mapping failed, or this is a
    /// fork child).
    pub fn send(&mut self, data: &[u8]) -> std::result::Result<(), SendError> {
        self.write(data)?;
        self.publish();
        Ok(())
    }

    /// Sends every message of `messages`, publishing them together (one store and one look
    /// at the parked flag for all of them, and at least every half lap).
    ///
    /// # Errors
    /// As [`Sender::send`], checked for every message before any is written.
    pub fn send_batch(&mut self, messages: &[&[u8]]) -> std::result::Result<(), SendError> {
        if let Some(m) = messages.iter().find(|m| m.len() > self.s.max) {
            return Err(SendError::TooLarge {
                len: m.len(),
                max: self.s.max,
            });
        }
        for m in messages {
            self.write(m)?;
            // Consumers tell a lap from garbage by `published`: never let it lag by more
            // than half the slots.
            if self.next.wrapping_sub(self.published) >= self.s.nslots / 2 {
                self.publish();
            }
        }
        self.publish();
        Ok(())
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

    /// Writes message `next` into its slot, unpublished.
    fn write(&mut self, data: &[u8]) -> std::result::Result<(), SendError> {
        if platform::fork_count() != self.forks {
            return Err(SendError::Mapping(forked(self.s.map, "broadcast send")));
        }
        if data.len() > self.s.max {
            return Err(SendError::TooLarge {
                len: data.len(),
                max: self.s.max,
            });
        }
        let n = self.next;
        let at = self.s.slot(n);
        let mark = self.s.mark(n)?;
        // The seqlock's writer (as crossbeam's `AtomicCell`): the odd mark, then a Release
        // fence, so that a consumer that sees any byte of the new message (and then fences
        // with Acquire) sees the odd mark or a later one when it reads the mark again.
        mark.store(whole(n).wrapping_sub(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.s
            .map
            .atomic_u32(at + bat::LEN)?
            .store(data.len() as u32, Ordering::Relaxed);
        self.s.map.write_at(at + HEADER, data)?;
        // Release: a consumer that reads this mark (Acquire) sees the whole message.
        mark.store(whole(n), Ordering::Release);
        self.next = n.wrapping_add(1);
        Ok(())
    }

    /// Publishes what was written, waking the consumers that sleep.
    fn publish(&mut self) {
        if self.next != self.published {
            wake::store_and_wake_all(
                self.s.published,
                self.next,
                self.s.consumers_parked,
                self.s.data_seq,
            );
            self.published = self.next;
        }
    }
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        if platform::fork_count() != self.forks {
            return;
        }
        self.publish();
        self.s.producer.release();
        // Consumers asleep learn now that the producer is gone (the claim was let go SeqCst).
        wake::wake_all_if_parked(self.s.consumers_parked, self.s.data_seq);
    }
}

/// A consumer of a broadcast channel: one of its places, reading every message from the
/// next one published when it opened.
pub struct Receiver<'a> {
    s: Shared<'a>,
    place: Claim<'a>,
    cursor: &'a AtomicU64,
    lost_word: &'a AtomicU64,
    /// The next message's number.
    next: u64,
    lost: u64,
    /// The producer's pid, as last seen holding its end.
    producer: i32,
    wait: Wait,
    backoff: Backoff,
    forks: u32,
    /// When a wait last looked at the producer (kept across waits).
    looked: Looked,
}

impl<'a> Receiver<'a> {
    /// Takes a consumer place of the broadcast channel at `offset` of `map` (one never taken,
    /// let go of, or whose holder died).
    ///
    /// # Errors
    /// As [`spsc::Receiver::open`](super::spsc::Receiver::open);
    /// [`ErrorKind::AlreadyExists`] when live processes hold every place.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let s = Shared::open(map, offset, "broadcast receiver")?;
        let offsets = (0..s.max_consumers).map(|i| s.places + i * LINE);
        if let Some((i, place, forks)) = claim_first(map, offsets)? {
            let at = s.places + i * LINE;
            let next = s.published.load(Ordering::Acquire);
            let cursor = map.atomic_u64(at + bat::CURSOR)?;
            let lost_word = map.atomic_u64(at + bat::LOST)?;
            cursor.store(next, Ordering::Relaxed);
            lost_word.store(0, Ordering::Relaxed);
            return Ok(Receiver {
                s,
                place,
                cursor,
                lost_word,
                next,
                lost: 0,
                producer: 0,
                wait: Wait::default(),
                backoff: Backoff::new(),
                forks,
                looked: Looked(None),
            });
        }
        Err(Error::new(
            ErrorKind::AlreadyExists,
            "broadcast receiver",
            map.object(),
            format!(
                "live processes hold all {} consumer places of the channel",
                s.max_consumers
            ),
        )
        .with_hint("make the channel with more places (max_consumers), or stop a consumer"))
    }

    /// How this consumer waits for messages ([`Wait::Adaptive`] unless set).
    pub fn set_wait(&mut self, wait: Wait) {
        self.wait = wait;
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.s.max
    }

    /// Messages this consumer lost to overruns since it opened.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Receives the next message into `buf` (replacing what it held), waiting as long as it
    /// takes; returns its length.
    ///
    /// # Errors
    /// [`RecvError::Overrun`] once when the producer lapped this consumer (the next call
    /// returns the oldest message still there); [`RecvError::ProducerGone`] once every
    /// message published is read and the producer died or let go; [`RecvError::Corrupt`],
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
            return Err(RecvError::Mapping(forked(self.s.map, "broadcast recv")));
        }
        let mut rounds = 0u32;
        loop {
            rounds = rounds.wrapping_add(1);
            match deadline.stop_round(rounds, wait) {
                Some(true) => return Err(RecvError::Timeout),
                Some(false) => return Err(RecvError::Empty),
                None => {}
            }
            let n = self.next;
            let at = self.s.slot(n);
            let mark = self.s.mark(n)?;
            // Acquire: pairs with the producer's Release store of the whole mark.
            let m1 = mark.load(Ordering::Acquire);
            if m1 == whole(n) {
                let len = self
                    .s
                    .map
                    .atomic_u32(at + bat::LEN)?
                    .load(Ordering::Relaxed) as usize;
                // A length torn by a lap is caught by the mark below; copy at most the largest.
                buf.clear();
                buf.resize(len.min(self.s.max), 0);
                self.s.map.read_at(at + HEADER, buf)?;
                // The seqlock's reader: the copies happen before the mark is read again.
                fence(Ordering::Acquire);
                let m2 = mark.load(Ordering::Relaxed);
                if m2 != m1 {
                    return Err(self.lapped(m2)?);
                }
                if len > self.s.max {
                    return Err(RecvError::Corrupt("a message longer than the largest"));
                }
                self.next = n.wrapping_add(1);
                self.cursor.store(self.next, Ordering::Relaxed);
                return Ok(len);
            }
            if m1 > whole(n) {
                return Err(self.lapped(m1)?);
            }
            // Not written yet (an earlier lap's mark, or being written).
            let p = self.s.published.load(Ordering::Acquire);
            if p.wrapping_sub(n).wrapping_sub(1) < 1 << 62 {
                // Published past `n`: its mark was whole before `published` was stored.
                if mark.load(Ordering::Acquire) < whole(n) {
                    return Err(RecvError::Corrupt("a message published without its mark"));
                }
                continue;
            }
            if n.wrapping_sub(p) > self.s.nslots {
                return Err(RecvError::Corrupt(
                    "the producer's count is more than a lap behind this consumer",
                ));
            }
            self.wait_for(n, m1, &mut deadline, wait)?;
        }
    }

    /// The producer lapped this consumer: the slot of `next` holds a later message (mark
    /// `mark`). Moves on to the oldest message that may still be whole and says how many
    /// were lost.
    fn lapped(&mut self, mark: u64) -> std::result::Result<RecvError, RecvError> {
        // The message in the slot, and so a lower bound of the producer's.
        let in_slot = mark.saturating_sub(1) / 2;
        let p = self.s.published.load(Ordering::Acquire);
        if in_slot > p && in_slot - p > self.s.nslots {
            return Err(RecvError::Corrupt(
                "a slot's mark is more than a lap ahead of the producer",
            ));
        }
        let producer = in_slot.max(p);
        // The producer may be writing `producer` now, over `producer - slots`: the oldest
        // message whole is the one after that.
        let oldest = producer.saturating_add(1).saturating_sub(self.s.nslots);
        if oldest <= self.next {
            return Err(RecvError::Corrupt("a slot's mark is ahead of the producer"));
        }
        let lost = oldest - self.next;
        self.next = oldest;
        self.lost = self.lost.saturating_add(lost);
        self.cursor.store(oldest, Ordering::Relaxed);
        self.lost_word.store(self.lost, Ordering::Relaxed);
        Ok(RecvError::Overrun { lost })
    }

    /// Waits until message `n`'s mark moves from `seen` (or `published` passes `n`). While
    /// spinning it reads only that mark, on the line the producer writes anyway.
    fn wait_for(
        &mut self,
        n: u64,
        seen: u64,
        deadline: &mut Deadline,
        wait: bool,
    ) -> std::result::Result<(), RecvError> {
        if !wait {
            return Err(RecvError::Empty);
        }
        let mark = self.s.mark(n)?;
        let budget = self.backoff.budget(self.wait);
        let mut polls: u32 = 0;
        let published = |s: &Shared<'_>| {
            s.published
                .load(Ordering::SeqCst)
                .wrapping_sub(n)
                .wrapping_sub(1)
                < 1 << 62
        };
        loop {
            if mark.load(Ordering::Acquire) != seen {
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
            if published(&self.s) {
                return Ok(());
            }
            self.s.map.check()?;
            match if self.looked.look(Instant::now()) {
                self.s.producer.holder()
            } else {
                Holder::Never
            } {
                Holder::Alive(pid) => self.producer = pid,
                Holder::Never => {}
                gone => {
                    // What it published before it went is still to be read.
                    if mark.load(Ordering::Acquire) != seen || published(&self.s) {
                        return Ok(());
                    }
                    return Err(match gone {
                        Holder::Dead(pid) => RecvError::ProducerGone { pid, crashed: true },
                        _ => RecvError::ProducerGone {
                            pid: self.producer,
                            crashed: false,
                        },
                    });
                }
            }
            if deadline.passed(Instant::now()) {
                return Err(RecvError::Timeout);
            }
            if polls >= budget && self.wait != Wait::Spin {
                let s = &self.s;
                wake::park_shared(s.consumers_parked, s.data_seq, deadline.at(), || {
                    published(s)
                });
                self.backoff.slept();
            }
        }
    }
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        if platform::fork_count() == self.forks {
            self.place.release();
        }
    }
}
