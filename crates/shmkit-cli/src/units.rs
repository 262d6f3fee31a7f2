//! The one grammar of sizes and durations, for every flag of every
//! subcommand (`create --size`, `write --size`, `--offset`, `--length`,
//! `send`/`recv --capacity`, `bench --sizes`, `rm --older-than`,
//! `--timeout`, `bench --duration`); and modes (`0640`).
//!
//! The README's "Sizes and durations" section says the same; the tests
//! below try every form it names. A flag may narrow the range (a channel's
//! capacity is a power of two), never the grammar.
//!
//! Sizes: `DIGITS [UNIT]`, the unit one of `K`, `M`, `G`, `T`, alone or with
//! `iB` (`4K` = `4KiB` = 4096), in any case: powers of 1024. Nothing else:
//! no `B`, no fractions, signs, spaces or separators, and no `KB`/`MB`/…,
//! which mean 1000 to some tools and 1024 to others.
//!
//! Durations: `humantime`'s grammar: a number and a unit, repeated
//! (`500ms`, `90s`, `1.5s`, `30m`, `2h`, `7d`, `1h30m`, `1h 30m`); units
//! `ns`, `us`, `ms`, `s`/`sec`, `m`/`min`, `h`/`hr`, `d`/`days`, `w`/`weeks`,
//! `M`/`months`, `y`/`years`, case-sensitive (`m` is a minute, `M` a month).
//! A number needs its unit, except `0`.

use std::time::Duration;

const SIZE_FORMS: &str = "write e.g. 4096, 4K, 4KiB, 1M or 2G (powers of 1024)";
const DURATION_FORMS: &str = "write e.g. 500ms, 90s, 30m, 2h, 7d or 1h30m";

/// Parses a size: `4096`, `4K`/`4KiB`, `1M`/`1MiB`, `2G`/`2GiB`,
/// `1T`/`1TiB` (powers of 1024; the unit in any case).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    if number.is_empty() {
        return Err(format!("{s:?} is not a size; {SIZE_FORMS}"));
    }
    let lower = unit.to_ascii_lowercase();
    let shift = match lower.as_str() {
        "" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        "kb" | "mb" | "gb" | "tb" => {
            let u = &unit[..1].to_ascii_uppercase();
            return Err(format!(
                "{s:?}: {unit} means 1000 to some tools and 1024 to others; write {number}{u} or {number}{u}iB (powers of 1024)"
            ));
        }
        _ => return Err(format!("{s:?} is not a size; {SIZE_FORMS}")),
    };
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is too large"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration in `humantime`'s grammar: `500ms`, `90s`, `1.5s`,
/// `30m`, `2h`, `7d`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    // humantime skips blanks around the text: the grammar has none there
    if s.trim() != s || s.is_empty() {
        return Err(format!("{s:?} is not a duration; {DURATION_FORMS}"));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration ({e}); {DURATION_FORMS}"))
}

/// Parses a channel capacity: a size that is a power of two from
/// [`MIN_CAPACITY`](shmkit::channel::MIN_CAPACITY) (64 bytes) to
/// [`MAX_CAPACITY`](shmkit::channel::MAX_CAPACITY) (1 TiB), the library's
/// own bounds.
pub fn parse_capacity(s: &str) -> Result<u64, String> {
    use shmkit::channel::{MAX_CAPACITY, MIN_CAPACITY};
    let n = parse_size(s)?;
    if n.is_power_of_two() && (MIN_CAPACITY..=MAX_CAPACITY).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{s:?}: a channel's capacity is a power of two from {MIN_CAPACITY} bytes to 1T, e.g. 1M"
        ))
    }
}

/// Parses a byte offset or length: a size that fits in memory.
pub fn parse_offset(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    usize::try_from(n).map_err(|_| format!("{s:?} is too large"))
}

/// Parses an octal mode, `640`, `0640` or `0o640`, of at most nine bits.
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() && !digits.starts_with('+') => Ok(mode),
        _ => Err(format!(
            "{s:?} is not a mode; use octal permission bits such as 0600 or 0640"
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every accepted size form the README names, with its value.
    pub(crate) const SIZES: &[(&str, u64)] = &[
        ("0", 0),
        ("4096", 4096),
        ("007", 7),
        ("4K", 4 << 10),
        ("4k", 4 << 10),
        ("4KiB", 4 << 10),
        ("4kib", 4 << 10),
        ("4KIB", 4 << 10),
        ("1M", 1 << 20),
        ("1m", 1 << 20),
        ("1MiB", 1 << 20),
        ("2G", 2 << 30),
        ("2g", 2 << 30),
        ("2GiB", 2 << 30),
        ("1T", 1 << 40),
        ("1TiB", 1 << 40),
        ("16777215T", ((1 << 24) - 1) << 40),
        ("18446744073709551615", u64::MAX),
    ];

    /// Every refused size form: garbage, and what other tools accept but
    /// this grammar does not.
    pub(crate) const NOT_SIZES: &[&str] = &[
        "", "K", "KiB", "4KB", "4kb", "1MB", "2GB", "1TB", "4B", "4b", "4Ki", "4KiBs", "4P", "4E", "-1", "+1", "1.5M",
        "0.5K", "4 K", " 4K", "4K ", "1,024", "1_024", "0x1000", "4096 ", "1e3", "four", "4KK",
    ];

    /// Sizes the grammar accepts but that do not fit in 64 bits.
    const TOO_LARGE: &[&str] = &["18446744073709551616", "16777216T", "99999999999999999999"];

    #[test]
    fn every_size_form_the_readme_names() {
        for &(s, want) in SIZES {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn every_refused_size_form() {
        for bad in NOT_SIZES.iter().chain(TOO_LARGE) {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.starts_with(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert!(parse_size("4KB").unwrap_err().contains("write 4K or 4KiB"));
        assert!(parse_size("1mb").unwrap_err().contains("write 1M or 1MiB"));
        assert!(parse_size("16777216T").unwrap_err().contains("too large"));
    }

    /// Every accepted duration form the README names, with its value.
    pub(crate) const DURATIONS: &[(&str, Duration)] = &[
        ("0", Duration::ZERO),
        ("0s", Duration::ZERO),
        ("1ns", Duration::from_nanos(1)),
        ("100us", Duration::from_micros(100)),
        ("250ms", Duration::from_millis(250)),
        ("90s", Duration::from_secs(90)),
        ("1sec", Duration::from_secs(1)),
        ("1.5s", Duration::from_millis(1500)),
        ("30m", Duration::from_secs(1800)),
        ("2min", Duration::from_secs(120)),
        ("2h", Duration::from_secs(7200)),
        ("1hr", Duration::from_secs(3600)),
        ("7d", Duration::from_secs(7 * 86_400)),
        ("2days", Duration::from_secs(2 * 86_400)),
        ("1w", Duration::from_secs(7 * 86_400)),
        ("1h30m", Duration::from_secs(5400)),
        ("1h 30m", Duration::from_secs(5400)),
        ("1M", Duration::from_secs(2_630_016)),
        ("1y", Duration::from_secs(31_557_600)),
    ];

    /// Every refused duration form.
    pub(crate) const NOT_DURATIONS: &[&str] = &[
        "",
        "5",
        "90",
        "s",
        "1S",
        "2H",
        "7D",
        "-1s",
        "+1s",
        "1_000ms",
        "1e3s",
        "fast",
        "1 parsec",
        " 1s",
        "1s ",
        "99999999999999999999s",
    ];

    #[test]
    fn every_duration_form_the_readme_names() {
        for &(s, want) in DURATIONS {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn every_refused_duration_form() {
        for bad in NOT_DURATIONS {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.starts_with(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn capacities_are_powers_of_two_from_64_to_1t() {
        assert_eq!(parse_capacity("64"), Ok(64));
        assert_eq!(parse_capacity("1M"), Ok(1 << 20));
        assert_eq!(parse_capacity("4GiB"), Ok(1 << 32));
        assert_eq!(parse_capacity("1T"), Ok(shmkit::channel::MAX_CAPACITY));
        for bad in ["32", "100", "2T", "4KB", "0"] {
            assert!(parse_capacity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        for bad in ["", "0o", "8", "1777", "rw", "+644"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }
}
