//! `shmkit channel`: make, feed, read and inspect message channels in POSIX shared memory.

use crate::fail::{code, CmdResult, Fail};
use crate::{parse, quote};
use shmkit::channel::{self, spsc, Holder, Receiver, RecvError, SendError, Sender, SpscConfig};
use shmkit::PosixShm;
use std::io::{BufRead, Write};
use std::time::Duration;

/// Message channels in POSIX shared memory (`/dev/shm/NAME`), so that a shell script can feed
/// and read one and an operator can see why one is stuck.
///
/// A channel has one producer and one consumer at a time (each end is claimed by a process;
/// a dead holder's end is taken over). Messages are bytes, up to the channel's largest.
/// Only SPSC channels exist in this version; broadcast and MPSC channels are not built yet.
///
/// SIZE takes binary units (4096, 64K, 1M). TIMEOUT: 500ms, 10s, 2m.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    Mk(MkArgs),
    Send(SendArgs),
    Recv(RecvArgs),
    Stat(StatArgs),
}

/// Make a channel: a POSIX segment holding it (exclusive, kept until `shmkit rm /NAME`).
#[derive(clap::Args)]
struct MkArgs {
    /// The channel's name ('/' first; added if missing).
    name: String,
    /// The kind of channel: spsc (one producer, one consumer).
    #[arg(long, default_value = "spsc", value_parser = kind)]
    kind: String,
    /// Bytes of messages it holds at once: a power of two, 64 to 4G.
    #[arg(long, value_parser = parse::size)]
    capacity: u64,
    /// Largest message [default: half the capacity, less 8].
    #[arg(long, value_parser = parse::size)]
    max_message: Option<u64>,
    /// Permission bits in octal.
    #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
    mode: u32,
}

/// Send messages: one per line of stdin (without its newline), or the whole of --file.
#[derive(clap::Args)]
struct SendArgs {
    /// The channel's name.
    name: String,
    /// Send this file's bytes as one message instead of reading stdin.
    #[arg(long, value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// How long to wait for room for each message [default: as long as it takes].
    #[arg(long, value_parser = parse::duration)]
    timeout: Option<Duration>,
}

/// Receive messages and print each as a line (its bytes, then a newline).
///
/// Without --count or --follow: the messages there now, then exit. With them, a producer
/// end that is closed (its producer let go of it, or died) ends the wait once the channel is
/// empty: --follow then exits 0, --count (short of N) exits 3.
#[derive(clap::Args)]
struct RecvArgs {
    /// The channel's name.
    name: String,
    /// Receive exactly N messages, waiting for each (exit 6 if --timeout passes first).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Keep receiving until the producer closes the channel or dies.
    #[arg(long, conflicts_with = "count")]
    follow: bool,
    /// How long to wait for each message with --count or --follow [default: for ever].
    #[arg(long, value_parser = parse::duration)]
    timeout: Option<Duration>,
}

/// Show a channel: capacity, fill, positions, and who holds each end (alive or dead).
#[derive(clap::Args)]
struct StatArgs {
    /// The channel's name.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn kind(s: &str) -> Result<String, String> {
    match s {
        "spsc" => Ok(s.into()),
        "mpsc" | "broadcast" => Err(format!(
            "{s} channels are not built yet: only spsc channels exist in this version"
        )),
        _ => Err(format!("unknown kind '{s}': spsc")),
    }
}

fn name(n: &str) -> String {
    if n.starts_with('/') {
        n.to_string()
    } else {
        format!("/{n}")
    }
}

fn open(n: &str) -> Result<PosixShm, Fail> {
    PosixShm::open(&name(n)).map_err(|e| {
        if e.kind() == shmkit::ErrorKind::NotFound {
            Fail::from(e.with_hint("make one with `shmkit channel mk NAME --capacity SIZE`"))
        } else {
            Fail::from(e)
        }
    })
}

pub fn run(a: Args) -> CmdResult {
    match a.what {
        What::Mk(m) => mk(m),
        What::Send(s) => send(s),
        What::Recv(r) => recv(r),
        What::Stat(s) => stat(s),
    }
}

fn mk(a: MkArgs) -> CmdResult {
    let capacity = usize::try_from(a.capacity).map_err(|_| Fail::usage("capacity too large"))?;
    let mut config = SpscConfig::new(capacity);
    if let Some(m) = a.max_message {
        config = config.max_message(usize::try_from(m).unwrap_or(usize::MAX));
    }
    let name = name(&a.name);
    // Removed again if the channel cannot be built in it; kept once it is.
    let seg = PosixShm::options()
        .mode(a.mode)
        .create(&name, config.size())?;
    spsc::create(&seg, 0, config)?;
    seg.set_keep(true);
    println!("{}", quote::name(std::ffi::OsStr::new(seg.name())));
    Ok(code::OK)
}

fn send_error(e: SendError, what: &str) -> Fail {
    match e {
        SendError::Timeout => Fail {
            code: code::TIMEOUT,
            message: format!("{what}: the channel stayed full until the timeout"),
        },
        SendError::Mapping(e) => Fail::from(e),
        e => Fail::error(format!("{what}: {e}")),
    }
}

fn send(a: SendArgs) -> CmdResult {
    let seg = open(&a.name)?;
    let mut tx = Sender::open(&seg, 0)?;
    let one = |tx: &mut Sender<'_>, m: &[u8], what: &str| -> Result<(), Fail> {
        match a.timeout {
            Some(t) => tx.send_timeout(m, t),
            None => tx.send(m),
        }
        .map_err(|e| send_error(e, what))
    };
    if let Some(path) = &a.file {
        let data = std::fs::read(path).map_err(|e| {
            Fail::error(format!("{}: {e}", quote::text(&path.display().to_string())))
        })?;
        one(&mut tx, &data, "the file")?;
        return Ok(code::OK);
    }
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let got = lock
            .read_until(b'\n', &mut line)
            .map_err(|e| Fail::error(format!("stdin: {e}")))?;
        if got == 0 {
            return Ok(code::OK);
        }
        n += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        one(&mut tx, &line, &format!("line {n}"))?;
    }
}

fn recv(a: RecvArgs) -> CmdResult {
    let seg = open(&a.name)?;
    let mut rx = Receiver::open(&seg, 0)?;
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::new();
    let mut got = 0u64;
    let waits = a.count.is_some() || a.follow;
    loop {
        if a.count.is_some_and(|n| got >= n) {
            return Ok(code::OK);
        }
        let r = if !waits {
            rx.try_recv(&mut buf)
        } else if let Some(t) = a.timeout {
            rx.recv_timeout(&mut buf, t)
        } else {
            rx.recv(&mut buf)
        };
        match r {
            Ok(_) => {
                got += 1;
                out.write_all(&buf)
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| if waits { out.flush() } else { Ok(()) })
                    .map_err(|e| Fail::error(format!("stdout: {e}")))?;
            }
            Err(RecvError::Empty) => return Ok(code::OK),
            Err(RecvError::ProducerGone { .. }) if a.follow || a.count.is_none() => {
                return Ok(code::OK)
            }
            Err(RecvError::Timeout) => {
                return Err(Fail {
                    code: code::TIMEOUT,
                    message: format!("{got} messages received; no more came before the timeout"),
                })
            }
            Err(RecvError::Mapping(e)) => return Err(Fail::from(e)),
            Err(e) => return Err(Fail::error(format!("{got} messages received; then: {e}"))),
        }
    }
}

fn holder_json(h: Holder) -> serde_json::Value {
    match h {
        Holder::Never => serde_json::json!({ "state": "never held" }),
        Holder::Alive(pid) => serde_json::json!({ "state": "held", "pid": pid, "alive": true }),
        Holder::Dead(pid) => serde_json::json!({ "state": "held", "pid": pid, "alive": false }),
        Holder::Closed => serde_json::json!({ "state": "closed" }),
    }
}

fn holder_text(h: Holder) -> String {
    match h {
        Holder::Never => "never held".into(),
        Holder::Alive(pid) => format!("pid {pid} (alive)"),
        Holder::Dead(pid) => format!("pid {pid} (dead: its end can be taken over)"),
        Holder::Closed => "closed (let go of)".into(),
    }
}

fn stat(a: StatArgs) -> CmdResult {
    let seg = open(&a.name)?;
    let s = channel::spsc::stat(&seg, 0)?;
    if a.json {
        let v = serde_json::json!({
            "name": seg.name(),
            "kind": "spsc",
            "capacity": s.capacity,
            "max_message": s.max_message,
            "head": s.head,
            "tail": s.tail,
            "used": s.used,
            "generation": s.generation,
            "producer": holder_json(s.producer),
            "consumer": holder_json(s.consumer),
            "producer_waiting": s.parked.0,
            "consumer_waiting": s.parked.1,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(code::OK);
    }
    println!(
        "channel    {} (spsc)",
        quote::name(std::ffi::OsStr::new(seg.name()))
    );
    println!(
        "capacity   {} (messages up to {})",
        shmkit::size::human(s.capacity),
        shmkit::size::human(s.max_message as u64)
    );
    match s.used {
        Some(u) => println!(
            "fill       {} of {} ({:.0}%), published {} bytes, given back {}",
            shmkit::size::human(u),
            shmkit::size::human(s.capacity),
            100.0 * u as f64 / s.capacity as f64,
            s.head,
            s.tail
        ),
        None => println!(
            "fill       unknown: the positions make no sense (head {}, tail {}): the channel is corrupt",
            s.head, s.tail
        ),
    }
    println!(
        "producer   {}{}",
        holder_text(s.producer),
        if s.parked.0 { ", waiting for room" } else { "" }
    );
    println!(
        "consumer   {}{}",
        holder_text(s.consumer),
        if s.parked.1 {
            ", waiting for messages"
        } else {
            ""
        }
    );
    Ok(code::OK)
}
