//! The `shmkit` command: a thin front over the `shmkit` library.

mod cmd;
mod fail;
mod parse;
mod render;
mod tour;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes of the tour (kept under this name for the tour's modules).
pub(crate) mod exit {
    pub use crate::fail::code::{ERROR, FAILED, INTERRUPTED, OK};
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
    Ls(cmd::ls::Args),
    Info(cmd::info::Args),
    Mk(cmd::mk::Args),
    Rm(cmd::rm::Args),
    Cat(cmd::cat::Args),
    Write(cmd::write::Args),
    Limits(cmd::limits::Args),
    Gc(cmd::gc::Args),
    Completions(cmd::docs::CompletionArgs),
    Man(cmd::docs::ManArgs),
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
    if !matches!(cli.command, Command::Tour { .. } | Command::Peer { .. }) {
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
        Command::Completions(a) => cmd::docs::completions(a),
        Command::Man(a) => cmd::docs::man(a),
    };
    ExitCode::from(match result {
        Ok(c) => c,
        Err(f) => {
            eprintln!("shmkit: {}", f.message);
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
