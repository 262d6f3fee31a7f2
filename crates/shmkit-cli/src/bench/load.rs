//! Was the machine quiet? The CPU time other processes (and, in a VM, the
//! hypervisor) took while a round ran: a round they disturbed is run again,
//! because a spinning transport that loses its core for a time slice
//! measures the scheduler, not itself.

use std::time::Duration;

/// CPU time so far, in clock ticks: the whole machine's busy time (user,
/// nice, system, steal: interrupts are left out, as the loopback network
/// works there on this process's behalf), and this process's with its
/// reaped children.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSample {
    busy: u64,
    own: u64,
}

/// Samples the counters; `None` where `/proc` cannot tell.
pub(crate) fn sample() -> Option<CpuSample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = cpu.first()? + cpu.get(1)? + cpu.get(2)? + cpu.get(7).copied().unwrap_or(0);
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name, which may hold spaces: state is field 3;
    // utime, stime, cutime, cstime are fields 14 to 17.
    let fields: Vec<u64> = me
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let own = fields.get(11)? + fields.get(12)? + fields.get(13)? + fields.get(14)?;
    Some(CpuSample { busy, own })
}

/// The CPU time others took between `before` and `after`.
pub(crate) fn others(before: Option<CpuSample>, after: Option<CpuSample>) -> Duration {
    let (Some(b), Some(a)) = (before, after) else {
        return Duration::ZERO;
    };
    let ticks = a
        .busy
        .saturating_sub(b.busy)
        .saturating_sub(a.own.saturating_sub(b.own));
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_secs_f64(ticks as f64 / hz as f64)
}

/// Whether others took enough CPU during a round of `wall` to matter: more
/// than a twentieth of one CPU, beyond the counters' granularity.
pub(crate) fn disturbed(others: Duration, wall: Duration) -> bool {
    let hz = rustix::param::clock_ticks_per_second().max(1);
    let slack = Duration::from_secs_f64(3.0 / hz as f64);
    others > wall / 20 + slack
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_machine() {
        let a = sample();
        let b = sample();
        assert!(a.is_some());
        assert!(others(a, b) < Duration::from_secs(1));
        assert!(!disturbed(Duration::ZERO, Duration::from_millis(300)));
        assert!(disturbed(Duration::from_millis(100), Duration::from_millis(300)));
    }
}
