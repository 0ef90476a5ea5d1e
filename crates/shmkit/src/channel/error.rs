//! What a send or a receive can meet: small enums for the hot path (as crossbeam's
//! `TrySendError`), convertible into the crate's [`Error`](crate::Error) for `?`.

use crate::error::{Error, ErrorKind};
use std::fmt;

/// Why a message was not sent.
#[derive(Debug)]
pub enum SendError {
    /// No room (a `try_` call, or a `Spin`/`Adaptive` wait that found none before it ended).
    Full,
    /// The wait's timeout passed with no room.
    Timeout,
    /// The message is larger than the channel's largest.
    TooLarge {
        /// Its length.
        len: usize,
        /// The channel's largest.
        max: usize,
    },
    /// The consumer's process died (it held the consumer end and no longer exists) or let go
    /// of it, with the channel full.
    ConsumerGone {
        /// Its pid.
        pid: i32,
    },
    /// The consumer wrote a position that cannot be (behind the last one seen, past what was
    /// sent, misaligned): a buggy or hostile peer. The channel is not to be used again.
    Corrupt(&'static str),
    /// The mapping itself failed (truncated by a peer, not inherited in a fork child, ...).
    Mapping(Error),
}

/// Why no message was received.
#[derive(Debug)]
pub enum RecvError {
    /// No message (a `try_` call).
    Empty,
    /// The wait's timeout passed with no message.
    Timeout,
    /// The channel is empty and its producer is gone: its process died (`crashed`) or it let
    /// go of the producer end.
    ProducerGone {
        /// Its pid.
        pid: i32,
        /// Whether it died holding the end (rather than dropping it).
        crashed: bool,
    },
    /// The producer wrote a position or record that cannot be (past the data, longer than the
    /// largest message, an unknown kind): a buggy or hostile peer. Nothing out of bounds was
    /// read; the channel is not to be used again.
    Corrupt(&'static str),
    /// The mapping itself failed.
    Mapping(Error),
    /// A broadcast consumer was lapped by its producer: `lost` messages were written over
    /// before it read them. It has moved on to the oldest message still there, which the next
    /// receive returns.
    Overrun {
        /// Messages lost.
        lost: u64,
    },
    /// A typed receive found a message of another size than the type.
    WrongSize {
        /// The message's length.
        len: usize,
        /// The type's size.
        want: usize,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full => write!(f, "the channel is full"),
            SendError::Timeout => write!(f, "the channel stayed full until the timeout"),
            SendError::TooLarge { len, max } => write!(
                f,
                "a {len}-byte message is larger than the channel's largest ({max} bytes)"
            ),
            SendError::ConsumerGone { pid } => {
                write!(
                    f,
                    "the consumer{} is gone and the channel is full",
                    who(*pid)
                )
            }
            SendError::Corrupt(why) => write!(f, "the channel is corrupt: {why}"),
            SendError::Mapping(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => write!(f, "the channel is empty"),
            RecvError::Timeout => write!(f, "no message came before the timeout"),
            RecvError::ProducerGone { pid, crashed } => write!(
                f,
                "the producer{} {} and every message it sent was received",
                who(*pid),
                if *crashed {
                    "died"
                } else {
                    "closed the channel"
                }
            ),
            RecvError::Corrupt(why) => write!(f, "the channel is corrupt: {why}"),
            RecvError::Mapping(e) => e.fmt(f),
            RecvError::Overrun { lost } => write!(
                f,
                "the producer overran this consumer: {lost} message{} lost",
                if *lost == 1 { "" } else { "s" }
            ),
            RecvError::WrongSize { len, want } => write!(
                f,
                "a {len}-byte message where a {want}-byte value was expected"
            ),
        }
    }
}

/// A received message as a `T` (any bit pattern is one), or [`RecvError::WrongSize`].
pub(super) fn value_of<T: zerocopy::FromBytes>(buf: &[u8]) -> Result<T, RecvError> {
    T::read_from_bytes(buf).map_err(|_| RecvError::WrongSize {
        len: buf.len(),
        want: std::mem::size_of::<T>(),
    })
}

/// " (pid N)", or nothing for a pid not known (0).
fn who(pid: i32) -> String {
    if pid > 0 {
        format!(" (pid {pid})")
    } else {
        String::new()
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for RecvError {}

impl From<Error> for SendError {
    fn from(e: Error) -> Self {
        SendError::Mapping(e)
    }
}

impl From<Error> for RecvError {
    fn from(e: Error) -> Self {
        RecvError::Mapping(e)
    }
}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        let kind = match &e {
            SendError::Full => ErrorKind::WouldBlock,
            SendError::Timeout => ErrorKind::TimedOut,
            SendError::TooLarge { .. } => ErrorKind::InvalidArgument,
            SendError::ConsumerGone { .. } => ErrorKind::PeerGone,
            SendError::Corrupt(_) => ErrorKind::BadLayout,
            SendError::Mapping(_) => ErrorKind::Os,
        };
        match e {
            SendError::Mapping(e) => e,
            e => Error::new(kind, "send", "channel", e.to_string()),
        }
    }
}

impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        let kind = match &e {
            RecvError::Empty => ErrorKind::WouldBlock,
            RecvError::Timeout => ErrorKind::TimedOut,
            RecvError::ProducerGone { .. } => ErrorKind::PeerGone,
            RecvError::Corrupt(_) | RecvError::WrongSize { .. } => ErrorKind::BadLayout,
            RecvError::Overrun { .. } => ErrorKind::Overrun,
            RecvError::Mapping(_) => ErrorKind::Os,
        };
        match e {
            RecvError::Mapping(e) => e,
            e => Error::new(kind, "recv", "channel", e.to_string()),
        }
    }
}
