//! Times as `ls`, `stat` and their JSON show them: RFC 3339 in UTC
//! (`2026-11-23T19:47:05Z`) and ages (`5s`, `3m`, `2h`, `4d`).
//!
//! A dozen lines of calendar arithmetic instead of a time crate: only UTC is
//! ever printed, to the second, so no time zone data is needed. Not
//! `humantime::format_rfc3339_seconds` (durations do use humantime): it
//! panics for a time before 1970 or after 9999, and any user can give a
//! file in `/dev/shm` such a time (`touch -d 1960-01-01`).

use std::time::{Duration, SystemTime};

/// A time that serializes as its RFC 3339 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub SystemTime);

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(self.0))
    }
}

/// `t` in RFC 3339, UTC, whole seconds: `2026-11-23T19:47:05Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // before 1970: round down to the whole second before
        Err(e) => {
            let d = e.duration();
            -i64::try_from(d.as_secs()).unwrap_or(i64::MAX) - i64::from(d.subsec_nanos() > 0)
        }
    };
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The date of the day `days` after 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the 400-year era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of the year from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How long before `now` the time `then` was; zero if it is later (a clock
/// set back).
pub fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

/// An age in its largest whole unit: `45s`, `12m`, `3h`, `5d`.
pub fn short_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `2026-11-23T19:47:05Z (5m ago)`, or `never` for no time.
pub fn when(now: SystemTime, t: Option<Rfc3339>) -> String {
    match t {
        Some(Rfc3339(t)) => format!("{} ({} ago)", rfc3339(t), short_age(age(now, t))),
        None => "never".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(1_795_462_025)), "2026-11-23T19:27:05Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z"); // leap day
        assert_eq!(rfc3339(at(4_107_542_399)), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(at(4_107_542_400)), "2100-03-01T00:00:00Z"); // 2100 is no leap year
        assert_eq!(rfc3339(at(-1)), "1969-12-31T23:59:59Z");
        // fractions are cut, not rounded
        assert_eq!(rfc3339(at(59) + Duration::from_millis(999)), "1970-01-01T00:00:59Z");
        assert_eq!(rfc3339(at(0) - Duration::from_millis(1)), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_one_before() {
        let mut last = civil_from_days(-1);
        for days in 0..146_097 * 2 {
            let (y, m, d) = civil_from_days(days);
            let next_day = (y, m, d) == (last.0, last.1, last.2 + 1);
            let next_month = d == 1 && ((y, m) == (last.0, last.1 + 1) || (y, m, last.1) == (last.0 + 1, 1, 12));
            assert!(next_day || next_month, "{last:?} -> {:?}", (y, m, d));
            last = (y, m, d);
        }
    }

    #[test]
    fn ages() {
        assert_eq!(short_age(Duration::from_secs(0)), "0s");
        assert_eq!(short_age(Duration::from_secs(59)), "59s");
        assert_eq!(short_age(Duration::from_secs(60)), "1m");
        assert_eq!(short_age(Duration::from_secs(7199)), "1h");
        assert_eq!(short_age(Duration::from_secs(86_400 * 3 + 5)), "3d");
        assert_eq!(age(at(10), at(20)), Duration::ZERO);
        assert_eq!(when(at(70), Some(Rfc3339(at(10)))), "1970-01-01T00:00:10Z (1m ago)");
        assert_eq!(when(at(70), None), "never");
        assert_eq!(
            serde_json::to_string(&Rfc3339(at(1_795_462_025))).unwrap(),
            "\"2026-11-23T19:27:05Z\""
        );
    }
}
