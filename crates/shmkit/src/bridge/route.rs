//! A route: one thread that carries one local channel's messages out to a key expression
//! (`forward`), or a key expression's messages into one local channel (`ingest`), with its
//! counters.

use super::ends::{Sink, Source};
use super::sequence::{Seen, Sequences};
use super::wire::{self, Origin};
use super::Bridge;
use crate::channel::{RecvError, SendError};
use crate::{Error, ErrorKind, Mapping, Result};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use zenoh::Wait;

/// How often a route's thread looks whether it was asked to stop.
const LOOK: Duration = Duration::from_millis(100);

/// What an ingesting route does with a message its local channel has no room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFull {
    /// Wait for room, holding the network back to the local consumer's pace: the route takes
    /// each message in Zenoh's receiving task, which waits with it (Zenoh's congestion
    /// control then holds the sender); the local channel is the route's only queue, to be
    /// sized for the bursts. Two limits, both Zenoh's: it holds a stuck link for at most
    /// `transport/link/tx/queue/congestion_control/block/wait_before_close` (5 s by
    /// default; raise it in the configuration for longer pauses), then closes it, and what
    /// was in flight is lost (counted as gaps); and while this route waits, every route of
    /// the same session waits too (one session, one link): give a route that may block long
    /// a `Bridge` of its own. End-to-end flow control, which neither limit would touch, is
    /// not there yet.
    #[default]
    Block,
    /// Drop the message and count it in [`RouteStats::dropped`].
    Drop,
}

/// What a route has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteStats {
    /// Messages read from the local channel and published (a forwarding route).
    pub forwarded: u64,
    /// Messages put into the local channel (an ingesting route).
    pub ingested: u64,
    /// Messages dropped because the local channel was full (`OnFull::Drop`).
    pub dropped: u64,
    /// Messages larger than the local channel's largest, dropped.
    pub oversize: u64,
    /// Messages a forwarding route lost in its local broadcast channel: the producer lapped
    /// it (as any slow reader of a broadcast channel).
    pub overruns: u64,
    /// Messages a forwarding route published while Zenoh knew of no subscriber to its key
    /// (the last one went while the route waited for the message): sent to nobody, unless
    /// one came back in time (the receiving side then counts a gap).
    pub unmatched: u64,
    /// Messages that never came: the numbers skipped on their routes, and those a route says
    /// it sent (it does when idle for 100 ms) that did not arrive; one less for each that
    /// arrives late after all.
    pub gaps: u64,
    /// Messages that came again or out of order, dropped.
    pub duplicates: u64,
    /// This bridge's own messages come back (a loop in the routes), dropped.
    pub looped: u64,
    /// Publications on the key expression that are not a bridge's messages, or numbered
    /// further past their origin's last message than any loss could make them (2^20), dropped.
    pub garbage: u64,
}

#[derive(Default)]
struct Counters {
    forwarded: AtomicU64,
    ingested: AtomicU64,
    dropped: AtomicU64,
    oversize: AtomicU64,
    overruns: AtomicU64,
    unmatched: AtomicU64,
    gaps: AtomicU64,
    duplicates: AtomicU64,
    looped: AtomicU64,
    garbage: AtomicU64,
}

impl Counters {
    fn add(c: &AtomicU64, n: u64) {
        // Relaxed: counters, read for reports; nothing is ordered by them. Saturating: a
        // forged number can make a gap of up to 2^64 - 1, which must not wrap to a small one.
        let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_add(n)));
    }

    /// Takes one off a counter (a gap whose message came late), never below 0.
    fn take_one(c: &AtomicU64) {
        // Relaxed: as `add`.
        let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(1)));
    }

    fn stats(&self) -> RouteStats {
        RouteStats {
            forwarded: self.forwarded.load(Relaxed),
            ingested: self.ingested.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            oversize: self.oversize.load(Relaxed),
            overruns: self.overruns.load(Relaxed),
            unmatched: self.unmatched.load(Relaxed),
            gaps: self.gaps.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            looped: self.looped.load(Relaxed),
            garbage: self.garbage.load(Relaxed),
        }
    }
}

/// A running route. Dropping it stops it (and waits for its thread).
pub struct Route {
    /// The origin of a forwarding route's messages.
    origin: Option<Origin>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Route {
    /// The origin its messages carry (a forwarding route; `None` for an ingesting one).
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// Its counters now.
    pub fn stats(&self) -> RouteStats {
        self.counters.stats()
    }

    /// Whether its thread has ended: asked to stop, or by an error that [`Route::stop`]
    /// returns.
    pub fn finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Asks it to stop, without waiting: to stop several routes that may wait on each other
    /// (one publishing to a key that another of the same session ingests, into a full
    /// channel), ask them all before [`Route::stop`] waits for each.
    pub fn ask_stop(&self) {
        self.stop.store(true, Relaxed);
    }

    /// Stops it and returns its counters.
    ///
    /// # Errors
    /// The error that ended the route's thread before it was asked to stop (a corrupt local
    /// channel, a failed mapping, the network engine).
    pub fn stop(mut self) -> Result<RouteStats> {
        self.halt()?;
        Ok(self.counters.stats())
    }

    fn halt(&mut self) -> Result<()> {
        self.stop.store(true, Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::new(
                ErrorKind::Network,
                "bridge route",
                "",
                "the route's thread panicked",
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

fn network(op: &'static str, object: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Network, op, object, e.to_string())
}

/// Starts a route's thread, which first claims its end of the local channel and says how
/// that went (`ready`): the claim is made once, where it is kept, so the other end never sees
/// this one let go in between; its error is the caller's. The thread holds `session`: it
/// lives as long as its routes, whatever becomes of the `Bridge`.
fn start(
    session: zenoh::Session,
    origin: Option<Origin>,
    name: String,
    body: impl FnOnce(&Arc<AtomicBool>, &Arc<Counters>, &dyn Fn(Result<()>)) -> Result<()>
        + Send
        + 'static,
) -> Result<Route> {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let (s, c) = (stop.clone(), counters.clone());
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<()>>(1);
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _session = session;
            let ready = |r: Result<()>| {
                let _ = ready_tx.send(r);
            };
            body(&s, &c, &ready)
        })
        .map_err(|e| Error::io("bridge route", "thread", &e))?;
    let mut route = Route {
        origin,
        stop,
        counters,
        thread: Some(thread),
    };
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(route),
        Ok(Err(e)) => {
            let _ = route.halt();
            Err(e)
        }
        // It ended without a word: its result says why.
        Err(_) => Err(route.halt().err().unwrap_or_else(|| {
            network(
                "bridge route",
                "",
                "the route's thread ended before it started",
            )
        })),
    }
}

/// The end a route's thread claimed, or `None` after it told its caller why not.
fn claimed<T>(end: Result<T>, ready: &dyn Fn(Result<()>)) -> Option<T> {
    match end {
        Ok(end) => {
            ready(Ok(()));
            Some(end)
        }
        Err(e) => {
            ready(Err(e));
            None
        }
    }
}

impl Bridge {
    /// Publishes on `key` every message of the channel at `offset` of `segment` (shared with
    /// the caller, who may hold the producer end), numbered from 0, while a subscriber
    /// matches `key`. The route joins the channel as an ordinary consumer: it takes the
    /// consumer end of an SPSC or MPSC channel, or one more reader's place in a broadcast one
    /// (which reads from the next message sent, and is lapped like any slow reader: counted
    /// in [`RouteStats::overruns`]). Until a subscriber matches, the messages wait in the
    /// channel under its own rules (an SPSC or MPSC producer waits when it is full; a
    /// broadcast producer never does), so none is sent to nobody. Any subscriber counts (a monitor on the key, an ingest route of this
    /// very bridge), and one published as the last subscriber goes is lost (the receiving
    /// side counts it as a gap if it stays). The routes keep the session open: dropping the
    /// `Bridge` does not stop them.
    ///
    /// # Errors
    /// [`ErrorKind::Network`] for a key expression Zenoh refuses; [`ErrorKind::BadLayout`]
    /// when no channel is at `offset`; as
    /// [`spsc::Receiver::open`](crate::channel::spsc::Receiver::open) (and its MPSC and
    /// broadcast twins) for the channel's end.
    pub fn forward<S>(&self, segment: Arc<S>, offset: usize, key: &str) -> Result<Route>
    where
        S: Deref<Target = Mapping> + Send + Sync + 'static,
    {
        let origin = Origin {
            bridge: self.id,
            route: self.routes.fetch_add(1, Relaxed),
        };
        let publisher = self
            .session
            .declare_publisher(key.to_string())
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .wait()
            .map_err(|e| network("bridge forward", key, e))?;
        // Whether a subscriber matches, as Zenoh says when it changes (and at once when the
        // listener is declared, if one matches already): asking it for every message took a
        // lock and most of a microsecond.
        let matched = Arc::new(AtomicBool::new(false));
        let m = matched.clone();
        let listener = publisher
            .matching_listener()
            .callback(move |s| m.store(s.matching(), Relaxed))
            .wait()
            .map_err(|e| network("bridge forward", key, e))?;
        let key = key.to_string();
        let name = format!("shmkit-fwd {key}");
        start(
            self.session.clone(),
            Some(origin),
            name,
            move |stop, counters, ready| {
                let _listener = listener;
                let Some(mut rx) = claimed(Source::open(&segment, offset), ready) else {
                    return Ok(());
                };
                let (mut buf, mut frame, mut seq) = (Vec::new(), Vec::new(), 0u64);
                // Relaxed: a flag; what it says may be a moment old either way, as Zenoh's own
                // answer would be by the time it is used.
                let matching = || matched.load(Relaxed);
                while !stop.load(Relaxed) {
                    if !matching() {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    // Idle for LOOK: say how far the route has sent, so that the receiving side
                    // counts what it lost at the end of a burst (there is no later message to
                    // show it).
                    let idle = match rx.recv_after(&mut frame, wire::HEADER, &mut buf, LOOK) {
                        Ok(_) => false,
                        Err(RecvError::Timeout | RecvError::Empty) => true,
                        Err(RecvError::Overrun { lost }) => {
                            Counters::add(&counters.overruns, lost);
                            continue;
                        }
                        // The local producer went away: another may come; the route keeps its end.
                        Err(RecvError::ProducerGone { .. }) => {
                            std::thread::sleep(LOOK);
                            true
                        }
                        Err(e) => return Err(Error::from(e).with_op("bridge forward")),
                    };
                    if idle {
                        if seq > 0 {
                            wire::encode_sent_up_to(origin, seq - 1, &mut frame);
                            publisher
                                .put(std::mem::take(&mut frame))
                                .wait()
                                .map_err(|e| network("bridge forward", &key, e))?;
                        }
                        continue;
                    }
                    // Taken out of the channel already: it goes, and is counted if nobody is there
                    // to hear it.
                    if !matching() {
                        Counters::add(&counters.unmatched, 1);
                    }
                    wire::encode_header(origin, seq, &mut frame);
                    publisher
                        .put(std::mem::take(&mut frame))
                        .wait()
                        .map_err(|e| network("bridge forward", &key, e))?;
                    seq += 1;
                    Counters::add(&counters.forwarded, 1);
                }
                Ok(())
            },
        )
    }

    /// Puts into the channel at `offset` of `segment` every bridged message published on
    /// `key` by another bridge. The route takes the producer end of an SPSC or broadcast
    /// channel, or one producer's place of an MPSC one; when the channel is full, as
    /// `on_full` says (a broadcast channel is never full: its slow readers are lapped).
    ///
    /// # Errors
    /// [`ErrorKind::Network`] for a key expression Zenoh refuses; [`ErrorKind::BadLayout`]
    /// when no channel is at `offset`; as
    /// [`spsc::Sender::open`](crate::channel::spsc::Sender::open) (and its MPSC and broadcast
    /// twins) for the channel's end.
    pub fn ingest<S>(
        &self,
        key: &str,
        segment: Arc<S>,
        offset: usize,
        on_full: OnFull,
    ) -> Result<Route>
    where
        S: Deref<Target = Mapping> + Send + Sync + 'static,
    {
        let me = self.id;
        // Checked before the channel is touched: a refused key must not look, to the
        // channel's consumer, like a producer that came and went.
        let key_expr = zenoh::key_expr::KeyExpr::try_from(key.to_string())
            .map_err(|e| network("bridge ingest", key, e))?;
        let key = key.to_string();
        let name = format!("shmkit-in {key}");
        let session = self.session.clone();
        start(
            self.session.clone(),
            None,
            name,
            move |stop, counters, ready| {
                let end = match Owned::open(segment, offset) {
                    Ok(end) => Arc::new(Mutex::new(Some((end, Sequences::default())))),
                    Err(e) => {
                        ready(Err(e));
                        return Ok(());
                    }
                };
                let failed = Arc::new(Mutex::new(None));
                // Each sample is taken in Zenoh's own receiving task, straight into the
                // channel: a thread between them cost a wake-up per message (the larger
                // part of a round trip's overhead over Zenoh's own, measured). When the
                // channel is full, `Block` holds that task, as a full queue of samples would:
                // the channel is the route's only queue, to be sized for the bursts. The
                // frame is read, and this bridge's own dropped, before the end's lock, so
                // that a forwarding route of this bridge (whose local deliveries run in its
                // own thread) is never held up by a blocked ingest for a message it drops.
                let (e, f, st, c) = (end.clone(), failed.clone(), stop.clone(), counters.clone());
                let subscriber = session
                    .declare_subscriber(key_expr)
                    .callback(move |sample| {
                        // A panic must not unwind into Zenoh's task (it would stop the
                        // session's receiving for good, silently): it ends this route. So does
                        // an error (a corrupt or unmapped channel). Either way the failure is
                        // recorded and the end let go of under the lock the work held, so that
                        // no other call of this callback uses what it left half done.
                        let fail = |guard: &mut Option<_>, err: Error| {
                            *f.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
                            *guard = None;
                        };
                        let panicked =
                            || network("bridge ingest", "", "the route's callback panicked");
                        let outer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            let bytes = sample.payload().to_bytes();
                            let Some(frame) = frame_of(&bytes, me, &c) else {
                                return;
                            };
                            let mut guard = e.lock().unwrap_or_else(|p| p.into_inner());
                            let Some((end, seen)) = guard.as_mut() else {
                                return;
                            };
                            // Caught inside the guard's scope: the lock is not poisoned.
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                take(&frame, seen, &mut end.sink, on_full, &st, &c)
                            }));
                            match r {
                                Ok(Ok(())) => {}
                                Ok(Err(err)) => fail(&mut guard, err),
                                Err(_) => fail(&mut guard, panicked()),
                            }
                        }));
                        if outer.is_err() {
                            // Decoding panicked, outside the lock: nothing of it is half done.
                            fail(&mut e.lock().unwrap_or_else(|p| p.into_inner()), panicked());
                        }
                    })
                    .wait();
                let subscriber = match subscriber {
                    Ok(s) => s,
                    Err(err) => {
                        ready(Err(network("bridge ingest", &key, err)));
                        return Ok(());
                    }
                };
                ready(Ok(()));
                let outcome = loop {
                    if let Some(err) = failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        break Err(err);
                    }
                    if stop.load(Relaxed) {
                        break Ok(());
                    }
                    std::thread::sleep(LOOK);
                };
                let _ = subscriber.undeclare().wait();
                // Let go of the end now, whatever Zenoh does with the callback: a sample in
                // it finishes first (it holds the lock; asked to stop, it does not wait).
                end.lock().unwrap_or_else(|p| p.into_inner()).take();
                outcome
            },
        )
    }
}

/// A route's end of a channel, and the segment it is in, kept together so that Zenoh's
/// callback (which must be `'static`) can own both.
struct Owned<S: Deref<Target = Mapping>> {
    /// Declared first: dropped before `_segment`, whose mapping it borrows.
    sink: Sink<'static>,
    _segment: Arc<S>,
}

impl<S: Deref<Target = Mapping>> Owned<S> {
    fn open(segment: Arc<S>, offset: usize) -> Result<Self> {
        let map: *const Mapping = std::ptr::from_ref(S::deref(&segment));
        // SAFETY: the reference is to the `Mapping` that `*segment` derefs to. `S` lives in
        // the `Arc`'s heap allocation, never moved, and no one has `&mut` to it (an `Arc`
        // gives out shared references only), so the `Mapping` stays where it is for as long
        // as `_segment` holds the `Arc`. `sink`, the only holder of the extended borrow, is
        // dropped before `_segment` (field order), and is only ever reborrowed through
        // `&mut self`: the `'static` never escapes this struct.
        let map: &'static Mapping = unsafe { &*map };
        Ok(Owned {
            sink: Sink::open(map, offset)?,
            _segment: segment,
        })
    }
}

/// The frame in `bytes`, unless it is garbage or this bridge's own (counted, dropped).
fn frame_of<'b>(bytes: &'b [u8], me: [u8; 16], counters: &Counters) -> Option<wire::Frame<'b>> {
    let Ok(frame) = wire::decode(bytes) else {
        Counters::add(&counters.garbage, 1);
        return None;
    };
    if frame.origin.bridge == me {
        if frame.kind == wire::Kind::Message {
            Counters::add(&counters.looped, 1);
        }
        return None;
    }
    Some(frame)
}

/// Takes one frame of an ingesting route: accounts for its number, and puts a message in
/// order into the channel as `on_full` says.
fn take(
    frame: &wire::Frame<'_>,
    seen: &mut Sequences,
    tx: &mut Sink<'_>,
    on_full: OnFull,
    stop: &AtomicBool,
    counters: &Counters,
) -> Result<()> {
    let heard = match frame.kind {
        wire::Kind::Message => seen.see(frame.origin, frame.seq),
        wire::Kind::SentUpTo => seen.sent_up_to(frame.origin, frame.seq),
    };
    match heard {
        Seen::Next => {}
        Seen::After { missed } => Counters::add(&counters.gaps, missed),
        Seen::Late => Counters::take_one(&counters.gaps),
        Seen::Again => {
            Counters::add(&counters.duplicates, 1);
            return Ok(());
        }
        Seen::Unbelievable => {
            Counters::add(&counters.garbage, 1);
            return Ok(());
        }
    }
    if frame.kind == wire::Kind::Message {
        put(tx, frame.payload, on_full, stop, counters)?;
    }
    Ok(())
}

/// Puts one message into the local channel as `on_full` says.
fn put(
    tx: &mut Sink<'_>,
    payload: &[u8],
    on_full: OnFull,
    stop: &AtomicBool,
    counters: &Counters,
) -> Result<()> {
    loop {
        let r = match on_full {
            OnFull::Block => tx.send_timeout(payload, LOOK),
            OnFull::Drop => tx.try_send(payload),
        };
        match r {
            Ok(()) => {
                Counters::add(&counters.ingested, 1);
                return Ok(());
            }
            Err(SendError::TooLarge { .. }) => {
                Counters::add(&counters.oversize, 1);
                return Ok(());
            }
            Err(SendError::Full | SendError::ConsumerGone { .. }) if on_full == OnFull::Drop => {
                Counters::add(&counters.dropped, 1);
                return Ok(());
            }
            // Full for a while, or full with its consumer gone: wait on (block), unless
            // asked to stop.
            Err(SendError::Timeout | SendError::Full | SendError::ConsumerGone { .. }) => {
                if stop.load(Relaxed) {
                    return Ok(());
                }
                if matches!(r, Err(SendError::ConsumerGone { .. })) {
                    std::thread::sleep(LOOK);
                }
            }
            Err(e) => return Err(Error::from(e).with_op("bridge ingest")),
        }
    }
}
