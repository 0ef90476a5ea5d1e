//! What a `fork` child gets of a mapping: the `vm_inherit` table of Mach, made portable.

/// What a child created by `fork()` gets of a mapping.
///
/// | mode    | child sees before fork | later writes       | Linux                          |
/// |---------|------------------------|--------------------|--------------------------------|
/// | `Share` | parent's bytes         | seen both ways     | `MADV_DOFORK` (the default)    |
/// | `Copy`  | parent's bytes         | private to each    | snapshot made at fork          |
/// | `None`  | nothing is mapped      | —                  | `MADV_DONTFORK`                |
/// | `Zero`  | zeroes                 | private to each    | fresh zero pages at fork       |
///
/// `Share` is the default for every shmkit segment, since sharing is why it exists.
///
/// Linux offers `MADV_WIPEONFORK` only for private anonymous memory and no copy-on-fork for
/// shared memory at all, so for shmkit's shared mappings `Copy` and `Zero` are made by a
/// `pthread_atfork` handler: the mapping is `MADV_DONTFORK`, and in the child, before any code
/// of the caller runs, a private snapshot (`Copy`, taken in the parent just before the fork)
/// or fresh zero pages (`Zero`) are put at the same address. Only `fork()` runs these
/// handlers: `vfork`, `posix_spawn` and raw `clone` calls do not, which is harmless because
/// they replace the child's memory with a new program anyway.
///
/// ```
/// use shmkit::{AnonShared, Inherit};
/// let seg = AnonShared::new(4096)?;
/// seg.set_inherit(Inherit::None)?;
/// assert_eq!(seg.inherit(), Inherit::None);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Inherit {
    /// Parent and child map the same memory and see each other's writes.
    Share,
    /// The child gets a copy of the memory as it was at the fork.
    Copy,
    /// The child does not have the mapping at all.
    None,
    /// The child has the mapping, filled with zeroes.
    Zero,
}

impl Inherit {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Inherit::Share => 0,
            Inherit::Copy => 1,
            Inherit::None => 2,
            Inherit::Zero => 3,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Inherit::Copy,
            2 => Inherit::None,
            3 => Inherit::Zero,
            _ => Inherit::Share,
        }
    }

    /// The lowercase name (`"share"`, `"copy"`, `"none"`, `"zero"`).
    pub fn name(self) -> &'static str {
        match self {
            Inherit::Share => "share",
            Inherit::Copy => "copy",
            Inherit::None => "none",
            Inherit::Zero => "zero",
        }
    }
}

impl std::fmt::Display for Inherit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
