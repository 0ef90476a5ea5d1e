//! A bridged message on the wire: a 40-byte header, then the payload as it was in the local
//! channel. The header says which bridge and which of its routes sent the message, and its
//! number on that route, so that the receiving side can tell gaps, duplicates and its own
//! messages come back (a loop). A route with nothing to send says every 100 ms how far it
//! has sent (a frame of kind 1, no payload), so that messages lost at the end of a burst
//! count as a gap too, not only those lost before a later message.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "SHMB"
//!      4     1  version (1)
//!      5     1  kind: 0 a message, 1 "sent up to" (its sequence: the last message sent)
//!      6     2  zero
//!      8    16  origin: the sending bridge's Zenoh session id
//!     24     4  route: the sending route's number within that bridge, from a random start
//!               for each session (little-endian)
//!     28     4  zero
//!     32     8  sequence: the message's number on its route, from 0 (little-endian)
//!     40     -  payload
//! ```
//!
//! Anything published on the key expression that does not parse (another program's data, a
//! hostile peer's) is counted and dropped; no field of it is trusted beyond the checks here.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The header's length.
pub const HEADER: usize = 40;

const MAGIC: [u8; 4] = *b"SHMB";
const VERSION: u8 = 1;

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
struct Header {
    magic: [u8; 4],
    version: u8,
    kind: u8,
    zero: [u8; 2],
    bridge: [u8; 16],
    route: U32,
    zero2: [u8; 4],
    seq: U64,
}

const _: () = assert!(std::mem::size_of::<Header>() == HEADER);

/// Who sent a message: a bridge (its Zenoh session id) and one of its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The sending bridge's Zenoh session id.
    pub bridge: [u8; 16],
    /// The route's number within that bridge.
    pub route: u32,
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A local channel's message, number `seq` of its route.
    Message = 0,
    /// No message: the route has sent every number up to `seq` (and has nothing newer).
    SentUpTo = 1,
}

/// A frame read off the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// What it is.
    pub kind: Kind,
    /// Who sent it.
    pub origin: Origin,
    /// Its number on its route.
    pub seq: u64,
    /// The local channel's message.
    pub payload: &'a [u8],
}

/// Why bytes are not a bridged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// Shorter than the header.
    Short,
    /// Not the magic word: not a shmkit bridge's message.
    Magic,
    /// Another version of the format.
    Version(u8),
    /// A field that must be zero is not, or an unknown kind.
    Reserved,
    /// A "sent up to" frame with a payload.
    Payload,
}

/// Writes the frame of message `seq` into `out` (cleared first).
pub fn encode(origin: Origin, seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    encode_kind(Kind::Message, origin, seq, payload, out);
}

/// Writes the header of message `seq` over the first [`HEADER`] bytes of `frame`, whose rest
/// is its payload already (a payload copied once, straight after the header's place).
///
/// # Panics
/// If `frame` is shorter than the header.
pub fn encode_header(origin: Origin, seq: u64, frame: &mut [u8]) {
    frame[..HEADER].copy_from_slice(header(Kind::Message, origin, seq).as_bytes());
}

fn header(kind: Kind, origin: Origin, seq: u64) -> Header {
    Header {
        magic: MAGIC,
        version: VERSION,
        kind: kind as u8,
        zero: [0; 2],
        bridge: origin.bridge,
        route: U32::new(origin.route),
        zero2: [0; 4],
        seq: U64::new(seq),
    }
}

/// Writes the frame that says the route has sent every message up to `seq` into `out`.
pub fn encode_sent_up_to(origin: Origin, seq: u64, out: &mut Vec<u8>) {
    encode_kind(Kind::SentUpTo, origin, seq, &[], out);
}

fn encode_kind(kind: Kind, origin: Origin, seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let h = header(kind, origin, seq);
    out.clear();
    out.reserve(HEADER + payload.len());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(payload);
}

/// Reads a frame.
///
/// # Errors
/// [`Garbage`] for bytes that are not one.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, Garbage> {
    let (h, payload) = Header::ref_from_prefix(bytes).map_err(|_| Garbage::Short)?;
    if h.magic != MAGIC {
        return Err(Garbage::Magic);
    }
    if h.version != VERSION {
        return Err(Garbage::Version(h.version));
    }
    let kind = match h.kind {
        0 => Kind::Message,
        1 => Kind::SentUpTo,
        _ => return Err(Garbage::Reserved),
    };
    if h.zero != [0; 2] || h.zero2 != [0; 4] {
        return Err(Garbage::Reserved);
    }
    if kind == Kind::SentUpTo && !payload.is_empty() {
        return Err(Garbage::Payload);
    }
    Ok(Frame {
        kind,
        origin: Origin {
            bridge: h.bridge,
            route: h.route.get(),
        },
        seq: h.seq.get(),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Origin = Origin {
        bridge: [7; 16],
        route: 3,
    };

    #[test]
    fn a_frame_reads_back_as_written() {
        let mut out = Vec::new();
        for payload in [&b""[..], b"x", &[0xff; 1000]] {
            encode(O, u64::MAX - 1, payload, &mut out);
            assert_eq!(out.len(), HEADER + payload.len());
            assert_eq!(
                decode(&out),
                Ok(Frame {
                    kind: Kind::Message,
                    origin: O,
                    seq: u64::MAX - 1,
                    payload
                })
            );
        }
    }

    #[test]
    fn a_header_written_before_its_payload_is_the_same_frame() {
        let mut whole = Vec::new();
        encode(O, 9, b"payload", &mut whole);
        let mut frame = vec![0xee; HEADER];
        frame.extend_from_slice(b"payload");
        encode_header(O, 9, &mut frame);
        assert_eq!(frame, whole);
    }

    #[test]
    fn garbage_is_told_apart_and_never_panics() {
        let mut out = Vec::new();
        encode(O, 1, b"payload", &mut out);
        for n in 0..HEADER {
            assert_eq!(decode(&out[..n]), Err(Garbage::Short), "{n} bytes");
        }
        let mut bad = out.clone();
        bad[0] = b'X';
        assert_eq!(decode(&bad), Err(Garbage::Magic));
        let mut bad = out.clone();
        bad[4] = 2;
        assert_eq!(decode(&bad), Err(Garbage::Version(2)));
        for kind in [2, 0x80, 0xff] {
            let mut bad = out.clone();
            bad[5] = kind;
            assert_eq!(decode(&bad), Err(Garbage::Reserved), "kind {kind}");
        }
        // "Sent up to" carries nothing.
        let mut up = Vec::new();
        encode_sent_up_to(O, 41, &mut up);
        assert_eq!(up.len(), HEADER);
        let f = decode(&up).unwrap();
        assert_eq!(
            (f.kind, f.origin, f.seq, f.payload),
            (Kind::SentUpTo, O, 41, &[][..])
        );
        up.push(0);
        assert_eq!(decode(&up), Err(Garbage::Payload));
        for at in [6, 7, 28, 29, 30, 31] {
            let mut bad = out.clone();
            bad[at] = 1;
            assert_eq!(decode(&bad), Err(Garbage::Reserved), "byte {at}");
        }
        // Every single-byte change elsewhere still parses (origin, route, sequence,
        // payload are anyone's to choose) and nothing panics on any of them.
        for at in 0..out.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = out.clone();
                b[at] = v;
                let _ = decode(&b);
            }
        }
    }
}
