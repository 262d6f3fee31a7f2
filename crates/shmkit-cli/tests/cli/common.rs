//! Helpers: the binary, unique names and keys, cleanup guards, C programs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use assert_cmd::cargo::CommandCargoExt;
use shmkit::posix::{self, ShmName};
use shmkit::sysv::{self, Key, SysvShm};

/// The `shmkit` binary under test.
pub fn shmkit() -> Command {
    let mut cmd = Command::cargo_bin("shmkit").unwrap();
    cmd.env("LC_ALL", "C");
    cmd
}

/// Runs `shmkit args…` to the end.
pub fn run(args: &[&str]) -> Output {
    shmkit().args(args).output().unwrap()
}

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails unless `out` exited with `code`; shows everything otherwise.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        stdout(out),
        stderr(out)
    );
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Removes a POSIX object when dropped, whether the test passed or not.
pub struct PosixGuard(pub ShmName);

impl Drop for PosixGuard {
    fn drop(&mut self) {
        let _ = posix::remove(&self.0);
    }
}

/// A unique `/shmkit-test-cli-<pid>-<n>` and the guard that removes it.
pub fn posix_name() -> (String, PosixGuard) {
    let name = ShmName::new(format!("/shmkit-test-cli-{}-{}", std::process::id(), next())).unwrap();
    (name.to_string(), PosixGuard(name))
}

/// Removes the System V segment with this key, if any, when dropped.
pub struct KeyGuard(pub Key);

impl Drop for KeyGuard {
    fn drop(&mut self) {
        if let Ok(shm) = SysvShm::open(self.0, &sysv::Options::new().read_only(true)) {
            let _ = shm.remove();
        }
    }
}

/// Removes the System V segment with this id when dropped.
pub struct IdGuard(pub i32);

impl Drop for IdGuard {
    fn drop(&mut self) {
        let _ = sysv::remove_id(self.0);
    }
}

/// A key unique to this process and call (the pid's 22 bits, a counter),
/// and its guard.
pub fn sysv_key() -> (Key, KeyGuard) {
    let raw = ((std::process::id() << 10) | (next() & 0x3ff)) ^ 0x5c00_0000;
    let key = Key::new(raw as i32);
    (key, KeyGuard(key))
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A directory under the temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("shmkit-test-cli-{}-{}", std::process::id(), next()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `tool` is installed; prints why the test is skipped if not.
pub fn have(tool: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: `{tool}` is not installed (CI installs it)");
            false
        }
        Err(e) => panic!("cannot start {tool}: {e}"),
    }
}

/// Compiles the C program in `source` to `dir/name`.
pub fn compile_c(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let src = dir.path().join(format!("{name}.c"));
    let exe = dir.path().join(name);
    std::fs::write(&src, source).unwrap();
    let out = Command::new("cc")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .arg("-lrt")
        .output()
        .unwrap();
    assert!(out.status.success(), "cc: {}", stderr(&out));
    exe
}

/// The classic C programs, shared with the library's interop tests.
pub const C_POSIX_WRITER: &str = include_str!("../../../shmkit/tests/c/posix_writer.c");
pub const C_POSIX_READER: &str = include_str!("../../../shmkit/tests/c/posix_reader.c");

/// Runs a copy of the binary as uid and gid 65534 (root only), in a
/// directory that user can enter, wherever the build lives.
pub fn run_as_nobody(args: &[&str]) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("shmkit");
    std::fs::copy(assert_cmd::cargo::cargo_bin("shmkit"), &exe).unwrap();
    // ETXTBSY: while another test thread forks, its child may hold the
    // descriptor that wrote the copy for an instant; exec again.
    for _ in 0..50 {
        match std::process::Command::new(&exe)
            .args(args)
            .uid(65534)
            .gid(65534)
            .output()
        {
            Err(e) if e.raw_os_error() == Some(26 /* ETXTBSY */) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other.unwrap(),
        }
    }
    panic!("{}: stayed busy (ETXTBSY)", exe.display());
}
