//! Beyond one machine: a channel carried across hosts over [Zenoh](https://zenoh.io) (Rust,
//! peer-to-peer or routed, no broker, reconnects by itself), with the feature `bridge`.
//!
//! A [`Bridge`] is one Zenoh session. [`Bridge::forward`] joins a local channel (SPSC, MPSC or
//! broadcast) as an ordinary consumer and publishes its messages on a key expression;
//! [`Bridge::ingest`] joins another as a producer and puts into it what is published there. Every message carries
//! its origin (the sending bridge's session id and route) and its number on that route (see
//! [`wire`]), so the receiving side counts gaps, duplicates, its own messages come back
//! (loops) and anything that is not a bridged message, and drops all but the messages in
//! order. The Zenoh configuration is the caller's: endpoints to listen on or connect to,
//! scouting, TLS, how soon a silent link is given up (its lease). [`Bridge::peers`] counts the
//! Zenoh peers it lost and got back (Zenoh reconnects by itself).
//!
//! ```no_run
//! # fn main() -> shmkit::Result<()> {
//! use shmkit::bridge::{Bridge, OnFull};
//! use shmkit::channel::{spsc, SpscConfig};
//!
//! let config = SpscConfig::new(1 << 20);
//! let out = std::sync::Arc::new(shmkit::Memfd::create("out", config.size())?);
//! spsc::create(&out, 0, config)?;
//! let mut zenoh = zenoh::Config::default();
//! zenoh.insert_json5("connect/endpoints", r#"["tcp/10.0.0.2:7447"]"#).unwrap();
//! let bridge = Bridge::open(zenoh)?;
//! // The channel's messages go out on `jobs/out`, as long as the route lives.
//! let route = bridge.forward(out.clone(), 0, "jobs/out")?;
//! let mut tx = spsc::Sender::open(&out, 0)?;
//! tx.send(b"job 1")?;
//! # drop(route);
//! # Ok(())
//! # }
//! ```

mod ends;
mod route;
mod sequence;
pub mod wire;

pub use route::{OnFull, Route, RouteStats};
pub use zenoh;

// `Bridge::forward` and `Bridge::ingest` are in `route`.

use crate::{Error, ErrorKind, Result};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use zenoh::Wait;

/// One Zenoh session, the routes of which carry local channels across hosts.
pub struct Bridge {
    session: zenoh::Session,
    id: [u8; 16],
    /// The next forwarding route's number: from a random start for each session, so that a
    /// bridge started again with a fixed Zenoh id (`id` in its configuration) is a new origin
    /// all the same (a receiver would take its numbers, from 0 again, for old ones).
    routes: AtomicU32,
    peers: Arc<PeerCounters>,
    /// Counts links as Zenoh opens and closes them, while the bridge lives.
    _events: zenoh::session::TransportEventsListener<()>,
}

/// The Zenoh peers (and routers) a bridge's session is linked to, and how that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStats {
    /// Linked now.
    pub linked: u64,
    /// Links lost: a peer that went (closed its session, died, or went silent for longer
    /// than the lease, as a link that is down does).
    pub lost: u64,
    /// Peers linked again after they were lost (Zenoh reconnects by itself).
    pub reconnects: u64,
}

#[derive(Default)]
struct PeerCounters {
    linked: AtomicU64,
    lost: AtomicU64,
    reconnects: AtomicU64,
}

impl Bridge {
    /// Opens a Zenoh session with `config` (passed through as it is).
    ///
    /// # Errors
    /// [`ErrorKind::Network`] when Zenoh refuses the configuration or cannot listen or
    /// connect where it says.
    pub fn open(config: zenoh::Config) -> Result<Bridge> {
        let session = zenoh::open(config)
            .wait()
            .map_err(|e| Error::new(ErrorKind::Network, "bridge open", "zenoh", e.to_string()))?;
        let id = session.zid().to_le_bytes();
        let peers = Arc::new(PeerCounters::default());
        let p = peers.clone();
        // The peers linked now, and every peer ever linked: one linked again after its link
        // closed is a reconnect. Kept per peer because Zenoh may say a transport closed twice
        // (a dead transport it held while a new link from the same peer was refused).
        let (mut now, mut ever) = (HashSet::new(), HashSet::new());
        let events = session
            .info()
            .transport_events_listener()
            .history(true)
            .callback_mut(move |ev| {
                let zid = *ev.transport().zid();
                // Relaxed: counters, read for reports.
                if ev.kind() == zenoh::sample::SampleKind::Put {
                    if now.insert(zid) && !ever.insert(zid) {
                        p.reconnects.fetch_add(1, Relaxed);
                    }
                } else if now.remove(&zid) {
                    p.lost.fetch_add(1, Relaxed);
                }
                p.linked.store(now.len() as u64, Relaxed);
            })
            .wait()
            .map_err(|e| Error::new(ErrorKind::Network, "bridge open", "zenoh", e.to_string()))?;
        Ok(Bridge {
            session,
            id,
            routes: AtomicU32::new(random_u32()),
            peers,
            _events: events,
        })
    }

    /// The peers (and routers) its session is linked to, and the links it lost and got
    /// back, as Zenoh opened and closed them.
    pub fn peers(&self) -> PeerStats {
        PeerStats {
            linked: self.peers.linked.load(Relaxed),
            lost: self.peers.lost.load(Relaxed),
            reconnects: self.peers.reconnects.load(Relaxed),
        }
    }

    /// The session's id: the origin of this bridge's messages.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }
}

/// A number no earlier run is likely to have drawn (std's per-process random hash keys).
fn random_u32() -> u32 {
    use std::hash::BuildHasher;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one((t, std::process::id())) as u32
}
