//! System V shared memory between unrelated processes with a key from `ftok`: `nattch` while
//! both are attached, and `IPC_RMID` deferred until the last detach.

use super::cleanup;
use super::peer::Peer;
use super::Outcome;
use serde_json::json;
use shmkit::{SysvKey, SysvShm};

pub fn unrelated() -> Vec<Outcome> {
    match run() {
        Ok(v) => v,
        Err(e) => vec![Outcome::error(
            "sysv-ftok",
            "create a System V segment and attach a reader",
            e,
        )],
    }
}

fn run() -> Result<Vec<Outcome>, String> {
    // ftok needs a file that exists: this very program, which leaves nothing on disk. Another
    // tour running at once gets the same key for the same project id, so on EEXIST the next
    // id is tried (creation is exclusive: nobody else's segment is ever opened).
    let anchor = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut made = None;
    for proj in (b'S'..=u8::MAX).chain(1..b'S') {
        let key = SysvKey::ftok(&anchor, proj).map_err(|e| e.to_string())?;
        let SysvKey::Key(raw) = key else {
            unreachable!("ftok gives a key")
        };
        match cleanup::sysv_key(raw, || SysvShm::create(key, 4096)) {
            Ok(seg) => {
                made = Some((proj, key, raw, seg));
                break;
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    let (proj, key, raw, seg) =
        made.ok_or("every ftok project id of this program's key is taken")?;
    let message = format!("hello from writer pid {}", std::process::id());
    let id = seg.id();
    seg.write_at(0, format!("{message}\0").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut peer = Peer::spawn("sysv-attach", &[format!("{:#010x}", raw as u32)])?;
    let pid = peer.pid();
    let first = peer.recv()?;
    cleanup::pause_point("sysv");
    let both = seg.stat().map_err(|e| e.to_string())?;

    let exchange_ok = first["text"] == message.as_str() && first["shmid"] == id && both.nattch == 2;
    let exchange = Outcome::new(
        "sysv-ftok",
        format!(
            "ftok({}, {}) = {key}; shmget → shmid {id}; wrote {message:?}",
            anchor.file_name().unwrap_or_default().to_string_lossy(),
            if proj.is_ascii_graphic() {
                format!("'{}'", proj as char)
            } else {
                proj.to_string()
            }
        ),
        format!(
            "pid {pid} opened {key}: shmid {}, read {:?}; nattch {} with both attached",
            first["shmid"],
            first["text"].as_str().unwrap_or("?"),
            both.nattch
        ),
        format!("shmid {id}, the same text, nattch 2"),
        exchange_ok,
        json!({ "key": format!("{:#010x}", raw as u32), "shmid": id, "reader_pid": pid, "nattch_both": both.nattch, "reader": first }),
    );

    // Deferred removal: mark it while the peer is attached.
    seg.remove().map_err(|e| e.to_string())?;
    let marked = seg.stat().map_err(|e| e.to_string())?;
    let reopen = SysvShm::open(key).err().and_then(|e| e.raw_os_error());
    peer.send("write")?;
    peer.recv()?;
    let mut reply = [0u8; 64];
    seg.read_at(1024, &mut reply).map_err(|e| e.to_string())?;
    let reply = super::peer::text(&reply);
    drop(seg); // the writer detaches
    let after_writer = shmkit::sysv::shm::stat_id(id);
    peer.send("detach")?;
    peer.recv()?;
    let ok_exit = peer.finish();
    let after_last = shmkit::sysv::shm::stat_id(id)
        .err()
        .and_then(|e| e.raw_os_error());

    let nattch_after_writer = after_writer.as_ref().map(|s| s.nattch).ok();
    let removal_ok = marked.marked_for_removal
        && marked.key == 0
        && marked.nattch == 2
        && reopen == Some(libc::ENOENT)
        && reply == "written by the reader after IPC_RMID"
        && nattch_after_writer == Some(1)
        && matches!(after_last, Some(libc::EINVAL) | Some(libc::EIDRM))
        && ok_exit;
    let removal = Outcome::new(
        "sysv-deferred-rmid",
        format!("IPC_RMID on shmid {id} while pid {pid} is attached, then detached"),
        format!(
            "marked (dest={}, key {:#x}, nattch {}); open by key: {}; reader's later write seen: {:?}; \
             after writer detached: {}; after last detach: {}",
            marked.marked_for_removal,
            marked.key,
            marked.nattch,
            reopen.map_or("succeeded".into(), |e| std::io::Error::from_raw_os_error(e).to_string()),
            reply,
            match &after_writer { Ok(s) => format!("exists, nattch {}", s.nattch), Err(e) => e.to_string() },
            after_last.map_or("still exists".into(), |e| format!("gone ({})", std::io::Error::from_raw_os_error(e))),
        ),
        "marked with key 0, nattch 2, key no longer opens, still shared, exists with nattch 1, gone after the last detach".into(),
        removal_ok,
        json!({
            "shmid": id,
            "marked_for_removal": marked.marked_for_removal,
            "key_after_rmid": marked.key,
            "nattch_after_rmid": marked.nattch,
            "open_by_key_errno": reopen,
            "reader_write_seen": reply,
            "nattch_after_writer_detach": nattch_after_writer,
            "stat_after_last_detach_errno": after_last,
        }),
    );
    Ok(vec![exchange, removal])
}
