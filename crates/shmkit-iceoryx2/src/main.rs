//! `shmkit-bench-iceoryx2 SIZE TRIPS MSGS [CPU CPU]`: iceoryx2 0.10's publish-subscribe between
//! two processes, measured the way `shmkit bench` measures its own transports (the same
//! warm-up, round trips with the payload written by one side and read and checked by the
//! other, then a one-way stream acknowledged at its end), printed as one JSON row that
//! `shmkit bench --with iceoryx2` puts beside the others.
//!
//! Two services (there and back) of `[u8]` slices, busy-polled, safe overflow off and the
//! publisher retrying until delivered, so that the stream loses nothing: the configuration
//! iceoryx2 documents for a lossless, lowest-latency link.
//!
//! A separate binary in a workspace member outside the default build, because iceoryx2 and
//! its dependencies double the build; `.ci/run` builds and runs it so it does not rot.
//!
//! Linux only, as `shmkit bench`, which runs it, is: it pins its two processes to CPUs
//! (`sched_setaffinity`) and its peer dies with the measuring side (`PR_SET_PDEATHSIG`), so
//! that no peer is left spinning. Elsewhere it says so and exits with a failure.

#[cfg(target_os = "linux")]
mod bench;

use std::process::ExitCode;

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    bench::main()
}

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!(
        "shmkit-bench-iceoryx2: Linux only (needs sched_setaffinity and PR_SET_PDEATHSIG), as \
         `shmkit bench`, which runs it, is"
    );
    ExitCode::FAILURE
}
