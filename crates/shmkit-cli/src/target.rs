//! What a command acts on: `/name` (POSIX), `key:KEY` or `id:N` (System V).

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
    /// `key:0x1234` or `key:4660`
    SysvKey(Key),
    /// `id:N`
    SysvId(i32),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        if s.starts_with('/') {
            return ShmName::new(s).map(Target::Posix).map_err(|e| e.to_string());
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

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Posix(name) => write!(f, "{name}"),
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
