//! A single-producer, single-consumer channel of variable-length messages in shared memory.
//!
//! The layout is [`SpscLayout`](super::layout::SpscLayout): a 512-byte header (the positions
//! `head` and `tail` and the wait words each on a line of their own) and a ring of records.
//! The producer writes a record past `head` and publishes it by storing `head` (Release); the
//! consumer reads `head` (Acquire), the record, and gives the bytes back by storing `tail`
//! (Release), which the producer reads (Acquire) before it writes over them. Neither side ever
//! trusts what the other wrote: a position that goes back, runs past the other's or is not a
//! multiple of 8, and a record whose length or kind cannot be, end the channel with
//! `Corrupt`, and every byte is read and written through the mapping's bounds-checked copies,
//! so a hostile peer can make this side see garbage but never touch memory outside the
//! channel, loop for ever or panic.

use super::backoff::{Backoff, Deadline, Looked, Wait, LOOK_EVERY};
use super::endpoint::{forked, Claim, Holder};
use super::error::{RecvError, SendError};
use super::layout::{at, misplaced, SPSC_DATA};
use super::{wake, Flavor};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::EventFd;
use crate::platform;
use crate::sync::{init_once, InitOutcome};
use crate::Mapping;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// `init_once` tag and version of the layout.
const TAG: [u8; 4] = Flavor::Spsc.tag();
const VERSION: u16 = 1;
/// Record kinds, the top two bits of a record's stamp (never 0, as fresh memory is).
const MSG: u32 = 0x4000_0000;
const PAD: u32 = 0xc000_0000;
/// A record's header: length and kind.
const HEADER: usize = 8;
/// How long `open` waits for a creator that is still initializing the channel.
const OPEN_WAIT: Duration = Duration::from_secs(5);

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// The stamp of a record of `kind` at position `pos` of a channel of generation `gen`:
/// `(pos / 8 + gen) mod 2^30` and the kind's bits. A record of the lap before at the same
/// offset differs by `capacity / 8` (at most 2^29), one of the channel built here before by
/// its generation (each build takes the next): neither passes for a committed record.
fn stamp(gen: u32, pos: u64, kind: u32) -> u32 {
    (((pos >> 3) as u32).wrapping_add(gen) & 0x3fff_ffff) | kind
}

/// A record's header as one little-endian word: `len` then `stamp`.
fn header(len: u64, stamp: u32) -> u64 {
    (len & 0xffff_ffff) | (u64::from(stamp) << 32)
}

/// Whether positions read at open can be: within `capacity` of each other, either way
/// (modulo 2^64: the consumer may be past a head that a producer never published), both
/// multiples of 8.
fn positions_near(head: u64, tail: u64, cap: u64) -> bool {
    (head.wrapping_sub(tail) <= cap || tail.wrapping_sub(head) <= cap)
        && head % 8 == 0
        && tail % 8 == 0
}

/// The shape of an SPSC channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpscConfig {
    /// Bytes of data: a power of two, at least 64.
    pub capacity: usize,
    /// Largest message, in bytes: at most `capacity / 2 - 8`, so that one always fits
    /// (a record never wraps; one that would is preceded by padding to the end).
    pub max_message: usize,
}

impl SpscConfig {
    /// `capacity` bytes of data and the largest message it allows.
    pub fn new(capacity: usize) -> Self {
        SpscConfig {
            capacity,
            max_message: (capacity / 2).saturating_sub(HEADER),
        }
    }

    /// With messages of at most `max_message` bytes.
    pub fn max_message(self, max_message: usize) -> Self {
        SpscConfig {
            max_message,
            ..self
        }
    }

    /// Bytes the channel takes in a mapping: the header and the data.
    pub fn size(&self) -> usize {
        SPSC_DATA.saturating_add(self.capacity)
    }

    fn problem(&self) -> Option<String> {
        if !self.capacity.is_power_of_two() || self.capacity < 64 {
            return Some(format!(
                "capacity {} is not a power of two of at least 64",
                self.capacity
            ));
        }
        if self.capacity > 1 << 32 {
            return Some(format!(
                "capacity {} is more than 4 GiB (the largest a channel has)",
                self.capacity
            ));
        }
        if self.max_message == 0 || self.max_message > self.capacity / 2 - HEADER {
            return Some(format!(
                "the largest message ({} bytes) must be 1 to {} (half the capacity less 8)",
                self.max_message,
                self.capacity / 2 - HEADER
            ));
        }
        if self.max_message > u32::MAX as usize {
            return Some("the largest message is more than 4 GiB".into());
        }
        None
    }
}

/// The words of a channel that both sides use.
struct Shared<'a> {
    map: &'a Mapping,
    /// Where the data starts in the mapping.
    data: usize,
    cap: u64,
    mask: u64,
    max: usize,
    /// The channel's generation (in every record's stamp).
    gen: u32,
    head: &'a AtomicU64,
    tail: &'a AtomicU64,
    data_seq: &'a AtomicU32,
    consumer_parked: &'a AtomicU32,
    space_seq: &'a AtomicU32,
    producer_parked: &'a AtomicU32,
    producer: Claim<'a>,
    consumer: Claim<'a>,
}

/// Builds an SPSC channel at `offset` (a multiple of 128) of `map`, or opens the one there:
/// create-or-open through [`init_once`], so that two processes may both call it. Returns how
/// it went.
///
/// The data's pages are not touched here (a 4 GiB channel does not commit 4 GiB): the first
/// lap faults each page in, a few microseconds each. A latency-sensitive user writes a byte
/// into every page of a fresh segment before building the channel (as `shmkit bench` does).
///
/// # Errors
/// [`ErrorKind::InvalidArgument`] for a `config` that cannot work; [`ErrorKind::Misaligned`]
/// or [`ErrorKind::OutOfBounds`] when it does not fit at `offset`;
/// [`ErrorKind::AlreadyExists`] when a channel of another shape is there;
/// [`ErrorKind::BadLayout`] when something else is; as [`init_once`].
///
/// ```
/// use shmkit::channel::{spsc, Receiver, Sender, SpscConfig};
/// let config = SpscConfig::new(4096);
/// let seg = shmkit::AnonShared::new(config.size())?;
/// spsc::create(&seg, 0, config)?;
/// let mut tx = Sender::open(&seg, 0)?;
/// let mut rx = Receiver::open(&seg, 0)?;
/// tx.send(b"hello")?;
/// let mut buf = Vec::new();
/// rx.recv(&mut buf)?;
/// assert_eq!(buf, b"hello");
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn create(map: &Mapping, offset: usize, config: SpscConfig) -> Result<InitOutcome> {
    if let Some(why) = config.problem() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "channel create",
            map.object(),
            why,
        ));
    }
    if let Some(e) = misplaced(map, "channel create", offset, config.size()) {
        return Err(e);
    }
    let outcome = init_once(map, offset, TAG, VERSION, OPEN_WAIT, |m| {
        // The region may hold an older channel (or a dead initializer's half): every word of
        // the header is set, the claims cleared.
        m.atomic_u64(offset + at::CAPACITY)?
            .store(config.capacity as u64, Ordering::Relaxed);
        m.atomic_u32(offset + at::MAX_MESSAGE)?
            .store(config.max_message as u32, Ordering::Relaxed);
        // A new generation: records of the channel that was here before (if any) do not
        // pass for this one's.
        m.atomic_u32(offset + at::GENERATION)?
            .fetch_add(1, Ordering::Relaxed);
        for claim in [at::PRODUCER, at::CONSUMER] {
            m.atomic_u32(offset + claim)?.store(0, Ordering::Relaxed);
            m.atomic_u32(offset + claim + 4)?
                .store(0, Ordering::Relaxed);
            m.atomic_u64(offset + claim + 8)?
                .store(0, Ordering::Relaxed);
        }
        for word in [at::HEAD, at::TAIL] {
            m.atomic_u64(offset + word)?.store(0, Ordering::Relaxed);
        }
        for word in [
            at::DATA_SEQ,
            at::CONSUMER_PARKED,
            at::SPACE_SEQ,
            at::PRODUCER_PARKED,
        ] {
            m.atomic_u32(offset + word)?.store(0, Ordering::Relaxed);
        }
        // init_once publishes all of it (Release) when it marks the region ready.
        Ok(())
    })?;
    if outcome == InitOutcome::Opened {
        let s = Shared::open(map, offset, "channel create")?;
        if (s.cap as usize, s.max) != (config.capacity, config.max_message) {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "channel create",
                map.object(),
                format!(
                    "a channel of capacity {} with messages of at most {} bytes is there",
                    s.cap, s.max
                ),
            ));
        }
    }
    Ok(outcome)
}

/// An SPSC channel as seen from outside, without claiming an end: for an operator who
/// wants to know why one is stuck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpscStat {
    /// Bytes of data.
    pub capacity: u64,
    /// Largest message.
    pub max_message: usize,
    /// Bytes published by the producer, since the channel was built.
    pub head: u64,
    /// Bytes given back by the consumer.
    pub tail: u64,
    /// Bytes in the channel now (published and not given back), at most `capacity`; `None`
    /// when the positions make no sense (a corrupt channel). A consumer that is reading a
    /// run of waiting messages holds up to a quarter of the capacity it has read and not
    /// given back yet; one that read everything holds nothing.
    pub used: Option<u64>,
    /// The channel's generation (how many times one was built here).
    pub generation: u32,
    /// Who holds the producer end.
    pub producer: Holder,
    /// Who holds the consumer end.
    pub consumer: Holder,
    /// Whether each side is asleep waiting (producer for room, consumer for messages).
    pub parked: (bool, bool),
}

/// What the SPSC channel at `offset` of `map` holds and who holds its ends (the positions are
/// read one after the other: a moving channel shows a moment of each).
///
/// # Errors
/// As [`Sender::open`], without claiming anything.
pub fn stat(map: &Mapping, offset: usize) -> Result<SpscStat> {
    let s = Shared::open(map, offset, "channel stat")?;
    let head = s.head.load(Ordering::Acquire);
    let tail = s.tail.load(Ordering::Acquire);
    let used = head.wrapping_sub(tail);
    Ok(SpscStat {
        capacity: s.cap,
        max_message: s.max,
        head,
        tail,
        used: (used <= s.cap).then_some(used),
        generation: s.gen,
        producer: s.producer.holder(),
        consumer: s.consumer.holder(),
        parked: (
            s.producer_parked.load(Ordering::Relaxed) != 0,
            s.consumer_parked.load(Ordering::Relaxed) != 0,
        ),
    })
}

impl<'a> Shared<'a> {
    fn open(map: &'a Mapping, offset: usize, what: &'static str) -> Result<Self> {
        if let Some(e) = misplaced(map, what, offset, SPSC_DATA) {
            return Err(e);
        }
        init_once(map, offset, TAG, VERSION, OPEN_WAIT, |m| {
            Err(Error::new(
                ErrorKind::NotFound,
                what,
                m.object(),
                format!("no channel at offset {offset}: create it first (channel::spsc::create)"),
            ))
        })?;
        let cap = map
            .atomic_u64(offset + at::CAPACITY)?
            .load(Ordering::Relaxed);
        let max = map
            .atomic_u32(offset + at::MAX_MESSAGE)?
            .load(Ordering::Relaxed) as usize;
        // The creator may be buggy or hostile: the shape must make sense and fit.
        let config = SpscConfig {
            capacity: usize::try_from(cap).unwrap_or(usize::MAX),
            max_message: max,
        };
        if let Some(why) = config.problem() {
            return Err(Error::new(
                ErrorKind::BadLayout,
                what,
                map.object(),
                format!("the channel's header is invalid: {why}"),
            ));
        }
        if let Some(e) = misplaced(map, what, offset, config.size()) {
            return Err(e.with_kind(ErrorKind::BadLayout));
        }
        Ok(Shared {
            map,
            data: offset + SPSC_DATA,
            cap,
            mask: cap - 1,
            max,
            gen: map
                .atomic_u32(offset + at::GENERATION)?
                .load(Ordering::Relaxed),
            head: map.atomic_u64(offset + at::HEAD)?,
            tail: map.atomic_u64(offset + at::TAIL)?,
            data_seq: map.atomic_u32(offset + at::DATA_SEQ)?,
            consumer_parked: map.atomic_u32(offset + at::CONSUMER_PARKED)?,
            space_seq: map.atomic_u32(offset + at::SPACE_SEQ)?,
            producer_parked: map.atomic_u32(offset + at::PRODUCER_PARKED)?,
            producer: Claim::at(map, offset + at::PRODUCER)?,
            consumer: Claim::at(map, offset + at::CONSUMER)?,
        })
    }

    /// The end of the records committed from `head` on: stamped headers one after the other
    /// (the word after the last is marked uncommitted), scanning at most the capacity.
    fn committed_end(&self, head: u64) -> u64 {
        let mut pos = head;
        while pos.wrapping_sub(head) < self.cap {
            let off = pos & self.mask;
            let to_end = self.cap - off;
            let Ok(word) = self.map.atomic_u64(self.data + off as usize) else {
                break;
            };
            let h = word.load(Ordering::Acquire);
            let (len, got) = (h as u32 as usize, (h >> 32) as u32);
            let step = if got == stamp(self.gen, pos, MSG) {
                // The length checked before it is rounded: a hostile one must not overflow.
                if len > self.max {
                    break;
                }
                let size = (HEADER + round8(len)) as u64;
                if size > to_end {
                    break;
                }
                size
            } else if got == stamp(self.gen, pos, PAD) && len as u64 + HEADER as u64 == to_end {
                to_end
            } else {
                break;
            };
            if pos.wrapping_add(step).wrapping_sub(head) > self.cap {
                break;
            }
            pos = pos.wrapping_add(step);
        }
        pos
    }
}

/// The producer end of an SPSC channel.
///
/// One process (one `Sender`) at a time holds it: [`Sender::open`] claims it, and refuses
/// while a live process holds it; a dead holder's claim is taken over (what it wrote and had
/// not published is dropped). `Sender` is `Send` but not `Sync`: every call takes `&mut`.
/// Dropping it publishes what was committed and tells the consumer the channel is closed.
pub struct Sender<'a> {
    s: Shared<'a>,
    /// Where the next record goes (what is committed; may be ahead of what is published).
    head: u64,
    /// The last `head` stored.
    published: u64,
    /// The last `tail` seen.
    tail: u64,
    wait: Wait,
    backoff: Backoff,
    /// `platform::fork_count()` when the end was claimed: another value means this is a copy
    /// in a fork child.
    forks: u32,
    /// The consumer's eventfd, if it waits on one.
    notify: Option<EventFd>,
    /// When a wait last looked at the consumer (kept across waits).
    looked: Looked,
}

impl<'a> Sender<'a> {
    /// Claims the producer end of the channel at `offset` of `map`.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when no channel was created there (after waiting up to 5 s for
    /// one being created); [`ErrorKind::BadLayout`] for a header that makes no sense;
    /// [`ErrorKind::AlreadyExists`] while a live process holds the producer end.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let s = Shared::open(map, offset, "channel sender")?;
        let forks = s.producer.claim(map, "channel sender")?;
        let head = s.head.load(Ordering::Acquire);
        let tail = s.tail.load(Ordering::Acquire);
        // Go on after the last record committed: a producer that died may have committed
        // records it did not publish, which the consumer may have read already.
        let end = s.committed_end(head);
        if !positions_near(end, tail, s.cap) || end.wrapping_sub(tail) > s.cap {
            s.producer.release();
            return Err(Error::new(
                ErrorKind::BadLayout,
                "channel sender",
                map.object(),
                format!(
                    "the channel's positions make no sense (head {head}, committed to {end}, \
                     tail {tail})"
                ),
            ));
        }
        if end != head {
            wake::store_and_wake(s.head, end, s.consumer_parked, s.data_seq);
        }
        Ok(Sender {
            s,
            head: end,
            published: end,
            tail,
            wait: Wait::default(),
            backoff: Backoff::new(),
            forks,
            notify: None,
            looked: Looked(None),
        })
    }

    /// How this end waits for room ([`Wait::Adaptive`] unless set).
    pub fn set_wait(&mut self, wait: Wait) {
        self.wait = wait;
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.s.max
    }

    /// Bytes of data.
    pub fn capacity(&self) -> usize {
        self.s.cap as usize
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

    /// Copies `data` into a reserved slot (waiting for room until `deadline` if `wait`) and
    /// sends it.
    #[inline]
    fn send_with(
        &mut self,
        data: &[u8],
        deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<(), SendError> {
        // The Slot's steps without the Slot: this is the hot path, and the results that
        // cross function boundaries in memory cost store-forwarding stalls.
        let (at, need) = self.place(data.len(), deadline, wait)?;
        self.s.map.write_at(at, data)?;
        self.commit_at(at, data.len(), need);
        self.publish();
        Ok(())
    }

    /// Sends every message of `messages` with one publication at the end (and one more each
    /// time it must wait for room): the consumer sees the batch at once, for one update of
    /// the shared position.
    ///
    /// # Errors
    /// As [`Sender::send`]; the messages before the one that failed are sent.
    pub fn send_batch(&mut self, messages: &[&[u8]]) -> std::result::Result<(), SendError> {
        for m in messages {
            let (at, need) = self.place(m.len(), Deadline::never(), true)?;
            self.s.map.write_at(at, m)?;
            self.commit_at(at, m.len(), need);
        }
        self.publish();
        Ok(())
    }

    /// Sends the bytes of `value` (a type any process can read whatever bytes it holds).
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub fn send_value<T: IntoBytes + Immutable>(
        &mut self,
        value: &T,
    ) -> std::result::Result<(), SendError> {
        self.send(value.as_bytes())
    }

    /// Room for a message of `len` bytes, written in place and sent by [`Slot::commit`]:
    /// zero-copy. Waits for room as [`Sender::send`] does.
    ///
    /// # Errors
    /// As [`Sender::send`].
    pub fn reserve(&mut self, len: usize) -> std::result::Result<Slot<'_, 'a>, SendError> {
        self.reserve_inner(len, Deadline::never(), true)
    }

    /// As [`Sender::reserve`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::send_timeout`].
    pub fn reserve_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> std::result::Result<Slot<'_, 'a>, SendError> {
        self.reserve_inner(len, Deadline::after(timeout), true)
    }

    /// As [`Sender::reserve`], if there is room now.
    ///
    /// # Errors
    /// As [`Sender::try_send`].
    pub fn try_reserve(&mut self, len: usize) -> std::result::Result<Slot<'_, 'a>, SendError> {
        self.reserve_inner(len, Deadline::never(), false)
    }

    /// Makes the committed messages visible to the consumer (and wakes it if it sleeps).
    /// [`Slot::commit`] and the `send` calls do it themselves.
    #[inline]
    pub fn publish(&mut self) {
        // A copy in a fork child publishes nothing: the end is the parent's.
        if self.head != self.published && platform::fork_count() == self.forks {
            // The records written before are seen by a consumer that reads this head.
            let flag = wake::store_and_wake(
                self.s.head,
                self.head,
                self.s.consumer_parked,
                self.s.data_seq,
            );
            self.notify(flag);
            self.published = self.head;
        }
    }

    /// Also signals `eventfd` whenever it wakes a consumer that waits on it (one that called
    /// [`Receiver::prepare_wait`] and sleeps in `poll`/`epoll`, beside its sockets), instead
    /// of its futex. The consumer's process made the eventfd and passed it here (a
    /// [`Handle`](crate::handle::Handle) over a Unix socket, or inheritance). It costs a
    /// `write(2)` per wake-up, and the consumer an `epoll_wait` and a `read(2)`: see the
    /// README's measurements against the futex path. No system call is made while the
    /// consumer is not waiting.
    pub fn notify_with(&mut self, eventfd: EventFd) {
        self.notify = Some(eventfd);
    }

    /// Signals the consumer's eventfd if the flag seen says it waits on it.
    fn notify(&self, flag: u32) {
        if flag == wake::ARMED {
            if let Some(e) = &self.notify {
                // A full counter (2^64 - 2 signals unread) already wakes the consumer.
                let _ = e.signal();
            }
        }
    }

    #[inline]
    fn reserve_inner(
        &mut self,
        len: usize,
        deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<Slot<'_, 'a>, SendError> {
        let (at, need) = self.place(len, deadline, wait)?;
        Ok(Slot {
            tx: self,
            at,
            len,
            need,
        })
    }

    /// Room for a record of `len` bytes at `head` (after padding to the end if it would wrap):
    /// where its payload goes, and the record's size.
    #[inline(always)]
    fn place(
        &mut self,
        len: usize,
        deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<(usize, u64), SendError> {
        if platform::fork_count() != self.forks {
            return Err(SendError::Mapping(forked(self.s.map, "send")));
        }
        if len > self.s.max {
            return Err(SendError::TooLarge {
                len,
                max: self.s.max,
            });
        }
        let need = (HEADER + round8(len)) as u64;
        let off = self.head & self.s.mask;
        // A record does not wrap: padding to the end first if it would.
        let pad = if need > self.s.cap - off {
            self.s.cap - off
        } else {
            0
        };
        // Room for the record and for the word after it, which the commit marks uncommitted.
        self.room(pad + need + HEADER as u64, deadline, wait)?;
        if pad > 0 {
            let at = self.s.data + off as usize;
            // The record's own header slot, at the start of the data, is marked uncommitted
            // first (stale bytes there must not pass for a record), then the padding is
            // committed (Release).
            self.s
                .map
                .atomic_u64(self.s.data)?
                .store(0, Ordering::Relaxed);
            let h = header(pad - HEADER as u64, stamp(self.s.gen, self.head, PAD));
            self.s.map.atomic_u64(at)?.store(h, Ordering::Release);
            self.head = self.head.wrapping_add(pad);
        }
        // The payload, past the record's header.
        let at = self.s.data + (self.head & self.s.mask) as usize + HEADER;
        Ok((at, need))
    }

    /// Writes the header of the record whose payload is at `at` and moves `head` past it
    /// (the consumer sees it once published).
    #[inline(always)]
    fn commit_at(&mut self, at: usize, len: usize, need: u64) {
        let h = header(len as u64, stamp(self.s.gen, self.head, MSG));
        let next = self.s.data + (self.head.wrapping_add(need) & self.s.mask) as usize;
        // The word after the record is marked uncommitted first: what a lap before left there
        // (a payload's bytes) could otherwise pass for the next record's header. Then the
        // header (Release: the payload and the mark are seen by a consumer that reads it with
        // Acquire). A mapping that failed leaves the record unsent; the next call says why.
        if let (Ok(mark), Ok(word)) = (
            self.s.map.atomic_u64(next),
            self.s.map.atomic_u64(at - HEADER),
        ) {
            mark.store(0, Ordering::Relaxed);
            word.store(h, Ordering::Release);
            self.head = self.head.wrapping_add(need);
        }
    }

    /// Waits until `total` bytes are free past `head`.
    #[inline]
    fn room(
        &mut self,
        total: u64,
        mut deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<(), SendError> {
        if self.head.wrapping_sub(self.tail) + total <= self.s.cap {
            return Ok(());
        }
        let budget = if wait {
            self.backoff.budget(self.wait)
        } else {
            0
        };
        let mut polls: u32 = 0;
        let mut published = false;
        loop {
            self.load_tail()?;
            if self.head.wrapping_sub(self.tail) + total <= self.s.cap {
                if polls > 0 && polls <= budget {
                    self.backoff.found();
                }
                return Ok(());
            }
            if !wait {
                return Err(SendError::Full);
            }
            // The consumer may be waiting for what we have not published yet.
            if !published {
                self.publish();
                published = true;
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
            if polls >= budget && self.wait != Wait::Spin {
                let (tail, head, cap) = (self.s.tail, self.head, self.s.cap);
                wake::park(
                    self.s.producer_parked,
                    self.s.space_seq,
                    deadline.at(),
                    || {
                        let used = head.wrapping_sub(tail.load(Ordering::SeqCst));
                        used <= cap && used + total <= cap
                    },
                );
                self.backoff.slept();
            }
        }
    }

    /// Reads the consumer's position, checking it.
    fn load_tail(&mut self) -> std::result::Result<(), SendError> {
        // Acquire: the consumer's reads of the bytes it gave back happen before we write
        // over them.
        let t = self.s.tail.load(Ordering::Acquire);
        // Between the last one seen and `head`, modulo 2^64.
        if t.wrapping_sub(self.tail) > self.head.wrapping_sub(self.tail) || t % 8 != 0 {
            return Err(SendError::Corrupt(
                "the consumer's position went back, past what was sent, or off a multiple of 8",
            ));
        }
        self.tail = t;
        Ok(())
    }
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        // A copy in a fork child publishes nothing and lets go of nothing: the end is the
        // parent's.
        if platform::fork_count() != self.forks {
            return;
        }
        self.publish();
        self.s.producer.release();
        // A consumer asleep on an empty channel learns it is closed now, not at its next nap
        // (the claim was released SeqCst).
        let flag = wake::wake_if_parked(self.s.consumer_parked, self.s.data_seq);
        self.notify(flag);
    }
}

/// Room for one message, reserved by [`Sender::reserve`]: write it in place, then
/// [`commit`](Slot::commit). Dropped without a commit, nothing is sent.
pub struct Slot<'s, 'a> {
    tx: &'s mut Sender<'a>,
    /// Where the payload starts in the mapping.
    at: usize,
    len: usize,
    /// The record's bytes, header and padding included.
    need: u64,
}

impl<'s, 'a> Slot<'s, 'a> {
    /// The message's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` into the message at `pos`.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfBounds`] past the message's end; the mapping's errors.
    #[inline]
    pub fn write_at(&mut self, pos: usize, data: &[u8]) -> Result<()> {
        if pos.checked_add(data.len()).is_none_or(|end| end > self.len) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                "write_at",
                self.tx.s.map.object(),
                format!(
                    "bytes {pos}..{} are past the end of a {}-byte message",
                    pos as u128 + data.len() as u128,
                    self.len
                ),
            ));
        }
        self.tx.s.map.write_at(self.at + pos, data)
    }

    /// The message's first byte, to write it in place.
    ///
    /// Writing through it is `unsafe`: the `len` bytes from it are mapped and this process
    /// may write them until [`commit`](Slot::commit), but the consumer's process maps them
    /// too, so they are memory another process can reach: write with atomic or volatile
    /// stores only, and never make a `&mut [u8]` of them. The mapping's own checks
    /// ([`Mapping::check`]) are not made for such writes; a peer that truncated the object
    /// makes them fault (the mapping's SIGBUS guard then replaces the page).
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.tx.s.map.as_ptr().wrapping_add(self.at)
    }

    /// Sends the message.
    #[inline]
    pub fn commit(self) {
        let tx = self.commit_unpublished();
        tx.publish();
    }

    /// Commits the message without publishing it: it is sent with the next
    /// [`Sender::publish`] or send (batching: one update of the shared position for many
    /// messages).
    pub fn commit_later(self) {
        self.commit_unpublished();
    }

    /// Writes the record's header and moves `head` past it (the consumer sees it once
    /// published).
    #[inline]
    fn commit_unpublished(self) -> &'s mut Sender<'a> {
        let tx = self.tx;
        // A slot reserved by the parent and committed in a fork child is not sent (the
        // copying sends check once, in `place`).
        if platform::fork_count() == tx.forks {
            tx.commit_at(self.at, self.len, self.need);
        }
        tx
    }
}

/// The consumer end of an SPSC channel: one process at a time, as for [`Sender`].
pub struct Receiver<'a> {
    s: Shared<'a>,
    /// Where the next record is.
    tail: u64,
    /// The last `tail` stored (bytes up to `tail` are released but not given back yet).
    released: u64,
    /// The last `head` seen.
    head: u64,
    /// The producer's pid, as last seen holding its end.
    producer: i32,
    wait: Wait,
    backoff: Backoff,
    /// As for [`Sender`].
    forks: u32,
    /// Whether `prepare_wait` raised the parked flag (lowered by the next receive).
    armed: bool,
    /// When a wait (or `prepare_wait`) last looked at the producer: kept across waits, so
    /// that waits with short timeouts still look every 100 ms.
    looked: Looked,
}

impl<'a> Receiver<'a> {
    /// Claims the consumer end of the channel at `offset` of `map`.
    ///
    /// # Errors
    /// As [`Sender::open`], for the consumer end.
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        let s = Shared::open(map, offset, "channel receiver")?;
        let forks = s.consumer.claim(map, "channel receiver")?;
        let tail = s.tail.load(Ordering::Acquire);
        let head = s.head.load(Ordering::Acquire);
        // The consumer may have read past `head` (records committed, not yet published).
        if !positions_near(head, tail, s.cap) {
            s.consumer.release();
            return Err(Error::new(
                ErrorKind::BadLayout,
                "channel receiver",
                map.object(),
                format!("the channel's positions make no sense (head {head}, tail {tail})"),
            ));
        }
        Ok(Receiver {
            s,
            tail,
            released: tail,
            head: tail,
            producer: 0,
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

    /// Receives the next message into `buf` (replacing what it held), waiting as long as it
    /// takes; returns its length.
    ///
    /// # Errors
    /// [`RecvError::ProducerGone`] once the channel is empty and its producer died or let go;
    /// [`RecvError::Corrupt`], [`RecvError::Mapping`].
    pub fn recv(&mut self, buf: &mut Vec<u8>) -> std::result::Result<usize, RecvError> {
        self.recv_copy(buf, Deadline::never(), true)
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
        self.recv_copy(buf, Deadline::after(timeout), true)
    }

    /// As [`Receiver::recv`], if a message is there now.
    ///
    /// # Errors
    /// As [`Receiver::recv`]; [`RecvError::Empty`].
    pub fn try_recv(&mut self, buf: &mut Vec<u8>) -> std::result::Result<usize, RecvError> {
        self.recv_copy(buf, Deadline::never(), false)
    }

    /// The next message copied into `buf`, without a [`Msg`] in between (the hot path).
    #[inline(always)]
    fn recv_copy(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<usize, RecvError> {
        let (at, len, end) = self.locate(deadline, wait)?;
        buf.clear();
        buf.resize(len, 0);
        let copied = self.s.map.read_at(at, buf);
        // Released whatever the copy did, as a dropped `Msg` is: a mapping that failed is
        // not read again.
        self.release(end);
        copied?;
        Ok(len)
    }

    /// The next message in place, waiting as [`Receiver::recv`] does: zero-copy. Its bytes
    /// stay the consumer's until the [`Msg`] is dropped.
    ///
    /// # Errors
    /// As [`Receiver::recv`].
    pub fn recv_in_place(&mut self) -> std::result::Result<Msg<'_, 'a>, RecvError> {
        self.next(Deadline::never(), true)
    }

    /// As [`Receiver::recv_in_place`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_timeout`].
    pub fn recv_in_place_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::result::Result<Msg<'_, 'a>, RecvError> {
        self.next(Deadline::after(timeout), true)
    }

    /// As [`Receiver::recv_in_place`], if a message is there now.
    ///
    /// # Errors
    /// As [`Receiver::try_recv`].
    pub fn try_recv_in_place(&mut self) -> std::result::Result<Msg<'_, 'a>, RecvError> {
        self.next(Deadline::never(), false)
    }

    /// Receives a `T` (a type valid for every bit pattern), waiting as [`Receiver::recv`]
    /// does.
    ///
    /// # Errors
    /// As [`Receiver::recv`]; [`RecvError::WrongSize`] for a message of another size (it is
    /// consumed).
    pub fn recv_value<T: FromBytes>(&mut self) -> std::result::Result<T, RecvError> {
        let m = self.next(Deadline::never(), true)?;
        if m.len != std::mem::size_of::<T>() {
            return Err(RecvError::WrongSize {
                len: m.len,
                want: std::mem::size_of::<T>(),
            });
        }
        Ok(m.rx.s.map.read::<T>(m.at)?)
    }

    /// The next record that is a message: at `tail`, past any padding.
    #[inline]
    fn next(
        &mut self,
        deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<Msg<'_, 'a>, RecvError> {
        let (at, len, end) = self.locate(deadline, wait)?;
        Ok(Msg {
            rx: self,
            at,
            len,
            end,
        })
    }

    /// The next record that is a message: where its payload is, its length and where it
    /// ends.
    #[inline(always)]
    fn locate(
        &mut self,
        mut deadline: Deadline,
        wait: bool,
    ) -> std::result::Result<(usize, usize, u64), RecvError> {
        if platform::fork_count() != self.forks {
            return Err(RecvError::Mapping(forked(self.s.map, "recv")));
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
            let Some((len, kind)) = self.committed()? else {
                self.wait_for_record(&mut deadline, wait)?;
                continue;
            };
            let off = self.tail & self.s.mask;
            let to_end = self.s.cap - off;
            if kind == PAD {
                // Padding runs exactly to the end of the data.
                if len as u64 + HEADER as u64 != to_end {
                    return Err(RecvError::Corrupt("a padding record of the wrong length"));
                }
                self.tail = self.tail.wrapping_add(to_end);
                continue;
            }
            // The length checked before it is rounded: a hostile one must not overflow.
            let size = if len > self.s.max {
                u64::MAX
            } else {
                (HEADER + round8(len)) as u64
            };
            if size > to_end {
                return Err(RecvError::Corrupt(
                    "a message longer than the largest, or past the end of the data",
                ));
            }
            let at = self.s.data + off as usize + HEADER;
            let end = self.tail.wrapping_add(size);
            return Ok((at, len, end));
        }
    }

    /// The record at `tail`, if its producer committed it: its header's stamp is the one of
    /// this position and generation (see [`stamp`]), so neither a record of an earlier lap
    /// nor one of a channel that was here before passes for it. Length and kind.
    #[inline]
    fn committed(&self) -> std::result::Result<Option<(usize, u32)>, RecvError> {
        let at = self.s.data + (self.tail & self.s.mask) as usize;
        // Acquire: pairs with the producer's Release store of the header, after the payload.
        let h = self.s.map.atomic_u64(at)?.load(Ordering::Acquire);
        let (len, got) = (h as u32 as usize, (h >> 32) as u32);
        Ok(if got == stamp(self.s.gen, self.tail, MSG) {
            Some((len, MSG))
        } else if got == stamp(self.s.gen, self.tail, PAD) {
            Some((len, PAD))
        } else {
            None
        })
    }

    /// Reads the producer's position, checking it; whether it is past `tail` (then the
    /// record there must be committed: its header is written before the position).
    fn published_past_tail(&mut self) -> std::result::Result<bool, RecvError> {
        // Acquire: the records the producer wrote before publishing are seen.
        let h = self.s.head.load(Ordering::Acquire);
        // Within the capacity of what was given back, either way (modulo 2^64, as the
        // positions count for ever): the producer never passes it by more than the capacity,
        // and the consumer may be past `head`, reading records committed and not published yet.
        let ahead = h.wrapping_sub(self.released);
        let behind = self.released.wrapping_sub(h);
        if (ahead > self.s.cap && behind > self.s.cap) || h % 8 != 0 {
            return Err(RecvError::Corrupt(
                "the producer's position is more than the capacity away, or off a multiple of 8",
            ));
        }
        self.head = h;
        let past = ahead <= self.s.cap && ahead > self.tail.wrapping_sub(self.released);
        if past && self.committed()?.is_none() {
            return Err(RecvError::Corrupt("a record published without its header"));
        }
        Ok(past)
    }

    /// Waits until the record at `tail` is committed. While spinning it reads only that
    /// record's header, on the line the producer writes anyway (not `head`'s): one cache line
    /// moves per message.
    fn wait_for_record(
        &mut self,
        deadline: &mut Deadline,
        wait: bool,
    ) -> std::result::Result<(), RecvError> {
        if self.tail != self.released {
            self.give_back();
        }
        let budget = if wait {
            self.backoff.budget(self.wait)
        } else {
            0
        };
        let mut polls: u32 = 0;
        loop {
            if self.committed()?.is_some() {
                if polls > 0 && polls <= budget {
                    self.backoff.found();
                }
                return Ok(());
            }
            // A `try_` call reads no /proc: it says "empty" at once.
            if !wait {
                return if self.published_past_tail()? {
                    Ok(())
                } else {
                    Err(RecvError::Empty)
                };
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
            if self.published_past_tail()? {
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
                    // What it committed before it went is still to be read.
                    if self.committed()?.is_some() || self.published_past_tail()? {
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
                let (head, seen) = (self.s.head, self.head);
                wake::park(
                    self.s.consumer_parked,
                    self.s.data_seq,
                    deadline.at(),
                    || head.load(Ordering::SeqCst) != seen,
                );
                self.backoff.slept();
            }
        }
    }

    /// Done with the bytes up to `end`. They are given back to the producer a quarter of the
    /// capacity at a time while more messages are waiting (one store of `tail` and one look at
    /// the producer's flag for many messages), and at once when none is, so a consumer that
    /// read everything holds nothing back: a producer then has the whole channel, whatever
    /// the consumer does next (it may wait on another channel for this producer). Padding
    /// committed at the end is not a message waiting: a producer that padded and then dropped
    /// its slot, or still writes in it, must not find the bytes before it held.
    ///
    /// (Holding the bytes until this end next waits takes the give-back off the path between
    /// a message and the caller's answer, 24 ns of a 150 ns round trip, but then a burst that
    /// fits an empty channel no longer fits, and a consumer waiting elsewhere deadlocks it.
    /// A plain Release store for the last give-back, without the SeqCst swap, can miss a
    /// producer that parked in the same instant, which then sleeps until its nap; the loom
    /// model in tests/loom_protocol.rs finds that interleaving.)
    #[inline]
    fn release(&mut self, end: u64) {
        self.tail = end;
        if end.wrapping_sub(self.released) >= self.s.cap / 4
            || !matches!(self.committed(), Ok(Some((_, MSG))))
        {
            self.give_back();
        }
    }

    /// Prepares to wait for a message on the eventfd the producer signals
    /// ([`Sender::notify_with`]), outside this library (in `epoll` or an async runtime):
    /// announces the wait, then looks once more. `Ok(true)`: nothing is there, sleep until the
    /// eventfd is readable, read it, then receive with `try_recv` until `Empty` and prepare
    /// again. `Ok(false)`: a message is there already, receive it without sleeping. A producer
    /// that dies cannot signal: sleep with a timeout (100 ms, say) and prepare again, which
    /// then says [`RecvError::ProducerGone`] (it looks at the producer every 100 ms).
    ///
    /// # Errors
    /// [`RecvError::ProducerGone`] when the channel is empty and its producer is gone;
    /// [`RecvError::Corrupt`], [`RecvError::Mapping`].
    pub fn prepare_wait(&mut self) -> std::result::Result<bool, RecvError> {
        if platform::fork_count() != self.forks {
            return Err(RecvError::Mapping(forked(self.s.map, "prepare_wait")));
        }
        self.give_back();
        // SeqCst, then the look below: the Dekker pair of `wake` (the producer stores its
        // position SeqCst, then reads this flag).
        self.s.consumer_parked.swap(wake::ARMED, Ordering::SeqCst);
        // The looks below are Acquire loads: the fence makes the pair a Dekker pair in the
        // memory model (the swap alone is one on x86, not on every target).
        std::sync::atomic::fence(Ordering::SeqCst);
        self.armed = true;
        if self.ready_now()? {
            self.disarm();
            return Ok(false);
        }
        // A producer that let go is seen at once (its drop signalled the eventfd); one that
        // died, at the next look at /proc (every 100 ms).
        if self.s.producer.is_closed() {
            let pid = self.producer;
            return Err(self.gone_while_armed(pid, false));
        }
        if self.looked.look(Instant::now()) {
            match self.s.producer.holder() {
                Holder::Dead(pid) => return Err(self.gone_while_armed(pid, true)),
                Holder::Closed => {
                    let pid = self.producer;
                    return Err(self.gone_while_armed(pid, false));
                }
                Holder::Alive(pid) => self.producer = pid,
                Holder::Never => {}
            }
        }
        Ok(true)
    }

    /// Lowers the flag `prepare_wait` raised: the producer makes no wake-up call for messages
    /// this consumer takes without sleeping.
    fn disarm(&mut self) {
        if self.armed {
            self.s.consumer_parked.store(0, Ordering::Relaxed);
            self.armed = false;
        }
    }

    fn gone_while_armed(&mut self, pid: i32, crashed: bool) -> RecvError {
        self.disarm();
        RecvError::ProducerGone { pid, crashed }
    }

    /// Whether a record is committed at `tail`, or published past it.
    fn ready_now(&mut self) -> std::result::Result<bool, RecvError> {
        Ok(self.committed()?.is_some() || self.published_past_tail()?)
    }

    /// Gives back at once the bytes of every message received so far (they are otherwise
    /// given back a quarter of the capacity at a time, or when the channel is empty). A
    /// consumer that may die, to be replaced by another, calls it once it has handled a
    /// message: bytes not given back when it dies are received again by the next consumer
    /// (at least once, not at most once).
    pub fn give_back(&mut self) {
        // A copy in a fork child gives back nothing: the bytes are the parent's.
        if self.tail != self.released && platform::fork_count() == self.forks {
            self.give_back_all();
        }
    }

    /// Gives back every byte released.
    fn give_back_all(&mut self) {
        // Our reads of the messages happen before the producer writes over them (the swap
        // releases them; the producer reads `tail` with Acquire).
        wake::store_and_wake(
            self.s.tail,
            self.tail,
            self.s.producer_parked,
            self.s.space_seq,
        );
        self.released = self.tail;
    }
}

impl Drop for Receiver<'_> {
    fn drop(&mut self) {
        if platform::fork_count() != self.forks {
            return;
        }
        self.give_back();
        self.s.consumer.release();
        // A producer asleep on a full channel learns it is closed now.
        wake::wake_if_parked(self.s.producer_parked, self.s.space_seq);
    }
}

/// A received message, in place: read it, then drop it to give its bytes back.
pub struct Msg<'r, 'a> {
    rx: &'r mut Receiver<'a>,
    /// Where its payload starts in the mapping.
    at: usize,
    len: usize,
    /// `tail` once it is given back.
    end: u64,
}

impl Msg<'_, '_> {
    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies its bytes from `pos` into `buf`.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfBounds`] past its end; the mapping's errors.
    pub fn read_at(&self, pos: usize, buf: &mut [u8]) -> Result<()> {
        if pos.checked_add(buf.len()).is_none_or(|end| end > self.len) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                "read_at",
                self.rx.s.map.object(),
                format!(
                    "bytes {pos}..{} are past the end of a {}-byte message",
                    pos as u128 + buf.len() as u128,
                    self.len
                ),
            ));
        }
        self.rx.s.map.read_at(self.at + pos, buf)
    }

    /// Its bytes, copied.
    ///
    /// # Errors
    /// The mapping's errors.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.len];
        self.read_at(0, &mut v)?;
        Ok(v)
    }

    /// Its first byte, to read it in place.
    ///
    /// Reading through it is `unsafe`: the `len` bytes from it are mapped until the `Msg` is
    /// dropped, but the producer's process maps them too and a buggy or hostile one may
    /// write them meanwhile: read with atomic or volatile loads only, never make a `&[u8]` of
    /// them, and check what you read. The mapping's checks are not made for such reads.
    pub fn as_ptr(&self) -> *const u8 {
        self.rx.s.map.as_ptr().wrapping_add(self.at).cast_const()
    }
}

impl Drop for Msg<'_, '_> {
    fn drop(&mut self) {
        // A message received by the parent and dropped in a fork child gives nothing back.
        // (The copying receives check once, in `locate`.)
        if platform::fork_count() == self.rx.forks {
            self.rx.release(self.end);
        }
    }
}
