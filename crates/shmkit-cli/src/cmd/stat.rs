//! `shmkit stat`: everything known about one segment.

use std::io::Write;
use std::time::SystemTime;

use shmkit::inspect::{self, EntryKind, Pattern, ProcessScan, DEV_SHM};

use crate::exit::Result;
use crate::pattern_view::{LatestView, SeatsView, TopicView};
use crate::target::Target;
use crate::time::{when, Rfc3339};
use crate::view::{pid_list, plural, short_size, why_unknown, ChannelView, Object, SideView};

const EXAMPLES: &str = "\
Examples:
  shmkit stat /jobs             size, mode, owner, times, the processes that map it
  shmkit stat key:0x1234        a System V segment: nattch, creator and last pid, ...
  shmkit stat id:7 --json | jq '.users[].pid'
  shmkit stat /backup           a channel also shows its capacity, sides and counters";

/// Arguments of `shmkit stat`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// `/name`, `key:KEY` or `id:N`.
    target: Target,
    /// Print one JSON object (fields: see the README).
    #[arg(long)]
    json: bool,
}

/// Runs `shmkit stat`.
pub fn run(args: Args) -> Result {
    let scan = ProcessScan::new()?;
    let now = SystemTime::now();
    let obj = match &args.target {
        Target::Posix(name) => {
            let found = inspect::posix_object(name, &scan)?;
            let mut obj = Object::posix(&found, now);
            // after the scan, so that reading the header is not counted as a use
            if found.kind == EntryKind::SharedMemory {
                match found.shmkit.and_then(|h| h.pattern) {
                    Some(Pattern::Channel) => {
                        obj.channel = shmkit::channel::info(name).ok().map(|c| ChannelView::new(&c))
                    }
                    Some(Pattern::Topic) => obj.topic = shmkit::topic::info(name).ok().map(|i| TopicView::new(&i)),
                    Some(Pattern::ManyToOne) => {
                        obj.many_to_one = shmkit::many_to_one::info(name).ok().map(|i| SeatsView::many_to_one(&i))
                    }
                    Some(Pattern::Service) => {
                        obj.service = shmkit::service::info(name).ok().map(|i| SeatsView::service(&i))
                    }
                    Some(Pattern::LatestValue) => {
                        obj.latest_value = shmkit::latest::info(name).ok().map(|i| LatestView::new(&i))
                    }
                    _ => {}
                }
            }
            obj
        }
        Target::PosixFile(file) => Object::posix(&inspect::dev_shm_entry(file, &scan)?, now),
        Target::SysvKey(key) => Object::sysv(&inspect::sysv_segment_by_key(*key, &scan)?, now),
        Target::SysvId(id) => Object::sysv(&inspect::sysv_segment(*id, &scan)?, now),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &obj).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        for (label, value) in lines(&obj, &scan, now) {
            writeln!(out, "{label:<10} {value}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The text of `stat`, a labelled line each.
fn lines(o: &Object, scan: &ProcessScan, now: SystemTime) -> Vec<(&'static str, String)> {
    let mut l: Vec<(&'static str, String)> = Vec::new();
    let time = |t: &Option<Rfc3339>| when(now, *t);
    let owner = format!(
        "{} (uid {}), group {} (gid {})",
        o.owner.as_deref().unwrap_or("?"),
        o.uid,
        o.group.as_deref().unwrap_or("?"),
        o.gid
    );
    let kind = match o.kind {
        "posix" => "POSIX shared-memory object".to_owned(),
        "sysv" => "System V shared-memory segment".to_owned(),
        other => format!("{other} in {DEV_SHM} (not a shared-memory object)"),
    };
    l.push(("kind", kind));
    if let Some(name) = &o.name {
        l.push(("name", name.clone()));
        l.push(("path", format!("{DEV_SHM}{name}")));
    }
    if let (Some(hex), Some(id)) = (&o.key_hex, o.id) {
        let key = if o.key == Some(0) {
            if o.marked_for_removal {
                format!("{hex} (reset to 0 by IPC_RMID)")
            } else {
                format!("{hex} (IPC_PRIVATE)")
            }
        } else {
            hex.clone()
        };
        l.push(("key", key));
        l.push(("id", id.to_string()));
    }
    let resident = match (o.resident, o.swap) {
        (Some(r), Some(s)) => format!("; {r} bytes resident, {s} in swap"),
        (Some(r), None) => format!("; {r} bytes allocated"),
        _ => String::new(),
    };
    l.push(("size", format!("{} bytes ({}){resident}", o.size, short_size(o.size))));
    l.push(("mode", o.mode_octal.clone()));
    l.push(("owner", owner));
    if let (Some(cuid), Some(cgid)) = (o.cuid, o.cgid) {
        l.push(("creator", format!("uid {cuid}, gid {cgid}")));
    }
    if let Some(cpid) = o.cpid {
        let alive = match (cpid, o.creator_alive) {
            (0, _) => "in another pid namespace".to_owned(),
            (_, Some(true)) => "still running".to_owned(),
            (_, Some(false)) => "gone".to_owned(),
            (_, None) => "unknown whether it runs".to_owned(),
        };
        l.push(("cpid", format!("{cpid} ({alive})")));
    }
    if let Some(lpid) = o.lpid {
        l.push(("lpid", lpid.to_string()));
    }
    if o.kind == "sysv" {
        l.push(("changed", time(&o.changed)));
        l.push(("attached", time(&o.attached)));
        l.push(("detached", time(&o.detached)));
    } else {
        l.push(("modified", time(&o.modified)));
        l.push(("changed", time(&o.changed)));
    }
    if let (Some(dev), Some(inode)) = (o.dev, o.inode) {
        l.push(("inode", format!("{inode} on device {dev:#x}")));
    }
    if let Some(n) = o.nattch {
        l.push(("nattch", n.to_string()));
    }
    let count = plural(o.user_count as u64, "process", "processes");
    let users = match (o.user_count, o.users_complete) {
        (0, true) => "none".to_owned(),
        (0, false) => "unknown: none seen, but not every process could be read".to_owned(),
        (_, true) => count,
        (_, false) => format!("{count} seen; there may be more"),
    };
    l.push(("users", users));
    for u in &o.users {
        let how = match (u.mapped, u.holds_fd) {
            (true, true) => "maps it and holds it open",
            (true, false) if o.kind == "sysv" => "has it attached",
            (true, false) => "maps it",
            (false, _) => "holds it open",
        };
        l.push(("", format!("{}: {how}", pid_list(std::slice::from_ref(u), 1))));
    }
    if o.kind == "sysv" {
        let removal = if o.marked_for_removal {
            "marked for removal: it goes when the last user detaches"
        } else {
            "not marked for removal"
        };
        l.push(("removal", removal.to_owned()));
        if o.locked {
            l.push(("locked", "in memory (SHM_LOCK)".to_owned()));
        }
    }
    let unseen = o.user_count == 0;
    let stale = match o.stale {
        Some(true) if o.kind == "sysv" => "yes: nothing has it attached".to_owned(),
        Some(true) if o.probe == Some("unused") => {
            "yes: no process has it open or mapped (the kernel says so)".to_owned()
        }
        Some(true) => "yes: no process maps it or holds it open".to_owned(),
        Some(false) if unseen && o.probe == Some("in_use") => {
            "no: a process that /proc does not show has it open or mapped (the kernel says so)".to_owned()
        }
        Some(false) => "no".to_owned(),
        None if o.kind == "posix" => format!(
            "unknown: no process was seen using it, but {}",
            why_unknown(o.probe, scan)
        ),
        None => "unknown".to_owned(),
    };
    let stale = if o.kept {
        format!(
            "{stale}; kept on purpose: a latest value that stays until it is removed by name (rm --stale leaves it)"
        )
    } else {
        stale
    };
    l.push(("stale", stale));
    if let Some(c) = &o.channel {
        channel_lines(c, &mut l);
    }
    if let Some(v) = &o.latest_value {
        v.lines(&mut l);
    }
    if let Some(v) = &o.topic {
        v.lines(&mut l);
    }
    if let Some(v) = &o.many_to_one {
        v.lines("many-to-one", &mut l);
    }
    if let Some(v) = &o.service {
        v.lines("service", &mut l);
    }
    l
}

fn channel_lines(c: &ChannelView, l: &mut Vec<(&'static str, String)>) {
    l.push((
        "channel",
        format!(
            "a shmkit channel: capacity {} bytes ({}), messages up to {} bytes",
            c.capacity,
            short_size(c.capacity),
            c.max_message
        ),
    ));
    l.push((
        "in flight",
        match c.bytes_in_flight {
            Some(n) => format!("{n} bytes sent and not yet received"),
            None => "unknown: the counters are inconsistent".to_owned(),
        },
    ));
    let side = |s: &Option<SideView>| match s {
        None => "not joined yet".to_owned(),
        Some(s) => {
            let state = match (s.closed, s.alive) {
                (true, _) => "closed",
                (false, true) => "alive",
                (false, false) => "gone: exited without closing",
            };
            format!("pid {} ({state})", s.pid)
        }
    };
    l.push(("sender", side(&c.sender)));
    l.push(("receiver", side(&c.receiver)));
    l.push((
        "sent",
        format!(
            "{}, {} bytes",
            plural(c.messages_sent, "message", "messages"),
            c.bytes_sent
        ),
    ));
    l.push((
        "received",
        format!(
            "{}, {} bytes",
            plural(c.messages_received, "message", "messages"),
            c.bytes_received
        ),
    ));
}
