//! `shmkit put`: writes a latest value (text, or standard input), kept for
//! `shmkit get`.

use std::io::Read;

use shmkit::latest::{Options, Writer, DEFAULT_MAX_SIZE};
use shmkit::posix::ShmName;

use crate::exit::{Failure, Result};
use crate::units::parse_size;

const EXAMPLES: &str = "\
Examples:
  shmkit put /robot/mode \"auto\"              then, from anywhere: shmkit get /robot/mode
  date | shmkit put /last-run                 standard input, byte for byte
  shmkit put /pose --size 64K < pose.bin      the largest value the object will hold

The value is kept after put exits, until `shmkit rm /name`. A later put writes
it again (one writer at a time); `shmkit get --wait` elsewhere wakes up.";

/// Arguments of `shmkit put`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The latest value, `/name`.
    #[arg(value_parser = crate::target::posix_name)]
    name: ShmName,
    /// The value, as text. Without it, standard input is the value, byte for
    /// byte.
    text: Option<String>,
    /// The largest value the object holds, if this creates it (default: 4K,
    /// or this value's length if longer); if it exists, it must hold this
    /// size.
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Accept an existing object owned by another user or with permissions
    /// wider than 0600 (refused by default: whoever made it can change it).
    #[arg(long)]
    allow_foreign: bool,
}

/// Runs `shmkit put`.
pub fn run(args: Args) -> Result {
    let value = match args.text {
        Some(text) => text.into_bytes(),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::Message(format!("stdin: {e}"), 1))?;
            bytes
        }
    };
    let opts = Options::new().keep(true).allow_foreign(args.allow_foreign);
    let mut writer = match args.size {
        Some(size) => Writer::open_or_create(&args.name, &opts.max_size(size))?,
        None => open_or_create_to_fit(&args.name, &opts, value.len() as u64)?,
    };
    writer.write(&value)?;
    Ok(())
}

/// The existing value's writer, whatever its size; or a new value, large
/// enough for `len` bytes.
fn open_or_create_to_fit(name: &ShmName, opts: &Options, len: u64) -> shmkit::Result<Writer> {
    let fit = opts.clone().max_size(len.max(DEFAULT_MAX_SIZE));
    loop {
        match Writer::open(name, opts) {
            Err(shmkit::Error::NotFound { .. }) => {}
            other => return other,
        }
        match Writer::create(name, &fit) {
            // made by another put meanwhile: open that
            Err(shmkit::Error::AlreadyExists { .. }) => {}
            other => return other,
        }
    }
}
