//! Mach memory entries: a port that names memory, mapped by whoever holds a send right to it
//! (`mach_make_memory_entry_64`, `mach_vm_map`). No name in any file system, nothing to
//! unlink: the memory lives as long as some entry or mapping of it does.

use super::{kern, SendRight};
use crate::error::{Error, ErrorKind, Result};
use crate::mapping::{Mapping, Unmap};
use mach2::port::MACH_PORT_NULL;
use mach2::traps::mach_task_self;
use mach2::vm_prot::{vm_prot_t, VM_PROT_READ, VM_PROT_WRITE};

/// A send right to a Mach memory entry, with the size and access it was made with: what one
/// process gives another (through [`bootstrap`](super::bootstrap) or a
/// [`Handle`](super::Handle)) so that both map the same memory.
#[derive(Debug)]
pub struct MemoryEntry {
    right: SendRight,
    len: usize,
    writable: bool,
}

/// Mach memory mapped into this process (`mach_vm_map`, copy off, shared with every other
/// mapping of its entry). Dereferences to [`Mapping`] like every segment. macOS only.
///
/// ```
/// # #[cfg(target_os = "macos")] {
/// use shmkit::mach::MachMemory;
/// let seg = MachMemory::new(4096)?;
/// let again = seg.entry().try_clone()?.map()?;      // a second mapping of the same memory
/// seg.write_at(0, b"one memory")?;
/// let mut buf = [0u8; 10];
/// again.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"one memory");
/// # }
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct MachMemory {
    map: Mapping,
    entry: MemoryEntry,
}

fn object(len: usize) -> String {
    format!("Mach memory entry of {len} bytes")
}

fn checked_len(op: &'static str, len: usize) -> Result<u64> {
    let page = rustix::param::page_size();
    if len == 0 || len.checked_next_multiple_of(page).is_none() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            op,
            object(len),
            "the size must be at least 1 byte and fit the address space once rounded to pages",
        ));
    }
    Ok(len as u64)
}

/// `mach_make_memory_entry_64` for `len` bytes at `offset` (an address of this task, or 0
/// with `MAP_MEM_NAMED_CREATE`), refusing an entry that covers less than asked.
fn make_entry(len: usize, offset: u64, permission: vm_prot_t) -> Result<SendRight> {
    let mut size: u64 = checked_len("mach_make_memory_entry_64", len)?;
    let mut port = MACH_PORT_NULL;
    // SAFETY: out-pointers to locals; the kernel checks the range and the permission.
    let kr = unsafe {
        mach2::vm::mach_make_memory_entry_64(
            mach_task_self(),
            &mut size,
            offset,
            permission,
            &mut port,
            MACH_PORT_NULL,
        )
    };
    kern::check("mach_make_memory_entry_64", || object(len), kr)?;
    // SAFETY: the call made this send right for us.
    let right = unsafe { SendRight::from_raw(port) };
    if size < len as u64 {
        return Err(Error::new(
            ErrorKind::Os,
            "mach_make_memory_entry_64",
            object(len),
            format!("the kernel made an entry of only {size} bytes"),
        )
        .with_hint("an entry for an anonymous range covers one VM object; MAP_MEM_VM_SHARE covers the range"));
    }
    Ok(right)
}

impl MemoryEntry {
    /// Wraps a send right to a memory entry of at least `len` bytes received from elsewhere.
    /// Nothing is trusted: [`map`](Self::map) fails if the entry is smaller than `len`, or
    /// read-only when `writable` is claimed (the kernel checks both).
    pub fn from_send_right(right: SendRight, len: usize, writable: bool) -> MemoryEntry {
        MemoryEntry {
            right,
            len,
            writable,
        }
    }

    /// The size this entry was made (or claimed) with.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: entries have at least one byte. (For `clippy::len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether mappings of it may write.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The send right.
    pub fn send_right(&self) -> &SendRight {
        &self.right
    }

    /// Gives the send right away (to pass it on).
    pub fn into_send_right(self) -> SendRight {
        self.right
    }

    /// Another reference to the same entry.
    ///
    /// # Errors
    /// As [`SendRight::try_clone`].
    pub fn try_clone(&self) -> Result<MemoryEntry> {
        Ok(MemoryEntry {
            right: self.right.try_clone()?,
            len: self.len,
            writable: self.writable,
        })
    }

    /// Maps the whole entry: read-write if it is writable, else read-only.
    ///
    /// # Errors
    /// In a fork child (rights are not inherited); `KERN_INVALID_ARGUMENT`
    /// ([`ErrorKind::InvalidArgument`]) if the entry is smaller than claimed;
    /// `KERN_INVALID_RIGHT` as [`ErrorKind::PermissionDenied`] for a writable claim on a
    /// read-only entry; `KERN_NO_SPACE` when the address space is full.
    ///
    /// The memory is trusted to stay: an entry another process made over a file mapping,
    /// whose file it then truncates, faults here (SIGBUS) like any truncated file mapping;
    /// shmkit's SIGBUS guard covers only objects it maps by descriptor. Map entries from
    /// peers you trust, or entries you made.
    #[doc(alias = "mach_vm_map")]
    pub fn map(self) -> Result<MachMemory> {
        let writable = self.writable;
        self.map_with(writable)
    }

    /// Maps the entry read-only, whatever it allows.
    ///
    /// # Errors
    /// As [`map`](Self::map).
    pub fn map_read_only(self) -> Result<MachMemory> {
        self.map_with(false)
    }

    fn map_with(self, writable: bool) -> Result<MachMemory> {
        let port = self.right.here("mach_vm_map")?;
        let len = self.len;
        checked_len("mach_vm_map", len)?;
        let prot = if writable {
            VM_PROT_READ | VM_PROT_WRITE
        } else {
            VM_PROT_READ
        };
        let mut addr: u64 = 0;
        // SAFETY: a new mapping at an address the kernel chooses (VM_FLAGS_ANYWHERE), so it
        // replaces nothing; `copy` false makes it share the entry's memory. Inheritance
        // starts as Share, the default of every shmkit mapping.
        let kr = unsafe {
            mach2::vm::mach_vm_map(
                mach_task_self(),
                &mut addr,
                len as u64,
                0,
                mach2::vm_statistics::VM_FLAGS_ANYWHERE,
                port,
                0,
                0,
                prot,
                prot,
                mach2::vm_inherit::VM_INHERIT_SHARE,
            )
        };
        if kr == mach2::kern_return::KERN_INVALID_RIGHT && writable {
            // `vm_map_enter_mem_object`: the entry's protection lacks what was asked.
            return Err(kern::error("mach_vm_map", object(len), kr)
                .with_kind(ErrorKind::PermissionDenied)
                .with_hint("the entry allows reading only: map it with map_read_only"));
        }
        kern::check("mach_vm_map", || object(len), kr)?;
        let page = rustix::param::page_size();
        // SAFETY: `addr` is the mapping just made, `len` rounded to pages long, given to the
        // Mapping, which unmaps it (munmap undoes any range of the task's map on macOS).
        let map = unsafe {
            Mapping::from_raw(
                addr as usize as *mut u8,
                len,
                len.next_multiple_of(page),
                page,
                writable,
                Unmap::Munmap,
                None,
                object(len),
            )?
        };
        Ok(MachMemory { map, entry: self })
    }
}

impl MachMemory {
    /// New zero-filled memory of `len` bytes in a new entry (`mach_make_memory_entry_64` with
    /// `MAP_MEM_NAMED_CREATE`, as Chromium makes its shared memory), mapped read-write.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a zero size; the Mach error of either call.
    #[doc(alias = "mach_make_memory_entry_64")]
    pub fn new(len: usize) -> Result<MachMemory> {
        let right = make_entry(
            len,
            0,
            ffi_flag(super::ffi::MAP_MEM_NAMED_CREATE) | VM_PROT_READ | VM_PROT_WRITE,
        )?;
        MemoryEntry::from_send_right(right, len, true).map()
    }

    /// The article's way: `mach_vm_allocate` a range, make an entry of it
    /// (`mach_make_memory_entry_64` with `MAP_MEM_VM_SHARE`, so that a range over 128 MiB is
    /// covered whole, and the size the kernel returns checked), and keep the range as this
    /// value's mapping. Its inheritance is set to Share, every shmkit mapping's default; set
    /// it to [`Inherit::Copy`](crate::Inherit::Copy) to see what `fork` alone gives a child.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    #[doc(alias = "mach_vm_allocate")]
    pub fn allocate(len: usize) -> Result<MachMemory> {
        checked_len("mach_vm_allocate", len)?;
        let mut addr: u64 = 0;
        // SAFETY: a new range anywhere (VM_FLAGS_ANYWHERE): it replaces nothing.
        let kr = unsafe {
            mach2::vm::mach_vm_allocate(
                mach_task_self(),
                &mut addr,
                len as u64,
                mach2::vm_statistics::VM_FLAGS_ANYWHERE,
            )
        };
        kern::check("mach_vm_allocate", || object(len), kr)?;
        let page = rustix::param::page_size();
        let map_len = len.next_multiple_of(page);
        // SAFETY: the range just allocated, owned by the Mapping from here on (also when the
        // entry fails: the Mapping's drop unmaps it).
        let map = unsafe {
            Mapping::from_raw(
                addr as usize as *mut u8,
                len,
                map_len,
                page,
                true,
                Unmap::Munmap,
                None,
                object(len),
            )?
        };
        // Mach's default for allocated memory is Copy; shmkit's mappings start shared.
        map.set_inherit(crate::Inherit::Share)?;
        let right = make_entry(
            len,
            addr,
            ffi_flag(super::ffi::MAP_MEM_VM_SHARE) | VM_PROT_READ | VM_PROT_WRITE,
        )?;
        Ok(MachMemory {
            map,
            entry: MemoryEntry::from_send_right(right, len, true),
        })
    }

    /// The entry this memory was mapped from.
    pub fn entry(&self) -> &MemoryEntry {
        &self.entry
    }

    /// A new entry for the same memory that allows reading only (`VM_PROT_READ` with
    /// `MAP_MEM_VM_SHARE`, from this mapping): a process given it can map it read-only, and
    /// a writable map of it fails, whatever that process asks.
    ///
    /// # Errors
    /// In a fork child where this mapping is absent; the Mach error.
    pub fn read_only_entry(&self) -> Result<MemoryEntry> {
        self.map.check_state_for("mach_make_memory_entry_64")?;
        let addr = self.map.as_ptr() as u64;
        let right = make_entry(
            self.map.len(),
            addr,
            ffi_flag(super::ffi::MAP_MEM_VM_SHARE) | VM_PROT_READ,
        )?;
        Ok(MemoryEntry::from_send_right(right, self.map.len(), false))
    }
}

fn ffi_flag(f: i32) -> vm_prot_t {
    f as vm_prot_t
}

crate::segment::segment!(MachMemory, map);
