//! What one process gives another on macOS: a send right with a typed description, the
//! Mach counterpart of Linux's fd-based handle. On macOS it is [`crate::handle::Handle`], so
//! that [`crate::registry`] has one API on both systems. Each handle travels as one port
//! descriptor plus a 12-byte record (kind, access, size) in the message's payload.

use super::{MachMemory, MachSemaphore, MemoryEntry, SendRight};
use crate::error::{Error, ErrorKind, Result};
use crate::handle::{Access, Kind};

/// A Mach object passed between processes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Handle {
    /// A memory entry, with the size and access it claims (the kernel enforces both when it
    /// is mapped).
    Memory(MemoryEntry),
    /// A semaphore.
    Semaphore(MachSemaphore),
    /// Any other send right (a port of the sender's to talk back to, say).
    Port(SendRight),
}

const MAGIC: u32 = u32::from_le_bytes(*b"SHMH");
const RECORD: usize = 12;
const KIND_MEMORY: u8 = 1;
const KIND_SEMAPHORE: u8 = 2;
const KIND_PORT: u8 = 3;

impl Handle {
    /// A handle to `mem` that the receiver may map read-write (a copy of its entry's right),
    /// the counterpart of Linux's [`Handle::memfd`](crate::handle).
    ///
    /// # Errors
    /// In a fork child of the process that made `mem`; the Mach error of
    /// `mach_port_mod_refs`.
    pub fn memory(mem: &MachMemory) -> Result<Handle> {
        Ok(Handle::Memory(mem.entry().try_clone()?))
    }

    /// A handle to `mem` that can only ever be mapped read-only, whatever the receiver asks
    /// ([`MachMemory::read_only_entry`]), while this process keeps writing through its own
    /// mapping: the counterpart of Linux's `Handle::memfd_read_only`.
    ///
    /// # Errors
    /// As [`MachMemory::read_only_entry`].
    pub fn memory_read_only(mem: &MachMemory) -> Result<Handle> {
        Ok(Handle::Memory(mem.read_only_entry()?))
    }

    /// A handle to the semaphore `sem` (the receiver can signal and wait on it).
    ///
    /// # Errors
    /// As [`SendRight::try_clone`].
    pub fn semaphore(sem: &MachSemaphore) -> Result<Handle> {
        Ok(Handle::Semaphore(MachSemaphore::from_send_right(
            sem.send_right().try_clone()?,
        )))
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Handle::Memory(_) => Kind::MachMemory,
            Handle::Semaphore(_) => Kind::MachSemaphore,
            Handle::Port(_) => Kind::MachPort,
        }
    }

    /// The size of the memory entry in bytes, as it claims (0 for the other kinds). Mapping
    /// checks the claim against the kernel.
    pub fn size(&self) -> u64 {
        match self {
            Handle::Memory(m) => m.len() as u64,
            _ => 0,
        }
    }

    /// Whether a memory entry may be mapped writable (the other kinds are `ReadWrite`).
    pub fn access(&self) -> Access {
        match self {
            Handle::Memory(m) if !m.is_writable() => Access::ReadOnly,
            _ => Access::ReadWrite,
        }
    }

    /// Another handle to the same object (a new send-right reference).
    ///
    /// # Errors
    /// As [`SendRight::try_clone`].
    pub fn try_clone(&self) -> Result<Handle> {
        Ok(match self {
            Handle::Memory(m) => Handle::Memory(m.try_clone()?),
            Handle::Semaphore(s) => {
                Handle::Semaphore(MachSemaphore::from_send_right(s.send_right().try_clone()?))
            }
            Handle::Port(p) => Handle::Port(p.try_clone()?),
        })
    }

    /// The send right it carries.
    pub fn send_right(&self) -> &SendRight {
        match self {
            Handle::Memory(m) => m.send_right(),
            Handle::Semaphore(s) => s.send_right(),
            Handle::Port(p) => p,
        }
    }

    /// The memory entry, or a [`ErrorKind::BadLayout`] error naming what it is instead.
    ///
    /// # Errors
    /// When the handle is no memory entry.
    pub fn into_memory(self) -> Result<MemoryEntry> {
        match self {
            Handle::Memory(m) => Ok(m),
            other => Err(other.mismatch("a memory entry")),
        }
    }

    /// The semaphore, or a [`ErrorKind::BadLayout`] error naming what it is instead.
    ///
    /// # Errors
    /// When the handle is no semaphore.
    pub fn into_semaphore(self) -> Result<MachSemaphore> {
        match self {
            Handle::Semaphore(s) => Ok(s),
            other => Err(other.mismatch("a semaphore")),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Handle::Memory(_) => "a memory entry",
            Handle::Semaphore(_) => "a semaphore",
            Handle::Port(_) => "a port",
        }
    }

    /// The memory entry, mapped as its access allows: the counterpart of Linux's
    /// `Handle::into_memfd`.
    ///
    /// # Errors
    /// When the handle is no memory entry; as [`MemoryEntry::map`].
    pub fn into_mapped(self) -> Result<MachMemory> {
        self.into_memory()?.map()
    }

    fn mismatch(&self, wanted: &str) -> Error {
        Error::new(
            ErrorKind::BadLayout,
            "mach handle",
            self.what(),
            format!("expected {wanted}, got {}", self.what()),
        )
    }
}

/// The payload that describes `handles`, followed by the caller's own bytes.
pub(crate) fn encode(handles: &[Handle], user: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + handles.len() * RECORD + user.len());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(handles.len() as u32).to_le_bytes());
    for h in handles {
        let (kind, writable, len) = match h {
            Handle::Memory(m) => (KIND_MEMORY, m.is_writable(), m.len() as u64),
            Handle::Semaphore(_) => (KIND_SEMAPHORE, false, 0),
            Handle::Port(_) => (KIND_PORT, false, 0),
        };
        out.extend_from_slice(&[kind, u8::from(writable), 0, 0]);
        out.extend_from_slice(&len.to_le_bytes());
    }
    out.extend_from_slice(user);
    out
}

fn bad(what: String) -> Error {
    Error::new(
        ErrorKind::BadLayout,
        "mach handle",
        "a received message",
        what,
    )
}

/// The handles described in `payload` over the `rights` that came with it, and the caller's
/// own bytes. Refuses a description that does not match the rights one for one; the rights
/// are released then (they are dropped with the error).
pub(crate) fn decode(rights: Vec<SendRight>, payload: &[u8]) -> Result<(Vec<Handle>, Vec<u8>)> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            payload.get(at..at + 4)?.try_into().ok()?,
        ))
    };
    if word(0) != Some(MAGIC) {
        return Err(bad("no handle description".into()));
    }
    let count = word(4).unwrap_or(u32::MAX) as usize;
    if count != rights.len() {
        return Err(bad(format!(
            "{count} handles described, {} rights received",
            rights.len()
        )));
    }
    let end = 8 + count * RECORD;
    if payload.len() < end {
        return Err(bad(format!("a description of {} bytes", payload.len())));
    }
    let mut handles = Vec::with_capacity(count);
    for (i, right) in rights.into_iter().enumerate() {
        let r = &payload[8 + i * RECORD..8 + (i + 1) * RECORD];
        let len = u64::from_le_bytes(r[4..12].try_into().expect("8 bytes"));
        handles.push(match (r[0], r[1]) {
            (KIND_MEMORY, w @ (0 | 1)) => {
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l > 0 && l <= isize::MAX as usize)
                    .ok_or_else(|| bad(format!("a memory entry of {len} bytes")))?;
                Handle::Memory(MemoryEntry::from_send_right(right, len, w == 1))
            }
            (KIND_SEMAPHORE, 0) => Handle::Semaphore(MachSemaphore::from_send_right(right)),
            (KIND_PORT, 0) => Handle::Port(right),
            (k, w) => return Err(bad(format!("handle kind {k} with access {w}"))),
        });
    }
    Ok((handles, payload[end..].to_vec()))
}
