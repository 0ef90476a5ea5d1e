//! Channels whose consumer sleeps in `epoll` beside its sockets: the producer, in another
//! process, signals an eventfd it was handed over a Unix socket, and makes no call while the
//! consumer is busy.
#![cfg(target_os = "linux")]

mod common;
use common::stream::{check, message, Rng};
use common::{say, unique, Cleanup, Peer};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use shmkit::channel::{mpsc, spsc, Receiver, RecvError, Sender, SpscConfig};
use shmkit::handle::{self, EventFd, Handle};
use shmkit::PosixShm;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 20_000;

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    let seg = PosixShm::open(&args[0]).unwrap();
    // The consumer's eventfd, over the abstract socket `args[1]`.
    let addr = SocketAddr::from_abstract_name(args[1].as_bytes()).unwrap();
    let sock = UnixStream::connect_addr(&addr).unwrap();
    let mut got = handle::recv(&sock).unwrap();
    let eventfd = got.handles.remove(0).into_eventfd().unwrap();
    let mut rng = Rng(3);
    let mut buf = Vec::new();
    match role.as_str() {
        // Sends the stream in bursts with pauses, so the consumer goes to sleep between them.
        "spsc-producer" => {
            let mut tx = Sender::open(&seg, 0).unwrap();
            tx.notify_with(eventfd);
            for i in 0..MESSAGES {
                message(i, 16 + rng.next() as usize % 200, &mut rng, &mut buf);
                tx.send(&buf).unwrap();
                if i % 500 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            say("sent");
        }
        "mpsc-producer" => {
            let mut tx = mpsc::Sender::open(&seg, 0).unwrap();
            tx.notify_with(eventfd);
            for i in 0..MESSAGES {
                message(i, 16 + rng.next() as usize % 200, &mut rng, &mut buf);
                tx.send(&buf).unwrap();
                if i % 500 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            say("sent");
        }
        _ => panic!("unknown role {role}"),
    }
}

/// A segment of `size` bytes removed when dropped, and an abstract socket a peer connects to.
fn setup(size: usize) -> (PosixShm, Cleanup<impl FnMut()>, UnixListener, String) {
    let (seg, gone) = common::stream::segment("shmkit-test-evfd", size);
    let sock = unique("shmkit-test-evfd-sock");
    let l =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(sock.as_bytes()).unwrap()).unwrap();
    (seg, gone, l, sock)
}

/// The consumer's loop: prepare, sleep in epoll on the eventfd (and an idle socket beside
/// it) for at most 100 ms, drain; until the producer is gone. Returns the messages' sequence
/// numbers in order, how many times the eventfd woke it, and when the producer was seen gone.
fn consume(
    mut prepare: impl FnMut() -> Result<bool, RecvError>,
    mut try_recv: impl FnMut(&mut Vec<u8>) -> Result<usize, RecvError>,
    eventfd: &EventFd,
    beside: &UnixStream,
) -> (Vec<u64>, u32) {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    epoll::add(
        &ep,
        eventfd.fd(),
        epoll::EventData::new_u64(1),
        epoll::EventFlags::IN,
    )
    .unwrap();
    epoll::add(
        &ep,
        beside,
        epoll::EventData::new_u64(2),
        epoll::EventFlags::IN,
    )
    .unwrap();
    let (mut seqs, mut wakes) = (Vec::new(), 0u32);
    let mut buf = Vec::new();
    let mut events = Vec::with_capacity(4);
    let t = Instant::now();
    loop {
        assert!(t.elapsed() < Duration::from_secs(60), "no end");
        loop {
            match try_recv(&mut buf) {
                Ok(_) => seqs.push(check(&buf)),
                Err(RecvError::Empty) => break,
                Err(e) => panic!("{e}"),
            }
        }
        match prepare() {
            Ok(true) => {
                let ts = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                };
                epoll::wait(&ep, spare_capacity(&mut events), Some(&ts)).unwrap();
                for e in events.drain(..) {
                    assert_eq!(e.data.u64(), 1, "the idle socket woke us");
                    if eventfd.wait_timeout(Duration::ZERO).unwrap().is_some() {
                        wakes += 1;
                    }
                }
            }
            Ok(false) => {}
            Err(RecvError::ProducerGone { .. }) => return (seqs, wakes),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn an_spsc_consumer_sleeps_in_epoll_and_the_producer_wakes_it_through_an_eventfd() {
    let config = SpscConfig::new(1 << 16).max_message(300);
    let (seg, _gone, l, sock) = setup(config.size());
    spsc::create(&seg, 0, config).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let eventfd = EventFd::new().unwrap();
    let mut p = Peer::spawn("spsc-producer", &[seg.name(), &sock]);
    let (s, _) = l.accept().unwrap();
    handle::send(&s, &[&Handle::eventfd(&eventfd).unwrap()], b"").unwrap();
    // An idle socket beside it, as a server's would be.
    let (beside, _other) = UnixStream::pair().unwrap();
    let rx = std::cell::RefCell::new(&mut rx);
    let (seqs, wakes) = consume(
        || rx.borrow_mut().prepare_wait(),
        |b| rx.borrow_mut().try_recv(b),
        &eventfd,
        &beside,
    );
    assert_eq!(seqs, (0..MESSAGES).collect::<Vec<_>>());
    assert!(wakes > 0, "never woken through the eventfd");
    assert_eq!(p.recv(), "sent");
    p.finish();
}

#[test]
fn an_mpsc_consumer_sleeps_in_epoll_too() {
    let config = mpsc::MpscConfig::new(1 << 16).max_message(300);
    let (seg, _gone, l, sock) = setup(config.size());
    mpsc::create(&seg, 0, config).unwrap();
    let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
    let eventfd = EventFd::new().unwrap();
    let mut p = Peer::spawn("mpsc-producer", &[seg.name(), &sock]);
    let (s, _) = l.accept().unwrap();
    handle::send(&s, &[&Handle::eventfd(&eventfd).unwrap()], b"").unwrap();
    // An idle socket beside it, as a server's would be.
    let (beside, _other) = UnixStream::pair().unwrap();
    let rx = std::cell::RefCell::new(&mut rx);
    let (seqs, wakes) = consume(
        || rx.borrow_mut().prepare_wait(),
        |b| rx.borrow_mut().try_recv(b),
        &eventfd,
        &beside,
    );
    assert_eq!(seqs, (0..MESSAGES).collect::<Vec<_>>());
    assert!(wakes > 0, "never woken through the eventfd");
    assert_eq!(p.recv(), "sent");
    p.finish();
}

#[test]
fn no_eventfd_signal_while_the_consumer_is_not_waiting() {
    let config = SpscConfig::new(4096);
    let (seg, _gone, _l, _sock) = setup(config.size());
    spsc::create(&seg, 0, config).unwrap();
    let mut tx = Sender::open(&seg, 0).unwrap();
    let mut rx = Receiver::open(&seg, 0).unwrap();
    let eventfd = EventFd::new().unwrap();
    tx.notify_with(Handle::eventfd(&eventfd).unwrap().into_eventfd().unwrap());
    let mut buf = Vec::new();
    // Not prepared: sending signals nothing.
    tx.send(b"a").unwrap();
    assert_eq!(eventfd.wait_timeout(Duration::ZERO).unwrap(), None);
    // A message there: prepare says so, and raises nothing.
    assert!(!rx.prepare_wait().unwrap());
    rx.try_recv(&mut buf).unwrap();
    assert!(rx.prepare_wait().unwrap());
    tx.send(b"b").unwrap();
    assert_eq!(eventfd.wait_timeout(Duration::ZERO).unwrap(), Some(1));
    // Receiving lowers the flag again.
    rx.try_recv(&mut buf).unwrap();
    tx.send(b"c").unwrap();
    assert_eq!(eventfd.wait_timeout(Duration::ZERO).unwrap(), None);
    rx.try_recv(&mut buf).unwrap();
    // A producer that lets go wakes a prepared consumer, which then hears it is gone.
    assert!(rx.prepare_wait().unwrap());
    drop(tx);
    assert_eq!(eventfd.wait_timeout(Duration::ZERO).unwrap(), Some(1));
    assert!(matches!(
        rx.prepare_wait(),
        Err(RecvError::ProducerGone { crashed: false, .. })
    ));
}
