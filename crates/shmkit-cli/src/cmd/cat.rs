//! `shmkit cat`: the bytes of a shared-memory object, raw or as a hex dump.

use crate::fail::{code, CmdResult, Fail};
use shmkit::inventory::{self, Address};
use shmkit::size::count;
use std::io::Write;

/// Copy the bytes of a shared-memory object to stdout, or dump them like `xxd` with --hex.
///
/// Opens the object read-only, and reading never allocates it: a sparse object's holes read
/// as zeros without faulting pages in (POSIX and memfd objects are read with pread(2) on
/// their file; System V segments, as root, through /proc/self/map_files the same way). One
/// cost remains: a System V segment read by a user other than root, when some of it is in
/// swap, is read through a mapping, which allocates the pages that were never written.
#[derive(clap::Args)]
pub struct Args {
    /// The object: /NAME, shm:ID, key:KEY or memfd:PID:FD.
    #[arg(value_parser = crate::parse::address())]
    object: Address,
    /// First byte to print (units allowed: 4K).
    #[arg(long, short, value_parser = crate::parse::offset, default_value = "0", allow_hyphen_values = true)]
    offset: u64,
    /// How many bytes (default: to the end).
    #[arg(long, short, value_parser = crate::parse::offset, allow_hyphen_values = true)]
    length: Option<u64>,
    /// An `xxd`-style hex dump instead of raw bytes.
    #[arg(long, short = 'x')]
    hex: bool,
}

pub fn run(a: Args) -> CmdResult {
    let seg = inventory::open_reader(&a.object).map_err(Fail::about(&a.object))?;
    let size = seg.len();
    let shown = crate::quote::address(&a.object);
    if a.offset > size {
        return Err(Fail::usage(format!(
            "offset {} is past the end of {shown} ({})",
            a.offset,
            count(size, "byte", "bytes")
        )));
    }
    let len = a.length.unwrap_or(size - a.offset);
    if a.offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(Fail::usage(format!(
            "{} at offset {} run past the end of {shown} ({})",
            count(len, "byte", "bytes"),
            a.offset,
            count(size, "byte", "bytes")
        )));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = a.offset;
    let end = a.offset + len;
    while pos < end {
        let n = (end - pos).min(buf.len() as u64) as usize;
        seg.read_at(pos, &mut buf[..n])
            .map_err(Fail::about(&a.object))?;
        let r = if a.hex {
            hex(&mut out, pos, &buf[..n])
        } else {
            out.write_all(&buf[..n])
        };
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(code::OK); // `shmkit cat | head` is fine
            }
            return Err(Fail::error(format!("writing to stdout: {e}")));
        }
        pos += n as u64;
    }
    out.flush()
        .map_err(|e| Fail::error(format!("writing to stdout: {e}")))?;
    Ok(code::OK)
}

/// `xxd` format: offset, 16 bytes in groups of two, the printable ASCII.
fn hex(out: &mut impl Write, base: u64, bytes: &[u8]) -> std::io::Result<()> {
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut line = format!("{:08x}: ", base + i as u64 * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => line.push_str(&format!("{b:02x}")),
                None => line.push_str("  "),
            }
            if j % 2 == 1 {
                line.push(' ');
            }
        }
        line.push(' ');
        line.extend(chunk.iter().map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn ours(bytes: &[u8]) -> String {
        let mut v = Vec::new();
        super::hex(&mut v, 0, bytes).unwrap();
        String::from_utf8(v).unwrap()
    }

    /// Runs the real `xxd` (from vim, nobody here wrote it) on the same bytes.
    fn xxd(bytes: &[u8]) -> String {
        let mut child = Command::new("xxd")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("xxd must be installed (.ci/run installs it)");
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn hex_of_a_partial_line() {
        assert_eq!(
            ours(b"created this shmem\n"),
            "00000000: 6372 6561 7465 6420 7468 6973 2073 686d  created this shm\n\
             00000010: 656d 0a                                  em.\n"
        );
    }

    #[test]
    fn hex_matches_xxd() {
        let all: Vec<u8> = (0..=255u8).collect();
        for len in [0, 1, 2, 3, 15, 16, 17, 31, 33, 256] {
            assert_eq!(ours(&all[..len]), xxd(&all[..len]), "{len} bytes");
        }
    }
}
