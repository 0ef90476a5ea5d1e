//! Channels: messages between processes through a shared mapping, without a system call on
//! the way while both sides are busy.
//!
//! [`spsc`]: one producer, one consumer, variable-length messages up to a configured largest,
//! copied ([`Sender::send`], [`Receiver::recv`]), in place ([`Sender::reserve`] →
//! [`Slot::commit`], [`Receiver::recv_in_place`] → drop the [`Msg`]), batched
//! ([`Sender::send_batch`], [`Slot::commit_later`] + [`Sender::publish`]) or typed
//! ([`Sender::send_value`], [`Receiver::recv_value`] for types valid for every bit pattern).
//!
//! A channel lives at an offset (a multiple of 128) of any [`Mapping`](crate::Mapping): a
//! POSIX segment opened by name, a memfd passed as a [`Handle`](crate::handle::Handle) or
//! looked up in the [`registry`](crate::registry). [`spsc::create`] builds it (create-or-open,
//! through [`init_once`](crate::sync::init_once), whose tag and version the other side
//! checks); each end is claimed by one process at a time.
//!
//! Waiting ([`Wait`]): [`Wait::Spin`] polls and never makes a system call;
//! [`Wait::Adaptive`] (the default) polls for an adaptive while, then sleeps on a futex;
//! [`Wait::Block`] sleeps at once. A side that publishes makes no system call unless the
//! other sleeps. Every wait has a timeout variant, and a side waiting on a peer that died
//! (or let go of its end) learns it within 100 ms ([`RecvError::ProducerGone`],
//! [`SendError::ConsumerGone`]), its pid and start time telling it from a reused pid.
//!
//! A peer may be buggy or hostile: every position and record it writes is checked before
//! use, and every byte goes through the mapping's bounds-checked, race-free copies, so the
//! worst it can do is make this side see garbage or a `Corrupt` error.
//!
//! Linux only (futexes).

mod backoff;
pub mod broadcast;
mod endpoint;
mod error;
mod flavor;
pub mod layout;
pub mod mpsc;
mod slots;
pub mod spsc;
mod wake;

pub use backoff::Wait;
pub use endpoint::Holder;
pub use error::{RecvError, SendError};
pub use flavor::Flavor;
pub use spsc::{Msg, Receiver, Sender, Slot, SpscConfig, SpscStat};
