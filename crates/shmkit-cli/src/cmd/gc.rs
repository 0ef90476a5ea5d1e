//! `shmkit gc`: find and remove orphaned objects.

use crate::fail::{code, CmdResult, Fail};
use crate::render;
use shmkit::inventory::{self, Kind, ListOptions, Object};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Find orphans and remove them: POSIX shared memory and named semaphores that no process
/// maps or holds, and System V segments with no attachment whose creator is gone. Each is
/// printed with the reason; without --dry-run exactly the printed objects are removed (each
/// is checked again just before its removal).
///
/// Only the calling user's objects are considered; root may add --all-users. Processes that
/// cannot be inspected are named in a warning: what they hold is invisible. For a user other
/// than root, an object that other users may open is then skipped (another user's process
/// might hold it).
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Print what would be removed, remove nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Only objects unused for at least this long (90s, 15m, 2h, 7d), by their last change
    /// or use.
    #[arg(long, value_parser = crate::parse::duration)]
    older_than: Option<Duration>,
    /// Only this kind (repeatable): posix-shm, posix-sem, sysv-shm.
    #[arg(long = "kind", short = 'k', value_parser = crate::parse::kind)]
    kinds: Vec<Kind>,
    /// Only objects whose address matches (repeatable): exact, or a prefix ending in `*`, as
    /// in `--match '/myapp-*'` or `--match 'shm:*'`.
    #[arg(long = "match", short = 'm', value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Consider every user's objects (root only).
    #[arg(long)]
    all_users: bool,
    /// Print a JSON array of {object, kind, reason, action}.
    #[arg(long)]
    json: bool,
}

const COLLECTABLE: [Kind; 3] = [Kind::PosixShm, Kind::PosixSem, Kind::SysvShm];

pub fn run(a: Args) -> CmdResult {
    for k in &a.kinds {
        if !COLLECTABLE.contains(k) {
            return Err(Fail::usage(format!(
                "gc collects posix-shm, posix-sem and sysv-shm; a {k} is never an orphan by itself"
            )));
        }
    }
    let euid = rustix::process::geteuid();
    if a.all_users && !euid.is_root() {
        return Err(Fail {
            code: crate::fail::code::DENIED,
            message: "--all-users needs root".into(),
        });
    }
    let kinds = if a.kinds.is_empty() {
        COLLECTABLE.to_vec()
    } else {
        a.kinds.clone()
    };
    let listing = inventory::list(&ListOptions {
        kinds,
        holders: true,
    })?;
    let blind = !listing.unreadable_processes.is_empty();
    if blind {
        let shown: Vec<String> = listing
            .unreadable_processes
            .iter()
            .map(|(p, c)| format!("{p} ({c})"))
            .collect();
        eprintln!(
            "shmkit: warning: {} processes could not be inspected: {}; an object only they hold looks orphaned",
            shown.len(),
            shown.join(", ")
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut picked: Vec<(&Object, String)> = Vec::new();
    let mut skipped = Vec::new();
    for o in &listing.objects {
        let Some(reason) = o.orphan_reason() else {
            continue;
        };
        if !a.all_users && o.uid != euid.as_raw() {
            continue;
        }
        let addr = o.address.to_string();
        if !a.patterns.is_empty()
            && !a.patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => addr.starts_with(prefix),
                None => addr == *p,
            })
        {
            continue;
        }
        if let (Some(age), Some(t)) = (a.older_than, o.last_use) {
            if now - t < age.as_secs() as i64 {
                continue;
            }
        }
        let others_may_open = o.mode & 0o066 != 0;
        if o.kind != Kind::SysvShm && blind && others_may_open && !euid.is_root() {
            skipped.push((
                o,
                "other users may open it and some of their processes could not be inspected",
            ));
            continue;
        }
        let age = o
            .last_use
            .map(|t| format!(", unused since {} UTC", render::time(t)))
            .unwrap_or_default();
        picked.push((o, format!("{reason}{age}")));
    }
    let mut results = Vec::new();
    let mut failed = false;
    for (o, reason) in &picked {
        let action = if a.dry_run {
            "would remove".to_string()
        } else {
            match recheck_and_remove(o) {
                Ok(()) => "removed".to_string(),
                Err(e) => {
                    failed = true;
                    format!("kept: {e}")
                }
            }
        };
        if !a.json {
            println!("{action} {} ({}): {reason}", o.address, o.kind);
        }
        results.push(serde_json::json!({
            "object": o.address.to_string(), "kind": o.kind.name(), "reason": reason, "action": action,
        }));
    }
    for (o, why) in &skipped {
        if !a.json {
            println!("skipped {} ({}): {why}", o.address, o.kind);
        }
        results.push(serde_json::json!({
            "object": o.address.to_string(), "kind": o.kind.name(), "reason": why, "action": "skipped",
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&results).expect("json"));
    } else if picked.is_empty() && skipped.is_empty() {
        println!("no orphans");
    }
    Ok(if failed { code::ERROR } else { code::OK })
}

/// The object may have been taken up since the scan: look again, and remove it only if it is
/// the same object and still an orphan.
fn recheck_and_remove(o: &Object) -> Result<(), String> {
    let now = inventory::find(&o.address, true).map_err(|e| e.to_string())?;
    if now.inode != o.inode {
        return Err("replaced by another object of the same name since the scan".into());
    }
    if now.orphan_reason().is_none() {
        return Err("in use again".into());
    }
    inventory::remove(&o.address).map_err(|e| e.to_string())
}
