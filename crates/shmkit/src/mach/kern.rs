//! Mach's own error numbers (`kern_return_t`, `mach_msg_return_t`, the bootstrap server's),
//! turned into shmkit errors that say what happened and what to do.

use crate::error::{Error, ErrorKind, Result};
use mach2::kern_return::*;

/// The name of a `kern_return_t`, a `mach_msg_return_t` or a bootstrap error, as in Apple's
/// headers (`mach/kern_return.h`, `mach/message.h`, `servers/bootstrap.h`).
pub(crate) fn name(kr: i32) -> &'static str {
    use mach2::bootstrap as b;
    use mach2::message as m;
    match kr {
        KERN_SUCCESS => "KERN_SUCCESS",
        KERN_INVALID_ADDRESS => "KERN_INVALID_ADDRESS",
        KERN_PROTECTION_FAILURE => "KERN_PROTECTION_FAILURE",
        KERN_NO_SPACE => "KERN_NO_SPACE",
        KERN_INVALID_ARGUMENT => "KERN_INVALID_ARGUMENT",
        KERN_FAILURE => "KERN_FAILURE",
        KERN_RESOURCE_SHORTAGE => "KERN_RESOURCE_SHORTAGE",
        KERN_NO_ACCESS => "KERN_NO_ACCESS",
        KERN_ABORTED => "KERN_ABORTED",
        KERN_INVALID_NAME => "KERN_INVALID_NAME",
        KERN_INVALID_TASK => "KERN_INVALID_TASK",
        KERN_INVALID_RIGHT => "KERN_INVALID_RIGHT",
        KERN_INVALID_VALUE => "KERN_INVALID_VALUE",
        KERN_UREFS_OVERFLOW => "KERN_UREFS_OVERFLOW",
        KERN_INVALID_CAPABILITY => "KERN_INVALID_CAPABILITY",
        KERN_NAME_EXISTS => "KERN_NAME_EXISTS",
        KERN_TERMINATED => "KERN_TERMINATED",
        KERN_OPERATION_TIMED_OUT => "KERN_OPERATION_TIMED_OUT",
        KERN_NOT_SUPPORTED => "KERN_NOT_SUPPORTED",
        KERN_INVALID_OBJECT => "KERN_INVALID_OBJECT",
        b::BOOTSTRAP_NOT_PRIVILEGED => "BOOTSTRAP_NOT_PRIVILEGED",
        b::BOOTSTRAP_NAME_IN_USE => "BOOTSTRAP_NAME_IN_USE",
        b::BOOTSTRAP_UNKNOWN_SERVICE => "BOOTSTRAP_UNKNOWN_SERVICE",
        b::BOOTSTRAP_SERVICE_ACTIVE => "BOOTSTRAP_SERVICE_ACTIVE",
        b::BOOTSTRAP_BAD_COUNT => "BOOTSTRAP_BAD_COUNT",
        b::BOOTSTRAP_NO_MEMORY => "BOOTSTRAP_NO_MEMORY",
        m::MACH_SEND_INVALID_DEST => "MACH_SEND_INVALID_DEST",
        m::MACH_SEND_TIMED_OUT => "MACH_SEND_TIMED_OUT",
        m::MACH_SEND_INVALID_RIGHT => "MACH_SEND_INVALID_RIGHT",
        m::MACH_RCV_TIMED_OUT => "MACH_RCV_TIMED_OUT",
        m::MACH_RCV_TOO_LARGE => "MACH_RCV_TOO_LARGE",
        m::MACH_RCV_INVALID_NAME => "MACH_RCV_INVALID_NAME",
        m::MACH_RCV_PORT_DIED => "MACH_RCV_PORT_DIED",
        m::MACH_RCV_INTERRUPTED => "MACH_RCV_INTERRUPTED",
        _ => "an unknown Mach error",
    }
}

/// The kind of a Mach error, for callers that match on it.
fn kind(kr: i32) -> ErrorKind {
    use mach2::bootstrap as b;
    use mach2::message as m;
    match kr {
        KERN_TERMINATED | m::MACH_SEND_INVALID_DEST | m::MACH_RCV_PORT_DIED => ErrorKind::PeerGone,
        KERN_OPERATION_TIMED_OUT | m::MACH_RCV_TIMED_OUT | m::MACH_SEND_TIMED_OUT => {
            ErrorKind::TimedOut
        }
        KERN_PROTECTION_FAILURE | KERN_NO_ACCESS | b::BOOTSTRAP_NOT_PRIVILEGED => {
            ErrorKind::PermissionDenied
        }
        KERN_INVALID_ARGUMENT | KERN_INVALID_VALUE => ErrorKind::InvalidArgument,
        KERN_NOT_SUPPORTED => ErrorKind::Unsupported,
        b::BOOTSTRAP_UNKNOWN_SERVICE => ErrorKind::NotFound,
        b::BOOTSTRAP_NAME_IN_USE | b::BOOTSTRAP_SERVICE_ACTIVE | KERN_NAME_EXISTS => {
            ErrorKind::AlreadyExists
        }
        _ => ErrorKind::Os,
    }
}

/// A shmkit error for a Mach call that returned `kr`.
#[cold]
pub(crate) fn error(op: &'static str, object: impl Into<String>, kr: i32) -> Error {
    let err = Error::new(kind(kr), op, object, format!("{} ({kr:#x})", name(kr)));
    match kr {
        KERN_TERMINATED => err.with_hint(
            "the task that made the object exited (a Mach semaphore dies with its creator)",
        ),
        KERN_RESOURCE_SHORTAGE | KERN_NO_SPACE => {
            err.with_hint("the address space or the kernel is out of memory for this size")
        }
        mach2::bootstrap::BOOTSTRAP_UNKNOWN_SERVICE => err.with_hint(
            "no process has published this name in this bootstrap namespace (another user's or \
             another login session's names are not visible)",
        ),
        mach2::message::MACH_SEND_INVALID_DEST => {
            err.with_hint("the process at the other end of the port is gone")
        }
        _ => err,
    }
}

/// `Ok(())` for `KERN_SUCCESS`, the error of [`error`] otherwise.
pub(crate) fn check(op: &'static str, object: impl FnOnce() -> String, kr: i32) -> Result<()> {
    if kr == KERN_SUCCESS {
        Ok(())
    } else {
        Err(error(op, object(), kr))
    }
}

/// The error of a Mach value used in a `fork` child: the child has a new port namespace
/// (only the bootstrap, host and exception ports come along), so a port name copied from the
/// parent names nothing here, or something else.
#[cold]
pub(crate) fn in_fork_child(op: &'static str, object: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::NotInherited,
        op,
        object,
        "Mach port rights are not inherited across fork: this value was made by the parent",
    )
    .with_hint("look the object up again in the child (mach::bootstrap::look_up)")
}
