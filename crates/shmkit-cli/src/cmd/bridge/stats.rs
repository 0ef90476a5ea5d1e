//! The stats segment of a running `shmkit bridge`: POSIX shared memory
//! `/shmkit-bridge-NAME` that the bridge rewrites every 100 ms and `shmkit bridge status`
//! reads. One writer (the bridge's main thread), which holds an exclusive `flock(2)` on it
//! for as long as it runs: the kernel lets go of it when the bridge dies, however it dies, so
//! "running" is never a guess from a pid or a clock. Readers copy it out and trust nothing
//! in it: any process that may open it may have written it.
//!
//! ```text
//! offset  size  field (little-endian)
//!      0     8  magic "SHMKBRS1"
//!      8     4  routes (at most ROUTES)
//!     12     4  pid of the bridge
//!     16     8  started, Unix seconds
//!     24     8  heartbeat, Unix milliseconds (rewritten every 100 ms)
//!     32    16  the bridge's Zenoh session id
//!     48     8  peers linked now
//!     56     8  links lost
//!     64     8  reconnects
//!    128        route i at 128 + 512 i:
//!                 0  1  direction (1 out, 2 in)     1  1  on full (0 block, 1 drop)
//!                 2  2  key length                  4  2  channel name length
//!                 8  80 the counters, COUNTERS in order
//!               128 256 key      384 128 channel name
//! ```

use crate::fail::Fail;
use shmkit::{ErrorKind, PosixShm};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"SHMKBRS1";
const HEADER: usize = 128;
const ROUTE: usize = 512;
/// The most routes one bridge runs.
pub const ROUTES: usize = 64;
/// The longest key expression and channel name a route may have.
pub const MAX_KEY: usize = 256;
pub const MAX_CHANNEL: usize = 128;
const KEY_AT: usize = 128;
const CHANNEL_AT: usize = 384;
/// How often the bridge rewrites its stats.
pub const BEAT: Duration = Duration::from_millis(100);
/// A running bridge whose heartbeat is older than this (or in the future) is stuck.
pub const STALE: Duration = Duration::from_secs(2);

/// The counters of a route, in the segment's order (as `RouteStats` names them).
pub const COUNTERS: [&str; 10] = [
    "forwarded",
    "ingested",
    "dropped",
    "oversize",
    "overruns",
    "unmatched",
    "gaps",
    "duplicates",
    "looped",
    "garbage",
];

/// The segment's name for the bridge named `name`.
pub fn segment_name(name: &str) -> String {
    format!("/shmkit-bridge-{name}")
}

/// A bridge's name: what `--name` may be (it becomes part of a file name).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        || name.starts_with('.')
    {
        return Err(format!(
            "bridge name {name:?}: 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-' (not '.' first)"
        ));
    }
    Ok(())
}

/// Which way a route goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

/// What the segment says of a route, besides its counters.
#[derive(Debug, Clone)]
pub struct RouteDesc {
    pub direction: Direction,
    pub channel: String,
    pub key: String,
    /// Drop (rather than block) when the local channel is full (`in` routes).
    pub drop: bool,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The bridge's side: made when it starts, removed when it ends.
pub struct Writer {
    seg: PosixShm,
    routes: usize,
}

/// Whether another open file description holds the exclusive lock on `seg` (its bridge
/// runs). The shared lock this takes to know is let go of at once.
fn locked(seg: &PosixShm) -> bool {
    use rustix::fs::{flock, FlockOperation};
    match flock(seg.fd(), FlockOperation::NonBlockingLockShared) {
        Err(rustix::io::Errno::WOULDBLOCK) => true,
        Err(_) => false,
        Ok(()) => {
            let _ = flock(seg.fd(), FlockOperation::Unlock);
            false
        }
    }
}

/// Takes the exclusive lock on `seg`, allowing for a `status` that holds its shared one for
/// the moment it looks.
fn lock(seg: &PosixShm) -> bool {
    let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
    (0..10).any(|i| {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        rustix::fs::flock(seg.fd(), exclusive).is_ok()
    })
}

impl Writer {
    /// Makes the segment of bridge `name` for `routes`, locked for as long as the bridge
    /// runs. A bridge's stats of that name that nobody holds (its bridge died or stopped
    /// without removing them) are taken over in place; those of a running bridge, or an
    /// object of that name that is not a bridge's stats, are left alone and refused.
    pub fn create(name: &str, routes: &[RouteDesc]) -> Result<Writer, Fail> {
        assert!(routes.len() <= ROUTES);
        let seg_name = segment_name(name);
        let size = HEADER + ROUTES * ROUTE;
        let taken = |pid: Option<u32>| {
            Fail::error(format!(
                "a bridge named '{name}' is running{}; give this one another --name",
                pid.map_or(String::new(), |p| format!(" (pid {p})"))
            ))
        };
        // The lock is taken, or the reason it is not said.
        let locked_or_why = |seg: &PosixShm| {
            if lock(seg) {
                return Ok(());
            }
            if locked(seg) {
                return Err(taken(read_from(name, seg).ok().map(|s| s.pid)));
            }
            // Only shared locks on it: no bridge, another process that holds it.
            Err(Fail::error(format!(
                "{seg_name} is locked by a process that is not a bridge (a shared flock); \
                 `shmkit info {seg_name}` shows who holds it"
            )))
        };
        let seg = match PosixShm::create(&seg_name, size) {
            Ok(seg) => {
                // Removed by this Writer's drop, and only if still its own.
                seg.set_keep(true);
                // Another start of the same name may have opened and locked it already.
                locked_or_why(&seg)?;
                seg
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let seg = PosixShm::open(&seg_name)?;
                locked_or_why(&seg)?;
                // Nobody holds it: a stopped bridge's stats, if that is what it holds.
                if let Err(e) = read_from(name, &seg) {
                    return Err(Fail::error(format!(
                        "{seg_name} exists and holds no bridge's stats ({}); if it is not \
                         another bridge's starting this very moment, remove it with `shmkit rm \
                         {seg_name}`",
                        e.message
                    )));
                }
                seg.write_at(0, &vec![0u8; size])?;
                seg
            }
            Err(e) => return Err(e.into()),
        };
        let mut head = [0u8; 32];
        head[..8].copy_from_slice(MAGIC);
        head[8..12].copy_from_slice(&(routes.len() as u32).to_le_bytes());
        head[12..16].copy_from_slice(&std::process::id().to_le_bytes());
        head[16..24].copy_from_slice(&(now_ms() / 1000).to_le_bytes());
        head[24..32].copy_from_slice(&now_ms().to_le_bytes());
        for (i, r) in routes.iter().enumerate() {
            let at = HEADER + i * ROUTE;
            let (key, channel) = (r.key.as_bytes(), r.channel.as_bytes());
            let mut d = [0u8; 8];
            d[0] = match r.direction {
                Direction::Out => 1,
                Direction::In => 2,
            };
            d[1] = u8::from(r.drop);
            d[2..4].copy_from_slice(&(key.len().min(MAX_KEY) as u16).to_le_bytes());
            d[4..6].copy_from_slice(&(channel.len().min(MAX_CHANNEL) as u16).to_le_bytes());
            seg.write_at(at, &d)?;
            seg.write_at(at + KEY_AT, &key[..key.len().min(MAX_KEY)])?;
            seg.write_at(at + CHANNEL_AT, &channel[..channel.len().min(MAX_CHANNEL)])?;
        }
        // The magic last: a reader that sees it sees the rest.
        seg.write_at(8, &head[8..])?;
        seg.atomic_u64(0)?.store(
            u64::from_ne_bytes(*MAGIC),
            std::sync::atomic::Ordering::Release,
        );
        Ok(Writer {
            seg,
            routes: routes.len(),
        })
    }

    /// Writes the bridge's Zenoh session id (zero until then).
    pub fn zid(&self, zid: [u8; 16]) -> shmkit::Result<()> {
        self.seg.write_at(32, &zid)
    }

    /// Writes route `i`'s counters (in [`COUNTERS`] order).
    pub fn route(&self, i: usize, counters: [u64; 10]) -> shmkit::Result<()> {
        assert!(i < self.routes);
        for (n, v) in counters.into_iter().enumerate() {
            // Relaxed: each counter stands alone; readers want a recent value of each.
            self.seg
                .atomic_u64(HEADER + i * ROUTE + 8 + 8 * n)?
                .store(v, Relaxed);
        }
        Ok(())
    }

    /// Writes the peer counters and the heartbeat.
    pub fn beat(&self, linked: u64, lost: u64, reconnects: u64) -> shmkit::Result<()> {
        for (at, v) in [(48, linked), (56, lost), (64, reconnects), (24, now_ms())] {
            self.seg.atomic_u64(at)?.store(v, Relaxed);
        }
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Only if the name still names this very object: someone may have removed it and
        // another bridge of the name made its own since.
        let same = |a: &rustix::fs::Stat, b: &rustix::fs::Stat| {
            a.st_dev == b.st_dev && a.st_ino == b.st_ino
        };
        let now = PosixShm::options().read_only(true).open(self.seg.name());
        if let (Ok(mine), Ok(now)) = (rustix::fs::fstat(self.seg.fd()), now) {
            if rustix::fs::fstat(now.fd()).is_ok_and(|n| same(&mine, &n)) {
                let _ = self.seg.unlink();
            }
        }
    }
}

/// A route as read.
#[derive(Debug, Clone)]
pub struct RouteSnap {
    pub desc: RouteDesc,
    pub counters: [u64; 10],
}

/// A bridge's stats as read.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub name: String,
    pub pid: u32,
    pub started: u64,
    /// Milliseconds since the last heartbeat (0 if it is in the future).
    pub age_ms: u64,
    pub zid: [u8; 16],
    /// Its bridge holds it (runs).
    pub held: bool,
    pub linked: u64,
    pub lost: u64,
    pub reconnects: u64,
    pub routes: Vec<RouteSnap>,
}

impl Snapshot {
    /// Whether its bridge runs (holds the segment's lock).
    pub fn running(&self) -> bool {
        self.held
    }

    /// Whether its bridge runs but has not written its stats for a while (or wrote a time
    /// in the future): stuck, or stopped with SIGSTOP.
    pub fn stuck(&self) -> bool {
        self.held && self.age_ms >= STALE.as_millis() as u64
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

/// Reads the stats of bridge `name`.
///
/// # Errors
/// Exit code 4 for no such bridge; 3 for a segment of that name that does not hold a
/// bridge's stats, or that cannot be read.
pub fn read(name: &str) -> Result<Snapshot, Fail> {
    let seg_name = segment_name(name);
    let seg = PosixShm::options()
        .read_only(true)
        .open(&seg_name)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => Fail {
                code: crate::fail::code::NOT_FOUND,
                message: format!("no bridge named '{name}' here (no {seg_name})"),
            },
            ErrorKind::TooSmall => Fail::error(format!(
                "{seg_name} does not hold a bridge's stats (empty); if no bridge of that name \
                 runs, remove it with `shmkit rm {seg_name}`"
            )),
            _ => Fail::from(e),
        })?;
    let mut snap = read_from(name, &seg)?;
    snap.held = locked(&seg);
    Ok(snap)
}

/// Reads the stats of bridge `name` from `seg`, its segment (`held` false: only a look at
/// the lock from a descriptor of its own can tell, and a look from the holder's own would
/// turn its lock into a shared one).
fn read_from(name: &str, seg: &PosixShm) -> Result<Snapshot, Fail> {
    let seg_name = segment_name(name);
    let bad = |why: String| {
        Fail::error(format!(
            "{seg_name} does not hold a bridge's stats ({why}); if no bridge of that name runs, \
             remove it with `shmkit rm {seg_name}`"
        ))
    };
    if seg.len() < HEADER + ROUTES * ROUTE {
        return Err(bad(format!("{} bytes, too short", seg.len())));
    }
    // A copy of it all first: what another process changes while we look cannot make a
    // length or a count point anywhere but into this copy.
    let mut all = vec![0u8; HEADER + ROUTES * ROUTE];
    seg.read_at(0, &mut all)?;
    if &all[..8] != MAGIC {
        return Err(bad("not a bridge's stats (no magic)".into()));
    }
    let routes = u32::from_le_bytes(all[8..12].try_into().expect("4 bytes")) as usize;
    if routes > ROUTES {
        return Err(bad(format!("{routes} routes, more than {ROUTES}")));
    }
    let mut snaps = Vec::with_capacity(routes);
    for i in 0..routes {
        let r = &all[HEADER + i * ROUTE..HEADER + (i + 1) * ROUTE];
        let direction = match r[0] {
            1 => Direction::Out,
            2 => Direction::In,
            d => return Err(bad(format!("route {i}: direction {d}"))),
        };
        let (klen, clen) = (u16_at(r, 2), u16_at(r, 4));
        if klen > MAX_KEY || clen > MAX_CHANNEL {
            return Err(bad(format!("route {i}: a name longer than its field")));
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut counters = [0u64; 10];
        for (n, c) in counters.iter_mut().enumerate() {
            *c = u64_at(r, 8 + 8 * n);
        }
        snaps.push(RouteSnap {
            desc: RouteDesc {
                direction,
                drop: r[1] == 1,
                key: text(&r[KEY_AT..KEY_AT + klen]),
                channel: text(&r[CHANNEL_AT..CHANNEL_AT + clen]),
            },
            counters,
        });
    }
    let beat = u64_at(&all, 24);
    let now = now_ms();
    Ok(Snapshot {
        held: false,
        name: name.to_string(),
        pid: u32::from_le_bytes(all[12..16].try_into().expect("4 bytes")),
        started: u64_at(&all, 16),
        // A heartbeat in the future is no sign of life.
        age_ms: if beat > now { u64::MAX } else { now - beat },
        zid: all[32..48].try_into().expect("16 bytes"),
        linked: u64_at(&all, 48),
        lost: u64_at(&all, 56),
        reconnects: u64_at(&all, 64),
        routes: snaps,
    })
}

/// The names of every bridge with a stats segment here.
pub fn names() -> shmkit::Result<Vec<String>> {
    let listing = shmkit::inventory::list(&shmkit::inventory::ListOptions {
        kinds: vec![shmkit::inventory::Kind::PosixShm],
        holders: false,
    })?;
    let mut names: Vec<String> = listing
        .objects
        .iter()
        .filter_map(|o| o.address.posix_name()?.to_str())
        .filter_map(|n| n.trim_start_matches('/').strip_prefix("shmkit-bridge-"))
        .filter(|n| check_name(n).is_ok())
        .map(String::from)
        .collect();
    names.sort();
    Ok(names)
}
