//! Broadcast channels between real processes: every consumer sees every message or is told
//! exactly how many it lost, the producer never waits, places are claimed and taken over,
//! a killed producer is noticed, and garbage in every word is an error, never a panic or a
//! hang.
#![cfg(target_os = "linux")]

mod common;
use common::stream::{check, message, messages, segment, Rng};
use common::{say, Cleanup, Peer};
use shmkit::channel::broadcast::{self, BroadcastConfig, Receiver, Sender};
use shmkit::channel::layout::{BroadcastLayout, BROADCAST_PLACES, BROADCAST_SLOT_HEADER, LINE};
use shmkit::channel::{Holder, RecvError, SendError, Wait};
use shmkit::{ErrorKind, PosixShm};
use std::mem::offset_of;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    let seg = PosixShm::open(&args[0]).unwrap();
    match role.as_str() {
        // Reads until the producer is gone, checking that every message is whole and that
        // the sequence numbers go up by one but for the losses it was told of; reports
        // "got R lost L".
        "consumer" => {
            let mut rx = Receiver::open(&seg, 0).unwrap();
            if args.get(1).map(String::as_str) == Some("spin") {
                rx.set_wait(Wait::Spin);
            }
            say("ready");
            let (mut want, mut got, mut lost) = (0u64, 0u64, 0u64);
            let mut buf = Vec::new();
            loop {
                match rx.recv_timeout(&mut buf, Duration::from_secs(20)) {
                    Ok(_) => {
                        assert_eq!(check(&buf), want, "a loss nobody was told of");
                        want += 1;
                        got += 1;
                    }
                    Err(RecvError::Overrun { lost: l }) => {
                        want += l;
                        lost += l;
                    }
                    Err(RecvError::ProducerGone { crashed: false, .. }) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(rx.lost(), lost);
            say(format!("got {got} lost {lost}"));
        }
        // Sends three messages, then waits to be killed.
        "hold-producer" => {
            let mut tx = Sender::open(&seg, 0).unwrap();
            for m in [&b"one"[..], b"two", b"three"] {
                tx.send(m).unwrap();
            }
            say("ready");
            common::cue();
        }
        // Holds a consumer place, reading nothing, until killed.
        "hold-consumer" => {
            let _rx = Receiver::open(&seg, 0).unwrap();
            say("ready");
            common::cue();
        }
        _ => panic!("unknown role {role}"),
    }
}

/// A POSIX segment with a broadcast channel of `config` at offset 0, removed when dropped.
fn channel(config: BroadcastConfig) -> (PosixShm, Cleanup<impl FnMut()>) {
    let (seg, gone) = segment("shmkit-test-bcast", config.size());
    broadcast::create(&seg, 0, config).unwrap();
    (seg, gone)
}

#[test]
fn every_consumer_gets_every_message_or_is_told_exactly_what_it_lost() {
    let n = messages() / 4;
    let (seg, _gone) = channel(BroadcastConfig::new(1 << 18).max_message(1000));
    let mut peers: Vec<Peer> = ["spin", "adaptive", "adaptive"]
        .iter()
        .map(|w| Peer::spawn("consumer", &[seg.name(), w]))
        .collect();
    for p in &mut peers {
        assert_eq!(p.recv(), "ready");
    }
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rng = Rng(0xb0b);
    let mut buf = Vec::new();
    let mut i = 0;
    while i < n {
        if rng.next() % 16 == 0 {
            let k = (1 + rng.next() % 8).min(n - i);
            let batch: Vec<Vec<u8>> = (0..k)
                .map(|j| {
                    let mut m = Vec::new();
                    message(i + j, 16 + rng.next() as usize % 985, &mut rng, &mut m);
                    m
                })
                .collect();
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            tx.send_batch(&refs).unwrap();
            i += k;
        } else {
            message(i, 16 + rng.next() as usize % 985, &mut rng, &mut buf);
            tx.send(&buf).unwrap();
            i += 1;
        }
        // Now and then a pause, so that consumers catch up and also read without losses.
        if i % 4096 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    drop(tx);
    let mut read = 0;
    for mut p in peers {
        let report = p.recv();
        eprintln!("consumer: {report} of {n}");
        let words: Vec<&str> = report.split(' ').collect();
        let (got, lost): (u64, u64) = (words[1].parse().unwrap(), words[3].parse().unwrap());
        assert_eq!(got + lost, n, "{report}");
        read += got;
        p.finish();
    }
    assert!(read > 0);
}

#[test]
fn a_lapped_consumer_is_told_how_many_it_lost_and_goes_on_from_the_oldest() {
    // Eight slots of 64 bytes.
    let (seg, _gone) = channel(BroadcastConfig::new(512).max_message(48));
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut tx = Sender::open(&seg, 0).unwrap();
    assert_eq!(tx.slots(), 8);
    assert!(matches!(
        tx.send(&[0; 49]),
        Err(SendError::TooLarge { len: 49, max: 48 })
    ));
    let mut buf = Vec::new();
    assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(20)),
        Err(RecvError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
    // The producer never waits: twenty messages into eight slots, nobody reading.
    for i in 0..20u64 {
        tx.send(&i.to_le_bytes()).unwrap();
    }
    // The producer may be writing message 20 over 12: 13 are the oldest whole.
    match rx.try_recv(&mut buf) {
        Err(RecvError::Overrun { lost: 13 }) => {}
        other => panic!("{other:?}"),
    }
    for i in 13..20u64 {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 8);
        assert_eq!(buf, i.to_le_bytes());
    }
    assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
    assert_eq!(rx.lost(), 13);
    // A second consumer starts at the next message; both get it, typed.
    let mut late = Receiver::open(&seg, 0).unwrap();
    tx.send_value(&0xfeed_u64).unwrap();
    assert_eq!(rx.recv_value::<u64>().unwrap(), 0xfeed);
    assert_eq!(late.recv_value::<u64>().unwrap(), 0xfeed);
    tx.send(b"abc").unwrap();
    assert!(matches!(
        late.recv_value::<u64>(),
        Err(RecvError::WrongSize { len: 3, want: 8 })
    ));
    // What an operator sees.
    let st = broadcast::stat(&seg, 0).unwrap();
    assert_eq!((st.slots, st.published), (8, 22));
    assert_eq!(st.consumers.len(), 2);
    assert_eq!(
        (
            st.consumers[0].cursor,
            st.consumers[0].behind,
            st.consumers[0].lost
        ),
        (21, 1, 13)
    );
    assert_eq!((st.consumers[1].cursor, st.consumers[1].lost), (22, 0));
    let me = std::process::id() as i32;
    assert_eq!(st.producer, Holder::Alive(me));
    // A new producer goes on where the last one stopped; a consumer loses nothing.
    drop(tx);
    assert!(matches!(late.try_recv(&mut buf), Err(RecvError::Empty)));
    assert!(matches!(
        late.recv_timeout(&mut buf, Duration::from_secs(5)),
        Err(RecvError::ProducerGone { crashed: false, .. })
    ));
    let mut tx = Sender::open(&seg, 0).unwrap();
    tx.send(b"next").unwrap();
    late.recv(&mut buf).unwrap();
    assert_eq!(buf, b"next");
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, b"abc");
}

#[test]
fn places_are_claimed_and_a_dead_holders_is_taken_over() {
    let (seg, _gone) = channel(BroadcastConfig::new(4096).max_consumers(2));
    let mut p = Peer::spawn("hold-consumer", &[seg.name()]);
    assert_eq!(p.recv(), "ready");
    let a = Receiver::open(&seg, 0).unwrap();
    let e = Receiver::open(&seg, 0).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("all 2 consumer places"), "{e}");
    let pid = p.pid();
    p.kill9();
    drop(p);
    let st = broadcast::stat(&seg, 0).unwrap();
    assert!(
        st.consumers.iter().any(|c| c.holder == Holder::Dead(pid)),
        "{st:?}"
    );
    let b = Receiver::open(&seg, 0).unwrap();
    drop((a, b));
    let st = broadcast::stat(&seg, 0).unwrap();
    assert!(
        st.consumers.iter().all(|c| c.holder == Holder::Closed),
        "{st:?}"
    );
    // One producer at a time.
    let _tx = Sender::open(&seg, 0).unwrap();
    assert_eq!(
        Sender::open(&seg, 0).err().unwrap().kind(),
        ErrorKind::AlreadyExists
    );
}

#[test]
fn consumers_of_a_killed_producer_hear_of_it_within_a_second() {
    let (seg, _gone) = channel(BroadcastConfig::new(4096));
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut p = Peer::spawn("hold-producer", &[seg.name()]);
    assert_eq!(p.recv(), "ready");
    let mut buf = Vec::new();
    for want in [&b"one"[..], b"two", b"three"] {
        rx.recv(&mut buf).unwrap();
        assert_eq!(buf, want);
    }
    let pid = p.pid();
    p.kill9();
    let t = Instant::now();
    match rx.recv_timeout(&mut buf, Duration::from_secs(10)) {
        Err(RecvError::ProducerGone {
            pid: gone,
            crashed: true,
        }) => assert_eq!(gone, pid),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn garbage_in_every_word_is_an_error_or_a_message_never_a_panic_or_a_hang() {
    // Eight slots of 64 bytes, two places.
    let config = BroadcastConfig::new(512).max_message(48).max_consumers(2);
    let (seg, _gone) = channel(config);
    let published = seg
        .atomic_u64(offset_of!(BroadcastLayout, published))
        .unwrap();
    let slots = BROADCAST_PLACES + 2 * LINE;
    let mut rng = Rng(0xbad);
    let words = [
        0u64,
        1,
        2,
        3,
        7,
        8,
        9,
        16,
        17,
        0xffff_ffff,
        u64::MAX,
        u64::MAX - 1,
        1 << 63,
    ];
    let pick = |rng: &mut Rng| match rng.next() % 3 {
        0 => words[rng.next() as usize % words.len()],
        1 => rng.next() % 64,
        _ => rng.next(),
    };
    let mut seen = [0u32; 4]; // message, corrupt, empty/timeout, overrun
    let mut buf = Vec::new();
    for round in 0..3_000 {
        published.store(pick(&mut rng), Ordering::Relaxed);
        let mut rx = Receiver::open(&seg, 0).unwrap();
        rx.set_wait(if round % 2 == 0 {
            Wait::Spin
        } else {
            Wait::Block
        });
        for _ in 0..4 {
            // Marks and lengths as a hostile producer writes them, often the ones the
            // consumer looks for next.
            for _ in 0..3 {
                let slot = slots + (rng.next() as usize % 8) * 64;
                let mark = match rng.next() % 3 {
                    0 => published
                        .load(Ordering::Relaxed)
                        .wrapping_mul(2)
                        .wrapping_add(2),
                    _ => pick(&mut rng),
                };
                seg.atomic_u64(slot).unwrap().store(mark, Ordering::Relaxed);
                let len =
                    [rng.next() as u32 % 64, u32::MAX, rng.next() as u32][rng.next() as usize % 3];
                seg.write_at(slot + 8, &len.to_le_bytes()).unwrap();
            }
            match rx.recv_timeout(&mut buf, Duration::from_millis(1)) {
                Ok(len) => {
                    assert!(len <= 48 && buf.len() == len);
                    seen[0] += 1;
                }
                Err(RecvError::Corrupt(_)) => seen[1] += 1,
                Err(RecvError::Timeout) => seen[2] += 1,
                Err(RecvError::Overrun { lost }) => {
                    assert!(lost > 0);
                    seen[3] += 1;
                }
                Err(RecvError::ProducerGone { .. }) => seen[2] += 1,
                Err(e) => panic!("{e:?}"),
            }
            if rng.next() % 2 == 0 {
                published.store(pick(&mut rng), Ordering::Relaxed);
            }
        }
        // The producer cares for nothing a consumer writes: it always sends.
        let mut tx = Sender::open(&seg, 0).unwrap();
        tx.send(&[1; 40]).unwrap();
    }
    assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
    let _ = BROADCAST_SLOT_HEADER;
}
