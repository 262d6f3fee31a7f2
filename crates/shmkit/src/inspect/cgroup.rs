//! The cgroup memory limit that this process's tmpfs pages count against.
//!
//! Pages of `/dev/shm` are charged to the memory cgroup of the process that
//! first touches them. A container whose limit is smaller than its
//! `/dev/shm` gets OOM kills (or `SIGBUS`) long before `/dev/shm` is full.
//!
//! The cgroup comes from `/proc/self/cgroup` (`0::/path` for cgroup v2,
//! `N:…memory…:/path` for v1), the mount points from `/proc/self/mountinfo`.
//! The limit in force is the smallest of the cgroup's and its ancestors'
//! (`memory.max` for v2, where `max` means none; `memory.limit_in_bytes` for
//! v1, where a number near 2^63 means none).

use std::path::{Path, PathBuf};

/// A limit above this many bytes is the "no limit" of cgroup v1
/// (`PAGE_COUNTER_MAX` pages: 2^63 bytes less a page).
const V1_UNLIMITED: u64 = 1 << 62;

/// The cgroup versions, as they name their files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    V1,
    V2,
}

impl Version {
    /// The file that holds the memory limit.
    fn limit_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        }
    }

    /// The file that holds the memory in use.
    fn usage_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        }
    }
}

/// This process's place in the memory hierarchies, from `/proc/self/cgroup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Membership {
    /// The cgroup v2 path (`0::/path`).
    pub v2: Option<String>,
    /// The path in the cgroup v1 hierarchy that has the memory controller.
    pub v1_memory: Option<String>,
}

/// Parses `/proc/self/cgroup`.
pub(crate) fn parse_proc_cgroup(text: &str) -> Membership {
    let mut m = Membership::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            m.v2 = Some(path.to_owned());
        } else if controllers.split(',').any(|c| c == "memory") {
            m.v1_memory = Some(path.to_owned());
        }
    }
    m
}

/// A cgroup file system mounted somewhere, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub version: Version,
    /// Whether a v1 hierarchy carries the memory controller.
    pub memory: bool,
    /// The directory of the hierarchy that is mounted (`/` usually; a
    /// container may see its own cgroup's path here).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
}

/// The directories whose limit files apply to a process in cgroup `path`
/// of the hierarchy of `version`: the cgroup's own first, then each ancestor
/// up to the mount point. `None` when that hierarchy is not mounted.
pub(crate) fn cgroup_dirs(version: Version, path: &str, mounts: &[Mount]) -> Option<Vec<PathBuf>> {
    let mount = mounts
        .iter()
        .find(|m| m.version == version && (version == Version::V2 || m.memory))?;
    // The path is relative to the hierarchy's root; the mount shows the
    // hierarchy from `mount.root` on.
    let root = mount.root.trim_end_matches('/');
    let rel = match path.strip_prefix(root) {
        Some(rel) if rel.is_empty() || rel.starts_with('/') => rel,
        _ => "",
    };
    let mut dirs = Vec::new();
    let mut dir = mount.mount_point.join(rel.trim_start_matches('/'));
    loop {
        dirs.push(dir.clone());
        if dir == mount.mount_point || !dir.pop() {
            break;
        }
    }
    Some(dirs)
}

/// A limit file's contents: `Some(None)` for no limit, `None` when it
/// cannot be read as a limit.
pub(crate) fn parse_limit(text: &str) -> Option<Option<u64>> {
    let text = text.trim();
    if text == "max" {
        return Some(None);
    }
    let bytes: u64 = text.parse().ok()?;
    Some((bytes <= V1_UNLIMITED).then_some(bytes))
}

/// The cgroup memory limit in force for this process, which the pages of
/// `/dev/shm` and of System V segments count against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryLimit {
    /// No cgroup along the way sets one.
    None,
    /// The smallest limit along the way.
    Bytes {
        /// The limit in bytes.
        limit: u64,
        /// The file that sets it (`memory.max`, or v1's
        /// `memory.limit_in_bytes`).
        file: PathBuf,
        /// The memory that cgroup uses now, if known.
        usage: Option<u64>,
    },
}

/// The smallest limit among `dirs` (each read with `read`), `None` when no
/// limit file could be read at all.
pub(crate) fn effective_limit(
    version: Version,
    dirs: &[PathBuf],
    read: impl Fn(&Path) -> Option<String>,
) -> Option<MemoryLimit> {
    let mut found = None;
    for dir in dirs {
        let file = dir.join(version.limit_file());
        let Some(limit) = read(&file).as_deref().and_then(parse_limit) else {
            continue;
        };
        match (limit, &found) {
            (None, None) => found = Some(MemoryLimit::None),
            (Some(bytes), None | Some(MemoryLimit::None)) => {
                found = Some(limit_at(version, dir, file, bytes, &read));
            }
            (Some(bytes), Some(MemoryLimit::Bytes { limit, .. })) if bytes < *limit => {
                found = Some(limit_at(version, dir, file, bytes, &read));
            }
            _ => {}
        }
    }
    found
}

fn limit_at(
    version: Version,
    dir: &Path,
    file: PathBuf,
    limit: u64,
    read: &impl Fn(&Path) -> Option<String>,
) -> MemoryLimit {
    let usage = read(&dir.join(version.usage_file())).and_then(|t| t.trim().parse().ok());
    MemoryLimit::Bytes { limit, file, usage }
}

/// Reads this process's memory limit; `None` when it cannot be told.
pub(crate) fn memory_limit() -> Option<MemoryLimit> {
    let membership = parse_proc_cgroup(&super::read_text("/proc/self/cgroup")?);
    let mounts = cgroup_mounts();
    let hierarchies = [
        (Version::V2, membership.v2.as_deref()),
        (Version::V1, membership.v1_memory.as_deref()),
    ];
    let mut seen = false;
    for (version, path) in hierarchies {
        let Some(dirs) = path.and_then(|p| cgroup_dirs(version, p, &mounts)) else {
            continue;
        };
        if let Some(limit) = effective_limit(version, &dirs, |p| super::read_text(p)) {
            return Some(limit);
        }
        seen |= dirs.first().is_some_and(|d| d.is_dir());
    }
    // The cgroup exists, but no hierarchy has a limit file for it: the root
    // cgroup, or a v2 tree without the memory controller, limits nothing.
    seen.then_some(MemoryLimit::None)
}

fn cgroup_mounts() -> Vec<Mount> {
    let Ok(infos) = procfs::process::Process::myself().and_then(|p| p.mountinfo()) else {
        return Vec::new();
    };
    infos
        .into_iter()
        .filter_map(|m| {
            let version = match m.fs_type.as_str() {
                "cgroup2" => Version::V2,
                "cgroup" => Version::V1,
                _ => return None,
            };
            Some(Mount {
                version,
                memory: m.super_options.contains_key("memory"),
                root: m.root,
                mount_point: m.mount_point,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn mount(version: Version, memory: bool, root: &str, at: &str) -> Mount {
        Mount {
            version,
            memory,
            root: root.into(),
            mount_point: at.into(),
        }
    }

    #[test]
    fn proc_self_cgroup_of_each_version() {
        let v2 = parse_proc_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n");
        assert_eq!(v2.v2.as_deref(), Some("/user.slice/user-1000.slice/session-2.scope"));
        assert_eq!(v2.v1_memory, None);
        // hybrid, as on this machine: v1 memory controller, empty v2
        let hybrid = parse_proc_cgroup("9:name=systemd:/\n4:memory:/process_api/dcd8\n1:cpu:/\n0::/\n");
        assert_eq!(hybrid.v1_memory.as_deref(), Some("/process_api/dcd8"));
        assert_eq!(hybrid.v2.as_deref(), Some("/"));
        let joined = parse_proc_cgroup("5:cpu,memory:/a\n");
        assert_eq!(joined.v1_memory.as_deref(), Some("/a"));
        assert_eq!(parse_proc_cgroup("junk\n"), Membership::default());
    }

    #[test]
    fn limit_files() {
        assert_eq!(parse_limit("max\n"), Some(None));
        assert_eq!(parse_limit("67108864\n"), Some(Some(64 << 20)));
        assert_eq!(parse_limit("9223372036854771712\n"), Some(None)); // v1: none
        assert_eq!(parse_limit("lots"), None);
    }

    #[test]
    fn dirs_from_leaf_to_mount_point() {
        let v2 = [mount(Version::V2, false, "/", "/sys/fs/cgroup")];
        let dirs = cgroup_dirs(Version::V2, "/system.slice/docker-abc.scope", &v2).unwrap();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/system.slice/docker-abc.scope",
                "/sys/fs/cgroup/system.slice",
                "/sys/fs/cgroup"
            ]
            .map(PathBuf::from)
        );
        // a container that sees its own cgroup mounted as the root
        let v1 = [
            mount(Version::V1, false, "/docker/abc", "/sys/fs/cgroup/cpu"),
            mount(Version::V1, true, "/docker/abc", "/sys/fs/cgroup/memory"),
        ];
        let dirs = cgroup_dirs(Version::V1, "/docker/abc", &v1).unwrap();
        assert_eq!(dirs, [PathBuf::from("/sys/fs/cgroup/memory")]);
        // the hybrid layout of this machine: v1 memory below a tmpfs
        let hybrid = [
            mount(Version::V1, true, "/", "/sys/fs/cgroup/memory"),
            mount(Version::V2, false, "/", "/sys/fs/cgroup/unified"),
        ];
        let dirs = cgroup_dirs(Version::V1, "/process_api/dcd8", &hybrid).unwrap();
        assert_eq!(dirs[0], PathBuf::from("/sys/fs/cgroup/memory/process_api/dcd8"));
        assert_eq!(dirs.last().unwrap(), Path::new("/sys/fs/cgroup/memory"));
        // cgroup namespace: the path is "/" already
        let dirs = cgroup_dirs(Version::V2, "/", &v2).unwrap();
        assert_eq!(dirs, [PathBuf::from("/sys/fs/cgroup")]);
        assert_eq!(cgroup_dirs(Version::V2, "/", &v1), None);
    }

    #[test]
    fn smallest_limit_along_the_way_wins() {
        let files: HashMap<&str, &str> = HashMap::from([
            ("/cg/a/b/memory.max", "max\n"),
            ("/cg/a/memory.max", "1073741824\n"),
            ("/cg/a/memory.current", "4096\n"),
        ]);
        let read = |p: &Path| files.get(p.to_str().unwrap()).map(|s| s.to_string());
        let dirs = ["/cg/a/b", "/cg/a", "/cg"].map(PathBuf::from);
        assert_eq!(
            effective_limit(Version::V2, &dirs, read),
            Some(MemoryLimit::Bytes {
                limit: 1 << 30,
                file: "/cg/a/memory.max".into(),
                usage: Some(4096)
            })
        );
        assert_eq!(effective_limit(Version::V2, &dirs[..1], read), Some(MemoryLimit::None));
        assert_eq!(effective_limit(Version::V2, &dirs[2..], read), None);
    }
}
