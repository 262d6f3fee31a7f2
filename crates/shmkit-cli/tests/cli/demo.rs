//! `shmkit --help`, `--version`, usage errors and `shmkit demo`.

use crate::common::{shmkit, stdout};

/// Objects in `/dev/shm` and System V keys the demo run with `pid` would use.
fn demo_leftovers(pid: u32) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n == &format!("shmkit-demo-{pid}") || n == &format!("shmkit-demo-{pid}-chan"))
        .collect();
    let key_file = std::env::temp_dir().join(format!("shmkit-demo-{pid}.key"));
    if key_file.exists() {
        left.push(key_file.display().to_string());
    }
    left
}

#[test]
fn help_shows_an_example_and_the_exit_codes() {
    let out = shmkit().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("shmkit demo"), "{text}");
    assert!(text.contains("3 not found"), "{text}");
    assert!(text.contains("Usage: shmkit"), "{text}");
}

#[test]
fn version_is_the_crate_version() {
    let out = shmkit().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), format!("shmkit {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2() {
    let out = shmkit().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = shmkit().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn demo_runs_both_pairs_and_leaves_nothing() {
    let child = shmkit()
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let readers: Vec<_> = text
        .lines()
        .filter(|l| *l == "from writer: This is writer!!!")
        .collect();
    assert_eq!(readers.len(), 2, "one line per kind:\n{text}");
    assert!(text.contains("== POSIX shared memory"), "{text}");
    assert!(text.contains("== System V shared memory"), "{text}");
    assert!(text.contains("1000000 messages in order"), "{text}");
    assert!(demo_leftovers(pid).is_empty(), "{:?}", demo_leftovers(pid));
    // the System V segment is gone too: its id was printed by the writer
    let id: i32 = text
        .split("gave id ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(matches!(
        shmkit::sysv::SysvShm::from_id(id),
        Err(shmkit::Error::NotFound { .. })
    ));
}

#[test]
fn two_demos_run_at_once() {
    let a = shmkit()
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = shmkit()
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout(&out).matches("from writer: This is writer!!!").count(), 2);
    }
}

#[test]
fn failed_step_exits_with_its_code_and_one_line() {
    // A reader step for an object that does not exist: the step's own
    // error, in the one-line form, with the not-found exit code.
    let name = format!("/shmkit-test-cli-{}", std::process::id());
    let out = shmkit().args(["demo-step", "posix-read", &name]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("shmkit: {name}: no such segment\n")
    );
}

#[test]
fn demo_into_a_closed_pipe_ends_quietly_and_cleans_up() {
    use std::io::BufRead;
    let mut child = shmkit()
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // the reader is dropped here, as `shmkit demo | head -1` does
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    assert!(demo_leftovers(pid).is_empty(), "{:?}", demo_leftovers(pid));
}
