//! `shmkit write`: text, a file or standard input into a segment.

use std::io::{Read, Write};
use std::path::PathBuf;

use shmkit::map::Access;
use shmkit::posix::{self, PosixShm};
use shmkit::sysv::{self, SysvShm};

use crate::exit::{undo_if_failed, Failure, Result};
use crate::segment::Segment;
use crate::target::Target;
use crate::units::{parse_offset, parse_size};

const EXAMPLES: &str = "\
Examples:
  shmkit write /shared --create --size 4096 \"This is writer!!!\"   text + one NUL byte
  shmkit write key:0x1234 --file frame.bin --offset 4K             bytes as they are
  printf 'raw' | shmkit write id:7                                 standard input";

/// Arguments of `shmkit write`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// `/name`, `key:KEY` or `id:N`.
    target: Target,
    /// Text to write, followed by one NUL byte as a C string is. Without it
    /// (and without --file), standard input is written byte for byte.
    #[arg(conflicts_with = "file")]
    text: Option<String>,
    /// Write this file's bytes as they are.
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// Where to start, in bytes from the beginning.
    #[arg(long, value_parser = parse_offset, default_value = "0")]
    offset: usize,
    /// Create the object (mode 0600) if it does not exist; needs --size.
    #[arg(long, requires = "size")]
    create: bool,
    /// The size to create it with.
    #[arg(long, value_parser = parse_size, requires = "create")]
    size: Option<u64>,
    /// With --create: accept an existing object owned by another user or with
    /// permissions wider than 0600 (refused by default).
    #[arg(long, requires = "create")]
    allow_foreign: bool,
}

/// Runs `shmkit write`.
pub fn run(args: Args) -> Result {
    let data = match (&args.text, &args.file) {
        (Some(text), _) => {
            let mut bytes = text.clone().into_bytes();
            bytes.push(0);
            bytes
        }
        (None, Some(path)) => {
            std::fs::read(path).map_err(|e| Failure::Message(format!("{}: {e}", path.display()), 1))?
        }
        (None, None) => {
            let mut bytes = Vec::new();
            std::io::stdin().lock().read_to_end(&mut bytes)?;
            bytes
        }
    };
    let (segment, created) = match args.size.filter(|_| args.create) {
        Some(size) => open_or_create(&args.target, size, args.allow_foreign)?,
        None => (Segment::open(&args.target, Access::ReadWrite)?, false),
    };
    // A new object that the data does not fit (or any later failure) is
    // removed again: a failed command leaves nothing new behind.
    undo_if_failed(write(&segment, &args, &data), created, || segment.remove())
}

fn write(segment: &Segment, args: &Args, data: &[u8]) -> Result {
    // Check the whole range first: nothing is written unless all of it fits.
    let map = segment.map(Access::ReadWrite)?;
    map.write_at(args.offset, data)?;
    drop(map);
    writeln!(
        std::io::stdout().lock(),
        "wrote {} bytes to {} at offset {}",
        data.len(),
        args.target,
        args.offset
    )?;
    Ok(())
}

/// Opens or creates the segment; `true` if this call created it.
fn open_or_create(target: &Target, size: u64, allow_foreign: bool) -> Result<(Segment, bool)> {
    Ok(match target {
        Target::Posix(name) => {
            let (shm, created) =
                PosixShm::open_or_create(name, &posix::Options::new().size(size).allow_foreign(allow_foreign))?;
            (Segment::Posix(shm), created)
        }
        Target::SysvKey(key) => {
            let (shm, created) =
                SysvShm::open_or_create(*key, &sysv::Options::new().size(size).allow_foreign(allow_foreign))?;
            (Segment::Sysv(shm), created)
        }
        Target::PosixFile(_) => return Err(Failure::Message(format!("{target}: {}", crate::target::NOT_UTF8), 2)),
        Target::SysvId(_) => {
            return Err(Failure::Message(
                format!("{target}: --create needs a /name or key:KEY; an id names an existing segment"),
                2,
            ))
        }
    })
}
