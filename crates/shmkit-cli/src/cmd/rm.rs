//! `shmkit rm`: remove objects of any kind, like `ipcrm`.

use crate::fail::{code, CmdResult, Fail};
use crate::quote;
use crate::render;
use shmkit::inventory::{self, Address, Kind};

/// Remove IPC objects. Every argument is checked first: if one is invalid, names nothing or
/// may not be removed by this user, nothing is removed. --dry-run makes the same checks.
///
/// System V shared memory still attached somewhere is marked for removal and destroyed at its
/// last detach; POSIX objects disappear from their namespace at once, and processes that have
/// them open keep them until they close them. A memfd has no name and cannot be removed.
#[derive(clap::Args)]
pub struct Args {
    /// The objects: /NAME, shm:ID, key:KEY, sem:ID, msg:ID, psem:/NAME, mq:/NAME.
    #[arg(required = true, value_parser = crate::parse::address())]
    objects: Vec<Address>,
    /// Say what would be removed, and remove nothing.
    #[arg(long, short = 'n')]
    dry_run: bool,
}

pub fn run(a: Args) -> CmdResult {
    // Resolve everything before touching anything.

    let mut found = Vec::new();
    for addr in &a.objects {
        if addr.kind() == Kind::Memfd {
            return Err(Fail::usage(format!(
                "{addr}: a memfd has no name to remove; it disappears when every process holding it closes it. Nothing was removed."
            )));
        }
        let o = inventory::find(addr, false).map_err(|e| nothing_removed(addr, e))?;
        if found
            .iter()
            .any(|(_, p): &(Address, shmkit::inventory::Object)| p.address == o.address)
        {
            continue; // named twice (e.g. by key and by id)
        }
        // What the kernel would refuse, refused before anything is removed.
        inventory::check_removable(&o).map_err(|e| nothing_removed(addr, e))?;
        found.push((addr.clone(), o));
    }
    let mut failed = None;
    for (addr, o) in &found {
        let what = describe(o);
        if a.dry_run {
            println!("would remove {} ({what})", quote::address(addr));
            continue;
        }
        // Remove by the resolved address: a key could be reused between lookup and removal.
        match inventory::remove(&o.address) {
            Ok(()) => println!("removed {} ({what})", quote::address(addr)),
            Err(e) => {
                let f = Fail::about(addr)(e);
                eprintln!("shmkit: {}", quote::text(&f.message));
                failed = Some(f.code);
            }
        }
    }
    Ok(failed.unwrap_or(code::OK))
}

/// A refusal found while checking the arguments: nothing has been touched.
fn nothing_removed(addr: &Address, e: shmkit::Error) -> Fail {
    let mut f = Fail::about(addr)(e);
    f.message.push_str(". Nothing was removed.");
    f
}

fn describe(o: &shmkit::inventory::Object) -> String {
    let mut parts = vec![render::kind_long(o)];
    if let Some(k) = o.key.filter(|k| *k != 0) {
        parts.push(format!("key {:#010x}", k as u32));
    }
    if o.kind == Kind::SysvShm {
        parts.push(o.address.to_string());
    }
    if let Some(s) = o.size {
        parts.push(shmkit::size::count(s, "byte", "bytes"));
    }
    parts.push(format!("owner {}", quote::text(&render::user(o.uid))));
    if let Some(n) = o.nattch.filter(|n| *n > 0) {
        parts.push(format!("{n} attached: destroyed at the last detach"));
    }
    parts.join(", ")
}
