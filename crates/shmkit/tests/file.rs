//! File-backed segments: sharing through a regular file, ownership of the file.

mod common;
use common::{unique, Cleanup, Peer};
use shmkit::{ErrorKind, FileSegment};

#[test]
fn peer() {
    let Some((role, args)) = common::peer_role() else {
        return;
    };
    assert_eq!(role, "write");
    let seg = FileSegment::open(&args[0]).unwrap();
    seg.write_at(10, b"peer was here").unwrap();
    seg.flush().unwrap();
    common::say(seg.len().to_string());
}

fn temp() -> (std::path::PathBuf, Cleanup<impl FnMut()>) {
    let p = std::env::temp_dir().join(unique("shmkit-file"));
    let q = p.clone();
    (
        p,
        Cleanup(move || {
            let _ = std::fs::remove_file(&q);
        }),
    )
}

#[test]
fn shared_with_another_process_and_persisted_in_the_file() {
    let (path, _g) = temp();
    let seg = FileSegment::create(&path, 64).unwrap();
    let mut p = Peer::spawn("write", &[path.to_str().unwrap()]);
    assert_eq!(p.recv(), "64");
    p.finish();
    let mut buf = [0u8; 13];
    seg.read_at(10, &mut buf).unwrap();
    assert_eq!(&buf, b"peer was here");
    assert_eq!(&std::fs::read(&path).unwrap()[10..23], b"peer was here");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn ownership_exclusivity_and_size() {
    let (path, _g) = temp();
    let seg = FileSegment::create(&path, 100).unwrap();
    assert_eq!(
        FileSegment::create(&path, 100).unwrap_err().raw_os_error(),
        Some(libc::EEXIST)
    );
    let opener = FileSegment::options().min_size(100).open(&path).unwrap();
    assert_eq!(
        FileSegment::options()
            .min_size(101)
            .open(&path)
            .unwrap_err()
            .kind(),
        ErrorKind::TooSmall
    );
    drop(opener);
    assert!(path.exists());
    seg.set_keep(true);
    drop(seg);
    assert!(path.exists(), "kept");
    let again = FileSegment::options().create_or_open(&path, 50).unwrap();
    assert!(!again.is_owner());
    assert_eq!(again.len(), 100);
    drop(again);
    let (path2, _g2) = temp();
    drop(FileSegment::create(&path2, 10).unwrap());
    assert!(!path2.exists(), "the creator deletes it");
}

#[test]
fn read_only_files_map_read_only() {
    let (path, _g) = temp();
    std::fs::write(&path, b"read me").unwrap();
    let seg = FileSegment::options().read_only(true).open(&path).unwrap();
    assert_eq!(seg.to_vec().unwrap(), b"read me");
    assert_eq!(
        seg.write_at(0, b"x").unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
}
