//! Sealed memfds between real processes: the classic write/read handed over
//! a Unix socket, and the shrink attack refused by the kernel.

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use shmkit::memfd::Memfd;
use shmkit::Error;

use crate::common::LiveChild;

/// A socket path in the temporary directory, removed on drop.
struct SocketPath(PathBuf);

impl SocketPath {
    fn new() -> SocketPath {
        let name = crate::common::unique_name();
        SocketPath(std::env::temp_dir().join(format!("{}.sock", &name.as_str()[1..])))
    }
}

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Child roles for these tests; `child::main` hands roles starting with
/// `memfd-` here.
pub fn child_role(role: &str, args: &[String]) {
    let report = |line: String| println!("@{line}");
    match role {
        // memfd-read PATH: connect to PATH, receive the memory, print what
        // the writer left, and try to shrink it (the attack).
        "memfd-read" => {
            let socket = UnixStream::connect(&args[0]).unwrap();
            let shm = Memfd::receive(&socket).unwrap();
            let map = shm.map().unwrap();
            report(format!(
                "from writer: {}",
                String::from_utf8_lossy(&map.read_cstr(0).unwrap())
            ));
            match rustix::fs::ftruncate(&shm, 0) {
                Err(rustix::io::Errno::PERM) => report("shrink refused".into()),
                other => report(format!("shrink gave {other:?}")),
            }
            map.write_at(0, b"reader was here\0").unwrap();
            report(format!("size {}", shm.size()));
        }
        other => panic!("unknown child role {other:?}"),
    }
}

#[test]
fn the_classic_demo_over_a_socket_and_the_shrink_refused() {
    let path = SocketPath::new();
    let listener = UnixListener::bind(&path.0).unwrap();
    let shm = Memfd::create(4096).unwrap();
    let map = shm.map().unwrap();
    map.write_at(0, b"This is writer!!!\0").unwrap();

    let mut reader = LiveChild::spawn("memfd-read", &[path.0.to_str().unwrap()]);
    let (socket, _) = listener.accept().unwrap();
    shm.send(&socket).unwrap();
    assert_eq!(reader.expect_line(), "from writer: This is writer!!!");
    assert_eq!(reader.expect_line(), "shrink refused");
    assert_eq!(reader.expect_line(), "size 4096");
    reader.finish();
    // the reader's write reached this process's mapping: the memory is shared
    assert_eq!(map.read_cstr(0).unwrap(), b"reader was here");
    assert!(map.is_intact());
}

#[test]
fn memory_that_could_shrink_is_refused() {
    // a memfd without seals
    let plain = rustix::fs::memfd_create("shmkit-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    rustix::fs::ftruncate(&plain, 4096).unwrap();
    let err = Memfd::from_fd(plain).unwrap_err();
    assert!(
        err.to_string().contains("not sealed against shrinking and growing"),
        "{err}"
    );
    // a POSIX object (tmpfs files cannot be sealed), handed over a socket
    let (name, _guard) = crate::common::posix_name();
    let posix = shmkit::posix::PosixShm::create(&name, &shmkit::posix::Options::new().size(4096)).unwrap();
    let fd: OwnedFd = std::os::fd::AsFd::as_fd(&posix).try_clone_to_owned().unwrap();
    let err = Memfd::from_fd(fd).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    // a message without a descriptor
    let (a, b) = UnixStream::pair().unwrap();
    std::io::Write::write_all(&mut &a, &4096u64.to_le_bytes()).unwrap();
    let err = Memfd::receive(&b).unwrap_err();
    assert!(err.to_string().contains("expected one descriptor"), "{err}");
}

#[test]
fn create_checks_its_size() {
    assert!(matches!(Memfd::create(0), Err(Error::InvalidArgument { .. })));
    // more than any machine has: refused before anything is allocated (a
    // memfd has no file system limit; the check is a unit test in memfd.rs,
    // so no test here ever asks a real fallocate for more than exists)
    match Memfd::create(u64::MAX) {
        Err(Error::NoSpace { requested, .. }) => assert_eq!(requested, u64::MAX),
        other => panic!("{}", describe_result(other)),
    }
    let shm = Memfd::create(3 * 4096 + 1).unwrap();
    assert_eq!(shm.size(), 3 * 4096 + 1);
    assert_eq!(shm.map_read_only().unwrap().len(), 3 * 4096 + 1);
    assert!(
        rustix::fs::ftruncate(&shm, 8 * 4096) == Err(rustix::io::Errno::PERM),
        "sealed against growing too"
    );
}

fn describe_result(r: shmkit::Result<Memfd>) -> String {
    match r {
        Ok(m) => format!("created {} bytes", m.size()),
        Err(e) => format!("{e:?}"),
    }
}
