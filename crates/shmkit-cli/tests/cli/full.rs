//! Full memory and exhausted limits, in private namespaces so the machine's
//! own /dev/shm and System V limits are untouched: creation fails at once
//! with exit code 6 and a message naming the limit, never with SIGBUS later;
//! a sparse object that cannot be backed is exit code 7, not SIGBUS.

use std::process::Command;

use crate::common::*;

/// Runs `script` (with `$S` the shmkit binary) in new mount and IPC
/// namespaces, or says why it cannot.
fn in_namespaces(script: &str) -> Option<std::process::Output> {
    if !is_root() {
        eprintln!("skipped: needs root to mount a tmpfs in a private mount namespace");
        return None;
    }
    if !have("unshare") {
        return None;
    }
    let bin = assert_cmd::cargo::cargo_bin("shmkit");
    let out = Command::new("unshare")
        .args(["-m", "-i", "--propagation", "private", "sh", "-c"])
        .arg(format!("S={}; {script}", bin.display()))
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    if String::from_utf8_lossy(&out.stderr).contains("unshare failed") {
        eprintln!("skipped: this machine does not allow new namespaces: {}", stderr(&out));
        return None;
    }
    Some(out)
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn a_full_dev_shm_fails_at_creation_with_6() {
    let Some(out) = in_namespaces(
        "mount -t tmpfs -o size=1M tmpfs /dev/shm || exit 99
         $S create /big --size 2M; echo \"create=$?\"
         $S write /big2 --create --size 2M x; echo \"write=$?\"
         $S send /chan --capacity 4M --timeout 1s </dev/null; echo \"send=$?\"
         $S create /fits --size 512K >/dev/null; echo \"fits=$?\"
         truncate -s 2M /dev/shm/sparse
         for i in 0 1 2 3 4 5 6 7 8 9; do
           $S write /sparse --offset ${i}00000 \"$(head -c 100000 /dev/zero | tr '\\0' x)\" >/dev/null \
             || { echo \"sparse=$?\"; break; }
         done; rm /dev/shm/sparse
         ls -A /dev/shm",
    ) else {
        return;
    };
    let text = stdout(&out);
    assert!(!text.contains("99"), "mount failed: {}", stderr(&out));
    // A sparse object made by another program (no space reserved) fills
    // the tmpfs on a write: exit 7 ("ran out of space"), not SIGBUS.
    for line in ["create=6", "write=6", "send=6", "fits=0", "sparse=7"] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing:\n{text}\n{}",
            stderr(&out)
        );
    }
    assert_eq!(
        text.lines().last(),
        Some("fits"),
        "only the object that fits exists:\n{text}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("shmkit: /big: not enough space for 2097152 bytes (free space in /dev/shm = 1048576)"),
        "{err}"
    );
    assert!(err.contains("shmkit: /chan: not enough space"), "{err}");
    assert!(err.contains("shmkit: /sparse: the object shrank while mapped here (another process truncated it, or /dev/shm ran out of space)"), "{err}");
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn system_v_limits_are_named_with_their_values() {
    let Some(out) = in_namespaces(
        "echo 1048576 > /proc/sys/kernel/shmmax || exit 99
         $S create --sysv --private --size 2M; echo \"shmmax=$?\"
         echo 1 > /proc/sys/kernel/shmmni
         $S create --sysv --private --size 4K >/dev/null; echo \"first=$?\"
         $S create --sysv --private --size 4K; echo \"second=$?\"",
    ) else {
        return;
    };
    let text = stdout(&out);
    for line in ["shmmax=6", "first=0", "second=6"] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing:\n{text}\n{}",
            stderr(&out)
        );
    }
    let err = stderr(&out);
    assert!(
        err.contains("size 2097152 is outside the allowed range (SHMMAX = 1048576)"),
        "{err}"
    );
    assert!(err.contains("(SHMMNI = 1)"), "{err}");
}
