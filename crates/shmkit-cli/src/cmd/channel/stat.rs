//! `shmkit channel stat`: what a channel holds and who holds its ends, for each kind.

use super::{end_error, open, StatArgs};
use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use shmkit::channel::{broadcast, mpsc, spsc, Flavor, Holder};
use shmkit::size::human;
use shmkit::PosixShm;

fn holder_json(h: Holder) -> serde_json::Value {
    match h {
        Holder::Never => serde_json::json!({ "state": "never held" }),
        Holder::Alive(pid) => serde_json::json!({ "state": "held", "pid": pid, "alive": true }),
        Holder::Dead(pid) => serde_json::json!({ "state": "held", "pid": pid, "alive": false }),
        Holder::Closed => serde_json::json!({ "state": "closed" }),
    }
}

fn holder_text(h: Holder) -> String {
    match h {
        Holder::Never => "never held".into(),
        Holder::Alive(pid) => format!("pid {pid} (alive)"),
        Holder::Dead(pid) => format!("pid {pid} (dead: its end can be taken over)"),
        Holder::Closed => "closed (let go of)".into(),
    }
}

fn waiting(yes: bool, what: &str) -> &str {
    if yes {
        what
    } else {
        ""
    }
}

pub fn run(a: StatArgs) -> CmdResult {
    let seg = open(&a.name)?;
    let flavor = super::flavor(&seg)?;
    let shown = quote::name(std::ffi::OsStr::new(seg.name()));
    let v = match flavor {
        Flavor::Spsc => spsc_stat(&seg, &shown, a.json)?,
        Flavor::Broadcast => broadcast_stat(&seg, &shown, a.json)?,
        Flavor::Mpsc => mpsc_stat(&seg, &shown, a.json)?,
    };
    if let Some(mut v) = v {
        v["name"] = seg.name().into();
        v["kind"] = flavor.name().into();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    }
    Ok(code::OK)
}

fn spsc_stat(seg: &PosixShm, shown: &str, json: bool) -> Result<Option<serde_json::Value>, Fail> {
    let s = spsc::stat(seg, 0).map_err(end_error(seg))?;
    if json {
        return Ok(Some(serde_json::json!({
            "capacity": s.capacity,
            "max_message": s.max_message,
            "head": s.head,
            "tail": s.tail,
            "used": s.used,
            "generation": s.generation,
            "producer": holder_json(s.producer),
            "consumer": holder_json(s.consumer),
            "producer_waiting": s.parked.0,
            "consumer_waiting": s.parked.1,
        })));
    }
    println!("channel    {shown} (spsc)");
    println!(
        "capacity   {} (messages up to {})",
        human(s.capacity),
        human(s.max_message as u64)
    );
    match s.used {
        Some(u) => println!(
            "fill       {} of {} ({:.0}%), published {} bytes, given back {}",
            human(u),
            human(s.capacity),
            100.0 * u as f64 / s.capacity as f64,
            s.head,
            s.tail
        ),
        None => println!(
            "fill       unknown: the positions make no sense (head {}, tail {}): the channel is corrupt",
            s.head, s.tail
        ),
    }
    println!(
        "producer   {}{}",
        holder_text(s.producer),
        waiting(s.parked.0, ", waiting for room")
    );
    println!(
        "consumer   {}{}",
        holder_text(s.consumer),
        waiting(s.parked.1, ", waiting for messages")
    );
    Ok(None)
}

fn broadcast_stat(
    seg: &PosixShm,
    shown: &str,
    json: bool,
) -> Result<Option<serde_json::Value>, Fail> {
    let s = broadcast::stat(seg, 0).map_err(end_error(seg))?;
    if json {
        let consumers: Vec<_> = s
            .consumers
            .iter()
            .map(|c| {
                serde_json::json!({
                    "place": c.place,
                    "holder": holder_json(c.holder),
                    "cursor": c.cursor,
                    "behind": c.behind,
                    "overruns_lost": c.lost,
                })
            })
            .collect();
        return Ok(Some(serde_json::json!({
            "slots": s.slots,
            "slot_size": s.slot_size,
            "capacity": s.slots * s.slot_size as u64,
            "max_message": s.max_message,
            "max_consumers": s.max_consumers,
            "published": s.published,
            "producer": holder_json(s.producer),
            "consumers": consumers,
            "consumer_waiting": s.parked,
        })));
    }
    println!("channel    {shown} (broadcast)");
    println!(
        "slots      {} of {} (messages up to {}), {} consumer places",
        s.slots,
        human(s.slot_size as u64),
        human(s.max_message as u64),
        s.max_consumers
    );
    println!("published  {} messages", s.published);
    println!("producer   {}", holder_text(s.producer));
    if s.consumers.is_empty() {
        println!("consumers  none yet");
    }
    for c in &s.consumers {
        println!(
            "consumer {:<2}{}, at message {} ({} behind{}), {} lost to overruns",
            c.place,
            holder_text(c.holder),
            c.cursor,
            c.behind,
            if c.behind > s.slots {
                ": more than a lap, so overrun"
            } else {
                ""
            },
            c.lost
        );
    }
    if s.parked {
        println!("waiting    a consumer waits for messages");
    }
    Ok(None)
}

fn mpsc_stat(seg: &PosixShm, shown: &str, json: bool) -> Result<Option<serde_json::Value>, Fail> {
    let s = mpsc::stat(seg, 0).map_err(end_error(seg))?;
    if json {
        let producers: Vec<_> = s
            .producers
            .iter()
            .map(|(place, h)| serde_json::json!({ "place": place, "holder": holder_json(*h) }))
            .collect();
        return Ok(Some(serde_json::json!({
            "slots": s.slots,
            "slot_size": s.slot_size,
            "capacity": s.slots * s.slot_size as u64,
            "max_message": s.max_message,
            "max_producers": s.max_producers,
            "tail": s.tail,
            "head": s.head,
            "used": s.used,
            "skipped": s.skipped,
            "consumer": holder_json(s.consumer),
            "producers": producers,
            "producer_waiting": s.parked.0,
            "consumer_waiting": s.parked.1,
        })));
    }
    println!("channel    {shown} (mpsc)");
    println!(
        "slots      {} of {} (messages up to {}), {} producer places",
        s.slots,
        human(s.slot_size as u64),
        human(s.max_message as u64),
        s.max_producers
    );
    match s.used {
        Some(u) => println!(
            "fill       {u} of {} messages (claimed {}, read {}), {} skipped (their producer died mid-write)",
            s.slots, s.tail, s.head, s.skipped
        ),
        None => println!(
            "fill       unknown: the positions make no sense (claimed {}, read {}): the channel is corrupt",
            s.tail, s.head
        ),
    }
    println!(
        "consumer   {}{}",
        holder_text(s.consumer),
        waiting(s.parked.1, ", waiting for messages")
    );
    if s.producers.is_empty() {
        println!("producers  none yet");
    }
    for (place, h) in &s.producers {
        println!("producer {place:<2}{}", holder_text(*h));
    }
    if s.parked.0 {
        println!("waiting    a producer waits for room");
    }
    Ok(None)
}
