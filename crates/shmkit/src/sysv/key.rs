//! The key that names a System V object: `IPC_PRIVATE`, a number, or `ftok(3)` of a file.

use crate::error::{Error, ErrorKind, Result};
use crate::platform::errno as last_errno;
use std::ffi::CString;
use std::path::Path;

/// The key that names a System V object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SysvKey {
    /// `IPC_PRIVATE`: always a new object, reachable only through its id.
    Private,
    /// A key chosen by the caller (or computed by [`SysvKey::ftok`]).
    Key(i32),
}

impl SysvKey {
    /// `ftok(3)`: a key from an existing file's inode and device and a project id (1 to 255).
    ///
    /// ```
    /// let k = shmkit::SysvKey::ftok("/", 1)?;
    /// assert_eq!(k, shmkit::SysvKey::ftok("/", 1)?);
    /// assert_ne!(k, shmkit::SysvKey::ftok("/", 2)?);
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for project id 0 or a path with a NUL byte; the OS error of
    /// `ftok` for a file it cannot `stat` (`ENOENT`: [`ErrorKind::NotFound`]).
    pub fn ftok(path: impl AsRef<Path>, proj_id: u8) -> Result<SysvKey> {
        let path = path.as_ref();
        let shown = format!("{}:{proj_id}", path.display());
        if proj_id == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "ftok",
                shown,
                "the project id must be 1 to 255 (ftok uses its low 8 bits, and 0 is reserved)",
            ));
        }
        use std::os::unix::ffi::OsStrExt;
        let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidArgument,
                "ftok",
                &shown,
                "the path contains a NUL byte",
            )
        })?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        let key = unsafe { libc::ftok(c.as_ptr(), proj_id as libc::c_int) };
        if key == -1 {
            return Err(Error::os("ftok", shown, last_errno())
                .with_hint("ftok needs an existing file that this process can stat"));
        }
        Ok(SysvKey::Key(key))
    }

    pub(crate) fn raw(self) -> libc::key_t {
        match self {
            SysvKey::Private => libc::IPC_PRIVATE,
            SysvKey::Key(k) => k,
        }
    }
}

impl std::fmt::Display for SysvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SysvKey::Private => f.write_str("key IPC_PRIVATE"),
            SysvKey::Key(k) => write!(f, "key {:#010x}", *k as u32),
        }
    }
}
