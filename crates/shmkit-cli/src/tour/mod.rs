//! `shmkit tour`: the experiments of the articles shmkit grew from, run for real.

pub mod cleanup;
mod fork;
#[cfg(target_os = "macos")]
mod mach;
#[cfg(target_os = "linux")]
mod memfd;
pub mod peer;
mod posix;
#[cfg(target_os = "linux")]
mod registry;
#[cfg(target_os = "linux")]
mod sync;
mod sysv;

use serde::Serialize;

/// The result of one experiment.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// A short name (`anon-fork`, `inherit-copy`, ...).
    pub experiment: String,
    /// What the writing side did.
    pub writer: String,
    /// What the reading side observed.
    pub reader: String,
    /// What should have been observed.
    pub expected: String,
    /// `"pass"` or `"fail"`.
    pub verdict: &'static str,
    /// Measured figures, for scripts.
    pub details: serde_json::Value,
}

impl Outcome {
    pub fn new(
        experiment: &str,
        writer: String,
        reader: String,
        expected: String,
        pass: bool,
        details: serde_json::Value,
    ) -> Self {
        Outcome {
            experiment: experiment.to_string(),
            writer,
            reader,
            expected,
            verdict: if pass { "pass" } else { "fail" },
            details,
        }
    }

    /// An experiment that could not be carried out counts as failed, with the reason.
    pub fn error(experiment: &str, what: &str, err: impl std::fmt::Display) -> Self {
        Outcome::new(
            experiment,
            what.to_string(),
            format!("error: {err}"),
            "the experiment runs".to_string(),
            false,
            serde_json::json!({ "error": err.to_string() }),
        )
    }
}

/// Runs every experiment and prints the results; returns the exit code.
pub fn run(json: bool) -> u8 {
    cleanup::install_handler();
    let scratch = Scratch::new();
    let mut results = Vec::new();
    results.push(fork::anon_fork());
    for mode in [
        shmkit::Inherit::Share,
        shmkit::Inherit::Copy,
        shmkit::Inherit::None,
        #[cfg(target_os = "linux")]
        shmkit::Inherit::Zero,
    ] {
        results.push(fork::inherit(mode));
    }
    #[cfg(target_os = "macos")]
    {
        results.push(mach::zero_unsupported());
        results.push(mach::article());
    }
    results.push(posix::unrelated(&scratch));
    results.extend(sysv::unrelated());
    #[cfg(target_os = "linux")]
    {
        results.push(memfd::sealed_handoff(&scratch));
        results.push(registry::bootstrap(&scratch));
        results.push(registry::read_only(&scratch));
        results.push(sync::semaphore_handoff(&scratch));
        results.push(sync::mutex_owner_died(&scratch));
    }
    drop(scratch);
    // The report is printed whole or not at all: an interruption from here on waits for it,
    // and one that came earlier (its handler may have stopped a peer mid-step) wins.
    let _printing = cleanup::begin_report();
    cleanup::run();

    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).expect("outcomes serialize")
        );
    } else {
        print_table(&results);
    }
    #[cfg(not(target_os = "linux"))]
    eprintln!(
        "shmkit tour: left out, as they are Linux only: {}",
        LEFT_OUT
            .iter()
            .map(|(name, needs)| format!("{name} (needs {needs})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if results.iter().all(|r| r.verdict == "pass") {
        crate::exit::OK
    } else {
        crate::exit::FAILED
    }
}

/// The experiments that are not run where what they need is missing: each one and what it
/// needs that only Linux has.
#[cfg(not(target_os = "linux"))]
const LEFT_OUT: [(&str, &str); 5] = [
    ("memfd-scm-rights", "memfd seals"),
    ("registry-bootstrap", "memfd and eventfd handles"),
    ("registry-read-only", "memfd seals"),
    ("sem-handoff", "futex"),
    ("mutex-owner-died", "futex"),
];

fn print_table(results: &[Outcome]) {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "experiment",
            "writer did",
            "reader observed",
            "expected",
            "verdict",
        ]);
    if let Some((w, _)) = terminal_width() {
        t.set_width(w);
    } else {
        t.set_width(160);
    }
    for r in results {
        t.add_row([
            r.experiment.as_str(),
            &r.writer,
            &r.reader,
            &r.expected,
            r.verdict,
        ]);
    }
    println!("{t}");
    let failed = results.iter().filter(|r| r.verdict != "pass").count();
    println!(
        "{} experiments: {} passed, {} failed",
        results.len(),
        results.len() - failed,
        failed
    );
}

fn terminal_width() -> Option<(u16, u16)> {
    if !rustix::termios::isatty(std::io::stdout()) {
        return None;
    }
    let ws = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (ws.ws_col > 0).then_some((ws.ws_col, ws.ws_row))
}

/// What the experiments of one run share: a tag unique to the run, for object names. The tour
/// writes no file: its socket is abstract and its ftok anchor is its own executable, so a
/// tour killed with SIGKILL leaves nothing on disk (its objects are `shmkit gc`'s to find).
pub struct Scratch {
    /// A string unique to this run.
    pub tag: String,
}

impl Scratch {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Scratch {
            tag: format!("{}-{:08x}", std::process::id(), nanos),
        }
    }
}
