//! The work tree's disk quota: a watcher, because nothing cheaper gives a real total here.
//!
//! `RLIMIT_FSIZE` caps one file, not a tree; a size-capped mount would need the work tree to
//! live on its own file system from the clone on (a loop device or tmpfs per session, and the
//! tree must outlive each run). So while a command runs, the server measures the directories it
//! may write (the work tree, Tier B's private tmp, a set-up's writable cache; Tier A's tmp is a
//! size-capped tmpfs already) every [`POLL`], and stops the run when the total exceeds
//! [`super::Limits::disk_bytes`]. The overshoot is bounded by what the command can write in one
//! interval (and by `RLIMIT_FSIZE` per file).

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often the watched directories are measured.
const POLL: Duration = Duration::from_secs(1);

/// What one run may fill.
#[derive(Debug, Clone)]
pub(crate) struct DiskQuota {
    pub dirs: Vec<PathBuf>,
    pub max_bytes: u64,
}

impl DiskQuota {
    /// Resolves when the watched directories together exceed the quota (never otherwise).
    pub(crate) async fn exceeded(self) {
        loop {
            tokio::time::sleep(POLL).await;
            let dirs = self.dirs.clone();
            let used =
                tokio::task::spawn_blocking(move || dirs.iter().map(|d| tree_bytes(d)).sum())
                    .await
                    .unwrap_or(0u64);
            if used > self.max_bytes {
                tracing::warn!(
                    used,
                    max = self.max_bytes,
                    "sandbox run over its disk quota"
                );
                return;
            }
        }
    }
}

/// The line appended to the output of a run stopped by the quota.
pub(crate) fn exceeded_message(max_bytes: u64) -> String {
    format!(
        "\n[PatchPilot stopped this command: the work tree, its tmp and caches grew past the disk quota of {} MiB (PATCHPILOT_SANDBOX_DISK_MB)]\n",
        max_bytes >> 20
    )
}

/// Bytes used under `dir`, not following symlinks; hard links counted once per walk.
pub fn tree_bytes(dir: &Path) -> u64 {
    let mut seen = BTreeSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
    total
}
