//! The encoding that both systems' registries share: strings and [`Info`] as bytes, read back
//! with every read checked, so that a hostile answer is an error, never a panic.

#[cfg(target_os = "linux")]
use super::entry::check_name;
use super::entry::{HandleInfo, Info};

pub(crate) struct Out(pub(crate) Vec<u8>);

impl Out {
    pub(crate) fn str(&mut self, s: &str) {
        let b = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        self.0.extend_from_slice(&(b.len() as u16).to_le_bytes());
        self.0.extend_from_slice(b);
    }
    pub(crate) fn info(&mut self, i: &Info) {
        self.str(&i.name);
        self.0.extend_from_slice(&i.pid.to_le_bytes());
        self.0.extend_from_slice(&i.uid.to_le_bytes());
        self.0.extend_from_slice(&i.gid.to_le_bytes());
        self.0.extend_from_slice(&i.since.to_le_bytes());
        self.0.push(i.persistent as u8);
        self.0.push(i.handles.len().min(255) as u8);
        for h in &i.handles {
            self.0.push(h.kind.code());
            self.0.extend_from_slice(&h.size.to_le_bytes());
            self.0.extend_from_slice(&h.device.to_le_bytes());
            self.0.extend_from_slice(&h.inode.to_le_bytes());
        }
    }
}

/// Reads a payload; every read is checked, so a hostile frame is an error, never a panic.
pub(crate) struct In<'a>(pub(crate) &'a [u8]);

impl In<'_> {
    pub(crate) fn take(&mut self, n: usize) -> std::result::Result<&[u8], String> {
        if self.0.len() < n {
            return Err("the message ends early".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    pub(crate) fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    pub(crate) fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    pub(crate) fn str(&mut self) -> std::result::Result<String, String> {
        let n = usize::from(self.u16()?);
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string is not UTF-8".into())
    }
    #[cfg(target_os = "linux")]
    pub(crate) fn name(&mut self) -> std::result::Result<String, String> {
        let n = self.str()?;
        check_name(&n)?;
        Ok(n)
    }
    pub(crate) fn info(&mut self) -> std::result::Result<Info, String> {
        let name = self.str()?;
        let pid = self.u32()? as i32;
        let uid = self.u32()?;
        let gid = self.u32()?;
        let since = self.u64()?;
        let persistent = self.u8()? != 0;
        let n = self.u8()?;
        let mut handles = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let code = self.u8()?;
            let kind = crate::handle::Kind::from_code(code)
                .ok_or_else(|| format!("unknown handle kind {code}"))?;
            handles.push(HandleInfo {
                kind,
                size: self.u64()?,
                device: self.u64()?,
                inode: self.u64()?,
            });
        }
        Ok(Info {
            name,
            pid,
            uid,
            gid,
            since,
            persistent,
            handles,
        })
    }
    pub(crate) fn end(&self) -> std::result::Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes past the end of the message",
                self.0.len()
            ))
        }
    }
}
