//! `shmkit limits`: every IPC limit, what it means, what is in use, how to change it.

use crate::fail::{code, CmdResult};
use crate::table::{self, Column, Layout};
use serde_json::json;

/// Every IPC limit with its value, unit, meaning, where it was read, the current usage
/// against it and how to change it: System V shared memory (shmmax, shmall, shmmni, shmmin,
/// shmseg, shm_rmid_forced), messages (msgmax, msgmnb, msgmni), semaphores (semmsl,
/// semmns, semopm, semmni: the four fields of kernel.sem), the /dev/shm tmpfs, and POSIX
/// message queues.
///
/// JSON: an object keyed by limit name, each with value, unit, meaning, source, usage,
/// change, and bytes for limits counted in pages.
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Print a JSON object keyed by limit name.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CmdResult {
    let limits = shmkit::limits::read()?;
    if a.json {
        let m: serde_json::Map<String, serde_json::Value> = limits
            .iter()
            .map(|l| {
                (
                    l.name.to_string(),
                    json!({
                        "value": l.value, "unit": l.unit, "meaning": l.meaning, "source": l.source,
                        "usage": l.usage, "bytes": l.bytes, "change": l.change,
                    }),
                )
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&m).expect("json"));
        return Ok(code::OK);
    }
    let rows: Vec<Vec<String>> = limits
        .iter()
        .map(|l| {
            let value = match (l.value, l.bytes) {
                (Some(v), Some(b)) => format!("{v} {} ({})", l.unit, shmkit::size::human(b)),
                (Some(v), None) if l.unit == "bytes" && v >= 1024 => {
                    format!("{v} ({})", shmkit::size::human(v))
                }
                (Some(v), None) => format!("{v} {}", if l.unit == "bytes" { "" } else { l.unit })
                    .trim_end()
                    .to_string(),
                (None, _) => "unreadable".into(),
            };
            vec![
                l.name.to_string(),
                value,
                l.usage.map_or("-".into(), |u| u.to_string()),
                l.meaning.to_string(),
                l.source.clone(),
            ]
        })
        .collect();
    let header = Column::fixed(&["LIMIT", "VALUE", "IN USE", "MEANING", "SOURCE"]);
    print!("{}", table::render(&header, &rows, Layout::detect()));
    println!("\nTo change a limit:");
    let mut seen = Vec::new();
    for l in &limits {
        if !seen.contains(&l.change) {
            println!("  {}: {}", l.name, l.change);
            seen.push(l.change.clone());
        }
    }
    Ok(code::OK)
}
