//! Owned Mach port rights: a send right is to Mach what a file descriptor is to Unix, a
//! reference to a kernel object (a memory entry, a semaphore, another task's port) that can
//! be passed to another process in a message.

use super::kern;
use crate::error::Result;
use mach2::port::{
    mach_port_t, MACH_PORT_DEAD, MACH_PORT_NULL, MACH_PORT_RIGHT_RECEIVE, MACH_PORT_RIGHT_SEND,
};
use mach2::traps::mach_task_self;

/// One user reference to a send right of this task, released on drop
/// (`mach_port_deallocate`).
///
/// A right belongs to the task that holds it: a `fork` child starts with a new port namespace,
/// where the name of a right copied from the parent means nothing or another port. Every use
/// in a child is refused ([`ErrorKind::NotInherited`](crate::ErrorKind::NotInherited)) and a
/// drop there releases nothing.
#[derive(Debug)]
pub struct SendRight {
    name: mach_port_t,
    /// The fork generation of the task that holds it (a pid can be reused by a grandchild).
    generation: u32,
}

impl SendRight {
    /// Takes ownership of one user reference to the send right `name` of this task.
    ///
    /// # Safety
    /// `name` is a send right (or a dead name) of this task whose one reference the caller
    /// gives away: nothing else releases it.
    pub unsafe fn from_raw(name: mach_port_t) -> SendRight {
        SendRight {
            name,
            generation: crate::platform::generation(),
        }
    }

    /// The port name, borrowed: valid while `self` lives, in this task only.
    pub fn as_raw(&self) -> mach_port_t {
        self.name
    }

    /// Gives up ownership: the caller releases the reference.
    pub fn into_raw(self) -> mach_port_t {
        let name = self.name;
        std::mem::forget(self);
        name
    }

    /// Fails in a `fork` child, where the name is not this task's.
    pub(crate) fn here(&self, op: &'static str) -> Result<mach_port_t> {
        if crate::platform::generation() == self.generation {
            Ok(self.name)
        } else {
            Err(kern::in_fork_child(op, format!("port {:#x}", self.name)))
        }
    }

    /// Another user reference to the same right (`mach_port_mod_refs` +1; a dead name that
    /// arrived dead, `MACH_PORT_DEAD`, is copied as is).
    ///
    /// # Errors
    /// In a fork child; `KERN_UREFS_OVERFLOW` past 65,534 references.
    pub fn try_clone(&self) -> Result<SendRight> {
        let name = self.here("mach_port_mod_refs")?;
        if name == MACH_PORT_DEAD {
            // SAFETY: MACH_PORT_DEAD carries no reference.
            return Ok(unsafe { SendRight::from_raw(MACH_PORT_DEAD) });
        }
        // SAFETY: adds a reference to a right this task holds (checked by the kernel).
        let kr = unsafe {
            mach2::mach_port::mach_port_mod_refs(mach_task_self(), name, MACH_PORT_RIGHT_SEND, 1)
        };
        kern::check("mach_port_mod_refs", || format!("port {name:#x}"), kr)?;
        // SAFETY: the reference was just added for the new value.
        Ok(unsafe { SendRight::from_raw(name) })
    }

    /// Whether the port's receiver is gone (the right became a dead name): the process that
    /// published it exited, or destroyed the object.
    ///
    /// # Errors
    /// In a fork child; the OS error of `mach_port_type`.
    pub fn is_dead(&self) -> Result<bool> {
        let name = self.here("mach_port_type")?;
        if name == MACH_PORT_DEAD {
            return Ok(true); // it died before it reached us
        }
        let mut ty: mach2::port::mach_port_type_t = 0;
        // SAFETY: `ty` is a valid out-pointer; the name is this task's.
        let kr = unsafe { super::ffi::mach_port_type(mach_task_self(), name, &mut ty) };
        kern::check("mach_port_type", || format!("port {name:#x}"), kr)?;
        Ok(ty & MACH_PORT_TYPE_DEAD_NAME != 0)
    }
}

/// `MACH_PORT_TYPE(MACH_PORT_RIGHT_DEAD_NAME)` (`mach/port.h`: `1 << (right + 16)`).
const MACH_PORT_TYPE_DEAD_NAME: mach2::port::mach_port_type_t =
    1 << (mach2::port::MACH_PORT_RIGHT_DEAD_NAME + 16);

impl Drop for SendRight {
    fn drop(&mut self) {
        if self.name != MACH_PORT_NULL
            && self.name != MACH_PORT_DEAD
            && crate::platform::generation() == self.generation
        {
            // SAFETY: the one reference this value owns, released once.
            unsafe { mach2::mach_port::mach_port_deallocate(mach_task_self(), self.name) };
        }
    }
}

/// A receive right of this task: the end where messages arrive. Destroyed on drop
/// (`mach_port_mod_refs` −1 on the receive right): senders then hold dead names.
#[derive(Debug)]
pub(crate) struct ReceiveRight {
    name: mach_port_t,
    generation: u32,
}

impl ReceiveRight {
    /// A new port whose receive right this task holds (`mach_port_allocate`).
    pub(crate) fn new() -> Result<ReceiveRight> {
        let mut name = MACH_PORT_NULL;
        // SAFETY: `name` is a valid out-pointer.
        let kr = unsafe {
            mach2::mach_port::mach_port_allocate(
                mach_task_self(),
                MACH_PORT_RIGHT_RECEIVE,
                &mut name,
            )
        };
        kern::check("mach_port_allocate", || "a reply port".into(), kr)?;
        // SAFETY: the receive right was just made for this value.
        Ok(unsafe { ReceiveRight::from_raw(name) })
    }

    /// # Safety
    /// `name` is a receive right of this task that the caller gives away.
    pub(crate) unsafe fn from_raw(name: mach_port_t) -> ReceiveRight {
        ReceiveRight {
            name,
            generation: crate::platform::generation(),
        }
    }

    pub(crate) fn here(&self, op: &'static str) -> Result<mach_port_t> {
        if crate::platform::generation() == self.generation {
            Ok(self.name)
        } else {
            Err(kern::in_fork_child(op, format!("port {:#x}", self.name)))
        }
    }
}

impl Drop for ReceiveRight {
    fn drop(&mut self) {
        if self.name != MACH_PORT_NULL && crate::platform::generation() == self.generation {
            // SAFETY: the receive right this value owns, destroyed once.
            unsafe {
                mach2::mach_port::mach_port_mod_refs(
                    mach_task_self(),
                    self.name,
                    MACH_PORT_RIGHT_RECEIVE,
                    -1,
                )
            };
        }
    }
}
