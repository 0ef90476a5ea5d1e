//! `shmkit ls`: every IPC object of every kind, one table.

use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use crate::render;
use crate::table::{self, Column, Layout};
use shmkit::inventory::{self, Kind, ListOptions, Object};

/// List every IPC object on the machine: POSIX and System V shared memory, memfds, message
/// channels, semaphores and message queues, with sizes, modes, owners, holders and status.
///
/// Listing has no side effects: nothing is mapped, attached, written or mounted. Holders are
/// the processes that map an object or hold an fd to it, found in /proc/PID/maps and
/// /proc/PID/fd (only processes this user may inspect; root sees all). Memfds are found by
/// that same scan, so listing them always scans.
///
/// Channels: a POSIX segment whose first 16 bytes (read with pread) are a ready channel's
/// header is listed as kind "channel", its flavor in DETAIL; --kind posix-shm lists the other
/// segments. A segment this user may not read is listed as posix-shm, and memfds are not
/// looked into. A channel is addressed, read and removed as its segment (/NAME).
///
/// Status: "dest" = marked for removal, destroyed at its last detach; "orphan" = nobody
/// uses it (System V: no attachment and the creator is gone; POSIX: no holder, known only
/// with --holders); "unknown" = no holder was seen but some processes could not be
/// inspected (another user's, without root), so nobody can say.
///
/// The table fits the terminal (or $COLUMNS): long names are cut with "…". Piped into another
/// program it is whole. Names with spaces, control characters or bytes that are not UTF-8
/// are quoted as GNU ls quotes them ('/a'$'\n''b'); JSON has them exact.
///
/// Columns (for -o and --sort): kind, object, key, id, size, mode, owner, group, cuser,
/// cgroup, cpid, lpid, nattch, holders, ctime, atime, dtime, otime, stime, rtime, used,
/// status, detail.
///
/// JSON: an array of objects with kind, object, size, mode ("0600"), uid, owner, gid,
/// ctime, last_use (seconds since the epoch), status, orphan (yes, no or unknown),
/// orphan_reason, holders (array of pids, or null when not scanned) and holder_details;
/// System V objects add key ("0x..."), id, creator_uid, creator_gid, creator_pid, last_pid,
/// and shmid/nattch/attach_time/detach_time, semid/nsems/values/waiters/op_time or
/// msqid/messages/receive_pid/send_time/receive_time. POSIX objects, memfds and channels add
/// name and inode; a channel also adds channel: {flavor (spsc, broadcast or mpsc), backing
/// (the kind it lives in: posix-shm)}.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Only this kind (repeatable): posix-shm, sysv-shm, memfd, channel, sysv-sem, sysv-msg,
    /// posix-sem, posix-mq.
    #[arg(long = "kind", short = 'k', value_parser = crate::parse::kind)]
    kinds: Vec<Kind>,
    /// Find the processes that map or hold each object (scans /proc).
    #[arg(long)]
    holders: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// The columns to show, comma-separated (see the list above), e.g. -o object,size,cpid.
    #[arg(long, short = 'o', value_name = "COLUMNS", value_delimiter = ',')]
    output: Vec<String>,
    /// Show every column.
    #[arg(long, conflicts_with = "output")]
    output_all: bool,
    /// Exact sizes in bytes instead of 4 KiB, 1.5 MiB.
    #[arg(long, short = 'b')]
    bytes: bool,
    /// No header line.
    #[arg(long, short = 'n')]
    noheadings: bool,
    /// One space between cells, nothing aligned or cut (spaces inside a cell as \x20).
    #[arg(long, short = 'r')]
    raw: bool,
    /// Sort by this column (numbers and times numerically).
    #[arg(long, value_name = "COLUMN")]
    sort: Option<String>,
    /// Only objects owned by this user (a name or a uid).
    #[arg(long, short = 'u', value_name = "USER")]
    user: Option<String>,
    /// Show the creator's user, group and pid beside the owner (as ipcs -c).
    #[arg(long, short = 'c')]
    creator: bool,
    /// Show the attach, detach, change and operation times (as ipcs -t).
    #[arg(long, short = 't')]
    time: bool,
    /// Print how much of each kind is in use against the kernel's limits (as lsipc -g and
    /// ipcs -u) instead of the objects.
    #[arg(long, short = 's', conflicts_with_all = ["output", "output_all", "sort"])]
    summary: bool,
}

/// A column of the table: its name for -o and --sort, its header, whether it may be cut, and
/// what it shows.
struct Col {
    name: &'static str,
    header: &'static str,
    flexible: bool,
    value: Value,
}

/// What a column shows, and so how it sorts.
enum Value {
    /// Text, sorted as text.
    Text(fn(&Object, &Cx) -> String),
    /// A number shown as it is (`-` when unknown), sorted numerically.
    Number(fn(&Object) -> Option<i64>),
    /// Seconds since the epoch shown as a UTC time, sorted numerically.
    Time(fn(&Object) -> Option<i64>),
    /// Shown by the first, sorted numerically by the second (sizes, keys, modes, holders).
    Shown(fn(&Object, &Cx) -> String, fn(&Object) -> Option<i64>),
}

impl Col {
    fn cell(&self, o: &Object, cx: &Cx) -> String {
        match self.value {
            Value::Text(f) | Value::Shown(f, _) => f(o, cx),
            Value::Number(n) => n(o).map_or_else(|| "-".into(), |v| v.to_string()),
            Value::Time(t) => t(o).map_or_else(|| "-".into(), render::time),
        }
    }

    /// The numeric sort key, for columns that are numbers or times.
    fn number(&self) -> Option<fn(&Object) -> Option<i64>> {
        match self.value {
            Value::Text(_) => None,
            Value::Number(n) | Value::Time(n) | Value::Shown(_, n) => Some(n),
        }
    }
}

/// What cells need besides the object.
struct Cx {
    bytes: bool,
}

const fn col(name: &'static str, header: &'static str, value: Value) -> Col {
    Col {
        name,
        header,
        flexible: false,
        value,
    }
}

/// A column whose long cells may be cut to fit.
const fn flex(name: &'static str, header: &'static str, value: Value) -> Col {
    Col {
        name,
        header,
        flexible: true,
        value,
    }
}

fn pid(p: Option<i32>) -> Option<i64> {
    p.map(i64::from)
}

/// Every column, in the order `--output-all` shows them.
const COLUMNS: &[Col] = &[
    col("kind", "KIND", Value::Text(|o, _| o.kind.name().into())),
    flex(
        "object",
        "OBJECT",
        Value::Text(|o, _| quote::address(&o.address)),
    ),
    col(
        "key",
        "KEY",
        Value::Shown(
            |o, _| match o.kind {
                Kind::SysvShm | Kind::SysvSem | Kind::SysvMsg => {
                    format!("{:#010x}", o.key.unwrap_or(0) as u32)
                }
                _ => "-".into(),
            },
            |o| o.key.map(|k| k as u32 as i64),
        ),
    ),
    col("id", "ID", Value::Number(|o| pid(o.id))),
    col(
        "size",
        "SIZE",
        Value::Shown(
            |o, cx| match o.size {
                None => "-".into(),
                Some(s) if cx.bytes => s.to_string(),
                Some(s) => shmkit::size::human(s),
            },
            |o| o.size.map(|s| s as i64),
        ),
    ),
    col(
        "mode",
        "MODE",
        Value::Shown(|o, _| format!("{:04o}", o.mode), |o| Some(o.mode.into())),
    ),
    col(
        "owner",
        "OWNER",
        Value::Text(|o, _| quote::text(&render::user(o.uid))),
    ),
    col(
        "group",
        "GROUP",
        Value::Text(|o, _| quote::text(&render::group(o.gid))),
    ),
    col(
        "cuser",
        "CUSER",
        Value::Text(|o, _| {
            o.creator_uid
                .map_or("-".into(), |u| quote::text(&render::user(u)))
        }),
    ),
    col(
        "cgroup",
        "CGROUP",
        Value::Text(|o, _| {
            o.creator_gid
                .map_or("-".into(), |g| quote::text(&render::group(g)))
        }),
    ),
    col("cpid", "CPID", Value::Number(|o| pid(o.creator_pid))),
    col("lpid", "LPID", Value::Number(|o| pid(o.last_pid))),
    col(
        "nattch",
        "NATTCH",
        Value::Number(|o| o.nattch.map(|n| n as i64)),
    ),
    flex(
        "holders",
        "HOLDERS",
        Value::Shown(
            |o, _| render::holders_cell(o),
            |o| o.holders.as_ref().map(|h| h.len() as i64),
        ),
    ),
    col("ctime", "CHANGED(UTC)", Value::Time(|o| o.ctime)),
    col("atime", "ATTACHED", Value::Time(|o| o.attach_time)),
    col("dtime", "DETACHED", Value::Time(|o| o.detach_time)),
    col("otime", "SEMOP", Value::Time(|o| o.op_time)),
    col("stime", "SENT", Value::Time(|o| o.send_time)),
    col("rtime", "RECEIVED", Value::Time(|o| o.receive_time)),
    col("used", "USED(UTC)", Value::Time(|o| o.last_use)),
    col(
        "status",
        "STATUS",
        Value::Text(|o, _| {
            let s = render::status(o);
            if s.is_empty() {
                "-".into()
            } else {
                s.join(",")
            }
        }),
    ),
    flex("detail", "DETAIL", Value::Text(|o, _| render::detail(o))),
];

fn column(name: &str) -> Result<&'static Col, Fail> {
    COLUMNS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
        .ok_or_else(|| {
            Fail::usage(format!(
                "unknown column '{}'; the columns are {}",
                quote::text(name),
                COLUMNS
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The columns shown: -o, --output-all, or the default (which fits 80 columns for ordinary
/// names), with --holders, --creator and --time adding theirs.
fn chosen(a: &Args) -> Result<Vec<&'static Col>, Fail> {
    if a.output_all {
        return Ok(COLUMNS.iter().collect());
    }
    if !a.output.is_empty() {
        return a.output.iter().map(|n| column(n)).collect();
    }
    let mut names = vec!["kind", "object", "key", "size", "mode", "owner"];
    if a.creator {
        names.extend(["cuser", "cgroup", "cpid", "lpid"]);
    }
    names.push("nattch");
    if a.time {
        names.extend(["atime", "dtime", "ctime"]);
    }
    if a.holders {
        names.push("holders");
    }
    names.extend(["status", "detail"]);
    names.into_iter().map(column).collect()
}

pub fn run(a: Args) -> CmdResult {
    if a.summary {
        return summary(&a);
    }
    let cols = chosen(&a)?;
    let sort = a.sort.as_deref().map(column).transpose()?;
    let uid = a.user.as_deref().map(render::uid_of).transpose()?;
    let listing = inventory::list(&ListOptions {
        kinds: a.kinds.clone(),
        holders: a.holders,
    })?;
    for n in &listing.notes {
        eprintln!("shmkit: note: {}", quote::text(n));
    }
    let mut objects: Vec<&Object> = listing
        .objects
        .iter()
        .filter(|o| uid.is_none_or(|u| o.uid == u))
        .collect();
    let cx = Cx { bytes: a.bytes };
    if let Some(c) = sort {
        match c.number() {
            // Unknown values last, as ipcs and lsipc put them.
            Some(key) => objects.sort_by_key(|o| (key(o).is_none(), key(o))),
            None => objects.sort_by_cached_key(|o| c.cell(o, &cx)),
        }
    }
    if a.json {
        let v: Vec<_> = objects.iter().map(|o| render::object_json(o)).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(code::OK);
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| cols.iter().map(|c| c.cell(o, &cx)).collect())
        .collect();
    let header: Vec<Column> = cols
        .iter()
        .map(|c| Column {
            header: c.header,
            flexible: c.flexible,
        })
        .collect();
    print!("{}", table::render(&header, &rows, layout(&a)));
    Ok(code::OK)
}

/// The terminal's layout with --noheadings and --raw.
fn layout(a: &Args) -> Layout {
    Layout {
        no_headings: a.noheadings,
        raw: a.raw,
        ..Layout::detect()
    }
}

/// Use against the limits, per kind. The use of every limited resource is the one
/// `shmkit::limits` measures (the same figures `shmkit limits` shows); the listing only
/// counts what no limit bounds.
fn summary(a: &Args) -> CmdResult {
    let limits = shmkit::limits::read()?;
    let kinds: Vec<Kind> = if a.kinds.is_empty() {
        Kind::ALL.to_vec()
    } else {
        a.kinds.clone()
    };
    // Only the kinds with a resource no limit measures need listing.
    let unlimited = [
        Kind::PosixShm,
        Kind::Channel,
        Kind::PosixSem,
        Kind::Memfd,
        Kind::SysvMsg,
    ];
    let listing = inventory::list(&ListOptions {
        kinds: kinds
            .iter()
            .copied()
            .filter(|k| unlimited.contains(k))
            .collect(),
        holders: false,
    })?;
    let mut rows = Vec::new();
    let mut json = serde_json::Map::new();
    for k in kinds {
        let of = || listing.objects.iter().filter(move |o| o.kind == k);
        let count = || Some(of().count() as u64);
        // (resource, in use, the limit's name)
        let resources: Vec<(&str, Option<u64>, Option<&str>)> = match k {
            Kind::SysvShm => vec![
                ("segments", None, Some("shmmni")),
                ("pages", None, Some("shmall")),
            ],
            Kind::SysvSem => vec![
                ("sets", None, Some("semmni")),
                ("semaphores", None, Some("semmns")),
            ],
            Kind::SysvMsg => vec![
                ("queues", None, Some("msgmni")),
                (
                    "bytes queued",
                    Some(of().filter_map(|o| o.size).sum()),
                    None,
                ),
            ],
            Kind::PosixShm => vec![
                ("objects", count(), None),
                ("bytes", None, Some("dev_shm_size")),
            ],
            Kind::PosixMq => vec![("queues", None, Some("queues_max"))],
            Kind::PosixSem | Kind::Memfd | Kind::Channel => vec![("objects", count(), None)],
        };
        for (what, counted, limit_name) in resources {
            let limit = limit_name.and_then(|n| limits.iter().find(|l| l.name == n));
            let used = counted.or(limit.and_then(|l| l.usage));
            let lim = limit.and_then(|l| l.value);
            let shown = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
            rows.push(vec![
                k.name().to_string(),
                what.to_string(),
                shown(used),
                shown(lim),
                match (used, lim) {
                    (Some(u), Some(l)) if l > 0 => format!("{:.1}%", u as f64 * 100.0 / l as f64),
                    _ => "-".into(),
                },
                limit_name.unwrap_or("-").to_string(),
            ]);
            json.entry(k.name().to_string())
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .expect("an object")
                .insert(
                    what.replace(' ', "_"),
                    serde_json::json!({ "used": used, "limit": lim, "limit_name": limit_name }),
                );
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
        return Ok(code::OK);
    }
    let header = Column::fixed(&["KIND", "RESOURCE", "USED", "LIMIT", "USE%", "LIMIT NAME"]);
    print!("{}", table::render(&header, &rows, layout(a)));
    Ok(code::OK)
}
