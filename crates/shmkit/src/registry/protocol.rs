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

use super::codec::{In, Out};
use super::entry::Info;
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
    use crate::registry::HandleInfo;

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
