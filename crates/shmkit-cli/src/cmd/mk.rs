//! `shmkit mk`: create POSIX or System V shared memory, like `ipcmk`.

use crate::fail::{code, CmdResult, Fail};
use crate::parse;
use shmkit::{PosixShm, SysvKey, SysvShm};

/// Create a shared-memory object and print its address. The object is kept: remove it with
/// `shmkit rm`. Creation is exclusive: an existing object is never reused or overwritten.
///
/// SIZE takes binary units: 4096, 64K, 1M, 1.5G (1K = 1024 bytes). MODE is octal, default 0600.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// POSIX shared memory: `shmkit mk posix /NAME --size SIZE [--mode MODE]`.
    Posix {
        /// The name, starting with '/'.
        name: String,
        /// Size (4096, 64K, 1M, 1.5G).
        #[arg(long, short, value_parser = parse::size)]
        size: u64,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object": ...} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// System V shared memory: `shmkit mk sysv (--key KEY | --ftok PATH:PROJ | --private) --size SIZE`.
    #[command(group(clap::ArgGroup::new("keyed").required(true).args(["key", "ftok", "private"])))]
    Sysv {
        /// The key, 0x hex or decimal.
        #[arg(long, value_parser = parse::key)]
        key: Option<i32>,
        /// A key from ftok(3): an existing PATH and a project id (1 to 255 or one character).
        #[arg(long, value_parser = parse::ftok, value_name = "PATH:PROJ")]
        ftok: Option<(String, u8)>,
        /// IPC_PRIVATE: a new segment reachable only by its id.
        #[arg(long)]
        private: bool,
        /// Size (4096, 64K, 1M, 1.5G).
        #[arg(long, short, value_parser = parse::size)]
        size: u64,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object", "shmid", "key", "size"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn to_usize(size: u64) -> Result<usize, Fail> {
    usize::try_from(size).map_err(|_| {
        Fail::usage(format!(
            "size {size} does not fit in this machine's address space"
        ))
    })
}

fn limit(name: &str) -> Option<u64> {
    shmkit::limits::read()
        .ok()?
        .into_iter()
        .find(|l| l.name == name)?
        .value
}

pub fn run(a: Args) -> CmdResult {
    match a.what {
        What::Posix {
            name,
            size,
            mode,
            json,
        } => {
            // tmpfs accepts any ftruncate and fails only when pages are touched (SIGBUS in
            // the writer): refuse up front what can never fit.
            if let Some(cap) = limit("dev_shm_size") {
                if size > cap {
                    return Err(Fail::usage(format!(
                        "size {} exceeds the capacity of /dev/shm (dev_shm_size = {}); raise it with \
                         `mount -o remount,size=SIZE /dev/shm`",
                        shmkit::size::human(size),
                        shmkit::size::human(cap)
                    )));
                }
            }
            let seg = PosixShm::options()
                .mode(mode)
                .keep(true)
                .create(&name, to_usize(size)?)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "object": seg.name(), "size": seg.len() })
                );
            } else {
                println!("{}", seg.name());
            }
        }
        What::Sysv {
            key,
            ftok,
            private,
            size,
            mode,
            json,
        } => {
            let key = match (key, ftok, private) {
                (Some(k), _, _) => SysvKey::Key(k),
                (_, Some((path, proj)), _) => SysvKey::ftok(&path, proj)?,
                _ => SysvKey::Private,
            };
            let size = to_usize(size)?;
            if let Some(max) = limit("shmmax") {
                if size as u64 > max {
                    return Err(Fail::usage(format!(
                        "segment size {} exceeds kernel.shmmax {}; raise it with `sysctl -w kernel.shmmax=VALUE` (as root)",
                        shmkit::size::human(size as u64),
                        shmkit::size::human(max)
                    )));
                }
            }
            let seg = SysvShm::options().mode(mode).keep(true).create(key, size)?;
            let st = seg.stat()?;
            let addr = format!("shm:{}", seg.id());
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "object": addr, "shmid": seg.id(), "key": format!("{:#010x}", st.key as u32), "size": st.size })
                );
            } else {
                println!("{addr}");
            }
        }
    }
    Ok(code::OK)
}
