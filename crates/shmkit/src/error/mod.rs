//! The one error type of shmkit: the operation, the object and the OS error, plus a remedy.

pub(crate) mod hint;

use std::fmt;
use std::io;

/// What went wrong, in categories a caller can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The operating system refused the call for a reason no other kind names;
    /// [`Error::raw_os_error`] has the errno (which every OS error keeps, whatever its kind).
    Os,
    /// A POSIX shared-memory or memfd name that the OS would reject.
    InvalidName,
    /// An argument that cannot work (zero size, overflowing size, bad mode, ...).
    InvalidArgument,
    /// An access that would touch bytes past the end of the segment.
    OutOfBounds,
    /// An atomic or typed view at an offset that is not aligned for its type.
    Misaligned,
    /// The object exists but is smaller than the size the caller asked for.
    TooSmall,
    /// A write through a mapping that is read-only.
    ReadOnly,
    /// Another process truncated the object while it was mapped here; the bytes past the
    /// new end are no longer shared.
    Truncated,
    /// The operating system does not offer this feature.
    Unsupported,
    /// A synchronization object or initialized region in shared memory has the wrong magic
    /// word or layout version: it is not there yet, was built by another program, or by an
    /// incompatible version of shmkit.
    BadLayout,
    /// A mutex whose owner died was unlocked without being marked consistent: the data it
    /// protects cannot be trusted, and every later lock fails with this kind.
    NotRecoverable,
    /// A wait reached its deadline.
    TimedOut,
    /// The thread would wait for itself (it holds the lock it asks for).
    Deadlock,
    /// The mapping is not present in this process: it was created before a `fork` with
    /// [`Inherit::None`](crate::Inherit::None), or its `Copy`/`Zero` replacement could not be
    /// made in the child. Nothing of it can be accessed here.
    NotInherited,
    /// The file system that holds the object is full (a tmpfs such as `/dev/shm` at its `size=`
    /// limit, or Docker's 64 MiB default): a page could not be allocated when it was touched.
    NoSpace,
    /// The operating system could not provide a page of the mapping for another reason than a
    /// truncation or a full file system (an I/O error, the huge-page pool exhausted).
    Fault,
    /// The object does not exist: no object has the name, key, id or address (`ENOENT`,
    /// `EIDRM`, and the `EINVAL` that `shmctl`, `semctl` and `msgctl` give for an unused id).
    NotFound,
    /// An object with this name or key exists already (`EEXIST`): creation is exclusive.
    AlreadyExists,
    /// The object's permissions, or its owner, do not allow the operation (`EACCES`,
    /// `EPERM`).
    PermissionDenied,
    /// A call that does not wait found nothing to do now: a channel full (send) or empty
    /// (receive).
    WouldBlock,
    /// The process at the other end of a channel died, or let go of its end.
    PeerGone,
    /// A broadcast consumer fell a lap behind its producer: messages were lost to it.
    Overrun,
    /// The network engine under the bridge across hosts (Zenoh) refused or failed: a
    /// configuration it cannot use, an endpoint it cannot listen on, a key expression it
    /// does not accept.
    Network,
}

impl ErrorKind {
    /// The kind of an OS error number, for errors the OS reported.
    fn of_errno(errno: rustix::io::Errno) -> Self {
        use rustix::io::Errno;
        match errno {
            Errno::NOENT | Errno::IDRM => ErrorKind::NotFound,
            Errno::EXIST => ErrorKind::AlreadyExists,
            Errno::ACCESS | Errno::PERM => ErrorKind::PermissionDenied,
            Errno::NAMETOOLONG => ErrorKind::InvalidName,
            _ => ErrorKind::Os,
        }
    }
}

/// An error from a shmkit operation.
///
/// Its message names the operation (`shm_open`, `shmget`, `mmap`, ...), the object
/// (`/name`, `key 0x1234`, `shmid 7`, ...), the OS error if there was one, and for the common
/// failures what to do about it.
///
/// ```
/// let err = shmkit::PosixShm::open("/shmkit-doc-does-not-exist").unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
/// assert!(err.to_string().starts_with("shm_open /shmkit-doc-does-not-exist: "));
/// ```
pub struct Error {
    // Boxed so that `Result<T, Error>` is one pointer wider than `T` at most, as with
    // `std::io::Error`: hot paths (the mutex, the semaphore) return it.
    inner: Box<Inner>,
}

struct Inner {
    op: &'static str,
    object: String,
    kind: ErrorKind,
    os: Option<i32>,
    detail: Option<String>,
    hint: Option<String>,
}

/// `Result` with shmkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An OS error from `op` on `object`, of the kind its errno says.
    pub(crate) fn os(
        op: &'static str,
        object: impl Into<String>,
        errno: rustix::io::Errno,
    ) -> Self {
        Self::from_inner(Inner {
            op,
            object: object.into(),
            kind: ErrorKind::of_errno(errno),
            os: Some(errno.raw_os_error()),
            detail: None,
            hint: None,
        })
    }

    /// An OS error that reached us as a `std::io::Error` (from `std::fs`, `std::os::unix::net`).
    pub(crate) fn io(op: &'static str, object: impl Into<String>, e: &io::Error) -> Self {
        Error::os(
            op,
            object,
            rustix::io::Errno::from_io_error(e).unwrap_or(rustix::io::Errno::IO),
        )
    }

    /// An error that is not the OS's: `detail` says what is wrong.
    pub(crate) fn new(
        kind: ErrorKind,
        op: &'static str,
        object: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::from_inner(Inner {
            op,
            object: object.into(),
            kind,
            os: None,
            detail: Some(detail.into()),
            hint: None,
        })
    }

    #[cold]
    fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Box::new(inner),
        }
    }

    /// Adds or replaces the remedy ("open it instead", "raise it with sysctl ..."): a
    /// program built on shmkit can name its own commands in it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.inner.hint = Some(hint.into());
        self
    }

    /// Replaces the operation's name.
    pub(crate) fn with_op(mut self, op: &'static str) -> Self {
        self.inner.op = op;
        self
    }

    /// Replaces the kind (an `ENOTSUP` is [`ErrorKind::Unsupported`], say).
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.inner.kind = kind;
        self
    }

    /// The operation that failed, named after its system call where there is one.
    pub fn op(&self) -> &str {
        self.inner.op
    }

    /// The object the operation was applied to, as shmkit addresses it.
    pub fn object(&self) -> &str {
        &self.inner.object
    }

    /// The category of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The OS error number, if the OS reported the failure.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.inner.os
    }

    /// The suggested remedy, if shmkit knows one.
    pub fn hint(&self) -> Option<&str> {
        self.inner.hint.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        write!(f, "{} {}: ", e.op, e.object)?;
        match (&e.detail, e.os) {
            (Some(d), Some(e)) => write!(f, "{d} ({})", io::Error::from_raw_os_error(e))?,
            (Some(d), None) => f.write_str(d)?,
            (None, Some(e)) => write!(f, "{}", io::Error::from_raw_os_error(e))?,
            (None, None) => f.write_str("failed")?,
        }
        if let Some(h) = &e.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Display form is what a person needs when an `unwrap` fails.
        write!(f, "{self}")
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match (e.inner.os, e.inner.kind) {
            (Some(errno), _) => io::Error::from_raw_os_error(errno).kind(),
            (None, ErrorKind::OutOfBounds | ErrorKind::InvalidArgument | ErrorKind::Misaligned) => {
                io::ErrorKind::InvalidInput
            }
            (None, ErrorKind::InvalidName) => io::ErrorKind::InvalidInput,
            (None, ErrorKind::ReadOnly) => io::ErrorKind::PermissionDenied,
            (None, ErrorKind::Unsupported) => io::ErrorKind::Unsupported,
            (None, ErrorKind::TimedOut) => io::ErrorKind::TimedOut,
            (None, ErrorKind::BadLayout) => io::ErrorKind::InvalidData,
            (None, ErrorKind::Deadlock) => io::ErrorKind::Deadlock,
            (None, ErrorKind::NoSpace) => io::ErrorKind::StorageFull,
            (None, ErrorKind::NotFound) => io::ErrorKind::NotFound,
            (None, _) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_op_object_os_error_and_hint() {
        let e = Error::os("shm_open", "/x", rustix::io::Errno::EXIST).with_hint("open it instead");
        let s = e.to_string();
        assert!(s.starts_with("shm_open /x: File exists"), "{s}");
        assert!(s.ends_with("; open it instead"), "{s}");
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_eq!(
            std::mem::size_of::<Result<()>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn display_without_os_error() {
        let e = Error::new(
            ErrorKind::OutOfBounds,
            "read_at",
            "/x",
            "bytes 8..16 past end 12",
        );
        assert_eq!(e.to_string(), "read_at /x: bytes 8..16 past end 12");
        assert_eq!(e.raw_os_error(), None);
    }
}
