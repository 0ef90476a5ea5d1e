//! A typed, volatile window onto a value in shared memory.

use crate::error::Result;
use crate::platform::copy;
use crate::Mapping;
use std::marker::PhantomData;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A `T` inside a [`Mapping`], read and written whole by byte-wise atomic copies.
///
/// A view is not a reference: each [`View::load`] reads the bytes anew, because another
/// process may have changed them. `T` is valid for every bit pattern, so whatever a peer
/// stored is a valid `T`; a load may be torn by a racing writer (each machine word is read
/// atomically, the whole value is not), so protect multi-word values with a lock or a
/// sequence counter.
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
    ///
    /// # Errors
    /// As [`Mapping::check`], checked before and after the copy.
    pub fn load(&self) -> Result<T> {
        let mut v = std::mem::MaybeUninit::<T>::uninit();
        // SAFETY: in bounds (see `new`) and mapped here (checked by `touch`); `v` is private.
        // The copy is byte-wise atomic, so a racing writer is no data race (see `copy.rs`).
        self.map.touch("view load", || unsafe {
            copy::load(
                self.ptr.cast(),
                v.as_mut_ptr().cast(),
                std::mem::size_of::<T>(),
            )
        })?;
        // SAFETY: every byte was written, and every bit pattern is a valid T (FromBytes).
        Ok(unsafe { v.assume_init() })
    }

    /// Stores a value; refused on a read-only mapping.
    ///
    /// # Errors
    /// [`ErrorKind::ReadOnly`](crate::ErrorKind::ReadOnly) on a read-only mapping; otherwise as
    /// [`load`](Self::load).
    pub fn store(&self, value: T) -> Result<()> {
        self.map.check_writable_for("view store")?;
        // SAFETY: in bounds (see `new`), mapped here (checked by `touch`) and writable
        // (checked); T has no padding (IntoBytes), so no uninitialized byte reaches the peer;
        // the copy is byte-wise atomic.
        self.map.touch("view store", || unsafe {
            copy::store(
                (&value as *const T).cast(),
                self.ptr.cast(),
                std::mem::size_of::<T>(),
            )
        })
    }

    /// The raw pointer to the value, for `unsafe` code with its own synchronization.
    pub fn as_ptr(&self) -> *mut T {
        self.ptr
    }
}
