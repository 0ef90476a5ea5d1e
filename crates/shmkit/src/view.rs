//! A typed, volatile window onto a value in shared memory.

use crate::error::Result;
use crate::Mapping;
use std::marker::PhantomData;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A `T` inside a [`Mapping`], read and written whole with volatile operations.
///
/// A view is not a reference: each [`View::load`] reads the bytes anew, because another
/// process may have changed them. `T` is valid for every bit pattern, so whatever a peer
/// stored is a valid `T`; loads of types wider than the machine word may be torn by a racing
/// writer, so protect multi-word values with a lock or a sequence counter.
pub struct View<'a, T> {
    map: &'a Mapping,
    ptr: *mut T,
    _t: PhantomData<T>,
}

impl<'a, T: FromBytes + IntoBytes + Immutable> View<'a, T> {
    /// # Safety
    /// `ptr` is aligned for `T` and `[ptr, ptr + size_of::<T>())` lies inside `map`.
    pub(crate) unsafe fn new(map: &'a Mapping, ptr: *mut T) -> Self {
        View {
            map,
            ptr,
            _t: PhantomData,
        }
    }

    /// Reads the current value.
    pub fn load(&self) -> Result<T> {
        // SAFETY: aligned and in bounds (see `new`); every bit pattern is a valid T.
        let v = unsafe { self.ptr.read_volatile() };
        self.map.check_truncated_for("view load")?;
        Ok(v)
    }

    /// Stores a value; refused on a read-only mapping.
    pub fn store(&self, value: T) -> Result<()> {
        self.map.check_writable_for("view store")?;
        // SAFETY: aligned, in bounds (see `new`) and writable (checked); T has no padding, so
        // no uninitialized byte reaches the peer.
        unsafe { self.ptr.write_volatile(value) };
        self.map.check_truncated_for("view store")
    }

    /// The raw pointer to the value, for `unsafe` code with its own synchronization.
    pub fn as_ptr(&self) -> *mut T {
        self.ptr
    }
}
