//! `shmkit info`: everything known about one object.

use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use crate::render;
use shmkit::inventory::{self, Address, Kind, Orphan};
use shmkit::size::count;
use std::ffi::OsStr;

/// Everything known about one object, including each holder's pid, command name and whether
/// it maps the object or only holds an fd to it.
#[derive(clap::Args)]
pub struct Args {
    /// The object: /NAME, shm:ID, key:KEY, memfd:PID:FD, sem:ID, msg:ID, psem:/NAME, mq:/NAME.
    #[arg(value_parser = crate::parse::address())]
    object: Address,
    /// Print a JSON object (the same fields as `shmkit ls --json`).
    #[arg(long)]
    json: bool,
}

/// The fields of one group: label and value (`None`: not shown).
type Fields = Vec<(&'static str, Option<String>)>;

pub fn run(a: Args) -> CmdResult {
    let o = inventory::find(&a.object, true).map_err(Fail::about(&a.object))?;
    if o.holders.is_some() && o.uninspected > 0 {
        eprintln!(
            "shmkit: note: {}",
            inventory::uninspected_note(o.uninspected)
        );
    }
    if a.json {
        let v = render::object_json(&o);
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(code::OK);
    }
    let user = |u: u32| format!("{} (uid {u})", quote::text(&render::user(u)));
    let group = |g: u32| format!("{} (gid {g})", quote::text(&render::group(g)));
    let when = |t: Option<i64>| t.map(|t| format!("{} UTC ({t})", render::time(t)));
    let pid = |p: Option<i32>| p.filter(|p| *p > 0).map(|p| p.to_string());
    let sysv = matches!(o.kind, Kind::SysvShm | Kind::SysvSem | Kind::SysvMsg);
    let groups: Vec<(&str, Fields)> = vec![
        (
            "identity",
            vec![
                ("kind", Some(o.kind.name().to_string())),
                ("object", Some(quote::address(&o.address))),
                (
                    "key",
                    sysv.then(|| format!("{:#010x}", o.key.unwrap_or(0) as u32)),
                ),
                ("id", o.id.map(|i| i.to_string())),
                (
                    "name",
                    o.name.as_deref().map(|n| quote::name(OsStr::new(n))),
                ),
                ("inode", o.inode.map(|i| i.to_string())),
                ("flavor", o.channel.as_ref().map(|c| c.flavor.clone())),
                (
                    "lives in",
                    o.channel.as_ref().map(|c| c.backing.name().to_string()),
                ),
            ],
        ),
        (
            "size",
            vec![
                (
                    if matches!(o.kind, Kind::SysvMsg | Kind::PosixMq) {
                        "bytes queued"
                    } else {
                        "size"
                    },
                    o.size.map(|s| {
                        format!("{} ({})", count(s, "byte", "bytes"), shmkit::size::human(s))
                    }),
                ),
                ("semaphores", o.nsems.map(|n| n.to_string())),
                ("values", o.values.as_ref().map(|v| format!("{v:?}"))),
                ("waiters", o.waiters.map(|w| w.to_string())),
                (
                    "messages",
                    o.messages.map(|m| match o.max_messages {
                        Some(max) => format!("{m} of {max}"),
                        None => m.to_string(),
                    }),
                ),
                (
                    "message size",
                    o.message_size
                        .map(|m| format!("at most {}", count(m, "byte", "bytes"))),
                ),
                ("nattch", o.nattch.map(|n| n.to_string())),
            ],
        ),
        (
            "owner",
            vec![
                ("mode", Some(format!("{:04o}", o.mode))),
                ("owner", Some(user(o.uid))),
                ("group", Some(group(o.gid))),
                ("creator", o.creator_uid.map(user)),
                ("creator group", o.creator_gid.map(group)),
                ("creator pid", pid(o.creator_pid)),
                (
                    match o.kind {
                        Kind::SysvMsg => "last sender",
                        Kind::SysvSem => "last semop pid",
                        _ => "last pid",
                    },
                    pid(o.last_pid),
                ),
                ("last receiver", pid(o.receive_pid)),
            ],
        ),
        (
            "times",
            vec![
                ("changed", when(o.ctime)),
                ("attached", when(o.attach_time)),
                ("detached", when(o.detach_time)),
                ("last semop", when(o.op_time)),
                ("last send", when(o.send_time)),
                ("last receive", when(o.receive_time)),
                ("last use", when(o.last_use)),
            ],
        ),
    ];
    let w = groups
        .iter()
        .flat_map(|(_, f)| f.iter().map(|(k, _)| k.len()))
        .max()
        .unwrap_or(0);
    for (title, fields) in &groups {
        let shown: Vec<_> = fields
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_ref()?)))
            .collect();
        if shown.is_empty() {
            continue;
        }
        println!("{title}:");
        for (k, v) in shown {
            println!("  {k:<w$}  {v}");
        }
    }
    println!("use:");
    let status = render::status(&o);
    if !status.is_empty() {
        println!("  {:<w$}  {}", "status", status.join(","));
    }
    match o.orphan() {
        Orphan::Yes(r) | Orphan::Unknown(r) => println!("  {:<w$}  {r}", "why"),
        Orphan::No => {}
    }
    match &o.holders {
        None => println!(
            "  {:<w$}  not visible for a {} (used by id, through no fd or mapping)",
            "holders", o.kind
        ),
        Some(h) if h.is_empty() && o.uninspected > 0 => println!(
            "  {:<w$}  none seen ({} not inspected)",
            "holders",
            count(o.uninspected as u64, "process", "processes")
        ),
        Some(h) if h.is_empty() => println!("  {:<w$}  none", "holders"),
        Some(h) => {
            println!("  {:<w$}  {}", "holders", h.len());
            for h in h {
                let how = match (h.maps, h.fds.is_empty()) {
                    (true, true) => "maps it".to_string(),
                    (true, false) => format!("maps it, holds fd {}", join(&h.fds)),
                    (false, _) => format!("holds fd {} (not mapped)", join(&h.fds)),
                };
                println!("    pid {:<8} {:<16} {how}", h.pid, quote::text(&h.command));
            }
        }
    }
    Ok(code::OK)
}

fn join(fds: &[i32]) -> String {
    fds.iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
