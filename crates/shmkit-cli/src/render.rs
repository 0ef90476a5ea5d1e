//! Turning inventory objects into JSON and table cells.

use serde_json::{json, Value};
use shmkit::inventory::{Kind, Object};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static USERS: RefCell<HashMap<u32, String>> = RefCell::new(HashMap::new());
}

/// The user name of `uid` (through NSS, like `ls -l`), or the number.
pub fn user(uid: u32) -> String {
    USERS.with(|c| {
        c.borrow_mut()
            .entry(uid)
            .or_insert_with(|| {
                let mut buf = vec![0 as libc::c_char; 4096];
                // SAFETY: plain data, filled by getpwuid_r.
                let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
                let mut out = std::ptr::null_mut();
                // SAFETY: all pointers are valid for the call; `buf` outlives the use of `pw`.
                let r = unsafe {
                    libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out)
                };
                if r == 0 && !out.is_null() {
                    // SAFETY: pw_name points into `buf`, NUL-terminated.
                    unsafe { std::ffi::CStr::from_ptr(pw.pw_name) }
                        .to_string_lossy()
                        .into_owned()
                } else {
                    uid.to_string()
                }
            })
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

/// The status words of an object: `dest` (marked for removal), `orphan`.
pub fn status(o: &Object) -> Vec<&'static str> {
    let mut s = Vec::new();
    if o.marked_for_removal {
        s.push("dest");
    }
    if o.orphan_reason().is_some() {
        s.push("orphan");
    }
    s
}

/// Semaphore values, waiters, messages, memfd name: what is special about this object.
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
        Kind::SysvMsg => format!("{} messages", o.messages.unwrap_or(0)),
        Kind::Memfd => o
            .name
            .clone()
            .map(|n| format!("name {n:?}"))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The JSON form of an object (documented in `shmkit ls --help`).
pub fn object_json(o: &Object) -> Value {
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
        "status": status(o),
        "orphan_reason": o.orphan_reason(),
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
        m.insert("creator_pid".into(), json!(o.creator_pid));
        m.insert("last_pid".into(), json!(o.last_pid));
    }
    match o.kind {
        Kind::SysvShm => {
            m.insert("shmid".into(), json!(o.id));
            m.insert("nattch".into(), json!(o.nattch));
        }
        Kind::SysvSem => {
            m.insert("semid".into(), json!(o.id));
            m.insert("nsems".into(), json!(o.nsems));
            m.insert("values".into(), json!(o.values));
            m.insert("waiters".into(), json!(o.waiters));
        }
        Kind::SysvMsg => {
            m.insert("msqid".into(), json!(o.id));
            m.insert("messages".into(), json!(o.messages));
        }
        Kind::PosixSem => {
            m.insert("value".into(), json!(o.values.as_ref().map(|v| v[0])));
            m.insert("waiters".into(), json!(o.waiters));
        }
        Kind::Memfd | Kind::PosixShm | Kind::PosixMq => {
            m.insert("name".into(), json!(o.name));
            m.insert("inode".into(), json!(o.inode));
        }
    }
    v
}

/// A table in the plain style of `ipcs` and `lsipc`: aligned columns, a header, no borders,
/// so that `awk` and `cut` work on it. Hand-rolled because it must stay fast for tens of
/// thousands of rows (comfy-table measures every cell for wrapping).
pub fn plain_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::with_capacity(rows.len() * 96);
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i + 1 < cells.len() {
                for _ in c.chars().count()..width[i] + 2 {
                    out.push(' ');
                }
            }
        }
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    for r in rows {
        line(&mut out, &mut r.iter().map(String::as_str));
    }
    out
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

    #[test]
    fn plain_tables_align() {
        let t = plain_table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
    }
}
