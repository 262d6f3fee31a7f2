//! `shmkit doctor`: what on this machine breaks shared memory, and what to
//! do about it.

use std::io::Write;

use serde::Serialize;
use shmkit::inspect::{self, Finding, Status};

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
    /// What was found.
    message: String,
    /// What to do about it; null when nothing.
    advice: Option<String>,
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
            writeln!(out, "{:<7}  {:<width$}  {}", f.status.as_str(), f.check.id(), f.message)?;
            if let Some(advice) = &f.advice {
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
        message: f.message.clone(),
        advice: f.advice.clone(),
    }
}
