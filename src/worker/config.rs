//! Settings of the worker pool.

use std::path::PathBuf;

/// Settings of the worker that runs sessions.
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerArgs {
    /// How many sessions run at once on this replica.
    #[arg(long, env = "PATCHPILOT_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// Seconds a running session's lease lasts without a heartbeat (heartbeats come four times
    /// per lease). After a crash, another replica resumes the session once it runs out.
    #[arg(long, env = "PATCHPILOT_LEASE_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_secs: u64,
    /// Directory for the repository cache and per-session work trees.
    #[arg(long, env = "PATCHPILOT_DATA_DIR", default_value = ".patchpilot")]
    pub data_dir: PathBuf,
}
