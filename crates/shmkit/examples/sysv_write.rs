//! The classic System V writer: a key from `ftok`, a 4096-byte segment,
//! a C string written into it, and the segment left for the reader.
//!
//! ```sh
//! cargo run -p shmkit --example sysv_write    # then:
//! cargo run -p shmkit --example sysv_read
//! ```
//! The key is `ftok(PATH, 65)`; PATH is the first argument, `/tmp` if none.

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
    // shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0600)
    let shm = SysvShm::create(key, &Options::new().size(4096))?;
    // shmat + strcpy; the mapping detaches (shmdt) when dropped
    shm.attach()?.write_at(0, b"This is writer!!!\0")?;
    println!("wrote \"This is writer!!!\" to segment {} (key {key})", shm.id());
    Ok(())
}
