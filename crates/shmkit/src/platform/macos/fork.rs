//! What `fork` gives a child of each mapping: `minherit(2)`, the BSD face of Mach's
//! `vm_inherit`, which the kernel applies at fork with no help from user space.

use crate::error::{Error, ErrorKind, Result};
use crate::platform::maps::Slot;
use crate::platform::Inherit;
use std::sync::atomic::Ordering;

extern "C" {
    // <sys/mman.h>; not bound by the libc crate for Apple targets.
    fn minherit(addr: *mut libc::c_void, len: libc::size_t, inherit: libc::c_int) -> libc::c_int;
}

/// Nothing to register: the kernel copies, shares or drops each range at fork.
pub(crate) fn ensure_fork_handlers() {}

/// Sets what `fork` gives a child of the mapping registered in `slot` (`minherit(2)` with
/// `VM_INHERIT_SHARE`, `VM_INHERIT_COPY` or `VM_INHERIT_NONE`). [`Inherit::Zero`] has no
/// counterpart on macOS and is refused.
pub(crate) fn set_inherit(slot: &'static Slot, mode: Inherit, object: &str) -> Result<()> {
    let how = match mode {
        Inherit::Share => libc::VM_INHERIT_SHARE,
        Inherit::Copy => libc::VM_INHERIT_COPY,
        Inherit::None => libc::VM_INHERIT_NONE,
        Inherit::Zero => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "minherit",
                object,
                "macOS has no zero-fill inheritance for shared memory (VM_INHERIT_ZERO is \
                 not offered by minherit)",
            )
            .with_hint("use Inherit::None and map fresh memory in the child"))
        }
    };
    let start = slot.start.load(Ordering::Acquire);
    let len = slot.len.load(Ordering::Relaxed);
    // SAFETY: [start, start+len) is a live mapping owned by the caller's `Mapping`; the call
    // changes only what fork does with it.
    if unsafe { minherit(start as *mut libc::c_void, len, how) } != 0 {
        return Err(Error::os("minherit", object, crate::platform::errno()));
    }
    slot.inherit.store(mode.to_u8(), Ordering::Release);
    Ok(())
}
