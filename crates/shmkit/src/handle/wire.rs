//! The bytes of a handle message, defined in one place.
//!
//! ```text
//! offset size  field
//!      0    4  magic "SHMH"
//!      4    2  version (1), little-endian
//!      6    2  number of handles N (at most MAX_HANDLES)
//!      8    4  payload length P, little-endian
//!     12 16*N  one record per handle:
//!                kind u8 (1 memfd, 2 posix-shm, 3 eventfd, 4 pidfd), access u8 (0 read-only,
//!                1 read-write), 2 bytes zero, seals u32 (F_SEAL_* bits), size u64
//! 12+16N    P  payload
//! ```
//! The N descriptors travel as one `SCM_RIGHTS` message with the first byte, in the order of
//! the records.

use super::{Access, Kind};
use crate::Seals;

/// The first bytes of every handle message.
pub(crate) const MAGIC: [u8; 4] = *b"SHMH";
/// The format's version; a receiver refuses any other.
pub(crate) const VERSION: u16 = 1;
/// The fixed part.
pub(crate) const HEAD: usize = 12;
/// One handle's record.
pub(crate) const RECORD: usize = 16;
/// Most handles in one message.
pub const MAX_HANDLES: usize = 16;

/// The fixed part of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub count: usize,
    pub payload: usize,
}

/// One handle as its record describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub kind: Kind,
    pub access: Access,
    pub seals: Seals,
    pub size: u64,
}

pub(crate) fn encode(records: &[Record], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + RECORD * records.len() + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(records.len() as u16).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    for r in records {
        out.push(r.kind.code());
        out.push(match r.access {
            Access::ReadOnly => 0,
            Access::ReadWrite => 1,
        });
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&r.seals.bits().to_le_bytes());
        out.extend_from_slice(&r.size.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// Parses the fixed part; `Err` says what is wrong with it.
pub(crate) fn head(b: &[u8; HEAD], max_payload: usize) -> Result<Head, String> {
    if b[..4] != MAGIC {
        return Err(format!("not a handle message (magic {:02x?})", &b[..4]));
    }
    let version = u16::from_le_bytes([b[4], b[5]]);
    if version != VERSION {
        return Err(format!(
            "handle message version {version}, this side speaks {VERSION}"
        ));
    }
    let count = usize::from(u16::from_le_bytes([b[6], b[7]]));
    if count > MAX_HANDLES {
        return Err(format!(
            "{count} handles in one message, more than {MAX_HANDLES}"
        ));
    }
    let payload = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
    if payload > max_payload {
        return Err(format!(
            "a {payload}-byte payload, more than the {max_payload} allowed"
        ));
    }
    Ok(Head { count, payload })
}

/// Parses one record.
pub(crate) fn record(b: &[u8]) -> Result<Record, String> {
    let kind = Kind::from_code(b[0]).ok_or_else(|| format!("unknown handle kind {}", b[0]))?;
    let access = match b[1] {
        0 => Access::ReadOnly,
        1 => Access::ReadWrite,
        a => return Err(format!("unknown access mode {a}")),
    };
    if b[2..4] != [0, 0] {
        return Err("reserved bytes are not zero".into());
    }
    let seals = Seals::from_bits_retain(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
    let size = u64::from_le_bytes(b[8..16].try_into().expect("16-byte record"));
    Ok(Record {
        kind,
        access,
        seals,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_and_lies_in_the_head_are_caught() {
        let r = Record {
            kind: Kind::Memfd,
            access: Access::ReadOnly,
            seals: Seals::FUTURE_WRITE,
            size: 4096,
        };
        let m = encode(&[r], b"hi");
        let h = head(m[..HEAD].try_into().unwrap(), 64).unwrap();
        assert_eq!(
            h,
            Head {
                count: 1,
                payload: 2
            }
        );
        assert_eq!(record(&m[HEAD..HEAD + RECORD]).unwrap(), r);
        assert!(head(m[..HEAD].try_into().unwrap(), 1)
            .unwrap_err()
            .contains("payload"));
        let mut bad = m.clone();
        bad[0] = b'X';
        assert!(head(bad[..HEAD].try_into().unwrap(), 64).is_err());
        let mut bad = m.clone();
        bad[6] = 200;
        assert!(head(bad[..HEAD].try_into().unwrap(), 64)
            .unwrap_err()
            .contains("200 handles"));
        let mut bad = m;
        bad[HEAD] = 9;
        assert!(record(&bad[HEAD..HEAD + RECORD]).is_err());
    }
}
