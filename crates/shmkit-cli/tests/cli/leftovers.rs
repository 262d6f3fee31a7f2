//! A failed command leaves nothing new: every failure path of `create` and
//! `write --create` ends with no new object, and an object that existed
//! before is still there, unchanged.

use std::fs::File;
use std::path::Path;
use std::process::{Output, Stdio};

use shmkit::sysv::{self, Key, SysvShm};

use crate::common::{assert_code, posix_name, run, shmkit, stderr, sysv_key, TempDir};

fn posix_exists(name: &str) -> bool {
    Path::new(&format!("/dev/shm{name}")).exists()
}

fn sysv_exists(key: Key) -> bool {
    SysvShm::open(key, &sysv::Options::new().read_only(true)).is_ok()
}

/// Runs `shmkit args…` with standard output on `/dev/full`: the command's
/// report cannot be written (ENOSPC), so the command fails after creating.
fn run_to_full_disk(args: &[&str]) -> Output {
    let full = File::options().write(true).open("/dev/full").unwrap();
    shmkit().args(args).stdout(Stdio::from(full)).output().unwrap()
}

#[test]
fn create_posix_failures_leave_nothing() {
    // too large for /dev/shm: fallocate fails after shm_open created it
    let (name, _guard) = posix_name();
    let out = run(&["create", &name, "--size", "1024T"]);
    assert_code(&out, 6);
    assert!(!posix_exists(&name), "{name} left behind");

    // created, then the report cannot be written: with and without --exclusive
    for exclusive in [false, true] {
        let (name, _guard) = posix_name();
        let mut args = vec!["create", &name, "--size", "4K"];
        if exclusive {
            args.push("--exclusive");
        }
        let out = run_to_full_disk(&args);
        assert_code(&out, 1);
        assert!(!posix_exists(&name), "{name} left behind (exclusive: {exclusive})");
    }
}

#[test]
fn create_posix_failures_keep_what_existed() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["create", &name, "--size", "4K"]), 0);
    // another size: refused; exclusive: refused; report unwritable: not ours
    assert!(!run(&["create", &name, "--size", "8K"]).status.success());
    assert_code(&run(&["create", &name, "--size", "4K", "--exclusive"]), 4);
    assert_code(&run_to_full_disk(&["create", &name, "--size", "4K"]), 1);
    assert_eq!(std::fs::metadata(format!("/dev/shm{name}")).unwrap().len(), 4096);
}

#[test]
fn create_sysv_failures_leave_nothing() {
    for exclusive in [false, true] {
        let (key, _guard) = sysv_key();
        let k = key.to_string();
        let mut args = vec!["create", "--sysv", "--key", &k, "--size", "4K"];
        if exclusive {
            args.push("--exclusive");
        }
        let out = run_to_full_disk(&args);
        assert_code(&out, 1);
        assert!(!sysv_exists(key), "{key} left behind (exclusive: {exclusive})");
    }
}

#[test]
fn create_sysv_failures_keep_what_existed() {
    let (key, _guard) = sysv_key();
    let k = key.to_string();
    assert_code(&run(&["create", "--sysv", "--key", &k, "--size", "4K"]), 0);
    assert!(!run(&["create", "--sysv", "--key", &k, "--size", "8K"]).status.success());
    assert_code(&run_to_full_disk(&["create", "--sysv", "--key", &k, "--size", "4K"]), 1);
    assert!(sysv_exists(key));
}

#[test]
fn write_create_posix_failures_leave_nothing() {
    let dir = TempDir::new();
    let missing = dir.path().join("missing").display().to_string();
    // (arguments after the name, exit status)
    let cases: &[(&[&str], i32)] = &[
        (&["--size", "4", "too long text"], 6),
        (&["--size", "4K", "--offset", "4K", "x"], 6),
        (&["--size", "4K", "--offset", "1T", "x"], 6),
        (&["--size", "1024T", "x"], 6),
        (&["--size", "4K", "--file", &missing], 1),
    ];
    for (rest, code) in cases {
        let (name, _guard) = posix_name();
        let mut args = vec!["write", &name, "--create"];
        args.extend_from_slice(rest);
        let out = run(&args);
        assert_code(&out, *code);
        assert!(!posix_exists(&name), "{args:?} left {name} behind");
    }
    let (name, _guard) = posix_name();
    let out = run_to_full_disk(&["write", &name, "--create", "--size", "4K", "x"]);
    assert_code(&out, 1);
    assert!(!posix_exists(&name), "{name} left behind when the report failed");
}

#[test]
fn write_create_sysv_failures_leave_nothing() {
    let cases: &[(&[&str], i32)] = &[
        (&["--size", "4", "too long text"], 6),
        (&["--size", "4K", "--offset", "4K", "x"], 6),
    ];
    for (rest, code) in cases {
        let (key, _guard) = sysv_key();
        let target = format!("key:{key}");
        let mut args = vec!["write", &target, "--create"];
        args.extend_from_slice(rest);
        let out = run(&args);
        assert_code(&out, *code);
        assert!(!sysv_exists(key), "{args:?} left {key} behind");
    }
    let (key, _guard) = sysv_key();
    let target = format!("key:{key}");
    let out = run_to_full_disk(&["write", &target, "--create", "--size", "4K", "x"]);
    assert_code(&out, 1);
    assert!(!sysv_exists(key), "{key} left behind when the report failed");
    // an id names an existing segment: a usage error, nothing made
    let out = run(&["write", "id:2147483647", "--create", "--size", "4K", "x"]);
    assert_code(&out, 2);
}

#[test]
fn write_create_failures_keep_what_existed() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["write", &name, "--create", "--size", "4K", "kept"]), 0);
    let out = run(&["write", &name, "--create", "--size", "4K", "--offset", "4095", "no"]);
    assert_code(&out, 6);
    assert!(stderr(&out).contains("do not fit"), "{}", stderr(&out));
    let out = run(&["read", &name]);
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), "kept");

    let (key, _guard) = sysv_key();
    let target = format!("key:{key}");
    assert_code(&run(&["write", &target, "--create", "--size", "4K", "kept"]), 0);
    assert_code(
        &run(&["write", &target, "--create", "--size", "4K", "--offset", "4095", "no"]),
        6,
    );
    assert!(sysv_exists(key));
}
