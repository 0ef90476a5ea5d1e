//! The measurement itself (Linux only: see the crate's documentation).

use hdrhistogram::Histogram;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// How long any wait may take before the other side counts as lost.
const LOST: Duration = Duration::from_secs(10);

type Pub = Publisher<ipc::Service, [u8], ()>;
type Sub = Subscriber<ipc::Service, [u8], ()>;

struct Link {
    tx: Pub,
    rx: Sub,
    /// The service this side publishes on.
    out: PubSub<ipc::Service, [u8], ()>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Link {
    /// The two services of run `id`; the measuring side publishes on "there".
    fn open(id: &str, size: usize, peer: bool) -> Result<(Node<ipc::Service>, Link), String> {
        let node = NodeBuilder::new().create::<ipc::Service>().map_err(err)?;
        let service = |dir: &str| {
            let name: ServiceName = format!("shmkit-bench/{id}/{dir}")
                .as_str()
                .try_into()
                .map_err(err)?;
            node.service_builder(&name)
                .publish_subscribe::<[u8]>()
                .enable_safe_overflow(false)
                .subscriber_max_buffer_size(64)
                .history_size(0)
                .max_publishers(1)
                .max_subscribers(1)
                .open_or_create()
                .map_err(err)
        };
        let (there, back) = (service("there")?, service("back")?);
        let (out, from) = if peer { (back, there) } else { (there, back) };
        let rx = from.subscriber_builder().create().map_err(err)?;
        let tx = out
            .publisher_builder()
            .initial_max_slice_len(size)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(err)?;
        Ok((node, Link { tx, rx, out }))
    }

    fn send(&self, buf: &[u8]) -> Result<(), String> {
        let sample = self.tx.loan_slice_uninit(buf.len()).map_err(err)?;
        let sample = sample.write_from_slice(buf);
        sample.send().map_err(err)?;
        Ok(())
    }

    /// Busy-polls for the next sample and copies it into `buf` (read on this side, as the
    /// other transports' payloads are).
    fn recv(&self, buf: &mut [u8]) -> Result<(), String> {
        let t = Instant::now();
        let mut polls = 0u32;
        loop {
            if let Some(s) = self.rx.receive().map_err(err)? {
                let p = s.payload();
                if p.len() != buf.len() {
                    return Err(format!("a {}-byte sample, {} expected", p.len(), buf.len()));
                }
                buf.copy_from_slice(p);
                return Ok(());
            }
            std::hint::spin_loop();
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(1 << 16) && t.elapsed() > LOST {
                return Err("the other process did not answer for 10 s".into());
            }
        }
    }

    /// Waits until the other side's subscriber is connected, so that nothing sent is lost.
    fn connected(&self) -> Result<(), String> {
        let t = Instant::now();
        loop {
            if self.out.dynamic_config().number_of_subscribers() > 0 {
                return self.tx.update_connections().map_err(err);
            }
            if t.elapsed() > LOST {
                return Err("the other process did not subscribe for 10 s".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn touch_out(buf: &mut [u8], i: u64) {
    for b in buf.iter_mut().step_by(64) {
        *b = i as u8;
    }
}

fn check(buf: &[u8], i: u64) -> Result<(), String> {
    if buf.iter().step_by(64).all(|b| *b == i as u8) {
        Ok(())
    } else {
        Err(format!("message {i} arrived corrupted"))
    }
}

fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
}

fn measure(link: &Link, size: usize, trips: u64, msgs: u64) -> Result<serde_json::Value, String> {
    let mut buf = vec![0u8; size];
    let warm = (trips / 10).max(10);
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(err)?;
    for i in 0..warm + trips {
        touch_out(&mut buf, i);
        let t = Instant::now();
        link.send(&buf)?;
        link.recv(&mut buf)?;
        let ns = t.elapsed().as_nanos() as u64;
        check(&buf, i)?;
        if i >= warm {
            h.saturating_record(ns.max(1));
        }
    }
    let t = Instant::now();
    for i in 0..msgs {
        touch_out(&mut buf, i);
        link.send(&buf)?;
    }
    link.recv(&mut buf)?;
    let secs = t.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "transport": "iceoryx2",
        "size": size,
        "rtt_min_ns": h.min(),
        "rtt_p50_ns": h.value_at_quantile(0.5),
        "rtt_p99_ns": h.value_at_quantile(0.99),
        "rtt_p999_ns": h.value_at_quantile(0.999),
        "rtt_max_ns": h.max(),
        "msgs_per_s": msgs as f64 / secs,
        "bytes_per_s": msgs as f64 * size as f64 / secs,
    }))
}

fn answer(link: &Link, size: usize, trips: u64, msgs: u64) -> Result<(), String> {
    let mut buf = vec![0u8; size];
    let warm = (trips / 10).max(10);
    for _ in 0..warm + trips {
        link.recv(&mut buf)?;
        link.send(&buf)?;
    }
    for i in 0..msgs {
        link.recv(&mut buf)?;
        check(&buf, i)?;
    }
    link.send(&buf)
}

fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: shmkit-bench-iceoryx2 SIZE TRIPS MSGS [CPU CPU]";
    let peer = args.first().map(String::as_str) == Some("--peer");
    let rest = if peer { &args[1..] } else { args };
    let num = |i: usize| -> Result<u64, String> {
        rest.get(i)
            .ok_or(usage)?
            .parse::<u64>()
            .map_err(|e| format!("{usage}: {e}"))
    };
    let (size, trips, msgs) = (num(0)? as usize, num(1)?, num(2)?);
    if size == 0 {
        return Err(format!("{usage}: SIZE is at least 1"));
    }
    let cpus = (num(3).ok(), num(4).ok());
    if peer {
        // Dies with the measuring side: no peer left spinning.
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .map_err(err)?;
        let id = rest.get(5).ok_or(usage)?;
        pin(cpus.1.map(|c| c as usize));
        let (_node, link) = Link::open(id, size, true)?;
        link.connected()?;
        return answer(&link, size, trips, msgs);
    }
    pin(cpus.0.map(|c| c as usize));
    let id = format!("{}-{size}", std::process::id());
    let (_node, link) = Link::open(&id, size, false)?;
    let exe = std::env::current_exe().map_err(err)?;
    let mut child = Command::new(exe)
        .arg("--peer")
        .args(&rest[..rest.len().min(5)])
        .args(std::iter::repeat_n("-", 5usize.saturating_sub(rest.len())))
        .arg(&id)
        .spawn()
        .map_err(err)?;
    let row = link
        .connected()
        .and_then(|()| measure(&link, size, trips, msgs));
    let row = match row {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    let st = child.wait().map_err(err)?;
    if !st.success() {
        return Err(format!("the peer failed ({st})"));
    }
    println!("{row}");
    Ok(())
}

/// What iceoryx2 leaves on the machine once its nodes are gone: its global management
/// segments in /dev/shm and its directories under /tmp/iceoryx2.
fn leftovers() -> Vec<std::path::PathBuf> {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("iox2_") && n.ends_with(".global_mgmt"))
                })
                .collect()
        })
        .unwrap_or_default();
    for d in [
        "/tmp/iceoryx2/nodes",
        "/tmp/iceoryx2/services",
        "/tmp/iceoryx2",
    ] {
        let p = std::path::PathBuf::from(d);
        if p.is_dir() {
            found.push(p);
        }
    }
    found
}

/// Removes what this run made and nobody uses: only what was not there before it, and only
/// while no iceoryx2 node is registered (another program's nodes keep it all).
fn clean_up(before: &[std::path::PathBuf]) {
    let nodes_left = std::fs::read_dir("/tmp/iceoryx2/nodes")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if nodes_left {
        return;
    }
    for p in leftovers().into_iter().filter(|p| !before.contains(p)) {
        let _ = if p.is_dir() {
            std::fs::remove_dir(&p)
        } else {
            std::fs::remove_file(&p)
        };
    }
}

/// The program: the measuring side, or with `--peer` the other side.
pub fn main() -> ExitCode {
    // iceoryx2 logs warnings on stderr; the row is on stdout.
    set_log_level(LogLevel::Error);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let measuring = args.first().map(String::as_str) != Some("--peer");
    let before = leftovers();
    let result = run(&args);
    if measuring {
        clean_up(&before);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmkit-bench-iceoryx2: {e}");
            ExitCode::FAILURE
        }
    }
}
