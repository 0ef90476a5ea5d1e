//! Channel benchmark: the SPSC channel between two processes against the floors measured in
//! the same run, alternating the contenders round by round so that noise hits them alike.
//!
//! - 8-byte round trip, spinning: the channel (two channels, `Wait::Spin`) vs a raw
//!   cache-line ping-pong (one word each way: the hardware floor);
//! - 8-byte round trip, sleeping: the channel (`Wait::Block`) vs a raw futex ping-pong;
//! - streaming: 8-byte messages in batches of 64, and 64 KiB messages, vs a single-core
//!   `memcpy` of the same bytes.
//!
//! Reports medians with p10/p90 and the ratios of the medians.
//! Run: `cargo bench -p shmkit --bench channel` (add `-- --rounds 21` for more rounds).

#[cfg(target_os = "linux")]
#[path = "support/channel_linux.rs"]
mod linux;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    eprintln!("the channel benchmark needs shmkit::channel: Linux only");
}
