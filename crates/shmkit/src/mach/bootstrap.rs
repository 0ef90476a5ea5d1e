//! Names on macOS: the bootstrap server (launchd) is the name service. A process publishes
//! a name with `bootstrap_check_in` (public API: launchd makes a dynamic service of an
//! undeclared name and hands back its receive right), and answers each look-up on that port
//! with the handles it publishes; a process that finds the name with `bootstrap_look_up`
//! asks and gets copies of them. The name goes away with the receive right: when the
//! [`Service`] is dropped, or its process exits.
//!
//! The deprecated `bootstrap_register` (which the article uses to name a memory entry
//! directly) and the private `bootstrap_register2` are not needed for this and not used.
//!
//! The bootstrap port is read with `task_get_bootstrap_port` at each call, not from the
//! `bootstrap_port` global, which libSystem rewrites in a `fork` child: a child looks names
//! up as the article's does, after the fork.

use super::message::{self, Dest, Sender, MAX_PAYLOAD};
use super::port::ReceiveRight;
use super::{handle, kern, Handle, SendRight};
use crate::error::{Error, ErrorKind, Result};
use mach2::port::MACH_PORT_NULL;
use mach2::traps::mach_task_self;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Message ids of the look-up protocol, version 2 (`'shmk'` + 0x10/0x11/0x12; version 1, with
/// ids 0/1/2, named nothing in its messages). A request's payload is the name looked up; an
/// answer's payload ends with the name of the service that answers and its length.
const REQUEST: i32 = 0x73686d10;
const REPLY: i32 = 0x73686d11;
/// The answer to a requester the publisher does not admit: no rights, the name as payload.
const REFUSED: i32 = 0x73686d12;
/// How long the service waits for a request before it looks at its stop flag.
const POLL: Duration = Duration::from_millis(100);
/// How long a reply may wait for room in the requester's queue.
const REPLY_TIMEOUT: Duration = Duration::from_millis(500);
/// Room kept in every answer for the answering service's name (at most 127 bytes), which the
/// looker checks: whoever holds a request's reply right (a squatter on the name, say) could
/// otherwise pass the request on to another service of ours and have that one answer as if
/// it were the name looked up. A service answers only requests for its own name.
const NAME_ROOM: usize = 128;

/// This task's bootstrap port (`task_get_bootstrap_port`), a new send right.
fn bootstrap() -> Result<SendRight> {
    let mut port = MACH_PORT_NULL;
    // SAFETY: a valid out-pointer; this task's own special port.
    let kr =
        unsafe { mach2::task_special_ports::task_get_bootstrap_port(mach_task_self(), &mut port) };
    kern::check("task_get_bootstrap_port", || "this task".into(), kr)?;
    // SAFETY: the call gave us a send right.
    Ok(unsafe { SendRight::from_raw(port) })
}

/// Checks a bootstrap name: 1 to 127 bytes (`BOOTSTRAP_MAX_NAME_LEN` counts the NUL), no
/// NUL inside.
fn checked_name(op: &'static str, name: &str) -> Result<CString> {
    let max = mach2::bootstrap::BOOTSTRAP_MAX_NAME_LEN as usize - 1;
    if name.is_empty() || name.len() > max {
        return Err(Error::new(
            ErrorKind::InvalidName,
            op,
            name,
            format!("a bootstrap name has 1 to {max} bytes"),
        ));
    }
    CString::new(name).map_err(|_| {
        Error::new(
            ErrorKind::InvalidName,
            op,
            name,
            "a bootstrap name has no NUL byte",
        )
    })
}

/// A unique bootstrap name: `prefix.PID.RANDOM`.
pub fn unique_name(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static N: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded from the OS's random source, per process.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    format!("{prefix}.{}.{:016x}", std::process::id(), h.finish())
}

/// A published name, answering look-ups from a thread of its own until dropped.
///
/// Whoever can look the name up gets the handles: every process of this login session's
/// bootstrap namespace that learns the name (it is not secret: a unique name is hard to
/// guess, not hidden). Publish read-only entries ([`MachMemory::read_only_entry`]) where a
/// reader must not write.
///
/// [`MachMemory::read_only_entry`]: super::MachMemory::read_only_entry
#[derive(Debug)]
pub struct Service {
    name: String,
    /// What it answers with; swapped whole by `replace`, while an answer being sent keeps the
    /// old one (and its rights) alive through its own `Arc`.
    content: Arc<Mutex<Arc<Content>>>,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    /// The fork generation that made it: a child has no copy of the serving thread.
    generation: u32,
}

impl Service {
    /// Publishes `handles` and `payload` (at most 8 KiB with their descriptions) under
    /// `name` in this process's bootstrap namespace.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidName`]; [`ErrorKind::AlreadyExists`] when the name is published
    /// already: by this process (`BOOTSTRAP_SERVICE_ACTIVE`), or by another, which launchd
    /// refuses as a hijack (`BOOTSTRAP_NOT_PRIVILEGED` for a name that `bootstrap_look_up`
    /// finds); [`ErrorKind::PermissionDenied`] (`BOOTSTRAP_NOT_PRIVILEGED` otherwise, e.g. in
    /// a sandbox); [`ErrorKind::InvalidArgument`] for too much to publish.
    #[doc(alias = "bootstrap_check_in")]
    pub fn publish(name: &str, handles: Vec<Handle>, payload: &[u8]) -> Result<Service> {
        Service::publish_to(name, handles, payload, Admit::Anyone)
    }

    /// As [`publish`](Self::publish), answering only the requesters `admit` lets in (as the
    /// kernel's audit token names them); the others get a refusal
    /// ([`ErrorKind::PermissionDenied`] from [`look_up`]) and no rights.
    ///
    /// # Errors
    /// As [`publish`](Self::publish).
    pub fn publish_to(
        name: &str,
        handles: Vec<Handle>,
        payload: &[u8],
        admit: Admit,
    ) -> Result<Service> {
        let c = checked_name("bootstrap_check_in", name)?;
        let content = Content::new("bootstrap_check_in", name, handles, payload)?;
        let rx = check_in(name, &c)?;
        let content = Arc::new(Mutex::new(Arc::new(content)));
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let (content2, stop2, served2) = (content.clone(), stop.clone(), served.clone());
        let thread = std::thread::Builder::new()
            .name("shmkit-bootstrap".into())
            .spawn({
                let name = name.to_string();
                move || serve(rx, &name, content2, admit, stop2, served2)
            })
            .map_err(|e| Error::io("spawn", name, &e))?;
        Ok(Service {
            name: name.to_string(),
            content,
            stop,
            served,
            thread: Some(thread),
            generation: crate::platform::generation(),
        })
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many look-ups were answered.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Publishes `handles` and `payload` instead, under the same name, with no moment in
    /// which the name is absent: look-ups answered from now on get the new ones.
    ///
    /// # Errors
    /// [`ErrorKind::NotInherited`] in a fork child (the name and its serving thread are the
    /// parent's); [`ErrorKind::InvalidArgument`] for too much to publish (the old content
    /// stays then).
    pub fn replace(&self, handles: Vec<Handle>, payload: &[u8]) -> Result<()> {
        if crate::platform::generation() != self.generation {
            return Err(Error::new(
                ErrorKind::NotInherited,
                "bootstrap publish",
                &self.name,
                "the name is the parent's: a fork child has its own port namespace and no \
                 copy of the serving thread",
            ));
        }
        let new = Content::new("bootstrap publish", &self.name, handles, payload)?;
        let old = std::mem::replace(
            &mut *self.content.lock().unwrap_or_else(|e| e.into_inner()),
            Arc::new(new),
        );
        // Released here, outside the lock (or by the answer that still sends it).
        drop(old);
        Ok(())
    }
}

/// `bootstrap_check_in` of `name`, the receive right it hands back.
///
/// launchd answers a check-in of a name that another process (another job) holds with
/// `BOOTSTRAP_NOT_PRIVILEGED` ("tried to hijack the service", `job_mig_check_in2`), and one
/// of a name this process holds with `BOOTSTRAP_SERVICE_ACTIVE`: both are
/// [`ErrorKind::AlreadyExists`] while `bootstrap_look_up` finds a live port under the name.
/// A name whose holder just let go (or died) stays in launchd until it has processed the
/// port's dead-name notification: for that while (up to 1 s here) the check-in is tried
/// again.
fn check_in(name: &str, c: &CString) -> Result<ReceiveRight> {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let mut pause = Duration::from_millis(5);
    loop {
        let bp = bootstrap()?;
        let mut port = MACH_PORT_NULL;
        // SAFETY: a NUL-terminated name and a valid out-pointer.
        let kr =
            unsafe { mach2::bootstrap::bootstrap_check_in(bp.as_raw(), c.as_ptr(), &mut port) };
        let e = match kern::check("bootstrap_check_in", || name.to_string(), kr) {
            // SAFETY: check-in handed us the service's receive right.
            Ok(()) => return Ok(unsafe { ReceiveRight::from_raw(port) }),
            Err(e) => e,
        };
        if !matches!(
            e.kind(),
            ErrorKind::PermissionDenied | ErrorKind::AlreadyExists
        ) {
            return Err(e);
        }
        if find(name).is_ok() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "bootstrap_check_in",
                name,
                format!("the name is published already, by this process or another ({e})"),
            ));
        }
        if std::time::Instant::now() >= deadline {
            // Nobody holds it, and launchd still refuses: a sandbox, or a name launchd keeps.
            return Err(e);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// What a service answers with: the handles, and the body that describes them.
#[derive(Debug)]
struct Content {
    handles: Vec<Handle>,
    body: Vec<u8>,
}

impl Content {
    fn new(op: &'static str, name: &str, handles: Vec<Handle>, payload: &[u8]) -> Result<Content> {
        let body = handle::encode(&handles, payload);
        if body.len() + NAME_ROOM > MAX_PAYLOAD || handles.len() > message::MAX_RIGHTS {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                op,
                name,
                format!(
                    "{} handles and {} bytes exceed what one reply carries ({} handles, {} bytes \
                     with their descriptions)",
                    handles.len(),
                    payload.len(),
                    message::MAX_RIGHTS,
                    MAX_PAYLOAD - NAME_ROOM
                ),
            ));
        }
        Ok(Content { handles, body })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let thread = self.thread.take();
        if crate::platform::generation() != self.generation {
            // A fork child has no copy of the serving thread: nothing to stop or join, and
            // the name stays the parent's.
            std::mem::forget(thread);
            return;
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// Who may look a published name up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Every process that can reach the name.
    Anyone,
    /// Processes of this effective uid only (root included only if it is this uid).
    Uid(u32),
}

impl Admit {
    fn lets_in(self, who: &Sender) -> bool {
        match self {
            Admit::Anyone => true,
            Admit::Uid(uid) => who.uid == uid,
        }
    }
}

/// The service's loop: answer each request for `name` with copies of the handles, the name at
/// the end of the answer; drop anything else. Ends when asked, and then the receive right
/// goes, and with it the name.
fn serve(
    rx: ReceiveRight,
    name: &str,
    content: Arc<Mutex<Arc<Content>>>,
    admit: Admit,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        let got = match message::recv(&rx, Some(POLL)) {
            Ok(m) => m,
            // Timeouts, and refused (hostile or garbled) messages: nothing to answer.
            Err(_) => continue,
        };
        if got.id != REQUEST || !got.rights.is_empty() || got.payload != name.as_bytes() {
            // Not ours, or a request for another name passed on to us: its rights and reply
            // right are released as `got` drops (the requester learns its request died).
            continue;
        }
        let Some(reply) = got.reply_to else { continue };
        if !admit.lets_in(&got.sender) {
            let _ = message::send(
                Dest::Reply(reply),
                REFUSED,
                &[],
                &got.payload,
                None,
                REPLY_TIMEOUT,
            );
            continue;
        }
        // Our own reference: a `replace` meanwhile releases the old rights only after this
        // answer has been copied in.
        let c = content.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let rights: Vec<&SendRight> = c.handles.iter().map(Handle::send_right).collect();
        let mut body = c.body.clone();
        body.extend_from_slice(&signature(name));
        if message::send(
            Dest::Reply(reply),
            REPLY,
            &rights,
            &body,
            None,
            REPLY_TIMEOUT,
        )
        .is_ok()
        {
            served.fetch_add(1, Ordering::Relaxed);
        }
    }
    drop(rx);
}

/// What an answer ends with: the answering service's name, then its length (so that a name
/// that ends another one, `foo` of `xfoo`, is not taken for it). Names have at most 127 bytes.
fn signature(name: &str) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    v.push(name.len() as u8);
    v
}

/// The service port published under `name` (`bootstrap_look_up` alone: nothing is asked of
/// the publisher, so a stopped or hung one is found too).
///
/// # Errors
/// [`ErrorKind::InvalidName`]; [`ErrorKind::NotFound`] (`BOOTSTRAP_UNKNOWN_SERVICE`) when
/// nobody publishes the name, and when its publisher just died (launchd, not told yet, hands
/// out the port, which arrives dead).
#[doc(alias = "bootstrap_look_up")]
pub fn find(name: &str) -> Result<SendRight> {
    let c = checked_name("bootstrap_look_up", name)?;
    let bp = bootstrap()?;
    let mut port = MACH_PORT_NULL;
    // SAFETY: a NUL-terminated name and a valid out-pointer.
    let kr = unsafe { mach2::bootstrap::bootstrap_look_up(bp.as_raw(), c.as_ptr(), &mut port) };
    kern::check("bootstrap_look_up", || name.to_string(), kr)?;
    // SAFETY: the look-up gave us a send right to the service (or MACH_PORT_DEAD).
    let right = unsafe { SendRight::from_raw(port) };
    if right.is_dead()? {
        return Err(Error::new(
            ErrorKind::NotFound,
            "bootstrap_look_up",
            name,
            "the name's publisher is gone (launchd has not dropped the name yet)",
        ));
    }
    Ok(right)
}

/// What a look-up returns.
#[derive(Debug)]
pub struct Published {
    /// The handles, in the order they were published.
    pub handles: Vec<Handle>,
    /// The publisher's bytes.
    pub payload: Vec<u8>,
    /// Who answered, as the kernel tells it: a process holding a service of this name (the
    /// answer says which name it is for, and only our services answer for their own name; a
    /// process that checked the name in can answer as it likes, and this is how to tell who
    /// it is).
    pub publisher: Sender,
}

/// Finds `name` and asks its publisher for what it publishes, waiting at most `timeout` in
/// all for the request to be queued and the answer to come.
///
/// # Errors
/// [`ErrorKind::NotFound`] (`BOOTSTRAP_UNKNOWN_SERVICE`) when nobody publishes the name;
/// [`ErrorKind::PeerGone`] when the publisher exits before it answers;
/// [`ErrorKind::PermissionDenied`] when the publisher does not admit this process
/// ([`Service::publish_to`]); [`ErrorKind::TimedOut`]; [`ErrorKind::BadLayout`] for an
/// answer that is not one.
#[doc(alias = "bootstrap_look_up")]
pub fn look_up(name: &str, timeout: Duration) -> Result<Published> {
    let service = find(name)?;
    let deadline = std::time::Instant::now().checked_add(timeout);
    let reply = ReceiveRight::new()?;
    message::send(
        Dest::Send(&service),
        REQUEST,
        &[],
        name.as_bytes(),
        Some(&reply),
        timeout,
    )
    .map_err(|e| e.with_op("bootstrap_look_up (request)"))?;
    let left = deadline.map_or(timeout, |d| {
        d.saturating_duration_since(std::time::Instant::now())
    });
    let got =
        message::recv(&reply, Some(left)).map_err(|e| e.with_op("bootstrap_look_up (reply)"))?;
    if got.id == REFUSED && got.payload == name.as_bytes() {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "bootstrap_look_up",
            name,
            format!(
                "its publisher (pid {}, uid {}) does not answer this process's user (uid {})",
                got.sender.pid,
                got.sender.uid,
                rustix::process::geteuid().as_raw()
            ),
        ));
    }
    if got.id != REPLY {
        // The kernel's send-once notification (id 71, MACH_NOTIFY_SEND_ONCE) says the
        // publisher dropped the request unanswered: it exited, or stopped serving.
        return Err(Error::new(
            ErrorKind::PeerGone,
            "bootstrap_look_up",
            name,
            format!("the publisher did not answer (message id {})", got.id),
        ));
    }
    let Some(body) = got.payload.strip_suffix(&signature(name)[..]) else {
        return Err(Error::new(
            ErrorKind::BadLayout,
            "bootstrap_look_up",
            name,
            "an answer for another name (a request passed on to another service)",
        ));
    };
    let (handles, payload) = handle::decode(got.rights, body)?;
    Ok(Published {
        handles,
        payload,
        publisher: got.sender,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request for one name passed on to the service of another is not answered: the
    /// requester learns that its request died (the kernel's send-once notification).
    #[test]
    fn a_service_answers_only_requests_for_its_own_name() {
        let y = unique_name("org.shmkit.test.own");
        let _service = Service::publish(&y, vec![], b"y's").unwrap();
        let port = find(&y).unwrap();
        let reply = ReceiveRight::new().unwrap();
        let other = unique_name("org.shmkit.test.other");
        message::send(
            Dest::Send(&port),
            REQUEST,
            &[],
            other.as_bytes(),
            Some(&reply),
            Duration::from_secs(5),
        )
        .unwrap();
        let got = message::recv(&reply, Some(Duration::from_secs(10))).unwrap();
        assert_ne!(got.id, REPLY, "a request for {other} was answered by {y}");
        // Asked for its own name, it answers.
        assert_eq!(
            look_up(&y, Duration::from_secs(10)).unwrap().payload,
            b"y's"
        );
    }

    /// An answer that ends with another service's name is refused, whoever sent it.
    #[test]
    fn an_answer_for_another_name_is_refused() {
        let x = unique_name("org.shmkit.test.asked");
        let c = CString::new(x.clone()).unwrap();
        let rx = check_in(&x, &c).unwrap();
        let liar = std::thread::spawn(move || {
            let got = message::recv(&rx, Some(Duration::from_secs(10))).unwrap();
            let mut body = handle::encode(&[], b"not yours");
            body.extend_from_slice(&signature("org.shmkit.test.someone.else"));
            let reply = got.reply_to.unwrap();
            message::send(Dest::Reply(reply), REPLY, &[], &body, None, REPLY_TIMEOUT).unwrap();
            rx
        });
        let err = look_up(&x, Duration::from_secs(10)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadLayout, "{err}");
        drop(liar.join().unwrap());
    }

    #[test]
    fn a_name_that_ends_another_is_not_its_signature() {
        assert!(!signature("xfoo").ends_with(&signature("foo")));
        assert!(signature("foo").ends_with(&signature("foo")));
    }
}
