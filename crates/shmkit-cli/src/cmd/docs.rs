//! `shmkit completions` and `shmkit man`: generated from the clap definitions.

use crate::fail::{code, CmdResult, Fail};

/// Print a shell completion script: `shmkit completions bash > /etc/bash_completion.d/shmkit`.
#[derive(clap::Args)]
pub struct CompletionArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Print the manual page (roff): `shmkit man | man -l -`.
#[derive(clap::Args)]
pub struct ManArgs {}

pub fn completions(a: CompletionArgs) -> CmdResult {
    clap_complete::generate(
        a.shell,
        &mut crate::command(),
        "shmkit",
        &mut std::io::stdout(),
    );
    Ok(code::OK)
}

pub fn man(_: ManArgs) -> CmdResult {
    clap_mangen::Man::new(crate::command())
        .render(&mut std::io::stdout())
        .map_err(|e| Fail::error(format!("writing the manual page: {e}")))?;
    Ok(code::OK)
}
