//! `shmkit put` and `shmkit get`: latest values between real processes.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

fn gone(name: &str) -> bool {
    !std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

#[test]
fn put_then_get_after_put_exited() {
    let (name, _guard) = posix_name();
    let out = run(&["put", &name, "mode=auto"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "");
    // put has exited: the value is kept
    let out = run(&["get", &name]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "mode=auto\n");
    // a later put writes it again
    assert_code(&run(&["put", &name, "mode=manual"]), 0);
    assert_eq!(stdout(&run(&["get", &name])), "mode=manual\n");
    let out = run(&["stat", &name]);
    assert_code(&out, 0);
    // kept, so nobody uses it on purpose: not stale for ls and rm
    let all: serde_json::Value = serde_json::from_slice(&run(&["ls", "--json"]).stdout).unwrap();
    let entry = all
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name.as_str())
        .expect("listed");
    assert_eq!(
        (entry["pattern"].as_str(), entry["kept"].as_bool()),
        (Some("latest-value"), Some(true))
    );
    let stale = stdout(&run(&["ls", "--stale", "--posix"]));
    assert!(!stale.contains(name.as_str()), "{stale}");
    let dry = run(&["rm", "--stale", "--dry-run"]);
    assert!(!stdout(&dry).contains(name.as_str()), "{}", stdout(&dry));
    assert!(!gone(&name));
    let st: serde_json::Value = serde_json::from_slice(&run(&["stat", &name, "--json"]).stdout).unwrap();
    let v = &st["latest_value"];
    assert_eq!(
        (v["version"].as_u64(), v["len"].as_u64(), v["keep"].as_bool()),
        (Some(2), Some(11), Some(true)),
        "{st:#}"
    );
    assert_eq!(
        (v["writer"]["role"].as_str(), v["writer"]["closed"].as_bool()),
        (Some("writer"), Some(true))
    );
    assert!(stdout(&run(&["stat", &name])).contains("kept on purpose"));
}

#[test]
fn standard_input_byte_for_byte_and_raw() {
    let (name, _guard) = posix_name();
    // 6000 bytes of every value, more than the default 4K: the new object fits it
    let bytes: Vec<u8> = (0..6000u32).map(|i| (i * 7) as u8).collect();
    let mut put = shmkit()
        .args(["put", &name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    put.stdin.take().unwrap().write_all(&bytes).unwrap();
    assert_code(&put.wait_with_output().unwrap(), 0);
    let out = run(&["get", &name, "--raw"]);
    assert_code(&out, 0);
    assert_eq!(out.stdout, bytes);
    // text that ends with a newline gets no second one
    assert_code(&run(&["put", &name, "line\n"]), 0);
    assert_eq!(stdout(&run(&["get", &name])), "line\n");
}

#[test]
fn a_value_too_large_exits_6_and_an_explicit_size_must_match() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["put", &name, "--size", "4", "four"]), 0);
    let out = run(&["put", &name, "five!"]);
    assert_code(&out, 6);
    assert!(stderr(&out).contains("longer than"), "{}", stderr(&out));
    assert_eq!(stdout(&run(&["get", &name])), "four\n", "nothing was written");
    let out = run(&["put", &name, "--size", "8", "x"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("capacity conflict"), "{}", stderr(&out));
}

#[test]
fn get_wait_is_woken_by_a_later_put() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["put", &name, "v1"]), 0);
    let mut get = shmkit()
        .args(["get", &name, "--wait", "--timeout", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep putting new values until get has one: the first may come before
    // get has seen v1 (then it waits for the next).
    let start = Instant::now();
    let mut n = 2;
    let out = loop {
        std::thread::sleep(Duration::from_millis(100));
        assert_code(&run(&["put", &name, &format!("v{n}")]), 0);
        n += 1;
        std::thread::sleep(Duration::from_millis(100));
        // (the status is kept for `wait_with_output`)
        if get.try_wait().unwrap().is_some() {
            break get.wait_with_output().unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "get --wait never woke");
    };
    assert_code(&out, 0);
    let got = stdout(&out);
    assert!(got.starts_with('v') && got != "v1\n", "{got:?}");
}

#[test]
fn get_wait_for_a_value_not_yet_created() {
    let (name, _guard) = posix_name();
    let mut get = shmkit()
        .args(["get", &name, "--wait", "--timeout", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the object may be made before get looks: it then waits for a newer
    // value, so keep putting
    let start = Instant::now();
    let out = loop {
        std::thread::sleep(Duration::from_millis(150));
        assert_code(&run(&["put", &name, "first"]), 0);
        // (the status is kept for `wait_with_output`)
        if get.try_wait().unwrap().is_some() {
            break get.wait_with_output().unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "get --wait never woke");
    };
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "first\n");
}

#[test]
fn get_timeout_exits_9_and_a_missing_value_exits_3() {
    let (name, _guard) = posix_name();
    let out = run(&["get", &name]);
    assert_code(&out, 3);
    assert!(stderr(&out).contains("no such segment"), "{}", stderr(&out));
    assert!(gone(&name), "get made nothing");
    let out = run(&["get", &name, "--wait", "--timeout", "100ms"]);
    assert_code(&out, 9);
    assert!(gone(&name));
    assert_code(&run(&["put", &name, "there"]), 0);
    let out = run(&["get", &name, "--wait", "--timeout", "200ms"]);
    assert_code(&out, 9);
    assert!(
        stderr(&out).contains("timed out waiting for a newer value"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    // get with a timeout but no --wait prints what is there
    assert_eq!(stdout(&run(&["get", &name, "--timeout", "1s"])), "there\n");
}

#[test]
fn rm_removes_a_kept_value() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["put", &name, "kept"]), 0);
    assert!(!gone(&name));
    assert_code(&run(&["rm", &name]), 0);
    assert!(gone(&name));
    assert_code(&run(&["get", &name]), 3);
}

#[test]
fn put_and_get_refuse_other_kinds() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["create", &name, "--size", "8K"]), 0);
    let out = run(&["get", &name]);
    assert_code(&out, 7);
    let out = run(&["put", &name, "x"]);
    assert_code(&out, 7);
    assert!(stderr(&out).contains("not a shmkit latest-value"), "{}", stderr(&out));
}

/// Ctrl-C ends a waiting `get --wait` with the status of SIGINT (130), and
/// leaves the kept value alone.
#[test]
fn a_signal_ends_get_wait_with_its_status() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["put", &name, "stays"]), 0);
    let get = shmkit()
        .args(["get", &name, "--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the handlers are installed early; a signal before that would kill it
    // with the same status anyway
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(get.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let out = get.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert_eq!(stdout(&run(&["get", &name])), "stays\n");
}
