//! `shmkit ls`: every IPC object of every kind, one table.

use crate::fail::{code, CmdResult};
use crate::render;
use shmkit::inventory::{self, Kind, ListOptions};

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
/// with --holders).
///
/// JSON: an array of objects with kind, object, size, mode ("0600"), uid, owner, gid,
/// ctime, last_use (seconds since the epoch), status, orphan_reason, holders (array of pids,
/// or null when not scanned) and holder_details; System V objects add key ("0x..."), id,
/// creator_pid, last_pid, and shmid/nattch, semid/nsems/values/waiters or msqid/messages.
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
}

pub fn run(a: Args) -> CmdResult {
    let listing = inventory::list(&ListOptions {
        kinds: a.kinds,
        holders: a.holders,
    })?;
    for n in &listing.notes {
        eprintln!("shmkit: note: {n}");
    }
    if a.json {
        let v: Vec<_> = listing.objects.iter().map(render::object_json).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(code::OK);
    }
    let rows: Vec<Vec<String>> = listing
        .objects
        .iter()
        .map(|o| {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            vec![
                o.kind.name().to_string(),
                o.address.to_string(),
                opt(o.size.map(|s| s.to_string())),
                format!("{:04o}", o.mode),
                render::user(o.uid),
                opt(o.creator_pid.map(|p| p.to_string())),
                opt(o.nattch.map(|n| n.to_string())),
                match &o.holders {
                    None => "-".into(),
                    Some(h) if h.is_empty() => "none".into(),
                    Some(h) => h
                        .iter()
                        .map(|h| format!("{}({})", h.pid, h.command))
                        .collect::<Vec<_>>()
                        .join(","),
                },
                opt(o.ctime.map(render::time)),
                render::status(o).join(","),
                render::detail(o),
            ]
        })
        .collect();
    print!(
        "{}",
        render::plain_table(
            &[
                "KIND",
                "OBJECT",
                "SIZE",
                "MODE",
                "OWNER",
                "CPID",
                "NATTCH",
                "HOLDERS",
                "CHANGED(UTC)",
                "STATUS",
                "DETAIL"
            ],
            &rows
        )
    );
    Ok(code::OK)
}
