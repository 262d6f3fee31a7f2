//! What a command acts on: `/name` (POSIX), `key:KEY` or `id:N` (System V).
//!
//! A `/name` is read in the escape syntax `ls` shows names in (`\\` for a
//! backslash, `\xNN` for any byte: see `shmkit::inspect::escape_name`), so
//! that every name `ls` lists can be given back to `stat` and `rm`, even one
//! that is not UTF-8.

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

use shmkit::posix::ShmName;
use shmkit::sysv::Key;

/// The accepted forms, for error messages.
pub const FORMS: &str =
    "use /name for a POSIX object, key:0x1234 (or key:4660) for a System V key, id:N for a System V id";

/// A shared-memory object named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/name`
    Posix(ShmName),
    /// `/name` whose escapes stand for bytes that are not UTF-8: the exact
    /// file name in /dev/shm, which only `stat` and `rm` take.
    PosixFile(OsString),
    /// `key:0x1234` or `key:4660`
    SysvKey(Key),
    /// `id:N`
    SysvId(i32),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        if s.starts_with('/') {
            let file = shmkit::inspect::unescape_name(s).map_err(|e| e.to_string())?;
            return match file.into_string() {
                Ok(utf8) => ShmName::new(format!("/{utf8}"))
                    .map(Target::Posix)
                    .map_err(|e| e.to_string()),
                Err(raw) => Ok(Target::PosixFile(raw)),
            };
        }
        if let Some(key) = s.strip_prefix("key:") {
            let key: Key = key.parse().map_err(|_| format!("{s:?}: not a 32-bit key; {FORMS}"))?;
            if key.is_private() {
                return Err(format!(
                    "{s:?}: key 0 is IPC_PRIVATE, which names no segment; use its id:N"
                ));
            }
            return Ok(Target::SysvKey(key));
        }
        if let Some(id) = s.strip_prefix("id:") {
            return match id.parse::<i32>() {
                Ok(id) if id >= 0 => Ok(Target::SysvId(id)),
                _ => Err(format!("{s:?}: not a segment id; {FORMS}")),
            };
        }
        Err(format!("{s:?} is not a target; {FORMS}"))
    }
}

/// A POSIX name given in the escape syntax, for the commands that create or
/// open by name: it must stand for UTF-8 (`shm_open` here takes text).
pub fn posix_name(s: &str) -> Result<ShmName, String> {
    match s.parse::<Target>()? {
        Target::Posix(name) => Ok(name),
        Target::PosixFile(_) => Err(format!("{s:?}: {NOT_UTF8}")),
        _ => Err(format!("{s:?}: not a POSIX name: it must start with '/'")),
    }
}

/// Why a name that is not UTF-8 is refused by the commands that open it.
pub const NOT_UTF8: &str = "its escapes stand for a name that is not UTF-8, which only stat and rm take";

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Posix(name) => f.write_str(&shmkit::inspect::escape_name(name.file_name().as_ref())),
            Target::PosixFile(file) => f.write_str(&shmkit::inspect::escape_name(file)),
            Target::SysvKey(key) => write!(f, "key:{key}"),
            Target::SysvId(id) => write!(f, "id:{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "/x".parse::<Target>().unwrap(),
            Target::Posix(ShmName::new("/x").unwrap())
        );
        assert_eq!(
            "key:0x1234".parse::<Target>().unwrap(),
            Target::SysvKey(Key::new(0x1234))
        );
        assert_eq!("key:4660".parse::<Target>().unwrap(), Target::SysvKey(Key::new(0x1234)));
        assert_eq!("id:7".parse::<Target>().unwrap(), Target::SysvId(7));
        assert_eq!("key:0x1234".parse::<Target>().unwrap().to_string(), "key:0x00001234");
    }

    #[test]
    fn posix_names_are_read_in_the_escape_syntax() {
        use std::os::unix::ffi::OsStrExt;
        let t = r"/a\\b\x41".parse::<Target>().unwrap();
        assert_eq!(t, Target::Posix(ShmName::new(r"/a\bA").unwrap()));
        assert_eq!(t.to_string(), r"/a\\bA");
        match r"/x\xff".parse::<Target>().unwrap() {
            Target::PosixFile(f) => assert_eq!(f.as_bytes(), b"x\xff"),
            other => panic!("{other:?}"),
        }
        assert_eq!(r"/x\xff".parse::<Target>().unwrap().to_string(), r"/x\xff");
        for bad in [r"/a\b", r"/a\x4", r"/\x2f", r"/a\x00"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        assert!(posix_name(r"/x\xff").unwrap_err().contains("not UTF-8"));
        assert_eq!(posix_name(r"/a\x41").unwrap().as_str(), "/aA");
    }

    #[test]
    fn refuses_the_rest_with_the_forms() {
        for bad in ["x", "", "key:", "key:zz", "id:-1", "id:x", "0x1234", "/a/b", "key:0"] {
            let err = bad.parse::<Target>().unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
        assert!("x".parse::<Target>().unwrap_err().contains("key:0x1234"));
        assert!("/a/b"
            .parse::<Target>()
            .unwrap_err()
            .contains("invalid shared memory name"));
    }
}
