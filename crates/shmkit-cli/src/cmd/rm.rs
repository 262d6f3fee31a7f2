//! `shmkit rm`: removes segments by name, key or id, or every stale one.

use std::io::Write;
use std::time::{Duration, SystemTime};

use shmkit::inspect::{self, PosixObject, ProcessScan, Removal, SysvSegment, WhyUnknown};
use shmkit::posix;
use shmkit::sysv;

use crate::exit::{code, warn, Failure, Result};
use crate::reported::reword;
use crate::target::Target;
use crate::time::{age, short_age};
use crate::units::parse_duration;
use crate::view::{latest, pid_list, plural, probe_str, why_unknown, Object, UserView};

const EXAMPLES: &str = "\
Examples:
  shmkit rm /jobs key:0x1234 id:7    every argument is checked before anything is removed
  shmkit rm --stale --dry-run        what no process uses, and would be removed
  shmkit rm --stale --older-than 7d  stale objects unchanged for a week

POSIX objects are unlinked, System V segments marked for removal (IPC_RMID): processes
that still use one keep it, and its memory is freed when the last of them lets go; each
line says which. --stale removes System V segments with no attachment and POSIX objects
that no process maps or holds open, as the kernel tells with a write lease, asked again
and held while each is unlinked; a POSIX object whose use cannot be told (another
user's, without root) is left alone, and so is a latest value kept by shmkit put, which
goes by name only. A /name is read with the escapes ls shows (\\\\,
\\xNN). All targets are tried; the exit status is that of the first failure.";

/// Arguments of `shmkit rm`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("what").args(["targets", "stale"]).required(true))]
pub struct Args {
    /// `/name`, `key:KEY` or `id:N`, as many as needed.
    #[arg(conflicts_with = "stale")]
    targets: Vec<Target>,
    /// Remove every object that no process uses (see `shmkit ls --stale`).
    #[arg(long)]
    stale: bool,
    /// With --stale: only objects unchanged for this long (500ms, 90s, 30m,
    /// 2h, 7d): System V by `shm_ctime`, POSIX by the later of mtime and
    /// ctime.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "stale", conflicts_with = "targets")]
    older_than: Option<Duration>,
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    dry_run: bool,
}

/// What one removal is about: a POSIX object or a System V segment as the
/// scan saw it.
enum Found {
    Posix(PosixObject),
    Sysv(SysvSegment),
}

/// Runs `shmkit rm`.
pub fn run(args: Args) -> Result {
    let scan = ProcessScan::new()?;
    let mut out = std::io::stdout().lock();
    let mut first_failure = None;
    let mut fail = |shown: &str, e: &shmkit::Error| {
        warn(reword(shown, e));
        first_failure.get_or_insert(code(e));
    };
    if args.stale {
        for (shown, found) in stale(&scan, args.older_than, &mut fail)? {
            match remove(found, &scan, args.dry_run, true, &mut out) {
                Ok(()) => {}
                Err(Failure::Shm(e)) => fail(&shown, &e),
                Err(other) => return Err(other),
            }
        }
    } else {
        for target in &args.targets {
            let shown = target.to_string();
            match look_up(target, &scan) {
                Ok(found) => match remove(found, &scan, args.dry_run, false, &mut out) {
                    Ok(()) => {}
                    Err(Failure::Shm(e)) => fail(&shown, &e),
                    Err(other) => return Err(other),
                },
                Err(e) => fail(&shown, &e),
            }
        }
    }
    out.flush()?;
    if let Some(code) = first_failure {
        return Err(Failure::Reported(code));
    }
    Ok(())
}

/// The object `target` names.
fn look_up(target: &Target, scan: &ProcessScan) -> shmkit::Result<Found> {
    Ok(match target {
        Target::Posix(name) => Found::Posix(inspect::posix_object(name, scan)?),
        Target::PosixFile(file) => Found::Posix(inspect::dev_shm_entry(file, scan)?),
        Target::SysvKey(key) => Found::Sysv(inspect::sysv_segment_by_key(*key, scan)?),
        Target::SysvId(id) => Found::Sysv(inspect::sysv_segment(*id, scan)?),
    })
}

/// The stale objects, unchanged for `older_than` if given, with the names
/// to show them by. Says on standard error how many POSIX objects are left
/// alone because their users are unknown.
fn stale(
    scan: &ProcessScan,
    older_than: Option<Duration>,
    fail: &mut impl FnMut(&str, &shmkit::Error),
) -> Result<Vec<(String, Found)>> {
    let now = SystemTime::now();
    let old_enough = |t: Option<SystemTime>| match (older_than, t) {
        (None, _) => true,
        (Some(min), Some(t)) => age(now, t) >= min,
        (Some(_), None) => false,
    };
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    match inspect::posix_objects(scan) {
        Ok(all) => {
            for o in all {
                // A kept latest value is meant to stay with nobody using it:
                // it goes by name only.
                if !old_enough(latest(o.modified, o.changed)) || o.shmkit.is_some_and(|h| h.kept) {
                    continue;
                }
                match o.stale {
                    Some(true) => found.push((o.name.clone(), Found::Posix(o))),
                    None => unknown.push(o),
                    Some(false) => {}
                }
            }
        }
        Err(e) => fail("/dev/shm", &e),
    }
    match inspect::sysv_segments(scan) {
        Ok(all) => {
            for s in all {
                if s.stale && !s.marked_for_removal && old_enough(s.ctime) {
                    let shown = Object::sysv(&s, now).target();
                    found.push((shown, Found::Sysv(s)));
                }
            }
        }
        Err(e) => fail("/proc/sysvipc/shm", &e),
    }
    if let Some(first) = unknown.first() {
        let n = unknown.len();
        warn(format!(
            "note: {} left alone: whether a process uses {} is unknown: {}",
            plural(n as u64, "POSIX object", "POSIX objects"),
            if n == 1 { "it" } else { "them" },
            why_unknown(first.usage.map(probe_str), scan),
        ));
    }
    if found.is_empty() {
        let mut out = std::io::stdout().lock();
        match older_than {
            Some(d) => writeln!(out, "no stale objects older than {}", short_age(d))?,
            None => writeln!(out, "no stale objects")?,
        }
    }
    Ok(found)
}

/// Removes one object (or, with `dry_run`, says it would) and says
/// whether its memory is freed now or when its last user lets go. With
/// `only_if_stale`, a segment that changed since the scan is left alone.
fn remove(found: Found, scan: &ProcessScan, dry_run: bool, only_if_stale: bool, out: &mut impl Write) -> Result {
    let now = SystemTime::now();
    match found {
        Found::Posix(obj) => {
            let what = format!("{} ({} bytes)", obj.name, obj.size);
            if only_if_stale {
                return remove_stale_posix(&obj, &what, scan, dry_run, out);
            }
            let view = Object::posix(&obj, now);
            let (users, freed) = match (view.user_count, obj.usage.and_then(|u| u.in_use()), view.users_complete) {
                (0, Some(false), _) | (0, None, true) => ("no process uses it".to_owned(), "now"),
                (0, Some(true), _) => (
                    "a process that /proc does not show has it open or mapped".to_owned(),
                    "when the last user unmaps and closes it",
                ),
                (0, None, false) => (
                    format!(
                        "no process was seen using it, but {}",
                        why_unknown(obj.usage.map(probe_str), scan)
                    ),
                    "now, or when the last user unmaps and closes it",
                ),
                _ => (
                    format!("still used by {}", used_by(&view.users)),
                    "when the last user unmaps and closes it",
                ),
            };
            if dry_run {
                writeln!(out, "would remove {what}; {users}")?;
                return Ok(());
            }
            match obj.shm_name() {
                Some(name) => posix::remove(&name)?,
                None => inspect::remove_entry(&obj.file_name)?,
            }
            inspect::remove_leftovers_of(&obj.file_name, obj.inode);
            writeln!(out, "removed {what}; {users}: its memory is freed {freed}")?;
        }
        Found::Sysv(seg) => {
            let view = Object::sysv(&seg, now);
            let what = match view.target() {
                t if t.starts_with("key:") => format!("{t} (id {}, {} bytes)", seg.id, seg.size),
                t => format!("{t} ({} bytes)", seg.size),
            };
            if only_if_stale {
                match inspect::sysv_segment(seg.id, scan) {
                    Ok(again) if (again.nattch, again.ctime, again.key) == (0, seg.ctime, seg.key) => {}
                    Ok(_) => {
                        writeln!(out, "left {what} alone: it changed since it was found unused")?;
                        return Ok(());
                    }
                    Err(shmkit::Error::NotFound { .. }) => {
                        writeln!(out, "{what} is gone already")?;
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let attached = attached_clause(&seg, &view.users);
            if dry_run {
                writeln!(out, "would remove {what}; {attached}")?;
                return Ok(());
            }
            sysv::remove_id(seg.id)?;
            // the kernel's own word on it: gone at once, or waiting for detaches
            let line = match inspect::sysv_segment(seg.id, scan) {
                Err(shmkit::Error::NotFound { .. }) => {
                    format!("removed {what}; nothing was attached: its memory is freed now")
                }
                Ok(after) if after.nattch > 0 => format!(
                    "removed {what}; {}: its memory is freed when the last user detaches",
                    attached_clause(&after, &view.users)
                ),
                _ => format!("removed {what}: marked for removal"),
            };
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}

/// Removes a POSIX object found stale, if it still is: under a write lease
/// where the kernel answers (nobody has it open or mapped while its name
/// goes), else — the complete scan said unused — if it is still the same
/// file.
fn remove_stale_posix(
    obj: &PosixObject,
    what: &str,
    scan: &ProcessScan,
    dry_run: bool,
    out: &mut impl Write,
) -> Result {
    if dry_run {
        writeln!(out, "would remove {what}; no process uses it")?;
        return Ok(());
    }
    let why = match inspect::remove_if_unused(&obj.file_name, (obj.dev, obj.inode))? {
        Removal::Removed => {
            inspect::remove_leftovers_of(&obj.file_name, obj.inode);
            writeln!(out, "removed {what}; no process uses it: its memory is freed now")?;
            return Ok(());
        }
        Removal::InUse => {
            writeln!(
                out,
                "left {what} alone: a process started using it since it was found unused"
            )?;
            return Ok(());
        }
        Removal::Unknown(why) => why,
        other => {
            writeln!(out, "left {what} alone: {other:?}")?;
            return Ok(());
        }
    };
    match why {
        WhyUnknown::Gone => writeln!(out, "{what} is gone already")?,
        WhyUnknown::Replaced => writeln!(out, "left {what} alone: it was replaced since it was found unused")?,
        _ => match inspect::dev_shm_entry(&obj.file_name, scan) {
            Ok(again) if (again.dev, again.inode) == (obj.dev, obj.inode) => {
                inspect::remove_entry(&obj.file_name)?;
                inspect::remove_leftovers_of(&obj.file_name, obj.inode);
                writeln!(out, "removed {what}; no process uses it: its memory is freed now")?;
            }
            Ok(_) => writeln!(out, "left {what} alone: it was replaced since it was found unused")?,
            Err(shmkit::Error::NotFound { .. }) => writeln!(out, "{what} is gone already")?,
            Err(e) => return Err(e.into()),
        },
    }
    Ok(())
}

/// `nothing is attached`, `still attached 2 times (pid 12 (cat))`.
fn attached_clause(seg: &SysvSegment, users: &[UserView]) -> String {
    if seg.nattch == 0 {
        return "nothing is attached".to_owned();
    }
    let times = plural(seg.nattch, "time", "times");
    if users.is_empty() {
        format!("still attached {times}")
    } else if seg.users.complete {
        format!("still attached {times} ({})", pid_list(users, 5))
    } else {
        format!(
            "still attached {times} ({}, and processes that could not be read)",
            pid_list(users, 5)
        )
    }
}

/// `1 process (pid 12 (cat))`, `3 processes (pid 1 (a), …)`.
fn used_by(users: &[UserView]) -> String {
    format!(
        "{} ({})",
        plural(users.len() as u64, "process", "processes"),
        pid_list(users, 5)
    )
}
