//! Property tests of the channels' validation layer: whatever a hostile peer writes into a
//! channel's header and first slots (ready as far as `init_once` is concerned, every other
//! word arbitrary, on a mapping of arbitrary size), opening, inspecting, sending and
//! receiving never panic (also not on arithmetic overflow: the tests run in debug) and never
//! touch memory outside the mapping; they return a value or an error.
#![cfg(target_os = "linux")]

use proptest::prelude::*;
use shmkit::channel::{broadcast, mpsc, spsc, Flavor};
use shmkit::AnonShared;

/// `init_once`'s words for a ready region of `flavor` (state "shkR", a pid, the tag, the
/// layout versions: shmkit's 1 and the channel's 1).
fn ready_header(flavor: Flavor) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(b"shkR");
    h[4..8].copy_from_slice(&1u32.to_le_bytes());
    h[8..12].copy_from_slice(&flavor.tag());
    h[12..16].copy_from_slice(&(1u32 | (1 << 16)).to_le_bytes());
    h
}

/// Words a hostile peer likes: edges, small values, powers of two.
fn word() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(u32::MAX as u64),
        Just(1 << 63),
        (0u32..64).prop_map(|s| 1u64 << s),
        0u64..4096,
        any::<u64>(),
    ]
}

/// A region of `len` bytes (rounded to 8) whose first 16 bytes say "ready channel of
/// `flavor`" and whose words after that are `words` (repeated) with some bytes flipped.
fn region(flavor: Flavor, len: usize, words: &[u64], flips: &[(usize, u8)]) -> AnonShared {
    let seg = AnonShared::new(len.max(16)).unwrap();
    seg.write_at(0, &ready_header(flavor)).unwrap();
    let n = (seg.len() - 16) / 8;
    for i in 0..n.min(1024) {
        let w = words[i % words.len()];
        seg.write_at(16 + i * 8, &w.to_le_bytes()).unwrap();
    }
    for &(at, b) in flips {
        let at = at % seg.len();
        if at >= 16 {
            seg.write_at(at, &[b]).unwrap();
        }
    }
    seg
}

/// Every call a peer on the other side makes, a few times; only "no panic" is asserted.
fn exercise(flavor: Flavor, seg: &AnonShared) {
    let mut buf = Vec::new();
    let data = [5u8; 40];
    match flavor {
        Flavor::Spsc => {
            let _ = spsc::stat(seg, 0);
            let tx = spsc::Sender::open(seg, 0);
            let rx = spsc::Receiver::open(seg, 0);
            if let Ok(mut tx) = tx {
                for len in [0, 8, 40] {
                    let _ = tx.try_send(&data[..len]);
                }
                if let Ok(mut slot) = tx.try_reserve(8) {
                    let _ = slot.write_at(0, &data[..8]);
                    slot.commit();
                }
            }
            if let Ok(mut rx) = rx {
                for _ in 0..4 {
                    let _ = rx.try_recv(&mut buf);
                    if let Ok(m) = rx.try_recv_in_place() {
                        let _ = m.to_vec();
                    }
                }
                let _ = rx.prepare_wait();
                rx.give_back();
            }
        }
        Flavor::Broadcast => {
            let _ = broadcast::stat(seg, 0);
            if let Ok(mut rx) = broadcast::Receiver::open(seg, 0) {
                for _ in 0..4 {
                    let _ = rx.try_recv(&mut buf);
                }
            }
            if let Ok(mut tx) = broadcast::Sender::open(seg, 0) {
                let _ = tx.send(&data);
                let _ = tx.send_batch(&[&data[..8], &data[..0]]);
            }
        }
        Flavor::Mpsc => {
            let _ = mpsc::stat(seg, 0);
            if let Ok(mut tx) = mpsc::Sender::open(seg, 0) {
                for len in [0, 8, 40] {
                    let _ = tx.try_send(&data[..len]);
                }
            }
            if let Ok(mut rx) = mpsc::Receiver::open(seg, 0) {
                for _ in 0..4 {
                    let _ = rx.try_recv(&mut buf);
                }
                let _ = rx.prepare_wait();
            }
        }
    }
}

fn flavor() -> impl Strategy<Value = Flavor> {
    prop_oneof![
        Just(Flavor::Spsc),
        Just(Flavor::Broadcast),
        Just(Flavor::Mpsc)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Arbitrary words everywhere after the init header.
    #[test]
    fn arbitrary_words_never_panic(
        flavor in flavor(),
        len in prop_oneof![Just(512usize), Just(576), Just(4096), Just(8192), 16usize..9000],
        words in prop::collection::vec(word(), 1..48),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..16),
    ) {
        let seg = region(flavor, len, &words, &flips);
        exercise(flavor, &seg);
    }

    /// A valid channel first, then arbitrary words written over its header and first slots:
    /// the shapes pass their checks more often, so the positions', marks' and slots' checks
    /// are reached.
    #[test]
    fn a_valid_channel_with_hostile_words_never_panics(
        flavor in flavor(),
        overwrites in prop::collection::vec((0usize..1200, word()), 1..24),
    ) {
        let seg = AnonShared::new(8192).unwrap();
        match flavor {
            Flavor::Spsc => {
                spsc::create(&seg, 0, spsc::SpscConfig::new(4096)).unwrap();
            }
            Flavor::Broadcast => {
                broadcast::create(&seg, 0, broadcast::BroadcastConfig::new(4096).max_consumers(2))
                    .unwrap();
            }
            Flavor::Mpsc => {
                mpsc::create(&seg, 0, mpsc::MpscConfig::new(4096).max_producers(2)).unwrap();
            }
        }
        // A few messages in first, so that records and slots hold real values too.
        exercise(flavor, &seg);
        for (at, w) in overwrites {
            // Past the init header (its own checks are init_once's), on 8-byte words.
            let at = 16 + (at & !7);
            seg.write_at(at, &w.to_le_bytes()).unwrap();
        }
        exercise(flavor, &seg);
    }
}
