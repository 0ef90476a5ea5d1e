//! POSIX message queues (Linux): `mq_open`, `mq_send`, `mq_receive`, `mq_timedreceive`,
//! `mq_getattr`, `mq_unlink`, with priorities; see `mq_overview(7)`.
//!
//! Linux only: macOS has no POSIX message queues.

use crate::error::{Error, ErrorKind, Result};
use crate::ownership::Ownership;
use crate::platform::errno as last_errno;
use crate::posix::validate_name_for;
use rustix::io::Errno;
use std::ffi::CString;
use std::time::Duration;

/// `mq_getattr`: a queue's shape and fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqAttr {
    /// Capacity in messages.
    pub max_messages: u64,
    /// Largest message in bytes.
    pub message_size: u64,
    /// Messages queued now.
    pub messages: u64,
}

/// A POSIX message queue. Messages come out highest priority first, in order within a
/// priority. Its creator unlinks it when dropped, unless asked to keep it.
///
/// ```
/// use shmkit::posix_mq::MessageQueue;
/// let name = format!("/shmkit-doc-mq-{}", std::process::id());
/// let q = MessageQueue::create(&name, 8, 128)?;
/// q.send(b"low", 1)?;
/// q.send(b"high", 9)?;
/// assert_eq!(q.receive()?, (b"high".to_vec(), 9));
/// assert_eq!(q.attr()?.messages, 1);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct MessageQueue {
    mqd: libc::mqd_t,
    name: String,
    message_size: usize,
    owner: Ownership,
}

/// How to create or open a [`MessageQueue`]. Defaults: mode 0600, removed on drop by its
/// creator.
#[derive(Debug, Clone, Default)]
pub struct QueueOptions {
    common: crate::options::Ipc,
}

impl QueueOptions {
    crate::options::ipc_setters!("queue");

    /// `mq_open(O_CREAT | O_EXCL)`: creates `name` for at most `max_messages` messages of at
    /// most `message_size` bytes.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`], [`ErrorKind::InvalidArgument`] for a zero capacity,
    /// `EEXIST` when the name is taken, `EINVAL`/`EMFILE`/`ENOMEM` above the limits (the hint
    /// quotes them).
    #[doc(alias = "mq_open")]
    pub fn create(&self, name: &str, max_messages: u64, message_size: u64) -> Result<MessageQueue> {
        MessageQueue::create_with(name, max_messages, message_size, self.common)
    }

    /// `mq_open`: opens an existing `name` for sending and receiving.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`], `ENOENT` when there is no such queue, `EACCES`.
    #[doc(alias = "mq_open")]
    pub fn open(&self, name: &str) -> Result<MessageQueue> {
        validate_name_for("mq_open", name)?;
        MessageQueue::open_with(name, libc::O_RDWR, 0, None, true)
    }
}

impl MessageQueue {
    /// How to create or open a queue, beyond the defaults.
    pub fn options() -> QueueOptions {
        QueueOptions::default()
    }

    /// `mq_open`: creates `name` for at most `max_messages` messages of at most
    /// `message_size` bytes, exclusively, mode 0600.
    ///
    /// # Errors
    /// As [`QueueOptions::create`].
    #[doc(alias = "mq_open")]
    pub fn create(name: &str, max_messages: u64, message_size: u64) -> Result<Self> {
        Self::options().create(name, max_messages, message_size)
    }

    fn create_with(
        name: &str,
        max_messages: u64,
        message_size: u64,
        common: crate::options::Ipc,
    ) -> Result<Self> {
        validate_name_for("mq_open", name)?;
        if max_messages == 0 || message_size == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "mq_open",
                name,
                "a queue needs room for at least one message of at least one byte",
            ));
        }
        // SAFETY: mq_attr is plain data.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        attr.mq_maxmsg = max_messages as _;
        attr.mq_msgsize = message_size as _;
        Self::open_with(
            name,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            common.mode,
            Some(&mut attr),
            common.keep,
        )
    }

    /// `mq_open`: opens an existing `name` for sending and receiving.
    ///
    /// # Errors
    /// As [`QueueOptions::open`].
    #[doc(alias = "mq_open")]
    pub fn open(name: &str) -> Result<Self> {
        Self::options().open(name)
    }

    fn open_with(
        name: &str,
        flags: i32,
        mode: u32,
        attr: Option<&mut libc::mq_attr>,
        keep: bool,
    ) -> Result<Self> {
        let c = CString::new(name).expect("validated: no NUL");
        let attr_ptr = attr.map_or(std::ptr::null_mut(), |a| a as *mut libc::mq_attr);
        // SAFETY: a valid C string; mode and attr are the variadic arguments read with
        // O_CREAT; O_CLOEXEC keeps the descriptor out of exec'd children.
        let mqd = unsafe {
            libc::mq_open(
                c.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::mode_t,
                attr_ptr,
            )
        };
        if mqd < 0 {
            let e = last_errno();
            let err = Error::os("mq_open", name, e);
            return Err(match e {
                Errno::EXIST => err.with_hint(
                    "open it instead (MessageQueue::open), or remove it first (mq_unlink)",
                ),
                Errno::NOENT => err.with_hint("create it first, or check the name"),
                Errno::INVAL | Errno::MFILE | Errno::NOMEM if flags & libc::O_CREAT != 0 => err
                    .with_hint(format!(
                        "above the limits: fs.mqueue.msg_max = {}, fs.mqueue.msgsize_max = {}, \
                         and the RLIMIT_MSGQUEUE bytes of this user (limits::read lists them)",
                        crate::platform::sysctl_u64("fs.mqueue.msg_max")
                            .map_or("?".into(), |v| v.to_string()),
                        crate::platform::sysctl_u64("fs.mqueue.msgsize_max")
                            .map_or("?".into(), |v| v.to_string()),
                    )),
                _ => err,
            });
        }
        let mut q = MessageQueue {
            mqd,
            name: name.to_string(),
            message_size: 0,
            owner: if flags & libc::O_CREAT != 0 {
                Ownership::created(keep)
            } else {
                Ownership::opened()
            },
        };
        q.message_size = q.attr()?.message_size as usize;
        Ok(q)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `mq_getattr`: the queue's capacity, message size and messages queued now.
    ///
    /// # Errors
    /// The OS error of `mq_getattr`.
    #[doc(alias = "mq_getattr")]
    pub fn attr(&self) -> Result<MqAttr> {
        // SAFETY: mq_attr is plain data.
        let mut a: libc::mq_attr = unsafe { std::mem::zeroed() };
        // SAFETY: a live queue descriptor and a valid out-pointer.
        if unsafe { libc::mq_getattr(self.mqd, &mut a) } < 0 {
            return Err(Error::os("mq_getattr", self.name.clone(), last_errno()));
        }
        Ok(MqAttr {
            max_messages: a.mq_maxmsg as u64,
            message_size: a.mq_msgsize as u64,
            messages: a.mq_curmsgs as u64,
        })
    }

    /// `mq_send`: queues `body` with `priority` (0 lowest), waiting for room.
    ///
    /// # Errors
    /// The OS error of `mq_send`: `EMSGSIZE` for a body longer than the queue's message size,
    /// `EINVAL` for a priority of `MQ_PRIO_MAX` or more.
    #[doc(alias = "mq_send")]
    pub fn send(&self, body: &[u8], priority: u32) -> Result<()> {
        loop {
            // SAFETY: a live descriptor and `body.len()` readable bytes.
            let r = unsafe { libc::mq_send(self.mqd, body.as_ptr().cast(), body.len(), priority) };
            if r == 0 {
                return Ok(());
            }
            match last_errno() {
                Errno::INTR => continue,
                e => {
                    let err = Error::os("mq_send", self.name.clone(), e);
                    return Err(match e {
                        Errno::MSGSIZE => err.with_hint(format!(
                            "a {}-byte message; this queue takes at most {}",
                            body.len(),
                            self.message_size
                        )),
                        Errno::INVAL => {
                            err.with_hint("the priority must be below MQ_PRIO_MAX (32768)")
                        }
                        _ => err,
                    });
                }
            }
        }
    }

    /// `mq_receive`: the oldest message of the highest priority, waiting for one.
    ///
    /// # Errors
    /// The OS error of `mq_receive`.
    #[doc(alias = "mq_receive")]
    pub fn receive(&self) -> Result<(Vec<u8>, u32)> {
        self.receive_inner(None).map(|m| m.expect("no deadline"))
    }

    /// `mq_timedreceive`: as [`receive`](Self::receive), at most `timeout`; `Ok(None)` if
    /// nothing came.
    ///
    /// # Errors
    /// As [`receive`](Self::receive) (the error names `mq_receive`).
    #[doc(alias = "mq_timedreceive")]
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Option<(Vec<u8>, u32)>> {
        self.receive_inner(Some(timeout))
    }

    fn receive_inner(&self, timeout: Option<Duration>) -> Result<Option<(Vec<u8>, u32)>> {
        let mut buf = vec![0u8; self.message_size];
        let mut prio = 0u32;
        // A timeout the clock cannot express waits forever (`mq_receive`).
        let at = timeout.and_then(crate::platform::realtime_after);
        loop {
            // SAFETY: a live descriptor, a buffer of mq_msgsize bytes (what mq_receive
            // requires), valid out-pointers.
            let n = unsafe {
                match &at {
                    None => {
                        libc::mq_receive(self.mqd, buf.as_mut_ptr().cast(), buf.len(), &mut prio)
                    }
                    Some(ts) => libc::mq_timedreceive(
                        self.mqd,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        &mut prio,
                        ts,
                    ),
                }
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return Ok(Some((buf, prio)));
            }
            match last_errno() {
                Errno::INTR => continue,
                Errno::TIMEDOUT => return Ok(None),
                e => return Err(Error::os("mq_receive", self.name.clone(), e)),
            }
        }
    }

    /// `mq_unlink`: removes the queue called `name`; processes that have it open keep using it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`] for a name `mq_open` would refuse, [`ErrorKind::NotFound`] if
    /// there is none, [`ErrorKind::PermissionDenied`] if this user may not remove it.
    #[doc(alias = "mq_unlink")]
    pub fn unlink_name(name: &str) -> Result<()> {
        validate_name_for("mq_unlink", name)?;
        unlink_os(name.as_ref()).map_err(|e| Error::os("mq_unlink", name, e))
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        if self.owner.removes_on_drop() {
            let _ = Self::unlink_name(&self.name);
        }
        // SAFETY: closes our descriptor, once.
        unsafe { libc::mq_close(self.mqd) };
    }
}

crate::ownership::owned!(MessageQueue, owner, "queue");

/// `mq_unlink` of any name (one made by another program): for removal by address.
pub(crate) fn unlink_os(name: &std::ffi::OsStr) -> std::result::Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(name.as_bytes()).map_err(|_| Errno::INVAL)?;
    // SAFETY: a valid C string.
    if unsafe { libc::mq_unlink(c.as_ptr()) } < 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// The capacity (messages, bytes per message) that `mq_open` gives a queue created without
/// attributes: `fs.mqueue.msg_default` and `fs.mqueue.msgsize_default` (10 and 8192, the
/// kernel's own defaults, when they cannot be read).
///
/// ```
/// let (messages, size) = shmkit::posix_mq::default_capacity();
/// assert!(messages > 0 && size > 0);
/// ```
pub fn default_capacity() -> (u64, u64) {
    (
        crate::platform::sysctl_u64("fs.mqueue.msg_default").unwrap_or(10),
        crate::platform::sysctl_u64("fs.mqueue.msgsize_default").unwrap_or(8192),
    )
}
