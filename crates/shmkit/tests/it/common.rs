//! Shared test helpers: unique names and keys, cleanup guards that run on
//! failure too, and child processes (this test binary, re-run in a role).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use shmkit::posix::{self, ShmName};
use shmkit::sysv::{self, Key};

/// The environment variable that tells a re-run test binary its role.
pub const ROLE_ENV: &str = "SHMKIT_TEST_ROLE";
/// The environment variable holding the role's arguments, `\x1f`-separated.
pub const ARGS_ENV: &str = "SHMKIT_TEST_ARGS";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// `/shmkit-test-<pid>-<tag>-<n>`: unique across parallel tests and test
/// binaries; the tag (from the clock, once per process) keeps a process
/// that got the pid of an earlier, killed test run off what that run left.
pub fn unique_name() -> ShmName {
    static TAG: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let tag = *TAG.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (now.subsec_nanos() ^ now.as_secs() as u32) & 0xffff
    });
    ShmName::new(format!("/shmkit-test-{}-{tag:04x}-{}", std::process::id(), next())).unwrap()
}

/// A System V key unique to this process and call: the pid's 22 bits and a
/// 10-bit counter, scrambled by a constant so the keys stay away from small
/// numbers people pick by hand. Creating with it is exclusive in the tests,
/// so a collision with a stranger's key fails loudly instead of sharing.
pub fn unique_key() -> Key {
    loop {
        let raw = ((std::process::id() << 10) | (next() & 0x3ff)) ^ 0x5300_0000;
        if raw != 0 {
            return Key::new(raw as i32);
        }
    }
}

/// Removes a POSIX object when dropped, whether the test passed or not,
/// and what a failed test may have left beside it: its bells and lives
/// (`<name>.bell<i>.<ino>`, `<name>.life<i>.<ino>`; a passing test leaves
/// none, which the tests check).
pub struct PosixGuard(pub ShmName);

impl Drop for PosixGuard {
    fn drop(&mut self) {
        let _ = posix::remove(&self.0);
        let prefix = format!("{}.", self.0.file_name());
        if let Ok(dir) = std::fs::read_dir("/dev/shm") {
            for entry in dir.flatten() {
                if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// A unique name and the guard that removes whatever ends up under it.
pub fn posix_name() -> (ShmName, PosixGuard) {
    let name = unique_name();
    (name.clone(), PosixGuard(name))
}

/// Removes a System V segment (by id) when dropped.
pub struct SysvGuard(pub i32);

impl Drop for SysvGuard {
    fn drop(&mut self) {
        let _ = sysv::remove_id(self.0);
    }
}

/// Whether this process runs as root (tests that drop privileges need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A command that re-runs this test binary as a child in `role`.
///
/// The child runs `child::main`, which dispatches on the role (see
/// `child.rs`). It reports with lines starting with `@` on stdout.
pub fn child(role: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child::main",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env(ROLE_ENV, role)
    .env(ARGS_ENV, args.join("\x1f"));
    cmd
}

/// Runs a child to the end and returns its `@` lines (without the `@`),
/// failing the test if the child failed.
pub fn run_child(role: &str, args: &[&str]) -> Vec<String> {
    let out = child(role, args).output().unwrap();
    assert!(out.status.success(), "child {role} failed: {}", describe(&out));
    at_lines(&String::from_utf8_lossy(&out.stdout))
}

/// The `@` lines of a child's output, without the `@`.
pub fn at_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix('@').map(str::to_owned))
        .collect()
}

/// Status, stdout and stderr of a finished process, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A child that runs until its standard input closes; killed if the test
/// fails first.
pub struct LiveChild {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl LiveChild {
    /// Starts `role` with piped stdin and stdout.
    pub fn spawn(role: &str, args: &[&str]) -> LiveChild {
        LiveChild::from_command(child(role, args))
    }

    /// Starts `cmd` (a [`child`] command, or one that runs it, such as
    /// `unshare`) with piped stdin and stdout.
    pub fn from_command(mut cmd: Command) -> LiveChild {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        LiveChild { child, stdin, stdout }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the child's output up to its next `@` line and returns that
    /// line (without the `@`).
    pub fn expect_line(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "child ended before reporting");
            if let Some(rest) = line.trim_end().strip_prefix('@') {
                return rest.to_owned();
            }
        }
    }

    /// Sends one line to the child.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes the child's stdin and waits for it to succeed.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }
}

impl Drop for LiveChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The bells and lives (`core::doorbell`) of the object `name` in
/// `/dev/shm` now.
pub fn fifos_of(name: &ShmName) -> Vec<String> {
    let bell = format!("{}.bell", name.file_name());
    let life = format!("{}.life", name.file_name());
    std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&bell) || n.starts_with(&life))
        .collect()
}

/// Runs the child `role` (`role NAME 1000`: a thousand connect, poll,
/// close cycles on the object `NAME` or on `NAME-0` … `NAME-999`, then
/// `@fds BEFORE AFTER`) and checks that it leaked no descriptor and left no
/// object, bell or life behind.
pub fn check_descriptor_cycles(role: &str, name: &ShmName) {
    let lines = run_child(role, &[name.as_str(), "1000"]);
    let counts: Vec<usize> = lines[0]
        .strip_prefix("fds ")
        .unwrap()
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts[0], counts[1], "open descriptors before and after 1000 cycles");
    let each = [0, 499, 999].map(|i| ShmName::new(format!("{}-{i}", name.as_str())).unwrap());
    for n in std::iter::once(name).chain(&each) {
        assert!(fifos_of(n).is_empty(), "a bell or life of {n} was left");
        assert!(std::fs::symlink_metadata(format!("/dev/shm/{}", n.file_name())).is_err());
    }
}
