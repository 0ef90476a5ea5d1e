//! `shmkit bridge`: carry local channels across hosts over Zenoh, and show what the running
//! bridges did.

// Without the feature, plans are still read and checked (a wrong file says so), but nothing
// runs them.
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
mod config;
#[cfg(feature = "bridge")]
mod run;
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
pub mod stats;
mod status;

use crate::fail::{CmdResult, Fail};
use stats::{Direction, RouteDesc};
use std::path::PathBuf;

/// Carry channels across hosts over Eclipse Zenoh (peer to peer or routed, no broker,
/// reconnects by itself).
///
/// `bridge out` publishes a local channel's messages on a Zenoh key expression; `bridge in`
/// puts a key expression's messages into a local channel (both made with `shmkit channel
/// mk`: spsc, mpsc or broadcast). The outgoing side joins its channel as an ordinary consumer
/// (one more reader of a broadcast channel) and reads only while a subscriber matches the
/// key, so nothing is sent to nobody and the producer waits under the channel's own rules.
/// Every message carries its origin and its number on its route: the receiving side counts
/// gaps, duplicates and loops (its own messages come back) and drops garbage (anything on the
/// key that is not a bridged message).
///
/// Zenoh's defaults apply to what is not set: in peer mode a bridge also finds Zenoh peers on
/// the local network by multicast scouting (`--zenoh scouting/multicast/enabled=false` keeps
/// it to the endpoints given), and gives a silent link up after 10 s (its lease).
///
/// A bridge runs until interrupted (Ctrl-C, SIGTERM, SIGHUP), logging on stderr the peers
/// it loses and gets back and the losses its routes count; `bridge status` shows its counters
/// from its stats segment (/shmkit-bridge-NAME, removed when it stops).
///
/// `bridge --config FILE` runs several routes from a TOML file:
///
///     name = "site-a"                   # the bridge's name [default: bridge]
///     zenoh-config = "zenoh.json5"      # a Zenoh configuration file, passed through
///     [zenoh]                           # or Zenoh's settings inline, as in its JSON5 file
///     mode = "peer"
///     listen.endpoints = ["tcp/0.0.0.0:7447"]
///     [[route]]
///     out = "jobs"                      # the channel /jobs ...
///     key = "site-a/jobs"               # ... published on this key expression
///     [[route]]
///     in = "results"                    # the channel /results gets ...
///     key = "site-b/results"            # ... what is published here
///     on-full = "drop"                  # block (the default) or drop
///
/// This shmkit must be built with the cargo feature `bridge` for `out`, `in` and `--config`
/// (`cargo build --release -p shmkit-cli --features bridge`); `status` works in every build.
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    verbatim_doc_comment,
    after_help = "Endpoints: tcp/ADDRESS:PORT, udp/ADDRESS:PORT, or ADDRESS:PORT (tcp)."
)]
pub struct Args {
    #[command(subcommand)]
    what: Option<What>,
    /// Run the routes of this TOML file (see above).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum What {
    Out(OutArgs),
    In(InArgs),
    Status(status::StatusArgs),
}

/// Where and how the bridge's Zenoh session meets its peers.
#[derive(clap::Args, Clone)]
struct ZenohArgs {
    /// Listen on this endpoint (repeatable).
    #[arg(long, value_name = "ENDPOINT")]
    listen: Vec<String>,
    /// Connect to this endpoint (repeatable); Zenoh retries until it answers.
    #[arg(long, value_name = "ENDPOINT")]
    connect: Vec<String>,
    /// Start from this Zenoh configuration file (JSON5, YAML), passed through as it is.
    #[arg(long, value_name = "FILE")]
    zenoh_config: Option<PathBuf>,
    /// Set one Zenoh setting, its value in JSON5 (repeatable), e.g.
    /// `--zenoh scouting/multicast/enabled=false` or `--zenoh transport/link/tx/lease=2000`.
    #[arg(long, value_name = "KEY=VALUE")]
    zenoh: Vec<String>,
    /// The bridge's name: its stats segment is /shmkit-bridge-NAME.
    #[arg(long, default_value = "bridge", value_parser = name_arg)]
    name: String,
}

/// Publish a local channel's messages on a Zenoh key expression.
#[derive(clap::Args)]
struct OutArgs {
    /// The local channel (`shmkit channel mk`); the bridge is its consumer.
    #[arg(long)]
    channel: String,
    /// The key expression to publish on.
    #[arg(long)]
    key: String,
    #[command(flatten)]
    zenoh: ZenohArgs,
}

/// Put a Zenoh key expression's messages into a local channel.
#[derive(clap::Args)]
struct InArgs {
    /// The key expression to subscribe to.
    #[arg(long)]
    key: String,
    /// The local channel (`shmkit channel mk`); the bridge is its producer (one of an mpsc
    /// channel's).
    #[arg(long)]
    channel: String,
    /// When the local channel is full: block (wait for room, holding the network back: Zenoh
    /// closes a link held up longer than its wait_before_close, 5 s by default) or drop (drop
    /// the message and count it).
    #[arg(long, default_value = "block", value_parser = ["block", "drop"])]
    on_full: String,
    #[command(flatten)]
    zenoh: ZenohArgs,
}

fn name_arg(s: &str) -> Result<String, String> {
    stats::check_name(s).map(|()| s.to_string())
}

/// A bridge to run: its name, where its Zenoh configuration comes from, its routes.
#[cfg_attr(not(feature = "bridge"), allow(dead_code))]
pub struct Plan {
    pub name: String,
    pub zenoh: config::ZenohSource,
    pub routes: Vec<RouteDesc>,
}

pub fn run(a: Args) -> CmdResult {
    let plan = match (a.what, a.config) {
        (Some(What::Status(s)), _) => return status::run(s),
        (Some(What::Out(o)), _) => Plan {
            name: o.zenoh.name.clone(),
            zenoh: config::ZenohSource::from_args(&o.zenoh),
            routes: vec![route(Direction::Out, &o.channel, &o.key, false)?],
        },
        (Some(What::In(i)), _) => Plan {
            name: i.zenoh.name.clone(),
            zenoh: config::ZenohSource::from_args(&i.zenoh),
            routes: vec![route(
                Direction::In,
                &i.channel,
                &i.key,
                i.on_full == "drop",
            )?],
        },
        (None, Some(file)) => config::load(&file)?,
        (None, None) => {
            return Err(Fail::usage(
                "say what to bridge: `shmkit bridge out ...`, `shmkit bridge in ...`, `shmkit \
                 bridge --config FILE`, or `shmkit bridge status` (see `shmkit bridge --help`)",
            ))
        }
    };
    start(plan)
}

#[cfg(feature = "bridge")]
fn start(plan: Plan) -> CmdResult {
    run::run(plan)
}

#[cfg(not(feature = "bridge"))]
fn start(_: Plan) -> CmdResult {
    Err(Fail::usage(
        "this shmkit was built without the bridge (cargo feature `bridge`, off by default: it \
         builds Zenoh); build it with `cargo build --release -p shmkit-cli --features bridge`",
    ))
}

/// A route, its channel and key checked.
fn route(direction: Direction, channel: &str, key: &str, drop: bool) -> Result<RouteDesc, Fail> {
    let channel = crate::cmd::channel::name(channel);
    shmkit::posix::validate_name(&channel)?;
    if channel.len() > stats::MAX_CHANNEL {
        return Err(Fail::usage(format!(
            "channel name {channel:?}: longer than {} bytes",
            stats::MAX_CHANNEL
        )));
    }
    if key.is_empty() || key.len() > stats::MAX_KEY {
        return Err(Fail::usage(format!(
            "key expression {key:?}: 1 to {} bytes",
            stats::MAX_KEY
        )));
    }
    if drop && direction == Direction::Out {
        return Err(Fail::usage(
            "on-full is for `in` routes: an `out` route is its channel's consumer, and \
             waits under the channel's rules",
        ));
    }
    Ok(RouteDesc {
        direction,
        channel,
        key: key.to_string(),
        drop,
    })
}
