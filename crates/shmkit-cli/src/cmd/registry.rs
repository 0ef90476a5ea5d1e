//! `shmkit registry`: the name service for handles (serve it, list and look up its names).

use crate::fail::{CmdResult, Fail};
use crate::quote;
use clap::{Parser, Subcommand};
#[cfg(target_os = "linux")]
use serde::Deserialize;
#[cfg(target_os = "linux")]
use shmkit::registry::{Bounds, Policy, Rule, Server};
use shmkit::registry::{Client, Info};
#[cfg(target_os = "linux")]
use std::path::PathBuf;

/// A name service for shared memory and other handles.
///
/// A process registers a name with handles (a memfd, an eventfd, ...; on macOS Mach memory
/// entries and semaphores) through the library (shmkit::registry::Client); an unrelated
/// process of the same user (or one the config admits) looks the name up and receives the
/// handles. A name goes when the process that registered it exits, unless registered
/// persistent (Linux only).
///
/// Linux: `serve` runs the registry on $XDG_RUNTIME_DIR/shmkit/registry.sock, or
/// /tmp/shmkit-UID/registry.sock without XDG_RUNTIME_DIR; its directory is mode 0700.
///
/// macOS: the bootstrap server (launchd) is the registry, so there is nothing to serve; `ls`
/// shows the names this user's processes registered, `lookup` one of them.
#[derive(Parser)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    #[cfg(target_os = "linux")]
    Serve(ServeArgs),
    Ls(LsArgs),
    Lookup(LookupArgs),
}

#[cfg(target_os = "linux")]
/// Serve the registry (in the foreground; one log line per event on stderr).
///
/// Under systemd with socket activation (LISTEN_FDS) it serves the socket systemd passes. An
/// example pair of user units (~/.config/systemd/user/):
///
///   shmkit-registry.socket:
///     [Socket]
///     ListenStream=%t/shmkit/registry.sock
///     SocketMode=0600
///     DirectoryMode=0700
///     [Install]
///     WantedBy=sockets.target
///
///   shmkit-registry.service:
///     [Service]
///     ExecStart=/usr/local/bin/shmkit registry serve
///
/// The config (--config, TOML) admits other users per name prefix:
///
///   [[allow]]
///   prefix = "video/"      # names it covers ("" for all)
///   uids = [1001]          # users admitted
///   gids = [44]            # or primary groups
///   register = false       # true: they may also register and unregister
///
/// Without a rule only the registry's own user is admitted; root is not special.
#[derive(Parser)]
#[command(verbatim_doc_comment)]
struct ServeArgs {
    /// The socket to serve (default: the per-user socket above).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The access rules (TOML; see above).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Most names registered at once, a quarter of them by one user other than the
    /// registry's [default: 4096].
    #[arg(long, value_name = "N")]
    max_names: Option<usize>,
    /// Most clients connected at once, a quarter of them of one user other than the
    /// registry's [default: the open-file limit / 34, at most 256; the limit is first raised
    /// to its hard limit].
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
}

/// List the registered names (those this user may look up).
#[derive(Parser)]
struct LsArgs {
    /// The registry's socket (default: the per-user socket). Linux only.
    #[cfg(target_os = "linux")]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Show one registered name: who registered it, since when, and its handles.
#[derive(Parser)]
struct LookupArgs {
    /// The name.
    name: String,
    /// The registry's socket (default: the per-user socket). Linux only.
    #[cfg(target_os = "linux")]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[cfg(target_os = "linux")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    allow: Vec<AllowRule>,
}

#[cfg(target_os = "linux")]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowRule {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    uids: Vec<u32>,
    #[serde(default)]
    gids: Vec<u32>,
    #[serde(default)]
    register: bool,
}

#[cfg(target_os = "linux")]
fn policy(path: &std::path::Path) -> Result<Policy, Fail> {
    let shown = quote::text(&path.display().to_string());
    let text =
        std::fs::read_to_string(path).map_err(|e| Fail::usage(format!("config {shown}: {e}")))?;
    let c: Config = toml::from_str(&text).map_err(|e| {
        // The error's own text spans lines (it quotes the file); one line says as much.
        let at = e.span().map(|r| {
            let line = text[..r.start.min(text.len())].matches('\n').count() + 1;
            format!(" at line {line}")
        });
        Fail::usage(format!(
            "config {shown}{}: {}",
            at.unwrap_or_default(),
            e.message()
        ))
    })?;
    Ok(Policy {
        rules: c
            .allow
            .into_iter()
            .map(|r| Rule {
                prefix: r.prefix,
                uids: r.uids,
                gids: r.gids,
                register: r.register,
            })
            .collect(),
    })
}

#[cfg(target_os = "linux")]
fn socket(p: Option<PathBuf>) -> Result<PathBuf, Fail> {
    match p {
        Some(p) => Ok(p),
        None => Ok(shmkit::registry::default_socket()?),
    }
}

/// Connects, with this command's own remedy when no registry serves there. The default
/// socket is checked to be served by this user (`Client::connect_default`).
#[cfg(target_os = "linux")]
fn connect(p: Option<PathBuf>) -> Result<Client, Fail> {
    match p {
        Some(p) => Client::connect(p),
        None => Client::connect_default(),
    }
    .map_err(|e| {
        if e.kind() == shmkit::ErrorKind::NotFound {
            Fail::from(e.with_hint(
                "start one: `shmkit registry serve` (see its --help for a systemd unit)",
            ))
        } else {
            Fail::from(e)
        }
    })
}

/// macOS: the bootstrap server of this login session.
#[cfg(target_os = "macos")]
fn connect() -> Result<Client, Fail> {
    Ok(Client::connect_default()?)
}

pub fn run(a: Args) -> CmdResult {
    match a.what {
        #[cfg(target_os = "linux")]
        What::Serve(s) => serve(s),
        What::Ls(l) => ls(l),
        What::Lookup(l) => lookup(l),
    }
}

#[cfg(target_os = "linux")]
fn serve(a: ServeArgs) -> CmdResult {
    let policy = match &a.config {
        Some(p) => policy(p)?,
        None => Policy::default(),
    };
    let (server, whence) = match Server::from_systemd()? {
        Some(s) if a.socket.is_none() => (s, "the socket systemd passed".to_string()),
        _ => {
            let path = socket(a.socket)?;
            (Server::bind(&path)?, path.display().to_string())
        }
    };
    // Each stored handle and connection is an fd of the registry, and each handle sent
    // and unread counts against its open-file limit: a server raises its soft limit to the
    // hard one (the bounds follow it).
    let nofile = raise_nofile();
    let mut bounds = Bounds::for_nofile(nofile);
    if let Some(n) = a.max_names {
        bounds.names = n;
        bounds.names_per_uid = (n / 4).max(1);
    }
    if let Some(n) = a.max_connections {
        // Each connection may hold a frame's handles while it is read, with the handles
        // stored: more than the open-file limit holds would fail frames for everyone.
        let need = n
            .saturating_mul(1 + bounds.handles)
            .saturating_add(bounds.stored_handles)
            .saturating_add(16);
        if u64::try_from(need).unwrap_or(u64::MAX) > nofile {
            return Err(Fail::usage(format!(
                "--max-connections {n} needs up to {need} open files ({} per connection, {} \
                 stored handles) but the open-file limit is {nofile}: raise it (ulimit -n, \
                 LimitNOFILE= in a unit) or allow fewer connections (at most {})",
                1 + bounds.handles,
                bounds.stored_handles,
                (nofile as usize).saturating_sub(bounds.stored_handles + 16) / (1 + bounds.handles)
            )));
        }
        // One uid other than the registry's keeps a quarter of them, as by default.
        bounds.connections = n;
        bounds.per_uid = (n / 4).max(1);
    }
    let server = server.policy(policy)?.bounds(bounds);
    // Under systemd stderr goes to the journal, which takes a priority prefix and keeps its
    // own time stamps.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let log = move |line: &str| {
        if journal {
            eprintln!("<6>{}", quote::text(line));
        } else {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            eprintln!("shmkit registry [{t:.3}] {}", quote::text(line));
        }
    };
    log(&format!("serving on {whence} (open-file limit {nofile})"));
    server.run(log)?;
    Ok(0)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (at most 65,536); returns the soft
/// limit in force.
#[cfg(target_os = "linux")]
fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Nofile);
    let want = l.maximum.map_or(65_536, |m| m.min(65_536));
    if l.current.is_some_and(|c| c < want) {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: l.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

fn info_json(i: &Info) -> serde_json::Value {
    serde_json::json!({
        "name": i.name,
        "pid": i.pid,
        "uid": i.uid,
        "gid": i.gid,
        "since": i.since,
        "persistent": i.persistent,
        "handles": i.handles.iter().map(|h| serde_json::json!({
            "kind": h.kind.name(), "size": h.size, "device": h.device, "inode": h.inode,
        })).collect::<Vec<_>>(),
    })
}

fn handles_text(i: &Info) -> String {
    i.handles
        .iter()
        .map(|h| format!("{} {}", h.kind, shmkit::size::human(h.size)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ls(a: LsArgs) -> CmdResult {
    #[cfg(target_os = "linux")]
    let mut c = connect(a.socket)?;
    #[cfg(target_os = "macos")]
    let mut c = connect()?;
    let names = c.list()?;
    if a.json {
        let v: Vec<_> = names.iter().map(info_json).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(0);
    }
    if names.is_empty() {
        println!("no names are registered");
        return Ok(0);
    }
    println!(
        "{:<32} {:>8} {:>6} {:<10} HANDLES",
        "NAME", "PID", "UID", "LIFETIME"
    );
    for i in &names {
        println!(
            "{:<32} {:>8} {:>6} {:<10} {}",
            quote::text(&i.name),
            i.pid,
            i.uid,
            if i.persistent {
                "persistent"
            } else {
                "process"
            },
            handles_text(i)
        );
    }
    Ok(0)
}

fn lookup(a: LookupArgs) -> CmdResult {
    #[cfg(target_os = "linux")]
    let mut c = connect(a.socket)?;
    #[cfg(target_os = "macos")]
    let mut c = connect()?;
    let e = c.lookup(&a.name)?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&info_json(&e.info)).expect("json")
        );
        return Ok(0);
    }
    let i = &e.info;
    println!("name       {}", quote::text(&i.name));
    println!(
        "registered by pid {} (uid {}, gid {}), since {} (unix time)",
        i.pid, i.uid, i.gid, i.since
    );
    println!(
        "lifetime   {}",
        if i.persistent {
            "persistent: stays after its process"
        } else {
            "goes with its process"
        }
    );
    println!("handles    {}", handles_text(i));
    Ok(0)
}
