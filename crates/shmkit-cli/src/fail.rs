//! The CLI's failures: a one-line message for stderr and a documented exit code.

use shmkit::inventory::Address;
use shmkit::ErrorKind;

/// Exit codes (listed in `shmkit --help`).
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// `tour`: an experiment's verdict was "fail".
    pub const FAILED: u8 = 1;
    /// Invalid usage or argument (bad size, mode, object address, wrong kind): nothing changed.
    pub const USAGE: u8 = 2;
    /// The command could not run (an OS error the message explains).
    pub const ERROR: u8 = 3;
    /// The object does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// Permission denied.
    pub const DENIED: u8 = 5;
    /// A wait ran out: `channel send`/`recv` with --timeout, a registry that did not answer.
    pub const TIMEOUT: u8 = 6;
    /// Interrupted by a signal; what the command had created was removed.
    pub const INTERRUPTED: u8 = 130;
}

pub const EXIT_CODES_HELP: &str =
    "Exit codes: 0 success; 1 an experiment of the tour failed; 2 invalid usage or \
argument (nothing changed); 3 the command could not run (the message says why); 4 no such object; \
5 permission denied; 6 a wait timed out (channel send/recv --timeout, a hung registry); 130 interrupted (what the command had created was removed).";

/// A failure of a command.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    /// An invalid argument: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Fail {
            code: code::USAGE,
            message: message.into(),
        }
    }

    /// The failure `e` of an operation on the object `addr` names, with the object shown as
    /// every human output shows it (quoted like GNU ls, its exact bytes): the library's
    /// message has the lossy `Display` of the address.
    ///
    /// An object that does not exist gets this command's own remedy, the same for every kind
    /// of object and every command.
    pub fn about(addr: &Address) -> impl Fn(shmkit::Error) -> Fail + '_ {
        move |e| {
            let raw = addr.to_string();
            let e = if e.kind() == ErrorKind::NotFound {
                e.with_hint("`shmkit ls` lists the objects there are")
            } else {
                e
            };
            let mut f = Fail::from(e);
            if let Some(at) = f.message.find(&raw) {
                f.message
                    .replace_range(at..at + raw.len(), &crate::quote::address(addr));
            }
            f
        }
    }

    /// A failure of the command itself: exit 3.
    pub fn error(message: impl Into<String>) -> Self {
        Fail {
            code: code::ERROR,
            message: message.into(),
        }
    }

    /// What cannot run on this system, as it needs what only Linux has: exit 3 (used on other
    /// systems only).
    #[cfg(not(target_os = "linux"))]
    pub fn linux_only(what: &str, needs: &str) -> Self {
        Fail::error(format!("{what} are Linux only (needs {needs})"))
    }
}

impl From<shmkit::Error> for Fail {
    /// The exit code comes from the error's kind alone; the message is the library's.
    fn from(e: shmkit::Error) -> Self {
        let code = match e.kind() {
            ErrorKind::NotFound => code::NOT_FOUND,
            ErrorKind::PermissionDenied | ErrorKind::ReadOnly => code::DENIED,
            ErrorKind::InvalidArgument
            | ErrorKind::InvalidName
            | ErrorKind::OutOfBounds
            | ErrorKind::TooSmall
            | ErrorKind::Misaligned
            | ErrorKind::AlreadyExists => code::USAGE,
            ErrorKind::TimedOut => code::TIMEOUT,
            _ => code::ERROR,
        };
        Fail {
            code,
            message: e.to_string(),
        }
    }
}

pub type CmdResult = Result<u8, Fail>;
