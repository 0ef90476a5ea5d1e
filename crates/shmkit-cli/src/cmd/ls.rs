//! `shmkit ls`: every IPC object of every kind, one table.

use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use crate::render;
use crate::table::{self, Column, Layout};
use shmkit::inventory::{self, Kind, ListOptions, Object};

/// List every IPC object on the machine: POSIX and System V shared memory, memfds,
/// semaphores and message queues, with sizes, modes, owners, holders and status.
///
/// Listing has no side effects: nothing is opened, attached or mounted. Holders are the
/// processes that map an object or hold an fd to it, found in /proc/PID/maps and
/// /proc/PID/fd (only processes this user may inspect; root sees all). Memfds are found by
/// that same scan, so listing them always scans.
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
/// msqid/messages/receive_pid/send_time/receive_time.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Only this kind (repeatable): posix-shm, sysv-shm, memfd, sysv-sem, sysv-msg,
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

/// A column of the table: its name for -o and --sort, its header, whether it may be cut,
/// its cell and its sort key.
struct Col {
    name: &'static str,
    header: &'static str,
    flexible: bool,
    cell: fn(&Object, &Cx) -> String,
    /// Numeric sort key, for columns that are numbers or times.
    num: Option<fn(&Object) -> Option<i64>>,
}

const FIXED: bool = false;
const FLEX: bool = true;

impl Col {
    const fn new(
        name: &'static str,
        header: &'static str,
        flexible: bool,
        cell: fn(&Object, &Cx) -> String,
        num: Option<fn(&Object) -> Option<i64>>,
    ) -> Col {
        Col {
            name,
            header,
            flexible,
            cell,
            num,
        }
    }
}

/// What cells need besides the object.
struct Cx {
    bytes: bool,
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn when(t: Option<i64>) -> String {
    t.map_or_else(|| "-".into(), render::time)
}

/// Every column, in the order `--output-all` shows them.
const COLUMNS: &[Col] = &[
    Col::new("kind", "KIND", FIXED, |o, _| o.kind.name().into(), None),
    Col::new(
        "object",
        "OBJECT",
        FLEX,
        |o, _| quote::address(&o.address),
        None,
    ),
    Col::new(
        "key",
        "KEY",
        FIXED,
        |o, _| match o.kind {
            Kind::SysvShm | Kind::SysvSem | Kind::SysvMsg => {
                format!("{:#010x}", o.key.unwrap_or(0) as u32)
            }
            _ => "-".into(),
        },
        Some(|o| o.key.map(|k| k as u32 as i64)),
    ),
    Col::new(
        "id",
        "ID",
        FIXED,
        |o, _| opt(o.id),
        Some(|o| o.id.map(i64::from)),
    ),
    Col::new(
        "size",
        "SIZE",
        FIXED,
        |o, cx| match o.size {
            None => "-".into(),
            Some(s) if cx.bytes => s.to_string(),
            Some(s) => shmkit::size::human(s),
        },
        Some(|o| o.size.map(|s| s as i64)),
    ),
    Col::new(
        "mode",
        "MODE",
        FIXED,
        |o, _| format!("{:04o}", o.mode),
        Some(|o| Some(o.mode.into())),
    ),
    Col::new(
        "owner",
        "OWNER",
        FIXED,
        |o, _| quote::text(&render::user(o.uid)),
        None,
    ),
    Col::new(
        "group",
        "GROUP",
        FIXED,
        |o, _| quote::text(&render::group(o.gid)),
        None,
    ),
    Col::new(
        "cuser",
        "CUSER",
        FIXED,
        |o, _| {
            o.creator_uid
                .map_or("-".into(), |u| quote::text(&render::user(u)))
        },
        None,
    ),
    Col::new(
        "cgroup",
        "CGROUP",
        FIXED,
        |o, _| {
            o.creator_gid
                .map_or("-".into(), |g| quote::text(&render::group(g)))
        },
        None,
    ),
    Col::new(
        "cpid",
        "CPID",
        FIXED,
        |o, _| opt(o.creator_pid),
        Some(|o| o.creator_pid.map(i64::from)),
    ),
    Col::new(
        "lpid",
        "LPID",
        FIXED,
        |o, _| opt(o.last_pid),
        Some(|o| o.last_pid.map(i64::from)),
    ),
    Col::new(
        "nattch",
        "NATTCH",
        FIXED,
        |o, _| opt(o.nattch),
        Some(|o| o.nattch.map(|n| n as i64)),
    ),
    Col::new(
        "holders",
        "HOLDERS",
        FLEX,
        |o, _| render::holders_cell(o),
        Some(|o| o.holders.as_ref().map(|h| h.len() as i64)),
    ),
    Col::new(
        "ctime",
        "CHANGED(UTC)",
        FIXED,
        |o, _| when(o.ctime),
        Some(|o| o.ctime),
    ),
    Col::new(
        "atime",
        "ATTACHED",
        FIXED,
        |o, _| when(o.attach_time),
        Some(|o| o.attach_time),
    ),
    Col::new(
        "dtime",
        "DETACHED",
        FIXED,
        |o, _| when(o.detach_time),
        Some(|o| o.detach_time),
    ),
    Col::new(
        "otime",
        "SEMOP",
        FIXED,
        |o, _| when(o.op_time),
        Some(|o| o.op_time),
    ),
    Col::new(
        "stime",
        "SENT",
        FIXED,
        |o, _| when(o.send_time),
        Some(|o| o.send_time),
    ),
    Col::new(
        "rtime",
        "RECEIVED",
        FIXED,
        |o, _| when(o.receive_time),
        Some(|o| o.receive_time),
    ),
    Col::new(
        "used",
        "USED(UTC)",
        FIXED,
        |o, _| when(o.last_use),
        Some(|o| o.last_use),
    ),
    Col::new(
        "status",
        "STATUS",
        FIXED,
        |o, _| {
            let s = render::status(o);
            if s.is_empty() {
                "-".into()
            } else {
                s.join(",")
            }
        },
        None,
    ),
    Col::new("detail", "DETAIL", FLEX, |o, _| render::detail(o), None),
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
        match c.num {
            // Unknown values last, as ipcs and lsipc put them.
            Some(key) => objects.sort_by_key(|o| (key(o).is_none(), key(o))),
            None => objects.sort_by_cached_key(|o| (c.cell)(o, &cx)),
        }
    }
    if a.json {
        let v: Vec<_> = objects.iter().map(|o| render::object_json(o)).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(code::OK);
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| cols.iter().map(|c| (c.cell)(o, &cx)).collect())
        .collect();
    let header: Vec<Column> = cols
        .iter()
        .map(|c| Column {
            header: c.header,
            flexible: c.flexible,
        })
        .collect();
    let mut layout = Layout::detect();
    layout.no_headings = a.noheadings;
    layout.raw = a.raw;
    print!("{}", table::render(&header, &rows, layout));
    Ok(code::OK)
}

/// Use against the limits, per kind.
fn summary(a: &Args) -> CmdResult {
    let limits = shmkit::limits::read()?;
    let get = |n: &str| limits.iter().find(|l| l.name == n);
    let listing = inventory::list(&ListOptions {
        kinds: a.kinds.clone(),
        holders: false,
    })?;
    let kinds: Vec<Kind> = if a.kinds.is_empty() {
        Kind::ALL.to_vec()
    } else {
        a.kinds.clone()
    };
    let mut rows = Vec::new();
    let mut json = serde_json::Map::new();
    for k in kinds {
        let of: Vec<&Object> = listing.objects.iter().filter(|o| o.kind == k).collect();
        let bytes: u64 = of.iter().filter_map(|o| o.size).sum();
        let mut add = |what: &str, used: u64, limit: Option<&shmkit::limits::Limit>| {
            let lim = limit.and_then(|l| l.value);
            rows.push(vec![
                k.name().to_string(),
                what.to_string(),
                used.to_string(),
                opt(lim),
                match lim {
                    Some(l) if l > 0 => format!("{:.1}%", used as f64 * 100.0 / l as f64),
                    _ => "-".into(),
                },
                limit.map_or("-".into(), |l| l.name.to_string()),
            ]);
            json.entry(k.name().to_string())
                .or_insert_with(|| serde_json::json!({}))
                .as_object_mut()
                .expect("an object")
                .insert(
                    what.replace(' ', "_"),
                    serde_json::json!({ "used": used, "limit": lim, "limit_name": limit.map(|l| l.name) }),
                );
        };
        match k {
            Kind::SysvShm => {
                add("segments", of.len() as u64, get("shmmni"));
                let page = rustix::param::page_size() as u64;
                let pages: u64 = of
                    .iter()
                    .filter_map(|o| o.size)
                    .map(|s| s.div_ceil(page))
                    .sum();
                add("pages", pages, get("shmall"));
            }
            Kind::SysvSem => {
                add("sets", of.len() as u64, get("semmni"));
                let sems: u64 = of.iter().filter_map(|o| o.nsems).map(u64::from).sum();
                add("semaphores", sems, get("semmns"));
            }
            Kind::SysvMsg => {
                add("queues", of.len() as u64, get("msgmni"));
                add("bytes queued", bytes, None);
            }
            Kind::PosixShm => {
                add("objects", of.len() as u64, None);
                add("bytes", bytes, get("dev_shm_size"));
            }
            Kind::PosixMq => {
                add("queues", of.len() as u64, get("queues_max"));
            }
            Kind::PosixSem | Kind::Memfd => add("objects", of.len() as u64, None),
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
        return Ok(code::OK);
    }
    let header: Vec<Column> = ["KIND", "RESOURCE", "USED", "LIMIT", "USE%", "LIMIT NAME"]
        .into_iter()
        .map(|h| Column {
            header: h,
            flexible: false,
        })
        .collect();
    let mut layout = Layout::detect();
    layout.no_headings = a.noheadings;
    layout.raw = a.raw;
    print!("{}", table::render(&header, &rows, layout));
    Ok(code::OK)
}
