//! `shmkit ftok`: the System V key C's `ftok(PATH, ID)` gives.

use std::io::Write;
use std::path::PathBuf;

use shmkit::sysv::Key;

use crate::exit::Result;

const EXAMPLES: &str = "\
Examples:
  shmkit ftok /etc/hosts 65     prints e.g. 0x4101a2b3, as ftok(\"/etc/hosts\", 'A')
  shmkit read key:$(shmkit ftok /etc/hosts 65)";

/// Arguments of `shmkit ftok`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// An existing file: ftok combines its inode and device numbers.
    path: PathBuf,
    /// The project id, 1 to 255 (ftok uses only its low 8 bits).
    #[arg(value_parser = parse_id)]
    id: u8,
}

/// A project id for `ftok`: 1 to 255, and why not 0 or more.
pub fn parse_id(s: &str) -> std::result::Result<u8, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("{s:?}: the ftok id is a number from 1 to 255"))?;
    match n {
        0 => Err("the ftok id must be 1 to 255: 0 is refused, because ftok's result for it is undefined".into()),
        1..=255 => Ok(n as u8),
        _ => Err(format!(
            "{n}: the ftok id must be 1 to 255: ftok uses only the low 8 bits, so {n} would mean {}",
            n & 0xff
        )),
    }
}

/// Runs `shmkit ftok`.
pub fn run(args: Args) -> Result {
    let key = Key::ftok(&args.path, args.id)?;
    writeln!(std::io::stdout().lock(), "{key}")?;
    Ok(())
}
