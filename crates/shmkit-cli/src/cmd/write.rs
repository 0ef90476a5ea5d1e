//! `shmkit write`: copy stdin into a shared-memory object.

use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use shmkit::inventory::{self, Address};
use shmkit::size::count;
use std::io::Read;

/// Copy stdin into a shared-memory object at an offset. The whole input is read first; if it
/// would run past the end of the object, nothing is written.
#[derive(clap::Args)]
pub struct Args {
    /// The object: /NAME, shm:ID, key:KEY or memfd:PID:FD.
    #[arg(value_parser = crate::parse::address())]
    object: Address,
    /// Where to start writing (units allowed: 4K).
    #[arg(long, short, value_parser = crate::parse::offset, default_value = "0", allow_hyphen_values = true)]
    offset: u64,
}

pub fn run(a: Args) -> CmdResult {
    let seg = inventory::open_memory(&a.object, true).map_err(Fail::about(&a.object))?;
    let size = seg.len() as u64;
    let shown = quote::address(&a.object);
    if a.offset > size {
        return Err(Fail::usage(format!(
            "offset {} is past the end of {shown} ({}); nothing was written",
            a.offset,
            count(size, "byte", "bytes")
        )));
    }
    // Read at most one byte more than fits, so that huge inputs are refused without being
    // held in memory whole; the rest is only counted, for the message.
    let room = size - a.offset;
    let mut data = Vec::new();
    let mut stdin = std::io::stdin().lock();
    (&mut stdin)
        .take(room + 1)
        .read_to_end(&mut data)
        .map_err(|e| Fail::error(format!("reading stdin: {e}")))?;
    if data.len() as u64 > room {
        let rest = std::io::copy(&mut stdin, &mut std::io::sink())
            .map_err(|e| Fail::error(format!("reading stdin: {e}")))?;
        return Err(Fail::usage(format!(
            "the input ({}) at offset {} would run past the end of {shown} ({}; {} fit there); \
             nothing was written",
            count(data.len() as u64 + rest, "byte", "bytes"),
            a.offset,
            count(size, "byte", "bytes"),
            count(room, "byte", "bytes"),
        )));
    }
    seg.write_at(a.offset as usize, &data)
        .map_err(Fail::about(&a.object))?;
    eprintln!(
        "shmkit: wrote {} to {shown} at offset {}",
        count(data.len() as u64, "byte", "bytes"),
        a.offset
    );
    Ok(code::OK)
}
