//! Answering the requests: register, lookup, wait, unregister, list.

use super::inflight::{unread, Draining};
use super::{reply, Entry, Server};
use crate::handle::{Handle, Kind};
use crate::registry::entry::{HandleInfo, Info};
use crate::registry::policy::Op;
use crate::registry::protocol::{self, Code, Request, Response};
use std::time::{Duration, Instant, SystemTime};

/// What the registry says of `h` now: a memfd may have grown since it was registered.
fn handle_info(h: &Handle) -> HandleInfo {
    let st = rustix::fs::fstat(h.fd()).ok();
    HandleInfo {
        kind: h.kind(),
        size: match (h.kind(), &st) {
            (Kind::Memfd | Kind::PosixShm, Some(st)) => u64::try_from(st.st_size).unwrap_or(0),
            _ => h.size(),
        },
        device: st.as_ref().map_or(0, |st| st.st_dev),
        inode: st.as_ref().map_or(0, |st| st.st_ino),
    }
}

impl Entry {
    /// Its info, with its handles as they are now.
    fn info_now(&self) -> Info {
        Info {
            handles: self.handles.iter().map(handle_info).collect(),
            ..self.info.clone()
        }
    }
}

impl Server {
    /// Whether connection `id` is open (and not about to be closed this turn).
    fn is_open(&self, id: u64) -> bool {
        self.conns.iter().any(|c| c.id == id) && !self.closing.iter().any(|c| c.0 == id)
    }

    /// Refuses connection `i`'s request: tells it why, and notes it (rate-limited).
    fn refuse(
        &mut self,
        i: usize,
        code: Code,
        why: String,
        log: &mut dyn FnMut(&str),
    ) -> std::result::Result<(), String> {
        let c = &self.conns[i];
        let line = format!("refused pid {} uid {}: {why}", c.who.pid, c.who.uid);
        self.note(Some(c.who.uid), log, line);
        reply(&mut self.conns[i], &Response::Error(code, why), &[])
    }

    /// Sends connection `i` the entry of `name` with its handles, or why not.
    fn send_entry(
        &mut self,
        i: usize,
        name: &str,
        log: &mut dyn FnMut(&str),
    ) -> std::result::Result<(), String> {
        let Some(k) = self.names.get(name).map(|e| e.handles.len()) else {
            let why = format!("no name {name:?} is registered");
            return reply(
                &mut self.conns[i],
                &Response::Error(Code::NotFound, why),
                &[],
            );
        };
        if let Err(why) = self.room_in_flight(i, k) {
            return self.refuse(i, Code::Full, why, log);
        }
        let e = &self.names[name];
        let hs: Vec<&Handle> = e.handles.iter().collect();
        reply(&mut self.conns[i], &Response::Entry(e.info_now()), &hs)
    }

    /// Stores `entry` under `name` (replacing what was there), counting its handles.
    fn insert(&mut self, name: String, entry: Entry) {
        self.remove(&name);
        self.stored += entry.handles.len();
        let held = self.held_by_uid.entry(entry.info.uid).or_default();
        held.names += 1;
        held.handles += entry.handles.len();
        self.names.insert(name, entry);
    }

    /// Removes `name`, counting its handles out.
    fn remove(&mut self, name: &str) {
        if let Some(e) = self.names.remove(name) {
            self.stored -= e.handles.len();
            if let Some(held) = self.held_by_uid.get_mut(&e.info.uid) {
                held.names -= 1;
                held.handles -= e.handles.len();
                if held.names == 0 {
                    self.held_by_uid.remove(&e.info.uid);
                }
            }
        }
    }

    pub(super) fn request(
        &mut self,
        i: usize,
        req: Request,
        handles: Vec<Handle>,
        log: &mut dyn FnMut(&str),
    ) -> std::result::Result<(), String> {
        let who = self.conns[i].who;
        let id = self.conns[i].id;
        if !matches!(req, Request::Register { .. }) && !handles.is_empty() {
            return Err("sent handles with a request that takes none".into());
        }
        let op = match req {
            Request::Register { .. } | Request::Unregister { .. } => Op::Register,
            _ => Op::Lookup,
        };
        let checked = match &req {
            Request::Register { name, .. }
            | Request::Lookup { name }
            | Request::Wait { name, .. }
            | Request::Unregister { name } => {
                self.policy
                    .check(self.owner, &self.conns[i].rules_who, op, name)
            }
            // A list shows only the names this client may look up.
            Request::List { .. } => Ok(()),
        };
        if let Err(why) = checked {
            return self.refuse(i, Code::Refused, why, log);
        }
        match req {
            Request::Register { name, persistent } => {
                let mut replacing = 0;
                if let Some(old) = self.names.get(&name) {
                    // The owner is the connection that registered it; once that is closed (a
                    // persistent name), its user may take the name over.
                    let replaceable =
                        old.conn == id || (old.info.uid == who.uid && !self.is_open(old.conn));
                    if !replaceable {
                        let why = format!(
                            "{name:?} is registered by pid {} (uid {}) since {}",
                            old.info.pid, old.info.uid, old.info.since
                        );
                        return self.refuse(i, Code::Exists, why, log);
                    }
                    replacing = old.handles.len();
                } else if self.names.len() >= self.bounds.names {
                    let why = format!("{} names are registered (the bound)", self.bounds.names);
                    return self.refuse(i, Code::Full, why, log);
                } else if who.uid != self.owner {
                    let theirs = self.held_by_uid.get(&who.uid).map_or(0, |h| h.names);
                    if theirs >= self.bounds.names_per_uid {
                        let why = format!(
                            "uid {} has {theirs} names registered (the bound per user)",
                            who.uid
                        );
                        return self.refuse(i, Code::Full, why, log);
                    }
                }
                // The handles of the entry replaced (the same uid's) are given back.
                let stored = self.stored - replacing;
                if stored + handles.len() > self.bounds.stored_handles {
                    let why = format!(
                        "the registry holds {stored} handles; {} more would pass the bound of {}",
                        handles.len(),
                        self.bounds.stored_handles
                    );
                    return self.refuse(i, Code::Full, why, log);
                }
                let theirs = self.held_by_uid.get(&who.uid).map_or(0, |h| h.handles) - replacing;
                if who.uid != self.owner && theirs + handles.len() > self.bounds.stored_per_uid {
                    let why = format!(
                        "uid {} has {theirs} handles registered; {} more would pass the bound of \
                         {} per user",
                        who.uid,
                        handles.len(),
                        self.bounds.stored_per_uid
                    );
                    return self.refuse(i, Code::Full, why, log);
                }
                let info = Info {
                    name: name.clone(),
                    pid: who.pid,
                    uid: who.uid,
                    gid: who.gid,
                    since: SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                    persistent,
                    handles: handles.iter().map(handle_info).collect(),
                };
                let line = format!(
                    "registered {name:?} ({} handles{}) for pid {} uid {}",
                    handles.len(),
                    if persistent { ", persistent" } else { "" },
                    who.pid,
                    who.uid
                );
                self.note(Some(who.uid), log, line);
                self.insert(
                    name.clone(),
                    Entry {
                        info,
                        handles,
                        conn: id,
                    },
                );
                reply(&mut self.conns[i], &Response::Ok, &[])?;
                self.wake_waiters(&name, log);
                Ok(())
            }
            Request::Lookup { name } => self.send_entry(i, &name, log),
            Request::Wait { name, timeout_ms } => {
                if self.names.contains_key(&name) {
                    return self.send_entry(i, &name, log);
                }
                let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
                self.conns[i].waiting = Some((name, deadline));
                Ok(())
            }
            Request::Unregister { name } => match self.names.get(&name) {
                None => reply(
                    &mut self.conns[i],
                    &Response::Error(Code::NotFound, format!("no name {name:?} is registered")),
                    &[],
                ),
                Some(e) if e.conn != id && (e.info.uid != who.uid || self.is_open(e.conn)) => {
                    let why = format!(
                        "{name:?} belongs to pid {} (uid {}), whose connection is open",
                        e.info.pid, e.info.uid
                    );
                    self.refuse(i, Code::Refused, why, log)
                }
                Some(_) => {
                    self.remove(&name);
                    let line = format!("unregistered {name:?} by pid {} uid {}", who.pid, who.uid);
                    self.note(Some(who.uid), log, line);
                    reply(&mut self.conns[i], &Response::Ok, &[])
                }
            },
            Request::List { after } => {
                // In pages, so that no answer outgrows a socket buffer.
                let rules_who = &self.conns[i].rules_who;
                let mut v: Vec<&Entry> = self
                    .names
                    .values()
                    .filter(|e| e.info.name.as_str() > after.as_str())
                    .filter(|e| {
                        self.policy
                            .check(self.owner, rules_who, Op::Lookup, &e.info.name)
                            .is_ok()
                    })
                    .collect();
                v.sort_by(|a, b| a.info.name.cmp(&b.info.name));
                v.truncate(protocol::PAGE);
                let page = v.into_iter().map(Entry::info_now).collect();
                reply(&mut self.conns[i], &Response::Entries(page), &[])
            }
        }
    }

    /// Answers the connections waiting for `name`.
    fn wake_waiters(&mut self, name: &str, log: &mut dyn FnMut(&str)) {
        let waiting: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.conns[i].waiting.as_ref().is_some_and(|w| w.0 == name))
            .collect();
        for i in waiting {
            self.conns[i].waiting = None;
            if let Err(why) = self.send_entry(i, name, log) {
                self.closing.push((self.conns[i].id, why));
            }
        }
    }

    pub(super) fn drop_conn(&mut self, i: usize, why: &str, log: &mut dyn FnMut(&str)) {
        let c = self.conns.swap_remove(i);
        if why != "closed the connection" {
            let line = format!("closed pid {} uid {}: {why}", c.who.pid, c.who.uid);
            self.note(Some(c.who.uid), log, line);
        }
        if c.in_flight > 0 && unread(&c.stream).is_some_and(|n| n > 0) {
            // Its peer still holds handles it has not read, charged to the registry's user:
            // kept (shut down: the peer reads the rest, then the end) until they are read.
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
            self.draining.push(Draining {
                stream: c.stream,
                uid: c.who.uid,
                in_flight: c.in_flight,
            });
        }
        let gone: Vec<String> = self
            .names
            .iter()
            .filter(|(_, e)| e.conn == c.id && !e.info.persistent)
            .map(|(n, _)| n.clone())
            .collect();
        for n in gone {
            self.remove(&n);
            let line = format!("{n:?} is gone: pid {} closed its connection", c.who.pid);
            self.note(Some(c.who.uid), log, line);
        }
    }
}
