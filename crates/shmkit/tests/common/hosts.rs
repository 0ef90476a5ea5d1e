//! Two "hosts" on one machine: network namespaces joined by a veth pair, each peer with its
//! own tmpfs on `/dev/shm` (so that nothing can pass through shared memory: what arrives
//! crossed the network stack). Needs root and iproute2's `ip`.

use super::{unique, Peer};
use std::process::Command;

/// Two network namespaces joined by a veth pair (`10.x.y.1` and `.2`), deleted on drop.
pub struct Hosts {
    pub names: [String; 2],
    pub addrs: [String; 2],
    /// Each host's end of the veth pair.
    pub links: [String; 2],
}

/// Runs `ip ARGS`; panics with its error, saying what the tests need.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {} (the bridge's host tests make network namespaces: they need root and \
         iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Deletes the namespaces an earlier run of these tests left when it was killed (named
/// `shmkit-h-PID-...`, PID a process that is gone): only ours, never another's.
fn sweep_stale_namespaces() {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let pid = name
            .strip_prefix("shmkit-h-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("ip").args(["netns", "del", name]).status();
            }
        }
    }
}

impl Hosts {
    pub fn new() -> Hosts {
        sweep_stale_namespaces();
        static K: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = unique("h");
        let names = [format!("shmkit-{id}-a"), format!("shmkit-{id}-b")];
        // veth names are at most 15 bytes, and made in this namespace before they move.
        let v = format!(
            "shv{}x{}",
            std::process::id() % 100_000,
            K.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100
        );
        let (va, vb) = (format!("{v}a"), format!("{v}b"));
        // The two namespaces see no other network: any addresses do.
        let addrs = ["10.201.0.1".to_string(), "10.201.0.2".to_string()];
        let hosts = Hosts {
            names: names.clone(),
            addrs: addrs.clone(),
            links: [va.clone(), vb.clone()],
        };
        for ns in &names {
            ip(&["netns", "add", ns]);
        }
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        for (i, v) in [&va, &vb].into_iter().enumerate() {
            ip(&["link", "set", v, "netns", &names[i]]);
            ip(&[
                "-n",
                &names[i],
                "addr",
                "add",
                &format!("{}/24", addrs[i]),
                "dev",
                v,
            ]);
            ip(&["-n", &names[i], "link", "set", v, "up"]);
            ip(&["-n", &names[i], "link", "set", "lo", "up"]);
        }
        hosts
    }

    /// Sets host 1's end of the link `up` or `down`.
    pub fn link(&self, state: &str) {
        ip(&["-n", &self.names[0], "link", "set", &self.links[0], state]);
    }

    /// Runs role `role` of this binary in host `i`, with its own `/dev/shm`.
    pub fn spawn(&self, i: usize, role: &str, args: &[&str]) -> Peer {
        let wrap = [
            "ip",
            "netns",
            "exec",
            &self.names[i],
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=64m,mode=1777 tmpfs /dev/shm && exec "$0" "$@""#,
        ];
        Peer::spawn_in(&wrap, role, args)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
