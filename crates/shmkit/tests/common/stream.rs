//! A stream of checkable messages for the channel tests: each carries its sequence number
//! and the checksum of its random bytes.

/// A POSIX segment of `size` bytes under a unique name starting with `prefix`, removed when
/// the cleanup is dropped (also when the test fails).
pub fn segment(prefix: &str, size: usize) -> (shmkit::PosixShm, super::Cleanup<impl FnMut()>) {
    let name = format!("/{}", super::unique(prefix));
    let n = name.clone();
    let gone = super::Cleanup(move || {
        let _ = shmkit::PosixShm::unlink_name(&n);
    });
    (shmkit::PosixShm::create(&name, size).unwrap(), gone)
}

/// An SPSC channel of `config` in this process's own anonymous shared memory, for tests of
/// one process (threads, or a `fork` child).
#[cfg(target_os = "linux")]
pub fn private_spsc(config: shmkit::channel::SpscConfig) -> shmkit::AnonShared {
    let seg = shmkit::AnonShared::new(config.size()).unwrap();
    shmkit::channel::spsc::create(&seg, 0, config).unwrap();
    seg
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed by seed.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// FNV-1a.
pub fn checksum(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, x| {
        (h ^ u64::from(*x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Message `i` of a stream: its sequence number, the checksum of the rest, and `len - 16`
/// bytes from `rng` (`len` at least 16).
pub fn message(i: u64, len: usize, rng: &mut Rng, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&i.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    while out.len() < len {
        out.push(rng.next() as u8);
    }
    let sum = checksum(&out[16..]);
    out[8..16].copy_from_slice(&sum.to_le_bytes());
}

const MESSAGES_DEFAULT: u64 = 1_000_000;

pub fn messages() -> u64 {
    std::env::var("SHMKIT_CHANNEL_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MESSAGES_DEFAULT)
}

/// The sequence number of a message of the stream, once its checksum is checked.
pub fn check(buf: &[u8]) -> u64 {
    assert!(buf.len() >= 16, "a {}-byte message", buf.len());
    let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
    let sum = u64::from_le_bytes(buf[8..16].try_into().unwrap());
    assert_eq!(sum, checksum(&buf[16..]), "message {seq} corrupted");
    seq
}
