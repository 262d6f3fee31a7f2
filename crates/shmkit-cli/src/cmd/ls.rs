//! `shmkit ls`: the segments of both kinds, in one table.

use std::io::Write;
use std::time::{Duration, SystemTime};

use shmkit::inspect::{self, ProcessScan};

use crate::exit::{code, warn, Result};
use crate::table::{Align, Table};
use crate::time::short_age;
use crate::view::{short_size, why_incomplete, why_unknown, Object};

const EXAMPLES: &str = "\
Examples:
  shmkit ls                    both kinds, one table
  shmkit ls --sysv             System V segments only, with the keys and ids ipcs -m shows
  shmkit ls --stale            what no process uses: candidates for shmkit rm --stale
  shmkit ls --json | jq -r '.[] | select(.stale == true) | .name // .key_hex'

Columns: KIND is posix or sysv, or for a shmkit object its pattern (channel, topic,
many-to-one, service, latest-value); NAME is what stat and rm take; RSS the memory it really takes; CREATOR the
System V creator's pid and whether it still runs; USERS the processes seen mapping or
holding it (count, first pids; `+`: maybe more; `hidden`: the kernel says a process has
it open or mapped, but /proc shows none; `unknown`: neither can tell); AGE the time since
it last changed. Names are shown with \\\\ for a backslash and \\xNN for a byte that is not
UTF-8 or is a control character; stat and rm take them so. Named semaphores (sem.*) are
not listed.";

/// Arguments of `shmkit ls`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Only POSIX objects (the files of /dev/shm).
    #[arg(long, conflicts_with = "sysv")]
    posix: bool,
    /// Only System V segments.
    #[arg(long)]
    sysv: bool,
    /// Only objects that no process uses: System V segments with no
    /// attachment, POSIX objects that no process has open or mapped (asked
    /// of the kernel with a write lease; objects it will not answer for,
    /// another user's without root, are left out and counted in a note).
    /// A latest value kept by `shmkit put` is meant to stay unused: it is
    /// not listed.
    #[arg(long)]
    stale: bool,
    /// Print one JSON array, an object for each segment (fields: see the
    /// README).
    #[arg(long)]
    json: bool,
}

/// Runs `shmkit ls`.
pub fn run(args: Args) -> Result {
    let scan = ProcessScan::new()?;
    let now = SystemTime::now();
    let mut objects = Vec::new();
    let mut failed = None;
    if !args.sysv {
        match inspect::posix_objects(&scan) {
            Ok(all) => objects.extend(all.iter().map(|o| Object::posix(o, now))),
            Err(e) if args.posix => return Err(e.into()),
            Err(e) => {
                warn(&e);
                failed = Some(code(&e));
            }
        }
    }
    if !args.posix {
        match inspect::sysv_segments(&scan) {
            Ok(all) => objects.extend(all.iter().map(|s| Object::sysv(s, now))),
            Err(e) if args.sysv => return Err(e.into()),
            Err(e) => {
                warn(&e);
                failed.get_or_insert(code(&e));
            }
        }
    }
    let unknown: Vec<Option<&'static str>> = objects.iter().filter(|o| o.stale.is_none()).map(|o| o.probe).collect();
    if args.stale {
        // A kept latest value is meant to stay with nobody using it.
        objects.retain(|o| o.stale == Some(true) && !o.kept);
    }

    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &objects).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else if !objects.is_empty() {
        table(&objects).write(&mut out)?;
    }
    out.flush()?;
    drop(out);

    if args.stale {
        if let Some(first) = unknown.first() {
            let n = unknown.len();
            warn(format!(
                "note: {n} POSIX object{} not listed: whether a process uses {} is unknown: {}",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" },
                why_unknown(*first, &scan),
            ));
        }
    } else if let Some(why) = why_incomplete(&scan) {
        if objects.iter().any(|o| !o.users_complete) {
            warn(format!(
                "note: USERS may be incomplete (`+`, `hidden`, `unknown`), because {why}"
            ));
        }
    }
    if let Some(code) = failed {
        return Err(crate::exit::Failure::Reported(code));
    }
    Ok(())
}

fn table(objects: &[Object]) -> Table {
    use Align::*;
    let mut t = Table::new(&[
        ("KIND", Left),
        ("NAME", Left),
        ("ID", Right),
        ("SIZE", Right),
        ("RSS", Right),
        ("MODE", Left),
        ("OWNER", Left),
        ("CREATOR", Left),
        ("USERS", Left),
        ("AGE", Right),
    ]);
    for o in objects {
        t.row(vec![
            o.pattern.unwrap_or(o.kind).to_owned(),
            o.target(),
            o.id.map_or("-".into(), |id| id.to_string()),
            short_size(o.size),
            o.resident.map_or("-".into(), short_size),
            o.mode_octal.clone(),
            o.owner.clone().unwrap_or_else(|| o.uid.to_string()),
            creator_cell(o),
            users_cell(o),
            o.age_seconds.map_or("-".into(), |s| short_age(Duration::from_secs(s))),
        ]);
    }
    t
}

/// `1234 alive`, `1234 gone`; `-` for POSIX objects, which have no creator
/// pid.
fn creator_cell(o: &Object) -> String {
    match o.cpid {
        None => "-".into(),
        Some(0) => "?".into(),
        Some(pid) => match o.creator_alive {
            Some(true) => format!("{pid} alive"),
            Some(false) => format!("{pid} gone"),
            None => format!("{pid} ?"),
        },
    }
}

/// `0`, `2 (12,34)`, `5 (1,2,3,...)`, `1+ (12)` (maybe more), `hidden`
/// (the kernel says in use, /proc shows nobody), `unknown`.
fn users_cell(o: &Object) -> String {
    const MAX: usize = 3;
    if o.user_count == 0 {
        return match (o.probe, o.users_complete) {
            (Some("in_use"), _) => "hidden".into(),
            (Some("unused"), _) | (_, true) => "0".into(),
            _ => "unknown".into(),
        };
    }
    let mut pids: Vec<String> = o.users.iter().take(MAX).map(|u| u.pid.to_string()).collect();
    if o.user_count > MAX {
        pids.push("...".into());
    }
    format!(
        "{}{} ({})",
        o.user_count,
        if o.users_complete { "" } else { "+" },
        pids.join(",")
    )
}
