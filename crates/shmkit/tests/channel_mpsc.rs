//! MPSC channels between real processes and threads: every message of every producer
//! arrives once, whole and in its producer's order; a producer killed holding a slot costs
//! that one message and wedges nothing; a killed consumer or the last producer gone is
//! noticed; garbage in every word is an error, never a panic or a hang.
#![cfg(target_os = "linux")]

mod common;
use common::stream::{check, message, messages, segment, Rng};
use common::{say, Cleanup, Peer};
use shmkit::channel::layout::{MpscLayout, MPSC_PLACES};
use shmkit::channel::mpsc::{self, MpscConfig, Receiver, Sender};
use shmkit::channel::{Holder, RecvError, SendError, Wait};
use shmkit::{ErrorKind, PosixShm};
use std::mem::offset_of;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Slot word of a position, as the layout documents it: `tag << 26 | state << 24 | pid`.
fn word(pos: u64, state: u64, pid: u32) -> u64 {
    ((pos & ((1 << 38) - 1)) << 26) | (state << 24) | u64::from(pid)
}

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    let seg = PosixShm::open(&args[0]).unwrap();
    match role.as_str() {
        // Producer number `args[1]` sends `args[2]` messages whose sequence numbers carry
        // its number in the top byte.
        "producer" => {
            let id: u64 = args[1].parse().unwrap();
            let n: u64 = args[2].parse().unwrap();
            let mut tx = Sender::open(&seg, 0).unwrap();
            let max = tx.max_message();
            let mut rng = Rng(id + 1);
            let mut buf = Vec::new();
            for i in 0..n {
                message(
                    id << 56 | i,
                    16 + rng.next() as usize % (max - 15),
                    &mut rng,
                    &mut buf,
                );
                tx.send(&buf).unwrap();
            }
            say("sent");
        }
        // Claims the next slot as a producer does (the layout's compare-and-swap with its
        // pid) and never finishes it: a producer stopped mid-write, until killed.
        "claim-and-hang" => {
            let _tx = Sender::open(&seg, 0).unwrap();
            let tail = seg.atomic_u64(offset_of!(MpscLayout, tail)).unwrap();
            let slots_at: usize = args[1].parse().unwrap();
            let slot_size: usize = args[2].parse().unwrap();
            let slots: u64 = args[3].parse().unwrap();
            let pos = tail.load(Ordering::Acquire);
            let w = seg
                .atomic_u64(slots_at + (pos % slots) as usize * slot_size)
                .unwrap();
            let me = std::process::id();
            w.compare_exchange(
                word(pos, 0, 0),
                word(pos, 1, me),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .unwrap();
            tail.store(pos + 1, Ordering::Release);
            say("ready");
            common::cue();
        }
        // Holds the consumer end, reading nothing, until killed.
        "hold-consumer" => {
            let _rx = Receiver::open(&seg, 0).unwrap();
            say("ready");
            common::cue();
        }
        _ => panic!("unknown role {role}"),
    }
}

/// A POSIX segment with an MPSC channel of `config` at offset 0, removed when dropped.
fn channel(config: MpscConfig) -> (PosixShm, Cleanup<impl FnMut()>) {
    let (seg, gone) = segment("shmkit-test-mpsc", config.size());
    mpsc::create(&seg, 0, config).unwrap();
    (seg, gone)
}

/// Receives `total` messages from producers `0..producers`, checking each producer's order.
fn collect(rx: &mut Receiver<'_>, producers: usize, total: u64) -> Vec<u64> {
    let mut next = vec![0u64; producers];
    let mut buf = Vec::new();
    for _ in 0..total {
        rx.recv_timeout(&mut buf, Duration::from_secs(20)).unwrap();
        let seq = check(&buf);
        let (id, i) = ((seq >> 56) as usize, seq & ((1 << 56) - 1));
        assert_eq!(
            i, next[id],
            "producer {id}: lost, duplicated or out of order"
        );
        next[id] += 1;
    }
    next
}

#[test]
fn every_message_of_every_producer_process_arrives_once_whole_and_in_order() {
    let n = messages() / 8;
    let (seg, _gone) = channel(MpscConfig::new(1 << 16).max_message(500));
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let peers: Vec<Peer> = (0..4)
        .map(|id| Peer::spawn("producer", &[seg.name(), &id.to_string(), &n.to_string()]))
        .collect();
    assert_eq!(collect(&mut rx, 4, 4 * n), vec![n; 4]);
    for mut p in peers {
        assert_eq!(p.recv(), "sent");
        p.finish();
    }
    assert_eq!(rx.skipped(), 0);
    // Every producer let go: the consumer hears it rather than waiting for ever.
    let mut buf = Vec::new();
    match rx.recv_timeout(&mut buf, Duration::from_secs(5)) {
        Err(RecvError::ProducerGone { crashed: false, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn producer_threads_each_with_a_sender() {
    let n = messages() / 20;
    let (seg, _gone) = channel(MpscConfig::new(4096).max_message(100));
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let got = std::thread::scope(|scope| {
        for (id, wait) in [Wait::Spin, Wait::Adaptive, Wait::Block]
            .into_iter()
            .enumerate()
        {
            let seg = &seg;
            scope.spawn(move || {
                let mut tx = Sender::open(seg, 0).unwrap();
                tx.set_wait(wait);
                let mut rng = Rng(id as u64 + 9);
                let mut buf = Vec::new();
                for i in 0..n {
                    message(
                        (id as u64) << 56 | i,
                        16 + rng.next() as usize % 85,
                        &mut rng,
                        &mut buf,
                    );
                    tx.send(&buf).unwrap();
                }
            });
        }
        collect(&mut rx, 3, 3 * n)
    });
    assert_eq!(got, vec![n; 3]);
}

#[test]
fn full_empty_timeouts_and_typed_values() {
    // Four slots of 64 bytes: 40-byte messages.
    let (seg, _gone) = channel(MpscConfig::new(256).max_message(40));
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(20)),
        Err(RecvError::Timeout)
    ));
    assert!(matches!(
        tx.try_send(&[0; 41]),
        Err(SendError::TooLarge { len: 41, max: 40 })
    ));
    for i in 0..4u8 {
        tx.try_send(&[i; 40]).unwrap();
    }
    assert!(matches!(tx.try_send(&[9]), Err(SendError::Full)));
    let t = Instant::now();
    assert!(matches!(
        tx.send_timeout(&[9], Duration::from_millis(20)),
        Err(SendError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
    let st = mpsc::stat(&seg, 0).unwrap();
    assert_eq!((st.slots, st.tail, st.head, st.used), (4, 4, 0, Some(4)));
    for i in 0..4u8 {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 40);
        assert_eq!(buf, [i; 40]);
    }
    // Around the ring, each wait mode.
    for (round, wait) in [Wait::Spin, Wait::Adaptive, Wait::Block]
        .into_iter()
        .cycle()
        .take(300)
        .enumerate()
    {
        tx.set_wait(wait);
        rx.set_wait(wait);
        let m = vec![round as u8; round % 41];
        tx.send(&m).unwrap();
        assert_eq!(rx.recv(&mut buf).unwrap(), m.len());
        assert_eq!(buf, m);
    }
    tx.send_value(&7u64).unwrap();
    assert_eq!(rx.recv_value::<u64>().unwrap(), 7);
    tx.send(b"abc").unwrap();
    assert!(matches!(
        rx.recv_value::<u64>(),
        Err(RecvError::WrongSize { len: 3, want: 8 })
    ));
    // One consumer at a time; producers are many.
    assert_eq!(
        Receiver::open(&seg, 0).err().unwrap().kind(),
        ErrorKind::AlreadyExists
    );
    let _second = Sender::open(&seg, 0).unwrap();
    let st = mpsc::stat(&seg, 0).unwrap();
    let me = std::process::id() as i32;
    assert_eq!(
        st.producers,
        vec![(0, Holder::Alive(me)), (1, Holder::Alive(me))]
    );
    assert_eq!(st.consumer, Holder::Alive(me));
}

#[test]
fn a_producer_killed_holding_a_slot_costs_that_message_and_wedges_nothing() {
    let config = MpscConfig::new(1024).max_message(40);
    let (seg, _gone) = channel(config);
    let slots_at = MPSC_PLACES + (config.max_producers * 16).div_ceil(128) * 128;
    let mut p = Peer::spawn(
        "claim-and-hang",
        &[
            seg.name(),
            &slots_at.to_string(),
            "64",
            &config.slots().to_string(),
        ],
    );
    assert_eq!(p.recv(), "ready");
    let mut tx = Sender::open(&seg, 0).unwrap();
    tx.send(b"after").unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    // While the claimer lives, its slot is waited for, not skipped.
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(300)),
        Err(RecvError::Timeout)
    ));
    assert_eq!(rx.skipped(), 0);
    p.kill9();
    let t = Instant::now();
    rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
    assert_eq!(buf, b"after");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(rx.skipped(), 1);
    assert_eq!(mpsc::stat(&seg, 0).unwrap().skipped, 1);
    // The ring goes on turning.
    for i in 0..100u8 {
        tx.send(&[i]).unwrap();
        rx.recv(&mut buf).unwrap();
        assert_eq!(buf, [i]);
    }
}

#[test]
fn a_producer_whose_consumer_was_killed_hears_of_it_within_a_second() {
    let (seg, _gone) = channel(MpscConfig::new(256).max_message(40));
    let mut p = Peer::spawn("hold-consumer", &[seg.name()]);
    assert_eq!(p.recv(), "ready");
    let mut tx = Sender::open(&seg, 0).unwrap();
    while tx.try_send(&[7; 40]).is_ok() {}
    let pid = p.pid();
    p.kill9();
    let t = Instant::now();
    match tx.send_timeout(&[7; 40], Duration::from_secs(10)) {
        Err(SendError::ConsumerGone { pid: gone }) => assert_eq!(gone, pid),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn garbage_in_every_word_is_an_error_or_a_message_never_a_panic_or_a_hang() {
    let config = MpscConfig::new(256).max_message(40).max_producers(2);
    let (seg, _gone) = channel(config);
    let tail = seg.atomic_u64(offset_of!(MpscLayout, tail)).unwrap();
    let head = seg.atomic_u64(offset_of!(MpscLayout, head)).unwrap();
    let slots_at = MPSC_PLACES + 128;
    let me = std::process::id();
    let mut rng = Rng(0xbad);
    let mut seen = [0u32; 3]; // message, corrupt, empty/full/timeout
    let mut buf = Vec::new();
    for round in 0..3_000u64 {
        let pick = |rng: &mut Rng| match rng.next() % 3 {
            0 => [0u64, 1, 3, 4, 5, u64::MAX, 1 << 38, (1 << 38) - 1][rng.next() as usize % 8],
            1 => rng.next() % 16,
            _ => rng.next(),
        };
        head.store(pick(&mut rng), Ordering::Relaxed);
        tail.store(pick(&mut rng), Ordering::Relaxed);
        for _ in 0..3 {
            let i = rng.next() % 4;
            let pos = match rng.next() % 2 {
                0 => head.load(Ordering::Relaxed),
                _ => pick(&mut rng),
            };
            let w = match rng.next() % 3 {
                0 => word(
                    pos,
                    rng.next() % 4,
                    [0, me, 1, 0xff_ffff][rng.next() as usize % 4],
                ),
                1 => word(pos.wrapping_add(4), 0, 0),
                _ => rng.next(),
            };
            let slot = slots_at + i as usize * 64;
            seg.atomic_u64(slot).unwrap().store(w, Ordering::Relaxed);
            let len =
                [rng.next() as u32 % 48, u32::MAX, rng.next() as u32][rng.next() as usize % 3];
            seg.write_at(slot + 16, &len.to_le_bytes()).unwrap();
        }
        let (Ok(mut tx), Ok(mut rx)) = (Sender::open(&seg, 0), Receiver::open(&seg, 0)) else {
            panic!("opening needs nothing from the positions");
        };
        rx.set_wait(if round % 2 == 0 {
            Wait::Spin
        } else {
            Wait::Block
        });
        for _ in 0..3 {
            match rx.recv_timeout(&mut buf, Duration::from_millis(1)) {
                Ok(len) => {
                    assert!(len <= 40 && buf.len() == len);
                    seen[0] += 1;
                }
                Err(RecvError::Corrupt(_)) => seen[1] += 1,
                Err(RecvError::Timeout | RecvError::ProducerGone { .. }) => seen[2] += 1,
                Err(e) => panic!("{e:?}"),
            }
            match tx.send_timeout(&[1; 20], Duration::from_millis(1)) {
                Ok(()) => seen[0] += 1,
                Err(SendError::Timeout | SendError::Full) => seen[2] += 1,
                Err(SendError::Corrupt(_)) => seen[1] += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
}
