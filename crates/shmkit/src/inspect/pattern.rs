//! Which shmkit pattern an object of `/dev/shm` holds, from its header.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::core::kind::{Kind, MAGIC, READY};

/// A shmkit messaging pattern, as an object's header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pattern {
    /// One sender, one receiver ([`crate::channel`]).
    Channel,
    /// One publisher, many subscribers.
    Topic,
    /// Many senders, one receiver.
    ManyToOne,
    /// One server, many clients: request/response.
    Service,
    /// One writer of a latest value, any number of readers.
    LatestValue,
}

impl Pattern {
    /// The pattern's name: `channel`, `topic`, `many-to-one`, `service`,
    /// `latest-value`.
    ///
    /// ```
    /// assert_eq!(shmkit::inspect::Pattern::ManyToOne.as_str(), "many-to-one");
    /// ```
    pub fn as_str(self) -> &'static str {
        self.kind().name()
    }

    fn kind(self) -> Kind {
        match self {
            Pattern::Channel => Kind::Channel,
            Pattern::Topic => Kind::Topic,
            Pattern::ManyToOne => Kind::ManyToOne,
            Pattern::Service => Kind::Service,
            Pattern::LatestValue => Kind::LatestValue,
        }
    }

    fn of(kind: Kind) -> Pattern {
        match kind {
            Kind::Channel => Pattern::Channel,
            Kind::Topic => Pattern::Topic,
            Kind::ManyToOne => Pattern::ManyToOne,
            Kind::Service => Pattern::Service,
            Kind::LatestValue => Pattern::LatestValue,
        }
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a shmkit object's header says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmkitHeader {
    /// The layout version. Only this build's version can be opened; an
    /// object of another was made by another shmkit release.
    pub version: u32,
    /// The pattern, if the kind number is one this build knows.
    pub pattern: Option<Pattern>,
    /// The kind number as written.
    pub kind: u32,
    /// A latest value kept until it is removed by name: nobody may use it,
    /// on purpose (`shmkit put` keeps what it writes), so `ls --stale` and
    /// `rm --stale` leave it alone.
    pub kept: bool,
}

/// Reads the header of `/dev/shm/<file_name>` with `pread` (no mapping, so a
/// truncated object cannot fault), without following a symbolic link.
/// `None` if it cannot be read or does not start with a published shmkit
/// header.
pub(super) fn read_header(file_name: &OsStr) -> Option<ShmkitHeader> {
    use rustix::fs::{openat, Mode, OFlags, CWD};
    let mut path = b"/dev/shm/".to_vec();
    path.extend_from_slice(file_name.as_bytes());
    let fd = openat(
        CWD,
        OsStr::from_bytes(&path),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .ok()?;
    let mut bytes = [0u8; KEEP_AT + 4];
    let mut n = 0;
    while n < bytes.len() {
        match rustix::io::pread(&fd, &mut bytes[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    parse(&bytes[..n])
}

/// Where a latest value's keep word lies (`latest::layout`: its control
/// line at 128, the word 8 bytes in; pinned by a test below).
const KEEP_AT: usize = 136;

/// The header fields in the first bytes of an object.
fn parse(bytes: &[u8]) -> Option<ShmkitHeader> {
    let word = |at: usize, len: usize| bytes.get(at..at + len);
    let magic = u64::from_ne_bytes(word(0, 8)?.try_into().ok()?);
    let version = u32::from_ne_bytes(word(8, 4)?.try_into().ok()?);
    let ready = u32::from_ne_bytes(word(12, 4)?.try_into().ok()?);
    let kind = u32::from_ne_bytes(word(16, 4)?.try_into().ok()?);
    let pattern = Kind::from_number(kind).map(Pattern::of);
    // A latest value's keep word (`latest::layout`): only "no" and "not yet
    // said" mean removal; anything else keeps, as the pattern reads it.
    let keep = word(KEEP_AT, 4).map(|w| u32::from_ne_bytes(w.try_into().unwrap_or_default()));
    let kept = pattern == Some(Pattern::LatestValue) && !matches!(keep, None | Some(0) | Some(1));
    (magic == MAGIC && ready == READY).then_some(ShmkitHeader {
        version,
        pattern,
        kind,
        kept,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn parses_a_published_header_only() {
        let mut b = [0u8; 24];
        b[..8].copy_from_slice(&MAGIC.to_ne_bytes());
        b[8..12].copy_from_slice(&2u32.to_ne_bytes());
        b[16..20].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(parse(&b), None, "not ready");
        b[12..16].copy_from_slice(&READY.to_ne_bytes());
        let h = parse(&b).unwrap();
        assert_eq!((h.version, h.pattern, h.kind), (2, Some(Pattern::Topic), 2));
        b[16..20].copy_from_slice(&77u32.to_ne_bytes());
        assert_eq!(parse(&b).unwrap().pattern, None);
        assert_eq!(parse(&b[..10]), None, "too short");
        assert!(!parse(&b).unwrap().kept);
        b[0] ^= 1;
        assert_eq!(parse(&b), None, "no magic");
    }

    #[test]
    fn a_kept_latest_value_is_kept() {
        let name = crate::posix::ShmName::new(format!("/shmkit-pattern-kept-{}", std::process::id())).unwrap();
        for keep in [true, false] {
            let opts = crate::latest::Options::new().max_size(16).keep(keep);
            let mut w = crate::latest::Writer::create(&name, &opts).unwrap();
            w.write(b"x").unwrap();
            let h = read_header(std::ffi::OsStr::new(name.file_name())).unwrap();
            assert_eq!((h.pattern, h.kept), (Some(Pattern::LatestValue), keep));
            drop(w);
            let _ = crate::posix::remove(&name);
        }
    }
}
