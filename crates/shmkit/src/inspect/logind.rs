//! systemd-logind's `RemoveIPC=` setting.
//!
//! With `RemoveIPC=yes`, logind removes every System V segment and POSIX
//! object (and semaphore, message queue) owned by a user when that user's
//! last session ends, unless the user is a system user (uid up to
//! `SYS_UID_MAX`, usually 999) or root. systemd's built-in default is `yes`
//! (the commented `#RemoveIPC=yes` in the shipped `logind.conf` shows it).
//!
//! The setting is read as systemd does: the main file (the first of
//! `/etc/systemd/logind.conf`, `/run/systemd/logind.conf`,
//! `/usr/local/lib/systemd/logind.conf`, `/usr/lib/systemd/logind.conf`),
//! then the drop-ins `logind.conf.d/*.conf` of those directories in the
//! order of their file names (a name in `/etc` hides the same name further
//! down); the last assignment in a `[Login]` section wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The directories systemd reads configuration from, most important first.
const CONFIG_DIRS: [&str; 4] = [
    "/etc/systemd",
    "/run/systemd",
    "/usr/local/lib/systemd",
    "/usr/lib/systemd",
];

/// `RemoveIPC=` as configured: the value and the file that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub remove_ipc: bool,
    pub file: PathBuf,
}

/// The last `RemoveIPC=` in the `[Login]` sections of `files`, which are
/// given in the order systemd applies them. `None` when none sets it.
pub(crate) fn remove_ipc(files: &[(PathBuf, String)]) -> Option<Setting> {
    let mut found = None;
    for (file, text) in files {
        let mut in_login = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if line.starts_with('[') {
                in_login = line == "[Login]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if in_login && key.trim() == "RemoveIPC" {
                if let Some(remove_ipc) = parse_bool(value.trim()) {
                    found = Some(Setting {
                        remove_ipc,
                        file: file.clone(),
                    });
                }
            }
        }
    }
    found
}

/// A systemd boolean.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

/// The configuration files in the order systemd applies them, read from
/// below `root` (`/` for this machine).
pub(crate) fn config_files(root: &Path) -> Vec<(PathBuf, String)> {
    let under = |p: &str| root.join(p.trim_start_matches('/'));
    let mut files = Vec::new();
    if let Some((path, text)) = CONFIG_DIRS
        .iter()
        .map(|d| under(d).join("logind.conf"))
        .find_map(|p| Some((p.clone(), std::fs::read_to_string(&p).ok()?)))
    {
        files.push((path, text));
    }
    // Drop-ins by file name; the first directory that has a name wins.
    let mut dropins: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
    for dir in CONFIG_DIRS {
        let Ok(entries) = std::fs::read_dir(under(dir).join("logind.conf.d")) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if Path::new(&name).extension().is_some_and(|x| x == "conf") {
                dropins.entry(name).or_insert_with(|| e.path());
            }
        }
    }
    for path in dropins.into_values() {
        if let Ok(text) = std::fs::read_to_string(&path) {
            files.push((path, text));
        }
    }
    files
}

/// Whether systemd runs as the init system here (its own test, `sd_booted`).
pub(crate) fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        list.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect()
    }

    #[test]
    fn reads_remove_ipc() {
        let shipped = "[Login]\n#KillUserProcesses=no\n#RemoveIPC=yes\n";
        assert_eq!(remove_ipc(&files(&[("/etc/systemd/logind.conf", shipped)])), None);
        let set = "[Login]\n  RemoveIPC = no \n";
        assert_eq!(
            remove_ipc(&files(&[("/etc/systemd/logind.conf", set)])),
            Some(Setting {
                remove_ipc: false,
                file: "/etc/systemd/logind.conf".into()
            })
        );
        // a drop-in overrides the main file; a later drop-in the earlier one
        let all = files(&[
            ("/etc/systemd/logind.conf", "[Login]\nRemoveIPC=no\n"),
            ("/etc/systemd/logind.conf.d/10-a.conf", "[Login]\nRemoveIPC=yes\n"),
            (
                "/etc/systemd/logind.conf.d/20-b.conf",
                "[Login]\n; RemoveIPC=no\nRemoveIPC=off\n",
            ),
        ]);
        let s = remove_ipc(&all).unwrap();
        assert!(!s.remove_ipc);
        assert_eq!(s.file, Path::new("/etc/systemd/logind.conf.d/20-b.conf"));
        // only the [Login] section counts; unreadable values are ignored
        let other = "[Other]\nRemoveIPC=yes\n[Login]\nRemoveIPC=maybe\n";
        assert_eq!(remove_ipc(&files(&[("x", other)])), None);
    }

    #[test]
    fn finds_files_as_systemd_does() {
        let root = std::env::temp_dir().join(format!("shmkit-logind-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let write = |p: &str, text: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("usr/lib/systemd/logind.conf", "[Login]\nRemoveIPC=yes\n");
        write("usr/lib/systemd/logind.conf.d/50-x.conf", "[Login]\nRemoveIPC=yes\n");
        write("etc/systemd/logind.conf.d/50-x.conf", "[Login]\nRemoveIPC=no\n");
        write("etc/systemd/logind.conf.d/README", "[Login]\nRemoveIPC=yes\n");
        let found = config_files(&root);
        let names: Vec<_> = found
            .iter()
            .map(|(p, _)| p.strip_prefix(&root).unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            ["usr/lib/systemd/logind.conf", "etc/systemd/logind.conf.d/50-x.conf"].map(PathBuf::from)
        );
        assert_eq!(remove_ipc(&found).map(|s| s.remove_ipc), Some(false));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
