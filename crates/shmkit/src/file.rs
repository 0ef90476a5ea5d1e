//! File-backed shared memory: a regular file mapped `MAP_SHARED`, whose contents outlive the
//! processes and survive a reboot.

use crate::error::{Error, ErrorKind, Result};
use crate::fd_map::{self, ObjectStat};
use crate::ownership::Ownership;
use crate::Mapping;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A regular file, mapped shared.
///
/// The creator deletes the file when this value is dropped unless asked to keep it (for
/// sharing that should survive, call [`FileSegment::set_keep`] or use
/// [`FileOptions::keep`]); an opener never deletes it.
///
/// ```
/// use shmkit::FileSegment;
/// let path = std::env::temp_dir().join(format!("shmkit-doc-{}", std::process::id()));
/// let a = FileSegment::create(&path, 100)?;
/// a.write_at(0, b"persisted")?;
/// a.flush()?;
/// assert_eq!(&std::fs::read(&path).unwrap()[..9], b"persisted");
/// drop(a);
/// assert!(!path.exists());
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Debug)]
pub struct FileSegment {
    map: Mapping,
    file: File,
    path: PathBuf,
    own: Ownership,
}

/// How to create or open a [`FileSegment`]. Defaults: mode 0600, read-write, deleted on drop
/// by its creator, any size accepted on open.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    common: crate::options::Common,
}

impl FileOptions {
    crate::options::common_setters!("file", "`O_RDONLY`, `PROT_READ`");

    /// Creates a new file of `size` bytes (fails if it exists) and maps it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for size 0, [`ErrorKind::AlreadyExists`] if the file exists,
    /// [`ErrorKind::NotFound`] or [`ErrorKind::PermissionDenied`] from `open`, or the OS error of
    /// `fchmod`, `ftruncate` or `mmap` (after which the file is deleted again).
    pub fn create(&self, path: impl AsRef<Path>, size: usize) -> Result<FileSegment> {
        let path = path.as_ref();
        let object = path.display().to_string();
        if size == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "open",
                object,
                "size must be at least 1 byte",
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(self.common.mode)
            .open(path)
            .map_err(|e| io_error("open", &object, e))?;
        let made = (|| {
            file.set_permissions(std::fs::Permissions::from_mode(self.common.mode))
                .map_err(|e| io_error("fchmod", &object, e))?;
            file.set_len(size as u64)
                .map_err(|e| io_error("ftruncate", &object, e))?;
            fd_map::map_fd(&file, size, !self.common.read_only, true, &object)
        })();
        match made {
            Ok(map) => Ok(FileSegment {
                map,
                file,
                path: path.to_path_buf(),
                own: Ownership::created(self.common.keep),
            }),
            Err(e) => {
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Opens an existing file and maps all of it.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] or [`ErrorKind::PermissionDenied`] from `open`,
    /// [`ErrorKind::TooSmall`] if the file is empty or smaller than [`min_size`](Self::min_size),
    /// or the OS error of `open`, `fstat` or `mmap`.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<FileSegment> {
        let path = path.as_ref();
        let object = path.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(!self.common.read_only)
            .open(path)
            .map_err(|e| io_error("open", &object, e))?;
        let st = fd_map::object_stat(&file, &object)?;
        let len = fd_map::usable_size(st.size, self.common.min_size, "open", &object)?;
        let map = fd_map::map_fd(&file, len, !self.common.read_only, true, &object)?;
        Ok(FileSegment {
            map,
            file,
            path: path.to_path_buf(),
            own: Ownership::opened(),
        })
    }

    /// Creates the file, or opens it if it exists (then it must have at least `size` bytes).
    ///
    /// # Errors
    /// As [`create`](Self::create) and [`open`](Self::open); an existing file smaller than `size`
    /// is [`ErrorKind::TooSmall`].
    pub fn create_or_open(&self, path: impl AsRef<Path>, size: usize) -> Result<FileSegment> {
        let path = path.as_ref();
        match self.create(path, size) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let mut open = self.clone();
                open.common.min_size = open.common.min_size.max(size);
                open.open(path)
            }
            r => r,
        }
    }
}

impl FileSegment {
    /// Options for creating or opening.
    pub fn options() -> FileOptions {
        FileOptions::default()
    }
    /// Creates a new file of `size` bytes, mode 0600, and maps it.
    ///
    /// # Errors
    /// As [`FileOptions::create`].
    pub fn create(path: impl AsRef<Path>, size: usize) -> Result<FileSegment> {
        FileOptions::default().create(path, size)
    }
    /// Opens an existing file read-write and maps all of it.
    ///
    /// # Errors
    /// As [`FileOptions::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<FileSegment> {
        FileOptions::default().open(path)
    }
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// `fstat(2)`: the file's size, blocks, mode and owner now.
    ///
    /// # Errors
    /// The OS error of `fstat`.
    #[doc(alias = "fstat")]
    pub fn stat(&self) -> Result<ObjectStat> {
        fd_map::object_stat(&self.file, self.map.object())
    }
}

crate::segment::segment!(FileSegment, map);

impl Drop for FileSegment {
    fn drop(&mut self) {
        if self.own.removes_on_drop() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn io_error(op: &'static str, object: &str, e: std::io::Error) -> Error {
    let err = Error::io(op, object, &e);
    if err.raw_os_error() == Some(libc::EEXIST) {
        err.with_hint("open it instead, or remove the file")
    } else {
        err
    }
}

crate::ownership::owned!(FileSegment, own, "file");
