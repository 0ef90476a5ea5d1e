//! The registry's wire format, defined here and nowhere else.
//!
//! Every frame is a handle message (see [`crate::handle`]: magic `SHMH`, version, handle
//! records, then the payload, with the handles' fds in `SCM_RIGHTS`); its payload is one
//! request or response:
//!
//! ```text
//! payload  = op:u8 body
//! str      = len:u16 bytes (UTF-8)
//! requests
//!   1 register    name:str persistent:u8     (the frame carries the handles)
//!   2 lookup      name:str
//!   3 unregister  name:str
//!   4 list        after:str                   (names after this one, at most 64: page on)
//!   5 wait        name:str timeout_ms:u32     (a lookup that waits for the name)
//! responses
//!   128 ok
//!   129 entry     info                        (the frame carries the handles)
//!   130 entries   count:u32 info*
//!   255 error     code:u16 message:str
//! info     = name:str pid:i32 uid:u32 gid:u32 since:u64 persistent:u8
//!            handles:u8 (kind:u8 size:u64 device:u64 inode:u64)*
//! ```
//! All integers are little-endian. Error codes: 1 not found, 2 exists, 3 refused (access
//! rule), 4 bad request, 5 full (a bound was reached), 6 timed out.

use crate::error::{Error, ErrorKind, Result};

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Register {
        name: String,
        persistent: bool,
    },
    Lookup {
        name: String,
    },
    Unregister {
        name: String,
    },
    /// The names after `after` (sorted; `""`: from the first), at most [`PAGE`] of them.
    List {
        after: String,
    },
    Wait {
        name: String,
        timeout_ms: u32,
    },
}

/// Most names in one `entries` answer; a full page means: ask again after its last name.
pub(crate) const PAGE: usize = 64;

/// What the registry knows of one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The name.
    pub name: String,
    /// The pid of the process that registered it.
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// Its gid.
    pub gid: u32,
    /// When it was registered, seconds since the epoch.
    pub since: u64,
    /// Whether it outlives its registering process.
    pub persistent: bool,
    /// Its handles: kind, size and inode of each.
    pub handles: Vec<HandleInfo>,
}

/// One handle of a registered name, as `list` shows it (the fds travel only with `lookup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleInfo {
    /// Its kind.
    pub kind: crate::handle::Kind,
    /// The object's size in bytes, as of the answer (a memfd may have grown since it was
    /// registered).
    pub size: u64,
    /// The device (`st_dev`) of the object's file: with the inode, how the inventory
    /// recognizes a memfd the registry hands out (hugetlb memfds are on another device).
    pub device: u64,
    /// The object's inode.
    pub inode: u64,
}

/// Why the registry said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    NotFound = 1,
    Exists = 2,
    Refused = 3,
    BadRequest = 4,
    Full = 5,
    TimedOut = 6,
}

impl Code {
    fn from_u16(c: u16) -> Code {
        match c {
            1 => Code::NotFound,
            2 => Code::Exists,
            3 => Code::Refused,
            5 => Code::Full,
            6 => Code::TimedOut,
            _ => Code::BadRequest,
        }
    }

    pub(crate) fn kind(self) -> ErrorKind {
        match self {
            Code::NotFound => ErrorKind::NotFound,
            Code::Exists => ErrorKind::AlreadyExists,
            Code::Refused => ErrorKind::PermissionDenied,
            Code::BadRequest => ErrorKind::InvalidArgument,
            Code::Full => ErrorKind::Os,
            Code::TimedOut => ErrorKind::TimedOut,
        }
    }
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    Ok,
    Entry(Info),
    Entries(Vec<Info>),
    Error(Code, String),
}

/// Longest name, in bytes.
pub const NAME_MAX: usize = 255;

struct Out(Vec<u8>);

impl Out {
    fn str(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        self.0.extend_from_slice(&(b.len() as u16).to_le_bytes());
        self.0.extend_from_slice(b);
    }
    fn info(&mut self, i: &Info) {
        self.str(&i.name);
        self.0.extend_from_slice(&i.pid.to_le_bytes());
        self.0.extend_from_slice(&i.uid.to_le_bytes());
        self.0.extend_from_slice(&i.gid.to_le_bytes());
        self.0.extend_from_slice(&i.since.to_le_bytes());
        self.0.push(i.persistent as u8);
        self.0.push(i.handles.len().min(255) as u8);
        for h in &i.handles {
            self.0.push(h.kind.code());
            self.0.extend_from_slice(&h.size.to_le_bytes());
            self.0.extend_from_slice(&h.device.to_le_bytes());
            self.0.extend_from_slice(&h.inode.to_le_bytes());
        }
    }
}

/// Reads a payload; every read is checked, so a hostile frame is an error, never a panic.
struct In<'a>(&'a [u8]);

impl In<'_> {
    fn take(&mut self, n: usize) -> std::result::Result<&[u8], String> {
        if self.0.len() < n {
            return Err("the message ends early".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn str(&mut self) -> std::result::Result<String, String> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".into())
    }
    fn name(&mut self) -> std::result::Result<String, String> {
        let n = self.str()?;
        check_name(&n)?;
        Ok(n)
    }
    fn info(&mut self) -> std::result::Result<Info, String> {
        let name = self.str()?;
        let pid = self.u32()? as i32;
        let uid = self.u32()?;
        let gid = self.u32()?;
        let since = self.u64()?;
        let persistent = self.u8()? != 0;
        let n = self.u8()?;
        let mut handles = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let code = self.u8()?;
            let kind = crate::handle::Kind::from_code(code)
                .ok_or_else(|| format!("unknown handle kind {code}"))?;
            handles.push(HandleInfo {
                kind,
                size: self.u64()?,
                device: self.u64()?,
                inode: self.u64()?,
            });
        }
        Ok(Info {
            name,
            pid,
            uid,
            gid,
            since,
            persistent,
            handles,
        })
    }
    fn end(&self) -> std::result::Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes past the end of the message",
                self.0.len()
            ))
        }
    }
}

/// Whether `name` may be registered: 1 to [`NAME_MAX`] bytes, no control characters.
pub(crate) fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(format!(
            "a name has 1 to {NAME_MAX} bytes; this one has {}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a name has no control characters".into());
    }
    Ok(())
}

pub(crate) fn encode_request(r: &Request) -> Vec<u8> {
    let mut o = Out(Vec::new());
    match r {
        Request::Register { name, persistent } => {
            o.0.push(1);
            o.str(name);
            o.0.push(*persistent as u8);
        }
        Request::Lookup { name } => {
            o.0.push(2);
            o.str(name);
        }
        Request::Unregister { name } => {
            o.0.push(3);
            o.str(name);
        }
        Request::List { after } => {
            o.0.push(4);
            o.str(after);
        }
        Request::Wait { name, timeout_ms } => {
            o.0.push(5);
            o.str(name);
            o.0.extend_from_slice(&timeout_ms.to_le_bytes());
        }
    }
    o.0
}

pub(crate) fn decode_request(b: &[u8]) -> std::result::Result<Request, String> {
    let mut i = In(b);
    let r = match i.u8()? {
        1 => Request::Register {
            name: i.name()?,
            persistent: i.u8()? != 0,
        },
        2 => Request::Lookup { name: i.name()? },
        3 => Request::Unregister { name: i.name()? },
        4 => Request::List { after: i.str()? },
        5 => Request::Wait {
            name: i.name()?,
            timeout_ms: i.u32()?,
        },
        op => return Err(format!("unknown request {op}")),
    };
    i.end()?;
    Ok(r)
}

pub(crate) fn encode_response(r: &Response) -> Vec<u8> {
    let mut o = Out(Vec::new());
    match r {
        Response::Ok => o.0.push(128),
        Response::Entry(info) => {
            o.0.push(129);
            o.info(info);
        }
        Response::Entries(v) => {
            o.0.push(130);
            o.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
            for info in v {
                o.info(info);
            }
        }
        Response::Error(code, msg) => {
            o.0.push(255);
            o.0.extend_from_slice(&(*code as u16).to_le_bytes());
            o.str(msg);
        }
    }
    o.0
}

pub(crate) fn decode_response(b: &[u8]) -> Result<Response> {
    let bad = |why: String| {
        Error::new(ErrorKind::InvalidArgument, "registry", "response", why)
            .with_hint("the registry speaks another version of the protocol, or is not a registry")
    };
    let mut i = In(b);
    let r = (|| {
        let r = match i.u8()? {
            128 => Response::Ok,
            129 => Response::Entry(i.info()?),
            130 => {
                let n = i.u32()?;
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(i.info()?);
                }
                Response::Entries(v)
            }
            255 => Response::Error(Code::from_u16(i.u16()?), i.str()?),
            op => return Err(format!("unknown response {op}")),
        };
        i.end()?;
        Ok(r)
    })()
    .map_err(bad)?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_read_back_and_garbage_is_an_error() {
        for r in [
            Request::Register {
                name: "video/frames".into(),
                persistent: true,
            },
            Request::Lookup { name: "x".into() },
            Request::Unregister { name: "x".into() },
            Request::List { after: "b".into() },
            Request::Wait {
                name: "y".into(),
                timeout_ms: 1500,
            },
        ] {
            assert_eq!(decode_request(&encode_request(&r)).unwrap(), r);
        }
        let info = Info {
            name: "n".into(),
            pid: 7,
            uid: 1000,
            gid: 1000,
            since: 1_700_000_000,
            persistent: false,
            handles: vec![HandleInfo {
                kind: crate::handle::Kind::Memfd,
                size: 4096,
                device: 12,
                inode: 99,
            }],
        };
        for r in [
            Response::Ok,
            Response::Entry(info.clone()),
            Response::Entries(vec![info.clone(), info]),
            Response::Error(Code::Refused, "no".into()),
        ] {
            assert_eq!(decode_response(&encode_response(&r)).unwrap(), r);
        }
        assert!(decode_request(&[]).is_err());
        assert!(decode_request(&[9]).is_err());
        assert!(decode_request(&[2, 200, 0, b'x']).is_err());
        assert!(decode_request(&[4, 0, 0, 0])
            .unwrap_err()
            .contains("past the end"));
        assert!(decode_request(&[2, 0, 0]).unwrap_err().contains("1 to 255"));
        assert!(decode_response(&[130, 255, 255, 255, 255]).is_err());
    }
}
