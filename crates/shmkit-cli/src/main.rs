//! The `shmkit` command: a thin front over the `shmkit` library.

mod tour;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes, documented in `--help`.
pub(crate) mod exit {
    /// Every verdict passed / the command did what it was asked.
    pub const OK: u8 = 0;
    /// At least one experiment's verdict was "fail".
    pub const FAILED: u8 = 1;
    /// The command could not run (an OS error, a missing tool): the message says why.
    pub const ERROR: u8 = 3;
    /// Interrupted by a signal; everything created was removed.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "shmkit",
    version,
    about = "Shared memory between processes: every kind, one tool",
    after_help = "Exit codes: 0 success; 1 an experiment failed; 2 invalid usage; 3 the command \
                  could not run (the message says why); 130 interrupted (objects removed)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Reproduce the classic shared-memory experiments with real processes and check each
    /// result: fork sharing, the four fork inheritance modes, POSIX and System V shared memory
    /// between unrelated processes, and a sealed memfd passed over a Unix socket.
    ///
    /// Every object the tour creates is removed afterwards, also when a step fails or the run
    /// is interrupted (Ctrl-C, SIGTERM, SIGHUP).
    Tour {
        /// Print the results as a JSON array (one object per experiment) instead of a table.
        #[arg(long)]
        json: bool,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Tour { json } => tour::run(json),
        Command::Peer { role, args } => tour::peer::run(&role, &args),
    };
    ExitCode::from(code)
}
