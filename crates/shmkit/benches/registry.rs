//! Registry benchmark: a lookup round trip (one memfd handle, checked on receipt) against a
//! bare Unix-socket round trip that passes one fd, in one run, alternating round by round;
//! then 8 clients doing 10,000 lookups each at once; then the serving thread's CPU per
//! isolated request (2 ms apart), registry against the bare server.
//!
//! Reports medians with p10/p90 and the ratio of the medians.
//! Run: `cargo bench -p shmkit --bench registry` (add `-- --rounds 21` for more rounds).

#[cfg(target_os = "linux")]
#[path = "support/registry_linux.rs"]
mod linux;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    eprintln!("the registry benchmark needs the registry: Linux only");
}
