//! A running bridge: its routes, its stats segment, and what it says on stderr.

use super::stats::{self, Direction, RouteDesc, Writer, COUNTERS};
use super::Plan;
use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use shmkit::bridge::{Bridge, OnFull, PeerStats, Route, RouteStats};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn counters(s: &RouteStats) -> [u64; 10] {
    [
        s.forwarded,
        s.ingested,
        s.dropped,
        s.oversize,
        s.overruns,
        s.unmatched,
        s.gaps,
        s.duplicates,
        s.looped,
        s.garbage,
    ]
}

/// The counters that say something went missing or wrong: logged when they grow.
const LOSSES: [usize; 8] = [2, 3, 4, 5, 6, 7, 8, 9];

/// How often a route's growing losses are logged at most.
const LOG_EVERY: Duration = Duration::from_secs(1);

fn what(r: &RouteDesc) -> String {
    match r.direction {
        Direction::Out => format!("out {} -> {}", quote::text(&r.channel), quote::text(&r.key)),
        Direction::In => format!("in {} -> {}", quote::text(&r.key), quote::text(&r.channel)),
    }
}

/// The local channel of route `r`: open, and a channel.
fn channel(r: &RouteDesc) -> Result<Arc<shmkit::PosixShm>, Fail> {
    let seg = crate::cmd::channel::open(&r.channel)?;
    if shmkit::channel::Flavor::at(&seg, 0).is_none() {
        let shown = quote::text(&r.channel);
        return Err(Fail::usage(format!(
            "{shown} holds no channel; make one with `shmkit channel mk {shown} --capacity SIZE`"
        )));
    }
    Ok(Arc::new(seg))
}

fn start(bridge: &Bridge, r: &RouteDesc, seg: Arc<shmkit::PosixShm>) -> Result<Route, Fail> {
    let shown = quote::text(&r.channel);
    let route = match r.direction {
        Direction::Out => bridge.forward(seg, 0, &r.key),
        Direction::In => {
            let on_full = if r.drop { OnFull::Drop } else { OnFull::Block };
            bridge.ingest(&r.key, seg, 0, on_full)
        }
    };
    route.map_err(|e| match e.kind() {
        shmkit::ErrorKind::BadLayout => Fail::usage(format!(
            "{shown} holds no channel; make one with `shmkit channel mk {shown} --capacity SIZE`"
        )),
        shmkit::ErrorKind::AlreadyExists => Fail::error(format!(
            "{shown}: {e} (the bridge takes the {} end)",
            match r.direction {
                Direction::Out => "consumer",
                Direction::In => "producer",
            }
        )),
        _ => Fail::from(e),
    })
}

pub fn run(plan: Plan) -> CmdResult {
    let config = plan.zenoh.build()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone())
            .map_err(|e| Fail::error(format!("cannot catch signal {sig}: {e}")))?;
    }
    // Everything that can be wrong here is said before the network is touched.
    for r in &plan.routes {
        shmkit::bridge::zenoh::key_expr::KeyExpr::try_from(r.key.as_str())
            .map_err(|e| Fail::usage(format!("key expression {}: {e}", quote::text(&r.key))))?;
    }
    let segments = plan
        .routes
        .iter()
        .map(channel)
        .collect::<Result<Vec<_>, _>>()?;
    let writer = Writer::create(&plan.name, &plan.routes)?;
    let bridge = Bridge::open(config)?;
    writer.zid(bridge.id())?;
    let mut routes = Vec::with_capacity(plan.routes.len());
    for (r, seg) in plan.routes.iter().zip(segments) {
        routes.push(start(&bridge, r, seg)?);
    }
    let name = quote::text(&plan.name);
    eprintln!(
        "shmkit bridge {name}: {} route{} running (zenoh id {:x}); counters: `shmkit bridge \
         status {name}`; Ctrl-C stops it",
        routes.len(),
        if routes.len() == 1 { "" } else { "s" },
        u128::from_le_bytes(bridge.id())
    );
    for r in &plan.routes {
        eprintln!("shmkit bridge {name}:   {}", what(r));
    }
    let mut last_peers = PeerStats::default();
    let mut logged = vec![([0u64; 10], Instant::now() - LOG_EVERY); routes.len()];
    let failed = loop {
        if stop.load(Relaxed) {
            break None;
        }
        std::thread::sleep(stats::BEAT);
        for (i, route) in routes.iter().enumerate() {
            let now = counters(&route.stats());
            writer.route(i, now)?;
            let (before, at) = &mut logged[i];
            if LOSSES.iter().any(|&n| now[n] > before[n]) && at.elapsed() >= LOG_EVERY {
                let grew: Vec<String> = LOSSES
                    .iter()
                    .filter(|&&n| now[n] > before[n])
                    .map(|&n| {
                        format!(
                            "{} +{} ({} in all)",
                            COUNTERS[n],
                            now[n] - before[n],
                            now[n]
                        )
                    })
                    .collect();
                eprintln!(
                    "shmkit bridge {name}: {}: {}",
                    what(&plan.routes[i]),
                    grew.join(", ")
                );
                *before = now;
                *at = Instant::now();
            }
        }
        let p = bridge.peers();
        writer.beat(p.linked, p.lost, p.reconnects)?;
        if p.lost > last_peers.lost {
            eprintln!(
                "shmkit bridge {name}: lost {} peer link{} ({} linked now); Zenoh reconnects \
                 when the peer answers again",
                p.lost - last_peers.lost,
                if p.lost - last_peers.lost == 1 {
                    ""
                } else {
                    "s"
                },
                p.linked
            );
        }
        if p.reconnects > last_peers.reconnects {
            eprintln!(
                "shmkit bridge {name}: a lost peer is linked again ({} reconnect{} in all, {} \
                 linked now)",
                p.reconnects,
                if p.reconnects == 1 { "" } else { "s" },
                p.linked
            );
        }
        last_peers = p;
        if let Some(i) = routes.iter().position(Route::finished) {
            break Some(i);
        }
    };
    // Stop them all (asked all at once: one may wait on another), and say what they did.
    for route in &routes {
        route.ask_stop();
    }
    let mut result = Ok(code::OK);
    for (i, route) in routes.into_iter().enumerate() {
        let r = &plan.routes[i];
        match route.stop() {
            Ok(s) => {
                let c = counters(&s);
                let _ = writer.route(i, c);
                let said: Vec<String> = COUNTERS
                    .iter()
                    .zip(c)
                    .filter(|(n, v)| {
                        *v > 0
                            || **n == "forwarded" && r.direction == Direction::Out
                            || **n == "ingested" && r.direction == Direction::In
                    })
                    .map(|(n, v)| format!("{n} {v}"))
                    .collect();
                eprintln!("shmkit bridge {name}: {}: {}", what(r), said.join(", "));
            }
            Err(e) => {
                let message = format!("{}: the route failed: {e}", what(r));
                eprintln!("shmkit bridge {name}: {message}");
                if result.is_ok() {
                    result = Err(Fail::error(message));
                }
            }
        }
    }
    if failed.is_some() && result.is_ok() {
        result = Err(Fail::error("a route ended by itself"));
    }
    result
}
