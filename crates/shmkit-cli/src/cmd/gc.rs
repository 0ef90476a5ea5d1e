//! `shmkit gc`: find and remove orphaned objects.

use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use crate::render;
use shmkit::inventory::{self, Kind, ListOptions, Object, Orphan};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Find orphans and remove them: POSIX shared memory (channels included) and named
/// semaphores that no process maps or holds, and System V segments with no attachment whose
/// creator is gone. Each is printed with the reason; without --dry-run exactly the printed
/// objects are removed (each is checked again just before its removal).
///
/// An object is an orphan only if every process that could hold it was inspected: when some
/// could not be (another user's processes, without root; processes that forbid inspection),
/// a POSIX object none of the inspected ones holds is skipped, with the reason. Give
/// --ignore-uninspected to vouch that those processes hold nothing.
///
/// Objects changed or used in the last 60 seconds are never removed (System V and POSIX
/// objects are meant to outlive their creators: what `ipcmk` or `shmkit mk` just made is not
/// garbage); --older-than sets another age, --older-than 0 none.
///
/// A bare `shmkit gc` (no --match, --kind or --older-than) lists what it would remove and asks
/// before removing on a terminal; without a terminal it removes nothing unless --yes is given.
///
/// Only the calling user's objects are considered; root may add --all-users.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Print what would be removed, remove nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
    /// Only objects unused for at least this long (90s, 15m, 2h, 7d), by their last change
    /// or use (default 60s; 0 for no minimum).
    #[arg(long, value_parser = crate::parse::duration, allow_hyphen_values = true)]
    older_than: Option<Duration>,
    /// Only this kind (repeatable): posix-shm, channel, posix-sem, sysv-shm. A channel is
    /// judged and removed as the POSIX segment it lives in; posix-shm alone leaves channels.
    /// (Which segments are channels is read from their first bytes: a segment this user may
    /// not read is posix-shm.)
    #[arg(long = "kind", short = 'k', value_parser = crate::parse::kind)]
    kinds: Vec<Kind>,
    /// Only objects whose address matches (repeatable): exact, or a prefix ending in `*`, as
    /// in `--match '/myapp-*'` or `--match 'shm:*'`.
    #[arg(long = "match", short = 'm', value_name = "PATTERN")]
    patterns: Vec<String>,
    /// Consider every user's objects (root only).
    #[arg(long)]
    all_users: bool,
    /// Remove without asking, also when not on a terminal.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Treat the processes that could not be inspected as holding nothing (you vouch for
    /// them): without it, a POSIX object only they could hold is skipped.
    #[arg(long)]
    ignore_uninspected: bool,
    /// Print a JSON array of {object, kind, reason, action}.
    #[arg(long)]
    json: bool,
}

const COLLECTABLE: [Kind; 4] = [Kind::PosixShm, Kind::Channel, Kind::PosixSem, Kind::SysvShm];

/// What is younger than this is never garbage, unless --older-than says otherwise.
const MIN_AGE: Duration = Duration::from_secs(60);

pub fn run(a: Args) -> CmdResult {
    if let Some(p) = a
        .patterns
        .iter()
        .find(|p| p.is_empty() || p.as_str() == "*")
    {
        return Err(Fail::usage(if p.is_empty() {
            "--match '' matches nothing; give an address or a prefix ending in '*' ('/myapp-*')"
        } else {
            "--match '*' is every object: leave --match out (a bare gc asks before removing)"
        }));
    }
    let bare = a.patterns.is_empty() && a.kinds.is_empty() && a.older_than.is_none();
    for k in &a.kinds {
        if !COLLECTABLE.contains(k) {
            let names: Vec<_> = COLLECTABLE.iter().map(|k| k.name()).collect();
            return Err(Fail::usage(format!(
                "gc collects {}; a {k} is never an orphan by itself",
                names.join(", ")
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
    let uninspected = listing.unreadable_processes.len();
    if uninspected > 0 {
        eprintln!(
            "shmkit: warning: {} could not be inspected{}",
            shmkit::size::count(uninspected as u64, "process", "processes"),
            if a.ignore_uninspected {
                "; --ignore-uninspected: taken to hold nothing"
            } else {
                "; POSIX objects they might hold are skipped (--ignore-uninspected to vouch for them)"
            }
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let min_age = a.older_than.unwrap_or(MIN_AGE).as_secs() as i64;
    let mut picked: Vec<(&Object, String)> = Vec::new();
    let mut skipped: Vec<(&Object, String)> = Vec::new();
    for o in &listing.objects {
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
        let reason = match judge(o, a.ignore_uninspected) {
            Orphan::No => continue,
            Orphan::Yes(r) => r,
            Orphan::Unknown(why) => {
                skipped.push((o, why));
                continue;
            }
        };
        // Without a time there is no age: such an object is not old enough to be sure of.
        let age = o.last_use.map(|t| now - t);
        if age.is_none_or(|age| age < min_age) {
            if a.older_than.is_none() {
                skipped.push((
                    o,
                    format!(
                        "{reason}, but used or changed {} (objects younger than {} s are kept; --older-than 0 to include them)",
                        age.map_or("at an unknown time".into(), |s| format!("{s} s ago")),
                        MIN_AGE.as_secs()
                    ),
                ));
            }
            continue;
        }
        let age = o
            .last_use
            .map(|t| format!(", unused since {} UTC", render::time(t)))
            .unwrap_or_default();
        picked.push((o, format!("{reason}{age}")));
    }
    // A bare gc removes only with consent: asked on a terminal, --yes elsewhere.
    let mut dry_run = a.dry_run;
    if bare && !a.dry_run && !a.yes && !picked.is_empty() {
        if rustix::termios::isatty(std::io::stdin()) && !a.json {
            for (o, reason) in &picked {
                println!(
                    "would remove {} ({}): {reason}",
                    quote::address(&o.address),
                    render::kind_long(o)
                );
            }
            eprint!(
                "shmkit: remove these {}? [y/N] ",
                shmkit::size::count(picked.len() as u64, "object", "objects")
            );
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
                eprintln!("shmkit: nothing was removed");
                return Ok(code::OK);
            }
        } else {
            eprintln!(
                "shmkit: a bare gc removes nothing without a terminal to ask on: give --yes, or \
                 narrow it with --match, --kind or --older-than; listing only"
            );
            dry_run = true;
        }
    }
    let mut results = Vec::new();
    let mut failed = false;
    for (o, reason) in &picked {
        let action = if dry_run {
            "would remove".to_string()
        } else {
            match recheck_and_remove(o, a.ignore_uninspected) {
                Ok(()) => "removed".to_string(),
                Err(e) => {
                    failed = true;
                    format!("kept: {e}")
                }
            }
        };
        if !a.json {
            println!(
                "{action} {} ({}): {reason}",
                quote::address(&o.address),
                render::kind_long(o)
            );
        }
        results.push(serde_json::json!({
            "object": o.address.to_string(), "kind": o.kind.name(), "reason": reason, "action": action,
        }));
    }
    for (o, why) in &skipped {
        if !a.json {
            println!(
                "skipped {} ({}): {why}",
                quote::address(&o.address),
                render::kind_long(o)
            );
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

/// Whether `o` is an orphan, with the uninspected processes vouched for if asked.
fn judge(o: &Object, ignore_uninspected: bool) -> Orphan {
    if ignore_uninspected {
        o.orphan_vouching()
    } else {
        o.orphan()
    }
}

/// The object may have been taken up since the scan: look again, and remove it only if it is
/// the same object and still an orphan.
fn recheck_and_remove(o: &Object, ignore_uninspected: bool) -> Result<(), String> {
    let now = inventory::find(&o.address, true).map_err(|e| e.to_string())?;
    if now.inode != o.inode {
        return Err("replaced by another object of the same name since the scan".into());
    }
    if !matches!(judge(&now, ignore_uninspected), Orphan::Yes(_)) {
        return Err("in use again, or no longer known to be unused".into());
    }
    inventory::remove(&o.address).map_err(|e| e.to_string())
}
