//! Interoperability: shmkit and the programs people already use share the
//! same objects. C programs compiled here with `cc`, Python's
//! `multiprocessing.shared_memory`, and util-linux's `ipcmk`, `ipcs` and
//! `ipcrm` each write what shmkit reads, read what shmkit writes, and see
//! (or remove) what shmkit creates.
//!
//! A test whose outside tool is not installed says so on stderr and returns;
//! CI installs them all, so there they run. Every object, segment and temporary
//! directory is removed by a guard, whether the test passes or not.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use shmkit::posix::{self, PosixShm};
use shmkit::sysv::{self, Key, SysvShm};
use shmkit::Error;

use crate::common::{describe, posix_name, unique_key, unique_name, SysvGuard};

/// What the classic demo's writer puts in shared memory.
const GREETING: &str = "This is writer!!!";

// ---------------------------------------------------------------------------
// Helpers: outside tools, commands, temporary directories, guards.

/// Whether every one of `tools` can be started; if not, prints why `test` is
/// skipped. Only "not installed" skips: any other failure to start a tool
/// fails the test.
fn have_tools(test: &str, tools: &[&str]) -> bool {
    for tool in tools {
        match Command::new(tool).arg("--version").output() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!("SKIPPED interop::{test}: `{tool}` is not installed (CI installs it, so it runs there)");
                return false;
            }
            Err(e) => panic!("cannot start `{tool}`: {e}"),
        }
    }
    true
}

/// `program args…` in the C locale (so that util-linux speaks English).
fn command<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).env("LC_ALL", "C");
    cmd
}

/// Runs `cmd` to the end and fails the test unless it succeeded.
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", describe(&out));
    out
}

/// Standard output as text.
fn stdout_of(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("output is UTF-8")
}

/// A directory of our own under the system's temporary directory, removed
/// with everything in it when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        // `shmkit-test-<pid>-<n>`: unique across threads and test processes.
        let path = std::env::temp_dir().join(format!("{}-interop", unique_name().file_name()));
        // Left over from a killed run whose pid we now have: ours to reuse.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles the C program `source` into `dir/name` and returns its path.
fn compile_c(dir: &TempDir, name: &str, source: &str) -> PathBuf {
    let src = dir.path().join(format!("{name}.c"));
    let exe = dir.path().join(name);
    std::fs::write(&src, source).unwrap();
    // -lrt: shm_open lives in librt before glibc 2.34, in libc since (then
    // librt is an empty stub, so linking it is harmless).
    run_ok(
        command("cc", &["-Wall", "-Wextra", "-o"])
            .arg(&exe)
            .arg(&src)
            .arg("-lrt"),
    );
    exe
}

/// Removes the System V segment with `key`, if there is one, when dropped:
/// for segments that another program creates, whose id we learn only later.
struct SysvKeyGuard(Key);

impl Drop for SysvKeyGuard {
    fn drop(&mut self) {
        if let Ok(shm) = SysvShm::open(self.0, &sysv::Options::new().read_only(true)) {
            let _ = shm.remove();
        }
    }
}

/// Fails the test if a System V segment has `key` already: the C writer
/// creates without `IPC_EXCL`, as the classic demo does, and must not write
/// into someone else's segment.
fn assert_key_unused(key: Key) {
    let found = SysvShm::open(key, &sysv::Options::new().read_only(true));
    assert!(
        matches!(found, Err(Error::NotFound { .. })),
        "key {key} is in use: {found:?}"
    );
}

// ---------------------------------------------------------------------------
// C programs: the classic writer and reader, for both kinds.

/// The classic POSIX writer: `posix_writer /name`.
const C_POSIX_WRITER: &str = include_str!("../c/posix_writer.c");

/// The classic POSIX reader: `posix_reader /name` prints and unlinks.
const C_POSIX_READER: &str = include_str!("../c/posix_reader.c");

/// The classic System V writer: `sysv_writer 0xKEY`.
const C_SYSV_WRITER: &str = include_str!("../c/sysv_writer.c");

/// The classic System V reader: `sysv_reader 0xKEY` prints, detaches and
/// removes the segment.
const C_SYSV_READER: &str = include_str!("../c/sysv_reader.c");

#[test]
fn c_posix_writer_then_shmkit_reads() {
    if !have_tools("c_posix_writer_then_shmkit_reads", &["cc"]) {
        return;
    }
    let dir = TempDir::new();
    let writer = compile_c(&dir, "posix_writer", C_POSIX_WRITER);
    let (name, _guard) = posix_name();

    run_ok(&mut command(&writer, &[name.as_str()]));

    let shm = PosixShm::open(&name, &posix::Options::new().read_only(true)).unwrap();
    assert_eq!(shm.size().unwrap(), 4096);
    assert_eq!(shm.map().unwrap().read_cstr(0).unwrap(), GREETING.as_bytes());
    drop(shm);
    posix::remove(&name).unwrap();
    assert!(matches!(
        PosixShm::open(&name, &posix::Options::new()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn shmkit_posix_writes_then_c_reader_reads_and_unlinks() {
    if !have_tools("shmkit_posix_writes_then_c_reader_reads_and_unlinks", &["cc"]) {
        return;
    }
    let dir = TempDir::new();
    let reader = compile_c(&dir, "posix_reader", C_POSIX_READER);
    let (name, _guard) = posix_name();

    let shm = PosixShm::create(&name, &posix::Options::new().size(4096)).unwrap();
    shm.map()
        .unwrap()
        .write_at(0, format!("{GREETING}\0").as_bytes())
        .unwrap();
    drop(shm); // closes; the object stays for the reader

    let out = run_ok(&mut command(&reader, &[name.as_str()]));
    assert_eq!(stdout_of(&out), format!("from writer: {GREETING}\n"));
    // The reader unlinked it.
    assert!(matches!(
        PosixShm::open(&name, &posix::Options::new()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn c_sysv_writer_then_shmkit_reads() {
    if !have_tools("c_sysv_writer_then_shmkit_reads", &["cc"]) {
        return;
    }
    let dir = TempDir::new();
    let writer = compile_c(&dir, "sysv_writer", C_SYSV_WRITER);
    let key = unique_key();
    assert_key_unused(key);
    let _guard = SysvKeyGuard(key);

    let mut cmd = command(&writer, &[key.to_string()]);
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let writer_pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", describe(&out));

    let shm = SysvShm::open(key, &sysv::Options::new().read_only(true)).unwrap();
    let _id_guard = SysvGuard(shm.id());
    let st = shm.stat().unwrap();
    assert_eq!(
        (st.key, st.size, st.mode, st.cpid, st.nattch),
        (key, 4096, 0o666, writer_pid, 0)
    );
    assert_eq!(
        shm.attach_read_only().unwrap().read_cstr(0).unwrap(),
        GREETING.as_bytes()
    );
    shm.remove().unwrap();
    assert!(matches!(SysvShm::from_id(shm.id()), Err(Error::NotFound { .. })));
    assert!(matches!(
        SysvShm::open(key, &sysv::Options::new()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn shmkit_sysv_writes_then_c_reader_reads_and_removes() {
    if !have_tools("shmkit_sysv_writes_then_c_reader_reads_and_removes", &["cc"]) {
        return;
    }
    let dir = TempDir::new();
    let reader = compile_c(&dir, "sysv_reader", C_SYSV_READER);
    let key = unique_key();

    let shm = SysvShm::create(key, &sysv::Options::new().size(4096)).unwrap();
    let _guard = SysvGuard(shm.id());
    shm.attach()
        .unwrap()
        .write_at(0, format!("{GREETING}\0").as_bytes())
        .unwrap();

    let out = run_ok(&mut command(&reader, &[key.to_string()]));
    assert_eq!(stdout_of(&out), format!("from writer: {GREETING}\n"));
    // The reader removed it (IPC_RMID with nothing attached: gone at once).
    assert!(matches!(SysvShm::from_id(shm.id()), Err(Error::NotFound { .. })));
    assert!(matches!(
        SysvShm::open(key, &sysv::Options::new()),
        Err(Error::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------
// Python's multiprocessing.shared_memory.
//
// Python (3.8 to 3.12, and 3.13+ unless `track=False`) registers every
// segment it creates *or attaches to* with its resource tracker, a separate
// process that unlinks whatever is still registered when the program ends
// (with a "leaked shared_memory objects" warning on stderr). It does so after
// `python3` itself has exited; the tracker inherits Python's stdout and
// stderr, so `Command::output` returns only once the tracker is done too.
// The scripts unregister the object right after creating or attaching, so
// Python leaves it alone.

/// Python attaches to an existing object, prints its size and bytes, and
/// leaves it.
const PY_READ: &str = r#"
import sys
from multiprocessing import resource_tracker, shared_memory
shm = shared_memory.SharedMemory(name=sys.argv[1], create=False)
resource_tracker.unregister(shm._name, "shared_memory")
print(shm.size)
print(bytes(shm.buf[:256]).hex())
print(bytes(shm.buf[4092:4096]).hex())
shm.close()
"#;

/// Python creates an object of 4096 bytes, writes `argv[2]` (hex) at 0 and
/// `tail` at 4092, and leaves it.
const PY_CREATE: &str = r#"
import sys
from multiprocessing import resource_tracker, shared_memory
shm = shared_memory.SharedMemory(name=sys.argv[1], create=True, size=4096)
resource_tracker.unregister(shm._name, "shared_memory")
data = bytes.fromhex(sys.argv[2])
shm.buf[:len(data)] = data
shm.buf[4092:4096] = b"tail"
print("created", shm.name, shm.size)
shm.close()
"#;

/// Every byte value once, so that no byte is lost or translated on the way.
fn all_bytes() -> Vec<u8> {
    (0..=255u8).rev().collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn shmkit_posix_writes_then_python_reads() {
    if !have_tools("shmkit_posix_writes_then_python_reads", &["python3"]) {
        return;
    }
    let (name, _guard) = posix_name();
    let shm = PosixShm::create(&name, &posix::Options::new().size(4096)).unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, &all_bytes()).unwrap();
    map.write_at(4092, b"tail").unwrap();

    // Python names objects without the leading slash.
    let out = run_ok(&mut command("python3", &["-c", PY_READ, name.file_name()]));
    assert_eq!(
        stdout_of(&out),
        format!("4096\n{}\n{}\n", hex(&all_bytes()), hex(b"tail"))
    );

    // Python (and its resource tracker, which has exited too) left it alone.
    let again = PosixShm::open(&name, &posix::Options::new().read_only(true))
        .unwrap_or_else(|e| panic!("python removed {name}: {e}; {}", describe(&out)));
    assert_eq!(again.map().unwrap().read_vec(0, 256).unwrap(), all_bytes());
    assert!(out.stderr.is_empty(), "python complained: {}", describe(&out));
    posix::remove(&name).unwrap();
}

#[test]
fn python_creates_then_shmkit_reads() {
    if !have_tools("python_creates_then_shmkit_reads", &["python3"]) {
        return;
    }
    let (name, _guard) = posix_name();

    let out = run_ok(&mut command(
        "python3",
        &["-c", PY_CREATE, name.file_name(), &hex(&all_bytes())],
    ));
    assert_eq!(stdout_of(&out), format!("created {} 4096\n", name.file_name()));

    let shm = PosixShm::open(&name, &posix::Options::new().size(4096))
        .unwrap_or_else(|e| panic!("python did not leave {name}: {e}; {}", describe(&out)));
    assert!(out.stderr.is_empty(), "python complained: {}", describe(&out));
    assert_eq!(shm.size().unwrap(), 4096);
    let map = shm.map().unwrap();
    assert_eq!(map.read_vec(0, 256).unwrap(), all_bytes());
    assert_eq!(map.read_vec(4092, 4).unwrap(), b"tail");
    assert!(map.read_vec(256, 4092 - 256).unwrap().iter().all(|&b| b == 0));
    drop(map);
    drop(shm);
    posix::remove(&name).unwrap();
    assert!(matches!(
        PosixShm::open(&name, &posix::Options::new()),
        Err(Error::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------
// util-linux: ipcmk, ipcs, ipcrm.

/// One row of `ipcs -m`: `key shmid owner perms bytes nattch status`.
#[derive(Debug)]
struct IpcsRow {
    key: String,
    perms: String,
    bytes: u64,
    nattch: u64,
    status: String,
}

/// The row `ipcs -m` shows for segment `id`, if it lists it.
fn ipcs_row(id: i32) -> Option<IpcsRow> {
    let out = run_ok(&mut command("ipcs", &["-m"]));
    let text = stdout_of(&out);
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 || !fields[0].starts_with("0x") || fields[1].parse() != Ok(id) {
            return None;
        }
        Some(IpcsRow {
            key: fields[0].to_owned(),
            perms: fields[3].to_owned(),
            bytes: fields[4].parse().unwrap_or_else(|_| panic!("bytes column in {line:?}")),
            nattch: fields[5]
                .parse()
                .unwrap_or_else(|_| panic!("nattch column in {line:?}")),
            status: fields[6..].join(" "),
        })
    })
}

/// The `name=value` fields of `ipcs -m -i id` (e.g. `bytes`, `cpid`).
fn ipcs_details(id: i32) -> Vec<(String, String)> {
    let out = run_ok(&mut command("ipcs", &["-m", "-i", &id.to_string()]));
    stdout_of(&out)
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn detail<'a>(details: &'a [(String, String)], name: &str) -> &'a str {
    details
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("ipcs -m -i shows no {name}= in {details:?}"))
}

#[test]
fn ipcmk_segment_is_seen_used_and_removed_by_shmkit() {
    if !have_tools("ipcmk_segment_is_seen_used_and_removed_by_shmkit", &["ipcmk", "ipcs"]) {
        return;
    }
    let mut cmd = command("ipcmk", &["-M", "4096"]);
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let ipcmk_pid = child.id() as i32;
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", describe(&out));
    let text = stdout_of(&out);
    let id: i32 = text
        .lines()
        .find_map(|l| l.strip_prefix("Shared memory id: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no segment id in ipcmk's output {text:?}"));

    // ipcmk picks a random key and creates without IPC_EXCL: make sure the
    // segment is the one it made before we take charge of removing it.
    let shm = SysvShm::from_id(id).unwrap();
    let st = shm.stat().unwrap();
    assert_eq!(st.cpid, ipcmk_pid, "segment {id} was not made by this ipcmk: {st:?}");
    let _guard = SysvGuard(id);

    assert_eq!(shm.size().unwrap(), 4096);
    assert_eq!(st.size, 4096);
    assert!(!st.key.is_private());
    let row = ipcs_row(id).unwrap_or_else(|| panic!("ipcs -m does not list segment {id}"));
    assert_eq!(row.key, shm.key().to_string(), "{row:?}");
    assert_eq!(row.key, st.key.to_string(), "{row:?}");
    assert_eq!(row.perms, format!("{:o}", st.mode), "{row:?}");
    assert_eq!((row.bytes, row.nattch), (4096, 0), "{row:?}");
    // …and shmkit finds it by that key too.
    assert_eq!(SysvShm::open(st.key, &sysv::Options::new()).unwrap().id(), id);

    let details = ipcs_details(id);
    assert_eq!(detail(&details, "bytes"), "4096");
    assert_eq!(detail(&details, "cpid"), ipcmk_pid.to_string());
    // C's "%#o": a leading 0, not Rust's 0o.
    assert_eq!(detail(&details, "access_perms"), format!("0{:o}", st.mode));

    let map = shm.attach().unwrap();
    map.write_at(100, b"shmkit was here\0").unwrap();
    assert_eq!(map.read_cstr(100).unwrap(), b"shmkit was here");
    assert_eq!(ipcs_row(id).expect("still listed").nattch, 1);
    drop(map);

    shm.remove().unwrap();
    assert!(ipcs_row(id).is_none(), "ipcs -m still lists {id} after removal");
    assert!(matches!(SysvShm::from_id(id), Err(Error::NotFound { .. })));
}

/// Creates a segment with shmkit, checks that `ipcs -m` shows it as shmkit
/// sees it, and removes it with `ipcrm remove_args(id, key)`.
fn shmkit_segment_listed_then_ipcrm_removes(remove_args: impl Fn(i32, Key) -> Vec<String>) {
    let key = unique_key();
    let shm = SysvShm::create(key, &sysv::Options::new().size(4096)).unwrap();
    let id = shm.id();
    let _guard = SysvGuard(id);

    let row = ipcs_row(id).unwrap_or_else(|| panic!("ipcs -m does not list segment {id}"));
    assert_eq!(row.key, key.to_string(), "{row:?}");
    assert_eq!(row.key, format!("0x{:08x}", key.raw() as u32), "{row:?}");
    assert_eq!(row.perms, "600", "{row:?}");
    assert_eq!((row.bytes, row.nattch), (4096, 0), "{row:?}");
    assert_eq!(row.status, "", "{row:?}");

    run_ok(&mut command("ipcrm", &remove_args(id, key)));

    assert!(ipcs_row(id).is_none(), "ipcs -m still lists {id} after ipcrm");
    assert!(matches!(SysvShm::from_id(id), Err(Error::NotFound { .. })));
    assert!(matches!(shm.stat(), Err(Error::NotFound { .. })));
    assert!(matches!(
        SysvShm::open(key, &sysv::Options::new()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn shmkit_sysv_segment_listed_by_ipcs_then_ipcrm_by_id() {
    if !have_tools(
        "shmkit_sysv_segment_listed_by_ipcs_then_ipcrm_by_id",
        &["ipcs", "ipcrm"],
    ) {
        return;
    }
    shmkit_segment_listed_then_ipcrm_removes(|id, _| vec!["-m".into(), id.to_string()]);
}

#[test]
fn shmkit_sysv_segment_listed_by_ipcs_then_ipcrm_by_key() {
    if !have_tools(
        "shmkit_sysv_segment_listed_by_ipcs_then_ipcrm_by_key",
        &["ipcs", "ipcrm"],
    ) {
        return;
    }
    shmkit_segment_listed_then_ipcrm_removes(|_, key| vec!["-M".into(), key.to_string()]);
}

#[test]
fn ipcrm_of_an_attached_segment_marks_it_for_removal() {
    if !have_tools("ipcrm_of_an_attached_segment_marks_it_for_removal", &["ipcs", "ipcrm"]) {
        return;
    }
    let key = unique_key();
    let shm = SysvShm::create(key, &sysv::Options::new().size(4096)).unwrap();
    let id = shm.id();
    let _guard = SysvGuard(id);
    let map = shm.attach().unwrap();
    map.write_at(0, b"still here\0").unwrap();
    assert_eq!(ipcs_row(id).expect("listed").nattch, 1);

    run_ok(&mut command("ipcrm", &["-m", &id.to_string()]));

    // Marked: ipcs shows it keyless and "dest", shmkit agrees, and the
    // attachment still works…
    let row = ipcs_row(id).unwrap_or_else(|| panic!("ipcs -m dropped attached segment {id}"));
    assert_eq!(
        (row.key.as_str(), row.nattch, row.status.as_str()),
        ("0x00000000", 1, "dest"),
        "{row:?}"
    );
    let st = shm.stat().unwrap();
    assert!(st.marked_for_removal, "{st:?}");
    assert!(st.key.is_private(), "{st:?}");
    assert_eq!(map.read_cstr(0).unwrap(), b"still here");
    assert!(matches!(
        SysvShm::open(key, &sysv::Options::new()),
        Err(Error::NotFound { .. })
    ));

    // …until the last attachment goes.
    drop(map);
    assert!(ipcs_row(id).is_none(), "ipcs -m still lists {id} after the last detach");
    assert!(matches!(SysvShm::from_id(id), Err(Error::NotFound { .. })));
}
