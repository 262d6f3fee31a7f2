//! `serve` and `call`: a service answered by a command.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{assert_code, posix_name, shmkit, stderr, stdout};

fn gone(name: &str) -> bool {
    !std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

/// `shmkit serve NAME -- CMD…`, killed when dropped.
struct Serve(Option<Child>, String);

impl Serve {
    fn start(name: &str, cmd: &[&str]) -> Serve {
        let mut args = vec!["serve", name, "--"];
        args.extend_from_slice(cmd);
        let child = shmkit()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while gone(name) {
            assert!(std::time::Instant::now() < deadline, "serve never made {name}");
            std::thread::sleep(Duration::from_millis(5));
        }
        Serve(Some(child), name.to_owned())
    }

    /// Kills it with SIGKILL.
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it with SIGTERM; it exits with 143 and removes the service.
    fn stop(mut self) {
        let child = self.0.take().unwrap();
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 143);
        assert!(gone(&self.1), "the server removed its service");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn serve_tr_answers_call_with_the_upper_cased_text() {
    let (name, _guard) = posix_name();
    let server = Serve::start(&name, &["tr", "a-z", "A-Z"]);
    let out = shmkit().args(["call", &name, "hello, world"]).output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "HELLO, WORLD\n");
    // standard input, as it is, and several calls in a row
    for text in ["one", "two", "three"] {
        let mut call = shmkit()
            .args(["call", &name, "--timeout", "20s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut call.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let out = call.wait_with_output().unwrap();
        assert_code(&out, 0);
        assert_eq!(stdout(&out), text.to_uppercase());
    }
    // stat: the server alive, the clients' seats with their counts
    let st: serde_json::Value =
        serde_json::from_slice(&shmkit().args(["stat", &name, "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(st["pattern"], "service", "{st:#}");
    let svc = &st["service"];
    assert_eq!(
        (svc["owner"]["role"].as_str(), svc["owner"]["alive"].as_bool()),
        (Some("server"), Some(true))
    );
    let calls: u64 = svc["seats"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["participant"].is_null())
        .map(|s| {
            assert_eq!(s["participant"]["role"], "client");
            assert_eq!(s["participant"]["closed"], true, "{s:#}");
            s["rings"][0]["messages_sent"].as_u64().unwrap()
        })
        .sum();
    assert!(calls >= 1, "{svc:#}");
    let text = stdout(&shmkit().args(["stat", &name]).output().unwrap());
    assert!(text.contains("a shmkit service: 16 client seats"), "{text}");
    server.stop();
}

#[test]
fn a_failing_command_makes_call_exit_1_with_its_message() {
    let (name, _guard) = posix_name();
    let server = Serve::start(&name, &["sh", "-c", "echo 'no such record' >&2; exit 3"]);
    let out = shmkit()
        .args(["call", &name, "x", "--timeout", "20s"])
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(stderr(&out).contains("no such record"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    server.stop();
}

#[test]
fn call_with_a_timeout_and_no_server_exits_9_and_leaves_nothing() {
    let (name, _guard) = posix_name();
    let out = shmkit()
        .args(["call", &name, "anyone?", "--timeout", "200ms"])
        .output()
        .unwrap();
    assert_code(&out, 9);
    assert!(
        stderr(&out).contains("timed out waiting for a server"),
        "{}",
        stderr(&out)
    );
    assert!(gone(&name));
}

#[test]
fn call_exits_8_when_the_server_dies_while_it_waits() {
    let (name, _guard) = posix_name();
    let mut server = Serve::start(&name, &["sleep", "2"]); // orphaned for at most 2 s
    let call = shmkit()
        .args(["call", &name, "slow", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // killed once it has taken the request (and runs `sleep 2` for it)
    let shm_name = shmkit::posix::ShmName::new(name.as_str()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while shmkit::service::info(&shm_name)
        .map_or(0, |i| i.seats.iter().map(|s| s.rings[0].messages_received).sum::<u64>())
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let out = call.wait_with_output().unwrap();
    assert_code(&out, 8);
    assert!(gone(&name), "the client, last to leave, removed the name");
}
