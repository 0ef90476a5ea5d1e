//! macOS: the list of names this user's registry clients registered, so that
//! [`Client::list`](super::Client::list) can say what is registered. The bootstrap server
//! finds a name it is given but lists none, so each registration leaves a marker file
//! (its [`Info`], encoded) in a directory of this user's, and removes it when the name goes.
//! A client killed before it removes its marker leaves a stale one: a marker counts only
//! while bootstrap still finds its name, and one whose process is gone is removed by the
//! next listing.
//!
//! The directory is `shmkit-registry` in the user's temporary directory
//! (`confstr(_CS_DARWIN_USER_TEMP_DIR)`, mode 0700 under `/var/folders`), made 0700 and
//! refused if another user owns it or others may write it.

use super::codec::{In, Out};
use super::entry::Info;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest marker read back (an `Info` of 16 handles and a 255-byte name is < 600 bytes).
const MAX_MARKER: u64 = 64 << 10;
const SUFFIX: &str = ".entry";

/// The directory of markers.
#[derive(Debug)]
pub(crate) struct Index {
    dir: PathBuf,
}

/// One registration's marker: removed when dropped (not in a fork child, whose parent's
/// name it is).
#[derive(Debug)]
pub(crate) struct Marker {
    path: PathBuf,
    generation: u32,
}

impl Drop for Marker {
    fn drop(&mut self) {
        if crate::platform::generation() == self.generation {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A marker read back: the `Info` its registrant wrote, where it is, and the pid its file
/// name gives (`None`: a name this module does not make).
pub(crate) struct Found {
    pub info: Info,
    pub path: PathBuf,
    writer: Option<i32>,
}

/// This user's temporary directory (`confstr(_CS_DARWIN_USER_TEMP_DIR)`), or `/tmp/shmkit-UID`
/// where it cannot be had.
fn user_temp_dir() -> PathBuf {
    let mut buf = vec![0u8; 1024];
    // SAFETY: `buf` has `buf.len()` writable bytes; confstr writes at most that, NUL included.
    let n = unsafe {
        libc::confstr(
            libc::_CS_DARWIN_USER_TEMP_DIR,
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n > 1 && n <= buf.len() {
        buf.truncate(n - 1);
        let p =
            PathBuf::from(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(buf));
        if p.is_absolute() {
            return p;
        }
    }
    PathBuf::from(format!(
        "/tmp/shmkit-{}",
        rustix::process::geteuid().as_raw()
    ))
}

impl Index {
    /// The index of this user, its directory made if missing.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] for a directory another user owns or others may
    /// write; the OS error of `mkdir`.
    pub(crate) fn open() -> Result<Index> {
        // Checked too when it exists: whoever else could write it could swap the markers'
        // directory after the check below.
        let base = user_temp_dir();
        super::prepare_dir(&base, super::DirUse::Markers)?;
        let dir = base.join("shmkit-registry");
        super::prepare_dir(&dir, super::DirUse::Markers)?;
        Ok(Index { dir })
    }

    /// Leaves a marker of `info` (written whole to a temporary file, then renamed, so that a
    /// listing never reads half of one).
    ///
    /// # Errors
    /// The OS error of writing or renaming the file.
    pub(crate) fn add(&self, info: &Info) -> Result<Marker> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let stem = format!("{}.{n}", std::process::id());
        let path = self.dir.join(format!("{stem}{SUFFIX}"));
        let tmp = self.dir.join(format!(".{stem}.tmp"));
        let mut o = Out(Vec::new());
        o.info(info);
        let shown = path.display().to_string();
        write_new(&tmp, &o.0).map_err(|e| Error::io("write", &shown, &e))?;
        if let Err(e) = std::fs::rename(&tmp, &path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io("rename", &shown, &e));
        }
        Ok(Marker {
            path,
            generation: crate::platform::generation(),
        })
    }

    /// Every marker that reads as one. Unreadable or garbled files are skipped, and removed
    /// when the process that wrote them (the pid in their file name) is gone.
    ///
    /// # Errors
    /// The OS error of reading the directory.
    pub(crate) fn read(&self) -> Result<Vec<Found>> {
        let shown = self.dir.display().to_string();
        let mut out = Vec::new();
        for ent in std::fs::read_dir(&self.dir).map_err(|e| Error::io("readdir", &shown, &e))? {
            let Ok(ent) = ent else { continue };
            let file = ent.file_name();
            let Some(file) = file.to_str() else { continue };
            if let Some(stem) = file.strip_prefix('.').and_then(|f| f.strip_suffix(".tmp")) {
                // A marker half made by a writer killed before its rename.
                if gone(writer(stem)) {
                    let _ = std::fs::remove_file(ent.path());
                }
                continue;
            }
            let Some(stem) = file.strip_suffix(SUFFIX) else {
                continue;
            };
            let path = ent.path();
            let writer = writer(stem);
            match read_marker(&path) {
                Some(info) => out.push(Found { info, path, writer }),
                None => {
                    if gone(writer) {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Removes a stale marker: one whose name bootstrap no longer finds and whose writer
    /// (named in its file name, and in it) is gone. A live writer's marker stays: its name
    /// may be on its way in.
    pub(crate) fn remove_stale(&self, found: &Found) {
        if gone(found.writer) && !crate::platform::process_alive(found.info.pid) {
            let _ = std::fs::remove_file(&found.path);
        }
    }
}

/// The pid that begins a marker's stem (`PID.N`), if it is one.
fn writer(stem: &str) -> Option<i32> {
    stem.split('.')
        .next()
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|&pid| pid > 0)
}

/// Whether a marker's writer is gone. A name this module does not make (no writer) is not
/// ours to remove.
fn gone(writer: Option<i32>) -> bool {
    writer.is_some_and(|pid| !crate::platform::process_alive(pid))
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    f.write_all(bytes)
}

fn read_marker(path: &Path) -> Option<Info> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(MAX_MARKER).read_to_end(&mut bytes).ok()?;
    let mut i = In(&bytes);
    let info = i.info().ok()?;
    i.end().ok()?;
    super::entry::check_name(&info.name).ok()?;
    Some(info)
}
