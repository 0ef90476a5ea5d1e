//! System V message queues: `msgget`, `msgsnd`, `msgrcv` (by type, non-blocking), `msgctl`
//! (`IPC_STAT`, `IPC_RMID`); see `sysvipc(7)`.
//!
//! Linux only: the `libc` crate has no binding for these calls on macOS.

use super::SysvKey;
use crate::error::{Error, ErrorKind, Result};
use crate::ownership::Ownership;
use crate::platform::{self, errno as last_errno};
use rustix::io::Errno;

/// Which message [`MsgQueue::recv`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    /// The first message of any type (`msgtyp` 0).
    Any,
    /// The first message of exactly this type (> 0).
    Exactly(i64),
    /// The first message of the lowest type that is at most this (`msgtyp` < 0).
    AtMost(i64),
}

/// What `msgctl(IPC_STAT)` says of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgStat {
    /// Its key (0: `IPC_PRIVATE`).
    pub key: i32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Messages queued.
    pub messages: u64,
    /// Bytes queued.
    pub bytes: u64,
    /// Capacity in bytes (`msg_qbytes`).
    pub max_bytes: u64,
    /// Last sender.
    pub last_send_pid: i32,
    /// Last receiver.
    pub last_recv_pid: i32,
}

/// A System V message queue. Its creator removes it when dropped, unless asked to keep it.
///
/// ```
/// use shmkit::SysvKey;
/// use shmkit::sysv::msg::{MsgQueue, MsgType};
/// let q = MsgQueue::create(SysvKey::Private)?;
/// q.send(2, b"second kind", false)?;
/// q.send(1, b"first kind", false)?;
/// let (ty, body) = q.recv(MsgType::Exactly(1), 100, false)?.unwrap();
/// assert_eq!((ty, &body[..]), (1, &b"first kind"[..]));
/// assert_eq!(q.stat()?.messages, 1);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct MsgQueue {
    id: i32,
    owner: Ownership,
}

/// How to create or open a [`MsgQueue`]. Defaults: mode 0600, removed on drop by its creator.
#[derive(Debug, Clone, Default)]
pub struct MsgQueueOptions {
    common: crate::options::Ipc,
}

impl MsgQueueOptions {
    crate::options::ipc_setters!("queue");

    /// `msgget(IPC_CREAT | IPC_EXCL)`: creates a queue under `key`.
    ///
    /// # Errors
    /// `EEXIST` when `key` names a queue already, `ENOSPC` when MSGMNI is reached.
    #[doc(alias = "msgget")]
    pub fn create(&self, key: SysvKey) -> Result<MsgQueue> {
        // SAFETY: plain integers.
        let id = unsafe {
            libc::msgget(
                key.raw(),
                libc::IPC_CREAT | libc::IPC_EXCL | (self.common.mode & 0o777) as i32,
            )
        };
        if id < 0 {
            return Err(msgget_error(key, last_errno()));
        }
        Ok(MsgQueue {
            id,
            owner: Ownership::created(self.common.keep),
        })
    }

    /// `msgget(key, 0)`: opens the queue under `key`.
    ///
    /// # Errors
    /// `ENOENT` when no queue has the key, `EACCES` without permission.
    #[doc(alias = "msgget")]
    pub fn open(&self, key: SysvKey) -> Result<MsgQueue> {
        // SAFETY: plain integers.
        let id = unsafe { libc::msgget(key.raw(), 0) };
        if id < 0 {
            return Err(msgget_error(key, last_errno()));
        }
        Ok(MsgQueue {
            id,
            owner: Ownership::opened(),
        })
    }

    /// Opens the queue with this id (as `ipcs -q` shows it).
    ///
    /// # Errors
    /// `EINVAL` when no queue has the id, `EACCES` without read permission.
    pub fn open_id(&self, id: i32) -> Result<MsgQueue> {
        stat_id(id)?;
        Ok(MsgQueue {
            id,
            owner: Ownership::opened(),
        })
    }
}

impl MsgQueue {
    /// How to create or open a queue, beyond the defaults.
    pub fn options() -> MsgQueueOptions {
        MsgQueueOptions::default()
    }

    /// `msgget`: creates a queue under `key`, exclusively, mode 0600.
    ///
    /// # Errors
    /// As [`MsgQueueOptions::create`].
    #[doc(alias = "msgget")]
    pub fn create(key: SysvKey) -> Result<Self> {
        Self::options().create(key)
    }

    /// `msgsnd`: queues `body` with type `mtype` (> 0). With `nowait`, `Ok(false)` instead
    /// of waiting for room.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for `mtype` ≤ 0; the OS error of `msgsnd`: `EINVAL` for a
    /// body above `msgmax`, `EIDRM` ([`ErrorKind::NotFound`]) if the queue is removed, `EACCES`.
    #[doc(alias = "msgsnd")]
    pub fn send(&self, mtype: i64, body: &[u8], nowait: bool) -> Result<bool> {
        if mtype <= 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "msgsnd",
                format!("msqid {}", self.id),
                format!("message type {mtype}: it must be positive"),
            ));
        }
        // struct msgbuf { long mtype; char mtext[]; }
        let mut buf = Vec::with_capacity(8 + body.len());
        buf.extend_from_slice(&(mtype as libc::c_long).to_ne_bytes());
        buf.extend_from_slice(body);
        let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
        super::restarting(|| {
            // SAFETY: `buf` is an mtype followed by `body.len()` bytes of text.
            unsafe { libc::msgsnd(self.id, buf.as_ptr().cast(), body.len(), flags) }
        })
        .map_err(|e| {
            let err = Error::os("msgsnd", format!("msqid {}", self.id), e);
            match e {
                Errno::INVAL => err.with_hint(format!(
                    "a {}-byte message exceeds {} ({}), or the queue is gone",
                    body.len(),
                    platform::sysv_sysctl("msgmax"),
                    platform::sysctl_u64(&platform::sysv_sysctl("msgmax"))
                        .map_or("?".into(), |v| v.to_string())
                )),
                _ => err,
            }
        })
    }

    /// `msgrcv`: takes the first message that `which` selects, at most `max` bytes of text
    /// (a longer message is an error, `E2BIG`, and stays queued). With `nowait`, `Ok(None)`
    /// instead of waiting.
    ///
    /// # Errors
    /// The OS error of `msgrcv`: `E2BIG` for a message longer than `max`, `EIDRM`
    /// ([`ErrorKind::NotFound`]) if the queue is removed, `EACCES` without read permission.
    #[doc(alias = "msgrcv")]
    pub fn recv(&self, which: MsgType, max: usize, nowait: bool) -> Result<Option<(i64, Vec<u8>)>> {
        let msgtyp: libc::c_long = match which {
            MsgType::Any => 0,
            MsgType::Exactly(t) => t.max(1) as libc::c_long,
            MsgType::AtMost(t) => -(t.max(1) as libc::c_long),
        };
        let mut buf = vec![0u8; 8 + max];
        let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
        loop {
            // SAFETY: `buf` has room for an mtype and `max` bytes of text.
            let n = unsafe { libc::msgrcv(self.id, buf.as_mut_ptr().cast(), max, msgtyp, flags) };
            if n >= 0 {
                let mtype = i64::from_ne_bytes(buf[..8].try_into().expect("8 bytes"));
                buf.truncate(8 + n as usize);
                buf.drain(..8);
                return Ok(Some((mtype, buf)));
            }
            match last_errno() {
                Errno::INTR => continue,
                Errno::NOMSG | Errno::AGAIN => return Ok(None),
                e => {
                    let err = Error::os("msgrcv", format!("msqid {}", self.id), e);
                    return Err(match e {
                        Errno::TOOBIG => err.with_hint(format!(
                            "the message is longer than the {max} bytes asked for; it stays queued"
                        )),
                        Errno::IDRM => err.with_hint("the queue was removed while we waited"),
                        _ => err,
                    });
                }
            }
        }
    }
}

super::sysv_object!(
    MsgQueue,
    "queue",
    "ipcs -q",
    MsgQueueOptions,
    MsgStat,
    "removes it and its messages now.",
    "msgget",
    "msgctl"
);

fn msgget_error(key: SysvKey, e: Errno) -> Error {
    let err = Error::os("msgget", key.to_string(), e);
    match e {
        Errno::EXIST => {
            // SAFETY: plain integers.
            let id = unsafe { libc::msgget(key.raw(), 0) };
            err.with_hint(format!(
                "a queue with this key exists (msqid {id}); open it instead, or remove it first \
                 (IPC_RMID)"
            ))
        }
        Errno::NOENT => err.with_hint("no queue has this key; create it first"),
        Errno::NOSPC => err.with_hint(
            "kernel.msgmni queues exist already; remove unused ones (IPC_RMID) or raise it \
             with sysctl -w kernel.msgmni=VALUE",
        ),
        _ => err,
    }
}

/// `msgctl(IPC_STAT)` of the queue `id`.
///
/// # Errors
/// [`ErrorKind::NotFound`] if no queue has the id, [`ErrorKind::PermissionDenied`] (`EACCES`)
/// without read permission.
#[doc(alias = "msgctl")]
pub fn stat_id(id: i32) -> Result<MsgStat> {
    // SAFETY: msqid_ds is plain data; zero is a valid bit pattern.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT writes a msqid_ds.
    if unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) } < 0 {
        return Err(super::id_error(
            "msgctl(IPC_STAT)",
            format!("msqid {id}"),
            last_errno(),
        ));
    }
    Ok(MsgStat {
        key: platform::perm_key(&ds.msg_perm),
        mode: u32::from(ds.msg_perm.mode) & 0o777,
        uid: ds.msg_perm.uid,
        gid: ds.msg_perm.gid,
        messages: ds.msg_qnum as u64,
        bytes: platform::msg_cbytes(&ds),
        max_bytes: ds.msg_qbytes as u64,
        last_send_pid: ds.msg_lspid,
        last_recv_pid: ds.msg_lrpid,
    })
}

crate::ownership::owned!(MsgQueue, owner, "queue");

/// `msgctl(IPC_RMID)`: removes the queue with id `id` and its messages now.
///
/// # Errors
/// `EINVAL` when no queue has the id, `EPERM` when this user is not its owner, creator or
/// root.
#[doc(alias = "msgctl")]
pub fn remove_id(id: i32) -> Result<()> {
    rmid(id).map_err(|e| super::id_error("msgctl(IPC_RMID)", format!("msqid {id}"), e))
}

pub(crate) fn rmid(id: i32) -> std::result::Result<(), Errno> {
    // SAFETY: plain integers and a null buffer, which IPC_RMID ignores.
    if unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}
