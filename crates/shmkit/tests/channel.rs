//! SPSC channels between real processes: integrity of many messages of random sizes, the
//! full and empty edges and timeouts, a peer killed with `kill -9`, and a peer that writes
//! garbage into the channel's words.
// Linux only, as channels are (futexes).
#![cfg(target_os = "linux")]

mod common;
use common::stream::{checksum, message, messages, private_spsc, segment, Rng};
use common::{say, Cleanup, Peer};
use shmkit::channel::layout::SpscLayout;
use shmkit::channel::{spsc, Receiver, RecvError, SendError, Sender, SpscConfig, Wait};
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
        // Sends `args[1]` messages of random sizes (16 bytes to the largest), batches of up
        // to 8 now and then.
        "producer" => {
            let n: u64 = args[1].parse().unwrap();
            let mut tx = Sender::open(&seg, 0).unwrap();
            let max = tx.max_message();
            let mut rng = Rng(0x5eed);
            let mut buf = Vec::new();
            let mut i = 0;
            while i < n {
                if rng.next() % 16 == 0 {
                    let k = (1 + rng.next() % 8).min(n - i);
                    let batch: Vec<Vec<u8>> = (0..k)
                        .map(|j| {
                            let len = 16 + (rng.next() as usize % (max - 15));
                            let mut m = Vec::new();
                            message(i + j, len, &mut rng, &mut m);
                            m
                        })
                        .collect();
                    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                    tx.send_batch(&refs).unwrap();
                    i += k;
                } else {
                    let len = 16 + (rng.next() as usize % (max - 15));
                    message(i, len, &mut rng, &mut buf);
                    tx.send(&buf).unwrap();
                    i += 1;
                }
            }
            say("sent");
        }
        // Holds the producer end: sends three messages, then waits to be killed.
        "hold-producer" => {
            let mut tx = Sender::open(&seg, 0).unwrap();
            for m in [&b"one"[..], b"two", b"three"] {
                tx.send(m).unwrap();
            }
            say("ready");
            common::cue();
        }
        // Sends "published", commits "later" without publishing it, and dies at once.
        "commit-later-and-die" => {
            let mut tx = Sender::open(&seg, 0).unwrap();
            tx.send(b"published").unwrap();
            let mut slot = tx.reserve(5).unwrap();
            slot.write_at(0, b"later").unwrap();
            slot.commit_later();
            // SAFETY: _exit ends the process at once: no destructor publishes "later".
            unsafe { libc::_exit(0) };
        }
        // Reads `args[1]` messages (all there are), says so, then waits to be killed.
        "read-then-die" => {
            let n: usize = args[1].parse().unwrap();
            let mut rx = Receiver::open(&seg, 0).unwrap();
            let mut buf = Vec::new();
            for _ in 0..n {
                rx.recv(&mut buf).unwrap();
            }
            say("read");
            common::cue();
        }
        // Holds the consumer end and reads nothing, until killed.
        "hold-consumer" => {
            let _rx = Receiver::open(&seg, 0).unwrap();
            say("ready");
            common::cue();
        }
        _ => panic!("unknown role {role}"),
    }
}

/// A POSIX segment with a channel of `config` at offset 0, removed when dropped.
fn channel(config: SpscConfig) -> (PosixShm, Cleanup<impl FnMut()>) {
    let (seg, gone) = segment("shmkit-test-channel", config.size());
    spsc::create(&seg, 0, config).unwrap();
    (seg, gone)
}

#[test]
fn messages_of_random_sizes_arrive_in_order_and_whole_across_processes() {
    let n = messages();
    let (seg, _gone) = channel(SpscConfig::new(1 << 16).max_message(3000));
    let mut p = Peer::spawn("producer", &[seg.name(), &n.to_string()]);
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    for i in 0..n {
        let len = rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
        assert!(len >= 16, "message {i}: {len} bytes");
        let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
        let sum = u64::from_le_bytes(buf[8..16].try_into().unwrap());
        assert_eq!(seq, i, "lost or duplicated");
        assert_eq!(sum, checksum(&buf[16..]), "message {i} corrupted");
        bytes += len as u64;
    }
    assert_eq!(p.recv(), "sent");
    p.finish();
    // Nothing more: the producer closed the channel.
    match rx.recv_timeout(&mut buf, Duration::from_secs(5)) {
        Err(RecvError::ProducerGone { crashed: false, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(bytes > n * 16);
}

#[test]
fn full_empty_wrap_and_timeouts() {
    let (seg, _gone) = channel(SpscConfig::new(256));
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    assert_eq!(tx.max_message(), 120);
    let mut buf = Vec::new();
    assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
    let t = Instant::now();
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(20)),
        Err(RecvError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(matches!(
        tx.try_send(&[0; 121]),
        Err(SendError::TooLarge { len: 121, max: 120 })
    ));
    // 24-byte records (8 of header, 13 rounded up to 16): ten fit in 256 bytes, not eleven.
    for i in 0..10u8 {
        tx.try_send(&[i; 13]).unwrap();
    }
    assert!(matches!(tx.try_send(&[0; 13]), Err(SendError::Full)));
    assert!(matches!(
        tx.send_timeout(&[0; 13], Duration::from_millis(20)),
        Err(SendError::Timeout)
    ));
    for i in 0..10u8 {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 13);
        assert_eq!(buf, [i; 13]);
    }
    // Around the ring many times, with every size, each wait mode, in place and copied.
    let mut rng = Rng(7);
    for (round, wait) in [Wait::Spin, Wait::Adaptive, Wait::Block]
        .into_iter()
        .cycle()
        .take(3000)
        .enumerate()
    {
        tx.set_wait(wait);
        rx.set_wait(wait);
        let len = rng.next() as usize % 121;
        let fill = (round % 251) as u8;
        if round % 2 == 0 {
            let mut slot = tx.reserve(len).unwrap();
            slot.write_at(0, &vec![fill; len]).unwrap();
            assert!(slot.write_at(len, &[1]).is_err());
            slot.commit();
            let m = rx.recv_in_place().unwrap();
            assert_eq!(m.to_vec().unwrap(), vec![fill; len]);
        } else {
            tx.send(&vec![fill; len]).unwrap();
            assert_eq!(rx.recv(&mut buf).unwrap(), len);
            assert_eq!(buf, vec![fill; len]);
        }
    }
    // Typed values, and a value of the wrong size.
    tx.send_value(&0x1122_3344_5566_7788u64).unwrap();
    assert_eq!(rx.recv_value::<u64>().unwrap(), 0x1122_3344_5566_7788);
    tx.send(b"abc").unwrap();
    assert!(matches!(
        rx.recv_value::<u64>(),
        Err(RecvError::WrongSize { len: 3, want: 8 })
    ));
    // A slot dropped without a commit sends nothing.
    assert_eq!(tx.reserve(10).unwrap().len(), 10);
    assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
    // Batches are seen whole.
    tx.send_batch(&[b"a", b"bb", b"ccc"]).unwrap();
    for want in [&b"a"[..], b"bb", b"ccc"] {
        rx.try_recv(&mut buf).unwrap();
        assert_eq!(buf, want);
    }
}

#[test]
fn each_end_has_one_holder_and_a_dead_one_is_taken_over() {
    let (seg, _gone) = channel(SpscConfig::new(4096));
    let mut p = Peer::spawn("hold-producer", &[seg.name()]);
    assert_eq!(p.recv(), "ready");
    let e = Sender::open(&seg, 0).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    let mut rx = Receiver::open(&seg, 0).unwrap();
    assert_eq!(
        Receiver::open(&seg, 0).err().unwrap().kind(),
        ErrorKind::AlreadyExists
    );
    let mut buf = Vec::new();
    for want in [&b"one"[..], b"two", b"three"] {
        rx.recv(&mut buf).unwrap();
        assert_eq!(buf, want);
    }
    // kill -9 mid-stream: the consumer hears of it within a second, not at its timeout.
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
    // Its end is free again.
    let mut tx = Sender::open(&seg, 0).unwrap();
    tx.send(b"after").unwrap();
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, b"after");
}

#[test]
fn a_producer_whose_consumer_was_killed_hears_of_it_within_a_second() {
    let (seg, _gone) = channel(SpscConfig::new(256));
    let mut p = Peer::spawn("hold-consumer", &[seg.name()]);
    assert_eq!(p.recv(), "ready");
    let mut tx = Sender::open(&seg, 0).unwrap();
    while tx.try_send(&[7; 100]).is_ok() {}
    let pid = p.pid();
    p.kill9();
    let t = Instant::now();
    match tx.send_timeout(&[7; 100], Duration::from_secs(10)) {
        Err(SendError::ConsumerGone { pid: gone }) => assert_eq!(gone, pid),
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn garbage_in_every_word_is_an_error_or_a_message_never_a_panic_or_a_hang() {
    let (seg, _gone) = channel(SpscConfig::new(256));
    let head = seg.atomic_u64(offset_of!(SpscLayout, head)).unwrap();
    let generation = seg.atomic_u32(offset_of!(SpscLayout, generation)).unwrap();
    let tail = seg.atomic_u64(offset_of!(SpscLayout, tail)).unwrap();
    let data = shmkit::channel::layout::SPSC_DATA;
    let mut rng = Rng(0xbad);
    let words = [
        0u64,
        8,
        16,
        248,
        256,
        264,
        0xffff_ffff,
        u64::MAX,
        u64::MAX - 7,
        1 << 63,
    ];
    let mut buf = Vec::new();
    let mut seen = [0u32; 3]; // message, corrupt, empty/full/timeout
    let mut records = 0u32; // refused for the record's own length
    for round in 0..5_000 {
        // A fresh pair of ends each round, on positions and records a hostile peer wrote.
        let pick = |rng: &mut Rng| match rng.next() % 3 {
            0 => words[rng.next() as usize % words.len()],
            1 => rng.next() % 1024,
            _ => rng.next(),
        };
        head.store(pick(&mut rng), Ordering::Relaxed);
        tail.store(pick(&mut rng), Ordering::Relaxed);
        for _ in 0..4 {
            let at = data + (rng.next() as usize % 32) * 8;
            let len = match rng.next() % 3 {
                0 => rng.next() as u32 % 300,
                1 => u32::MAX - (rng.next() as u32 % 4),
                _ => rng.next() as u32,
            };
            let kind = [1u32, 2, 0, u32::MAX][rng.next() as usize % 4];
            seg.write_at(at, &len.to_le_bytes()).unwrap();
            seg.write_at(at + 4, &kind.to_le_bytes()).unwrap();
        }
        // Half the time a header the consumer will take for committed (the stamp of its
        // position and generation) with a length that may not fit.
        if rng.next() % 2 == 0 {
            let t = tail.load(Ordering::Relaxed) & !7;
            let kind = [0x4000_0000u32, 0xc000_0000][rng.next() as usize % 2];
            let stamp = ((((t >> 3) as u32).wrapping_add(generation.load(Ordering::Relaxed)))
                & 0x3fff_ffff)
                | kind;
            let len = match rng.next() % 3 {
                0 => rng.next() as u32 % 300,
                1 => u32::MAX,
                // Padding to the end, right or one word off.
                _ => (256 - (t & 255) as u32).wrapping_sub(8 * (rng.next() as u32 % 2 + 1)),
            };
            let at = data + (t & 255) as usize;
            seg.write_at(at, &len.to_le_bytes()).unwrap();
            seg.write_at(at + 4, &stamp.to_le_bytes()).unwrap();
        }
        let (Ok(mut tx), Ok(mut rx)) = (Sender::open(&seg, 0), Receiver::open(&seg, 0)) else {
            // Positions that make no sense are refused at open.
            seen[1] += 1;
            continue;
        };
        rx.set_wait(if round % 2 == 0 {
            Wait::Spin
        } else {
            Wait::Block
        });
        for _ in 0..4 {
            match rx.recv_timeout(&mut buf, Duration::from_millis(1)) {
                Ok(len) => {
                    assert!(len <= rx.max_message());
                    seen[0] += 1;
                }
                Err(RecvError::Corrupt(why)) => {
                    seen[1] += 1;
                    if why.contains("longer than the largest") || why.contains("padding") {
                        records += 1;
                    }
                    break;
                }
                Err(RecvError::Timeout) => seen[2] += 1,
                Err(e) => panic!("{e:?}"),
            }
            // The peer moves the words under a live pair too.
            if rng.next() % 2 == 0 {
                head.store(pick(&mut rng), Ordering::Relaxed);
            } else {
                tail.store(pick(&mut rng), Ordering::Relaxed);
            }
            match tx.send_timeout(&[1; 40], Duration::from_millis(1)) {
                Ok(()) | Err(SendError::Timeout | SendError::Full) => {}
                Err(SendError::Corrupt(_)) => seen[1] += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    // Every outcome was met, so the garbage reached every check, the records' too.
    assert!(seen.iter().all(|n| *n > 0), "{seen:?}");
    assert!(records > 0, "no record was refused for its length");
}

#[test]
fn payload_bytes_of_a_lap_before_never_pass_for_a_record() {
    // Payloads full of headers forged for the positions their words will have a lap later
    // (the stamp of the position and generation, as the layout documents).
    let (seg, _gone) = channel(SpscConfig::new(256));
    let generation = seg
        .atomic_u32(offset_of!(SpscLayout, generation))
        .unwrap()
        .load(Ordering::Relaxed);
    let head = seg.atomic_u64(offset_of!(SpscLayout, head)).unwrap();
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut rng = Rng(99);
    let mut buf = Vec::new();
    for i in 0..3000u64 {
        let start = head.load(Ordering::Relaxed);
        let words = 1 + rng.next() as usize % 15;
        let mut m = Vec::new();
        for k in 0..words as u64 {
            // This word sits at `start + 8 + 8k`; a lap later that is a header's place.
            let later = start + 8 + 8 * k + 256;
            let stamp = ((((later >> 3) as u32).wrapping_add(generation)) & 0x3fff_ffff)
                | [0x4000_0000u32, 0xc000_0000][(i + k) as usize % 2];
            m.extend_from_slice(&(5u32 + (k as u32 % 3)).to_le_bytes());
            m.extend_from_slice(&stamp.to_le_bytes());
        }
        m[0] = i as u8;
        tx.send(&m).unwrap();
        assert_eq!(rx.recv(&mut buf).unwrap(), m.len(), "message {i}");
        assert_eq!(buf, m, "message {i}");
        // Nothing more: no phantom.
        assert!(
            matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)),
            "after {i}"
        );
    }
}

#[test]
fn a_producer_that_died_with_a_record_committed_but_not_published_leaves_a_usable_channel() {
    let (seg, _gone) = channel(SpscConfig::new(4096));
    let p = Peer::spawn("commit-later-and-die", &[seg.name()]);
    p.finish();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    // What it committed is read (it was committed: the consumer may have read it before the
    // producer died anyway), then its death.
    for want in [&b"published"[..], b"later"] {
        rx.recv_timeout(&mut buf, Duration::from_secs(5)).unwrap();
        assert_eq!(buf, want);
    }
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_secs(5)),
        Err(RecvError::ProducerGone { crashed: true, .. })
    ));
    // A new producer goes on after it; the ends reopen.
    let mut tx = Sender::open(&seg, 0).unwrap();
    tx.send(b"after").unwrap();
    drop(rx);
    let mut rx = Receiver::open(&seg, 0).unwrap();
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, b"after");
}

#[test]
fn an_end_copied_into_a_fork_child_is_not_used_there() {
    let (seg, _gone) = channel(SpscConfig::new(4096));
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let _f = common::forking();
    // SAFETY: the child only calls try_send (no allocation on its error path but the error
    // value's, made by this process's allocator, which fork left consistent: no other thread
    // of this test holds it) and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match tx.try_send(b"from child") {
            Err(SendError::Mapping(e)) if e.kind() == ErrorKind::NotInherited => 0,
            _ => 1,
        };
        // SAFETY: ends the child at once, running nothing of the parent's.
        unsafe { libc::_exit(code) };
    }
    assert_eq!(common::wait_child(pid, Duration::from_secs(10)), Some(0));
    tx.send(b"from parent").unwrap();
    let mut buf = Vec::new();
    rx.recv(&mut buf).unwrap();
    assert_eq!(buf, b"from parent");
    assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
}

#[test]
fn a_consumer_that_read_everything_holds_nothing_back() {
    // 256 bytes of data: five 16-byte messages (24-byte records) and an 8-byte one bring the
    // producer to 136, where the largest message (120 bytes, a 128-byte record) wraps: 120
    // bytes of padding, the record and the word after it need the whole capacity.
    let (seg, _gone) = channel(SpscConfig::new(256));
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    for round in 0..50 {
        for _ in 0..5 {
            tx.try_send(&[round; 16]).unwrap();
        }
        tx.try_send(&[round; 8]).unwrap();
        for _ in 0..6 {
            rx.try_recv(&mut buf).unwrap();
        }
        // The consumer calls nothing more; the producer still has all of it.
        tx.try_send(&[round; 120]).unwrap();
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 120);
    }
}

/// A consumer that read every message and then does nothing more (say it waits on another
/// channel for the producer's next step) holds back no byte that the producer could need: a
/// message of the largest size still goes in at once, whatever was sent before, for shapes
/// from small messages to messages of half the channel.
#[test]
fn bytes_read_and_held_never_keep_the_producer_waiting() {
    for (cap, max) in [
        (4096, 8),
        (4096, 200),
        (4096, 1000),
        (4096, 1500),
        (4096, 2040),
    ] {
        let seg = private_spsc(SpscConfig::new(cap).max_message(max));
        let mut tx = Sender::open(&seg, 0).unwrap();
        let mut rx = Receiver::open(&seg, 0).unwrap();
        let mut rng = Rng(cap as u64 ^ max as u64);
        let mut buf = Vec::new();
        let big = vec![7u8; max];
        for round in 0..2000 {
            // Up to 8 messages of random sizes, as many as fit, then exactly those received:
            // no receive finds the channel empty (that would give back what is held).
            let mut sent = 0;
            for _ in 0..1 + rng.next() % 8 {
                let len = 1 + rng.next() as usize % max;
                match tx.try_send(&vec![1u8; len]) {
                    Ok(()) => sent += 1,
                    Err(SendError::Full) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            for _ in 0..sent {
                rx.try_recv(&mut buf).unwrap();
            }
            match tx.try_send(&big) {
                Ok(()) => {}
                Err(e) => panic!(
                    "capacity {cap}, largest {max}, round {round}: a largest message after \
                     everything was read: {e}"
                ),
            }
            assert_eq!(rx.try_recv(&mut buf).unwrap(), max);
        }
    }
}

/// How many 8-byte messages go in with `try_send` before the channel is full.
fn fill_with_8_byte_messages(tx: &mut Sender<'_>) -> usize {
    let mut n = 0;
    loop {
        match tx.try_send(&[0u8; 8]) {
            Ok(()) => n += 1,
            Err(SendError::Full) => return n,
            Err(e) => panic!("{e}"),
        }
    }
}

/// A consumer that read everything holds nothing: the producer has the whole channel again,
/// and `stat` says it is empty. (A consumer that kept what it read until it next waited made
/// 63 of the 255 places unusable here; a reviewer's reproducer.)
#[test]
fn a_consumer_that_read_everything_leaves_the_whole_channel() {
    let seg = private_spsc(SpscConfig::new(4096).max_message(8));
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    let all = fill_with_8_byte_messages(&mut tx);
    assert_eq!(all, 255);
    for _ in 0..all {
        rx.try_recv(&mut buf).unwrap();
    }
    for _ in 0..63 {
        tx.try_send(&[1u8; 8]).unwrap();
    }
    for _ in 0..63 {
        rx.try_recv(&mut buf).unwrap();
    }
    assert_eq!(spsc::stat(&seg, 0).unwrap().used, Some(0));
    assert_eq!(fill_with_8_byte_messages(&mut tx), all);
}

/// The consumer reads the one message there is, then waits on another channel for the
/// producer, which first sends a burst that an empty channel holds: the burst must go in, or
/// the two wait for each other for ever (here: for the 2 s of `send_timeout`).
#[test]
fn a_burst_that_fits_an_empty_channel_goes_in_while_the_consumer_waits_elsewhere() {
    let seg = private_spsc(SpscConfig::new(4096).max_message(8));
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let (read, wait_read) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut buf = Vec::new();
            rx.recv(&mut buf).unwrap();
            read.send(()).unwrap();
            let _ = wait_go.recv();
            while rx.try_recv(&mut buf).is_ok() {}
        });
        tx.send(&[9u8; 8]).unwrap();
        wait_read.recv().unwrap();
        let mut failed = None;
        for i in 0..255 {
            if let Err(e) = tx.send_timeout(&[2u8; 8], Duration::from_secs(2)) {
                failed = Some(format!("message {i} of the burst: {e}"));
                break;
            }
        }
        go.send(()).unwrap();
        assert_eq!(failed, None);
    });
}

/// Padding committed at the end, after the last message, is not a message waiting: a
/// producer that padded and then dropped its slot must still find the bytes before it given
/// back once the message before the padding is read.
#[test]
fn padding_after_the_last_message_does_not_hold_the_bytes_before_it() {
    let seg = private_spsc(SpscConfig::new(4096).max_message(2040));
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let mut buf = Vec::new();
    tx.try_send(&[1u8; 1976]).unwrap(); // bytes 0..1984
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 1976);
    tx.try_send(&[2u8; 504]).unwrap(); // 1984..2496
                                       // 1600 bytes do not fit before the end: padding 2496..4096 is committed, the slot dropped.
    {
        let _slot = tx.try_reserve(1600).unwrap();
    }
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 504);
    tx.try_send(&[3u8; 2040])
        .expect("a largest message after everything was read");
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 2040);
}

/// A consumer that read (and handled) every message and then dies leaves nothing for its
/// replacement to receive again: the reads that emptied the channel gave their bytes back.
#[test]
fn a_replacement_consumer_receives_nothing_that_a_drained_consumer_read() {
    let (seg, _gone) = channel(SpscConfig::new(4096).max_message(8));
    let mut tx = Sender::open(&seg, 0).unwrap();
    // All sent before the consumer starts: it reads them without ever waiting.
    for i in 0..63u8 {
        tx.send(&[i; 8]).unwrap();
    }
    let mut p = Peer::spawn("read-then-die", &[seg.name(), "63"]);
    assert_eq!(p.recv(), "read");
    p.kill9();
    drop(p);
    // The dead holder's claim is taken over.
    let t = Instant::now();
    let mut rx = loop {
        match Receiver::open(&seg, 0) {
            Ok(rx) => break rx,
            Err(e) if t.elapsed() < Duration::from_secs(10) => {
                assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let mut buf = Vec::new();
    assert!(matches!(rx.try_recv(&mut buf), Err(RecvError::Empty)));
}
