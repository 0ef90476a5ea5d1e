//! The `shmkit` command: a thin front over the `shmkit` library.

mod cmd;
mod fail;
mod parse;
mod quote;
mod render;
mod table;
mod tour;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes of the tour (kept under this name for the tour's modules).
pub(crate) mod exit {
    pub use crate::fail::code::{FAILED, INTERRUPTED, OK};
}

#[derive(Parser)]
#[command(
    name = "shmkit",
    version,
    about = "Shared memory between processes: every kind, one tool",
    long_about = "Shared memory between processes: every kind, one tool.\n\n\
Objects are addressed as /NAME (POSIX shared memory), shm:ID (System V segment by id), \
key:KEY (System V segment by key, 0x hex or decimal), memfd:PID:FD (a memfd held by a process), \
sem:ID (System V semaphore set), msg:ID (System V message queue), psem:/NAME (POSIX named \
semaphore) and mq:/NAME (POSIX message queue).",
    after_help = fail::EXIT_CODES_HELP
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce the classic shared-memory experiments with real processes and check each
    /// result.
    ///
    /// The experiments, in order:
    ///   anon-fork           a child writes 10 into anonymous MAP_SHARED memory; the parent reads 10
    ///   inherit-share       fork inheritance Share: the child's write is seen by the parent
    ///   inherit-copy        Copy: the child gets a copy; its write stays its own
    ///   inherit-none        None: the child has no mapping (MADV_DONTFORK)
    ///   inherit-zero        Zero: the child sees zeroes where the parent has data
    ///   posix-unrelated     shm_open + ftruncate + mmap, read by an unrelated process (fstat figures)
    ///   sysv-ftok           a key from ftok, shmget/shmat by an unrelated process, nattch 2
    ///   sysv-deferred-rmid  IPC_RMID while attached: gone only after the last detach
    ///   memfd-scm-rights    a sealed memfd passed over a Unix socket; every write refused
    ///   registry-bootstrap  memory and a semaphore named through the registry, used by an unrelated process
    ///   registry-read-only  a read-only handle from the registry: six ways to write, all refused
    ///   sem-handoff         5 messages paced by two FIFO semaphores, then 10,000 timed round trips
    ///   mutex-owner-died    a holder killed with SIGKILL; the next locker is told OwnerDied
    ///   mach-entry-fork     (macOS) mach_vm_allocate, a memory entry and a FIFO
    ///                       semaphore named through bootstrap; a forked child looks them up, maps
    ///                       the entry, writes and signals; copy-on-write vs shared compared
    ///
    /// The last five before mach-entry-fork are Linux only (memfds, eventfds, futexes): on
    /// other systems the tour leaves them out and says so on stderr. On macOS inherit-zero
    /// checks that Zero is refused (vm_inherit has no zero-fill), and mach-entry-fork runs.
    ///
    /// Every object the tour creates is removed afterwards, also when a step fails or the run
    /// is interrupted (Ctrl-C, SIGTERM, SIGHUP: exit 130, and no report). It leaves no file
    /// (the registry experiments' socket directory in $TMPDIR is removed too).
    #[command(verbatim_doc_comment)]
    Tour {
        /// Print the results as a JSON array (one object per experiment) instead of a table.
        #[arg(long)]
        json: bool,
    },
    Ls(cmd::ls::Args),
    Info(cmd::info::Args),
    Mk(cmd::mk::Args),
    Rm(cmd::rm::Args),
    Cat(cmd::cat::Args),
    Write(cmd::write::Args),
    Limits(cmd::limits::Args),
    Gc(cmd::gc::Args),
    Registry(cmd::registry::Args),
    // Linux only, and absent elsewhere: channels wait on futexes, the bench's shared-memory
    // transports are memfds and futexes, and the bridge carries channels.
    #[cfg(target_os = "linux")]
    Channel(cmd::channel::Args),
    #[cfg(target_os = "linux")]
    Bench(cmd::bench::Args),
    #[cfg(target_os = "linux")]
    Bridge(cmd::bridge::Args),
    Completions(cmd::docs::CompletionArgs),
    Man(cmd::docs::ManArgs),
    /// The other process of a `shmkit bench` measurement: run by the bench itself.
    #[cfg(target_os = "linux")]
    #[command(name = "__bench-peer", hide = true)]
    BenchPeer {
        /// Transport, size, round trips, messages, where to meet.
        args: Vec<String>,
    },
    /// The other side of a tour experiment: run by the tour itself, in a separate process.
    #[command(name = "__peer", hide = true)]
    Peer {
        /// Which experiment's reader to play.
        role: String,
        /// The role's arguments (object name, key, socket path).
        args: Vec<String>,
    },
}

pub(crate) fn command() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let keeps_sigpipe_ignored = match cli.command {
        Command::Tour { .. } | Command::Peer { .. } => true,
        #[cfg(target_os = "linux")]
        Command::Bench(_) | Command::BenchPeer { .. } => true,
        _ => false,
    };
    if !keeps_sigpipe_ignored {
        // Like every Unix filter: `shmkit ls | head` ends quietly when head does. The tour
        // keeps SIGPIPE ignored (Rust's default) because it writes to its peers' pipes and must
        // live on to clean up if a peer dies.
        // SAFETY: setting a signal's disposition to its default is always valid.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Tour { json } => Ok(tour::run(json)),
        Command::Peer { role, args } => Ok(tour::peer::run(&role, &args)),
        Command::Ls(a) => cmd::ls::run(a),
        Command::Info(a) => cmd::info::run(a),
        Command::Mk(a) => cmd::mk::run(a),
        Command::Rm(a) => cmd::rm::run(a),
        Command::Cat(a) => cmd::cat::run(a),
        Command::Write(a) => cmd::write::run(a),
        Command::Limits(a) => cmd::limits::run(a),
        Command::Gc(a) => cmd::gc::run(a),
        Command::Registry(a) => cmd::registry::run(a),
        #[cfg(target_os = "linux")]
        Command::Channel(a) => cmd::channel::run(a),
        #[cfg(target_os = "linux")]
        Command::Bench(a) => cmd::bench::run(a),
        #[cfg(target_os = "linux")]
        Command::Bridge(a) => cmd::bridge::run(a),
        #[cfg(target_os = "linux")]
        Command::BenchPeer { args } => Ok(cmd::bench::peer(&args)),
        Command::Completions(a) => cmd::docs::completions(a),
        Command::Man(a) => cmd::docs::man(a),
    };
    ExitCode::from(match result {
        Ok(c) => c,
        Err(f) => {
            eprintln!("shmkit: {}", quote::text(&f.message));
            f.code
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_definition_is_consistent() {
        super::command().debug_assert();
    }
}
