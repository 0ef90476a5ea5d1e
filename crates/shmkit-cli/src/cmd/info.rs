//! `shmkit info`: everything known about one object.

use crate::fail::{code, CmdResult};
use crate::render;
use shmkit::inventory::{self, Address};

/// Everything known about one object, including each holder's pid, command name and whether
/// it maps the object or only holds an fd to it.
#[derive(clap::Args)]
pub struct Args {
    /// The object: /NAME, shm:ID, key:KEY, memfd:PID:FD, sem:ID, msg:ID, psem:/NAME, mq:/NAME.
    #[arg(value_parser = crate::parse::address)]
    object: Address,
    /// Print a JSON object (the same fields as `shmkit ls --json`).
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CmdResult {
    let o = inventory::find(&a.object, true)?;
    let v = render::object_json(&o);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(code::OK);
    }
    let mut lines: Vec<(String, String)> = Vec::new();
    for (k, val) in v.as_object().expect("an object") {
        if k == "holders" || k == "holder_details" || val.is_null() {
            continue;
        }
        let text = match val {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) if a.is_empty() => continue,
            other => other.to_string(),
        };
        let text = match k.as_str() {
            "ctime" | "last_use" => val
                .as_i64()
                .map(|t| format!("{} UTC ({t})", render::time(t)))
                .unwrap_or(text),
            _ => text,
        };
        lines.push((k.clone(), text));
    }
    let w = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, t) in &lines {
        println!("{k:<w$}  {t}");
    }
    let holders = o.holders.unwrap_or_default();
    println!(
        "{:<w$}  {}",
        "holders",
        if holders.is_empty() {
            "none".to_string()
        } else {
            holders.len().to_string()
        }
    );
    for h in holders {
        let how = match (h.maps, h.fds.is_empty()) {
            (true, true) => "maps it".to_string(),
            (true, false) => format!("maps it, holds fd {}", join(&h.fds)),
            (false, _) => format!("holds fd {} (not mapped)", join(&h.fds)),
        };
        println!("  pid {:<8} {:<16} {how}", h.pid, h.command);
    }
    Ok(code::OK)
}

fn join(fds: &[i32]) -> String {
    fds.iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
