//! The channels' layouts as `#[repr(C)]` structs: the reference for a C program (or another
//! language) that shares a channel, and checked here against the offsets the code uses.
//! Every field is little-endian and accessed atomically by every process.

use crate::sync::layout::InitLayout;
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
    /// 0 never held, 1 held, 2 closed (its holder let go of it).
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
