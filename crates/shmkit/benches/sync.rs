//! Synchronization benchmark: shmkit's primitives against their baselines, in one run, on
//! this machine, alternating the contenders round by round so that noise hits them alike.
//!
//! - uncontended lock + unlock: `shmkit::sync::Mutex` vs a glibc process-shared
//!   `pthread_mutex_t` (and a robust one, for reference);
//! - cross-process ping-pong round trip (two processes, two semaphores): `Semaphore` vs a raw
//!   futex ping-pong (the floor: one word each way, no bookkeeping) vs a glibc process-shared
//!   `sem_t`.
//!
//! Reports medians with p10/p90 per contender and the ratios of the medians.
//! Run: `cargo bench -p shmkit --bench sync` (add `-- --rounds 21` for more rounds).

#[cfg(target_os = "linux")]
#[path = "support/sync_linux.rs"]
mod linux;

fn main() {
    #[cfg(target_os = "linux")]
    linux::main();
    #[cfg(not(target_os = "linux"))]
    eprintln!("the sync benchmark measures the futex-based primitives of shmkit::sync: Linux only");
}
