//! Validated names of POSIX shared-memory objects.

use std::fmt;

/// A POSIX name that the rules refuse: this module's own error, a leaf that
/// needs nothing else of the crate ([`crate::Error::InvalidName`] is made
/// from it with `?`).
///
/// ```
/// let e = shmkit::posix::ShmName::new("nope").unwrap_err();
/// assert_eq!(e.reason, "must start with '/'");
/// let e: shmkit::Error = e.into();
/// assert!(matches!(e, shmkit::Error::InvalidName { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?}: invalid shared memory name: {reason}")]
pub struct InvalidName {
    /// The name as given.
    pub name: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

type Result<T> = std::result::Result<T, InvalidName>;

/// The longest name accepted, in bytes, counting the leading `/`.
///
/// Linux keeps POSIX objects as files in `/dev/shm`, whose names are limited
/// to `NAME_MAX` (255) bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A POSIX shared-memory name that the rules accept: it starts with `/`,
/// contains no other `/` and no NUL byte, is not `/`, `/.` or `/..`, and is at
/// most [`MAX_NAME_LEN`] bytes long.
///
/// A name is checked when it is made, before any system call, so that no name
/// can reach into another directory.
///
/// # Examples
///
/// ```
/// use shmkit::posix::ShmName;
///
/// let name = ShmName::new("/shared")?;
/// assert_eq!(name.as_str(), "/shared");
/// assert_eq!(name.file_name(), "shared");
///
/// assert!(ShmName::new("shared").is_err());          // no leading slash
/// assert!(ShmName::new("/../etc/passwd").is_err());  // another slash
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShmName(String);

impl ShmName {
    /// Checks `name` and wraps it.
    ///
    /// # Errors
    /// [`InvalidName`] with the rule it breaks (which `?` turns into
    /// [`crate::Error::InvalidName`]).
    pub fn new(name: impl Into<String>) -> Result<ShmName> {
        let name = name.into();
        match check(&name) {
            Ok(()) => Ok(ShmName(name)),
            Err(reason) => Err(InvalidName { name, reason }),
        }
    }

    /// The name with its leading `/`, as `shm_open` takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without its leading `/`: the file's name in `/dev/shm`, and
    /// the form Python's `multiprocessing.shared_memory` uses.
    ///
    /// ```
    /// assert_eq!(shmkit::posix::ShmName::new("/a")?.file_name(), "a");
    /// # Ok::<(), shmkit::Error>(())
    /// ```
    pub fn file_name(&self) -> &str {
        &self.0[1..]
    }
}

/// The rule `name` breaks, if any.
fn check(name: &str) -> std::result::Result<(), &'static str> {
    let Some(rest) = name.strip_prefix('/') else {
        return Err("must start with '/'");
    };
    if rest.is_empty() {
        return Err("must have at least one character after '/'");
    }
    if rest == "." || rest == ".." {
        return Err("'/.' and '/..' are not names");
    }
    if rest.contains('/') {
        return Err("must not contain '/' after the first character");
    }
    if rest.contains('\0') {
        return Err("must not contain a NUL byte");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("longer than 255 bytes");
    }
    Ok(())
}

impl fmt::Display for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShmName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for ShmName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ShmName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<ShmName> {
        ShmName::new(s)
    }
}

impl TryFrom<&str> for ShmName {
    type Error = InvalidName;
    fn try_from(s: &str) -> Result<ShmName> {
        ShmName::new(s)
    }
}

impl TryFrom<String> for ShmName {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<ShmName> {
        ShmName::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> &'static str {
        match ShmName::new(name) {
            Err(InvalidName { reason, .. }) => reason,
            other => panic!("{name:?} was accepted: {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        for n in ["/a", "/shared", "/with.dot", "/..x", "/sp ace", "/ünïcode"] {
            assert_eq!(ShmName::new(n).unwrap().as_str(), n);
        }
        let longest = format!("/{}", "x".repeat(MAX_NAME_LEN - 1));
        assert!(ShmName::new(longest).is_ok());
    }

    #[test]
    fn refuses_each_rule() {
        assert_eq!(reason(""), "must start with '/'");
        assert_eq!(reason("shared"), "must start with '/'");
        assert_eq!(reason("/"), "must have at least one character after '/'");
        assert_eq!(reason("/."), "'/.' and '/..' are not names");
        assert_eq!(reason("/.."), "'/.' and '/..' are not names");
        assert_eq!(reason("//x"), "must not contain '/' after the first character");
        assert_eq!(reason("/a/b"), "must not contain '/' after the first character");
        assert_eq!(
            reason("/../etc/passwd"),
            "must not contain '/' after the first character"
        );
        assert_eq!(reason("/a\0b"), "must not contain a NUL byte");
        assert_eq!(
            reason(&format!("/{}", "x".repeat(MAX_NAME_LEN))),
            "longer than 255 bytes"
        );
    }

    #[test]
    fn error_message_names_the_name() {
        let e = ShmName::new("nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"nope\": invalid shared memory name: must start with '/'"
        );
    }
}
