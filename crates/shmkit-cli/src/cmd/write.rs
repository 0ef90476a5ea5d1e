//! `shmkit write`: copy stdin into a shared-memory object.

use crate::fail::{code, CmdResult, Fail};
use shmkit::inventory::{self, Address};
use std::io::Read;

/// Copy stdin into a shared-memory object at an offset. The whole input is read first; if it
/// would run past the end of the object, nothing is written.
#[derive(clap::Args)]
pub struct Args {
    /// The object: /NAME, shm:ID, key:KEY or memfd:PID:FD.
    #[arg(value_parser = crate::parse::address)]
    object: Address,
    /// Where to start writing (units allowed: 4K).
    #[arg(long, short, value_parser = crate::parse::offset, default_value = "0")]
    offset: u64,
}

pub fn run(a: Args) -> CmdResult {
    let seg = inventory::open_memory(&a.object, true)?;
    let size = seg.len() as u64;
    let mut data = Vec::new();
    // Read at most one byte more than fits, so that huge inputs are refused without being
    // held in memory whole.
    let room = size.saturating_sub(a.offset);
    std::io::stdin()
        .take(room + 1)
        .read_to_end(&mut data)
        .map_err(|e| Fail::error(format!("reading stdin: {e}")))?;
    if a.offset > size || data.len() as u64 > room {
        return Err(Fail::usage(format!(
            "the input{} at offset {} would run past the end of {} ({size} bytes); nothing was written",
            if data.len() as u64 > room { format!(" (more than {room} bytes)") } else { format!(" ({} bytes)", data.len()) },
            a.offset,
            a.object
        )));
    }
    seg.write_at(a.offset as usize, &data)?;
    eprintln!(
        "shmkit: wrote {} bytes to {} at offset {}",
        data.len(),
        a.object,
        a.offset
    );
    Ok(code::OK)
}
