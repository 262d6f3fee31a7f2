//! The classic System V reader: find the segment by `ftok`, print what the
//! writer wrote, detach and remove it. Run `sysv_write` first, with the same
//! PATH argument.

use shmkit::sysv::{Key, Options, SysvShm};

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}"); // e.g. "/shared: no such segment"
        std::process::exit(1);
    }
}

fn run() -> shmkit::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let key = Key::ftok(&path, 65)?;
    // shmget(key, 0, 0) + shmat(SHM_RDONLY)
    let shm = SysvShm::open(key, &Options::new().read_only(true))?;
    let map = shm.attach_read_only()?;
    println!("from writer: {}", String::from_utf8_lossy(&map.read_cstr(0)?));
    drop(map); // shmdt
    shm.remove() // shmctl(IPC_RMID)
}
