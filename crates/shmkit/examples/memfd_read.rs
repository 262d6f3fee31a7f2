//! The classic reader with sealed memory: connect to the writer's Unix
//! socket (default `/tmp/shmkit-memfd.sock`), receive the memory, check its
//! seals, and print what the writer wrote. Run `memfd_write` first (or at
//! the same time: this waits up to 5 s for it to listen).

use std::os::unix::net::UnixStream;

use shmkit::memfd::Memfd;

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/shmkit-memfd.sock".into());
    let socket = connect(&path).map_err(|e| format!("{path}: {e} (is memfd_write running?)"))?;
    // recvmsg(SCM_RIGHTS), then F_GET_SEALS: memory the writer could still
    // shrink is refused
    let shm = Memfd::receive(&socket)?;
    let text = shm.map_read_only()?.read_cstr(0)?;
    println!("from writer: {}", String::from_utf8_lossy(&text));
    Ok(()) // the memory is freed when its last holder closes it
}

/// Connects, giving a writer that is still starting five seconds to listen.
fn connect(path: &str) -> std::io::Result<UnixStream> {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match UnixStream::connect(path) {
            Err(e) if std::time::Instant::now() < give_up && e.kind() != std::io::ErrorKind::PermissionDenied => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}
