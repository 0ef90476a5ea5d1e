//! Who holds what: one pass over `/proc/PID/maps` and `/proc/PID/fd`.

use crate::platform::facts::{FileStat, HeldKey, HolderScan, MemfdSeen};
use crate::platform::FsKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

/// Whether `pid` is a kernel thread (`PF_KTHREAD` in the flags of `/proc/PID/stat`): it has no
/// memory map and no fd table of its own, so it holds no IPC object.
fn kernel_thread(pid: i32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|st| {
            // The command may contain spaces and parentheses: fields resume after the last ')'.
            let rest = &st[st.rfind(')')? + 1..];
            rest.split_whitespace().nth(6)?.parse::<u64>().ok()
        })
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

/// Whether the file at `path` is on an mqueue file system.
fn on_mqueue(path: &std::path::Path) -> bool {
    super::super::fs_kind_path(path) == FsKind::Mqueue
}

/// One pass over `/proc/PID/maps` and `/proc/PID/fd` for every process: linear in the number
/// of processes and their mappings and fds.
pub(crate) fn scan_holders() -> crate::error::Result<HolderScan> {
    let mut scan = HolderScan::default();
    let pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    for pid in pids {
        let mut found = false;
        match std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            Ok(maps) => {
                for line in maps.lines() {
                    if let Some((key, name)) = parse_maps_line(line) {
                        scan.held
                            .entry(key)
                            .or_default()
                            .entry(pid)
                            .or_default()
                            .maps = true;
                        if let (HeldKey::Memfd(ino), Some(name)) = (key, name) {
                            let range = line.split(' ').next().unwrap_or_default().to_string();
                            scan.memfds.entry(ino).or_insert(MemfdSeen {
                                name,
                                first_fd: None,
                                first_map: (pid, range),
                                stat: None,
                            });
                        }
                        found = true;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // exited
            Err(_) => {
                if !kernel_thread(pid) {
                    scan.unreadable.push((pid, comm(pid)));
                }
                continue;
            }
        }
        let fd_dir = format!("/proc/{pid}/fd");
        let fds = match std::fs::read_dir(&fd_dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // exited
            Err(_) => {
                if !kernel_thread(pid) {
                    scan.unreadable.push((pid, comm(pid)));
                }
                continue;
            }
        };
        for fd in fds.flatten() {
            let Some(n) = fd.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            let is_shm = t.starts_with("/dev/shm/");
            let memfd_name = t
                .strip_prefix("/memfd:")
                .map(|r| r.strip_suffix(" (deleted)").unwrap_or(r).to_string());
            // A queue descriptor links to `/NAME` on the kernel's internal mqueue mount: a
            // path with one '/', which a file at the root of a disk could also have, so the
            // file system says which it is.
            let t_bytes = target.as_os_str().as_bytes();
            let is_mq = !is_shm
                && memfd_name.is_none()
                && t_bytes.len() > 1
                && t_bytes[0] == b'/'
                && !t_bytes[1..].contains(&b'/')
                && on_mqueue(&fd.path());
            if !is_shm && memfd_name.is_none() && !is_mq {
                continue;
            }
            // stat through the link: the object's own inode, size and mode.
            let Ok(meta) = std::fs::metadata(fd.path()) else {
                continue;
            };
            let key = if is_shm {
                HeldKey::ShmFs(meta.ino())
            } else if is_mq {
                HeldKey::Mq(meta.ino())
            } else {
                HeldKey::Memfd(meta.ino())
            };
            scan.held
                .entry(key)
                .or_default()
                .entry(pid)
                .or_default()
                .fds
                .push(n);
            if let Some(name) = memfd_name {
                let seen = scan.memfds.entry(meta.ino()).or_insert(MemfdSeen {
                    name,
                    first_fd: None,
                    first_map: (pid, String::new()),
                    stat: None,
                });
                if seen.first_fd.is_none() {
                    seen.first_fd = Some((pid, n));
                }
                seen.stat = Some(FileStat::of(&meta));
            }
            found = true;
        }
        if found {
            scan.comm.insert(pid, comm(pid));
        }
    }
    for seen in scan.memfds.values_mut() {
        if seen.stat.is_none() {
            // Mapped only: its size and mode are readable through map_files (root only).
            seen.stat = std::fs::metadata(format!(
                "/proc/{}/map_files/{}",
                seen.first_map.0, seen.first_map.1
            ))
            .ok()
            .map(|m| FileStat::of(&m));
        }
    }
    for h in scan.held.values_mut() {
        for holding in h.values_mut() {
            holding.fds.sort_unstable();
        }
    }
    Ok(scan)
}

/// The command name (`/proc/PID/comm`): any bytes a process set with `PR_SET_NAME`, so read
/// as bytes and shown lossily (a name that is not UTF-8 would otherwise read as nothing).
fn comm(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/comm"))
        .map(|c| String::from_utf8_lossy(c.strip_suffix(b"\n").unwrap_or(&c)).into_owned())
        .unwrap_or_default()
}

/// `7f..-7f.. rw-s 00000000 00:01 1234   /dev/shm/name` → what it maps.
fn parse_maps_line(line: &str) -> Option<(HeldKey, Option<String>)> {
    let mut it = line.splitn(6, ' ');
    // Shared or private, a mapping keeps the object alive and reads its pages: a holder.
    let (_range, _perms, _off, _dev) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let inode: u64 = it.next()?.parse().ok()?;
    let path = it.next()?.trim_start();
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    if path.starts_with("/dev/shm/") {
        Some((HeldKey::ShmFs(inode), None))
    } else if let Some(name) = path.strip_prefix("/memfd:") {
        Some((HeldKey::Memfd(inode), Some(name.to_string())))
    } else if path.starts_with("/SYSV") {
        // The inode of a System V mapping is the segment's id.
        Some((HeldKey::Sysv(inode as i32), None))
    } else {
        None
    }
}

/// Whether `fd` (one this process holds) is a memfd: a shmem inode (tmpfs, or hugetlbfs for
/// `MFD_HUGETLB`) whose `/proc/self/fd` link reads `/memfd:NAME (deleted)`, as the kernel names
/// every memfd. (Only an unlinked file called `/memfd:...` on a tmpfs root could look the same.)
pub(crate) fn is_memfd(fd: rustix::fd::BorrowedFd<'_>) -> bool {
    use rustix::fd::AsRawFd;
    let Ok(link) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return false;
    };
    let shmem = matches!(super::super::fs_kind(fd), FsKind::Tmpfs | FsKind::Hugetlbfs);
    let link = link.as_os_str().as_bytes();
    shmem && link.starts_with(b"/memfd:") && link.ends_with(b" (deleted)")
}

/// `/proc/PID/map_files/START-END` of a mapping of the memfd with this inode.
pub(crate) fn map_file(pid: i32, inode: u64) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines().find_map(|l| match parse_maps_line(l) {
        Some((HeldKey::Memfd(ino), _)) if ino == inode => {
            Some(format!("/proc/{pid}/map_files/{}", l.split(' ').next()?))
        }
        _ => None,
    })
}

/// The inode behind `/proc/PID/fd/FD`.
pub(crate) fn fd_inode(pid: i32, fd: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|m| m.ino())
}

/// The path that opens another process's fd (`/proc/PID/fd/FD`).
pub(crate) fn fd_path(pid: i32, fd: i32) -> String {
    format!("/proc/{pid}/fd/{fd}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let l = "7f00-7f01 rw-s 00000000 00:1a 42                         /dev/shm/x";
        assert_eq!(parse_maps_line(l), Some((HeldKey::ShmFs(42), None)));
        let l = "7f00-7f01 rw-s 00000000 00:01 7                          /SYSV00001234 (deleted)";
        assert_eq!(parse_maps_line(l), Some((HeldKey::Sysv(7), None)));
        let l = "7f00-7f01 r--s 00000000 00:01 99                         /memfd:my name (deleted)";
        assert_eq!(
            parse_maps_line(l),
            Some((HeldKey::Memfd(99), Some("my name".into())))
        );
        let l = "7f00-7f01 r--p 00000000 00:1a 42                         /dev/shm/x";
        assert_eq!(parse_maps_line(l), Some((HeldKey::ShmFs(42), None)));
        let l = "7f00-7f01 r--p 00000000 08:01 42                         /usr/lib/libc.so.6";
        assert_eq!(parse_maps_line(l), None);
        assert_eq!(parse_maps_line("7f00-7f01 rw-p 00000000 00:00 0 "), None);
    }
}
