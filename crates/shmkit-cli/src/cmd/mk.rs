//! `shmkit mk`: create shared memory, semaphores and message queues, like `ipcmk`.

use crate::fail::{code, CmdResult, Fail};
use crate::parse;
#[cfg(target_os = "linux")]
use shmkit::posix_mq::MessageQueue;
#[cfg(target_os = "linux")]
use shmkit::posix_sem::NamedSemaphore;
#[cfg(target_os = "linux")]
use shmkit::sysv::msg::MsgQueue;
use shmkit::sysv::sem::SemSet;
use shmkit::{PosixShm, SysvKey, SysvShm};

/// Create an IPC object and print its address: POSIX or System V shared memory, a System V
/// semaphore set or message queue, a POSIX named semaphore or message queue. The object is
/// kept: remove it with `shmkit rm`. Creation is exclusive: an existing object is never reused
/// or overwritten.
///
/// SIZE takes binary units: 4096, 64K, 1M, 1.5G (1K = 1024 bytes). MODE is octal, default 0600.
///
/// System V message queues, POSIX named semaphores and POSIX message queues are Linux only:
/// elsewhere `mk msg`, `mk psem` and `mk mq` fail, saying so, and create nothing.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

/// How a System V object is keyed: exactly one of these.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct KeyArgs {
    /// The key, 0x hex or decimal.
    #[arg(long, value_parser = parse::key, allow_hyphen_values = true)]
    key: Option<i32>,
    /// A key from ftok(3): an existing PATH and a project id (1 to 255 or one character).
    #[arg(long, value_parser = parse::ftok, value_name = "PATH:PROJ")]
    ftok: Option<(String, u8)>,
    /// IPC_PRIVATE: a new object reachable only by its id.
    #[arg(long)]
    private: bool,
}

impl KeyArgs {
    fn key(&self) -> Result<SysvKey, Fail> {
        Ok(match (&self.key, &self.ftok) {
            (Some(k), _) => SysvKey::Key(*k),
            (_, Some((path, proj))) => SysvKey::ftok(path, *proj)?,
            _ => SysvKey::Private,
        })
    }
}

#[derive(clap::Subcommand)]
enum What {
    /// POSIX shared memory: `shmkit mk posix /NAME --size SIZE [--mode MODE]`.
    Posix {
        /// The name, starting with '/'.
        name: String,
        /// Size (4096, 64K, 1M, 1.5G).
        #[arg(long, short, value_parser = parse::size, allow_hyphen_values = true)]
        size: u64,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object": ...} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// System V shared memory: `shmkit mk sysv (--key KEY | --ftok PATH:PROJ | --private) --size SIZE`.
    Sysv {
        #[command(flatten)]
        key: KeyArgs,
        /// Size (4096, 64K, 1M, 1.5G).
        #[arg(long, short, value_parser = parse::size, allow_hyphen_values = true)]
        size: u64,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object", "shmid", "key", "size"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// System V semaphore set: `shmkit mk sem (--key KEY | --ftok PATH:PROJ | --private)
    /// [--nsems N] [--value V]`.
    Sem {
        #[command(flatten)]
        key: KeyArgs,
        /// How many semaphores (at most kernel.sem's SEMMSL).
        #[arg(long, short, default_value = "1", allow_hyphen_values = true)]
        nsems: u16,
        /// Initial value of every semaphore (0 to 32767).
        #[arg(long, default_value = "0", value_parser = clap::value_parser!(u16).range(0..=32767), allow_hyphen_values = true)]
        value: u16,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object", "semid", "key", "nsems"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// System V message queue: `shmkit mk msg (--key KEY | --ftok PATH:PROJ | --private)`.
    Msg {
        #[command(flatten)]
        key: KeyArgs,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object", "msqid", "key"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// POSIX named semaphore: `shmkit mk psem /NAME [--value V]`.
    Psem {
        /// The name, starting with '/'.
        name: String,
        /// Initial value (0 to 2147483647).
        #[arg(long, default_value = "0", value_parser = clap::value_parser!(u32).range(0..=2147483647), allow_hyphen_values = true)]
        value: u32,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object", "value"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// POSIX message queue: `shmkit mk mq /NAME [--max-messages N] [--message-size BYTES]`.
    Mq {
        /// The name, starting with '/'.
        name: String,
        /// Capacity in messages (default: fs.mqueue.msg_default).
        #[arg(long, allow_hyphen_values = true)]
        max_messages: Option<u64>,
        /// Largest message in bytes (default: fs.mqueue.msgsize_default).
        #[arg(long, value_parser = parse::message_size, allow_hyphen_values = true)]
        message_size: Option<u64>,
        /// Permission bits in octal (default 0600).
        #[arg(long, short, value_parser = parse::mode, default_value = "0600")]
        mode: u32,
        /// Print {"object", "max_messages", "message_size"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn print(json: bool, addr: &str, fields: serde_json::Value) {
    if json {
        let mut v = fields;
        v["object"] = addr.into();
        println!("{v}");
    } else {
        println!("{}", crate::quote::text(addr));
    }
}

/// The library's remedies name library calls; the command names its own verbs.
fn our_remedy(e: shmkit::Error, addr: &str) -> shmkit::Error {
    if e.raw_os_error() == Some(libc::EEXIST) {
        let how = if addr.ends_with(":ID") {
            format!("`shmkit ls` shows its {addr}; remove it first with `shmkit rm {addr}`, or choose another key")
        } else {
            format!(
                "remove it first with `shmkit rm {}`, or choose another name",
                crate::quote::text(addr)
            )
        };
        return e.with_hint(how);
    }
    if e.kind() == shmkit::ErrorKind::InvalidName {
        if let Some(sem) = addr.strip_prefix("/sem.").filter(|s| !s.is_empty()) {
            return e.with_hint(format!(
                "a named semaphore is made with `shmkit mk psem /{sem}` and addressed as psem:/{sem}; \
                 choose another name for a segment"
            ));
        }
    }
    e
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
                    let (want, cap) = shmkit::size::human_pair(size, cap);
                    return Err(Fail::usage(format!(
                        "size {want} exceeds the capacity of /dev/shm (dev_shm_size = {cap}); raise it with \
                         `mount -o remount,size=SIZE /dev/shm`"
                    )));
                }
            }
            let seg = PosixShm::options()
                .mode(mode)
                .keep(true)
                .create(&name, to_usize(size)?)
                .map_err(|e| our_remedy(e, &name))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "object": seg.name(), "size": seg.len() })
                );
            } else {
                println!("{}", crate::quote::name(std::ffi::OsStr::new(seg.name())));
            }
        }
        What::Sysv {
            key,
            size,
            mode,
            json,
        } => {
            let key = key.key()?;
            let size = to_usize(size)?;
            if let Some(max) = limit("shmmax") {
                if size as u64 > max {
                    let (want, max) = shmkit::size::human_pair(size as u64, max);
                    return Err(Fail::usage(format!(
                        "segment size {want} exceeds kernel.shmmax {max}; raise it with `sysctl -w kernel.shmmax=VALUE` (as root)"
                    )));
                }
            }
            let seg = SysvShm::options()
                .mode(mode)
                .keep(true)
                .create(key, size)
                .map_err(|e| our_remedy(e, "shm:ID"))?;
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
        What::Sem {
            key,
            nsems,
            value,
            mode,
            json,
        } => {
            let key = key.key()?;
            if nsems == 0 {
                return Err(Fail::usage("--nsems must be at least 1"));
            }
            let set = SemSet::options()
                .mode(mode)
                .create(key, nsems.into())
                .map_err(|e| our_remedy(e, "sem:ID"))?;
            // Until the values are set, a failure removes the set (drop); then keep it.
            if value != 0 {
                for n in 0..nsems {
                    set.set(n, value)?;
                }
            }
            set.set_keep(true);
            let st = set.stat()?;
            print(
                json,
                &format!("sem:{}", set.id()),
                serde_json::json!({ "semid": set.id(), "key": format!("{:#010x}", st.key as u32), "nsems": st.nsems }),
            );
        }
        #[cfg(target_os = "linux")]
        What::Msg { key, mode, json } => {
            let q = MsgQueue::options()
                .mode(mode)
                .create(key.key()?)
                .map_err(|e| our_remedy(e, "msg:ID"))?;
            q.set_keep(true);
            let st = q.stat()?;
            print(
                json,
                &format!("msg:{}", q.id()),
                serde_json::json!({ "msqid": q.id(), "key": format!("{:#010x}", st.key as u32) }),
            );
        }
        #[cfg(target_os = "linux")]
        What::Psem {
            name,
            value,
            mode,
            json,
        } => {
            let s = NamedSemaphore::options()
                .mode(mode)
                .create(&name, value)
                .map_err(|e| our_remedy(e, &format!("psem:{name}")))?;
            s.set_keep(true);
            print(
                json,
                &format!("psem:{name}"),
                serde_json::json!({ "value": s.value()? }),
            );
        }
        #[cfg(target_os = "linux")]
        What::Mq {
            name,
            max_messages,
            message_size,
            mode,
            json,
        } => {
            let (default_max, default_size) = shmkit::posix_mq::default_capacity();
            let max = max_messages.unwrap_or(default_max);
            let size = message_size.unwrap_or(default_size);
            let q = MessageQueue::options()
                .mode(mode)
                .create(&name, max, size)
                .map_err(|e| our_remedy(e, &format!("mq:{name}")))?;
            q.set_keep(true);
            let a = q.attr()?;
            print(
                json,
                &format!("mq:{name}"),
                serde_json::json!({ "max_messages": a.max_messages, "message_size": a.message_size }),
            );
        }
        #[cfg(not(target_os = "linux"))]
        What::Msg { .. } => {
            return Err(Fail::linux_only(
                "System V message queues",
                "the msgget family, which the libc crate binds on Linux only",
            ))
        }
        #[cfg(not(target_os = "linux"))]
        What::Psem { .. } => {
            return Err(Fail::linux_only(
                "POSIX named semaphores",
                "sem_timedwait, which macOS lacks",
            ))
        }
        #[cfg(not(target_os = "linux"))]
        What::Mq { .. } => {
            return Err(Fail::linux_only(
                "POSIX message queues",
                "mq_open, which macOS lacks",
            ))
        }
    }
    Ok(code::OK)
}
