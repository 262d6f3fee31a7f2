//! `send` and `recv` with many senders and one receiver (`--senders N`).

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{assert_code, posix_name, shmkit, stderr, stdout};

fn gone(name: &str) -> bool {
    !std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

fn spawn(args: &[&str]) -> std::process::Child {
    shmkit()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_object(name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while gone(name) {
        assert!(std::time::Instant::now() < deadline, "{name} never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `count` lines `<tag> <n>`.
fn lines(tag: &str, count: usize) -> String {
    (0..count).map(|n| format!("{tag} {n}\n")).collect()
}

#[test]
fn two_sends_into_one_recv_with_two_senders() {
    let (name, _guard) = posix_name();
    let rx = spawn(&["recv", &name, "--senders", "2", "--timeout", "20s"]);
    wait_for_object(&name);
    // stat: the receiver, two seats nobody has used yet
    let st: serde_json::Value =
        serde_json::from_slice(&shmkit().args(["stat", &name, "--json"]).output().unwrap().stdout).unwrap();
    let m = &st["many_to_one"];
    assert_eq!(
        (st["pattern"].as_str(), m["owner"]["role"].as_str()),
        (Some("many-to-one"), Some("receiver")),
        "{st:#}"
    );
    assert_eq!(m["seats"].as_array().map(Vec::len), Some(2), "{st:#}");
    assert!(stdout(&shmkit().args(["stat", &name]).output().unwrap()).contains("a shmkit many-to-one: 2 sender seats"));
    // read its output meanwhile: it is larger than a pipe holds
    let rx = std::thread::spawn(move || rx.wait_with_output().unwrap());
    let mut senders: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            let mut tx = spawn(&["send", &name, "--timeout", "20s"]);
            let input = lines(tag, 20_000);
            let mut stdin = tx.stdin.take().unwrap();
            std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
            tx
        })
        .collect();
    for tx in senders.drain(..) {
        assert_code(&tx.wait_with_output().unwrap(), 0);
    }
    let out = rx.join().unwrap();
    assert_code(&out, 0);
    let text = stdout(&out);
    for tag in ["a", "b"] {
        // every line of each sender, whole, in its order
        let got: Vec<&str> = text.lines().filter(|l| l.starts_with(&format!("{tag} "))).collect();
        let want = lines(tag, 20_000);
        assert_eq!(got, want.lines().collect::<Vec<_>>(), "sender {tag}");
    }
    assert_eq!(text.lines().count(), 40_000, "nothing else, no mixed line");
    assert!(gone(&name));
}

#[test]
fn a_send_that_starts_first_says_senders_and_recv_finds_the_kind() {
    let (name, _guard) = posix_name();
    let mut tx = spawn(&["send", &name, "--senders", "1", "--timeout", "20s"]);
    tx.stdin
        .take()
        .unwrap()
        .write_all(b"first\nlast line without newline")
        .unwrap();
    wait_for_object(&name);
    let out = shmkit().args(["recv", &name, "--timeout", "20s"]).output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "first\nlast line without newline");
    assert_code(&tx.wait_with_output().unwrap(), 0);
    assert!(gone(&name));
}

#[test]
fn recv_exits_8_when_a_sender_is_killed_and_9_when_nobody_sends() {
    let (name, _guard) = posix_name();
    let rx = spawn(&["recv", &name, "--senders", "1", "--timeout", "20s"]);
    wait_for_object(&name);
    let mut tx = spawn(&["send", &name]);
    tx.stdin.as_mut().unwrap().write_all(b"one line\n").unwrap();
    // killed once the receiver has taken the line
    let shm_name = shmkit::posix::ShmName::new(name.as_str()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while shmkit::many_to_one::info(&shm_name).map_or(0, |i| i.messages_received()) == 0 {
        assert!(std::time::Instant::now() < deadline, "the line never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    tx.kill().unwrap();
    tx.wait().unwrap();
    let out = rx.wait_with_output().unwrap();
    assert_code(&out, 8);
    assert_eq!(stdout(&out), "one line\n", "what it sent before dying");
    assert!(gone(&name));

    let (name, _guard) = posix_name();
    let out = shmkit()
        .args(["recv", &name, "--senders", "2", "--timeout", "200ms"])
        .output()
        .unwrap();
    assert_code(&out, 9);
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(gone(&name));
}
