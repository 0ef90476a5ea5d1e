//! The header every shared synchronization block starts with: a magic word naming the kind
//! of block and a layout version.

use crate::error::{Error, ErrorKind, Result};
use crate::Mapping;
use std::sync::atomic::{AtomicU32, Ordering};

/// The words of one block, borrowed from the mapping that holds them.
pub(crate) struct Block<'a, const N: usize> {
    pub(crate) words: [&'a AtomicU32; N],
    pub(crate) offset: usize,
}

/// Layout version written by this shmkit. A change to any block's layout bumps it.
pub(crate) const VERSION: u32 = 1;

impl<'a, const N: usize> Block<'a, N> {
    /// The `N` words at `offset`, which must be a multiple of 8 and leave room for them.
    pub(crate) fn at(map: &'a Mapping, offset: usize, what: &'static str) -> Result<Self> {
        if offset % 8 != 0 {
            return Err(Error::new(
                ErrorKind::Misaligned,
                what,
                map.object(),
                format!("offset {offset} is not a multiple of 8"),
            ));
        }
        let end = offset.checked_add(N * 4);
        if end.is_none_or(|e| e > map.len()) {
            return Err(Error::new(
                ErrorKind::OutOfBounds,
                what,
                map.object(),
                format!(
                    "a {}-byte block at offset {offset} does not fit in {} bytes",
                    N * 4,
                    map.len()
                ),
            ));
        }
        let mut words = [map.atomic_u32(offset)?; N];
        for (i, w) in words.iter_mut().enumerate() {
            *w = map.atomic_u32(offset + 4 * i)?;
        }
        Ok(Block { words, offset })
    }

    /// Builds a block at `offset`: the words after the header get `body`, then zeros; the
    /// header (`magic`, and `extra` in the 16 bits next to the version) is written last, so a
    /// peer that checks the magic word (Acquire) sees an initialized block.
    pub(crate) fn build(
        map: &'a Mapping,
        offset: usize,
        what: &'static str,
        magic: u32,
        extra: u32,
        body: &[u32],
    ) -> Result<Self> {
        let b = Self::at(map, offset, what)?;
        for (i, w) in b.words[2..].iter().enumerate() {
            w.store(body.get(i).copied().unwrap_or(0), Ordering::SeqCst);
        }
        b.words[1].store(VERSION | (extra << 16), Ordering::Relaxed);
        b.words[0].store(magic, Ordering::Release);
        Ok(b)
    }

    /// The block another process built at `offset`, after checking its header; with the 16
    /// bits stored next to the version.
    pub(crate) fn open(
        map: &'a Mapping,
        offset: usize,
        what: &'static str,
        magic: u32,
    ) -> Result<(Self, u32)> {
        let b = Self::at(map, offset, what)?;
        let extra = b.check(map, magic, what)?;
        Ok((b, extra))
    }

    fn check(&self, map: &Mapping, magic: u32, what: &'static str) -> Result<u32> {
        let m = self.words[0].load(Ordering::Acquire);
        let v = self.words[1].load(Ordering::Relaxed);
        if m != magic {
            return Err(Error::new(
                ErrorKind::BadLayout,
                what,
                map.object(),
                format!(
                    "no {what} block at offset {}: magic word {m:#010x}, expected {magic:#010x} \
                     (not initialized yet, or something else lives there)",
                    self.offset
                ),
            ));
        }
        if v & 0xffff != VERSION {
            return Err(Error::new(
                ErrorKind::BadLayout,
                what,
                map.object(),
                format!(
                    "the {what} block at offset {} has layout version {}; this shmkit reads \
                     version {VERSION}",
                    self.offset,
                    v & 0xffff
                ),
            ));
        }
        Ok(v >> 16)
    }
}

/// Little-endian magic word from four ASCII bytes, readable in a hex dump.
pub(crate) const fn magic(tag: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*tag)
}
