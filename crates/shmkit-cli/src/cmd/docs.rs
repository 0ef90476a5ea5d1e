//! `shmkit completions` and `shmkit man`: generated from the clap definitions.

use crate::fail::{code, CmdResult, Fail};

/// Print a shell completion script: `shmkit completions bash > /etc/bash_completion.d/shmkit`.
#[derive(clap::Args)]
pub struct CompletionArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Print the manual page (roff): `shmkit man | man -l -`; with --dir, write shmkit.1 and a
/// page for every subcommand (shmkit-ls.1, ...) into a directory.
#[derive(clap::Args)]
pub struct ManArgs {
    /// Write every page into this directory (created if missing) instead of printing one.
    #[arg(long, value_name = "DIR")]
    dir: Option<std::path::PathBuf>,
}

pub fn completions(a: CompletionArgs) -> CmdResult {
    clap_complete::generate(
        a.shell,
        &mut crate::command(),
        "shmkit",
        &mut std::io::stdout(),
    );
    Ok(code::OK)
}

pub fn man(a: ManArgs) -> CmdResult {
    let mut cmd = crate::command();
    // The __peer subcommand is internal: no page, and no reference to one.
    cmd = cmd.mut_subcommand("__peer", |c| c.hide(true));
    if let Some(dir) = a.dir {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Fail::error(format!("creating {}: {e}", dir.display())))?;
        clap_mangen::generate_to(cmd, &dir)
            .map_err(|e| Fail::error(format!("writing pages into {}: {e}", dir.display())))?;
        let _ = std::fs::remove_file(dir.join("shmkit-__peer.1"));
        eprintln!("shmkit: wrote the manual pages into {}", dir.display());
        return Ok(code::OK);
    }
    clap_mangen::Man::new(cmd)
        .render(&mut std::io::stdout())
        .map_err(|e| Fail::error(format!("writing the manual page: {e}")))?;
    Ok(code::OK)
}
