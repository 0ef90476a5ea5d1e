//! Beyond one machine: a channel carried across hosts over [Zenoh](https://zenoh.io) (Rust,
//! peer-to-peer or routed, no broker, reconnects by itself), with the feature `bridge`.
//!
//! A [`Bridge`] is one Zenoh session. [`Bridge::forward`] takes the consumer end of a local
//! SPSC channel and publishes its messages on a key expression; [`Bridge::ingest`] takes the
//! producer end of another and puts into it what is published there. Every message carries
//! its origin (the sending bridge's session id and route) and its number on that route (see
//! [`wire`]), so the receiving side counts gaps, duplicates, its own messages come back
//! (loops) and anything that is not a bridged message, and drops all but the messages in
//! order. The Zenoh configuration is the caller's: endpoints to listen on or connect to,
//! scouting, TLS.
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

mod route;
mod sequence;
pub mod wire;

pub use route::{OnFull, Route, RouteStats};

// `Bridge::forward` and `Bridge::ingest` are in `route`.

use crate::{Error, ErrorKind, Result};
use std::sync::atomic::AtomicU32;
use zenoh::Wait;

/// One Zenoh session, the routes of which carry local channels across hosts.
pub struct Bridge {
    session: zenoh::Session,
    id: [u8; 16],
    /// The next forwarding route's number.
    routes: AtomicU32,
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
        Ok(Bridge {
            session,
            id,
            routes: AtomicU32::new(0),
        })
    }

    /// The session's id: the origin of this bridge's messages.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }
}
