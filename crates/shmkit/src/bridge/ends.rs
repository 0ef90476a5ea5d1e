//! The local end a route holds, of whichever kind of channel is at its offset: a forwarding
//! route is the consumer of an SPSC or MPSC channel, or one more reader of a broadcast one;
//! an ingesting route is the producer of an SPSC or broadcast channel, or one producer of an
//! MPSC one.

use crate::channel::{broadcast, mpsc, spsc, Flavor, RecvError, SendError};
use crate::{Error, ErrorKind, Mapping, Result};
use std::time::Duration;

/// The kind of channel at `offset` of `map`.
fn flavor(map: &Mapping, offset: usize, op: &'static str) -> Result<Flavor> {
    Flavor::at(map, offset).ok_or_else(|| {
        Error::new(
            ErrorKind::BadLayout,
            op,
            map.object(),
            format!("no channel at offset {offset}"),
        )
        .with_hint("make the channel (spsc, mpsc or broadcast `create`) before bridging it")
    })
}

/// What a forwarding route reads from.
pub enum Source<'a> {
    Spsc(spsc::Receiver<'a>),
    Mpsc(mpsc::Receiver<'a>),
    Broadcast(broadcast::Receiver<'a>),
}

impl<'a> Source<'a> {
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        Ok(match flavor(map, offset, "bridge forward")? {
            Flavor::Spsc => Source::Spsc(spsc::Receiver::open(map, offset)?),
            Flavor::Mpsc => Source::Mpsc(mpsc::Receiver::open(map, offset)?),
            Flavor::Broadcast => Source::Broadcast(broadcast::Receiver::open(map, offset)?),
        })
    }

    /// Receives the next message into `out` after its first `at` bytes (`out` is resized to
    /// fit it exactly), waiting at most `d`: straight from the channel for SPSC (one copy),
    /// through `buf` for the others.
    pub fn recv_after(
        &mut self,
        out: &mut Vec<u8>,
        at: usize,
        buf: &mut Vec<u8>,
        d: Duration,
    ) -> std::result::Result<(), RecvError> {
        match self {
            Source::Spsc(r) => {
                let m = r.recv_in_place_timeout(d)?;
                out.resize(at + m.len(), 0);
                m.read_at(0, &mut out[at..]).map_err(RecvError::Mapping)?;
                return Ok(());
            }
            Source::Mpsc(r) => r.recv_timeout(buf, d)?,
            Source::Broadcast(r) => r.recv_timeout(buf, d)?,
        };
        out.truncate(at);
        out.resize(at, 0);
        out.extend_from_slice(buf);
        Ok(())
    }
}

/// What an ingesting route writes into.
pub enum Sink<'a> {
    Spsc(spsc::Sender<'a>),
    Mpsc(mpsc::Sender<'a>),
    Broadcast(broadcast::Sender<'a>),
}

impl<'a> Sink<'a> {
    pub fn open(map: &'a Mapping, offset: usize) -> Result<Self> {
        Ok(match flavor(map, offset, "bridge ingest")? {
            Flavor::Spsc => Sink::Spsc(spsc::Sender::open(map, offset)?),
            Flavor::Mpsc => Sink::Mpsc(mpsc::Sender::open(map, offset)?),
            Flavor::Broadcast => Sink::Broadcast(broadcast::Sender::open(map, offset)?),
        })
    }

    /// Sends `m`, waiting for room at most `d` (a broadcast producer never waits: its slow
    /// readers are lapped, and told).
    pub fn send_timeout(&mut self, m: &[u8], d: Duration) -> std::result::Result<(), SendError> {
        match self {
            Sink::Spsc(t) => t.send_timeout(m, d),
            Sink::Mpsc(t) => t.send_timeout(m, d),
            Sink::Broadcast(t) => t.send(m),
        }
    }

    pub fn try_send(&mut self, m: &[u8]) -> std::result::Result<(), SendError> {
        match self {
            Sink::Spsc(t) => t.try_send(m),
            Sink::Mpsc(t) => t.try_send(m),
            Sink::Broadcast(t) => t.send(m),
        }
    }
}
