//! The inventory commands on macOS (compiled for both Apple targets here, run by the macOS
//! workflow), checked against the system's own `ipcs` and `sysctl`: System V segments through
//! the `kern.sysv.ipcs` sysctls, POSIX objects through the descriptors that hold them
//! (libproc), limits from `kern.sysv.*`. Linux's are in inventory.rs.
#![cfg(target_os = "macos")]

mod common;

use common::*;

/// A POSIX name that fits macOS's 31 bytes (the `/` included), unique to this run.
fn short_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = format!(
        "/smk{}.{}.{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    assert!(n.len() <= 31, "{n}");
    n
}

/// The ids `ipcs -m` lists (BSD format: `m  ID  KEY  MODE  OWNER  GROUP`).
fn ipcs_shm_ids() -> Vec<String> {
    tool("ipcs", &["-m"])
        .lines()
        .filter(|l| l.starts_with('m'))
        .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
        .collect()
}

#[test]
fn mk_sysv_shows_in_ls_and_ipcs_and_rm_removes_it() {
    let out = ok(&["mk", "sysv", "--private", "--size", "3K", "--mode", "0604"]);
    let addr = out.trim().to_string();
    let _g = Gone(vec![addr.clone()]);
    let id = addr.strip_prefix("shm:").unwrap().to_string();
    assert!(ipcs_shm_ids().contains(&id), "{}", tool("ipcs", &["-m"]));

    let ls = json(&["ls", "--kind", "sysv-shm", "--json"]);
    let mine = find(&ls, &addr).unwrap_or_else(|| panic!("{addr} not in {ls}"));
    assert_eq!(mine["kind"], "sysv-shm");
    assert_eq!(mine["size"], 3072);
    assert_eq!(mine["mode"], "0604");
    assert_eq!(mine["nattch"], 0);
    assert_eq!(
        mine["uid"].as_u64().unwrap() as u32,
        rustix::process::geteuid().as_raw()
    );
    assert_eq!(json(&["info", &addr, "--json"])["shmid"].to_string(), id);

    let r = shmkit(&["rm", &addr]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(!ipcs_shm_ids().contains(&id));
    assert!(find(&json(&["ls", "--kind", "sysv-shm", "--json"]), &addr).is_none());
}

#[test]
fn a_posix_object_this_process_holds_is_listed_with_its_holder_and_catted() {
    let name = short_name();
    let seg = shmkit::PosixShm::create(&name, 4096).unwrap();
    seg.write_at(0, b"held by a test\n").unwrap();
    let me = i64::from(std::process::id());

    let ls = json(&["ls", "--kind", "posix-shm", "--holders", "--json"]);
    let o = find(&ls, &name).unwrap_or_else(|| panic!("{name} not in {ls}"));
    assert!(o["holders"].as_array().unwrap().contains(&me.into()), "{o}");
    assert_eq!(ok(&["cat", &name, "--length", "15"]), "held by a test\n");
    let r = shmkit_in(
        &["write", &name, "--offset", "20"],
        b"and written by shmkit",
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let mut buf = [0u8; 21];
    seg.read_at(20, &mut buf).unwrap();
    assert_eq!(&buf, b"and written by shmkit");
    // Past the end (the size the command sees: macOS may round an object up to its page
    // size): refused whole, nothing written.
    let size = json(&["info", &name, "--json"])["size"].as_u64().unwrap();
    assert!(size >= 4096, "{size}");
    let at = (size - 6).to_string();
    let r = shmkit_in(&["write", &name, "--offset", &at], b"0123456789");
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("nothing was written"), "{}", r.err);
    let hex = ok(&["cat", &name, "--hex", "--offset", &at, "--length", "6"]);
    assert!(hex.contains(": 0000 0000 0000 "), "{hex}");

    // The creator unlinks it when dropped: gone from the listing.
    drop(seg);
    let ls = json(&["ls", "--kind", "posix-shm", "--json"]);
    assert!(find(&ls, &name).is_none(), "{ls}");
}

#[test]
fn posix_names_past_31_bytes_are_refused_with_the_limit() {
    let long = format!("/{}", "n".repeat(31));
    let r = shmkit(&["mk", "posix", &long, "--size", "4K"]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(r.err.contains("the limit is 30"), "{}", r.err);
    assert_eq!(r.err.lines().count(), 1, "{}", r.err);
}

#[test]
fn limits_agree_with_sysctl() {
    let l = json(&["limits", "--json"]);
    for name in ["shmmax", "shmmni", "shmseg", "shmall"] {
        let v: u64 = tool("sysctl", &["-n", &format!("kern.sysv.{name}")])
            .trim()
            .parse()
            .unwrap();
        if l[name].is_null() {
            continue; // not every limit is one this command reports
        }
        assert_eq!(l[name]["value"].as_u64(), Some(v), "{name}: {l}");
        assert!(!l[name]["change"].as_str().unwrap().is_empty(), "{name}");
    }
    assert!(l["shmmax"]["value"].as_u64().is_some(), "{l}");
}
