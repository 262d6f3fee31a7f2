//! The classic POSIX reader: map `/shared`, print what the writer wrote, and
//! remove the object. Run `posix_write` first.

use shmkit::posix::{self, Options, PosixShm, ShmName};

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}"); // e.g. "/shared: no such segment"
        std::process::exit(1);
    }
}

fn run() -> shmkit::Result<()> {
    let name = ShmName::new(std::env::args().nth(1).unwrap_or_else(|| "/shared".into()))?;
    // shm_open(O_RDONLY) + mmap(PROT_READ, MAP_SHARED)
    let shm = PosixShm::open(&name, &Options::new().read_only(true))?;
    let text = shm.map()?.read_cstr(0)?;
    println!("from writer: {}", String::from_utf8_lossy(&text));
    posix::remove(&name) // shm_unlink
}
