//! The transports `shmkit bench` measures, behind one trait: a link that sends and receives
//! whole messages of a fixed size between two processes.

use shmkit::channel::broadcast::{self, BroadcastConfig};
use shmkit::channel::{spsc, Receiver, RecvError, Sender, SpscConfig, Wait};
use shmkit::{Mapping, Memfd};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long any wait of a run may take before the peer counts as lost.
pub const LOST: Duration = Duration::from_secs(10);

/// Every transport, in the order of the table.
pub const ALL: [&str; 11] = [
    "floor-cacheline",
    "floor-futex",
    "floor-ring",
    "memcpy",
    "shmkit-spsc-spin",
    "shmkit-spsc-blocking",
    "shmkit-spsc-eventfd",
    "shmkit-broadcast",
    "pipe",
    "unix-stream",
    "tcp",
];

/// The two word floors carry one word: measured at 8 bytes only.
pub fn word_only(t: &str) -> bool {
    matches!(t, "floor-cacheline" | "floor-futex")
}

/// The transports that are floors (no floor of their own).
pub fn is_floor(t: &str) -> bool {
    t.starts_with("floor-") || t == "memcpy"
}

/// One side of a link.
pub trait Link {
    /// Sends `buf` whole.
    fn send(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Receives one message of `buf.len()` bytes into `buf`.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()>;
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Byte streams (pipes, sockets): messages are their bytes, back to back.
pub struct Stream<R: Read, W: Write> {
    pub r: R,
    pub w: W,
}

impl<R: Read, W: Write> Link for Stream<R, W> {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        // Flushed: the peer's stdout is line-buffered (a no-op for files and sockets).
        self.w.write_all(buf)?;
        self.w.flush()
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.r.read_exact(buf)
    }
}

/// Two SPSC channels in one segment: there and back.
pub struct Spsc<'a> {
    tx: Sender<'a>,
    rx: Receiver<'a>,
}

/// The second channel's offset in a channels segment for messages of `size` bytes.
fn back_offset(size: usize) -> usize {
    channel_config(size).size().next_multiple_of(4096)
}

pub fn channel_config(size: usize) -> SpscConfig {
    // Room for at least 2 messages of the largest size (4 for sizes that are a power of two),
    // and 64 KiB at least: a ring much larger than the L2 made large messages slower (1 MiB
    // streamed at 17 GB/s with 16 slots' worth, 22 GB/s with 4).
    let cap = ((size + 8).next_power_of_two() * 4).max(64 << 10);
    SpscConfig::new(cap).max_message(size.max(8))
}

/// The memory of a run of transport `t`, made by the measuring side: a memfd (no name to
/// leave behind, even if the run is killed), given to the peer as its stdin. Holds the two
/// channels, or the floors' words.
pub fn make_segment(t: &str, size: usize) -> shmkit::Result<Memfd> {
    if word_only(t) {
        return Memfd::create("shmkit-bench", 4096);
    }
    if t == "floor-ring" {
        return faulted(Memfd::create("shmkit-bench", 2 * Ring::span(size))?);
    }
    if t == "shmkit-broadcast" {
        let back = broadcast_config(size).size().next_multiple_of(4096);
        let seg = faulted(Memfd::create("shmkit-bench", 2 * back)?)?;
        broadcast::create(&seg, 0, broadcast_config(size))?;
        broadcast::create(&seg, back, broadcast_config(size))?;
        return Ok(seg);
    }
    let seg = faulted(Memfd::create("shmkit-bench", 2 * back_offset(size))?)?;
    spsc::create(&seg, 0, channel_config(size))?;
    spsc::create(&seg, back_offset(size), channel_config(size))?;
    Ok(seg)
}

/// The segment with every page in memory (a zero written into each of a fresh memfd's
/// zeros): a page's first touch is a fault of several microseconds, which would otherwise land
/// in the measured round trips of a ring the warm-up has not gone round yet (the SPSC rows'
/// p99.9 was 9 µs from them, the broadcast ones', whose creation writes every slot, 2 µs).
fn faulted(seg: Memfd) -> shmkit::Result<Memfd> {
    for at in (0..seg.len()).step_by(4096) {
        seg.write_at(at, &[0])?;
    }
    Ok(seg)
}

/// 16 slots of the message size at least, 64 KiB at least, one consumer place.
fn broadcast_config(size: usize) -> BroadcastConfig {
    let slot = (size.max(8) + 16).next_power_of_two();
    BroadcastConfig::new((slot * 16).max(64 << 10))
        .max_message(size.max(8))
        .max_consumers(1)
}

/// Two broadcast channels in one segment, one consumer each: there and back. A broadcast
/// producer never waits, so the stream is kept within half the slots of what the other side
/// has read: it acknowledges every quarter of the slots with an empty message on its own
/// channel (payloads are never empty), and a sender that is half the slots ahead reads
/// acknowledgements before it sends on. Without that, streaming would measure overruns.
pub struct Bcast<'a> {
    tx: broadcast::Sender<'a>,
    rx: broadcast::Receiver<'a>,
    scratch: Vec<u8>,
    sent: u64,
    acked: u64,
    got: u64,
    /// Messages per acknowledgement.
    step: u64,
}

impl<'a> Bcast<'a> {
    pub fn open(map: &'a Mapping, size: usize, peer: bool) -> io::Result<Self> {
        let back = broadcast_config(size).size().next_multiple_of(4096);
        let (out, from) = if peer { (back, 0) } else { (0, back) };
        let rx = broadcast::Receiver::open(map, from).map_err(err)?;
        let tx = broadcast::Sender::open(map, out).map_err(err)?;
        let step = (tx.slots() as u64 / 4).max(1);
        // A consumer reads from the next message published on: the measuring side sends
        // nothing before the peer has its place (the peer answers only what it received).
        if !peer {
            let t = Instant::now();
            while !broadcast::stat(map, out)
                .map_err(err)?
                .consumers
                .iter()
                .any(|c| matches!(c.holder, shmkit::channel::Holder::Alive(_)))
            {
                if t.elapsed() > LOST {
                    return Err(err("the other process did not open its end for 10 s"));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Ok(Bcast {
            tx,
            rx,
            scratch: Vec::with_capacity(size),
            sent: 0,
            acked: 0,
            got: 0,
            step,
        })
    }

    /// The next message on the way back, or an acknowledgement (`true`).
    fn next(&mut self) -> io::Result<bool> {
        match self.rx.recv_timeout(&mut self.scratch, LOST) {
            Ok(0) => {
                self.acked += self.step;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(RecvError::Overrun { lost }) => Err(err(format!(
                "{lost} messages overrun within the window (a bug)"
            ))),
            Err(e) => Err(err(e)),
        }
    }
}

impl Link for Bcast<'_> {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        while self.sent - self.acked >= 2 * self.step {
            if !self.next()? {
                return Err(err("a message where an acknowledgement was expected"));
            }
        }
        self.tx.send(buf).map_err(err)?;
        self.sent += 1;
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        while self.next()? {}
        let n = self.scratch.len();
        if n != buf.len() {
            return Err(err(format!("a {n}-byte message, {} expected", buf.len())));
        }
        buf.copy_from_slice(&self.scratch);
        self.got += 1;
        if self.got % self.step == 0 {
            self.tx.send(&[]).map_err(err)?;
        }
        Ok(())
    }
}

impl<'a> Spsc<'a> {
    /// The measuring side sends on the first channel; the peer on the second.
    pub fn open(map: &'a Mapping, size: usize, peer: bool, wait: Wait) -> io::Result<Self> {
        let (out, back) = if peer {
            (back_offset(size), 0)
        } else {
            (0, back_offset(size))
        };
        let mut tx = Sender::open(map, out).map_err(err)?;
        let mut rx = Receiver::open(map, back).map_err(err)?;
        tx.set_wait(wait);
        rx.set_wait(wait);
        Ok(Spsc { tx, rx })
    }
}

impl Link for Spsc<'_> {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tx.send_timeout(buf, LOST).map_err(err)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        // Read in place, straight into the bench's buffer: one copy, as a pipe's read is.
        let m = self.rx.recv_in_place_timeout(LOST).map_err(err)?;
        if m.len() != buf.len() {
            return Err(err(format!(
                "a {}-byte message, {} expected",
                m.len(),
                buf.len()
            )));
        }
        m.read_at(0, buf).map_err(err)
    }
}

/// Two SPSC channels whose consumers sleep in `epoll` on an eventfd that the other side's
/// producer signals: the cost of waking a consumer that waits beside its sockets.
pub struct SpscEventfd<'a> {
    tx: Sender<'a>,
    rx: Receiver<'a>,
    mine: shmkit::handle::EventFd,
    epoll: std::os::fd::OwnedFd,
    scratch: Vec<u8>,
}

impl<'a> SpscEventfd<'a> {
    /// `mine` is the eventfd this side sleeps on; `theirs` the one its producer signals.
    pub fn open(
        map: &'a Mapping,
        size: usize,
        peer: bool,
        mine: shmkit::handle::EventFd,
        theirs: shmkit::handle::EventFd,
    ) -> io::Result<Self> {
        use rustix::event::epoll;
        let (out, back) = if peer {
            (back_offset(size), 0)
        } else {
            (0, back_offset(size))
        };
        let mut tx = Sender::open(map, out).map_err(err)?;
        let rx = Receiver::open(map, back).map_err(err)?;
        tx.notify_with(theirs);
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &ep,
            mine.fd(),
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )?;
        Ok(SpscEventfd {
            tx,
            rx,
            mine,
            epoll: ep,
            scratch: Vec::with_capacity(size),
        })
    }
}

impl Link for SpscEventfd<'_> {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tx.send_timeout(buf, LOST).map_err(err)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let t = Instant::now();
        let n = loop {
            match self.rx.try_recv(&mut self.scratch) {
                Ok(n) => break n,
                Err(RecvError::Empty) => {}
                Err(e) => return Err(err(e)),
            }
            if self.rx.prepare_wait().map_err(err)? {
                let ts = rustix::time::Timespec {
                    tv_sec: 0,
                    tv_nsec: 100_000_000,
                };
                let mut events = Vec::with_capacity(1);
                rustix::event::epoll::wait(
                    &self.epoll,
                    rustix::buffer::spare_capacity(&mut events),
                    Some(&ts),
                )?;
                if !events.is_empty() {
                    self.mine.wait_timeout(Duration::ZERO).map_err(err)?;
                }
            }
            if t.elapsed() > LOST {
                return Err(err("the other process did not answer for 10 s"));
            }
        };
        if n != buf.len() {
            return Err(err(format!("a {n}-byte message, {} expected", buf.len())));
        }
        buf.copy_from_slice(&self.scratch);
        Ok(())
    }
}

/// The streaming floor: what two CPUs move through shared memory with nothing but a copy in
/// and a copy out. Each way, a ring of fixed slots of the message size (as many bytes in all
/// as the SPSC channel of that size has), a count of messages written and one of messages
/// read, each on its own line, spun on; no header, no check, no wake-up. The copies are the
/// channel's own (`Mapping::write_at`/`read_at`).
pub struct Ring<'a> {
    map: &'a Mapping,
    out: usize,
    back: usize,
    /// The counts, looked up once (as the floor's words are): messages written and read on
    /// `out`, then on `back`.
    out_written: &'a AtomicU64,
    out_read: &'a AtomicU64,
    back_written: &'a AtomicU64,
    back_read: &'a AtomicU64,
    slots: u64,
    stride: usize,
    sent: u64,
    /// The peer's count of messages read on `out`, as last seen.
    read: u64,
    got: u64,
}

/// A ring's counts, then its slots from here.
const RING_SLOTS_AT: usize = 256;

impl<'a> Ring<'a> {
    /// Slot stride and count for messages of `size` bytes.
    fn shape(size: usize) -> (usize, u64) {
        let stride = size.next_multiple_of(64);
        let cap = channel_config(size).capacity;
        (stride, (cap / stride).max(2) as u64)
    }

    /// Bytes one ring takes (a multiple of 4096).
    pub fn span(size: usize) -> usize {
        let (stride, slots) = Self::shape(size);
        (RING_SLOTS_AT + stride * slots as usize).next_multiple_of(4096)
    }

    pub fn open(map: &'a Mapping, size: usize, peer: bool) -> io::Result<Self> {
        let (stride, slots) = Self::shape(size);
        let span = Self::span(size);
        let (out, back) = if peer { (span, 0) } else { (0, span) };
        // The written count at 0 of a ring, the read count at 128.
        let count = |at: usize| map.atomic_u64(at).map_err(err);
        Ok(Ring {
            map,
            out,
            back,
            out_written: count(out)?,
            out_read: count(out + 128)?,
            back_written: count(back)?,
            back_read: count(back + 128)?,
            slots,
            stride,
            sent: 0,
            read: 0,
            got: 0,
        })
    }

    fn slot(&self, ring: usize, n: u64) -> usize {
        ring + RING_SLOTS_AT + (n % self.slots) as usize * self.stride
    }
}

/// Spins until `ready` (with `spin_loop`), giving up after [`LOST`].
fn spin_until(mut ready: impl FnMut() -> bool) -> io::Result<()> {
    let mut spins = 0u32;
    let mut since: Option<Instant> = None;
    while !ready() {
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins % (1 << 20) == 0 && since.get_or_insert_with(Instant::now).elapsed() > LOST {
            return Err(err("the other process did not answer for 10 s"));
        }
    }
    Ok(())
}

impl Link for Ring<'_> {
    fn send(&mut self, buf: &[u8]) -> io::Result<()> {
        let read = self.out_read;
        if self.sent - self.read >= self.slots {
            // Acquire: the peer's copy out of the slot happens before ours into it.
            spin_until(|| {
                self.read = read.load(Ordering::Acquire);
                self.sent - self.read < self.slots
            })?;
        }
        self.map
            .write_at(self.slot(self.out, self.sent), buf)
            .map_err(err)?;
        self.sent += 1;
        // Release: the slot's bytes before the count.
        self.out_written.store(self.sent, Ordering::Release);
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let written = self.back_written;
        spin_until(|| written.load(Ordering::Acquire) > self.got)?;
        self.map
            .read_at(self.slot(self.back, self.got), buf)
            .map_err(err)?;
        self.got += 1;
        self.back_read.store(self.got, Ordering::Release);
        Ok(())
    }
}

/// The floors: one word each way on its own line (a count of messages sent), spun on or
/// slept on with a raw futex.
pub struct Floor<'a> {
    out: &'a AtomicU64,
    back: &'a AtomicU64,
    futex: bool,
    sent: u64,
    got: u64,
}

impl<'a> Floor<'a> {
    pub fn open(map: &'a Mapping, peer: bool, futex: bool) -> io::Result<Self> {
        let (a, b) = (
            map.atomic_u64(0).map_err(err)?,
            map.atomic_u64(128).map_err(err)?,
        );
        let (out, back) = if peer { (b, a) } else { (a, b) };
        Ok(Floor {
            out,
            back,
            futex,
            sent: 0,
            got: 0,
        })
    }

    /// The low half of a word, as the futex word (little-endian).
    fn word32(w: &AtomicU64) -> &AtomicU32 {
        // SAFETY: an AtomicU64 is 8-aligned; its first 4 bytes are a valid, aligned AtomicU32
        // (the low half on a little-endian machine), used only through atomic operations.
        unsafe { &*(w as *const AtomicU64).cast::<AtomicU32>() }
    }
}

impl Link for Floor<'_> {
    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        self.sent += 1;
        self.out.store(self.sent, Ordering::Release);
        if self.futex {
            let _ = rustix::thread::futex::wake(
                Self::word32(self.out),
                rustix::thread::futex::Flags::empty(),
                1,
            );
        }
        Ok(())
    }
    fn recv(&mut self, _: &mut [u8]) -> io::Result<()> {
        self.got += 1;
        let mut spins = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            let v = self.back.load(Ordering::Acquire);
            if v >= self.got {
                return Ok(());
            }
            if self.futex {
                // Slept on in slices, so that a peer that died is noticed.
                let _ = rustix::thread::futex::wait(
                    Self::word32(self.back),
                    rustix::thread::futex::Flags::empty(),
                    v as u32,
                    Some(&rustix::thread::futex::Timespec {
                        tv_sec: 0,
                        tv_nsec: 100_000_000,
                    }),
                );
            } else {
                std::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % (1 << 20) != 0 {
                    continue;
                }
            }
            if since.get_or_insert_with(Instant::now).elapsed() > LOST {
                return Err(err("the other process did not answer for 10 s"));
            }
        }
    }
}
