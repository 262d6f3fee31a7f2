//! How a name in `/dev/shm` is shown, and read back: the escape syntax (see
//! [`escape_name`]).

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::error::{Error, Result};

/// `/` and `file_name`, escaped so that any name can be shown and typed.
///
/// A file in `/dev/shm` may have any name without `/` or NUL, UTF-8 or not,
/// with control characters or not (`shm_open` takes bytes, and any user can
/// create files there). Shown as `/` and the name, with:
///
/// | in the name | shown as |
/// |---|---|
/// | a backslash `\` | `\\` |
/// | a byte that is not part of valid UTF-8 | `\xNN` (two lowercase hex digits) |
/// | a control character (U+0000–U+001F, U+007F–U+009F: newline, escape, …) | `\xNN` for each of its UTF-8 bytes |
/// | anything else | itself |
///
/// So a shown name is printable, fits on one line, and cannot move a
/// terminal's cursor; and [`unescape_name`] gives back the exact bytes:
/// `\\` a backslash, `\xNN` (either case) the byte `NN`; any other `\` is an
/// error. Names that need no escape — every name shmkit creates, unless it
/// has a backslash — are shown as they are.
///
/// ```
/// use std::ffi::OsStr;
/// use std::os::unix::ffi::OsStrExt;
/// use shmkit::inspect::escape_name;
///
/// assert_eq!(escape_name(OsStr::new("jobs")), "/jobs");
/// assert_eq!(escape_name(OsStr::from_bytes(b"a\xffb\\c\n")), r"/a\xffb\\c\x0a");
/// ```
pub fn escape_name(file_name: &OsStr) -> String {
    let mut shown = String::from("/");
    for chunk in file_name.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => shown.push_str("\\\\"),
                c if c.is_control() => {
                    for b in c.encode_utf8(&mut [0; 4]).bytes() {
                        let _ = write!(shown, "\\x{b:02x}");
                    }
                }
                c => shown.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(shown, "\\x{b:02x}");
        }
    }
    shown
}

/// The exact file name (without the `/`) that a name shown by
/// [`escape_name`] stands for.
///
/// # Errors
/// [`Error::InvalidName`] when `shown` does not start with `/`, has a `\`
/// that is not `\\` or `\xNN`, or stands for a name no file can have: empty,
/// `.`, `..`, or with a `/` or NUL byte in it.
///
/// ```
/// use shmkit::inspect::{escape_name, unescape_name};
///
/// let raw = unescape_name(r"/a\xffb\\c")?;
/// assert_eq!(std::os::unix::ffi::OsStrExt::as_bytes(raw.as_os_str()), b"a\xffb\\c");
/// assert_eq!(escape_name(&raw), r"/a\xffb\\c");
/// assert!(unescape_name(r"/a\b").is_err());
/// # Ok::<(), shmkit::Error>(())
/// ```
pub fn unescape_name(shown: &str) -> Result<OsString> {
    let bad = |reason| Error::InvalidName {
        name: shown.to_owned(),
        reason,
    };
    let rest = shown.strip_prefix('/').ok_or_else(|| bad("must start with '/'"))?;
    let mut raw = Vec::with_capacity(rest.len());
    let mut bytes = rest.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            raw.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'\\') => raw.push(b'\\'),
            Some(b'x') => {
                let hex = [bytes.next(), bytes.next()];
                let digit = |d: Option<u8>| (d? as char).to_digit(16);
                match (digit(hex[0]), digit(hex[1])) {
                    (Some(hi), Some(lo)) => raw.push((hi * 16 + lo) as u8),
                    _ => return Err(bad("\\x must be followed by two hex digits")),
                }
            }
            _ => return Err(bad("a backslash must start \\\\ or \\xNN")),
        }
    }
    if raw.is_empty() {
        return Err(bad("must have at least one character after '/'"));
    }
    if raw == b"." || raw == b".." {
        return Err(bad("'/.' and '/..' are not names"));
    }
    if raw.contains(&b'/') {
        return Err(bad("must not contain '/' after the first character"));
    }
    if raw.contains(&0) {
        return Err(bad("must not contain a NUL byte"));
    }
    if raw.len() > crate::name::MAX_NAME_LEN {
        return Err(bad("is longer than 255 bytes"));
    }
    Ok(OsString::from_vec(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(s: &OsStr) -> &[u8] {
        s.as_bytes()
    }

    #[test]
    fn shown_names() {
        let show = |b: &[u8]| escape_name(OsStr::from_bytes(b));
        assert_eq!(show(b"plain"), "/plain");
        assert_eq!(show("ünï".as_bytes()), "/ünï");
        assert_eq!(show(b"a\xffb\xc3"), r"/a\xffb\xc3");
        assert_eq!(show(b"back\\slash"), r"/back\\slash");
        assert_eq!(show(b"\x1b[2J\x7f"), r"/\x1b[2J\x7f");
        assert_eq!(show("\u{9b}".as_bytes()), r"/\xc2\x9b"); // C1 control
        assert_eq!(show(br"\x41"), r"/\\x41");
    }

    #[test]
    fn names_read_back() {
        assert_eq!(bytes(&unescape_name("/plain").unwrap()), b"plain");
        assert_eq!(bytes(&unescape_name(r"/a\xFfb").unwrap()), b"a\xffb");
        assert_eq!(bytes(&unescape_name(r"/\\x41").unwrap()), br"\x41");
        assert_eq!(bytes(&unescape_name(r"/\x41").unwrap()), b"A");
        for bad in [
            "plain",
            "/",
            r"/a\",
            r"/a\x",
            r"/a\x4",
            r"/a\xg0",
            r"/a\n",
            r"/\x2f",
            r"/a\x00b",
            "/a/b",
            "/.",
            r"/\x2e\x2e",
        ] {
            assert!(matches!(unescape_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_file_name_round_trips(raw in proptest::collection::vec(1u8..=255, 1..64)) {
            prop_assume!(!raw.contains(&b'/') && raw != b"." && raw != b"..");
            let shown = escape_name(OsStr::from_bytes(&raw));
            prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
            let back = unescape_name(&shown).unwrap();
            prop_assert_eq!(bytes(&back), &raw[..]);
        }
    }
}
