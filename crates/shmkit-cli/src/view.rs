//! What `ls` and `stat` show of an object, once for both kinds: the JSON
//! documents are these structs (field names are public: see the README),
//! and the tables and text are drawn from them.

use std::time::SystemTime;

use serde::Serialize;
use shmkit::channel::{ChannelInfo, SideInfo};
use shmkit::inspect::{EntryKind, PosixObject, ProcessScan, SysvSegment, Usage, Users, WhyUnknown};

use crate::time::{age, Rfc3339};

/// A POSIX object or a System V segment, as `ls --json` lists it and
/// `stat --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    /// `posix` or `sysv`; for an entry of `/dev/shm` that is not a
    /// shared-memory object (only `stat` shows those): `semaphore`,
    /// `symlink`, `directory` or `other`.
    pub kind: &'static str,
    /// The POSIX name, `/name` (null for System V).
    pub name: Option<String>,
    /// The System V key as a number (null for POSIX).
    pub key: Option<u32>,
    /// The System V key as `ipcs` shows it, `0x%08x` (null for POSIX).
    pub key_hex: Option<String>,
    /// The System V segment id (null for POSIX).
    pub id: Option<i32>,
    /// Size in bytes.
    pub size: u64,
    /// Bytes it really occupies: POSIX `st_blocks * 512`, System V `rss`
    /// (null on kernels that do not say).
    pub resident: Option<u64>,
    /// System V: bytes in swap (null for POSIX, and on old kernels).
    pub swap: Option<u64>,
    /// Permission bits as a number.
    pub mode: u32,
    /// Permission bits in octal, `0600`.
    pub mode_octal: String,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Owner's user name (null when /etc/passwd has none).
    pub owner: Option<String>,
    /// Group name (null when /etc/group has none).
    pub group: Option<String>,
    /// System V: the creator's user and group ids.
    pub cuid: Option<u32>,
    /// System V: the creator's group id.
    pub cgid: Option<u32>,
    /// System V: the creator's pid (0 when it is in another pid namespace).
    pub cpid: Option<i32>,
    /// System V: whether the creator still runs (null when unknown).
    pub creator_alive: Option<bool>,
    /// System V: the last process to attach or detach.
    pub lpid: Option<i32>,
    /// System V: how many attachments it has (the kernel's own count).
    pub nattch: Option<u64>,
    /// POSIX: when its data last changed (`st_mtime`).
    pub modified: Option<Rfc3339>,
    /// When it last changed: POSIX `st_ctime`, System V `shm_ctime`
    /// (creation or last `IPC_SET`).
    pub changed: Option<Rfc3339>,
    /// System V: when it was last attached (null: never).
    pub attached: Option<Rfc3339>,
    /// System V: when it was last detached (null: never).
    pub detached: Option<Rfc3339>,
    /// Seconds since `changed`: what `ls` shows as AGE and `rm --stale
    /// --older-than` compares.
    pub age_seconds: Option<u64>,
    /// POSIX: the device and inode that identify it in `/proc/PID/maps`.
    pub dev: Option<u64>,
    /// POSIX: its inode number.
    pub inode: Option<u64>,
    /// The processes seen mapping or holding it, by pid.
    pub users: Vec<UserView>,
    /// How many processes were seen using it.
    pub user_count: usize,
    /// Whether `users` is the whole list: false when some processes could
    /// not be read and more may use it.
    pub users_complete: bool,
    /// POSIX: what the kernel said when asked for a write lease: `in_use`
    /// (some process, in any namespace, has it open or mapped), `unused`,
    /// or why it could not be asked: `not_permitted` (another user's object,
    /// and no CAP_LEASE), `not_tmpfs_file`, `unsupported`, `signals_handled`,
    /// `gone`, `replaced`, `error`. Null for System V and for entries that
    /// are not regular files.
    pub probe: Option<&'static str>,
    /// Whether nobody uses it: System V `nattch` is 0; POSIX the kernel says
    /// nobody has it open or mapped (or, where it cannot be asked, no process
    /// maps or holds it and `users_complete`); null when that is unknown.
    pub stale: Option<bool>,
    /// System V: `IPC_RMID` was done, it goes when the last user detaches.
    pub marked_for_removal: bool,
    /// System V: locked in memory (`SHM_LOCK`).
    pub locked: bool,
    /// POSIX: the shmkit pattern whose object this is, as its header says
    /// (`channel`, `topic`, `many-to-one`, `service`, `latest-value`); null
    /// for other objects and for ones this process may not read.
    pub pattern: Option<&'static str>,
    /// POSIX: the shmkit layout version in its header (null as `pattern`).
    pub layout_version: Option<u32>,
    /// A latest value kept until it is removed by name (`shmkit put`): left
    /// out of `ls --stale` and `rm --stale` although nobody may use it.
    pub kept: bool,
    /// `stat` only, and only for a shmkit channel: what its header says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelView>,
    /// `stat` only, and only for a shmkit latest value: what its header says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_value: Option<crate::pattern_view::LatestView>,
    /// `stat` only, and only for a shmkit topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<crate::pattern_view::TopicView>,
    /// `stat` only, and only for a shmkit many-to-one object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub many_to_one: Option<crate::pattern_view::SeatsView>,
    /// `stat` only, and only for a shmkit service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<crate::pattern_view::SeatsView>,
}

/// A process that uses an object.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// Its pid.
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`).
    pub comm: String,
    /// Whether it maps the object (System V: has it attached).
    pub mapped: bool,
    /// Whether it holds an open file descriptor to it (POSIX only).
    pub holds_fd: bool,
}

/// What a channel's header says.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelView {
    /// The ring's size in bytes.
    pub capacity: u64,
    /// The longest message it carries.
    pub max_message: u64,
    /// Bytes sent and not yet received (null when the counters disagree).
    pub bytes_in_flight: Option<u64>,
    /// The sending side, null until one joined.
    pub sender: Option<SideView>,
    /// The receiving side, null until one joined.
    pub receiver: Option<SideView>,
    /// Messages sent.
    pub messages_sent: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
}

/// One side of a channel.
#[derive(Debug, Clone, Serialize)]
pub struct SideView {
    /// The process that holds (or held) it.
    pub pid: u32,
    /// Whether that process still runs.
    pub alive: bool,
    /// Whether it left in order.
    pub closed: bool,
}

impl Object {
    /// The view of an entry of `/dev/shm`.
    pub fn posix(o: &PosixObject, now: SystemTime) -> Object {
        let changed = latest(o.modified, o.changed);
        Object {
            kind: match o.kind {
                EntryKind::SharedMemory => "posix",
                other => other.as_str(),
            },
            name: Some(o.name.clone()),
            key: None,
            key_hex: None,
            id: None,
            size: o.size,
            resident: Some(o.allocated),
            swap: None,
            mode: o.mode,
            mode_octal: format!("{:04o}", o.mode),
            uid: o.uid,
            gid: o.gid,
            owner: o.owner.clone(),
            group: o.group.clone(),
            cuid: None,
            cgid: None,
            cpid: None,
            creator_alive: None,
            lpid: None,
            nattch: None,
            modified: o.modified.map(Rfc3339),
            changed: o.changed.map(Rfc3339),
            attached: None,
            detached: None,
            age_seconds: changed.map(|t| age(now, t).as_secs()),
            dev: Some(o.dev),
            inode: Some(o.inode),
            users: users(&o.users),
            user_count: o.users.len(),
            users_complete: o.users.complete,
            probe: o.usage.map(probe_str),
            stale: o.stale,
            marked_for_removal: false,
            locked: false,
            pattern: o.shmkit.and_then(|h| h.pattern).map(|p| p.as_str()),
            layout_version: o.shmkit.map(|h| h.version),
            kept: o.shmkit.is_some_and(|h| h.kept),
            channel: None,
            latest_value: None,
            topic: None,
            many_to_one: None,
            service: None,
        }
    }

    /// The view of a System V segment.
    pub fn sysv(s: &SysvSegment, now: SystemTime) -> Object {
        Object {
            kind: "sysv",
            name: None,
            key: Some(s.key.raw() as u32),
            key_hex: Some(s.key.to_string()),
            id: Some(s.id),
            size: s.size,
            resident: s.rss,
            swap: s.swap,
            mode: s.mode,
            mode_octal: format!("{:04o}", s.mode),
            uid: s.uid,
            gid: s.gid,
            owner: s.owner.clone(),
            group: s.group.clone(),
            cuid: Some(s.cuid),
            cgid: Some(s.cgid),
            cpid: Some(s.cpid),
            creator_alive: s.creator_alive,
            lpid: Some(s.lpid),
            nattch: Some(s.nattch),
            modified: None,
            changed: s.ctime.map(Rfc3339),
            attached: s.atime.map(Rfc3339),
            detached: s.dtime.map(Rfc3339),
            age_seconds: s.ctime.map(|t| age(now, t).as_secs()),
            dev: None,
            inode: None,
            users: users(&s.users),
            user_count: s.users.len(),
            // every attachment belongs to a process: as many processes seen
            // as there are attachments is all of them
            users_complete: s.users.complete,
            probe: None,
            stale: Some(s.stale),
            marked_for_removal: s.marked_for_removal,
            locked: s.locked,
            pattern: None,
            layout_version: None,
            kept: false,
            channel: None,
            latest_value: None,
            topic: None,
            many_to_one: None,
            service: None,
        }
    }

    /// What to pass to other commands: `/name`, `key:0x…`, or `id:N` for a
    /// segment whose key is 0 (`IPC_PRIVATE`, or marked for removal).
    pub fn target(&self) -> String {
        match (&self.name, &self.key_hex, self.key, self.id) {
            (Some(name), ..) => name.clone(),
            (None, Some(hex), Some(key), _) if key != 0 => format!("key:{hex}"),
            (.., Some(id)) => format!("id:{id}"),
            _ => String::new(),
        }
    }
}

/// The later of two times, either of which may be unknown.
pub fn latest(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn users(u: &Users) -> Vec<UserView> {
    u.processes
        .iter()
        .map(|p| UserView {
            pid: p.pid,
            comm: p.comm.clone(),
            mapped: p.mapped,
            holds_fd: p.holds_fd,
        })
        .collect()
}

impl ChannelView {
    /// The view of a channel's header.
    pub fn new(c: &ChannelInfo) -> ChannelView {
        let side = |s: &Option<SideInfo>| {
            s.as_ref().map(|s| SideView {
                pid: s.pid,
                alive: s.alive,
                closed: s.closed,
            })
        };
        ChannelView {
            capacity: c.capacity,
            max_message: c.max_message,
            bytes_in_flight: c.bytes_in_flight,
            sender: side(&c.sender),
            receiver: side(&c.receiver),
            messages_sent: c.messages_sent,
            bytes_sent: c.bytes_sent,
            messages_received: c.messages_received,
            bytes_received: c.bytes_received,
        }
    }
}

/// Bytes in a short binary unit, as `ls -h`: `512`, `4K`, `1.5M`, `12G`.
pub fn short_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit > 0 && value < 10.0 && value.fract() != 0.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

/// `1 process`, `2 processes`; `1 time`, `3 times`.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `pid 12 (cat), pid 34 (sleep)`, the first `max` of them and how many more.
pub fn pid_list(users: &[UserView], max: usize) -> String {
    let mut parts: Vec<String> = users
        .iter()
        .take(max)
        .map(|u| {
            if u.comm.is_empty() {
                format!("pid {}", u.pid)
            } else {
                format!("pid {} ({})", u.pid, u.comm)
            }
        })
        .collect();
    if users.len() > max {
        parts.push(format!("{} more", users.len() - max));
    }
    parts.join(", ")
}

/// The JSON word for what the write-lease probe said.
pub fn probe_str(u: Usage) -> &'static str {
    match u {
        Usage::InUse => "in_use",
        Usage::Unused => "unused",
        Usage::Unknown(why) => match why {
            WhyUnknown::NotPermitted => "not_permitted",
            WhyUnknown::NotTmpfsFile => "not_tmpfs_file",
            WhyUnknown::Unsupported => "unsupported",
            WhyUnknown::SignalsHandled => "signals_handled",
            WhyUnknown::Gone => "gone",
            WhyUnknown::Replaced => "replaced",
            _ => "error",
        },
        _ => "error",
    }
}

/// Why whether a POSIX object is used is unknown: why the kernel could not
/// be asked (`probe` as [`probe_str`] gives it), and why /proc does not tell.
pub fn why_unknown(probe: Option<&str>, scan: &ProcessScan) -> String {
    let kernel = match probe {
        Some("not_permitted") => "the kernel tells only the owner or root (CAP_LEASE) whether anybody has it open",
        Some("unsupported") => "file leases are turned off (fs.leases-enable)",
        Some("not_tmpfs_file") => "it is not a file on a tmpfs",
        Some("gone" | "replaced") => "it changed while it was looked at",
        _ => "the kernel could not be asked",
    };
    match why_incomplete(scan) {
        Some(proc) => format!("{kernel}, and {proc}"),
        None => kernel.to_owned(),
    }
}

/// Why a scan is incomplete, naming the processes it could not read:
/// `1 process could not be read: pid 1 (systemd)`. `None` when complete.
pub fn why_incomplete(scan: &ProcessScan) -> Option<String> {
    if scan.is_complete() {
        return None;
    }
    const MAX: usize = 5;
    let pids = scan.unreadable();
    let mut named: Vec<String> = pids
        .iter()
        .take(MAX)
        .map(|&pid| match scan.process(pid).map(|p| p.comm.as_str()) {
            Some(comm) if !comm.is_empty() => format!("pid {pid} ({comm})"),
            _ => format!("pid {pid}"),
        })
        .collect();
    if pids.len() > MAX {
        named.push(format!("{} more", pids.len() - MAX));
    }
    let mut reasons = Vec::new();
    if !pids.is_empty() {
        reasons.push(format!(
            "the maps or file descriptors of {} could not be read ({})",
            plural(pids.len() as u64, "process", "processes"),
            named.join(", ")
        ));
    }
    if scan.processes_hidden() {
        reasons.push("/proc hides other users' processes (hidepid)".to_owned());
    }
    Some(reasons.join(", and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sizes() {
        assert_eq!(short_size(0), "0");
        assert_eq!(short_size(512), "512");
        assert_eq!(short_size(4096), "4K");
        assert_eq!(short_size(1536 << 10), "1.5M");
        assert_eq!(short_size(100 << 30), "100G");
        assert_eq!(short_size(u64::MAX), "16E");
    }

    #[test]
    fn pid_lists() {
        let u = |pid, comm: &str| UserView {
            pid,
            comm: comm.into(),
            mapped: true,
            holds_fd: false,
        };
        assert_eq!(pid_list(&[u(12, "cat"), u(34, "")], 5), "pid 12 (cat), pid 34");
        assert_eq!(
            pid_list(&[u(1, "a"), u(2, "b"), u(3, "c")], 2),
            "pid 1 (a), pid 2 (b), 1 more"
        );
        assert_eq!(plural(1u64, "process", "processes"), "1 process");
        assert_eq!(plural(2u64, "process", "processes"), "2 processes");
    }

    #[test]
    fn latest_of_two_times() {
        let t = |s| Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(latest(t(1), t(2)), t(2));
        assert_eq!(latest(None, t(2)), t(2));
        assert_eq!(latest(t(1), None), t(1));
        assert_eq!(latest(None, None), None);
    }
}
