//! `shmkit bridge status`: the counters of the bridges on this machine, from their stats
//! segments.

use super::stats::{self, Snapshot, COUNTERS};
use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use crate::table::{self, Column, Layout};

/// Show the bridges here: whether each runs, its peers and its routes' counters.
///
/// Per route: forwarded, ingested, dropped (full local channel), oversize, overruns (lapped
/// in a broadcast channel), unmatched (published with nobody subscribed), gaps, duplicates,
/// looped, garbage; per bridge: the peers linked, links lost and reconnects. A bridge that
/// died without removing its stats (killed) shows as NOT RUNNING; one that runs but has not
/// written them for 2 s (stopped, stuck) as STUCK.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// Only this bridge (its --name).
    name: Option<String>,
    /// Print JSON (an array of bridges).
    #[arg(long)]
    json: bool,
}

fn zid(z: [u8; 16]) -> String {
    format!("{:x}", u128::from_le_bytes(z))
}

fn json(s: &Snapshot) -> serde_json::Value {
    let routes: Vec<serde_json::Value> = s
        .routes
        .iter()
        .map(|r| {
            let mut v = serde_json::json!({
                "direction": r.desc.direction.name(),
                "channel": r.desc.channel,
                "key": r.desc.key,
                "on_full": if r.desc.drop { "drop" } else { "block" },
            });
            for (n, c) in COUNTERS.iter().zip(r.counters) {
                v[*n] = c.into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "name": s.name,
        "pid": s.pid,
        "running": s.running(),
        "stuck": s.stuck(),
        "started": s.started,
        "heartbeat_age_ms": s.age_ms,
        "zenoh_id": zid(s.zid),
        "peers": { "linked": s.linked, "lost": s.lost, "reconnects": s.reconnects },
        "routes": routes,
    })
}

fn text(s: &Snapshot) -> String {
    let heard = if s.age_ms == u64::MAX {
        "at a time in the future".to_string()
    } else {
        format!("{} s ago", s.age_ms / 1000)
    };
    let state = if s.stuck() {
        format!(
            "STUCK: running (pid {} holds its stats) but last wrote them {heard}",
            s.pid
        )
    } else if s.running() {
        format!("running, pid {}", s.pid)
    } else {
        format!(
            "NOT RUNNING (was pid {}, last heard {heard}); remove its stats with `shmkit rm {}`",
            s.pid,
            stats::segment_name(&s.name)
        )
    };
    let mut out = format!(
        "bridge {}: {state}; zenoh id {}, started {}\n  peers: {} linked, {} links lost, {} \
         reconnects\n",
        quote::text(&s.name),
        zid(s.zid),
        crate::render::time(s.started as i64),
        s.linked,
        s.lost,
        s.reconnects
    );
    let mut cols = Column::fixed(&["DIR", "CHANNEL", "KEY", "ON-FULL"]);
    cols[1].flexible = true;
    cols[2].flexible = true;
    cols.extend(Column::fixed(&[
        "FORWARDED",
        "INGESTED",
        "DROPPED",
        "OVERSIZE",
        "OVERRUNS",
        "UNMATCHED",
        "GAPS",
        "DUPLICATES",
        "LOOPED",
        "GARBAGE",
    ]));
    let rows: Vec<Vec<String>> = s
        .routes
        .iter()
        .map(|r| {
            let mut row = vec![
                r.desc.direction.name().to_string(),
                quote::text(&r.desc.channel),
                quote::text(&r.desc.key),
                match (r.desc.direction, r.desc.drop) {
                    (stats::Direction::Out, _) => "-".into(),
                    (_, true) => "drop".into(),
                    (_, false) => "block".into(),
                },
            ];
            row.extend(r.counters.iter().map(u64::to_string));
            row
        })
        .collect();
    for line in table::render(&cols, &rows, Layout::detect()).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

pub fn run(a: StatusArgs) -> CmdResult {
    let names = match &a.name {
        Some(n) => {
            stats::check_name(n).map_err(Fail::usage)?;
            vec![n.clone()]
        }
        None => stats::names()?,
    };
    let mut snaps = Vec::new();
    for n in &names {
        match stats::read(n) {
            Ok(s) => snaps.push(s),
            Err(e) if a.name.is_some() => return Err(e),
            // Gone between the listing and the look: it stopped.
            Err(e) if e.code == code::NOT_FOUND => {}
            Err(e) => eprintln!("shmkit: warning: {}", quote::text(&e.message)),
        }
    }
    if a.json {
        let all: Vec<_> = snaps.iter().map(json).collect();
        println!("{}", serde_json::to_string_pretty(&all).expect("json"));
    } else if snaps.is_empty() {
        println!("no bridge here");
    } else {
        let all: Vec<String> = snaps.iter().map(text).collect();
        print!("{}", all.join("\n"));
    }
    Ok(code::OK)
}
