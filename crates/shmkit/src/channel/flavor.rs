//! Which kind of channel a region holds, from its first 16 bytes (the `init_once` header):
//! so that a tool that finds a segment (the inventory, `shmkit channel stat`) can tell a
//! channel from other shared memory without claiming anything.

use crate::sync::layout::InitLayout;
use crate::Mapping;
use zerocopy::FromBytes;

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// One producer, one consumer ([`spsc`](super::spsc)).
    Spsc,
    /// One producer, many consumers each with its own cursor ([`broadcast`](super::broadcast)).
    Broadcast,
    /// Many producers, one consumer ([`mpsc`](super::mpsc)).
    Mpsc,
}

/// `init_once`'s "ready" word.
const READY: u32 = u32::from_le_bytes(*b"shkR");

impl Flavor {
    /// Every flavor.
    pub const ALL: [Flavor; 3] = [Flavor::Spsc, Flavor::Broadcast, Flavor::Mpsc];

    /// Its name in listings and on the command line: `spsc`, `broadcast`, `mpsc`.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Spsc => "spsc",
            Flavor::Broadcast => "broadcast",
            Flavor::Mpsc => "mpsc",
        }
    }

    /// The `init_once` tag of its layout.
    pub const fn tag(self) -> [u8; 4] {
        match self {
            Flavor::Spsc => *b"shCs",
            Flavor::Broadcast => *b"shCb",
            Flavor::Mpsc => *b"shCm",
        }
    }

    /// The flavor of a ready channel whose first bytes are `head` (at least 16: an
    /// [`InitLayout`]); `None` for anything else (too short, not ready, another tag).
    ///
    /// ```
    /// use shmkit::channel::{spsc, Flavor, SpscConfig};
    /// let seg = shmkit::AnonShared::new(4096)?;
    /// let mut head = [0u8; 16];
    /// seg.read_at(0, &mut head)?;
    /// assert_eq!(Flavor::from_header(&head), None);
    /// spsc::create(&seg, 0, SpscConfig::new(1024))?;
    /// seg.read_at(0, &mut head)?;
    /// assert_eq!(Flavor::from_header(&head), Some(Flavor::Spsc));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn from_header(head: &[u8]) -> Option<Flavor> {
        let (init, _) = InitLayout::read_from_prefix(head).ok()?;
        if init.state != READY {
            return None;
        }
        Flavor::ALL
            .into_iter()
            .find(|f| u32::from_le_bytes(f.tag()) == init.tag)
    }

    /// Whether a segment of `len` bytes holds the whole channel whose first 32 bytes are
    /// `head` (the size its shape declares, from offset 0); false for a shorter `head`.
    ///
    /// ```
    /// use shmkit::channel::{spsc, Flavor, SpscConfig};
    /// let seg = shmkit::AnonShared::new(4096)?;
    /// spsc::create(&seg, 0, SpscConfig::new(1024))?;
    /// let mut head = [0u8; 32];
    /// seg.read_at(0, &mut head)?;
    /// assert!(Flavor::Spsc.fits(&head, 512 + 1024));
    /// assert!(!Flavor::Spsc.fits(&head, 1000));
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn fits(self, head: &[u8], len: u64) -> bool {
        let word = |at: usize| -> Option<u64> {
            Some(u64::from(u32::from_le_bytes(
                head.get(at..at + 4)?.try_into().ok()?,
            )))
        };
        let need = match self {
            Flavor::Spsc => head
                .get(16..24)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .and_then(|cap| cap.checked_add(512)),
            Flavor::Broadcast | Flavor::Mpsc => (|| {
                let (slots, slot_size, places) = (word(16)?, word(20)?, word(28)?);
                let places = if self == Flavor::Broadcast {
                    places.checked_mul(128)?
                } else {
                    places.checked_mul(16)?.div_ceil(128) * 128
                };
                slots.checked_mul(slot_size)?.checked_add(512 + places)
            })(),
        };
        need.is_some_and(|n| n <= len)
    }

    /// The flavor of the channel at `offset` of `map`, if a ready one is there.
    pub fn at(map: &Mapping, offset: usize) -> Option<Flavor> {
        let mut head = [0u8; 16];
        map.read_at(offset, &mut head).ok()?;
        Flavor::from_header(&head)
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
