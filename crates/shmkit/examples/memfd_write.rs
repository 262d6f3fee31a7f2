//! The classic writer with sealed memory: create 4096 bytes that nobody can
//! shrink, write the message, and hand the memory to the first reader that
//! connects to the Unix socket (default `/tmp/shmkit-memfd.sock`). Start
//! `memfd_read` next; the memory lives on in the reader after this exits.

use std::os::unix::net::UnixListener;

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
    // memfd_create + ftruncate + fallocate + F_ADD_SEALS(shrink, grow, seal)
    let shm = Memfd::create(4096)?;
    shm.map()?.write_at(0, b"This is writer!!!\0")?;
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    println!("waiting for a reader on {path}");
    let (socket, _) = listener.accept()?;
    shm.send(&socket)?; // sendmsg(SCM_RIGHTS)
    std::fs::remove_file(&path)?;
    Ok(())
}
