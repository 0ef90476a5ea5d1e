//! Linux IPC limits: `/proc/sys/kernel/*`, `/proc/sys/fs/mqueue/*`, the `/dev/shm` tmpfs.

use super::proc_u64;
use crate::error::Result;
use crate::inventory::{Kind, ListOptions};
use crate::limits::Limit;

fn sysctl(name: &str, path: &str) -> String {
    format!("sysctl -w {name}=VALUE (as root; persist it in /etc/sysctl.d/*.conf); file {path}")
}

/// A limit read from `/proc/sys/{dir}/{name}`, which is sysctl `{dir with dots}.{name}`.
fn proc_limit(
    dir: &str,
    name: &'static str,
    unit: &'static str,
    meaning: &'static str,
    usage: Option<u64>,
) -> Limit {
    let path = format!("/proc/sys/{dir}/{name}");
    Limit {
        name,
        value: proc_u64(&path),
        unit,
        meaning,
        usage,
        bytes: None,
        change: sysctl(&format!("{}.{name}", dir.replace('/', ".")), &path),
        source: path,
    }
}

pub(crate) fn read() -> Result<Vec<Limit>> {
    let page = rustix::param::page_size() as u64;
    let listing = crate::inventory::list(&ListOptions {
        kinds: vec![Kind::SysvShm, Kind::SysvSem, Kind::SysvMsg],
        holders: false,
    })?;
    let of = |k: Kind| listing.objects.iter().filter(move |o| o.kind == k);
    let shm_sizes: Vec<u64> = of(Kind::SysvShm).filter_map(|o| o.size).collect();
    let sem_sizes: Vec<u64> = of(Kind::SysvSem)
        .filter_map(|o| o.nsems.map(u64::from))
        .collect();
    let msg_bytes: Vec<u64> = of(Kind::SysvMsg).filter_map(|o| o.size).collect();

    let k = |name, unit, meaning, usage| proc_limit("kernel", name, unit, meaning, usage);
    let mut out = vec![
        k("shmmax", "bytes", "largest System V shared-memory segment", shm_sizes.iter().copied().max()),
        {
            let mut l = k(
                "shmall",
                "pages",
                "all System V shared memory together",
                Some(shm_sizes.iter().map(|s| s.div_ceil(page)).sum()),
            );
            l.bytes = l.value.map(|v| v.saturating_mul(page));
            l
        },
        k("shmmni", "segments", "number of System V shared-memory segments", Some(shm_sizes.len() as u64)),
        Limit {
            name: "shmmin",
            value: Some(1),
            unit: "bytes",
            meaning: "smallest System V shared-memory segment",
            source: "a constant of the Linux kernel (SHMMIN)".into(),
            usage: shm_sizes.iter().copied().min(),
            bytes: None,
            change: "fixed in the kernel".into(),
        },
        Limit {
            name: "shmseg",
            value: proc_u64("/proc/sys/kernel/shmmni"),
            unit: "segments",
            meaning: "System V segments one process may attach (Linux has no separate limit: SHMSEG = SHMMNI)",
            source: "the Linux kernel (SHMSEG is SHMMNI): /proc/sys/kernel/shmmni".into(),
            usage: None,
            bytes: None,
            change: sysctl("kernel.shmmni", "/proc/sys/kernel/shmmni"),
        },
        k(
            "shm_rmid_forced",
            "boolean",
            "1: segments are destroyed when their last process exits, even without IPC_RMID",
            None,
        ),
        k("msgmax", "bytes", "largest System V message", None),
        k("msgmnb", "bytes", "bytes one System V message queue may hold", msg_bytes.iter().copied().max()),
        k("msgmni", "queues", "number of System V message queues", Some(msg_bytes.len() as u64)),
    ];
    // /proc/sys/kernel/sem: SEMMSL SEMMNS SEMOPM SEMMNI.
    let sem = super::kernel_sem();
    let sem_limits: [(&'static str, &'static str, &'static str, Option<u64>); 4] = [
        (
            "semmsl",
            "semaphores",
            "semaphores in one System V set",
            sem_sizes.iter().copied().max(),
        ),
        (
            "semmns",
            "semaphores",
            "System V semaphores in all sets",
            Some(sem_sizes.iter().sum()),
        ),
        ("semopm", "operations", "operations in one semop call", None),
        (
            "semmni",
            "sets",
            "number of System V semaphore sets",
            Some(sem_sizes.len() as u64),
        ),
    ];
    for (i, (name, unit, meaning, usage)) in sem_limits.into_iter().enumerate() {
        out.push(Limit {
            name,
            value: sem.get(i).copied(),
            unit,
            meaning,
            source: format!("/proc/sys/kernel/sem (field {} of 4)", i + 1),
            usage,
            bytes: None,
            change:
                "sysctl -w kernel.sem='SEMMSL SEMMNS SEMOPM SEMMNI' (as root; all four at once)"
                    .into(),
        });
    }
    // POSIX shared memory is bounded by the tmpfs behind /dev/shm.
    if let Ok(vfs) = rustix::fs::statvfs("/dev/shm") {
        let frsize = vfs.f_frsize;
        let limit = |name, unit, meaning, value, usage| {
            Limit {
            name,
            value: Some(value),
            unit,
            meaning,
            source: "statvfs(/dev/shm)".into(),
            usage: Some(usage),
            bytes: None,
            change: "mount -o remount,size=SIZE,nr_inodes=N /dev/shm (as root; persist it in /etc/fstab)".into(),
        }
        };
        out.push(limit(
            "dev_shm_size",
            "bytes",
            "capacity of the tmpfs holding POSIX shared memory and named semaphores",
            vfs.f_blocks * frsize,
            (vfs.f_blocks - vfs.f_bfree) * frsize,
        ));
        out.push(limit(
            "dev_shm_inodes",
            "objects",
            "files the /dev/shm tmpfs can hold (each POSIX object is one)",
            vfs.f_files,
            vfs.f_files - vfs.f_ffree,
        ));
    }
    let queues = super::inventory::posix_mq()
        .ok()
        .flatten()
        .map(|q| q.len() as u64);
    for (name, unit, meaning, usage) in [
        (
            "queues_max",
            "queues",
            "POSIX message queues on the system",
            queues,
        ),
        (
            "msg_max",
            "messages",
            "largest mq_maxmsg an unprivileged mq_open may ask for",
            None,
        ),
        (
            "msgsize_max",
            "bytes",
            "largest mq_msgsize an unprivileged mq_open may ask for",
            None,
        ),
        (
            "msg_default",
            "messages",
            "mq_maxmsg of a queue created without attributes",
            None,
        ),
        (
            "msgsize_default",
            "bytes",
            "mq_msgsize of a queue created without attributes",
            None,
        ),
    ] {
        out.push(proc_limit("fs/mqueue", name, unit, meaning, usage));
    }
    Ok(out)
}
