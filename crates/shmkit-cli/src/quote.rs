//! Names and text made safe for a terminal.
//!
//! Anyone can create `/dev/shm/<ESC>[2J` or a name with a newline for root's `shmkit ls` to
//! print: raw, the first rewrites the screen and the second forges a table row. Human output
//! therefore quotes names the way GNU `ls` does by default on a terminal (its `shell-escape`
//! style): a plain name stays as it is; one with a space, a shell metacharacter, a control
//! character or bytes that are not UTF-8 is single-quoted, with the unprintable bytes written
//! as `$'\n'` or `$'\033'`, so that the printed form pasted into a shell names the object.
//! JSON output is not quoted: it escapes everything itself.

use shmkit::inventory::Address;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Characters a shell treats specially anywhere in a word (GNU ls quotes names that hold
/// any of them); `#` and `~` are special only at the start.
const SHELL_SPECIAL: &[char] = &[
    ' ', '\'', '"', '\\', '`', '$', '&', '|', ';', '<', '>', '(', ')', '*', '?', '[', ']', '!',
    '^', '=',
];

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls, DEL, and the Unicode
/// format characters that reorder or hide text (bidirectional overrides and isolates).
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A name (raw bytes) as GNU `ls` would show it.
///
/// ```ignore
/// assert_eq!(name(OsStr::new("/plain-name")), "/plain-name");
/// assert_eq!(name(OsStr::new("/a b")), "'/a b'");
/// assert_eq!(name(OsStr::new("/a\nb")), "'/a'$'\\n''b'");
/// ```
pub fn name(raw: &OsStr) -> String {
    let bytes = raw.as_bytes();
    let text = String::from_utf8_lossy(bytes);
    let utf8 = std::str::from_utf8(bytes).is_ok();
    let printable = utf8 && !text.chars().any(unprintable);
    let plain = printable
        && !text.starts_with(['#', '~'])
        && !text.chars().any(|c| SHELL_SPECIAL.contains(&c));
    if plain && !bytes.is_empty() {
        return text.into_owned();
    }
    // A quote but nothing that double quotes would expand: "it's", as GNU ls writes it.
    if printable && text.contains('\'') && !text.contains(['"', '$', '`', '\\', '!']) {
        return format!("\"{text}\"");
    }
    // Runs of printable text in single quotes, everything else as $'...' escapes.
    let mut out = String::new();
    let mut quoted = String::new();
    let mut escaped = String::new();
    // Ends a run: printable text as '...', escapes as $'...'.
    let flush = |out: &mut String, run: &mut String, open: &str| {
        if !run.is_empty() {
            out.push_str(open);
            out.push_str(run);
            out.push('\'');
            run.clear();
        }
    };
    let flush_quoted = |out: &mut String, q: &mut String| flush(out, q, "'");
    let flush_escaped = |out: &mut String, e: &mut String| flush(out, e, "$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if unprintable(c) {
                flush_quoted(&mut out, &mut quoted);
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    escaped.push_str(&escape_byte(b));
                }
            } else if c == '\'' {
                flush_quoted(&mut out, &mut quoted);
                flush_escaped(&mut out, &mut escaped);
                out.push_str("\\'");
            } else {
                flush_escaped(&mut out, &mut escaped);
                quoted.push(c);
            }
        }
        if !chunk.invalid().is_empty() {
            flush_quoted(&mut out, &mut quoted);
            for &b in chunk.invalid() {
                escaped.push_str(&escape_byte(b));
            }
        }
    }
    flush_quoted(&mut out, &mut quoted);
    flush_escaped(&mut out, &mut escaped);
    // GNU ls starts a name that opens with an escape with '' (so it reads as one word).
    if out.is_empty() || out.starts_with("$'") {
        out.insert_str(0, "''");
    }
    out
}

fn escape_byte(b: u8) -> String {
    match b {
        b'\n' => "\\n".into(),
        b'\t' => "\\t".into(),
        b'\r' => "\\r".into(),
        0x07 => "\\a".into(),
        0x08 => "\\b".into(),
        0x0b => "\\v".into(),
        0x0c => "\\f".into(),
        _ => format!("\\{b:03o}"),
    }
}

/// An address as human output shows it: the scheme, then the quoted name.
pub fn address(a: &Address) -> String {
    let Some(n) = a.posix_name() else {
        return a.to_string();
    };
    let scheme = match a {
        Address::PosixSem(_) => "psem:",
        Address::PosixMq(_) => "mq:",
        _ => "",
    };
    let q = name(n);
    // Quote the scheme together with the name, so that the whole argument pastes as one word.
    match q.strip_prefix('\'') {
        Some(rest) if !scheme.is_empty() => format!("'{scheme}{rest}"),
        _ => format!("{scheme}{q}"),
    }
}

/// Free text (a message, a command name): control characters written as `\n`, `\033`, so a
/// line stays one line and nothing reaches the terminal as a control sequence.
pub fn text(s: &str) -> String {
    if !s.chars().any(unprintable) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unprintable(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&escape_byte(b));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(b: &[u8]) -> String {
        name(OsStr::from_bytes(b))
    }

    #[test]
    fn names_are_quoted_like_gnu_ls() {
        assert_eq!(n(b"/plain-name.1"), "/plain-name.1");
        assert_eq!(n(b"/caf\xc3\xa9"), "/café");
        assert_eq!(n(b"/a b"), "'/a b'");
        assert_eq!(n(b"/a\nb"), "'/a'$'\\n''b'");
        assert_eq!(n(b"/\x1b[31mred"), "'/'$'\\033''[31mred'");
        assert_eq!(n(b"/a\tb"), "'/a'$'\\t''b'");
        assert_eq!(n(b"/x\xff"), "'/x'$'\\377'");
        assert_eq!(n(b"/it's"), "\"/it's\"");
        assert_eq!(n(b"/it's $x"), "'/it'\\''s $x'");
        assert_eq!(n(b"/a#b"), "/a#b");
        assert_eq!(n(b"/\xe2\x80\xae"), "'/'$'\\342\\200\\256'");
    }

    /// What GNU ls prints for the same names (when coreutils is there: it is on every Debian).
    #[test]
    fn the_same_as_gnu_ls_prints() {
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("shmkit-quote-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let names: [&[u8]; 14] = [
            b"a b",
            b"a\nb",
            b"\x1b[31mred",
            b"a\tb",
            b"x\xff",
            b"plain",
            b"#a",
            b"a#b",
            b"~a",
            b"a=b",
            b"it's",
            b"it's $x",
            b"a\x01b",
            b"a{b}",
        ];
        for raw in names {
            std::fs::write(dir.join(OsStr::from_bytes(raw)), b"").unwrap();
        }
        let out = std::process::Command::new("ls")
            .arg("--quoting-style=shell-escape")
            .arg("-1")
            .arg(&dir)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let out = out.expect("GNU ls");
        let theirs: std::collections::BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        let ours: std::collections::BTreeSet<String> = names.iter().map(|b| n(b)).collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn addresses_and_text() {
        let a = Address::parse_os(OsStr::from_bytes(b"psem:/a\nb")).unwrap();
        assert_eq!(address(&a), "'psem:/a'$'\\n''b'");
        assert_eq!(address(&Address::SysvShmId(3)), "shm:3");
        assert_eq!(text("one\nline \x1b[2J"), "one\\nline \\033[2J");
    }
}
