//! Linux IPC limits: `/proc/sys/kernel/*`, `/proc/sys/fs/mqueue/*`, the `/dev/shm` tmpfs.

use super::sysctl_u64;
use crate::error::Result;
use crate::platform::facts::{sysv_limit, LimitFact as Limit};

fn sysctl(name: &str, path: &str) -> String {
    format!("sysctl -w {name}=VALUE (as root; persist it in /etc/sysctl.d/*.conf); file {path}")
}

/// A limit read from `/proc/sys/{dir}/{name}`, which is sysctl `{dir with dots}.{name}`.
fn proc_limit(dir: &str, name: &'static str, unit: &'static str, meaning: &'static str) -> Limit {
    let path = format!("/proc/sys/{dir}/{name}");
    let dotted = format!("{}.{name}", dir.replace('/', "."));
    Limit {
        name,
        value: sysctl_u64(&dotted),
        unit,
        unit_bytes: None,
        meaning,
        usage: None,
        change: sysctl(&dotted, &path),
        source: path,
    }
}

/// Every IPC limit, as the kernel states it. Usage is the caller's to measure, except for what
/// only the file system knows (how full `/dev/shm` is).
pub(crate) fn read() -> Result<Vec<Limit>> {
    let page = rustix::param::page_size() as u64;
    let k = |name| {
        let (unit, meaning) = sysv_limit(name);
        proc_limit("kernel", name, unit, meaning)
    };
    let mut shmall = k("shmall");
    shmall.unit_bytes = Some(page);
    let mut out = vec![
        k("shmmax"),
        shmall,
        k("shmmni"),
        Limit {
            name: "shmmin",
            value: Some(1),
            unit: "bytes",
            unit_bytes: None,
            meaning: "smallest System V shared-memory segment",
            source: "a constant of the Linux kernel (SHMMIN)".into(),
            usage: None,
            change: "fixed in the kernel".into(),
        },
        Limit {
            name: "shmseg",
            value: sysctl_u64("kernel.shmmni"),
            unit: "segments",
            unit_bytes: None,
            meaning: "System V segments one process may attach (Linux has no separate limit: SHMSEG = SHMMNI)",
            source: "the Linux kernel (SHMSEG is SHMMNI): /proc/sys/kernel/shmmni".into(),
            usage: None,
            change: sysctl("kernel.shmmni", "/proc/sys/kernel/shmmni"),
        },
        proc_limit(
            "kernel",
            "shm_rmid_forced",
            "boolean",
            "1: segments are destroyed when their last process exits, even without IPC_RMID",
        ),
        k("msgmax"),
        k("msgmnb"),
        k("msgmni"),
    ];
    // /proc/sys/kernel/sem: SEMMSL SEMMNS SEMOPM SEMMNI.
    let sem = super::sysv_sem_limits();
    for (i, (name, value, unit, meaning)) in [
        (
            "semmsl",
            sem.semmsl,
            "semaphores",
            "semaphores in one System V set",
        ),
        (
            "semmns",
            sem.semmns,
            "semaphores",
            "System V semaphores in all sets",
        ),
        (
            "semopm",
            sem.semopm,
            "operations",
            "operations in one semop call",
        ),
        (
            "semmni",
            sem.semmni,
            "sets",
            "number of System V semaphore sets",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        out.push(Limit {
            name,
            value,
            unit,
            unit_bytes: None,
            meaning,
            source: format!("/proc/sys/kernel/sem (field {} of 4)", i + 1),
            usage: None,
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
            unit_bytes: None,
            meaning,
            source: "statvfs(/dev/shm)".into(),
            usage: Some(usage),
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
    for (name, unit, meaning) in [
        ("queues_max", "queues", "POSIX message queues on the system"),
        (
            "msg_max",
            "messages",
            "largest mq_maxmsg an unprivileged mq_open may ask for",
        ),
        (
            "msgsize_max",
            "bytes",
            "largest mq_msgsize an unprivileged mq_open may ask for",
        ),
        (
            "msg_default",
            "messages",
            "mq_maxmsg of a queue created without attributes",
        ),
        (
            "msgsize_default",
            "bytes",
            "mq_msgsize of a queue created without attributes",
        ),
    ] {
        out.push(proc_limit("fs/mqueue", name, unit, meaning));
    }
    Ok(out)
}
