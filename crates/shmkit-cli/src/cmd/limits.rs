//! `shmkit limits`: the kernel's limits on shared memory and what is used.

use std::io::Write;

use serde::Serialize;
use shmkit::inspect::{self, Limits};

use crate::exit::Result;
use crate::view::short_size;

const EXAMPLES: &str = "\
Examples:
  shmkit limits                            SHMMAX, SHMALL, SHMMNI, page sizes, /dev/shm space
  shmkit limits --json | jq .dev_shm.available
  shmkit limits --json | jq '.shmmni - .sysv_segments'   System V segments still possible";

/// Arguments of `shmkit limits`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Print one JSON object (fields: see the README); what cannot be read
    /// is null.
    #[arg(long)]
    json: bool,
}

/// `shmkit limits --json`.
#[derive(Debug, Serialize)]
struct LimitsView {
    /// The largest System V segment, in bytes.
    shmmax: Option<u64>,
    /// All System V segments together, in pages.
    shmall: Option<u64>,
    /// `shmall` in bytes.
    shmall_bytes: Option<u64>,
    /// The most System V segments.
    shmmni: Option<u64>,
    /// The smallest System V segment, in bytes (1 on Linux).
    shmmin: u64,
    /// Bytes in a page.
    page_size: u64,
    /// The huge page sizes offered, in bytes.
    huge_page_sizes: Vec<u64>,
    /// The file system at /dev/shm; null when it cannot be examined.
    dev_shm: Option<DevShmView>,
    /// POSIX shared-memory objects in /dev/shm.
    posix_objects: Option<usize>,
    /// System V segments.
    sysv_segments: Option<usize>,
    /// Pages the System V segments take, as counted against `shmall`.
    sysv_pages: Option<u64>,
}

/// The space of /dev/shm, in bytes; null fields: no size limit.
#[derive(Debug, Serialize)]
struct DevShmView {
    tmpfs: bool,
    total: Option<u64>,
    free: Option<u64>,
    available: Option<u64>,
    used: Option<u64>,
}

impl LimitsView {
    fn new(l: &Limits) -> LimitsView {
        LimitsView {
            shmmax: l.shmmax,
            shmall: l.shmall,
            shmall_bytes: l.shmall_bytes(),
            shmmni: l.shmmni,
            shmmin: l.shmmin,
            page_size: l.page_size,
            huge_page_sizes: l.huge_page_sizes.clone(),
            dev_shm: l.dev_shm.map(|s| DevShmView {
                tmpfs: s.tmpfs,
                total: s.total,
                free: s.free,
                available: s.available,
                used: s.used(),
            }),
            posix_objects: l.posix_objects,
            sysv_segments: l.sysv_segments,
            sysv_pages: l.sysv_pages,
        }
    }
}

/// Runs `shmkit limits`.
pub fn run(args: Args) -> Result {
    let limits = inspect::limits();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &LimitsView::new(&limits)).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        for (label, value) in lines(&limits) {
            writeln!(out, "{label:<14} {value}")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn lines(l: &Limits) -> Vec<(&'static str, String)> {
    let unknown = || "unknown (cannot be read)".to_owned();
    let bytes = |n: u64| format!("{n} bytes ({})", short_size(n));
    let count = |n: Option<usize>| n.map_or_else(unknown, |n| n.to_string());
    let dev_shm = match &l.dev_shm {
        None => "cannot be examined (missing?)".to_owned(),
        Some(s) => {
            let fs = if s.tmpfs { "tmpfs" } else { "not a tmpfs" };
            match (s.total, s.available, s.used()) {
                (Some(total), Some(avail), Some(used)) => format!(
                    "{fs}, {} total, {} available, {} used",
                    short_size(total),
                    short_size(avail),
                    short_size(used)
                ),
                _ => format!("{fs}, no size limit"),
            }
        }
    };
    vec![
        (
            "SHMMAX",
            l.shmmax
                .map_or_else(unknown, |n| format!("{}: the largest System V segment", bytes(n))),
        ),
        (
            "SHMALL",
            match (l.shmall, l.shmall_bytes()) {
                (Some(p), Some(b)) => format!("{p} pages ({}): all System V segments together", short_size(b)),
                _ => unknown(),
            },
        ),
        (
            "SHMMNI",
            l.shmmni
                .map_or_else(unknown, |n| format!("{n}: the most System V segments")),
        ),
        ("SHMMIN", format!("{} byte: the smallest System V segment", l.shmmin)),
        ("page size", bytes(l.page_size)),
        (
            "huge pages",
            if l.huge_page_sizes.is_empty() {
                "none".to_owned()
            } else {
                l.huge_page_sizes
                    .iter()
                    .map(|&n| short_size(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("/dev/shm", dev_shm),
        ("POSIX objects", count(l.posix_objects)),
        (
            "System V",
            match (l.sysv_segments, l.sysv_pages) {
                (Some(n), Some(p)) => format!(
                    "{n} segments, {p} pages ({})",
                    short_size(p.saturating_mul(l.page_size))
                ),
                _ => unknown(),
            },
        ),
    ]
}
