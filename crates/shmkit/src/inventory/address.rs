//! How the inventory names every IPC object: `/NAME`, `shm:ID`, `key:KEY`, `memfd:PID:FD`,
//! `sem:ID`, `msg:ID`, `psem:/NAME`, `mq:/NAME`.

use super::Kind;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::str::FromStr;

/// The address of one IPC object.
///
/// ```
/// use shmkit::inventory::{Address, Kind};
/// let a: Address = "key:0x1234".parse().unwrap();
/// assert_eq!(a, Address::SysvShmKey(0x1234));
/// assert_eq!(a.kind(), Kind::SysvShm);
/// assert_eq!("/data".parse::<Address>().unwrap().to_string(), "/data");
/// assert_eq!("memfd:42:7".parse::<Address>().unwrap(), Address::Memfd { pid: 42, fd: 7 });
/// assert!("shm:x".parse::<Address>().is_err());
/// // A named semaphore lives in /dev/shm as sem.NAME: it is not a segment.
/// assert!("/sem.x".parse::<Address>().unwrap_err().contains("psem:/x"));
/// ```
///
/// POSIX names are kept as the exact bytes the OS has (`OsString`): a name that is not UTF-8
/// still names its object. `Display` shows such bytes lossily; use [`Address::parse_os`] to
/// parse one from a command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    /// `/NAME`: POSIX shared memory.
    PosixShm(OsString),
    /// `shm:ID`: System V shared memory by id.
    SysvShmId(i32),
    /// `key:KEY`: System V shared memory by key (`0x` hex or decimal).
    SysvShmKey(i32),
    /// `memfd:PID:FD`: a memfd held as file descriptor FD by process PID.
    Memfd {
        /// The holding process.
        pid: i32,
        /// Its fd number there.
        fd: i32,
    },
    /// `memfd:PID:map:INODE`: a memfd that process PID maps but holds no fd to (read through
    /// `/proc/PID/map_files`, which needs root).
    MemfdMap {
        /// The mapping process.
        pid: i32,
        /// The memfd's inode.
        inode: u64,
    },
    /// `sem:ID`: a System V semaphore set.
    SysvSem(i32),
    /// `msg:ID`: a System V message queue.
    SysvMsg(i32),
    /// `psem:/NAME`: a POSIX named semaphore.
    PosixSem(OsString),
    /// `mq:/NAME`: a POSIX message queue.
    PosixMq(OsString),
}

impl Address {
    /// The kind of object the address names: the kind of what lives there, never
    /// [`Kind::Channel`]. What [`find`](super::find) finds at a `/NAME` may be a channel,
    /// whose [`backing_kind`](super::Object::backing_kind) is this kind.
    pub fn kind(&self) -> Kind {
        match self {
            Address::PosixShm(_) => Kind::PosixShm,
            Address::SysvShmId(_) | Address::SysvShmKey(_) => Kind::SysvShm,
            Address::Memfd { .. } | Address::MemfdMap { .. } => Kind::Memfd,
            Address::SysvSem(_) => Kind::SysvSem,
            Address::SysvMsg(_) => Kind::SysvMsg,
            Address::PosixSem(_) => Kind::PosixSem,
            Address::PosixMq(_) => Kind::PosixMq,
        }
    }

    /// The POSIX name (`/NAME`, exact bytes) of a POSIX object, `None` for the others.
    pub fn posix_name(&self) -> Option<&OsStr> {
        match self {
            Address::PosixShm(n) | Address::PosixSem(n) | Address::PosixMq(n) => Some(n),
            _ => None,
        }
    }

    /// Parses an address given as raw bytes (a command-line argument): like `parse`, but a
    /// POSIX name may hold bytes that are not UTF-8.
    ///
    /// # Errors
    /// A message that says what is wrong: bytes that are not UTF-8 outside a POSIX name, or a
    /// form that `parse` refuses.
    pub fn parse_os(s: &OsStr) -> Result<Address, String> {
        if let Some(text) = s.to_str() {
            return text.parse();
        }
        let b = s.as_bytes();
        let (prefix, name): (&[u8], &[u8]) = if b.starts_with(b"/") {
            (b"", b)
        } else if let Some(r) = b.strip_prefix(b"psem:") {
            (b"psem:", r)
        } else if let Some(r) = b.strip_prefix(b"mq:") {
            (b"mq:", r)
        } else {
            return Err(format!(
                "invalid object '{}': only POSIX names (/NAME, psem:/NAME, mq:/NAME) may hold \
                 bytes that are not UTF-8",
                s.to_string_lossy()
            ));
        };
        let prefix = std::str::from_utf8(prefix).expect("ASCII");
        let name = posix_name(prefix, OsStr::from_bytes(name))?;
        Ok(match prefix {
            "" => Address::PosixShm(name),
            "psem:" => Address::PosixSem(name),
            _ => Address::PosixMq(name),
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::PosixShm(n) => write!(f, "{}", n.to_string_lossy()),
            Address::SysvShmId(id) => write!(f, "shm:{id}"),
            Address::SysvShmKey(k) => write!(f, "key:{:#010x}", *k as u32),
            Address::Memfd { pid, fd } => write!(f, "memfd:{pid}:{fd}"),
            Address::MemfdMap { pid, inode } => write!(f, "memfd:{pid}:map:{inode}"),
            Address::SysvSem(id) => write!(f, "sem:{id}"),
            Address::SysvMsg(id) => write!(f, "msg:{id}"),
            Address::PosixSem(n) => write!(f, "psem:{}", n.to_string_lossy()),
            Address::PosixMq(n) => write!(f, "mq:{}", n.to_string_lossy()),
        }
    }
}

/// Parses a System V key: `0x` hex or decimal, as `ipcs` prints and `ipcrm -M` takes.
///
/// # Errors
/// A message that says what is wrong: not a number, more than 32 bits, or 0 (`IPC_PRIVATE`,
/// which names no object).
pub fn parse_key(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(h, 16)
                .map_err(|_| format!("invalid key '{text}': above 32 bits (at most 0xffffffff)"))?
        } else {
            return Err(format!("invalid key '{text}': not a hex number"));
        }
    } else if let Some(neg) = t.strip_prefix('-') {
        // ipcs and /proc print keys as signed decimals.
        let n: u32 = neg.parse().map_err(|_| format!("invalid key '{text}'"))?;
        if n > 1 << 31 {
            return Err(format!("invalid key '{text}': out of range"));
        }
        (n as i64).wrapping_neg() as u32
    } else {
        match t.parse::<u64>() {
            Ok(n) if n > u32::MAX as u64 => {
                return Err(format!(
                    "invalid key '{text}': above 32 bits (at most 4294967295)"
                ))
            }
            Ok(n) => n as u32,
            Err(_) => {
                return Err(format!(
                    "invalid key '{text}': use 0x hex or decimal, at most 0xffffffff"
                ))
            }
        }
    };
    if v == 0 {
        return Err("key 0 is IPC_PRIVATE, which names no object; use shm:ID".into());
    }
    Ok(v as i32)
}

fn parse_id(what: &str, text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| format!("invalid {what} '{text}': expected a non-negative integer"))
}

fn posix_name(prefix: &str, name: &OsStr) -> Result<OsString, String> {
    let b = name.as_bytes();
    let shown = name.to_string_lossy();
    if !b.starts_with(b"/") || b.len() <= 1 || b[1..].contains(&b'/') || b.contains(&0) {
        return Err(format!(
            "invalid name '{prefix}{shown}': expected {prefix}/NAME with no other '/'"
        ));
    }
    // glibc's sem_open keeps a named semaphore in /dev/shm as sem.NAME: as a segment name it
    // would reach (and overwrite) the semaphore's bytes.
    if prefix.is_empty() {
        if b == b"/sem." {
            return Err(format!(
                "'{shown}' is not a segment name: /dev/shm/sem.NAME is where glibc keeps the \
                 named semaphore psem:/NAME"
            ));
        }
        if let Some(sem) = b.strip_prefix(b"/sem.") {
            return Err(format!(
                "'{shown}' is where the named semaphore psem:/{} lives, not a shared-memory \
                 segment: address it as psem:/{}",
                String::from_utf8_lossy(sem),
                String::from_utf8_lossy(sem)
            ));
        }
    }
    Ok(name.to_os_string())
}

impl FromStr for Address {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with('/') {
            return posix_name("", OsStr::new(s)).map(Address::PosixShm);
        }
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(format!(
                "invalid object '{s}': use /NAME, shm:ID, key:KEY, memfd:PID:FD, sem:ID, msg:ID, psem:/NAME or mq:/NAME"
            ));
        };
        match scheme {
            "shm" => parse_id("shm id", rest).map(Address::SysvShmId),
            "key" => parse_key(rest).map(Address::SysvShmKey),
            "sem" => parse_id("semaphore set id", rest).map(Address::SysvSem),
            "msg" => parse_id("message queue id", rest).map(Address::SysvMsg),
            "psem" => posix_name("psem:", OsStr::new(rest)).map(Address::PosixSem),
            "mq" => posix_name("mq:", OsStr::new(rest)).map(Address::PosixMq),
            "memfd" => {
                let (pid, fd) = rest
                    .split_once(':')
                    .ok_or_else(|| format!("invalid object '{s}': expected memfd:PID:FD"))?;
                let pid = parse_id("pid", pid)?;
                if pid == 0 {
                    return Err(format!("invalid object '{s}': pid 0"));
                }
                if let Some(inode) = fd.strip_prefix("map:") {
                    let inode = inode.parse().map_err(|_| format!("invalid object '{s}': expected memfd:PID:map:INODE"))?;
                    return Ok(Address::MemfdMap { pid, inode });
                }
                Ok(Address::Memfd { pid, fd: parse_id("fd", fd)? })
            }
            _ => Err(format!(
                "invalid object '{s}': unknown kind '{scheme}:' (use shm:, key:, memfd:, sem:, msg:, psem:, mq: or /NAME)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips() {
        for s in [
            "/a",
            "shm:7",
            "key:0x0000abcd",
            "memfd:12:3",
            "memfd:12:map:99",
            "sem:0",
            "msg:5",
            "psem:/s",
            "mq:/q",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
        assert_eq!(
            "key:4660".parse::<Address>().unwrap(),
            Address::SysvShmKey(0x1234)
        );
        assert_eq!(
            "key:0xffffffff".parse::<Address>().unwrap(),
            Address::SysvShmKey(-1)
        );
        assert_eq!(
            "key:-1".parse::<Address>().unwrap(),
            Address::SysvShmKey(-1)
        );
    }

    #[test]
    fn names_that_are_not_utf8_are_kept_exact() {
        let raw = OsStr::from_bytes(b"/a\xff\x1b[31m");
        let a = Address::parse_os(raw).unwrap();
        assert_eq!(a.posix_name(), Some(raw));
        let psem = OsStr::from_bytes(b"psem:/\xfe");
        assert_eq!(
            Address::parse_os(psem).unwrap(),
            Address::PosixSem(OsStr::from_bytes(b"/\xfe").into())
        );
        assert!(Address::parse_os(OsStr::from_bytes(b"shm:\xff")).is_err());
        assert!(Address::parse_os(OsStr::from_bytes(b"/sem.\xff")).is_err());
    }

    #[test]
    fn bad_forms_say_what_is_expected() {
        for (s, want) in [
            ("shm:-1", "non-negative"),
            ("key:0", "IPC_PRIVATE"),
            ("key:0x1ffffffff", "above 32 bits"),
            ("key:4294967296", "above 32 bits"),
            ("key:0xzz", "not a hex number"),
            ("/sem.x", "psem:/x"),
            ("memfd:1", "memfd:PID:FD"),
            ("psem:x", "psem:/NAME"),
            ("/a/b", "no other '/'"),
            ("foo:1", "unknown kind"),
            ("name", "use /NAME"),
        ] {
            let e = s.parse::<Address>().unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }
}
