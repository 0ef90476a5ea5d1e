//! `shmkit bench`: every transport between two processes, side by side in one run, against
//! the hardware floor and the copy floor measured in the same run.

mod link;
mod plot;

use crate::fail::{code, CmdResult, Fail};
use crate::parse;
use hdrhistogram::Histogram;
use link::{Bcast, Floor, Link, Ring, Spsc, SpscEventfd, Stream};
use shmkit::channel::Wait;
use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Measure the transports between two processes, side by side in one run: round-trip
/// latency (min, p50, p99, p99.9, max; the payload written by one side and read by the
/// other) and one-way streaming throughput, for each message size.
///
/// Transports: floor-cacheline (one word each way, spun on: the hardware floor, 8 B only),
/// floor-futex (the same, slept on with a raw futex, 8 B only), floor-ring (each way a raw
/// ring of fixed slots and two counts, a copy in and a copy out, spun on: what the two CPUs
/// move through shared memory with nothing else, at every size), memcpy (one core copying
/// the bytes: the copy floor), shmkit-spsc-spin, shmkit-spsc-blocking, shmkit-spsc-eventfd
/// (the consumers sleep in epoll on an eventfd their producer signals), shmkit-broadcast
/// (one consumer, adaptive waits; its stream kept within half the slots by acknowledgements
/// on the way back, since a broadcast producer never waits), pipe, unix-stream, tcp
/// (loopback, TCP_NODELAY). Each figure is shown with its ratio to its floors and to the
/// pipe. The two processes are pinned to the first two CPUs this process may use, when it
/// has two.
///
/// The floors of each row are measured again just before it (at 8 bytes the cache-line
/// ping-pong for the transports that spin, the futex one for those that sleep; memcpy at the
/// row's size; the raw ring at the row's size for the shared-memory transports that spin),
/// and its ratios are to those: on a shared or virtual machine the floors themselves move by
/// several times as the host moves the CPUs about, so a floor measured a minute earlier says
/// little. --json gives them per row (floor, floor_p50_ns, memcpy_bytes_per_s, ring_p50_ns,
/// ring_bytes_per_s).
///
/// iceoryx2 (0.10, publish-subscribe, busy-polled, lossless) is measured with --with iceoryx2
/// by its own binary, shmkit-bench-iceoryx2, built apart from shmkit because it doubles the
/// build: `cargo build --release -p shmkit-iceoryx2` puts it beside `shmkit` in target/release
/// (or name it in SHMKIT_ICEORYX2_BENCH).
#[derive(clap::Args)]
pub struct Args {
    /// Fewer round trips and messages: a run of well under a minute.
    #[arg(long)]
    quick: bool,
    /// Message sizes [default: 8,64,512,4K,64K,1M; --quick: 8,4K,64K].
    #[arg(long, value_delimiter = ',', value_parser = parse::size)]
    sizes: Option<Vec<u64>>,
    /// Also measure these peers, built apart from shmkit: iceoryx2.
    #[arg(long, value_delimiter = ',', value_parser = peer_name)]
    with: Vec<String>,
    /// The transports to run [default: all built in; iceoryx2 only with --with or named here].
    #[arg(long, value_delimiter = ',', value_parser = transport)]
    transports: Option<Vec<String>>,
    /// Also draw the round-trip latency percentiles (min to max, log scale) of every
    /// transport, one panel per size, into this SVG file (written over if it exists).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// Print JSON: an array of rows (transport, size, rtt_min_ns, rtt_p50_ns, rtt_p99_ns,
    /// rtt_p999_ns, rtt_max_ns, msgs_per_s, bytes_per_s, and the floors measured just before
    /// the row: floor, floor_p50_ns, memcpy_bytes_per_s, ring_p50_ns, ring_bytes_per_s; null
    /// where not measured).
    #[arg(long)]
    json: bool,
}

fn transport(s: &str) -> Result<String, String> {
    if link::ALL.contains(&s) || s == ICEORYX2 {
        Ok(s.to_string())
    } else {
        Err(format!(
            "unknown transport '{s}': {}, {ICEORYX2}",
            link::ALL.join(", ")
        ))
    }
}

const ICEORYX2: &str = "iceoryx2";

fn peer_name(s: &str) -> Result<String, String> {
    if s == ICEORYX2 {
        Ok(s.to_string())
    } else {
        Err(format!("unknown peer '{s}': {ICEORYX2}"))
    }
}

/// The binary that measures iceoryx2: SHMKIT_ICEORYX2_BENCH, or beside this executable.
fn iceoryx2_bench() -> Result<std::path::PathBuf, Fail> {
    let path = match std::env::var_os("SHMKIT_ICEORYX2_BENCH") {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::current_exe()
            .map_err(|e| Fail::error(format!("own executable: {e}")))?
            .with_file_name("shmkit-bench-iceoryx2"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Fail::usage(format!(
            "iceoryx2 is measured by {}, which is not built: it is kept out of the default \
             build; build it with `cargo build --release -p shmkit-iceoryx2` (or name it in \
             SHMKIT_ICEORYX2_BENCH), then run again",
            crate::quote::text(&path.display().to_string())
        )))
    }
}

/// Runs the iceoryx2 measurement at `size` and reads its row (limited in time: a stuck run
/// is killed).
fn run_iceoryx2(
    bin: &std::path::Path,
    size: usize,
    quick: bool,
    cpus: Option<(usize, usize)>,
) -> Result<Row, Fail> {
    let (trips, msgs) = counts(size, quick);
    let failed = |e: String| Fail::error(format!("bench iceoryx2 at {size} bytes: {e}"));
    let mut c = Command::new(bin);
    c.args([size.to_string(), trips.to_string(), msgs.to_string()]);
    if let Some((a, b)) = cpus {
        c.args([a.to_string(), b.to_string()]);
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let limit = Instant::now() + 6 * link::LOST;
    let st = loop {
        if let Some(st) = child.try_wait().map_err(|e| failed(e.to_string()))? {
            break st;
        }
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed("no result within 60 s".into()));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    if !st.success() {
        return Err(failed(format!("{st}: {}", err.trim())));
    }
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).map_err(|e| failed(format!("its row: {e}")))?;
    let n = |k: &str| {
        v[k].as_u64()
            .ok_or_else(|| failed(format!("its row lacks {k}")))
    };
    Ok(Row {
        transport: ICEORYX2.into(),
        size,
        rtt: Some([
            n("rtt_min_ns")?,
            n("rtt_p50_ns")?,
            n("rtt_p99_ns")?,
            n("rtt_p999_ns")?,
            n("rtt_max_ns")?,
        ]),
        msgs_per_s: v["msgs_per_s"].as_f64(),
        bytes_per_s: v["bytes_per_s"].as_f64(),
        ..Row::default()
    })
}

/// One measured row.
#[derive(Debug, Clone, Default)]
struct Row {
    transport: String,
    size: usize,
    /// min, p50, p99, p99.9, max, ns.
    rtt: Option<[u64; 5]>,
    msgs_per_s: Option<f64>,
    bytes_per_s: Option<f64>,
    /// The p50 of this row's floor (see [`floor_of`]), measured just before it: 8-byte rows.
    floor_p50: Option<u64>,
    /// Single-core memcpy bandwidth at this row's size, measured just before it.
    memcpy_bytes_per_s: Option<f64>,
    /// The raw ring's p50 and bandwidth at this row's size, measured just before it (the
    /// shared-memory transports that spin).
    ring_p50: Option<u64>,
    ring_bytes_per_s: Option<f64>,
}

/// The floor a transport's 8-byte round trip is set against: the raw futex ping-pong for
/// those that sleep, the cache-line one for those that spin.
fn floor_of(t: &str) -> &'static str {
    if matches!(
        t,
        "shmkit-spsc-blocking" | "shmkit-spsc-eventfd" | "pipe" | "unix-stream" | "tcp"
    ) {
        "floor-futex"
    } else {
        "floor-cacheline"
    }
}

/// How long memcpy is measured: its own row, and the pairing before each other row.
fn memcpy_time(quick: bool, paired: bool) -> Duration {
    Duration::from_millis(match (quick, paired) {
        (true, true) => 20,
        (true, false) => 50,
        (false, true) => 100,
        (false, false) => 300,
    })
}

/// How many round trips and streamed messages for `size`.
fn counts(size: usize, quick: bool) -> (u64, u64) {
    let (trips, msgs, bytes) = if quick {
        (2_000u64, 200_000u64, 64u64 << 20)
    } else {
        (20_000, 2_000_000, 512 << 20)
    };
    let scale = (size as u64).max(4096) / 4096;
    let trips = (trips / scale).max(200);
    let msgs = msgs.min(bytes / size.max(1) as u64).max(200);
    (trips, msgs)
}

fn pin(cpu: usize) -> bool {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).is_ok()
}

/// Two CPUs this process may run on (the first two of its affinity mask), if it has two.
fn two_cpus() -> Option<(usize, usize)> {
    let set = rustix::thread::sched_getaffinity(None).ok()?;
    let mut it = (0..rustix::thread::CpuSet::MAX_CPU).filter(|c| set.is_set(*c));
    Some((it.next()?, it.next()?))
}

/// A listener whose `accept` gives up after [`link::LOST`] (`SO_RCVTIMEO` bounds it on
/// Linux), so a peer that never connects is an error, not a hang.
fn accept_within_lost(l: impl std::os::fd::AsFd) -> io::Result<()> {
    rustix::net::sockopt::set_socket_timeout(
        l,
        rustix::net::sockopt::Timeout::Recv,
        Some(link::LOST),
    )
    .map_err(io::Error::from)
}

/// Spinning on one CPU measures the scheduler, not the transport.
fn spins(t: &str) -> bool {
    matches!(
        t,
        "floor-cacheline" | "floor-ring" | "shmkit-spsc-spin" | ICEORYX2
    )
}

/// Prints `text` on stdout; a closed stdout (`shmkit bench | head`) ends quietly.
fn out(text: &str) -> Result<(), Fail> {
    match writeln!(io::stdout().lock(), "{text}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail::error(format!("stdout: {e}"))),
    }
}

/// Writes a byte every 64 into `buf` (the payload is touched by the sender).
fn touch_out(buf: &mut [u8], i: u64) {
    for b in buf.iter_mut().step_by(64) {
        *b = i as u8;
    }
}

/// Reads a byte every 64 of `buf` (the payload is touched by the receiver).
fn touch_in(buf: &[u8]) -> u64 {
    buf.iter().step_by(64).map(|b| u64::from(*b)).sum()
}

/// Whether `buf` carries the mark of message `i` (a byte every 64): what arrived is what
/// was sent.
fn check(buf: &[u8], i: u64, what: &str) -> io::Result<()> {
    if buf.iter().step_by(64).all(|b| *b == i as u8) {
        Ok(())
    } else {
        Err(io::Error::other(format!("{what} {i} arrived corrupted")))
    }
}

/// The measuring side: `trips` timed round trips after a warm-up (each answer checked),
/// then `msgs` streamed.
fn measure(link: &mut dyn Link, size: usize, trips: u64, msgs: u64) -> io::Result<Row> {
    let mut buf = vec![0u8; size];
    let warm = (trips / 10).max(10);
    let mut h =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?;
    let mut sink = 0u64;
    for i in 0..warm + trips {
        touch_out(&mut buf, i);
        let t = Instant::now();
        link.send(&buf)?;
        link.recv(&mut buf)?;
        let ns = t.elapsed().as_nanos() as u64;
        sink = sink.wrapping_add(touch_in(&buf));
        if size > 8 {
            check(&buf, i, "round trip")?;
        }
        if i >= warm {
            h.saturating_record(ns.max(1));
        }
    }
    let t = Instant::now();
    for i in 0..msgs {
        touch_out(&mut buf, i);
        link.send(&buf)?;
    }
    // The peer's acknowledgement: all of it was received.
    link.recv(&mut buf)?;
    let secs = t.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    Ok(Row {
        size,
        rtt: Some([
            h.min(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
        ]),
        msgs_per_s: Some(msgs as f64 / secs),
        bytes_per_s: Some((msgs as f64) * size as f64 / secs),
        ..Row::default()
    })
}

/// The peer's side of `measure`.
fn answer(link: &mut dyn Link, size: usize, trips: u64, msgs: u64) -> io::Result<()> {
    let mut buf = vec![0u8; size];
    let warm = (trips / 10).max(10);
    let mut sink = 0u64;
    for _ in 0..warm + trips {
        link.recv(&mut buf)?;
        sink = sink.wrapping_add(touch_in(&buf));
        link.send(&buf)?;
    }
    for i in 0..msgs {
        link.recv(&mut buf)?;
        check(&buf, i, "message")?;
    }
    std::hint::black_box(sink);
    link.send(&buf)
}

/// The floors only round-trip: their "stream" is the same ping-pong.
fn measure_floor(link: &mut dyn Link, trips: u64) -> io::Result<Row> {
    let mut row = measure(link, 8, trips, 0)?;
    row.msgs_per_s = None;
    row.bytes_per_s = None;
    Ok(row)
}

/// One core copying `size` bytes between private buffers, for about `dur`.
fn memcpy(size: usize, dur: Duration) -> Row {
    let src = vec![3u8; size];
    let mut dst = vec![0u8; size];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < dur {
        for _ in 0..16 {
            dst.copy_from_slice(std::hint::black_box(&src));
            std::hint::black_box(&mut dst);
        }
        n += 16;
    }
    let secs = t.elapsed().as_secs_f64();
    Row {
        transport: "memcpy".into(),
        size,
        rtt: None,
        msgs_per_s: Some(n as f64 / secs),
        bytes_per_s: Some(n as f64 * size as f64 / secs),
        ..Row::default()
    }
}

/// Runs one transport at one size: sets it up, starts the peer, measures. A floor `paired`
/// with another row makes as many round trips as that row (its own row, four times more).
fn run_one(
    t: &str,
    size: usize,
    quick: bool,
    peer_cpu: Option<usize>,
    paired: bool,
) -> Result<Row, Fail> {
    let (trips, msgs) = counts(size, quick);
    // Told to the peer as they are.
    let trips = if link::word_only(t) && !paired {
        trips * 4
    } else {
        trips
    };
    let exe = std::env::current_exe().map_err(|e| Fail::error(format!("own executable: {e}")))?;
    let peer = |extra: &str| {
        let mut c = Command::new(&exe);
        c.env("SHMKIT_BENCH_PARENT", std::process::id().to_string());
        match peer_cpu {
            Some(cpu) => c.env("SHMKIT_BENCH_CPU", cpu.to_string()),
            None => c.env_remove("SHMKIT_BENCH_CPU"),
        };
        c.args([
            "__bench-peer",
            t,
            &size.to_string(),
            &trips.to_string(),
            &msgs.to_string(),
            extra,
        ]);
        c
    };
    let failed = |e: io::Error| Fail::error(format!("bench {t} at {size} bytes: {e}"));
    let finish = |mut child: std::process::Child| -> Result<(), Fail> {
        let st = child.wait().map_err(failed)?;
        if st.success() {
            Ok(())
        } else {
            Err(Fail::error(format!(
                "bench {t} at {size} bytes: the peer failed ({st})"
            )))
        }
    };
    let mut row = match t {
        "shmkit-spsc-eventfd" => {
            use shmkit::handle::{EventFd, Handle};
            let seg = link::make_segment(t, size)?;
            let fd = seg.fd().try_clone_to_owned().map_err(failed)?;
            // The two eventfds go to the peer over a socket that is its stdout.
            let (mine, theirs) = std::os::unix::net::UnixStream::pair().map_err(failed)?;
            let child = peer("-")
                .stdin(Stdio::from(fd))
                .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
                .spawn()
                .map_err(failed)?;
            let (wake_me, wake_peer) = (EventFd::new()?, EventFd::new()?);
            shmkit::handle::send(
                &mine,
                &[&Handle::eventfd(&wake_peer)?, &Handle::eventfd(&wake_me)?],
                b"",
            )?;
            let mut l = SpscEventfd::open(&seg, size, false, wake_me, wake_peer).map_err(failed)?;
            let r = measure(&mut l, size, trips, msgs).map_err(failed)?;
            finish(child)?;
            r
        }
        "floor-cacheline"
        | "floor-futex"
        | "floor-ring"
        | "shmkit-spsc-spin"
        | "shmkit-spsc-blocking"
        | "shmkit-broadcast" => {
            // A memfd, the peer's stdin: nothing named, nothing left behind.
            let seg = link::make_segment(t, size)?;
            let fd = seg.fd().try_clone_to_owned().map_err(failed)?;
            let child = peer("-").stdin(Stdio::from(fd)).spawn().map_err(failed)?;
            let r = match t {
                "floor-cacheline" | "floor-futex" => {
                    let mut l = Floor::open(&seg, false, t == "floor-futex").map_err(failed)?;
                    measure_floor(&mut l, trips)
                }
                "floor-ring" => {
                    let mut l = Ring::open(&seg, size, false).map_err(failed)?;
                    measure(&mut l, size, trips, msgs)
                }
                "shmkit-broadcast" => {
                    let mut l = Bcast::open(&seg, size, false).map_err(failed)?;
                    measure(&mut l, size, trips, msgs)
                }
                _ => {
                    let wait = if t == "shmkit-spsc-spin" {
                        Wait::Spin
                    } else {
                        Wait::Block
                    };
                    let mut l = Spsc::open(&seg, size, false, wait).map_err(failed)?;
                    measure(&mut l, size, trips, msgs)
                }
            };
            let r = r.map_err(failed)?;
            finish(child)?;
            r
        }
        "pipe" => {
            // Close-on-exec: the peer gets its ends as stdin and stdout (dup2 clears the flag
            // there), and nothing else.
            let cloexec = rustix::pipe::PipeFlags::CLOEXEC;
            let (to_r, to_w) = rustix::pipe::pipe_with(cloexec).map_err(|e| failed(e.into()))?;
            let (from_r, from_w) =
                rustix::pipe::pipe_with(cloexec).map_err(|e| failed(e.into()))?;
            let child = peer("-")
                .stdin(Stdio::from(to_r))
                .stdout(Stdio::from(from_w))
                .spawn()
                .map_err(failed)?;
            let mut l = Stream {
                r: std::fs::File::from(from_r),
                w: std::fs::File::from(to_w),
            };
            let r = measure(&mut l, size, trips, msgs).map_err(failed)?;
            drop(l);
            finish(child)?;
            r
        }
        "unix-stream" => {
            // An abstract socket: no file to make or remove.
            use std::os::linux::net::SocketAddrExt;
            let name = format!("shmkit-bench-{}-{size}", std::process::id());
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .map_err(failed)?;
            let l = std::os::unix::net::UnixListener::bind_addr(&addr).map_err(failed)?;
            accept_within_lost(&l).map_err(failed)?;
            let child = peer(&name).spawn().map_err(failed)?;
            let (s, _) = l.accept().map_err(failed)?;
            s.set_read_timeout(Some(link::LOST)).map_err(failed)?;
            let mut link = Stream {
                r: s.try_clone().map_err(failed)?,
                w: s,
            };
            let r = measure(&mut link, size, trips, msgs).map_err(failed)?;
            finish(child)?;
            r
        }
        "tcp" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(failed)?;
            accept_within_lost(&l).map_err(failed)?;
            let addr = l.local_addr().map_err(failed)?;
            let child = peer(&addr.to_string()).spawn().map_err(failed)?;
            let (s, _) = l.accept().map_err(failed)?;
            s.set_nodelay(true).map_err(failed)?;
            s.set_read_timeout(Some(link::LOST)).map_err(failed)?;
            let mut link = Stream {
                r: s.try_clone().map_err(failed)?,
                w: s,
            };
            let r = measure(&mut link, size, trips, msgs).map_err(failed)?;
            finish(child)?;
            r
        }
        "memcpy" => memcpy(size, memcpy_time(quick, false)),
        _ => return Err(Fail::usage(format!("unknown transport {t}"))),
    };
    row.transport = t.to_string();
    Ok(row)
}

/// `shmkit __bench-peer TRANSPORT SIZE TRIPS MSGS WHERE`: the other process of a run.
pub fn peer(args: &[String]) -> u8 {
    let run = || -> io::Result<()> {
        let [t, size, trips, msgs, at] = args else {
            return Err(io::Error::other("usage: TRANSPORT SIZE TRIPS MSGS WHERE"));
        };
        let num = |s: &str| s.parse::<u64>().map_err(io::Error::other);
        let (size, trips, msgs) = (num(size)? as usize, num(trips)?, num(msgs)?);
        // Dies with the bench (a bench killed with -9 leaves no peer spinning).
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        let parent = std::env::var("SHMKIT_BENCH_PARENT").ok();
        if parent != rustix::process::getppid().map(|p| p.as_raw_nonzero().to_string()) {
            return Err(io::Error::other("the bench that started this peer is gone"));
        }
        // The CPU the bench chose for it, if it pins.
        if let Some(cpu) = std::env::var("SHMKIT_BENCH_CPU")
            .ok()
            .and_then(|c| c.parse().ok())
        {
            pin(cpu);
        }
        let memory = || -> io::Result<shmkit::Memfd> {
            use std::os::fd::AsFd;
            let fd = io::stdin().as_fd().try_clone_to_owned()?;
            shmkit::Memfd::from_fd(fd).map_err(io::Error::other)
        };
        match t.as_str() {
            "floor-cacheline" | "floor-futex" => {
                let seg = memory()?;
                let mut l = Floor::open(&seg, true, t == "floor-futex")?;
                answer(&mut l, 8, trips, 0)
            }
            "floor-ring" => {
                let seg = memory()?;
                let mut l = Ring::open(&seg, size, true)?;
                answer(&mut l, size, trips, msgs)
            }
            "shmkit-broadcast" => {
                let seg = memory()?;
                let mut l = Bcast::open(&seg, size, true)?;
                answer(&mut l, size, trips, msgs)
            }
            "shmkit-spsc-eventfd" => {
                use std::os::fd::AsFd;
                let seg = memory()?;
                let sock = std::os::unix::net::UnixStream::from(
                    io::stdout().as_fd().try_clone_to_owned()?,
                );
                let mut got = shmkit::handle::recv(&sock).map_err(io::Error::other)?;
                let [mine, theirs] = [got.handles.remove(0), got.handles.remove(0)]
                    .map(|h| h.into_eventfd().map_err(io::Error::other));
                let mut l = SpscEventfd::open(&seg, size, true, mine?, theirs?)?;
                answer(&mut l, size, trips, msgs)
            }
            "shmkit-spsc-spin" | "shmkit-spsc-blocking" => {
                let seg = memory()?;
                let wait = if t == "shmkit-spsc-spin" {
                    Wait::Spin
                } else {
                    Wait::Block
                };
                let mut l = Spsc::open(&seg, size, true, wait)?;
                answer(&mut l, size, trips, msgs)
            }
            "pipe" => {
                let mut l = Stream {
                    r: io::stdin().lock(),
                    w: io::stdout().lock(),
                };
                answer(&mut l, size, trips, msgs)
            }
            "unix-stream" => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(at.as_bytes())?;
                let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
                s.set_read_timeout(Some(link::LOST))?;
                let mut l = Stream {
                    r: s.try_clone()?,
                    w: s,
                };
                answer(&mut l, size, trips, msgs)
            }
            "tcp" => {
                let s = std::net::TcpStream::connect(at)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(link::LOST))?;
                let mut l = Stream {
                    r: s.try_clone()?,
                    w: s,
                };
                answer(&mut l, size, trips, msgs)
            }
            _ => Err(io::Error::other(format!("unknown transport {t}"))),
        }
    };
    match run() {
        Ok(()) => code::OK,
        Err(e) => {
            eprintln!("shmkit __bench-peer: {e}");
            code::ERROR
        }
    }
}

fn ns(v: u64) -> String {
    if v >= 1_000_000 {
        format!("{:.2} ms", v as f64 / 1e6)
    } else if v >= 1_000 {
        format!("{:.2} µs", v as f64 / 1e3)
    } else {
        format!("{v} ns")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

pub fn run(a: Args) -> CmdResult {
    let sizes: Vec<usize> = match &a.sizes {
        Some(v) => v.iter().map(|s| *s as usize).collect(),
        None if a.quick => vec![8, 4096, 64 << 10],
        None => vec![8, 64, 512, 4096, 64 << 10, 1 << 20],
    };
    if let Some(s) = sizes.iter().find(|s| **s < 8 || **s > 64 << 20) {
        return Err(Fail::usage(format!(
            "size {s}: messages of 8 bytes to 64 MiB (at least 8 bytes)"
        )));
    }
    let mut sizes = sizes;
    sizes.sort_unstable();
    sizes.dedup();
    let mut transports: Vec<String> = a
        .transports
        .clone()
        .unwrap_or_else(|| link::ALL.iter().map(|s| s.to_string()).collect());
    for w in &a.with {
        if !transports.contains(w) {
            transports.push(w.clone());
        }
    }
    // Found before the run, so that a missing build is said at once.
    let iceoryx2 = if transports.iter().any(|t| t == ICEORYX2) {
        Some(iceoryx2_bench()?)
    } else {
        None
    };
    let mut jobs: Vec<(String, usize)> = Vec::new();
    for t in &transports {
        for &s in &sizes {
            if link::word_only(t) && s != 8 {
                continue;
            }
            jobs.push((t.clone(), s));
        }
        if link::word_only(t) && !sizes.contains(&8) {
            jobs.push((t.clone(), 8));
        }
    }
    // The two processes on two CPUs of those this one may use; the spinning transports are
    // left out without two.
    let cpus = two_cpus().filter(|(a, _)| pin(*a));
    let mut skipped = Vec::new();
    if cpus.is_none() {
        jobs.retain(|(t, _)| {
            let keep = !spins(t);
            if !keep && !skipped.contains(t) {
                skipped.push(t.clone());
            }
            keep
        });
    }
    // A plot that cannot be written is said before the run, not after it.
    if let Some(path) = &a.plot {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                Fail::usage(format!(
                    "--plot {}: {e}",
                    crate::quote::text(&path.display().to_string())
                ))
            })?;
    }
    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("template"),
    );
    let mut rows = Vec::new();
    let chosen = |t: &str| transports.iter().any(|x| x == t);
    for (t, s) in &jobs {
        bar.set_message(format!("{t} {}", shmkit::size::human(*s as u64)));
        // Each ratio to a floor is to the floor measured just before the row: on a shared
        // machine the floors themselves move (the cache-line round trip went from 90 to
        // 470 ns and back within one run here, as the host moved the two CPUs), and a floor
        // measured a minute earlier made ratios of 0.4x or 1.9x of the same code.
        let floor = floor_of(t);
        let floor_p50 = if *s == 8
            && !link::is_floor(t)
            && chosen(floor)
            && (cpus.is_some() || !spins(floor))
        {
            run_one(floor, 8, a.quick, cpus.map(|c| c.1), true)?
                .rtt
                .map(|x| x[1])
        } else {
            None
        };
        let memcpy_bytes_per_s = if t != "memcpy" && !link::word_only(t) && chosen("memcpy") {
            memcpy(*s, memcpy_time(a.quick, true)).bytes_per_s
        } else {
            None
        };
        // The raw ring for the shared-memory transports that spin (broadcast's consumer spins
        // first): what the two CPUs move with a copy in and a copy out, now. Not for those that
        // sleep, whose floor is the futex one (and whose rows a spinning run just before made
        // noisier in a full run here).
        let ring = if (spins(t) || t == "shmkit-broadcast")
            && !link::is_floor(t)
            && chosen("floor-ring")
            && cpus.is_some()
        {
            Some(run_one("floor-ring", *s, a.quick, cpus.map(|c| c.1), true)?)
        } else {
            None
        };
        let mut row = match &iceoryx2 {
            Some(bin) if t == ICEORYX2 => run_iceoryx2(bin, *s, a.quick, cpus)?,
            _ => run_one(t, *s, a.quick, cpus.map(|c| c.1), false)?,
        };
        row.floor_p50 = floor_p50;
        row.memcpy_bytes_per_s = memcpy_bytes_per_s;
        row.ring_p50 = ring.as_ref().and_then(|r| r.rtt).map(|x| x[1]);
        row.ring_bytes_per_s = ring.and_then(|r| r.bytes_per_s);
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &a.plot {
        plot::svg(&rows, path)?;
        eprintln!(
            "shmkit bench: latency plot in {}",
            crate::quote::text(&path.display().to_string())
        );
    }
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                let at = |i: usize| r.rtt.map(|x| x[i]);
                serde_json::json!({
                    "transport": r.transport, "size": r.size,
                    "rtt_min_ns": at(0), "rtt_p50_ns": at(1), "rtt_p99_ns": at(2),
                    "rtt_p999_ns": at(3), "rtt_max_ns": at(4),
                    "msgs_per_s": r.msgs_per_s, "bytes_per_s": r.bytes_per_s,
                    "floor": (r.size == 8 && !link::is_floor(&r.transport))
                        .then(|| floor_of(&r.transport)),
                    "floor_p50_ns": r.floor_p50,
                    "memcpy_bytes_per_s": r.memcpy_bytes_per_s,
                    "ring_p50_ns": r.ring_p50,
                    "ring_bytes_per_s": r.ring_bytes_per_s,
                })
            })
            .collect();
        out(&serde_json::to_string_pretty(&v).expect("json"))?;
        return Ok(code::OK);
    }
    let find = |t: &str, s: usize| rows.iter().find(|r| r.transport == t && r.size == s);
    let p50 = |r: Option<&Row>| r.and_then(|r| r.rtt).map(|x| x[1] as f64);
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    let with_ice = rows.iter().any(|r| r.transport == ICEORYX2);
    let mut header = vec![
        "transport",
        "size",
        "min",
        "p50",
        "p99",
        "p99.9",
        "max",
        "msgs/s",
        "GB/s",
        "p50/floor",
        "p50/pipe",
        "GB/s/memcpy",
        "GB/s/ring",
        "GB/s/pipe",
    ];
    if with_ice {
        header.push("p50/iceoryx2");
    }
    table.set_header(header);
    for r in &rows {
        // The floors measured just before the row; their own rows where none was.
        let floor = r
            .floor_p50
            .map(|p| p as f64)
            .or_else(|| p50(find(floor_of(&r.transport), 8)));
        let copy_floor = r
            .memcpy_bytes_per_s
            .or_else(|| find("memcpy", r.size).and_then(|m| m.bytes_per_s));
        // Only where it was measured just before, as in JSON.
        let ring_floor = r.ring_bytes_per_s;
        let rtt = |i: usize| r.rtt.map_or("-".into(), |x| ns(x[i]));
        let gbs = r.bytes_per_s.map(|b| b / 1e9);
        let mut cells = vec![
            r.transport.clone(),
            shmkit::size::human(r.size as u64),
            rtt(0),
            rtt(1),
            rtt(2),
            rtt(3),
            rtt(4),
            r.msgs_per_s
                .map_or("-".into(), |m| format!("{:.2}M", m / 1e6)),
            gbs.map_or("-".into(), |g| format!("{g:.2}")),
            if r.size == 8 && !link::is_floor(&r.transport) {
                ratio(p50(Some(r)), floor)
            } else {
                "-".into()
            },
            ratio(p50(Some(r)), p50(find("pipe", r.size))),
            if r.transport == "memcpy" {
                "-".into()
            } else {
                ratio(gbs, copy_floor.map(|b| b / 1e9))
            },
            if link::is_floor(&r.transport) {
                "-".into()
            } else {
                ratio(gbs, ring_floor.map(|b| b / 1e9))
            },
            ratio(
                gbs,
                find("pipe", r.size)
                    .and_then(|m| m.bytes_per_s)
                    .map(|b| b / 1e9),
            ),
        ];
        if with_ice {
            cells.push(ratio(p50(Some(r)), p50(find(ICEORYX2, r.size))));
        }
        table.add_row(cells);
    }
    out(&format!(
        "shmkit bench: two processes{}; round trips with the payload written and read; {}",
        match cpus {
            Some((a, b)) => format!(", pinned to CPUs {a} and {b}"),
            None => format!(
                ", on one CPU (not pinned); left out, as spinning there measures the \
                 scheduler: {}",
                if skipped.is_empty() {
                    "nothing".to_string()
                } else {
                    skipped.join(", ")
                }
            ),
        },
        if a.quick { "quick run" } else { "full run" }
    ))?;
    out(&table.to_string())?;
    Ok(code::OK)
}
