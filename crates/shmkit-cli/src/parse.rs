//! Parsers for command-line values, each with an error that says what is expected.

use shmkit::inventory::{Address, Kind};

/// A size: `4096`, `64K`, `1M`, `1.5G` (binary units); not zero.
pub fn size(s: &str) -> Result<u64, String> {
    shmkit::size::parse(s)
}

/// The largest message of a queue: a size, in words about messages.
pub fn message_size(s: &str) -> Result<u64, String> {
    shmkit::size::parse(s).map_err(|e| e.replace("size", "message size"))
}

/// An offset or length: like a size, but 0 is allowed.
pub fn offset(s: &str) -> Result<u64, String> {
    if s.trim().chars().all(|c| c == '0') && !s.trim().is_empty() {
        return Ok(0);
    }
    shmkit::size::parse(s).map_err(|e| e.replace("size", "offset"))
}

/// A permission mode in octal: `600`, `0640`, `0o640`.
pub fn mode(s: &str) -> Result<u32, String> {
    let t = s.trim_start_matches("0o");
    let m = u32::from_str_radix(t, 8)
        .map_err(|_| format!("invalid mode '{s}': expected octal digits, e.g. 0600"))?;
    if m > 0o777 {
        return Err(format!("invalid mode '{s}': permission bits go up to 0777"));
    }
    Ok(m)
}

/// An object address, from the raw bytes of the argument: a POSIX name need not be UTF-8.
pub fn address() -> impl clap::builder::TypedValueParser<Value = Address> {
    use clap::builder::TypedValueParser;
    clap::builder::OsStringValueParser::new().try_map(|s| Address::parse_os(&s))
}

/// A kind name.
pub fn kind(s: &str) -> Result<Kind, String> {
    s.parse()
}

/// A System V key for `mk`, `0x` hex or decimal; key 0 is refused with the flag that means it.
pub fn key(s: &str) -> Result<i32, String> {
    shmkit::inventory::parse_key(s).map_err(|e| {
        if e.contains("IPC_PRIVATE") {
            "key 0 is IPC_PRIVATE, which names no object: use --private for a new object \
             reachable only by its id"
                .to_string()
        } else {
            e
        }
    })
}

/// `PATH:PROJ` for ftok; PROJ is 1 to 255 or a single character.
pub fn ftok(s: &str) -> Result<(String, u8), String> {
    let (path, proj) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid ftok spec '{s}': expected PATH:PROJ"))?;
    let id = if let Ok(n) = proj.parse::<u32>() {
        u8::try_from(n).ok().filter(|v| *v > 0)
    } else {
        let mut chars = proj.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii() && c != '\0' => Some(c as u8),
            _ => None,
        }
    };
    let id = id.ok_or_else(|| {
        format!("invalid ftok project '{proj}': use 1 to 255 or one ASCII character")
    })?;
    if path.is_empty() {
        return Err("invalid ftok spec: empty path".into());
    }
    Ok((path.to_string(), id))
}

/// A duration: `500ms`, `90`, `90s`, `15m`, `2h`, `7d`.
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration '{s}': expected e.g. 500ms, 90s, 15m, 2h, 7d"))?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("invalid duration '{s}': units are ms, s, m, h, d")),
    };
    n.checked_mul(ms)
        .map(std::time::Duration::from_millis)
        .ok_or_else(|| format!("invalid duration '{s}': too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(mode("0640"), Ok(0o640));
        assert!(mode("0800").is_err() && mode("1777").is_err());
        assert_eq!(offset("0"), Ok(0));
        assert_eq!(offset("4K"), Ok(4096));
        assert!(offset("-1").is_err());
        assert_eq!(ftok("/tmp/x:S"), Ok(("/tmp/x".into(), b'S')));
        assert_eq!(ftok("/tmp/x:7"), Ok(("/tmp/x".into(), 7)));
        assert!(ftok("/tmp/x:0").is_err() && ftok("/tmp/x").is_err() && ftok("/tmp/x:ab").is_err());
        assert_eq!(duration("2h"), Ok(std::time::Duration::from_secs(7200)));
        assert!(duration("2w").is_err());
        assert_eq!(key("0x10"), Ok(16));
    }
}
