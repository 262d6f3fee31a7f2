//! `shmkit create`: a POSIX object or a System V segment.

use std::io::Write;

use shmkit::posix::{self, PosixShm, ShmName};
use shmkit::sysv::{self, Key, SysvShm};

use crate::exit::{undo_if_failed, Failure, Result};
use crate::units::{parse_mode, parse_size};

const EXAMPLES: &str = "\
Examples:
  shmkit create /jobs --size 1M                    POSIX object, mode 0600
  shmkit create /jobs --size 4K --mode 0640 --exclusive
  shmkit create --sysv --key 0x1234 --size 4096    prints: key 0x00001234 id 7
  shmkit create --sysv --ftok /etc/hosts:65 --size 64K
  shmkit create --sysv --private --size 4096";

/// Arguments of `shmkit create`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("sysv_key").args(["key", "ftok", "private"]))]
pub struct Args {
    /// The POSIX object to create, `/name` (not with --sysv).
    #[arg(value_parser = crate::target::posix_name, required_unless_present = "sysv", conflicts_with = "sysv")]
    name: Option<ShmName>,
    /// Create a System V segment instead, under --key, --ftok or --private.
    #[arg(long, requires = "sysv_key")]
    sysv: bool,
    /// The System V key: `0x1234` or `4660`.
    #[arg(long, value_parser = |s: &str| s.parse::<Key>().map_err(|e| e.to_string()), requires = "sysv")]
    key: Option<Key>,
    /// The System V key from `ftok(PATH, ID)`, ID 1 to 255.
    #[arg(long, value_name = "PATH:ID", value_parser = parse_ftok_arg, requires = "sysv")]
    ftok: Option<(String, u8)>,
    /// A new System V segment under IPC_PRIVATE (always new; use its id).
    #[arg(long, requires = "sysv")]
    private: bool,
    /// The size: 4096, 4K, 4KiB, 1M, 2G (powers of 1024; no KB).
    #[arg(long, value_parser = parse_size)]
    size: u64,
    /// Permission bits, in octal.
    #[arg(long, value_parser = parse_mode, default_value = "0600")]
    mode: u32,
    /// Fail if it exists already (otherwise an existing one of the same size
    /// is accepted).
    #[arg(long)]
    exclusive: bool,
    /// Accept an existing object owned by another user or with wider
    /// permissions than --mode (refused by default: whoever made
    /// it first can read and change what goes through it).
    #[arg(long)]
    allow_foreign: bool,
}

/// `PATH:ID` as `ftok` wants it; `ID` 1 to 255.
pub fn parse_ftok_arg(s: &str) -> std::result::Result<(String, u8), String> {
    let (path, id) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: expected PATH:ID, e.g. /etc/hosts:65"))?;
    Ok((path.to_owned(), crate::cmd::ftok::parse_id(id)?))
}

/// Runs `shmkit create`.
pub fn run(args: Args) -> Result {
    let mut out = std::io::stdout().lock();
    if let Some(name) = &args.name {
        return create_posix(name, &args, &mut out);
    }
    let key = match (&args.key, &args.ftok) {
        (Some(key), _) => *key,
        (None, Some((path, id))) => Key::ftok(path, *id)?,
        (None, None) => Key::PRIVATE,
    };
    let opts = sysv::Options::new()
        .size(args.size)
        .mode(args.mode)
        .allow_foreign(args.allow_foreign);
    let (shm, created) = if args.exclusive || key.is_private() {
        (SysvShm::create(key, &opts)?, true)
    } else {
        SysvShm::open_or_create(key, &opts)?
    };
    // What this command created is removed again if it fails after all:
    // a failed command leaves nothing new behind.
    let result = (|| {
        if !created {
            check_same_size(&shmkit::Target::SysvKey(key), shm.size()?, args.size)?;
        }
        writeln!(out, "key {} id {}", shm.stat()?.key, shm.id())?;
        Ok(())
    })();
    undo_if_failed(result, created, || shm.remove())
}

fn create_posix(name: &ShmName, args: &Args, out: &mut impl Write) -> Result {
    let opts = posix::Options::new()
        .size(args.size)
        .mode(args.mode)
        .allow_foreign(args.allow_foreign);
    let (shm, created) = if args.exclusive {
        (PosixShm::create(name, &opts)?, true)
    } else {
        PosixShm::open_or_create(name, &opts)?
    };
    let result = (|| {
        if created {
            writeln!(out, "created {name} ({} bytes, mode {:04o})", args.size, args.mode)?;
        } else {
            check_same_size(&shmkit::Target::Posix(name.clone()), shm.size()?, args.size)?;
            writeln!(out, "{name} exists already, with the same size ({} bytes)", args.size)?;
        }
        Ok(())
    })();
    undo_if_failed(result, created, || posix::remove(name))
}

/// An existing object must have the size asked for.
fn check_same_size(target: &shmkit::Target, actual: u64, expected: u64) -> Result {
    if actual == expected {
        return Ok(());
    }
    Err(Failure::Shm(shmkit::Error::SizeMismatch {
        target: target.clone(),
        actual,
        expected,
    }))
}
