//! Who removes a named object: its creator, when the owning value is dropped.

use rustix::process::{getpid, Pid};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether this value created the object and should remove it on drop.
///
/// A value copied into a `fork` child is never the owner there: the child's exit must not
/// remove an object that its parent still uses.
#[derive(Debug)]
pub(crate) struct Ownership {
    creator: Option<Pid>,
    keep: AtomicBool,
}

impl Ownership {
    /// For an object this process just created.
    pub(crate) fn created(keep: bool) -> Self {
        Ownership {
            creator: Some(getpid()),
            keep: AtomicBool::new(keep),
        }
    }

    /// For an object this process only opened: never removed on drop.
    pub(crate) fn opened() -> Self {
        Ownership {
            creator: None,
            keep: AtomicBool::new(true),
        }
    }

    /// Whether this value created the object.
    pub(crate) fn is_creator(&self) -> bool {
        self.creator.is_some()
    }

    /// Asks not to remove the object on drop (or to remove it again).
    pub(crate) fn set_keep(&self, keep: bool) {
        self.keep.store(keep, Ordering::Relaxed);
    }

    /// Whether dropping this value in this process removes the object.
    pub(crate) fn removes_on_drop(&self) -> bool {
        self.creator == Some(getpid()) && !self.keep.load(Ordering::Relaxed)
    }

    /// Called after an explicit removal: nothing is left to remove on drop.
    pub(crate) fn removed(&self) {
        self.keep.store(true, Ordering::Relaxed);
    }
}

/// `is_owner` and `set_keep` for a type that holds an [`Ownership`] in `$field`: the same two
/// methods, with the same meaning, on every object that removes itself.
macro_rules! owned {
    ($t:ty, $field:ident, $what:literal) => {
        impl $t {
            #[doc = concat!("Whether this value created the ", $what, " (and so removes it when dropped).")]
            pub fn is_owner(&self) -> bool {
                self.$field.is_creator()
            }

            #[doc = concat!("Keep the ", $what, " after this value is dropped (`true`), or remove it as its creator (`false`). Only a creator ever removes it, and never in a `fork` child.")]
            pub fn set_keep(&self, keep: bool) {
                self.$field.set_keep(keep);
            }
        }
    };
}
pub(crate) use owned;
