//! Linux sources of the inventory: `/proc/sysvipc/*`, `/dev/shm`, the mqueue file system, and
//! `/proc/PID/{maps,fd}` for holders. Reads only; opens, attaches and mounts nothing.

mod files;
mod holders;

pub(crate) use files::{mq_attr, mq_stat, mqueue_dir, posix_files, posix_mq, posix_shm_note};
pub(crate) use holders::{fd_inode, fd_path, is_memfd, map_file, scan_holders};

use crate::error::{Error, Result};
use crate::platform::facts::{Perm, SysvMsgRow, SysvSemRow, SysvShmRow};
use std::collections::HashMap;

/// Reads a file of the kernel's. One that is missing means the kernel lacks the feature
/// (System V IPC compiled out, `/proc` not mounted): the OS failed, no object is missing, so
/// the kind stays [`ErrorKind::Os`](crate::ErrorKind::Os).
pub(super) fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::io("read", path, &e).with_kind(crate::error::ErrorKind::Os))
}

/// A `/proc/sysvipc/*` table: its text, read once, and its column names.
struct SysvTable {
    text: String,
    columns: HashMap<String, usize>,
}

/// One row of a [`SysvTable`]: its cells, borrowed from the table's text.
struct Row<'a> {
    columns: &'a HashMap<String, usize>,
    cells: Vec<&'a str>,
}

impl Row<'_> {
    fn get(&self, col: &str) -> Option<&str> {
        self.cells.get(*self.columns.get(col)?).copied()
    }

    fn num<T: std::str::FromStr>(&self, col: &str) -> Option<T> {
        self.get(col)?.parse().ok()
    }

    /// Mode and ownership common to the three System V tables.
    fn perm(&self) -> Perm {
        Perm {
            key: self.num("key"),
            mode: self
                .get("perms")
                .and_then(|p| u32::from_str_radix(p, 8).ok())
                .unwrap_or(0),
            uid: self.num("uid"),
            gid: self.num("gid"),
            cuid: self.num("cuid"),
            cgid: self.num("cgid"),
        }
    }
}

impl SysvTable {
    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.text.lines().skip(1).map(|l| Row {
            columns: &self.columns,
            cells: l.split_whitespace().collect(),
        })
    }
}

/// Reads `/proc/sysvipc/TABLE`. Its rows are not copied into maps of strings: with thousands
/// of objects that copying was most of `shmkit ls`'s time.
fn sysvipc(table: &str) -> Result<SysvTable> {
    let text = read(&format!("/proc/sysvipc/{table}"))?;
    let columns = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .enumerate()
        .map(|(i, c)| (c.to_string(), i))
        .collect();
    Ok(SysvTable { text, columns })
}

/// Every System V segment, even those this user may not `IPC_STAT`.
pub(crate) fn sysv_shm() -> Result<Vec<SysvShmRow>> {
    Ok(sysvipc("shm")?
        .rows()
        .filter_map(|row| {
            Some(SysvShmRow {
                id: row.num("shmid")?,
                perm: row.perm(),
                size: row.num("size"),
                cpid: row.num("cpid"),
                lpid: row.num("lpid"),
                nattch: row.num("nattch"),
                atime: row.num("atime"),
                dtime: row.num("dtime"),
                ctime: row.num("ctime"),
                swap: row.num("swap"),
            })
        })
        .collect())
}

/// Every System V semaphore set.
pub(crate) fn sysv_sem() -> Result<Vec<SysvSemRow>> {
    Ok(sysvipc("sem")?
        .rows()
        .filter_map(|row| {
            Some(SysvSemRow {
                id: row.num("semid")?,
                perm: row.perm(),
                nsems: row.num("nsems")?,
                otime: row.num("otime"),
                ctime: row.num("ctime"),
            })
        })
        .collect())
}

/// Every System V message queue.
pub(crate) fn sysv_msg() -> Result<Vec<SysvMsgRow>> {
    Ok(sysvipc("msg")?
        .rows()
        .filter_map(|row| {
            Some(SysvMsgRow {
                id: row.num("msqid")?,
                perm: row.perm(),
                cbytes: row.num("cbytes"),
                qnum: row.num("qnum"),
                lspid: row.num("lspid"),
                lrpid: row.num("lrpid"),
                stime: row.num("stime"),
                rtime: row.num("rtime"),
                ctime: row.num("ctime"),
            })
        })
        .collect())
}
