//! Handles in flight: sent in an answer and not read yet.
//!
//! The kernel charges every fd queued on a Unix socket to the sending user
//! (`user->unix_inflight`) and fails `sendmsg` with `ETOOMANYREFS` once that count passes the
//! sender's `RLIMIT_NOFILE`. Closing the registry's end does not give them back: they sit in
//! the peer's receive queue until it reads them or closes. So a few clients that look names
//! up and never read could stop the registry from answering anyone. The registry therefore
//! counts, per connection, the handles sent since its send queue was last seen empty
//! (`TIOCOUTQ` 0), bounds them per uid and in all ([`Bounds`](super::Bounds)), and keeps
//! the socket of a connection it closes with handles unread ("draining") until its queue
//! empties, counted against that uid's connections and handles.

use super::Server;
use std::os::unix::net::UnixStream;

/// A closed connection whose answers, with their fds, are still in its peer's queue.
pub(super) struct Draining {
    pub stream: UnixStream,
    pub uid: u32,
    pub in_flight: usize,
}

/// Bytes queued on `s` that its peer has not read (`TIOCOUTQ`; on a Unix socket, the memory
/// the queued messages take), or `None` if the kernel does not say.
pub(super) fn unread(s: &UnixStream) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int.
    let r = unsafe { libc::ioctl(rustix::fd::AsRawFd::as_raw_fd(s), libc::TIOCOUTQ, &mut n) };
    (r == 0).then(|| usize::try_from(n).unwrap_or(0))
}

impl Server {
    /// Forgets the handles sent on connections whose queue is empty (the peer read them), and
    /// lets go of the draining sockets whose queue is.
    pub(super) fn settle(&mut self) {
        for c in &mut self.conns {
            if c.in_flight > 0 && unread(&c.stream) == Some(0) {
                c.in_flight = 0;
            }
        }
        self.draining
            .retain(|d| unread(&d.stream).is_some_and(|n| n > 0));
    }

    /// Handles in flight to every client, and to the clients of `uid`.
    fn in_flight(&self, uid: u32) -> (usize, usize) {
        let conns = self.conns.iter().map(|c| (c.who.uid, c.in_flight));
        let draining = self.draining.iter().map(|d| (d.uid, d.in_flight));
        conns.chain(draining).fold((0, 0), |(all, theirs), (u, n)| {
            (all + n, theirs + if u == uid { n } else { 0 })
        })
    }

    /// `Ok` if `k` more handles may be sent to connection `i`; else why not.
    pub(super) fn room_in_flight(&mut self, i: usize, k: usize) -> Result<(), String> {
        if k == 0 {
            return Ok(());
        }
        self.settle();
        let uid = self.conns[i].who.uid;
        let (all, theirs) = self.in_flight(uid);
        if uid != self.owner && theirs + k > self.bounds.in_flight_per_uid {
            return Err(format!(
                "uid {uid} has {theirs} handles sent to it and not read yet; {k} more would pass \
                 the bound of {} (read the answers, or close the connections that do not)",
                self.bounds.in_flight_per_uid
            ));
        }
        if all + k > self.bounds.in_flight {
            return Err(format!(
                "{all} handles sent to clients are not read yet; {k} more would pass the bound \
                 of {} (some client does not read its answers)",
                self.bounds.in_flight
            ));
        }
        Ok(())
    }

    /// Connections and draining sockets of `uid`, and of everyone.
    pub(super) fn connections(&self, uid: u32) -> (usize, usize) {
        let theirs = self.conns.iter().filter(|c| c.who.uid == uid).count()
            + self.draining.iter().filter(|d| d.uid == uid).count();
        (self.conns.len() + self.draining.len(), theirs)
    }
}
