//! Sizes as people write them: `4096`, `64K`, `1M`, `1.5G` (binary units).

/// Formats a byte count with a binary unit: `4 KiB`, `1.5 MiB`, `123 B`.
///
/// ```
/// assert_eq!(shmkit::size::human(4096), "4 KiB");
/// assert_eq!(shmkit::size::human(1536 * 1024), "1.5 MiB");
/// assert_eq!(shmkit::size::human(33), "33 B");
/// ```
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else if (v - v.round()).abs() < 0.05 {
        format!("{} {}", v.round() as u64, UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Two sizes for a comparison ("8 MiB exceeds 4 MiB"): human-readable, unless rounding
/// would make them look equal, in which case both are exact byte counts.
///
/// ```
/// use shmkit::size::human_pair;
/// assert_eq!(human_pair(8 << 20, 4 << 20), ("8 MiB".into(), "4 MiB".into()));
/// assert_eq!(
///     human_pair(u64::MAX, u64::MAX - 1),
///     ("18446744073709551615 bytes".into(), "18446744073709551614 bytes".into())
/// );
/// ```
pub fn human_pair(a: u64, b: u64) -> (String, String) {
    let (ha, hb) = (human(a), human(b));
    if ha == hb && a != b {
        (count(a, "byte", "bytes"), count(b, "byte", "bytes"))
    } else {
        (ha, hb)
    }
}

/// A count with its noun in the right number: `1 byte`, `2 bytes`, `0 messages`.
///
/// ```
/// assert_eq!(shmkit::size::count(1, "message", "messages"), "1 message");
/// assert_eq!(shmkit::size::count(0, "process", "processes"), "0 processes");
/// ```
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Parses `4096`, `64K`, `64KiB`, `1M`, `1.5G`, `2T` (K = 1024 bytes, and so on).
/// Refuses zero, negatives, fractions of a byte and anything that overflows `u64`.
///
/// # Errors
/// A message that says what is wrong: no number, an unknown unit, zero, a negative size, a
/// fraction of a byte, or more than `u64::MAX`.
///
/// ```
/// use shmkit::size::parse;
/// assert_eq!(parse("64K"), Ok(65536));
/// assert_eq!(parse("1.5G"), Ok(1536 << 20));
/// assert!(parse("0").is_err());
/// assert!(parse("-1").is_err());
/// assert!(parse("99999999999T").is_err());
/// ```
pub fn parse(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!("invalid size '{text}': negative"));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("invalid size '{text}': use a number with an optional unit K, M, G or T (binary: 1K = 1024)")),
    };
    if num.is_empty() {
        return Err(format!("invalid size '{text}': no number"));
    }
    let bytes = if let Some((int, frac)) = num.split_once('.') {
        // Exact decimal arithmetic: 1.5G is 1610612736, not a float's guess.
        if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
            return Err(format!("invalid size '{text}'"));
        }
        let digits = format!("{int}{frac}");
        let n: u128 = digits
            .parse()
            .map_err(|_| format!("invalid size '{text}'"))?;
        let scaled = n
            .checked_shl(shift)
            .ok_or_else(|| format!("size '{text}' is too large"))?;
        let div = 10u128
            .checked_pow(frac.len() as u32)
            .ok_or_else(|| format!("invalid size '{text}'"))?;
        if scaled % div != 0 {
            return Err(format!("size '{text}' is not a whole number of bytes"));
        }
        u64::try_from(scaled / div).map_err(|_| format!("size '{text}' is too large"))?
    } else {
        let n: u64 = num
            .parse()
            .map_err(|_| format!("size '{text}' is too large"))?;
        n.checked_mul(1u64 << shift)
            .ok_or_else(|| format!("size '{text}' is too large"))?
    };
    if bytes == 0 {
        return Err(format!("size '{text}' is zero; at least 1 byte is needed"));
    }
    Ok(bytes)
}
