//! `shmkit registry` on macOS, where the bootstrap server is the registry: `ls` and `lookup`
//! show what this user's processes registered through the library; there is no `serve`.
// macOS only (compiled for both Apple targets here, run by the macOS workflow); Linux's
// command is tested in registry.rs.
#![cfg(target_os = "macos")]

mod common;

use common::*;
use shmkit::handle::Handle;
use shmkit::mach::MachMemory;
use shmkit::registry::{Client, RegisterOptions};

#[test]
fn ls_and_lookup_show_a_name_this_process_registered_and_forget_it_once_gone() {
    let name = unique("cli-registry/frames");
    let mem = MachMemory::new(65536).unwrap();
    let mut c = Client::connect_default().unwrap();
    c.register(
        &name,
        &[&Handle::memory_read_only(&mem).unwrap()],
        RegisterOptions::default(),
    )
    .unwrap();
    let me = std::process::id() as i64;

    let list = json(&["registry", "ls", "--json"]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {list}"));
    assert_eq!(row["pid"], me);
    assert_eq!(row["persistent"], false);
    assert_eq!(row["handles"][0]["kind"], "mach-memory");
    assert_eq!(row["handles"][0]["size"], 65536);

    let text = ok(&["registry", "ls"]);
    assert!(text.contains(&name), "{text}");
    let one = ok(&["registry", "lookup", &name]);
    assert!(one.contains(&format!("registered by pid {me}")), "{one}");
    assert!(one.contains("mach-memory 64 KiB"), "{one}");

    c.unregister(&name).unwrap();
    let r = shmkit(&["registry", "lookup", &name]);
    assert_ne!(r.code, 0, "{}", r.out);
    assert!(r.err.contains("nothing has the name"), "{}", r.err);
    let list = json(&["registry", "ls", "--json"]);
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == name.as_str()),
        "{list}"
    );
}

#[test]
fn there_is_no_registry_to_serve() {
    let r = shmkit(&["registry", "serve"]);
    assert_eq!(r.code, 2, "{}", r.err);
    assert!(r.err.contains("serve"), "{}", r.err);
}
