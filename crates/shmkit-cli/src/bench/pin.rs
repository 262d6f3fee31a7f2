//! Pinning a process to a CPU (`--pin`): which CPUs it may run on, and
//! pinning to one.

use super::error::{Error, Result};

/// The CPUs this process may run on, in order.
pub(crate) fn allowed_cpus() -> Result<Vec<usize>> {
    let set = rustix::thread::sched_getaffinity(None).map_err(|e| Error::io("sched_getaffinity", e))?;
    Ok((0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| set.is_set(c))
        .collect())
}

/// Pins the calling thread (and the threads it starts later) to `cpu`.
pub(crate) fn pin_to(cpu: usize) -> Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| Error::io(format!("pinning to CPU {cpu}"), e))
}
