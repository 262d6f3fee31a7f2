//! System V IPC keys: a number, `IPC_PRIVATE`, or one made by `ftok`.

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

/// Why a key could not be made: this module's own error, a leaf that needs
/// nothing else of the crate (`?` turns it into [`crate::Error::KeyPath`]
/// or [`crate::Error::InvalidArgument`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `ftok`'s path cannot be examined (it does not exist, say).
    #[error("{}: cannot make a System V key from this path: {source}", .path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// The OS error from `stat`/`ftok`.
        #[source]
        source: Errno,
    },
    /// An id, path or text that cannot make a key.
    #[error("{}: {reason}", .path.as_ref().map_or("key".into(), |p| p.display().to_string()))]
    Invalid {
        /// The path given to `ftok`, if that was the call.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },
}

type Result<T> = std::result::Result<T, KeyError>;

/// A System V IPC key, the name under which processes find a segment.
///
/// It displays as `ipcs` shows keys: `0x` and eight hex digits.
///
/// # Examples
///
/// ```
/// use shmkit::sysv::Key;
///
/// let key = Key::new(0x1234);
/// assert_eq!(key.to_string(), "0x00001234");
/// assert_eq!("0x1234".parse::<Key>()?, key);
/// assert_eq!("4660".parse::<Key>()?, key);
///
/// // The same path and id give the same key in every process, as in C.
/// let a = Key::ftok("/", 65)?;
/// assert_eq!(a, Key::ftok("/", 65)?);
/// # Ok::<(), shmkit::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(i32);

impl Key {
    /// `IPC_PRIVATE`: a key that always makes a new segment, found only by
    /// its id.
    pub const PRIVATE: Key = Key(libc::IPC_PRIVATE);

    /// The key with this number.
    pub const fn new(raw: i32) -> Key {
        Key(raw)
    }

    /// `ftok(path, proj_id)`—the key C programs derive from an existing
    /// file's inode and device and a project id.
    ///
    /// Only the low 8 bits of the id are used by `ftok`, so it is a `u8`; `0`
    /// is refused, because whether it works is left undefined by POSIX.
    ///
    /// # Errors
    /// [`KeyError::Path`] with the path's error when it does not exist or
    /// cannot be examined; [`KeyError::Invalid`] for id `0` or a path with
    /// a NUL byte.
    pub fn ftok(path: impl AsRef<Path>, proj_id: u8) -> Result<Key> {
        let path = path.as_ref();
        let invalid = |reason: &str| KeyError::Invalid {
            path: Some(path.to_owned()),
            reason: reason.to_owned(),
        };
        if proj_id == 0 {
            return Err(invalid(
                "ftok project id must be 1 to 255: ftok uses only its low 8 bits, and 0 is undefined",
            ));
        }
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| invalid("path contains a NUL byte"))?;
        let key = crate::sysv::ffi::ftok(&c_path, proj_id).map_err(|source| KeyError::Path {
            path: path.to_owned(),
            source,
        })?;
        Ok(Key(key))
    }

    /// The key as the C `key_t`.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Whether this is `IPC_PRIVATE`.
    pub const fn is_private(self) -> bool {
        self.0 == libc::IPC_PRIVATE
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0 as u32)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(0x{:08x})", self.0 as u32)
    }
}

impl From<i32> for Key {
    fn from(raw: i32) -> Key {
        Key(raw)
    }
}

impl std::str::FromStr for Key {
    type Err = KeyError;

    /// Parses `0x1234` (hex), `4660` (decimal) or a negative decimal; any
    /// value that fits in 32 bits.
    fn from_str(s: &str) -> Result<Key> {
        let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            u32::from_str_radix(hex, 16).ok().map(|v| v as i32)
        } else if s.starts_with('-') {
            s.parse::<i32>().ok()
        } else {
            s.parse::<u32>().ok().map(|v| v as i32)
        };
        parsed.map(Key).ok_or_else(|| KeyError::Invalid {
            path: None,
            reason: format!("{s:?} is not a System V key: use a 32-bit number such as 0x1234 or 4660"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn parses_and_displays_like_ipcs() {
        assert_eq!("0xffffffff".parse::<Key>().unwrap().raw(), -1);
        assert_eq!(Key::new(-1).to_string(), "0xffffffff");
        assert_eq!("-2".parse::<Key>().unwrap(), Key::new(-2));
        assert!("0x1_0000_0000".parse::<Key>().is_err());
        assert!("4294967296".parse::<Key>().is_err());
        assert!("key".parse::<Key>().is_err());
        assert!(Key::PRIVATE.is_private());
    }

    #[test]
    fn ftok_matches_its_definition() {
        // glibc: (id & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata("/").unwrap();
        let expected = (65u32 << 24) | ((meta.dev() as u32 & 0xff) << 16) | (meta.ino() as u32 & 0xffff);
        assert_eq!(Key::ftok("/", 65).unwrap().raw() as u32, expected);
    }

    #[test]
    fn ftok_reports_the_path() {
        let err = Key::ftok("/shmkit/surely/missing", 1).unwrap_err();
        assert!(
            matches!(
                err,
                KeyError::Path {
                    source: Errno::NOENT,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with("/shmkit/surely/missing: cannot make a System V key"));
        assert!(matches!(
            Key::ftok("/", 0),
            Err(KeyError::Invalid { path: Some(_), .. })
        ));
        // and as the crate's error, as `?` makes it
        let err: crate::Error = Key::ftok("/", 0).unwrap_err().into();
        assert!(matches!(err, crate::Error::InvalidArgument { .. }));
    }
}
