//! The lines of `/proc/PID/maps` that can be shared memory, read as bytes.
//!
//! `procfs` parses this file too, but its parser (0.18) fails the whole file
//! when any mapped path is not UTF-8, trims white space that belongs to a
//! file name, and panics on a mapped file whose path starts with `/SYSV` but is
//! shorter than 13 bytes (`&path[5..13]`). Any user can map such files, so the
//! scan would report an unreadable process (or abort) because of them. This
//! parser reads only the fields needed here, from bytes, and never panics.
//!
//! A line is `start-end perms offset major:minor inode` and, for a file
//! mapping, padding spaces and the path. The kernel escapes a newline in the
//! path as `\012`, so one line is one mapping; an unlinked file's path ends in
//! ` (deleted)`.

/// What one mapping refers to, where it can be shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mapped<'a> {
    /// An attached System V segment: `/SYSV<key, 8 hex digits> (deleted)`,
    /// whose inode is the segment id.
    Sysv {
        /// The key in the name (the key the segment was created with: it stays
        /// here when `IPC_RMID` sets the segment's key to 0).
        key: i32,
        /// The segment id.
        shmid: i32,
    },
    /// A mapped file (or device) with this device number and inode.
    File {
        /// `makedev(major, minor)`.
        dev: u64,
        /// The inode.
        ino: u64,
        /// The path as the kernel shows it, ` (deleted)` included.
        path: &'a [u8],
    },
}

/// Parses one line (with or without its newline). Anonymous and special
/// mappings (`[heap]`, `[stack]`, …) and malformed lines give `None`.
pub(crate) fn parse_line(line: &[u8]) -> Option<Mapped<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut rest = line;
    let mut field = || -> Option<&[u8]> {
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        let f = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or(&[]);
        (!f.is_empty()).then_some(f)
    };
    let _range = field()?;
    let _perms = field()?;
    let _offset = field()?;
    let dev = field()?;
    let ino = parse_dec(field()?)?;
    let path = trim_start_spaces(rest);
    if path.is_empty() || path[0] != b'/' {
        return None; // anonymous, [heap], [vdso], …
    }
    if let (Some(key), Ok(shmid)) = (sysv_path(path), i32::try_from(ino)) {
        return Some(Mapped::Sysv { key, shmid });
    }
    let (major, minor) = split_once(dev, b':')?;
    let dev = rustix::fs::makedev(parse_hex(major)?, parse_hex(minor)?);
    Some(Mapped::File { dev, ino, path })
}

/// The key of a System V segment's name, `/SYSV0000abcd (deleted)`.
fn sysv_path(path: &[u8]) -> Option<i32> {
    let rest = path.strip_prefix(b"/SYSV")?;
    let (hex, tail) = (rest.get(..8)?, rest.get(8..)?);
    if tail != b" (deleted)" {
        return None;
    }
    Some(parse_hex(hex)? as i32)
}

fn trim_start_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    s
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

fn parse_dec(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn parse_hex(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(line: &[u8]) -> (u64, u64, Vec<u8>) {
        match parse_line(line) {
            Some(Mapped::File { dev, ino, path }) => (dev, ino, path.to_vec()),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(line)),
        }
    }

    #[test]
    fn posix_object_lines() {
        let (dev, ino, path) =
            file(b"7f5c2fe06000-7f5c2fe0a000 rw-s 00000000 00:1a 1234                       /dev/shm/a b (deleted)\n");
        assert_eq!((dev, ino), (rustix::fs::makedev(0, 0x1a), 1234));
        assert_eq!(path, b"/dev/shm/a b (deleted)");
        // trailing spaces belong to the name; bytes need not be UTF-8
        let (_, _, path) = file(b"7f00-7f01 r--s 00000000 00:1a 5 /dev/shm/x \xff ");
        assert_eq!(path, b"/dev/shm/x \xff ");
        // a major above 0xff, as block devices have
        let (dev, _, _) = file(b"55d0-55d1 r-xp 00001000 103:05 42   /usr/bin/cat");
        assert_eq!(dev, rustix::fs::makedev(0x103, 5));
    }

    #[test]
    fn sysv_lines() {
        let line = b"7f5c2fe06000-7f5c2fe0a000 rw-s 00000000 00:01 393274                     /SYSV00012345 (deleted)";
        assert_eq!(
            parse_line(line),
            Some(Mapped::Sysv {
                key: 0x12345,
                shmid: 393274
            })
        );
        let line = b"7f00-7f01 rw-s 00000000 00:01 7   /SYSVffffffff (deleted)";
        assert_eq!(parse_line(line), Some(Mapped::Sysv { key: -1, shmid: 7 }));
    }

    #[test]
    fn hostile_and_special_lines_do_not_panic() {
        // files that only look like System V segments are plain files
        for path in [
            &b"/SYSV"[..],
            b"/SYSVx",
            b"/SYSV00012345",
            b"/SYSVzzzzzzzz (deleted)",
            b"/SYSV\xff\xff",
        ] {
            let mut line = b"7f00-7f01 rw-s 00000000 00:01 7   ".to_vec();
            line.extend_from_slice(path);
            assert!(matches!(parse_line(&line), Some(Mapped::File { .. })), "{path:?}");
        }
        for line in [
            &b"7f00-7f01 rw-p 00000000 00:00 0 "[..],
            b"7f00-7f01 rw-p 00000000 00:00 0                          [heap]",
            b"7f00-7f01 rw-p 00000000 00:00 0",
            b"",
            b"garbage",
            b"7f00-7f01 rw-s 00000000 zz:zz 1 /dev/shm/x",
            b"7f00-7f01 rw-s 00000000 00:1a notanumber /dev/shm/x",
            b"7f00-7f01 rw-s 00000000 00:01 99999999999 /SYSV00000001 (deleted)",
        ] {
            assert!(
                !matches!(parse_line(line), Some(Mapped::Sysv { .. })),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(
            parse_line(b"7f00-7f01 rw-p 00000000 00:00 0                          [heap]"),
            None
        );
        assert_eq!(parse_line(b"7f00-7f01 rw-s 00000000 zz:zz 1 /dev/shm/x"), None);
    }
}
