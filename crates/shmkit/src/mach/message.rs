//! Mach messages that carry send rights and a few bytes: the transport under
//! [`bootstrap`](super::bootstrap). Everything received is checked before any right is
//! taken: a message that lies about its size, its descriptors or its payload is destroyed
//! whole (`mach_msg_destroy`, which releases every right it carried) and refused.

use super::port::ReceiveRight;
use super::{kern, SendRight};
use crate::error::{Error, ErrorKind, Result};
use mach2::message::*;
use mach2::port::{mach_port_t, MACH_PORT_NULL};
use std::time::Duration;

/// The most rights one message carries.
pub(crate) const MAX_RIGHTS: usize = 16;
/// The most payload bytes one message carries.
pub(crate) const MAX_PAYLOAD: usize = 8192;

const HEADER: usize = size_of::<mach_msg_header_t>();
const BODY: usize = size_of::<mach_msg_body_t>();
const DESCRIPTOR: usize = size_of::<mach_msg_port_descriptor_t>();
// Apple's sizes (`mach/message.h`): a 24-byte header, a 4-byte body, 12-byte port
// descriptors, all 4-aligned (the message is packed to 4).
const _: () = assert!(HEADER == 24 && BODY == 4 && DESCRIPTOR == 12);
const MAX_SEND: usize = HEADER + BODY + MAX_RIGHTS * DESCRIPTOR + 4 + MAX_PAYLOAD;
/// Room for the largest trailer the kernel may append (`MAX_TRAILER_SIZE`, 68 bytes today).
const TRAILER_ROOM: usize = 256;

/// A message received: its id, the rights it carried, its payload, the send-once reply
/// right when the sender asked for a reply, and who sent it.
pub(crate) struct Received {
    pub id: i32,
    pub rights: Vec<SendRight>,
    pub payload: Vec<u8>,
    pub reply_to: Option<SendOnce>,
    /// The sending task, as the kernel's audit trailer tells it (for a message the kernel
    /// itself sent, such as a send-once notification, the kernel's: pid 0).
    pub sender: Sender,
}

/// Who sent a message: from the audit token the kernel appends (`MACH_RCV_TRAILER_AUDIT`),
/// which the sender cannot forge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// Effective uid (`audit_token_to_euid`: `val[1]`).
    pub uid: u32,
    /// Effective gid (`audit_token_to_egid`: `val[2]`).
    pub gid: u32,
    /// Pid (`audit_token_to_pid`: `val[5]`).
    pub pid: i32,
}

/// The receive option that asks for the audit trailer: `MACH_RCV_TRAILER_TYPE(FORMAT_0) |
/// MACH_RCV_TRAILER_ELEMENTS(MACH_RCV_TRAILER_AUDIT)` (`mach/message.h`: the type in bits
/// 28..32, the elements in bits 24..28).
const RCV_AUDIT: mach_msg_option_t = ((MACH_MSG_TRAILER_FORMAT_0 & 0xf) << 28) as mach_msg_option_t
    | ((MACH_RCV_TRAILER_AUDIT & 0xf) << 24) as mach_msg_option_t;
const AUDIT_TRAILER: usize = size_of::<mach_msg_audit_trailer_t>();
// `mach_msg_audit_trailer_t`: type, size, seqno, a 2-word security token, an 8-word audit
// token.
const _: () = assert!(AUDIT_TRAILER == 52);

/// A send-once right: the reply port of a request. Released unused on drop
/// (`mach_port_deallocate`), which tells the requester its request died.
pub(crate) struct SendOnce(mach_port_t);

impl Drop for SendOnce {
    fn drop(&mut self) {
        // SAFETY: the one send-once right this value owns, released once.
        unsafe { mach2::mach_port::mach_port_deallocate(mach2::traps::mach_task_self(), self.0) };
    }
}

fn put<T: Copy>(buf: &mut [u8], at: usize, v: T) {
    assert!(at + size_of::<T>() <= buf.len());
    // SAFETY: in bounds (asserted); unaligned writes of a plain-data value.
    unsafe { buf.as_mut_ptr().add(at).cast::<T>().write_unaligned(v) };
}

fn get<T: Copy>(buf: &[u8], at: usize) -> T {
    assert!(at + size_of::<T>() <= buf.len());
    // SAFETY: in bounds (asserted); `T` is plain data valid for every bit pattern (the
    // Mach message structures and integers used here).
    unsafe { buf.as_ptr().add(at).cast::<T>().read_unaligned() }
}

/// Sends `rights` (copied: the caller keeps its own) and `payload` to `dest`, `id` as the
/// message id. `dest` is a send right (`COPY_SEND`) or, for a reply, a send-once right
/// (`MOVE_SEND_ONCE`, consumed). `reply` is a port of ours to answer to, if any.
pub(crate) fn send(
    dest: Dest<'_>,
    id: i32,
    rights: &[&SendRight],
    payload: &[u8],
    reply: Option<&ReceiveRight>,
    timeout: Duration,
) -> Result<()> {
    if rights.len() > MAX_RIGHTS || payload.len() > MAX_PAYLOAD {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "mach_msg",
            "a message",
            format!(
                "{} rights and {} bytes exceed the limits of {MAX_RIGHTS} rights and \
                 {MAX_PAYLOAD} bytes",
                rights.len(),
                payload.len()
            ),
        ));
    }
    let (remote, remote_type) = match &dest {
        Dest::Send(r) => (r.here("mach_msg")?, MACH_MSG_TYPE_COPY_SEND),
        Dest::Reply(so) => (so.0, MACH_MSG_TYPE_MOVE_SEND_ONCE),
    };
    let local = match reply {
        Some(r) => r.here("mach_msg")?,
        None => MACH_PORT_NULL,
    };
    let local_type = if reply.is_some() {
        MACH_MSG_TYPE_MAKE_SEND_ONCE
    } else {
        0
    };
    let size = HEADER + BODY + rights.len() * DESCRIPTOR + 4 + payload.len().next_multiple_of(4);
    let mut buf = vec![0u8; size];
    put(
        &mut buf,
        0,
        mach_msg_header_t {
            msgh_bits: MACH_MSGH_BITS(remote_type, local_type) | MACH_MSGH_BITS_COMPLEX,
            msgh_size: size as u32,
            msgh_remote_port: remote,
            msgh_local_port: local,
            msgh_voucher_port: MACH_PORT_NULL,
            msgh_id: id,
        },
    );
    put(
        &mut buf,
        HEADER,
        mach_msg_body_t {
            msgh_descriptor_count: rights.len() as u32,
        },
    );
    for (i, r) in rights.iter().enumerate() {
        let d = mach_msg_port_descriptor_t::new(r.here("mach_msg")?, MACH_MSG_TYPE_COPY_SEND);
        put(&mut buf, HEADER + BODY + i * DESCRIPTOR, d);
    }
    let at = HEADER + BODY + rights.len() * DESCRIPTOR;
    put(&mut buf, at, payload.len() as u32);
    buf[at + 4..at + 4 + payload.len()].copy_from_slice(payload);
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: `buf` holds a well-formed message of `size` bytes; the kernel copies it in
    // (rights copied or made as the bits say) and does not keep the buffer.
    let mr = unsafe {
        mach_msg(
            buf.as_mut_ptr().cast(),
            MACH_SEND_MSG | MACH_SEND_TIMEOUT,
            size as u32,
            0,
            MACH_PORT_NULL,
            ms,
            MACH_PORT_NULL,
        )
    };
    match mr {
        MACH_MSG_SUCCESS => {}
        // Copied in but not queued: the kernel pseudo-received the message back into `buf`
        // (`ipc_kmsg_copyout_pseudo` in xnu's mach_msg.c), so the rights it carried, the
        // destination's included, are ours again, as new references: release them all.
        MACH_SEND_INVALID_DEST | MACH_SEND_TIMED_OUT | MACH_SEND_INTERRUPTED => {
            // SAFETY: `buf` holds the message as the kernel handed it back; each right in it
            // is released once.
            unsafe { mach_msg_destroy(buf.as_mut_ptr().cast()) };
        }
        // Refused while its body was copied in: the kernel destroyed the header's rights
        // (`ipc_kmsg_clean_partial`), a moved send-once destination included.
        MACH_SEND_INVALID_RIGHT
        | MACH_SEND_INVALID_TYPE
        | MACH_SEND_INVALID_MEMORY
        | MACH_SEND_MSG_TOO_SMALL => {}
        // Refused at the header: nothing was taken; the SendOnce below releases its right.
        _ => {
            if let Dest::Reply(so) = dest {
                drop(so);
            }
            return kern::check("mach_msg (send)", || format!("port {remote:#x}"), mr);
        }
    }
    if let Dest::Reply(so) = dest {
        // Moved by the send, or released by the kernel on one of the errors above.
        std::mem::forget(so);
    }
    kern::check("mach_msg (send)", || format!("port {remote:#x}"), mr)
}

/// Where a message goes.
pub(crate) enum Dest<'a> {
    Send(&'a SendRight),
    Reply(SendOnce),
}

/// Waits at most `timeout` (`None`: no limit) for a message on `port`, and checks it.
pub(crate) fn recv(port: &ReceiveRight, timeout: Option<Duration>) -> Result<Received> {
    let name = port.here("mach_msg")?;
    let mut buf = vec![0u64; (MAX_SEND + TRAILER_ROOM).div_ceil(8)];
    let cap = buf.len() * 8;
    let (opt, ms) = match timeout {
        Some(t) => (
            MACH_RCV_MSG | MACH_RCV_TIMEOUT | RCV_AUDIT,
            u32::try_from(t.as_millis()).unwrap_or(u32::MAX),
        ),
        None => (MACH_RCV_MSG | RCV_AUDIT, MACH_MSG_TIMEOUT_NONE),
    };
    loop {
        // SAFETY: `buf` has `cap` writable bytes, 8-aligned; the kernel writes at most that.
        let mr = unsafe {
            mach_msg(
                buf.as_mut_ptr().cast(),
                opt,
                0,
                cap as u32,
                name,
                ms,
                MACH_PORT_NULL,
            )
        };
        match mr {
            MACH_MSG_SUCCESS => break,
            MACH_RCV_INTERRUPTED => continue,
            // Without MACH_RCV_LARGE the kernel destroyed the message (and its rights).
            _ => {
                return Err(kern::error(
                    "mach_msg (receive)",
                    format!("port {name:#x}"),
                    mr,
                ))
            }
        }
    }
    // SAFETY: `buf` is `cap` initialized bytes (u64s), viewed as bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), cap) };
    match parse(bytes) {
        Ok(r) => Ok(r),
        Err(e) => {
            // SAFETY: a message the kernel just delivered into `bytes`, none of whose rights
            // has been taken: destroying it releases each of them once.
            unsafe { mach_msg_destroy(bytes.as_mut_ptr().cast()) };
            Err(e)
        }
    }
}

fn bad(what: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::BadLayout,
        "mach_msg (receive)",
        "a message",
        what,
    )
}

/// Checks a received message; takes its rights only if all of it is as expected.
fn parse(bytes: &[u8]) -> Result<Received> {
    let h: mach_msg_header_t = get(bytes, 0);
    let size = h.msgh_size as usize;
    if size < HEADER || size > bytes.len() {
        return Err(bad(format!("a size of {size} bytes")));
    }
    // The trailer follows the message at its size rounded to 4 bytes (`round_msg`); the
    // kernel wrote it, so it is believed, once it is seen to be the one asked for.
    let at_trailer = size.next_multiple_of(4);
    if at_trailer + AUDIT_TRAILER > bytes.len() {
        return Err(bad("no room for the audit trailer"));
    }
    let t: mach_msg_audit_trailer_t = get(bytes, at_trailer);
    if t.msgh_trailer_type != MACH_MSG_TRAILER_FORMAT_0
        || (t.msgh_trailer_size as usize) < AUDIT_TRAILER
    {
        return Err(bad(format!(
            "a trailer of type {} and {} bytes, not the audit trailer asked for",
            t.msgh_trailer_type, t.msgh_trailer_size
        )));
    }
    let sender = Sender {
        uid: t.msgh_audit.val[1],
        gid: t.msgh_audit.val[2],
        pid: t.msgh_audit.val[5] as i32,
    };
    let remote_type = h.msgh_bits & MACH_MSGH_BITS_REMOTE_MASK;
    let reply = match (h.msgh_remote_port, remote_type) {
        (MACH_PORT_NULL, _) => None,
        (p, MACH_MSG_TYPE_PORT_SEND_ONCE) => Some(p),
        _ => return Err(bad("a reply right that is not send-once")),
    };
    let mut names = Vec::new();
    let mut at = HEADER;
    if h.msgh_bits & MACH_MSGH_BITS_COMPLEX != 0 {
        if size < HEADER + BODY {
            return Err(bad("a complex message without a body"));
        }
        let count = get::<mach_msg_body_t>(bytes, HEADER).msgh_descriptor_count as usize;
        if count > MAX_RIGHTS || HEADER + BODY + count * DESCRIPTOR > size {
            return Err(bad(format!("{count} descriptors")));
        }
        at += BODY;
        for _ in 0..count {
            let d: mach_msg_port_descriptor_t = get(bytes, at);
            if u32::from(d.type_) != MACH_MSG_PORT_DESCRIPTOR
                || u32::from(d.disposition) != MACH_MSG_TYPE_PORT_SEND
            {
                return Err(bad("a descriptor that is not a send right"));
            }
            if d.name == MACH_PORT_NULL {
                return Err(bad("a null right"));
            }
            // MACH_PORT_DEAD (the port died before the message reached us) is kept: a dead
            // SendRight, which says so (`is_dead`) and owns no reference.
            names.push(d.name);
            at += DESCRIPTOR;
        }
    }
    let payload = if at == size {
        Vec::new()
    } else {
        if at + 4 > size {
            return Err(bad("a truncated payload length"));
        }
        let len = get::<u32>(bytes, at) as usize;
        if len > MAX_PAYLOAD || at + 4 + len > size {
            return Err(bad(format!(
                "a payload of {len} bytes in a message of {size}"
            )));
        }
        bytes[at + 4..at + 4 + len].to_vec()
    };
    Ok(Received {
        id: h.msgh_id,
        // SAFETY: each name is a send right the kernel just moved into this task for this
        // message, owned by nothing else, or MACH_PORT_DEAD, which owns nothing.
        rights: names
            .into_iter()
            .map(|n| unsafe { SendRight::from_raw(n) })
            .collect(),
        payload,
        reply_to: reply.map(SendOnce),
        sender,
    })
}
