//! `shmkit channel`: make, feed, read and inspect message channels in POSIX shared memory.

mod ends;
mod stat;

use crate::fail::{code, CmdResult, Fail};
use crate::{parse, quote};
use ends::{Got, Patience, Rx, Tx};
use shmkit::channel::broadcast::{self, BroadcastConfig};
use shmkit::channel::mpsc::{self, MpscConfig};
use shmkit::channel::{spsc, Flavor, RecvError, SendError, SpscConfig};
use shmkit::PosixShm;
use std::io::{BufRead, Write};
use std::time::Duration;

/// Message channels in POSIX shared memory (`/dev/shm/NAME`), so that a shell script can feed
/// and read one and an operator can see why one is stuck.
///
/// Kinds: spsc (one producer, one consumer), mpsc (many producers, one consumer; a producer
/// that dies mid-message costs that message only) and broadcast (one producer, many
/// consumers, each reading every message from when it started; the producer never waits, and
/// a consumer that falls a lap behind is told how many it lost). Each end is claimed by a
/// process, and a dead holder's end is taken over. Messages are bytes, up to the channel's
/// largest.
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
    /// The kind of channel: spsc, mpsc or broadcast.
    #[arg(long, default_value = "spsc", value_parser = kind)]
    kind: Flavor,
    /// Bytes of messages it holds at once: a power of two, 64 to 4G. An mpsc or broadcast
    /// channel holds it as slots of one message each (the largest message and a 24- or
    /// 16-byte header, rounded up to a power of two).
    #[arg(long, value_parser = parse::size)]
    capacity: u64,
    /// Largest message [default: spsc, half the capacity less 8; mpsc and broadcast, a
    /// sixteenth of the capacity (32 B to 1 KiB) less the slot header].
    #[arg(long, value_parser = parse::size)]
    max_message: Option<u64>,
    /// Places: producers of an mpsc channel (default 64, at most 4096), consumers of a
    /// broadcast channel (default 16, at most 1024) that may hold it at once.
    #[arg(long, value_name = "N")]
    places: Option<usize>,
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
/// dead while it is short of N (for mpsc: every producer). An spsc message is given back
/// once printed, so a recv killed mid-way leaves the unprinted ones in the channel; an mpsc
/// message is taken out as it is read (a recv killed while printing loses that one). A
/// broadcast reader starts at the next message sent, and one that falls a lap behind says on
/// stderr how many messages it lost, and goes on.
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

fn kind(s: &str) -> Result<Flavor, String> {
    Flavor::ALL
        .into_iter()
        .find(|f| f.name() == s)
        .ok_or_else(|| format!("unknown kind '{s}': spsc, mpsc or broadcast"))
}

pub(crate) fn name(n: &str) -> String {
    if n.starts_with('/') {
        n.to_string()
    } else {
        format!("/{n}")
    }
}

pub(crate) fn open(n: &str) -> Result<PosixShm, Fail> {
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
        // A ready channel header whose shape or positions make no sense: a corrupt channel,
        // not "no channel" (its name is taken: `mk` would refuse it).
        shmkit::ErrorKind::BadLayout | shmkit::ErrorKind::OutOfBounds
            if Flavor::at(seg, 0).is_some() =>
        {
            let shown = quote::name(std::ffi::OsStr::new(seg.name()));
            Fail::error(format!(
                "{shown}: the channel is corrupt ({e}); remove it with `shmkit rm {shown}` and \
                 make it again"
            ))
        }
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

/// The kind of channel in `seg` (at offset 0).
fn flavor(seg: &PosixShm) -> Result<Flavor, Fail> {
    Flavor::at(seg, 0).ok_or_else(|| {
        Fail::usage(format!(
            "{} holds no channel (it is POSIX shared memory of {} bytes); make one with \
             `shmkit channel mk NAME --capacity SIZE`",
            quote::name(std::ffi::OsStr::new(seg.name())),
            seg.len()
        ))
    })
}

pub fn run(a: Args) -> CmdResult {
    match a.what {
        What::Mk(m) => mk(m),
        What::Send(s) => send(s),
        What::Recv(r) => recv(r),
        What::Stat(s) => stat::run(s),
    }
}

fn mk(a: MkArgs) -> CmdResult {
    let capacity = usize::try_from(a.capacity).map_err(|_| Fail::usage("capacity too large"))?;
    let max = a
        .max_message
        .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    let config =
        match a.kind {
            Flavor::Spsc if a.places.is_some() => return Err(Fail::usage(
                "--places is for mpsc and broadcast channels: an spsc channel has one producer \
                 and one consumer",
            )),
            Flavor::Spsc => Config::Spsc(max.map_or(SpscConfig::new(capacity), |m| {
                SpscConfig::new(capacity).max_message(m)
            })),
            Flavor::Mpsc => {
                let mut c = MpscConfig::new(capacity);
                c = max.map_or(c, |m| c.max_message(m));
                Config::Mpsc(a.places.map_or(c, |n| c.max_producers(n)))
            }
            Flavor::Broadcast => {
                let mut c = BroadcastConfig::new(capacity);
                c = max.map_or(c, |m| c.max_message(m));
                Config::Broadcast(a.places.map_or(c, |n| c.max_consumers(n)))
            }
        };
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
    config.create(&seg)?;
    seg.set_keep(true);
    println!("{}", quote::name(std::ffi::OsStr::new(seg.name())));
    Ok(code::OK)
}

/// The shape of a channel to make, of any kind.
enum Config {
    Spsc(SpscConfig),
    Mpsc(MpscConfig),
    Broadcast(BroadcastConfig),
}

impl Config {
    fn size(&self) -> usize {
        match self {
            Config::Spsc(c) => c.size(),
            Config::Mpsc(c) => c.size(),
            Config::Broadcast(c) => c.size(),
        }
    }

    fn create(&self, map: &shmkit::Mapping) -> shmkit::Result<()> {
        match self {
            Config::Spsc(c) => spsc::create(map, 0, *c),
            Config::Mpsc(c) => mpsc::create(map, 0, *c),
            Config::Broadcast(c) => broadcast::create(map, 0, *c),
        }
        .map(|_| ())
    }
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
    let mut tx = Tx::open(&seg, flavor(&seg)?).map_err(end_error(&seg))?;
    let one = |tx: &mut Tx<'_>, m: &[u8], what: &str| -> Result<(), Fail> {
        tx.send(m, a.timeout).map_err(|e| send_error(e, what))
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
    let mut rx = Rx::open(&seg, flavor(&seg)?).map_err(end_error(&seg))?;
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::new();
    let mut got = 0u64;
    // Broadcast messages lost to overruns, said at the end too.
    let mut lost_in_all = 0u64;
    let waits = a.count.is_some() || a.follow;
    let mut last = std::time::Instant::now();
    loop {
        // The message printed last is given back now (not a quarter of the capacity later).
        rx.give_back();
        if a.count.is_some_and(|n| got >= n) {
            return Ok(code::OK);
        }
        let wait = if !waits {
            Patience::None
        } else if let Some(t) = a.timeout {
            Patience::For(t.saturating_sub(last.elapsed()))
        } else {
            Patience::Ever
        };
        match rx.recv(&mut buf, wait) {
            Ok(m) => {
                let in_place;
                let bytes = match &m {
                    Got::InPlace(m) => {
                        in_place = m.to_vec()?;
                        &in_place[..]
                    }
                    Got::Copied(b) => b,
                };
                // Written before the message is given back: a recv killed here (a closed
                // pipe) leaves it in the channel.
                out.write_all(bytes)
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
            // A broadcast consumer that fell a lap behind: said, and it goes on.
            Err(RecvError::Overrun { lost }) => {
                lost_in_all += lost;
                eprintln!("shmkit: {lost} messages lost: the producer overran this consumer");
            }
            Err(RecvError::Mapping(e)) => return Err(Fail::from(e)),
            // The library's words ("every message it sent was received") hold for the
            // channel, not for a broadcast reader that was overrun or came late.
            Err(RecvError::ProducerGone { pid, crashed }) => {
                let who = if pid > 0 {
                    format!(" (pid {pid})")
                } else {
                    String::new()
                };
                let lost = if lost_in_all > 0 {
                    format!(", {lost_in_all} lost to overruns")
                } else {
                    String::new()
                };
                return Err(Fail::error(format!(
                    "{got} messages received{lost}; then the producer{who} {}",
                    if crashed {
                        "died"
                    } else {
                        "closed the channel"
                    }
                )));
            }
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
