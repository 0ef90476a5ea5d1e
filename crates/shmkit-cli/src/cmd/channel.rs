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
/// Without --count or --follow: the messages there now, then exit. --follow goes on across
/// producers (each `channel send` is one) until interrupted or, with --timeout, until no
/// message came for that long (exit 6); --count N exits 3 if the producer end is closed or
/// dead while it is short of N. Each message is given back once printed: a recv killed
/// mid-way leaves the unprinted ones in the channel.
#[derive(clap::Args)]
struct RecvArgs {
    /// The channel's name.
    name: String,
    /// Receive exactly N messages, waiting for each (exit 6 if --timeout passes first).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Keep receiving, across producers, until interrupted (or --timeout without a message).
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

/// The failure of opening an end of the channel in `seg`: a segment that holds no channel
/// is the wrong kind of object (exit 2), said in this command's words.
fn end_error(seg: &PosixShm) -> impl Fn(shmkit::Error) -> Fail + '_ {
    move |e| match e.kind() {
        shmkit::ErrorKind::NotFound
        | shmkit::ErrorKind::BadLayout
        | shmkit::ErrorKind::OutOfBounds => Fail::usage(format!(
            "{} holds no channel (it is POSIX shared memory of {} bytes); make one with \
                 `shmkit channel mk NAME --capacity SIZE`",
            quote::name(std::ffi::OsStr::new(seg.name())),
            seg.len()
        )),
        shmkit::ErrorKind::AlreadyExists => Fail::error(format!(
            "{}: {}",
            quote::name(std::ffi::OsStr::new(seg.name())),
            e
        )),
        _ => Fail::from(e),
    }
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
        .create(&name, config.size())
        .map_err(|e| {
            if e.kind() == shmkit::ErrorKind::AlreadyExists {
                Fail::usage(format!(
                    "{} exists already: choose another name, or remove it with `shmkit rm {}`",
                    quote::text(&name),
                    quote::text(&name)
                ))
            } else {
                Fail::from(e)
            }
        })?;
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
    let mut tx = Sender::open(&seg, 0).map_err(end_error(&seg))?;
    let one = |tx: &mut Sender<'_>, m: &[u8], what: &str| -> Result<(), Fail> {
        match a.timeout {
            Some(t) => tx.send_timeout(m, t),
            None => tx.send(m),
        }
        .map_err(|e| send_error(e, what))
    };
    if let Some(path) = &a.file {
        // At most one byte more than the largest message is read: a larger file is refused
        // without being read whole.
        let shown = quote::text(&path.display().to_string());
        let mut data = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                use std::io::Read;
                f.take(tx.max_message() as u64 + 1).read_to_end(&mut data)
            })
            .map_err(|e| Fail::error(format!("{shown}: {e}")))?;
        if data.len() > tx.max_message() {
            return Err(Fail::error(format!(
                "{shown} is larger than the channel's largest message ({} bytes)",
                tx.max_message()
            )));
        }
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
    let mut rx = Receiver::open(&seg, 0).map_err(end_error(&seg))?;
    let mut out = std::io::stdout().lock();
    let mut got = 0u64;
    let waits = a.count.is_some() || a.follow;
    let mut last = std::time::Instant::now();
    loop {
        // The message printed last is given back now (not a quarter of the capacity later).
        rx.give_back();
        if a.count.is_some_and(|n| got >= n) {
            return Ok(code::OK);
        }
        let r = if !waits {
            rx.try_recv_in_place()
        } else if let Some(t) = a.timeout {
            rx.recv_in_place_timeout(t.saturating_sub(last.elapsed()))
        } else {
            rx.recv_in_place()
        };
        match r {
            Ok(m) => {
                let bytes = m.to_vec()?;
                // Written before the message is given back: a recv killed here (a closed
                // pipe) leaves it in the channel.
                out.write_all(&bytes)
                    .and_then(|()| out.write_all(b"\n"))
                    .and_then(|()| if waits { out.flush() } else { Ok(()) })
                    .map_err(|e| Fail::error(format!("stdout: {e}")))?;
                drop(m);
                got += 1;
                last = std::time::Instant::now();
            }
            Err(RecvError::Empty) => return Ok(code::OK),
            Err(RecvError::ProducerGone { .. }) if a.count.is_none() && !a.follow => {
                return Ok(code::OK)
            }
            // Followed across producers: the next one may come (until --timeout).
            Err(RecvError::ProducerGone { .. }) if a.follow => {
                if a.timeout.is_some_and(|t| last.elapsed() >= t) {
                    return Err(timed_out(got));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(RecvError::Timeout) => return Err(timed_out(got)),
            Err(RecvError::Mapping(e)) => return Err(Fail::from(e)),
            Err(e) => return Err(Fail::error(format!("{got} messages received; then: {e}"))),
        }
    }
}

fn timed_out(got: u64) -> Fail {
    Fail {
        code: code::TIMEOUT,
        message: format!("{got} messages received; no more came before the timeout"),
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
    let s = channel::spsc::stat(&seg, 0).map_err(end_error(&seg))?;
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
