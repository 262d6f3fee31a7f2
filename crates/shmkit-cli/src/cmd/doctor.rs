//! `shmkit doctor`: what on this machine breaks shared memory, and what to
//! do about it.

mod text;

use std::io::Write;

use serde::Serialize;
use serde_json::{json, Value};
use shmkit::inspect::{self, Facts, Finding, MemoryLimit, Status};

use crate::exit::Result;

const EXAMPLES: &str = "\
Examples:
  shmkit doctor             each check: ok, unknown, warning or problem, and what to do
  shmkit doctor --json | jq -r '.checks[] | select(.status != \"ok\") | .id'

Checks: dev_shm_mount, dev_shm_space, dev_shm_size, cgroup_memory_limit,
logind_remove_ipc, shm_rmid_forced, sysv_segment_count, sysv_total_pages,
stale_objects. The exit status is 0 whatever they find: read `status`.";

/// Arguments of `shmkit doctor`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Print one JSON object (fields: see the README).
    #[arg(long)]
    json: bool,
}

/// `shmkit doctor --json`.
#[derive(Debug, Serialize)]
struct DoctorView {
    /// The worst status of all checks.
    status: &'static str,
    /// Every check, in a fixed order.
    checks: Vec<CheckView>,
}

/// One check.
#[derive(Debug, Serialize)]
struct CheckView {
    /// Its stable id, e.g. `dev_shm_space`.
    id: &'static str,
    /// `ok`, `unknown`, `warning` or `problem`.
    status: &'static str,
    /// What was found, in a sentence.
    message: String,
    /// What to do about it; null when nothing.
    advice: Option<String>,
    /// The numbers the check judged, by name (see the README).
    facts: Value,
}

/// Runs `shmkit doctor`.
pub fn run(args: Args) -> Result {
    let findings = inspect::doctor();
    let worst = findings.iter().map(|f| f.status).max().unwrap_or(Status::Ok);
    let mut out = std::io::stdout().lock();
    if args.json {
        let view = DoctorView {
            status: worst.as_str(),
            checks: findings.iter().map(check_view).collect(),
        };
        serde_json::to_writer_pretty(&mut out, &view).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        let width = findings.iter().map(|f| f.check.id().len()).max().unwrap_or(0);
        for f in &findings {
            writeln!(
                out,
                "{:<7}  {:<width$}  {}",
                f.status.as_str(),
                f.check.id(),
                text::message(f)
            )?;
            if let Some(advice) = text::advice(f) {
                writeln!(out, "{:<7}  {:<width$}  what to do: {advice}", "", "")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn check_view(f: &Finding) -> CheckView {
    CheckView {
        id: f.check.id(),
        status: f.status.as_str(),
        message: text::message(f),
        advice: text::advice(f),
        facts: facts(&f.facts),
    }
}

/// The facts of a finding as a JSON object; null where unknown.
fn facts(facts: &Facts) -> Value {
    match facts {
        Facts::DevShmMount { examined, tmpfs, mode } => json!({
            "examined": examined, "tmpfs": tmpfs, "mode": mode, "mode_octal": mode.map(|m| format!("{m:04o}")),
        }),
        Facts::DevShmSpace {
            examined,
            total,
            available,
        } => json!({ "examined": examined, "total": total, "available": available }),
        Facts::DevShmSize {
            examined,
            total,
            small_below,
        } => json!({ "examined": examined, "total": total, "small_below": small_below }),
        Facts::CgroupMemoryLimit { limit, dev_shm_total } => {
            let (limited, bytes, file, usage) = match limit {
                None => (None, None, None, None),
                Some(MemoryLimit::None) => (Some(false), None, None, None),
                Some(MemoryLimit::Bytes { limit, file, usage }) => {
                    (Some(true), Some(*limit), Some(file.display().to_string()), *usage)
                }
            };
            json!({ "limited": limited, "limit": bytes, "file": file, "usage": usage, "dev_shm_total": dev_shm_total })
        }
        Facts::LogindRemoveIpc {
            remove_ipc,
            set_in,
            systemd_running,
        } => json!({
            "remove_ipc": remove_ipc,
            "set_in": set_in.as_ref().map(|p| p.display().to_string()),
            "systemd_running": systemd_running,
        }),
        Facts::ShmRmidForced { value } => json!({ "value": value }),
        Facts::SysvSegmentCount { segments, shmmni } => json!({ "segments": segments, "shmmni": shmmni }),
        Facts::SysvTotalPages {
            pages,
            shmall,
            page_size,
        } => json!({ "pages": pages, "shmall": shmall, "page_size": page_size }),
        Facts::StaleObjects(None) => Value::Null,
        Facts::StaleObjects(Some(c)) => json!({
            "posix": c.posix,
            "posix_bytes": c.posix_bytes,
            "posix_unknown": c.posix_unknown,
            "sysv": c.sysv,
            "sysv_bytes": c.sysv_bytes,
            "unreadable_pids": c.unreadable,
            "processes_hidden": c.processes_hidden,
        }),
        _ => Value::Null,
    }
}
