//! Per-command resource limits and their application as rlimits in the child.
//!
//! rlimits are inherited by everything the command starts and cannot be raised again by the
//! unprivileged sandbox uid, so they bound fork bombs (`RLIMIT_NPROC`, counted per uid —
//! which is why each run gets its own uid), runaway allocations (`RLIMIT_AS`), huge files
//! (`RLIMIT_FSIZE`), fd leaks and CPU spins. Wall-clock time, output volume and `/tmp` size
//! are enforced by the runner and the backend, not by the kernel's rlimits.

use std::time::Duration;

use nix::sys::resource::{Resource, setrlimit};

/// Limits for one sandboxed command. `Default` gives the safe defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit; then SIGTERM, a grace period, and SIGKILL to everything it started.
    pub timeout: Duration,
    /// Address-space limit per process (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Processes and threads the sandbox uid may have at once (`RLIMIT_NPROC`).
    pub max_processes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    pub max_open_files: u64,
    /// CPU time per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Size of the private `/tmp` (bubblewrap tier).
    pub tmp_bytes: u64,
    /// Output bytes kept (head and tail); the rest is counted and dropped.
    pub output_bytes: usize,
    /// Disk the work tree may take in total, with the run's private tmp (Tier B) and a
    /// writable dependency cache (set-up): watched while the command runs (see `quota`).
    pub disk_bytes: u64,
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Real first builds take minutes (FIELD-NOTES: allow ~10 minutes).
            timeout: Duration::from_secs(600),
            // Address space, not resident memory: V8 and rustc reserve far more than they use.
            memory_bytes: 16 * GIB,
            max_processes: 512,
            max_file_bytes: GIB,
            max_open_files: 4096,
            cpu_seconds: 1800,
            tmp_bytes: 512 * MIB,
            output_bytes: MIB as usize,
            disk_bytes: 20 * GIB,
        }
    }
}

impl Limits {
    /// Sets the rlimits on the calling process. Called in the forked child before exec: it
    /// only makes system calls and does not allocate.
    pub(crate) fn apply_rlimits(&self) -> std::io::Result<()> {
        let set = |res, value: u64| setrlimit(res, value, value).map_err(std::io::Error::from);
        set(Resource::RLIMIT_AS, self.memory_bytes)?;
        set(Resource::RLIMIT_NPROC, self.max_processes)?;
        set(Resource::RLIMIT_FSIZE, self.max_file_bytes)?;
        set(Resource::RLIMIT_NOFILE, self.max_open_files)?;
        set(Resource::RLIMIT_CPU, self.cpu_seconds)?;
        set(Resource::RLIMIT_CORE, 0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bounded_and_allow_real_builds() {
        let l = Limits::default();
        assert!(l.timeout >= Duration::from_secs(300));
        assert!(l.max_processes >= 64 && l.max_processes <= 4096);
        assert!(l.output_bytes <= 4 << 20);
        assert!(l.tmp_bytes > 0 && l.max_file_bytes > 0);
    }
}
