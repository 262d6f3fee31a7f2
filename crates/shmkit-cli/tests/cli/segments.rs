//! `shmkit create`, `write`, `read` and `ftok` against real segments.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use shmkit::posix::{Options, PosixShm, ShmName};
use shmkit::sysv::{Key, SysvShm};

use crate::common::*;

fn posix_mode(name: &str) -> u32 {
    std::fs::metadata(format!("/dev/shm{name}"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn create_posix_mode_size_and_exclusive() {
    let (name, _guard) = posix_name();
    let out = run(&["create", &name, "--size", "4K"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("created {name} (4096 bytes, mode 0600)\n"));
    assert_eq!(posix_mode(&name), 0o600);
    assert_eq!(std::fs::metadata(format!("/dev/shm{name}")).unwrap().len(), 4096);

    // again, same size: accepted; another size: both sizes named
    assert_code(&run(&["create", &name, "--size", "4096"]), 0);
    let out = run(&["create", &name, "--size", "8K"]);
    assert_code(&out, 1);
    assert_eq!(
        stderr(&out),
        format!("shmkit: {name}: is 4096 bytes, but 8192 bytes were asked for\n")
    );
    let out = run(&["create", &name, "--size", "4K", "--exclusive"]);
    assert_code(&out, 4);
    assert_eq!(stderr(&out), format!("shmkit: {name}: already exists\n"));

    let (other, _guard2) = posix_name();
    assert_code(
        &run(&["create", &other, "--size", "1M", "--mode", "0640", "--exclusive"]),
        0,
    );
    assert_eq!(posix_mode(&other), 0o640);
}

#[test]
fn create_usage_errors_exit_2() {
    for args in [
        &["create", "noslash", "--size", "4K"][..],
        &["create", "/x/y", "--size", "4K"],
        &["create", "/x", "--size", "4KB"],
        &["create", "/x", "--size", "4K", "--mode", "999"],
        &["create", "/x"],
        &["create", "--sysv", "--size", "4K"],
        &["create", "/x", "--sysv", "--private", "--size", "4K"],
        &["create", "--sysv", "--ftok", "/etc/hosts:0", "--size", "4K"],
        &["create", "--sysv", "--ftok", "/etc/hosts", "--size", "4K"],
    ] {
        let out = run(args);
        assert_code(&out, 2);
        assert!(stderr(&out).starts_with("error: "), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn create_sysv_prints_key_and_id_as_ipcs_does() {
    let (key, _guard) = sysv_key();
    let out = run(&["create", "--sysv", "--key", &key.to_string(), "--size", "4096"]);
    assert_code(&out, 0);
    let shm = SysvShm::open(key, &Default::default()).unwrap();
    assert_eq!(stdout(&out), format!("key {key} id {}\n", shm.id()));
    let st = shm.stat().unwrap();
    assert_eq!((st.size, st.mode), (4096, 0o600));
    // same again: accepted; exclusive: exists
    assert_code(
        &run(&["create", "--sysv", "--key", &key.to_string(), "--size", "4096"]),
        0,
    );
    assert_code(
        &run(&[
            "create",
            "--sysv",
            "--key",
            &key.to_string(),
            "--size",
            "4096",
            "--exclusive",
        ]),
        4,
    );
    assert_code(
        &run(&["create", "--sysv", "--key", &key.to_string(), "--size", "1M"]),
        1,
    );

    // ipcs sees it with perms 600 and ipcrm -M removes it
    if have("ipcs") {
        let table = String::from_utf8(
            std::process::Command::new("ipcs")
                .arg("-m")
                .env("LC_ALL", "C")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.starts_with(&key.to_string()))
            .unwrap_or_else(|| panic!("{key} not in ipcs -m:\n{table}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            (row[1], row[3], row[4]),
            (shm.id().to_string().as_str(), "600", "4096"),
            "{row:?}"
        );
        let rm = std::process::Command::new("ipcrm")
            .args(["-M", &key.to_string()])
            .output()
            .unwrap();
        assert!(rm.status.success(), "{}", stderr(&rm));
        assert!(matches!(
            SysvShm::from_id(shm.id()),
            Err(shmkit::Error::NotFound { .. })
        ));
    }
}

#[test]
fn create_sysv_private_and_ftok() {
    let out = run(&["create", "--sysv", "--private", "--size", "100"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let id: i32 = text.trim().rsplit(' ').next().unwrap().parse().unwrap();
    let _guard = IdGuard(id);
    assert!(text.starts_with("key 0x00000000 id "), "{text}");
    assert_eq!(SysvShm::from_id(id).unwrap().size().unwrap(), 100);

    let dir = TempDir::new();
    let file = dir.path().join("keyfile");
    std::fs::write(&file, "").unwrap();
    let key = Key::ftok(&file, 7).unwrap();
    let _key_guard = KeyGuard(key);
    let out = run(&[
        "create",
        "--sysv",
        "--ftok",
        &format!("{}:7", file.display()),
        "--size",
        "4K",
    ]);
    assert_code(&out, 0);
    assert!(stdout(&out).starts_with(&format!("key {key} id ")));
}

#[test]
fn write_then_read_text_file_and_stdin() {
    let (name, _guard) = posix_name();
    let out = run(&["write", &name, "--create", "--size", "4096", "This is writer!!!"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("wrote 18 bytes to {name} at offset 0\n"));
    // the text and one NUL byte
    assert_eq!(run(&["read", &name, "--len", "19"]).stdout, b"This is writer!!!\0\0");
    // default: up to the NUL, no newline when not a terminal
    assert_eq!(run(&["read", &name]).stdout, b"This is writer!!!");

    let dir = TempDir::new();
    let file = dir.path().join("bytes");
    let bytes: Vec<u8> = (0..=255u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    assert_code(
        &run(&["write", &name, "--file", file.to_str().unwrap(), "--offset", "1K"]),
        0,
    );
    assert_eq!(run(&["read", &name, "--offset", "1024", "--len", "256"]).stdout, bytes);

    let mut child = shmkit()
        .args(["write", &name, "--offset", "3000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"from stdin").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        run(&["read", &name, "--offset", "3000", "--len", "10"]).stdout,
        b"from stdin"
    );

    // --all: the whole rest of the segment
    assert_eq!(run(&["read", &name, "--all"]).stdout.len(), 4096);
    assert_eq!(run(&["read", &name, "--all", "--offset", "4000"]).stdout.len(), 96);
}

#[test]
fn write_that_does_not_fit_writes_nothing() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["write", &name, "--create", "--size", "4096", "keep"]), 0);
    let out = run(&["write", &name, "--offset", "4090", "does not fit"]);
    assert_code(&out, 6);
    assert_eq!(
        stderr(&out),
        format!("shmkit: {name}: 13 bytes at offset 4090 do not fit in its 4096 bytes\n")
    );
    assert_eq!(run(&["read", &name, "--offset", "4090", "--len", "6"]).stdout, [0; 6]);
    assert_eq!(run(&["read", &name]).stdout, b"keep");
    let out = run(&["read", &name, "--offset", "5000"]);
    assert_code(&out, 6);
}

#[test]
fn write_and_read_sysv_by_key_and_id() {
    let (key, _guard) = sysv_key();
    let target = format!("key:{key}");
    assert_code(&run(&["write", &target, "--create", "--size", "64K", "by key"]), 0);
    let id = SysvShm::open(key, &Default::default()).unwrap().id();
    assert_eq!(run(&["read", &format!("id:{id}")]).stdout, b"by key");
    assert_code(&run(&["write", &format!("id:{id}"), "--offset", "100", "by id"]), 0);
    assert_eq!(run(&["read", &target, "--offset", "100"]).stdout, b"by id");
    // --create cannot make a segment from an id
    assert_code(
        &run(&["write", &format!("id:{id}"), "--create", "--size", "4K", "x"]),
        2,
    );

    let out = run(&["read", &target, "--unlink"]);
    assert_eq!(out.stdout, b"by key");
    assert!(matches!(SysvShm::from_id(id), Err(shmkit::Error::NotFound { .. })));
}

#[test]
fn hex_dump_is_byte_identical_to_xxd() {
    if !have("xxd") {
        return;
    }
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&ShmName::new(name.as_str()).unwrap(), &Options::new().size(300)).unwrap();
    let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
    shm.map().unwrap().write_at(0, &bytes).unwrap();
    for (offset, extra) in [("0", vec!["--all"]), ("37", vec!["--all"]), ("16", vec!["--len", "20"])] {
        let mut args = vec!["read", name.as_str(), "--hex", "--offset", offset];
        args.extend(extra.iter().copied());
        let ours = run(&args);
        assert_code(&ours, 0);
        let mut xxd = std::process::Command::new("xxd");
        xxd.args(["-s", offset]);
        if let Some(len) = extra.iter().position(|a| *a == "--len").map(|i| extra[i + 1]) {
            xxd.args(["-l", len]);
        }
        let theirs = xxd.arg(format!("/dev/shm{name}")).output().unwrap();
        assert_eq!(stdout(&ours), stdout(&theirs), "offset {offset} {extra:?}");
    }
}

#[test]
fn read_unlink_removes_posix() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["write", &name, "--create", "--size", "4K", "bye"]), 0);
    assert_eq!(run(&["read", &name, "--unlink"]).stdout, b"bye");
    let out = run(&["read", &name]);
    assert_code(&out, 3);
    assert_eq!(stderr(&out), format!("shmkit: {name}: no such segment\n"));
}

#[test]
fn broken_pipe_ends_quietly() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["create", &name, "--size", "4M"]), 0);
    let mut child = shmkit()
        .args(["read", &name, "--all"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut one = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut one).unwrap();
    drop(child.stdout.take()); // as `| head -c1` does
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stderr(&out), "");
}

#[test]
fn missing_and_bad_targets() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["read", &name]), 3);
    assert_code(&run(&["read", "id:2147483647"]), 3);
    let out = run(&["read", "shared"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("/name"), "{}", stderr(&out));
}

#[test]
#[cfg_attr(shmkit_no_root, ignore = "needs root (CI runs as root)")]
fn read_as_another_user_exits_5() {
    if !is_root() {
        eprintln!("skipped: needs root to run shmkit as uid 65534");
        return;
    }
    let (name, _guard) = posix_name();
    assert_code(&run(&["write", &name, "--create", "--size", "4K", "secret"]), 0); // 0600, root
                                                                                   // A copy of the binary that uid 65534 can run wherever the build lives.
    let out = run_as_nobody(&["read", &name]);
    assert_code(&out, 5);
    assert_eq!(stderr(&out), format!("shmkit: {name}: permission denied (shm_open)\n"));
}

#[test]
fn classic_c_reader_reads_what_shmkit_wrote() {
    if !have("cc") {
        return;
    }
    let dir = TempDir::new();
    let reader = compile_c(&dir, "reader", C_POSIX_READER);
    let (name, _guard) = posix_name();
    assert_code(
        &run(&["write", &name, "--create", "--size", "4096", "This is writer!!!"]),
        0,
    );
    let out = std::process::Command::new(&reader).arg(&name).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from writer: This is writer!!!\n");
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn shmkit_reads_what_the_classic_c_writer_wrote() {
    if !have("cc") {
        return;
    }
    let dir = TempDir::new();
    let writer = compile_c(&dir, "writer", C_POSIX_WRITER);
    let (name, _guard) = posix_name();
    let out = std::process::Command::new(&writer).arg(&name).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["read", &name, "--unlink"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "This is writer!!!");
    assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists());
}

#[test]
fn ftok_matches_c_and_refuses_id_0() {
    let out = run(&["ftok", "/etc/hosts", "65"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("{}\n", Key::ftok("/etc/hosts", 65).unwrap()));
    if have("cc") {
        let dir = TempDir::new();
        let c = compile_c(
            &dir,
            "ftok",
            "#include <stdio.h>\n#include <stdlib.h>\n#include <sys/ipc.h>\n\
             int main(int c, char **v) { printf(\"0x%08x\\n\", (unsigned) ftok(v[1], atoi(v[2]))); return 0; }\n",
        );
        let theirs = std::process::Command::new(c)
            .args(["/etc/hosts", "65"])
            .output()
            .unwrap();
        assert_eq!(stdout(&out), stdout(&theirs));
    }
    let out = run(&["ftok", "/etc/hosts", "0"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("0 is refused"), "{}", stderr(&out));
    assert_code(&run(&["ftok", "/etc/hosts", "256"]), 2);
    let out = run(&["ftok", "/shmkit/no/such/file", "1"]);
    assert_code(&out, 3);
    assert!(
        stderr(&out).starts_with("shmkit: /shmkit/no/such/file: cannot make a System V key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_subcommand_help_has_examples() {
    for sub in [
        "create", "write", "read", "ftok", "send", "recv", "stat", "ls", "rm", "limits", "doctor",
    ] {
        let out = run(&[sub, "--help"]);
        assert_code(&out, 0);
        let text = stdout(&out);
        let examples = text.split("Examples:\n").nth(1).unwrap_or_default();
        assert!(examples.contains(&format!("shmkit {sub} ")), "{sub} --help:\n{text}");
    }
}

#[test]
fn create_refuses_a_wider_object_unless_allowed() {
    let (name, _guard) = posix_name();
    assert_code(&run(&["create", &name, "--size", "4K", "--mode", "0644"]), 0);
    let out = run(&["create", &name, "--size", "4K"]);
    assert_code(&out, 5);
    assert_eq!(
        stderr(&out),
        format!(
            "shmkit: {name}: refused: its permissions are wider than asked (owner uid {}, mode 0644); \
             if this is expected, allow it explicitly with --allow-foreign\n",
            rustix::process::geteuid().as_raw()
        )
    );
    assert_code(&run(&["write", &name, "--create", "--size", "4K", "x"]), 5);
    assert_code(&run(&["create", &name, "--size", "4K", "--allow-foreign"]), 0);
    assert_code(
        &run(&["write", &name, "--create", "--size", "4K", "--allow-foreign", "x"]),
        0,
    );
    assert_code(&run(&["create", &name, "--size", "4K", "--mode", "0644"]), 0);
}
