//! `shmkit read`: a segment's bytes to standard output.

use std::io::{IsTerminal, Write};

use shmkit::map::{Access, Mapping};
use shmkit::posix;

use crate::exit::Result;
use crate::segment::Segment;
use crate::target::Target;
use crate::units::parse_offset;

const EXAMPLES: &str = "\
Examples:
  shmkit read /shared                  the C string at offset 0 (up to the first NUL)
  shmkit read /shared --unlink         ... and remove it, as the classic reader does
  shmkit read key:0x1234 --all --hex   the whole segment as xxd shows it
  shmkit read id:7 --offset 4K --len 16 > frame.bin";

/// Arguments of `shmkit read`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// `/name`, `key:KEY` or `id:N`.
    target: Target,
    /// Where to start, in bytes from the beginning.
    #[arg(long, value_parser = parse_offset, default_value = "0")]
    offset: usize,
    /// Read exactly this many bytes (default: up to the first NUL byte).
    #[arg(long, value_parser = parse_offset, conflicts_with = "all")]
    len: Option<usize>,
    /// Read everything from the offset to the end.
    #[arg(long)]
    all: bool,
    /// Print a hex dump in xxd's layout instead of the raw bytes.
    #[arg(long)]
    hex: bool,
    /// Remove the object after reading it (POSIX: unlink; System V: IPC_RMID).
    #[arg(long)]
    unlink: bool,
}

/// Runs `shmkit read`.
pub fn run(args: Args) -> Result {
    let segment = Segment::open(&args.target, Access::ReadOnly)?;
    let map = segment.map(Access::ReadOnly)?;
    let data = select(&map, &args)?;
    drop(map);
    if args.unlink {
        match &segment {
            Segment::Posix(shm) => posix::remove(shm.name())?,
            Segment::Sysv(shm) => shm.remove()?,
        }
    }
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    if args.hex {
        out.write_all(hex_dump(args.offset, &data).as_bytes())?;
    } else {
        out.write_all(&data)?;
        if tty && !args.all && args.len.is_none() {
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The bytes the arguments ask for.
fn select(map: &Mapping, args: &Args) -> shmkit::Result<Vec<u8>> {
    if args.all {
        // an offset past the end fails in read_vec's range check
        map.read_vec(args.offset, map.len().saturating_sub(args.offset))
    } else if let Some(len) = args.len {
        map.read_vec(args.offset, len)
    } else {
        map.read_cstr(args.offset)
    }
}

/// `data`, which starts at `offset`, in xxd's layout: 16 bytes a line in
/// groups of two, then the printable characters.
pub fn hex_dump(offset: usize, data: &[u8]) -> String {
    let mut text = String::with_capacity(data.len() * 4 + 64);
    for (i, line) in data.chunks(16).enumerate() {
        let mut hex = String::with_capacity(40);
        for (j, byte) in line.iter().enumerate() {
            if j > 0 && j % 2 == 0 {
                hex.push(' ');
            }
            hex.push_str(&format!("{byte:02x}"));
        }
        let ascii: String = line
            .iter()
            .map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' })
            .collect();
        text.push_str(&format!("{:08x}: {hex:<39}  {ascii}\n", offset + i * 16));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::hex_dump;

    #[test]
    fn hex_dump_matches_xxd_layout() {
        assert_eq!(
            hex_dump(0, b"This is writer!!!"),
            "00000000: 5468 6973 2069 7320 7772 6974 6572 2121  This is writer!!\n\
             00000010: 21                                       !\n"
        );
        assert_eq!(hex_dump(0, b""), "");
        assert_eq!(
            hex_dump(0x1000, b"a\0"),
            "00001000: 6100                                     a.\n"
        );
    }
}
