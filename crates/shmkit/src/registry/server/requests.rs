//! Answering the requests: register, lookup, wait, unregister, list.

use super::{reply, Conn, Entry, Server};
use crate::handle::Handle;
use crate::registry::policy::Op;
use crate::registry::protocol::{self, Code, HandleInfo, Info, Request, Response};
use std::time::{Duration, Instant, SystemTime};

impl Server {
    /// Whether connection `id` is open (and not about to be closed this turn).
    fn is_open(&self, id: u64) -> bool {
        self.conns.iter().any(|c| c.id == id) && !self.closing.iter().any(|c| c.0 == id)
    }

    pub(super) fn request(
        &mut self,
        i: usize,
        req: Request,
        handles: Vec<Handle>,
        log: &mut impl FnMut(&str),
    ) -> std::result::Result<(), String> {
        let who = self.conns[i].who;
        let id = self.conns[i].id;
        if !matches!(req, Request::Register { .. }) && !handles.is_empty() {
            return Err("sent handles with a request that takes none".into());
        }
        let refuse = |c: &mut Conn, code: Code, why: String, log: &mut dyn FnMut(&str)| {
            log(&format!(
                "refused pid {} uid {}: {why}",
                c.who.pid, c.who.uid
            ));
            reply(c, &Response::Error(code, why), &[])
        };
        match req {
            Request::Register { name, persistent } => {
                if let Err(why) = self.policy.check(self.owner, who, Op::Register, &name) {
                    return refuse(&mut self.conns[i], Code::Refused, why, log);
                }
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
                        return refuse(&mut self.conns[i], Code::Exists, why, log);
                    }
                } else if self.names.len() >= self.bounds.names {
                    let why = format!("{} names are registered (the bound)", self.bounds.names);
                    return refuse(&mut self.conns[i], Code::Full, why, log);
                }
                let stored: usize = self.names.values().map(|e| e.handles.len()).sum();
                if stored + handles.len() > self.bounds.stored_handles {
                    let why = format!(
                        "the registry holds {stored} handles; {} more would pass the bound of {}",
                        handles.len(),
                        self.bounds.stored_handles
                    );
                    return refuse(&mut self.conns[i], Code::Full, why, log);
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
                    handles: handles
                        .iter()
                        .map(|h| HandleInfo {
                            kind: h.kind(),
                            size: h.size(),
                            inode: h.inode(),
                        })
                        .collect(),
                };
                log(&format!(
                    "registered {name:?} ({} handles{}) for pid {} uid {}",
                    handles.len(),
                    if persistent { ", persistent" } else { "" },
                    who.pid,
                    who.uid
                ));
                self.names.insert(
                    name.clone(),
                    Entry {
                        info,
                        handles,
                        conn: id,
                    },
                );
                reply(&mut self.conns[i], &Response::Ok, &[])?;
                self.wake_waiters(&name);
                Ok(())
            }
            Request::Lookup { name } => {
                if let Err(why) = self.policy.check(self.owner, who, Op::Lookup, &name) {
                    return refuse(&mut self.conns[i], Code::Refused, why, log);
                }
                match self.names.get(&name) {
                    Some(e) => {
                        let hs: Vec<&Handle> = e.handles.iter().collect();
                        reply(&mut self.conns[i], &Response::Entry(e.info.clone()), &hs)
                    }
                    None => reply(
                        &mut self.conns[i],
                        &Response::Error(Code::NotFound, format!("no name {name:?} is registered")),
                        &[],
                    ),
                }
            }
            Request::Wait { name, timeout_ms } => {
                if let Err(why) = self.policy.check(self.owner, who, Op::Lookup, &name) {
                    return refuse(&mut self.conns[i], Code::Refused, why, log);
                }
                if let Some(e) = self.names.get(&name) {
                    let hs: Vec<&Handle> = e.handles.iter().collect();
                    return reply(&mut self.conns[i], &Response::Entry(e.info.clone()), &hs);
                }
                let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
                self.conns[i].waiting = Some((name, deadline));
                Ok(())
            }
            Request::Unregister { name } => {
                if let Err(why) = self.policy.check(self.owner, who, Op::Register, &name) {
                    return refuse(&mut self.conns[i], Code::Refused, why, log);
                }
                match self.names.get(&name) {
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
                        refuse(&mut self.conns[i], Code::Refused, why, log)
                    }
                    Some(_) => {
                        self.names.remove(&name);
                        log(&format!(
                            "unregistered {name:?} by pid {} uid {}",
                            who.pid, who.uid
                        ));
                        reply(&mut self.conns[i], &Response::Ok, &[])
                    }
                }
            }
            Request::List { after } => {
                // In pages, so that no answer outgrows a socket buffer.
                let mut v: Vec<&Info> = self
                    .names
                    .values()
                    .map(|e| &e.info)
                    .filter(|info| info.name.as_str() > after.as_str())
                    .filter(|info| {
                        self.policy
                            .check(self.owner, who, Op::Lookup, &info.name)
                            .is_ok()
                    })
                    .collect();
                v.sort_by(|a, b| a.name.cmp(&b.name));
                v.truncate(protocol::PAGE);
                let page = v.into_iter().cloned().collect();
                reply(&mut self.conns[i], &Response::Entries(page), &[])
            }
        }
    }

    /// Answers the connections waiting for `name`.
    fn wake_waiters(&mut self, name: &str) {
        let Some(e) = self.names.get(name) else {
            return;
        };
        let hs: Vec<&Handle> = e.handles.iter().collect();
        for c in &mut self.conns {
            if c.waiting.as_ref().is_some_and(|w| w.0 == name) {
                c.waiting = None;
                if let Err(why) = reply(c, &Response::Entry(e.info.clone()), &hs) {
                    self.closing.push((c.id, why));
                }
            }
        }
    }

    pub(super) fn drop_conn(&mut self, i: usize, why: &str, log: &mut impl FnMut(&str)) {
        let c = self.conns.swap_remove(i);
        if why != "closed the connection" {
            log(&format!(
                "closed pid {} uid {}: {why}",
                c.who.pid, c.who.uid
            ));
        }
        let gone: Vec<String> = self
            .names
            .iter()
            .filter(|(_, e)| e.conn == c.id && !e.info.persistent)
            .map(|(n, _)| n.clone())
            .collect();
        for n in gone {
            self.names.remove(&n);
            log(&format!(
                "{n:?} is gone: pid {} closed its connection",
                c.who.pid
            ));
        }
    }
}
