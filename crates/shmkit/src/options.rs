//! What every segment's options share: the mode of a created object, read-only access,
//! keeping the object after drop, and the smallest size an opener accepts.

/// The options common to every named segment. Defaults: mode 0600, read-write, removed on
/// drop by its creator, any size accepted on open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Common {
    pub mode: u32,
    pub read_only: bool,
    pub keep: bool,
    pub min_size: usize,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            mode: 0o600,
            read_only: false,
            keep: false,
            min_size: 0,
        }
    }
}

/// The options of the OS's semaphores and queues: the mode of a created object, and keeping
/// it after drop. Defaults: mode 0600, removed on drop by its creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipc {
    pub mode: u32,
    pub keep: bool,
}

impl Default for Ipc {
    fn default() -> Self {
        Ipc {
            mode: 0o600,
            keep: false,
        }
    }
}

/// `mode` and `keep`, for an options type whose field `common` is an [`Ipc`] or a [`Common`].
macro_rules! ipc_setters {
    ($what:literal) => {
        #[doc = concat!("Permission bits of a created ", $what, " (default 0600).")]
        pub fn mode(&mut self, mode: u32) -> &mut Self {
            self.common.mode = mode;
            self
        }

        #[doc = concat!("Keep a created ", $what, " when the value is dropped (default: its creator removes it).")]
        pub fn keep(&mut self, yes: bool) -> &mut Self {
            self.common.keep = yes;
            self
        }
    };
}
pub(crate) use ipc_setters;

/// The four setters of [`Common`] for an options type that holds it in a field `common`.
macro_rules! common_setters {
    ($what:literal, $ro:literal) => {
        crate::options::ipc_setters!($what);

        #[doc = concat!("Open read-only (", $ro, "); writes are refused.")]
        pub fn read_only(&mut self, yes: bool) -> &mut Self {
            self.common.read_only = yes;
            self
        }

        #[doc = concat!("Refuse to open a ", $what, " smaller than this.")]
        pub fn min_size(&mut self, bytes: usize) -> &mut Self {
            self.common.min_size = bytes;
            self
        }
    };
}
pub(crate) use common_setters;
