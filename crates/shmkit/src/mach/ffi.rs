//! What `mach2` does not declare, from Apple's headers (each item names its header).

use mach2::kern_return::kern_return_t;
use mach2::port::{mach_port_name_t, mach_port_type_t};
use mach2::vm_types::vm_map_t;

// `mach/memory_object_types.h`: flags or-ed into the permission of
// `mach_make_memory_entry_64`.
/// Make a new, zero-filled object of the given size (not an entry for an existing range).
pub(crate) const MAP_MEM_NAMED_CREATE: i32 = 0x02_0000;
/// Hand back the parent entry itself when it is identical.
#[allow(dead_code)]
pub(crate) const MAP_MEM_NAMED_REUSE: i32 = 0x08_0000;
/// Make a copy of a range (copy-on-write), not a share of it.
#[allow(dead_code)]
pub(crate) const MAP_MEM_VM_COPY: i32 = 0x20_0000;
/// Share the range as the map holds it, however many VM objects back it: without it, an
/// entry for an anonymous range covers only its first object (128 MiB chunks).
pub(crate) const MAP_MEM_VM_SHARE: i32 = 0x40_0000;

unsafe extern "C" {
    /// `mach_port_type(3)` (`mach/mach_port.h`): the rights `name` denotes in `task`.
    pub(crate) fn mach_port_type(
        task: vm_map_t,
        name: mach_port_name_t,
        ptype: *mut mach_port_type_t,
    ) -> kern_return_t;
}
