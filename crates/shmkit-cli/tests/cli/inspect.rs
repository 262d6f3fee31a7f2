//! `shmkit stat`, `ls`, `rm`, `limits` and `doctor` against real segments,
//! with real helper processes that map them.
//!
//! The helpers are this test binary run again (`--exact
//! inspect::helper_process`) with `SHMKIT_TEST_HELPER` naming what to map;
//! `rm --stale`, which would remove other tests' objects, runs only in
//! private mount and IPC namespaces.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use serde_json::Value;
use shmkit::posix::{self, PosixShm, ShmName};
use shmkit::sysv::{self, Key, SysvShm};

use crate::common::*;

/// The environment variable that makes `helper_process` a helper.
const ROLE: &str = "SHMKIT_TEST_HELPER";

/// A helper process: maps or attaches a segment and waits until killed or
/// until its standard input closes.
struct Helper {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Helper {
    /// Starts a helper for `role` (`posix:/name`, `sysv:ID`) and waits
    /// until it has the segment mapped.
    fn start(role: &str) -> Helper {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "inspect::helper_process", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // a helper that never gets ready is killed, so that the test fails
        // instead of hanging (unreaped, its pid cannot be reused meanwhile)
        let (ready, ready_rx) = std::sync::mpsc::channel::<()>();
        let pid = rustix::process::Pid::from_child(&child);
        std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = ready_rx.recv_timeout(Duration::from_secs(60)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        });
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("helper {role} ended before it was ready: {:?}", child.wait());
            }
            // the harness prints "test inspect::helper_process ... " before it
            if line.trim_end().ends_with("helper ready") {
                break;
            }
        }
        let _ = ready.send(());
        Helper { child, _stdout: stdout }
    }

    fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }

    /// SIGKILL, and wait until the kernel has let go of its mappings.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test of its own: the helper processes of the tests below. Without
/// `SHMKIT_TEST_HELPER` it does nothing.
#[test]
fn helper_process() {
    let Ok(role) = std::env::var(ROLE) else { return };
    if role == "stale-scenario" {
        return stale_scenario();
    }
    if role == "orphans-scenario" {
        return orphans_scenario();
    }
    if let Some(list) = role.strip_prefix("maps:") {
        // map each object, close its descriptor, keep the mappings
        let mut maps = Vec::new();
        for item in list.split(',') {
            if let Some(name) = item.strip_prefix("posix:") {
                let shm = PosixShm::open(&ShmName::new(name).unwrap(), &posix::Options::new()).unwrap();
                maps.push(shm.map().unwrap());
            } else if let Some(id) = item.strip_prefix("sysv:") {
                maps.push(SysvShm::from_id(id.parse().unwrap()).unwrap().attach().unwrap());
            } else {
                panic!("unknown item {item}");
            }
        }
        println!("helper ready");
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        drop(maps);
        return;
    }
    let (_handle, _map): (Box<dyn std::any::Any>, _) = if let Some(name) = role.strip_prefix("posix:") {
        let shm = PosixShm::open(&ShmName::new(name).unwrap(), &posix::Options::new()).unwrap();
        let map = shm.map().unwrap();
        (Box::new(shm), map)
    } else if let Some(id) = role.strip_prefix("sysv:") {
        let shm = SysvShm::from_id(id.parse().unwrap()).unwrap();
        let map = shm.attach().unwrap();
        (Box::new(shm), map)
    } else {
        panic!("unknown helper role {role}");
    };
    println!("helper ready");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// Standard output as JSON, after checking the exit status is 0.
#[track_caller]
fn json(out: &Output) -> Value {
    assert_code(out, 0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn posix_entry<'a>(all: &'a Value, name: &str) -> Option<&'a Value> {
    all.as_array().unwrap().iter().find(|o| o["name"] == name)
}

fn sysv_entry(all: &Value, id: i32) -> Option<&Value> {
    all.as_array().unwrap().iter().find(|o| o["id"] == id)
}

fn pids(obj: &Value) -> Vec<i64> {
    obj["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["pid"].as_i64().unwrap())
        .collect()
}

fn is_rfc3339(s: &Value) -> bool {
    let b = s.as_str().unwrap_or_default().as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'Z'
}

fn posix_exists(name: &str) -> bool {
    std::path::Path::new(&format!("/dev/shm{name}")).exists()
}

fn sysv_exists(id: i32) -> bool {
    !matches!(SysvShm::from_id(id), Err(shmkit::Error::NotFound { .. }))
}

/// A POSIX object of `size` bytes under a unique name, and its guard.
fn posix_object(size: u64) -> (String, PosixGuard) {
    let (name, guard) = posix_name();
    PosixShm::create(&guard.0, &posix::Options::new().size(size)).unwrap();
    (name, guard)
}

/// A System V segment of 4096 bytes under a unique key: key, id, guard.
fn sysv_segment() -> (Key, i32, KeyGuard) {
    let (key, guard) = sysv_key();
    let shm = SysvShm::create(key, &sysv::Options::new().size(4096)).unwrap();
    (key, shm.id(), guard)
}

#[test]
fn ls_and_stat_list_the_pids_of_helper_processes() {
    let (name, _guard) = posix_object(8192);
    let (key, id, _key_guard) = sysv_segment();
    let posix_user = Helper::start(&format!("posix:{name}"));
    let sysv_user = Helper::start(&format!("sysv:{id}"));

    let all = json(&run(&["ls", "--json"]));
    let p = posix_entry(&all, &name).unwrap_or_else(|| panic!("{name} not in {all:#}"));
    assert_eq!(p["kind"], "posix");
    assert_eq!(
        (p["size"].as_u64(), p["mode_octal"].as_str()),
        (Some(8192), Some("0600"))
    );
    assert!(pids(p).contains(&posix_user.pid()), "{p:#}");
    let u = &p["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["pid"] == posix_user.pid())
        .unwrap();
    assert_eq!(
        (u["mapped"].as_bool(), u["holds_fd"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(p["stale"], false);
    let s = sysv_entry(&all, id).unwrap_or_else(|| panic!("id {id} not in {all:#}"));
    assert_eq!(
        (s["kind"].as_str(), s["key_hex"].as_str()),
        (Some("sysv"), Some(key.to_string().as_str()))
    );
    assert_eq!(s["key"].as_u64(), Some(key.raw() as u32 as u64));
    assert_eq!((s["nattch"].as_u64(), s["stale"].as_bool()), (Some(1), Some(false)));
    assert!(pids(s).contains(&sysv_user.pid()), "{s:#}");
    assert_eq!(s["users_complete"], true, "one attachment, one process seen: {s:#}");

    let p = json(&run(&["stat", &name, "--json"]));
    assert!(pids(&p).contains(&posix_user.pid()), "{p:#}");
    assert!(p.get("channel").is_none(), "a plain object is no channel: {p:#}");
    let s = json(&run(&["stat", &format!("key:{key}"), "--json"]));
    assert_eq!(pids(&s), [sysv_user.pid()]);
    assert_eq!(s["id"], id);
    assert_eq!(
        json(&run(&["stat", &format!("id:{id}"), "--json"]))["key_hex"],
        key.to_string()
    );

    // the table: USERS shows the helper's pid
    let table = stdout(&run(&["ls"]));
    let row = table
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name.as_str()))
        .unwrap_or_else(|| panic!("{name} not in\n{table}"));
    assert!(row.contains(&posix_user.pid().to_string()), "{row}");
    assert!(table.starts_with("KIND "), "{table}");
    // --posix and --sysv list one kind each
    let only_posix = json(&run(&["ls", "--posix", "--json"]));
    assert!(only_posix.as_array().unwrap().iter().all(|o| o["kind"] == "posix"));
    assert!(posix_entry(&only_posix, &name).is_some());
    let only_sysv = json(&run(&["ls", "--sysv", "--json"]));
    assert!(only_sysv.as_array().unwrap().iter().all(|o| o["kind"] == "sysv"));
    assert!(sysv_entry(&only_sysv, id).is_some());
    assert_code(&run(&["ls", "--posix", "--sysv"]), 2);
}

#[test]
fn stat_shows_everything_in_text_and_json() {
    let (name, _guard) = posix_object(4096);
    let (key, id, _key_guard) = sysv_segment();

    let p = json(&run(&["stat", &name, "--json"]));
    assert!(p.is_object());
    assert_eq!(p["kind"], "posix");
    assert_eq!(p["name"], name.as_str());
    for field in [
        "size",
        "resident",
        "mode",
        "uid",
        "gid",
        "dev",
        "inode",
        "age_seconds",
        "user_count",
    ] {
        assert!(p[field].is_u64(), "{field}: {p:#}");
    }
    assert_eq!((p["size"].as_u64(), p["mode"].as_u64()), (Some(4096), Some(0o600)));
    assert!(is_rfc3339(&p["modified"]) && is_rfc3339(&p["changed"]), "{p:#}");
    assert!(p["key"].is_null() && p["id"].is_null() && p["nattch"].is_null());
    // nobody uses it, and the kernel says so, whatever /proc could read
    assert_eq!(
        (p["stale"].as_bool(), p["probe"].as_str()),
        (Some(true), Some("unused")),
        "{p:#}"
    );

    let s = json(&run(&["stat", &format!("id:{id}"), "--json"]));
    assert_eq!(
        (s["kind"].as_str(), s["key_hex"].as_str()),
        (Some("sysv"), Some(key.to_string().as_str()))
    );
    for field in [
        "key",
        "id",
        "size",
        "mode",
        "cuid",
        "cgid",
        "cpid",
        "lpid",
        "nattch",
        "age_seconds",
    ] {
        assert!(s[field].is_number(), "{field}: {s:#}");
    }
    assert_eq!(s["cpid"], std::process::id());
    assert_eq!(s["creator_alive"], true);
    assert_eq!((s["nattch"].as_u64(), s["stale"].as_bool()), (Some(0), Some(true)));
    assert!(is_rfc3339(&s["changed"]), "{s:#}");
    assert!(
        s["attached"].is_null() && s["detached"].is_null(),
        "never attached: {s:#}"
    );
    assert_eq!(s["marked_for_removal"], false);

    let text = stdout(&run(&["stat", &name]));
    for line in [
        "kind       POSIX shared-memory object",
        "size       4096 bytes (4K)",
        "mode       0600",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    assert!(
        text.contains("stale      yes: no process has it open or mapped (the kernel says so)"),
        "{text}"
    );
    let text = stdout(&run(&["stat", &format!("key:{key}")]));
    for line in [
        format!("key        {key}"),
        format!("id         {id}"),
        format!("cpid       {} (still running)", std::process::id()),
        "nattch     0".into(),
        "attached   never".into(),
        "stale      yes: nothing has it attached".into(),
    ] {
        assert!(text.contains(&line), "{line:?} not in\n{text}");
    }
}

#[test]
fn stat_of_missing_and_bad_targets() {
    let (name, _guard) = posix_name();
    let out = run(&["stat", &name]);
    assert_code(&out, 3);
    assert_eq!(stderr(&out), format!("shmkit: {name}: no such segment\n"));
    let out = run(&["stat", "id:2147483647", "--json"]);
    assert_code(&out, 3);
    assert_eq!(stdout(&out), "", "no JSON for a failure");
    let (key, _key_guard) = sysv_key();
    let out = run(&["stat", &format!("key:{key}")]);
    assert_code(&out, 3);
    assert_eq!(stderr(&out), format!("shmkit: key:{key}: no such segment\n"));
    for bad in ["shared", "key:0", "key:zz", "id:-1", "/a/b"] {
        let out = run(&["stat", bad]);
        assert_code(&out, 2);
        assert!(stderr(&out).starts_with("error: "), "{bad}: {}", stderr(&out));
    }
}

#[test]
fn stat_of_a_live_channel_shows_both_sides() {
    use shmkit::channel::{Options, Receiver, Sender};
    let (name, _guard) = posix_name();
    let shm_name = ShmName::new(name.as_str()).unwrap();
    let opts = Options::new().capacity(64 << 10).timeout(Duration::from_secs(30));
    let (got, got_rx) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let receiver = {
        let (name, opts) = (shm_name.clone(), opts.clone());
        std::thread::spawn(move || {
            let mut rx = Receiver::connect(&name, &opts).unwrap();
            for _ in 0..3 {
                rx.recv().unwrap();
            }
            got.send(()).unwrap();
            let _ = release_rx.recv();
        })
    };
    let mut tx = Sender::connect(&shm_name, &opts).unwrap();
    for msg in [&b"one"[..], b"two", b"three", b"four"] {
        tx.send(msg).unwrap();
    }
    got_rx.recv().unwrap(); // three received, "four" in flight

    let s = json(&run(&["stat", &name, "--json"]));
    let c = &s["channel"];
    let me = i64::from(std::process::id());
    assert_eq!(c["capacity"], 64 << 10, "{s:#}");
    assert!(c["max_message"].is_u64());
    assert!(c["bytes_in_flight"].as_u64().unwrap() >= 4, "{c:#}");
    for side in ["sender", "receiver"] {
        assert_eq!(c[side]["pid"], me, "{c:#}");
        assert_eq!(
            (c[side]["alive"].as_bool(), c[side]["closed"].as_bool()),
            (Some(true), Some(false))
        );
    }
    assert_eq!(
        (c["messages_sent"].as_u64(), c["bytes_sent"].as_u64()),
        (Some(4), Some(15))
    );
    assert_eq!(
        (c["messages_received"].as_u64(), c["bytes_received"].as_u64()),
        (Some(3), Some(11))
    );
    assert!(pids(&s).contains(&me), "{s:#}");
    assert_eq!(
        (s["pattern"].as_str(), s["layout_version"].as_u64()),
        (Some("channel"), Some(4))
    );
    let all = json(&run(&["ls", "--json"]));
    let listed = posix_entry(&all, &name).expect("listed");
    assert_eq!(
        (listed["kind"].as_str(), listed["pattern"].as_str()),
        (Some("posix"), Some("channel"))
    );
    let table = stdout(&run(&["ls", "--posix"]));
    let row = table.lines().find(|l| l.contains(name.as_str())).expect("a row");
    assert!(row.starts_with("channel "), "{row}");

    let text = stdout(&run(&["stat", &name]));
    for line in [
        "channel    a shmkit channel: capacity 65536 bytes (64K)".to_owned(),
        format!("sender     pid {me} (alive)"),
        format!("receiver   pid {me} (alive)"),
        "sent       4 messages, 15 bytes".into(),
        "received   3 messages, 11 bytes".into(),
    ] {
        assert!(text.contains(&line), "{line:?} not in\n{text}");
    }
    release.send(()).unwrap();
    receiver.join().unwrap();
    drop(tx);
}

#[test]
fn ls_sysv_shows_an_ipcmk_segment_with_the_key_and_id_of_ipcs() {
    if !have("ipcmk") || !have("ipcs") {
        return;
    }
    let made = Command::new("ipcmk")
        .args(["-M", "4096"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    // "Shared memory id: 7"
    let id: i32 = stdout(&made).trim().rsplit(' ').next().unwrap().parse().unwrap();
    let _guard = IdGuard(id);
    let ipcs = stdout(&Command::new("ipcs").arg("-m").env("LC_ALL", "C").output().unwrap());
    let key = ipcs
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&id.to_string().as_str()))
        .unwrap_or_else(|| panic!("id {id} not in ipcs -m:\n{ipcs}"))[0]
        .to_owned();

    let table = stdout(&run(&["ls", "--sysv"]));
    let row: Vec<&str> = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&id.to_string().as_str()))
        .unwrap_or_else(|| panic!("id {id} not in\n{table}"));
    assert_eq!(
        row[..5],
        ["sysv", &format!("key:{key}"), &id.to_string(), "4K", "0"][..],
        "{table}"
    );
    assert_eq!(row[5], "0644", "ipcmk's default mode: {table}");
    let all = json(&run(&["ls", "--sysv", "--json"]));
    let s = sysv_entry(&all, id).unwrap();
    assert_eq!(
        (s["key_hex"].as_str(), s["size"].as_u64()),
        (Some(key.as_str()), Some(4096))
    );
}

#[test]
fn ls_stale_lists_what_a_killed_user_left_and_rm_dry_run_keeps_it() {
    let (name, _guard) = posix_object(4096);
    let (key, id, _key_guard) = sysv_segment();
    let posix_user = Helper::start(&format!("posix:{name}"));
    let sysv_user = Helper::start(&format!("sysv:{id}"));

    let stale = json(&run(&["ls", "--stale", "--json"]));
    assert!(sysv_entry(&stale, id).is_none(), "in use, not stale: {stale:#}");
    assert!(posix_entry(&stale, &name).is_none(), "in use, not stale: {stale:#}");

    posix_user.kill();
    sysv_user.kill();
    let out = run(&["ls", "--stale", "--json"]);
    let stale = json(&out);
    let s = sysv_entry(&stale, id).unwrap_or_else(|| panic!("id {id} not stale: {stale:#}"));
    assert_eq!((s["nattch"].as_u64(), s["stale"].as_bool()), (Some(0), Some(true)));
    // POSIX: stale, exactly, although /proc may be incomplete (PID 1 here)
    let p = posix_entry(&stale, &name).unwrap_or_else(|| panic!("{name} not stale: {stale:#}"));
    assert_eq!(
        (p["stale"].as_bool(), p["probe"].as_str()),
        (Some(true), Some("unused")),
        "{p:#}"
    );
    // (A note that some object was "not listed" may concern another test's
    // object, made or removed while `ls` looked: ours was listed, above.)
    let table = stdout(&run(&["ls", "--posix"]));
    let row = table.lines().find(|l| l.contains(name.as_str())).unwrap().to_owned();
    assert_eq!(row.split_whitespace().nth(8), Some("0"), "{row}");
    let table = stdout(&run(&["ls", "--stale", "--sysv"]));
    assert!(table.lines().any(|l| l.contains(&format!("key:{key}"))), "{table}");

    let out = run(&["rm", "--stale", "--dry-run"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!(
            "would remove key:{key} (id {id}, 4096 bytes); nothing is attached"
        )),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&format!("would remove {name} (4096 bytes); no process uses it")),
        "{}",
        stdout(&out)
    );
    assert!(sysv_exists(id) && posix_exists(&name), "--dry-run removes nothing");
}

/// `rm --stale` removes every stale object of the machine, so it runs in
/// new mount and IPC namespaces, with a /dev/shm of their own.
#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn rm_stale_removes_what_a_killed_user_left_in_private_namespaces() {
    run_in_private_namespaces("stale-scenario");
}

/// As a PostgreSQL server killed with SIGKILL leaves its dynamic shared
/// memory: several POSIX objects, mapped without descriptors by one process,
/// and a System V segment. On this machine, where /proc is incomplete (PID 1
/// cannot be read), `ls --stale` must list every orphan and `rm --stale`
/// remove them and nothing a live process maps.
#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn every_orphan_of_a_killed_server_is_listed_and_removed_in_private_namespaces() {
    run_in_private_namespaces("orphans-scenario");
}

/// Runs this test binary as helper `role` in new mount and IPC namespaces,
/// and checks it passed (or prints why it was skipped).
fn run_in_private_namespaces(role: &str) {
    if !is_root() {
        eprintln!("skipped: needs root for private mount and IPC namespaces");
        return;
    }
    if !have("unshare") {
        return;
    }
    let out = Command::new("unshare")
        .args(["-m", "-i", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "inspect::helper_process", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .output()
        .unwrap();
    let text = stdout(&out);
    if let Some(reason) = text.lines().find_map(|l| l.strip_prefix("@skip ")) {
        eprintln!("skipped: {reason}");
        return;
    }
    if stderr(&out).contains("unshare failed") {
        eprintln!("skipped: this machine does not allow new namespaces: {}", stderr(&out));
        return;
    }
    assert!(
        out.status.success() && text.contains("@scenario passed"),
        "{}\n--- stdout\n{text}--- stderr\n{}",
        out.status,
        stderr(&out)
    );
}

/// Mounts a tmpfs of this mount namespace's own on /dev/shm; `false` (and a
/// `@skip` line) when that cannot be done.
fn private_dev_shm() -> bool {
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16M,mode=1777", "tmpfs", "/dev/shm"])
        .output()
        .unwrap();
    if !mount.status.success() {
        println!("@skip cannot mount a tmpfs on /dev/shm: {}", stderr(&mount).trim());
    }
    mount.status.success()
}

/// Runs in private namespaces: every object here is the test's.
fn orphans_scenario() {
    if !private_dev_shm() {
        return;
    }
    let opts = posix::Options::new().size(64 << 10);
    let names = [
        "/PostgreSQL.101",
        "/PostgreSQL.102",
        "/PostgreSQL.103",
        "/PostgreSQL.104",
    ];
    for name in names.iter().chain(&["/live-1"]) {
        PosixShm::create(&ShmName::new(*name).unwrap(), &opts).unwrap();
    }
    let main = SysvShm::create(Key::new(0x5157_0011), &sysv::Options::new().size(1 << 20)).unwrap();
    // an orphan nobody ever mapped, whose name is not UTF-8
    std::fs::write(std::ffi::OsStr::from_bytes(b"/dev/shm/orphan-\xff"), b"x").unwrap();
    let mut items: Vec<String> = names.iter().map(|n| format!("posix:{n}")).collect();
    items.push(format!("sysv:{}", main.id()));
    let server = Helper::start(&format!("maps:{}", items.join(",")));
    // a live process maps one of the server's objects, and one of its own
    let _client = Helper::start("maps:posix:/PostgreSQL.104,posix:/live-1");

    let stale = json(&run(&["ls", "--stale", "--json"]));
    let listed: Vec<&str> = stale
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(listed, [r"/orphan-\xff"], "{stale:#}");

    server.kill();
    let out = run(&["ls", "--stale", "--json"]);
    let stale = json(&out);
    let mut listed: Vec<&str> = stale
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        ["/PostgreSQL.101", "/PostgreSQL.102", "/PostgreSQL.103", r"/orphan-\xff"],
        "{stale:#}"
    );
    assert!(sysv_entry(&stale, main.id()).is_some(), "{stale:#}");
    assert!(!stderr(&out).contains("not listed"), "{}", stderr(&out));

    let out = run(&["rm", "--stale"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for name in &names[..3] {
        assert!(
            text.contains(&format!(
                "removed {name} (65536 bytes); no process uses it: its memory is freed now"
            )),
            "{text}"
        );
        assert!(!posix_exists(name), "{name}");
    }
    assert!(text.contains(r"removed /orphan-\xff (1 bytes)"), "{text}");
    assert!(!sysv_exists(main.id()));
    assert!(
        posix_exists("/PostgreSQL.104") && posix_exists("/live-1"),
        "a live process maps them"
    );
    let left: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(json(&run(&["ls", "--stale", "--json"])), Value::Array(vec![]));
    println!("@scenario passed");
}

/// Runs in private namespaces (see above): every object here is the test's.
fn stale_scenario() {
    if !private_dev_shm() {
        return;
    }
    let opts = sysv::Options::new().size(4096);
    let dead = SysvShm::create(Key::new(0x5157_0001), &opts).unwrap();
    let live = SysvShm::create(Key::new(0x5157_0002), &opts).unwrap();
    for name in ["/stale-dead", "/stale-live"] {
        PosixShm::create(&ShmName::new(name).unwrap(), &posix::Options::new().size(4096)).unwrap();
    }
    let dead_sysv = Helper::start(&format!("sysv:{}", dead.id()));
    let dead_posix = Helper::start("posix:/stale-dead");
    let _live_sysv = Helper::start(&format!("sysv:{}", live.id()));
    let _live_posix = Helper::start("posix:/stale-live");

    let stale = json(&run(&["ls", "--stale", "--json"]));
    assert_eq!(stale, Value::Array(vec![]), "all in use");
    let out = run(&["rm", "--stale"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "no stale objects\n");

    dead_sysv.kill();
    dead_posix.kill();
    let all = json(&run(&["ls", "--json"]));
    assert_eq!(posix_entry(&all, "/stale-dead").unwrap()["stale"], true, "{all:#}");
    assert_eq!(posix_entry(&all, "/stale-live").unwrap()["stale"], false);
    let stale = json(&run(&["ls", "--stale", "--json"]));
    assert!(sysv_entry(&stale, dead.id()).is_some(), "{stale:#}");
    assert!(sysv_entry(&stale, live.id()).is_none(), "{stale:#}");
    assert!(posix_entry(&stale, "/stale-dead").is_some(), "{stale:#}");
    assert!(posix_entry(&stale, "/stale-live").is_none(), "{stale:#}");

    let out = run(&["rm", "--stale", "--older-than", "1h"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "no stale objects older than 1h\n");
    assert!(sysv_exists(dead.id()));

    let out = run(&["rm", "--stale"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "removed key:0x51570001 (id {}, 4096 bytes); nothing was attached: its memory is freed now",
            dead.id()
        )),
        "{text}"
    );
    assert!(!sysv_exists(dead.id()), "the stale segment is gone");
    assert!(sysv_exists(live.id()), "the one in use stays");
    assert!(posix_exists("/stale-live"), "the one in use stays");
    assert!(
        text.contains("removed /stale-dead (4096 bytes); no process uses it: its memory is freed now"),
        "{text}"
    );
    assert!(!posix_exists("/stale-dead"));
    assert_eq!(stderr(&out), "", "nothing left unknown");
    println!("@scenario passed");
}

/// Removes a file of /dev/shm given by its exact bytes, on failure too.
struct RawGuard(std::path::PathBuf);

impl Drop for RawGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn names_that_need_escapes_are_listed_and_taken_back_by_stat_and_rm() {
    let (base, _guard) = posix_name();
    let mut raw = b"/dev/shm".to_vec();
    raw.extend_from_slice(base.as_bytes());
    raw.extend_from_slice(b"-\xff\\\x1b");
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
    let _raw_guard = RawGuard(path.clone());
    std::fs::write(&path, [0u8; 100]).unwrap();
    let shown = format!(r"{base}-\xff\\\x1b");

    let all = json(&run(&["ls", "--json"]));
    let o = posix_entry(&all, &shown).unwrap_or_else(|| panic!("{shown} not in {all:#}"));
    assert_eq!((o["size"].as_u64(), o["stale"].as_bool()), (Some(100), Some(true)));
    let table = stdout(&run(&["ls", "--posix"]));
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(shown.as_str())),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "no raw control character reaches the terminal");

    let s = json(&run(&["stat", &shown, "--json"]));
    assert_eq!(s["name"], shown.as_str());
    assert_code(&run(&["read", &shown]), 2);
    let out = run(&["rm", &shown]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out),
        format!("removed {shown} (100 bytes); no process uses it: its memory is freed now\n")
    );
    assert!(!path.exists());
    let out = run(&["rm", &shown]);
    assert_code(&out, 3);
    assert_eq!(stderr(&out), format!("shmkit: {shown}: no such segment\n"));
    // a backslash that starts no escape is refused
    assert_code(&run(&["rm", &format!(r"{base}\q")]), 2);
}

#[test]
fn rm_tries_every_target_and_exits_with_the_failure() {
    let (name, _guard) = posix_object(4096);
    let (missing, _missing_guard) = posix_name();
    let (key, id, _key_guard) = sysv_segment();
    let out = run(&["rm", &name, &missing, &format!("key:{key}")]);
    assert_code(&out, 3);
    assert_eq!(stderr(&out), format!("shmkit: {missing}: no such segment\n"));
    let text = stdout(&out);
    assert!(text.contains(&format!("removed {name} (4096 bytes); ")), "{text}");
    assert!(
        text.contains(&format!(
            "removed key:{key} (id {id}, 4096 bytes); nothing was attached: its memory is freed now"
        )),
        "{text}"
    );
    assert!(!posix_exists(&name) && !sysv_exists(id));
    // a second time: both missing, both named
    let out = run(&["rm", &format!("id:{id}"), &name]);
    assert_code(&out, 3);
    assert_eq!(
        stderr(&out),
        format!("shmkit: id:{id}: no such segment\nshmkit: {name}: no such segment\n")
    );
}

#[test]
fn rm_with_one_bad_target_removes_nothing() {
    let (name, _guard) = posix_object(4096);
    let (key, id, _key_guard) = sysv_segment();
    for bad in ["bogus", "key:0", "id:x", "/a/b"] {
        let out = run(&["rm", &name, bad, &format!("key:{key}")]);
        assert_code(&out, 2);
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
        assert_eq!(stdout(&out), "");
        assert!(posix_exists(&name) && sysv_exists(id), "{bad}: nothing may be removed");
    }
    for args in [
        &["rm"][..],
        &["rm", "--older-than", "1h"],
        &["rm", "--older-than", "1h", name.as_str()],
        &["rm", "--stale", name.as_str()],
        &["rm", "--stale", "--older-than", "soon"],
    ] {
        assert_code(&run(args), 2);
    }
    assert!(posix_exists(&name) && sysv_exists(id));
}

#[test]
fn rm_dry_run_says_what_and_removes_nothing() {
    let (name, _guard) = posix_object(4096);
    let (key, id, _key_guard) = sysv_segment();
    let out = run(&["rm", "--dry-run", &name, &format!("id:{id}")]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("would remove {name} (4096 bytes); ")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "would remove key:{key} (id {id}, 4096 bytes); nothing is attached\n"
        )),
        "{text}"
    );
    assert!(posix_exists(&name) && sysv_exists(id));
    let (missing, _g) = posix_name();
    assert_code(&run(&["rm", "--dry-run", &missing]), 3);
}

#[test]
fn rm_of_an_attached_sysv_segment_is_freed_when_the_last_user_detaches() {
    let (key, id, _key_guard) = sysv_segment();
    let _id_guard = IdGuard(id); // its key is 0 once marked for removal
    let user = Helper::start(&format!("sysv:{id}"));
    let out = run(&["rm", &format!("key:{key}")]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "removed key:{key} (id {id}, 4096 bytes); still attached 1 time (pid {} (",
            user.pid()
        )),
        "{text}"
    );
    assert!(
        text.ends_with("): its memory is freed when the last user detaches\n"),
        "{text}"
    );
    // the kernel keeps it, marked, until the helper goes
    let s = json(&run(&["stat", &format!("id:{id}"), "--json"]));
    assert_eq!(
        (s["marked_for_removal"].as_bool(), s["key"].as_u64()),
        (Some(true), Some(0)),
        "{s:#}"
    );
    assert_eq!(pids(&s), [user.pid()]);
    assert!(stdout(&run(&["stat", &format!("id:{id}")])).contains("marked for removal"));
    assert_code(&run(&["stat", &format!("key:{key}")]), 3);
    user.kill();
    assert!(!sysv_exists(id), "freed at the last detach");
}

#[test]
fn rm_of_a_posix_object_in_use_says_who_uses_it() {
    let (name, _guard) = posix_object(4096);
    let user = Helper::start(&format!("posix:{name}"));
    let out = run(&["rm", &name]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!(
            "removed {name} (4096 bytes); still used by 1 process (pid {} (",
            user.pid()
        )),
        "{text}"
    );
    assert!(
        text.ends_with(": its memory is freed when the last user unmaps and closes it\n"),
        "{text}"
    );
    assert!(!posix_exists(&name), "the name is gone at once");
    drop(user);

    let (unused, _guard2) = posix_object(4096);
    let text = stdout(&run(&["rm", &unused]));
    assert!(text.contains("its memory is freed now"), "{text}");
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn rm_as_another_user_exits_5() {
    if !is_root() {
        eprintln!("skipped: needs root to run shmkit as uid 65534");
        return;
    }
    let (name, _guard) = posix_object(4096);
    let (key, id, _key_guard) = sysv_segment();
    let out = run_as_nobody(&["rm", &name, &format!("key:{key}")]);
    assert_code(&out, 5);
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: {name}: permission denied (shm_unlink)\nshmkit: key:{key}: permission denied (shmctl(IPC_RMID))\n"
        )
    );
    assert!(posix_exists(&name) && sysv_exists(id));
}

#[test]
fn limits_json_has_numbers() {
    let l = json(&run(&["limits", "--json"]));
    assert!(l.is_object());
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{f}"))
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    };
    assert_eq!(l["shmmni"].as_u64(), read("shmmni"));
    assert_eq!(l["shmmax"].as_u64(), read("shmmax"));
    assert_eq!(l["shmall"].as_u64(), read("shmall"));
    assert_eq!(l["shmmin"], 1);
    assert!(l["page_size"].as_u64().unwrap() >= 4096);
    assert!(l["huge_page_sizes"].as_array().unwrap().iter().all(Value::is_u64));
    for field in ["posix_objects", "sysv_segments", "sysv_pages", "shmall_bytes"] {
        assert!(l[field].is_u64(), "{field}: {l:#}");
    }
    let shm = &l["dev_shm"];
    assert!(shm["tmpfs"].is_boolean(), "{l:#}");
    for field in ["total", "free", "available", "used"] {
        assert!(shm[field].is_u64() || shm[field].is_null(), "{field}: {l:#}");
    }
    let text = stdout(&run(&["limits"]));
    for label in [
        "SHMMAX",
        "SHMALL",
        "SHMMNI",
        "SHMMIN",
        "page size",
        "huge pages",
        "/dev/shm",
        "POSIX objects",
    ] {
        assert!(text.lines().any(|l| l.starts_with(label)), "{label} not in\n{text}");
    }
}

#[test]
fn doctor_json_has_every_check() {
    let d = json(&run(&["doctor", "--json"]));
    let checks = d["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let all: Vec<&str> = shmkit::inspect::Check::ALL.iter().map(|c| c.id()).collect();
    assert_eq!(ids, all);
    let rank = |s: &str| {
        ["ok", "unknown", "warning", "problem"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    let worst = checks
        .iter()
        .map(|c| rank(c["status"].as_str().unwrap()))
        .max()
        .unwrap();
    assert_eq!(rank(d["status"].as_str().unwrap()), worst);
    for c in checks {
        assert!(!c["message"].as_str().unwrap().is_empty());
        assert!(c["advice"].is_string() || c["advice"].is_null());
        if matches!(c["status"].as_str(), Some("warning" | "problem")) {
            assert!(c["advice"].is_string(), "{c:#}");
        }
        assert!(c["facts"].is_object(), "{c:#}");
    }
    assert_eq!(checks[0]["facts"]["tmpfs"], true, "{d:#}");
    let count = &checks[6]["facts"];
    assert_eq!(
        count["shmmni"].as_u64(),
        std::fs::read_to_string("/proc/sys/kernel/shmmni")
            .ok()
            .and_then(|s| s.trim().parse().ok())
    );
    assert!(count["segments"].is_u64(), "{d:#}");
    let stale = &checks[8]["facts"];
    for field in ["posix", "posix_bytes", "posix_unknown", "sysv", "sysv_bytes"] {
        assert!(stale[field].is_u64(), "{field}: {d:#}");
    }
    let out = run(&["doctor"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for id in all {
        assert!(
            text.lines().any(|l| l.split_whitespace().nth(1) == Some(id)),
            "{id} not in\n{text}"
        );
    }
}

#[test]
fn listing_into_a_closed_pipe_ends_quietly() {
    for args in [&["ls", "--json"][..], &["doctor"], &["limits", "--json"]] {
        let mut child = shmkit()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_code(&out, 0);
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

#[test]
fn rm_also_removes_the_bells_a_killed_channel_left_of_that_object() {
    use std::os::unix::fs::MetadataExt;
    let (name, _guard) = posix_object(4096);
    let file = &name[1..];
    let ino = std::fs::metadata(format!("/dev/shm/{file}")).unwrap().ino();
    let ours = format!("/dev/shm/{file}.bell0.{ino:x}");
    let other = format!("/dev/shm/{file}.bell1.{:x}", ino + 1); // another object's
    struct Gone(Vec<String>);
    impl Drop for Gone {
        fn drop(&mut self) {
            for f in &self.0 {
                let _ = std::fs::remove_file(f);
            }
        }
    }
    let _gone = Gone(vec![ours.clone(), other.clone()]);
    for fifo in [&ours, &other] {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.as_str(),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }
    assert_code(&run(&["rm", &name]), 0);
    assert!(
        !std::path::Path::new(&ours).exists(),
        "the bell of the removed object went"
    );
    assert!(std::path::Path::new(&other).exists(), "another object's bell stays");
}
