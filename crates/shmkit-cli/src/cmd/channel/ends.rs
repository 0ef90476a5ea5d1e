//! The ends of whichever kind of channel a segment holds, behind one face for `send` and
//! `recv`.

use shmkit::channel::{broadcast, mpsc, spsc, Flavor, Msg, RecvError, SendError};
use shmkit::Mapping;
use std::time::Duration;

/// A producer end.
pub enum Tx<'a> {
    Spsc(spsc::Sender<'a>),
    Mpsc(mpsc::Sender<'a>),
    Broadcast(broadcast::Sender<'a>),
}

impl<'a> Tx<'a> {
    pub fn open(map: &'a Mapping, flavor: Flavor) -> shmkit::Result<Self> {
        Ok(match flavor {
            Flavor::Spsc => Tx::Spsc(spsc::Sender::open(map, 0)?),
            Flavor::Mpsc => Tx::Mpsc(mpsc::Sender::open(map, 0)?),
            Flavor::Broadcast => Tx::Broadcast(broadcast::Sender::open(map, 0)?),
        })
    }

    pub fn max_message(&self) -> usize {
        match self {
            Tx::Spsc(t) => t.max_message(),
            Tx::Mpsc(t) => t.max_message(),
            Tx::Broadcast(t) => t.max_message(),
        }
    }

    /// Sends `m`, waiting for room at most `timeout` (a broadcast send never waits).
    pub fn send(&mut self, m: &[u8], timeout: Option<Duration>) -> Result<(), SendError> {
        match (self, timeout) {
            (Tx::Spsc(t), Some(d)) => t.send_timeout(m, d),
            (Tx::Spsc(t), None) => t.send(m),
            (Tx::Mpsc(t), Some(d)) => t.send_timeout(m, d),
            (Tx::Mpsc(t), None) => t.send(m),
            (Tx::Broadcast(t), _) => t.send(m),
        }
    }
}

/// A consumer end.
pub enum Rx<'a> {
    Spsc(spsc::Receiver<'a>),
    Mpsc(mpsc::Receiver<'a>),
    Broadcast(broadcast::Receiver<'a>),
}

/// How long a receive waits.
#[derive(Clone, Copy)]
pub enum Patience {
    /// Not at all.
    None,
    /// At most this long.
    For(Duration),
    /// As long as it takes.
    Ever,
}

/// A received message: in place (SPSC, given back when dropped) or copied out.
pub enum Got<'r, 'a> {
    InPlace(Msg<'r, 'a>),
    Copied(&'r [u8]),
}

impl<'a> Rx<'a> {
    pub fn open(map: &'a Mapping, flavor: Flavor) -> shmkit::Result<Self> {
        Ok(match flavor {
            Flavor::Spsc => Rx::Spsc(spsc::Receiver::open(map, 0)?),
            Flavor::Mpsc => Rx::Mpsc(mpsc::Receiver::open(map, 0)?),
            Flavor::Broadcast => Rx::Broadcast(broadcast::Receiver::open(map, 0)?),
        })
    }

    /// Gives back the bytes of what was received (SPSC; the others free a slot as they copy).
    pub fn give_back(&mut self) {
        if let Rx::Spsc(r) = self {
            r.give_back();
        }
    }

    /// The next message: an SPSC one in place, so that it stays in the channel until the
    /// caller is done with it; the others copied into `buf`.
    pub fn recv<'r>(
        &'r mut self,
        buf: &'r mut Vec<u8>,
        wait: Patience,
    ) -> Result<Got<'r, 'a>, RecvError> {
        Ok(match self {
            Rx::Spsc(r) => Got::InPlace(match wait {
                Patience::None => r.try_recv_in_place()?,
                Patience::For(d) => r.recv_in_place_timeout(d)?,
                Patience::Ever => r.recv_in_place()?,
            }),
            Rx::Mpsc(r) => {
                match wait {
                    Patience::None => r.try_recv(buf)?,
                    Patience::For(d) => r.recv_timeout(buf, d)?,
                    Patience::Ever => r.recv(buf)?,
                };
                Got::Copied(buf)
            }
            Rx::Broadcast(r) => {
                match wait {
                    Patience::None => r.try_recv(buf)?,
                    Patience::For(d) => r.recv_timeout(buf, d)?,
                    Patience::Ever => r.recv(buf)?,
                };
                Got::Copied(buf)
            }
        })
    }
}
