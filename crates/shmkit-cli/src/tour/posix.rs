//! POSIX shared memory between two unrelated processes, with the `fstat` figures the reader
//! sees (the article's `shm_reader`).

use super::cleanup;
use super::peer::Peer;
use super::{Outcome, Scratch};
use serde_json::json;

const NAME: &str = "posix-unrelated";

pub fn unrelated(scratch: &Scratch) -> Outcome {
    match run(scratch) {
        Ok(o) => o,
        Err(e) => Outcome::error(NAME, "create a POSIX object and start a reader", e),
    }
}

fn run(scratch: &Scratch) -> Result<Outcome, String> {
    let name = format!("/shmkit-tour-{}", scratch.tag);
    // The article's object: 33 bytes, written by one program, read by another.
    let message = "created this shmem from shmkit!!\n";
    let seg = cleanup::posix(&name, || shmkit::PosixShm::create(&name, message.len()))
        .map_err(|e| e.to_string())?;
    seg.write_at(0, message.as_bytes())
        .map_err(|e| e.to_string())?;
    cleanup::pause_point("posix");
    let mut peer = Peer::spawn("posix-read", std::slice::from_ref(&name))?;
    let pid = peer.pid();
    let seen = peer.recv()?;
    let ok_exit = peer.finish();
    let page = rustix::param::page_size() as u64;
    let text = seen["text"].as_str().unwrap_or_default();
    let size = seen["st_size"].as_u64().unwrap_or(0);
    let blocks = seen["st_blocks"].as_u64().unwrap_or(0);
    let blksize = seen["st_blksize"].as_u64().unwrap_or(0);
    // One page was touched by the writer: tmpfs allocates one page, counted in 512-byte blocks.
    let want_blocks = page / 512;
    let pass = ok_exit
        && text == message
        && size == message.len() as u64
        && blksize == page
        && blocks == want_blocks
        && seen["mode"] == "0600";
    Ok(Outcome::new(
        NAME,
        format!("shm_open({name}, O_CREAT|O_EXCL, 0600), ftruncate {} bytes, wrote {message:?}", message.len()),
        format!(
            "pid {pid} read {text:?}; st_size={size}, st_blocks={blocks}, st_blksize={blksize}, mode {}",
            seen["mode"].as_str().unwrap_or("?")
        ),
        format!("the same text; st_size={}, st_blocks={want_blocks}, st_blksize={page}, mode 0600", message.len()),
        pass,
        json!({ "name": name, "reader_pid": pid, "reader": seen }),
    ))
}
