//! The channels' layouts as `#[repr(C)]` structs: the reference for a C program (or another
//! language) that shares a channel, and checked here against the offsets the code uses.
//! Every field is little-endian and accessed atomically by every process.

use crate::error::{Error, ErrorKind};
use crate::sync::layout::InitLayout;
use crate::Mapping;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// The spacing of the fields that different processes write: 128 bytes, two 64-byte lines,
/// because x86's adjacent-line prefetcher pulls lines in pairs and Apple's cores have
/// 128-byte lines (crossbeam's `CachePadded` uses the same).
pub const LINE: usize = 128;

/// One endpoint's claim: who holds it.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EndpointLayout {
    /// The holder's pid; 0 while nobody holds it.
    pub pid: u32,
    /// 0 never held, 1 held, 2 closed (its holder let go of it), 3 being claimed: the pid is
    /// the claimer's and `start` still the previous holder's (trust the pid; 1 follows once
    /// `start` is written).
    pub state: u32,
    /// The holder's start time (`/proc/PID/stat` field 22, clock ticks since boot), so that a
    /// pid reused by another process is not taken for the holder; 0 while being claimed.
    pub start: u64,
}

/// An SPSC channel's header: 512 bytes, followed by `capacity` bytes of data.
///
/// The data is a sequence of records, each at a multiple of 8: a header (`len: u32`,
/// `stamp: u32`) and `len` bytes, padded to a multiple of 8. The stamp is
/// `(position / 8 + generation) mod 2^30` in its low 30 bits and the kind in its top two
/// (`01` a message of `len` bytes, `11` padding to the end of the data); the producer writes
/// the header last (Release), so a consumer that finds the stamp of the position it is at
/// (Acquire) has the whole record, and a record of an earlier lap, or of a channel built
/// here before, never has it. A record never wraps: one that would is preceded by padding
/// to the end. `head` and `tail` count bytes from the start, for ever (modulo 2^64); a
/// record starts at `position % capacity`.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SpscLayout {
    /// [`init_once`](crate::sync::init_once)'s header, tag `"shCs"`, version 1.
    pub init: InitLayout,
    /// Bytes of data: a power of two, 64 to 2^32.
    pub capacity: u64,
    /// Largest message in bytes; `max_message + 8` is at most `capacity / 2`.
    pub max_message: u32,
    /// Bumped each time a channel is built here (it is in every record's stamp).
    pub generation: u32,
    /// The producer's claim.
    pub producer: EndpointLayout,
    /// The consumer's claim.
    pub consumer: EndpointLayout,
    /// Zero.
    pub reserved1: [u8; 64],
    /// Bytes published by the producer (written by the producer only).
    pub head: u64,
    /// Zero.
    pub reserved2: [u8; 120],
    /// Bytes released by the consumer (written by the consumer only).
    pub tail: u64,
    /// Zero.
    pub reserved3: [u8; 120],
    /// Bumped by the producer to wake a parked consumer (a futex word).
    pub data_seq: u32,
    /// 1 while the consumer is parked (or about to park) on `data_seq`.
    pub consumer_parked: u32,
    /// Bumped by the consumer to wake a parked producer (a futex word).
    pub space_seq: u32,
    /// 1 while the producer is parked (or about to park) on `space_seq`.
    pub producer_parked: u32,
    /// Zero.
    pub reserved4: [u8; 112],
}

/// Where the data starts, from the channel's offset.
pub const SPSC_DATA: usize = 512;

// The code addresses fields by these offsets; head, tail and the wait words are each on a
// line of their own.
pub(crate) mod at {
    use super::*;
    use std::mem::offset_of;
    pub const CAPACITY: usize = offset_of!(SpscLayout, capacity);
    pub const MAX_MESSAGE: usize = offset_of!(SpscLayout, max_message);
    pub const GENERATION: usize = offset_of!(SpscLayout, generation);
    pub const PRODUCER: usize = offset_of!(SpscLayout, producer);
    pub const CONSUMER: usize = offset_of!(SpscLayout, consumer);
    pub const HEAD: usize = offset_of!(SpscLayout, head);
    pub const TAIL: usize = offset_of!(SpscLayout, tail);
    pub const DATA_SEQ: usize = offset_of!(SpscLayout, data_seq);
    pub const CONSUMER_PARKED: usize = offset_of!(SpscLayout, consumer_parked);
    pub const SPACE_SEQ: usize = offset_of!(SpscLayout, space_seq);
    pub const PRODUCER_PARKED: usize = offset_of!(SpscLayout, producer_parked);
}

const _: () = {
    use std::mem::size_of;
    assert!(size_of::<EndpointLayout>() == 16);
    assert!(size_of::<SpscLayout>() == SPSC_DATA);
    assert!(at::HEAD == LINE);
    assert!(at::TAIL == 2 * LINE);
    assert!(at::DATA_SEQ == 3 * LINE);
    assert!(at::CAPACITY % 8 == 0 && at::PRODUCER % 8 == 0 && at::CONSUMER % 8 == 0);
};

/// A broadcast channel's header: 512 bytes, then `max_consumers` [`SubscriberLayout`]s, then
/// `slots` slots of `slot_size` bytes, each a [`BroadcastSlotLayout`] and the message.
///
/// Message `n` (counted from 0 for ever) goes in slot `n % slots`. The producer marks the
/// slot `2n + 1` (being written), writes the message, marks it `2n + 2` (Release) and then
/// stores `published = n + 1`: a seqlock per slot. A consumer copies the message out and reads
/// the mark again: if it changed, the producer lapped it while it read, and it skips ahead
/// to the oldest message still whole, counting the ones it lost.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BroadcastLayout {
    /// [`init_once`](crate::sync::init_once)'s header, tag `"shCb"`, version 1.
    pub init: InitLayout,
    /// Slots: a power of two, at least 2.
    pub slots: u32,
    /// Bytes of a slot: a power of two, at least 32; its header is 16 of them.
    pub slot_size: u32,
    /// Largest message in bytes: at most `slot_size - 16`.
    pub max_message: u32,
    /// Places for consumers: 1 to 1024.
    pub max_consumers: u32,
    /// Zero.
    pub reserved0: u64,
    /// The producer's claim.
    pub producer: EndpointLayout,
    /// Zero.
    pub reserved1: [u8; 72],
    /// Messages published (written by the producer only).
    pub published: u64,
    /// Zero.
    pub reserved2: [u8; 120],
    /// Bumped by the producer to wake parked consumers (a futex word).
    pub data_seq: u32,
    /// 1 while a consumer is parked (or about to park) on `data_seq`; lowered by the producer
    /// when it wakes them.
    pub consumers_parked: u32,
    /// Zero.
    pub reserved3: [u8; 248],
}

/// One consumer's place in a broadcast channel (128 bytes, written by that consumer only).
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SubscriberLayout {
    /// Its claim.
    pub claim: EndpointLayout,
    /// The next message it reads.
    pub cursor: u64,
    /// Messages it lost to overruns, in all.
    pub lost: u64,
    /// Zero.
    pub reserved: [u8; 96],
}

/// A broadcast slot's header (16 bytes), followed by the message.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BroadcastSlotLayout {
    /// `2n + 1` while message `n` is written here, `2n + 2` once it is whole; 0 never used.
    pub mark: u64,
    /// The message's length.
    pub len: u32,
    /// Zero.
    pub reserved: u32,
}

/// Where a broadcast channel's consumer places start, from its offset.
pub const BROADCAST_PLACES: usize = 512;
/// A broadcast slot's header.
pub const BROADCAST_SLOT_HEADER: usize = 16;

/// An MPSC channel's header: 512 bytes, then `max_producers` producer places (an
/// [`EndpointLayout`] each), then from the next multiple of 128 `slots` slots of `slot_size`
/// bytes, each an [`MpscSlotLayout`] and the message.
///
/// Each slot's `word` says whose it is: `tag << 26 | state << 24 | pid`, where `tag` is the
/// position (mod 2^38) it serves. A producer claims position `p` by swapping the word of slot
/// `p % slots` from free-for-`p` to busy-for-`p` with its pid (one compare-and-swap: a claim
/// always names its claimer), then moves `tail` on; it writes the message and marks the slot
/// ready. The consumer reads slot after slot in position order and frees each for the
/// position one lap later. A slot busy for a producer that died is skipped by the consumer,
/// so a crash mid-write costs that one message and wedges nothing.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MpscLayout {
    /// [`init_once`](crate::sync::init_once)'s header, tag `"shCm"`, version 1.
    pub init: InitLayout,
    /// Slots: a power of two, at least 2.
    pub slots: u32,
    /// Bytes of a slot: a power of two, at least 32; its header is 24 of them.
    pub slot_size: u32,
    /// Largest message in bytes: at most `slot_size - 24`.
    pub max_message: u32,
    /// Places for producers (1 to 4096), each an [`EndpointLayout`], from offset 512; the
    /// slots follow them at the next multiple of 128.
    pub max_producers: u32,
    /// The consumer's claim.
    pub consumer: EndpointLayout,
    /// Zero.
    pub reserved1: [u8; 80],
    /// The next position to claim (producers move it on, helping each other).
    pub tail: u64,
    /// Zero.
    pub reserved2: [u8; 120],
    /// The consumer's next position (written by the consumer only).
    pub head: u64,
    /// Messages skipped: their producer died before it finished them (or gave up the slot).
    pub skipped: u64,
    /// Zero.
    pub reserved3: [u8; 112],
    /// Bumped by producers to wake the parked consumer (a futex word).
    pub data_seq: u32,
    /// 1 while the consumer is parked (or about to park) on `data_seq`.
    pub consumer_parked: u32,
    /// Bumped by the consumer to wake parked producers (a futex word).
    pub space_seq: u32,
    /// 1 while a producer is parked on `space_seq`; lowered by the consumer when it wakes them.
    pub producers_parked: u32,
    /// Zero.
    pub reserved4: [u8; 112],
}

/// An MPSC slot's header (24 bytes), followed by the message.
#[repr(C)]
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct MpscSlotLayout {
    /// `tag << 26 | state << 24 | pid`: state 0 free, 1 busy (being written by `pid`), 2 ready,
    /// 3 given up (its producer will not finish it).
    pub word: u64,
    /// The claimer's start time (as [`EndpointLayout::start`]); 0 until written (the consumer
    /// clears it when it frees the slot).
    pub start: u64,
    /// The message's length.
    pub len: u32,
    /// Zero.
    pub reserved: u32,
}

/// Where an MPSC channel's producer places start, from its offset.
pub const MPSC_PLACES: usize = 512;
/// An MPSC slot's header.
pub const MPSC_SLOT_HEADER: usize = 24;

pub(crate) mod bat {
    use super::*;
    use std::mem::offset_of;
    pub const SLOTS: usize = offset_of!(BroadcastLayout, slots);
    pub const SLOT_SIZE: usize = offset_of!(BroadcastLayout, slot_size);
    pub const MAX_MESSAGE: usize = offset_of!(BroadcastLayout, max_message);
    pub const MAX_CONSUMERS: usize = offset_of!(BroadcastLayout, max_consumers);
    pub const PRODUCER: usize = offset_of!(BroadcastLayout, producer);
    pub const PUBLISHED: usize = offset_of!(BroadcastLayout, published);
    pub const DATA_SEQ: usize = offset_of!(BroadcastLayout, data_seq);
    pub const CONSUMERS_PARKED: usize = offset_of!(BroadcastLayout, consumers_parked);
    pub const CURSOR: usize = offset_of!(SubscriberLayout, cursor);
    pub const LOST: usize = offset_of!(SubscriberLayout, lost);
    pub const LEN: usize = offset_of!(BroadcastSlotLayout, len);
}

pub(crate) mod mat {
    use super::*;
    use std::mem::offset_of;
    pub const SLOTS: usize = offset_of!(MpscLayout, slots);
    pub const SLOT_SIZE: usize = offset_of!(MpscLayout, slot_size);
    pub const MAX_MESSAGE: usize = offset_of!(MpscLayout, max_message);
    pub const MAX_PRODUCERS: usize = offset_of!(MpscLayout, max_producers);
    pub const CONSUMER: usize = offset_of!(MpscLayout, consumer);
    pub const TAIL: usize = offset_of!(MpscLayout, tail);
    pub const HEAD: usize = offset_of!(MpscLayout, head);
    pub const SKIPPED: usize = offset_of!(MpscLayout, skipped);
    pub const DATA_SEQ: usize = offset_of!(MpscLayout, data_seq);
    pub const CONSUMER_PARKED: usize = offset_of!(MpscLayout, consumer_parked);
    pub const SPACE_SEQ: usize = offset_of!(MpscLayout, space_seq);
    pub const PRODUCERS_PARKED: usize = offset_of!(MpscLayout, producers_parked);
    pub const START: usize = offset_of!(MpscSlotLayout, start);
    pub const LEN: usize = offset_of!(MpscSlotLayout, len);
}

const _: () = {
    use std::mem::size_of;
    assert!(size_of::<BroadcastLayout>() == BROADCAST_PLACES);
    assert!(size_of::<SubscriberLayout>() == LINE);
    assert!(size_of::<BroadcastSlotLayout>() == BROADCAST_SLOT_HEADER);
    assert!(bat::PUBLISHED == LINE);
    assert!(bat::DATA_SEQ == 2 * LINE);
    assert!(bat::PRODUCER % 8 == 0);
    assert!(size_of::<MpscLayout>() == MPSC_PLACES);
    assert!(size_of::<MpscSlotLayout>() == MPSC_SLOT_HEADER);
    assert!(mat::TAIL == LINE);
    assert!(mat::HEAD == 2 * LINE);
    assert!(mat::DATA_SEQ == 3 * LINE);
    assert!(mat::CONSUMER % 8 == 0);
};

/// Why a channel of `need` bytes cannot be at `offset` of `map`, if it cannot.
pub(super) fn misplaced(
    map: &Mapping,
    what: &'static str,
    offset: usize,
    need: usize,
) -> Option<Error> {
    if offset % LINE != 0 {
        return Some(Error::new(
            ErrorKind::Misaligned,
            what,
            map.object(),
            format!("offset {offset} is not a multiple of {LINE}"),
        ));
    }
    if offset.checked_add(need).is_none_or(|end| end > map.len()) {
        return Some(Error::new(
            ErrorKind::OutOfBounds,
            what,
            map.object(),
            format!(
                "a {need}-byte channel at offset {offset} does not fit in {} bytes",
                map.len()
            ),
        ));
    }
    None
}
