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
