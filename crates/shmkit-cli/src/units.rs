//! Sizes (`4K`, `1MiB`), modes (`0640`) and durations (`2h`) as the command
//! line writes them.

use std::time::Duration;

/// Parses `4096`, `4K`/`4KiB`, `1M`/`1MiB`, `2G`/`2GiB`, `1T`/`1TiB` (powers of
/// 1024; the suffix in any case).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits);
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        _ => {
            return Err(format!(
                "{s:?}: not a size; use e.g. 4096, 4K, 1MiB or 2G (powers of 1024)"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?}: not a size; use e.g. 4096, 4K, 1MiB or 2G (powers of 1024)"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("{s:?}: too large"))
}

/// Parses an octal mode, `640`, `0640` or `0o640`, of at most nine bits.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "{s:?}: not a mode; use octal permission bits such as 0600 or 0640"
        )),
    }
}

/// Parses `250ms`, `90s`, `30m`, `2h`, `7d` (or a plain number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let millis = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: not a duration; use e.g. 500ms, 90s, 30m, 2h or 7d")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?}: not a duration; use e.g. 500ms, 90s, 30m, 2h or 7d"))?;
    n.checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?}: too long"))
}

/// Parses a channel capacity: a size that is a power of two from 64 bytes
/// to 4 GiB.
pub fn parse_capacity(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n.is_power_of_two() && (64..=1 << 32).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{s:?}: a channel's capacity is a power of two from 64 bytes to 4G, e.g. 1M"
        ))
    }
}

/// Parses a byte offset or length: a size without the need for a suffix.
pub fn parse_offset(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    usize::try_from(n).map_err(|_| format!("{s:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        for bad in ["", "K", "4KB", "-1", "1.5M", "4 K", "99999999999999999999", "16777216T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        for bad in ["", "0o", "8", "1777", "rw"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("h").is_err());
    }
}
