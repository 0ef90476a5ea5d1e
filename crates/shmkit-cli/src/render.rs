//! Turning inventory objects into JSON and table cells.

use crate::quote;
use serde_json::{json, Value};
use shmkit::inventory::{Kind, Object, Orphan};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static USERS: RefCell<HashMap<u32, String>> = RefCell::new(HashMap::new());
    static GROUPS: RefCell<HashMap<u32, String>> = RefCell::new(HashMap::new());
}

/// The group name of `gid` (through NSS), or the number.
pub fn group(gid: u32) -> String {
    GROUPS.with(|c| {
        c.borrow_mut()
            .entry(gid)
            .or_insert_with(|| shmkit::users::group_name(gid).unwrap_or_else(|| gid.to_string()))
            .clone()
    })
}

/// A user given on the command line, by name or uid.
pub fn uid_of(user: &str) -> Result<u32, crate::fail::Fail> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok(uid);
    }
    if user.contains('\0') {
        return Err(crate::fail::Fail::usage("a user name has no NUL byte"));
    }
    shmkit::users::uid_by_name(user).ok_or_else(|| {
        crate::fail::Fail::usage(format!(
            "no user '{}' (give a name this machine knows, or a uid)",
            quote::text(user)
        ))
    })
}

/// The user name of `uid` (through NSS, like `ls -l`), or the number.
pub fn user(uid: u32) -> String {
    USERS.with(|c| {
        c.borrow_mut()
            .entry(uid)
            .or_insert_with(|| shmkit::users::user_name(uid).unwrap_or_else(|| uid.to_string()))
            .clone()
    })
}

/// `2026-11-24 07:26` (UTC) from seconds since the epoch.
pub fn time(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// The status words of an object: `dest` (marked for removal), `orphan`, or `unknown` when
/// no holder was seen but some processes could not be inspected.
pub fn status(o: &Object) -> Vec<&'static str> {
    status_of(o, &o.orphan())
}

fn status_of(o: &Object, orphan: &Orphan) -> Vec<&'static str> {
    let mut s = Vec::new();
    if o.marked_for_removal {
        s.push("dest");
    }
    match orphan {
        Orphan::Yes(_) => s.push("orphan"),
        Orphan::Unknown(_) => s.push("unknown"),
        Orphan::No => {}
    }
    s
}

/// The HOLDERS cell: `pid(command)` for each, `none`, or `-` when not looked (`?` is added
/// when some processes could not be inspected).
pub fn holders_cell(o: &Object) -> String {
    let unseen = if o.uninspected > 0 { ",?" } else { "" };
    match &o.holders {
        None => "-".into(),
        Some(h) if h.is_empty() && o.uninspected > 0 => "?".into(),
        Some(h) if h.is_empty() => "none".into(),
        Some(h) => {
            let mut s = h
                .iter()
                .map(|h| format!("{}({})", h.pid, quote::text(&h.command)))
                .collect::<Vec<_>>()
                .join(",");
            s.push_str(unseen);
            s
        }
    }
}

/// The kind as a sentence's words: `posix-shm`, or for a channel `spsc channel in posix-shm`.
pub fn kind_long(o: &Object) -> String {
    match &o.channel {
        Some(c) => format!("{} channel in {}", c.flavor, c.backing),
        None => o.kind.name().to_string(),
    }
}

/// Semaphore values, waiters, messages, memfd name, a channel's flavor: what is special about
/// this object.
pub fn detail(o: &Object) -> String {
    let vals = |v: &Option<Vec<i64>>| {
        v.as_ref().map(|v| {
            let shown: Vec<String> = v.iter().take(8).map(|x| x.to_string()).collect();
            format!(
                "[{}{}]",
                shown.join(","),
                if v.len() > 8 { ",…" } else { "" }
            )
        })
    };
    match o.kind {
        Kind::SysvSem => format!(
            "{} sems {}{}",
            o.nsems.unwrap_or(0),
            vals(&o.values).unwrap_or_else(|| "(values unreadable)".into()),
            o.waiters
                .map(|w| format!(", {w} waiting"))
                .unwrap_or_default()
        ),
        Kind::PosixSem => match (&o.values, o.waiters) {
            (Some(v), Some(w)) => format!("value {}, {w} waiting", v[0]),
            _ => String::new(),
        },
        Kind::SysvMsg => shmkit::size::count(o.messages.unwrap_or(0), "message", "messages"),
        Kind::PosixMq => match (o.messages, o.max_messages) {
            (Some(n), Some(max)) => format!("{n} of {max} messages"),
            (Some(n), None) => shmkit::size::count(n, "message", "messages"),
            _ => String::new(),
        },
        Kind::Channel => o
            .channel
            .as_ref()
            .map(|c| format!("{} in {}", c.flavor, c.backing))
            .unwrap_or_default(),
        Kind::Memfd => {
            let name = o
                .name
                .as_deref()
                .map(|n| format!("name {}", quote::name(std::ffi::OsStr::new(n))))
                .unwrap_or_default();
            match &o.registered {
                Some(r) => format!(
                    "{name}, registered as {}",
                    quote::name(std::ffi::OsStr::new(r))
                ),
                None => name,
            }
        }
        _ => String::new(),
    }
}

/// The JSON form of an object (documented in `shmkit ls --help`).
pub fn object_json(o: &Object) -> Value {
    // Judged once: for System V it asks the kernel whether the creator lives.
    let orphan = o.orphan();
    let mut v = json!({
        "kind": o.kind.name(),
        "object": o.address.to_string(),
        "size": o.size,
        "mode": format!("{:04o}", o.mode),
        "uid": o.uid,
        "owner": user(o.uid),
        "gid": o.gid,
        "ctime": o.ctime,
        "last_use": o.last_use,
        "status": status_of(o, &orphan),
        "orphan": match orphan { Orphan::Yes(_) => "yes", Orphan::No => "no", Orphan::Unknown(_) => "unknown" },
        "orphan_reason": match orphan { Orphan::Yes(r) | Orphan::Unknown(r) => Some(r), Orphan::No => None },
        "uninspected_processes": o.holders.as_ref().map(|_| o.uninspected),
        "holders": o.holders.as_ref().map(|h| h.iter().map(|h| h.pid).collect::<Vec<_>>()),
        "holder_details": o.holders.as_ref().map(|h| h.iter().map(|h| json!({
            "pid": h.pid, "command": h.command, "maps": h.maps, "fds": h.fds,
        })).collect::<Vec<_>>()),
    });
    let m = v.as_object_mut().expect("an object");
    if matches!(o.kind, Kind::SysvShm | Kind::SysvSem | Kind::SysvMsg) {
        m.insert(
            "key".into(),
            json!(format!("{:#010x}", o.key.unwrap_or(0) as u32)),
        );
        m.insert("id".into(), json!(o.id));
        m.insert("creator_uid".into(), json!(o.creator_uid));
        m.insert("creator_gid".into(), json!(o.creator_gid));
        m.insert("creator_pid".into(), json!(o.creator_pid));
        m.insert("last_pid".into(), json!(o.last_pid));
    }
    if let Some(n) = o.address.posix_name() {
        use std::os::unix::ffi::OsStrExt;
        if n.to_str().is_none() {
            // Not UTF-8: "object" is lossy, so the exact bytes come too.
            m.insert("object_bytes".into(), json!(n.as_bytes()));
        }
    }
    match o.kind {
        Kind::SysvShm => {
            m.insert("shmid".into(), json!(o.id));
            m.insert("nattch".into(), json!(o.nattch));
            m.insert("attach_time".into(), json!(o.attach_time));
            m.insert("detach_time".into(), json!(o.detach_time));
        }
        Kind::SysvSem => {
            m.insert("semid".into(), json!(o.id));
            m.insert("nsems".into(), json!(o.nsems));
            m.insert("values".into(), json!(o.values));
            m.insert("waiters".into(), json!(o.waiters));
            m.insert("op_time".into(), json!(o.op_time));
        }
        Kind::SysvMsg => {
            m.insert("msqid".into(), json!(o.id));
            m.insert("messages".into(), json!(o.messages));
            m.insert("receive_pid".into(), json!(o.receive_pid));
            m.insert("send_time".into(), json!(o.send_time));
            m.insert("receive_time".into(), json!(o.receive_time));
        }
        Kind::PosixSem => {
            m.insert("value".into(), json!(o.values.as_ref().map(|v| v[0])));
            m.insert("waiters".into(), json!(o.waiters));
        }
        // A channel keeps the fields of what it lives in, and adds its own.
        Kind::Memfd | Kind::PosixShm | Kind::PosixMq | Kind::Channel => {
            m.insert("name".into(), json!(o.name));
            if o.backing_kind() == Kind::Memfd {
                m.insert("registered_as".into(), json!(o.registered));
            }
            m.insert("inode".into(), json!(o.inode));
            if o.kind == Kind::PosixMq {
                m.insert("messages".into(), json!(o.messages));
                m.insert("max_messages".into(), json!(o.max_messages));
                m.insert("message_size".into(), json!(o.message_size));
            }
            if let Some(c) = &o.channel {
                m.insert(
                    "channel".into(),
                    json!({ "flavor": c.flavor, "backing": c.backing.name() }),
                );
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_civil_dates() {
        assert_eq!(time(0), "1970-01-01 00:00");
        assert_eq!(time(951_782_400), "2000-02-29 00:00");
        assert_eq!(time(1_795_000_000), "2026-11-18 11:06");
    }
}
