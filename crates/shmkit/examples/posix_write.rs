//! The classic POSIX writer: create `/shared`, size it to 4096 bytes, write a
//! C string, and leave the object for the reader.
//!
//! ```sh
//! cargo run -p shmkit --example posix_write    # then:
//! cargo run -p shmkit --example posix_read
//! ```
//! An argument replaces the name `/shared`.

use shmkit::posix::{Options, PosixShm, ShmName};

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}"); // e.g. "/shared: no such segment"
        std::process::exit(1);
    }
}

fn run() -> shmkit::Result<()> {
    let name = ShmName::new(std::env::args().nth(1).unwrap_or_else(|| "/shared".into()))?;
    // shm_open(O_CREAT | O_EXCL | O_RDWR, 0600) + fallocate(4096)
    let shm = PosixShm::create(&name, &Options::new().size(4096))?;
    // mmap(MAP_SHARED) + strcpy
    shm.map()?.write_at(0, b"This is writer!!!\0")?;
    println!("wrote \"This is writer!!!\" to {name}");
    Ok(()) // munmap + close; the object stays until the reader removes it
}
